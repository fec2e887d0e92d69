//! Fuzz target: the vmcore reader never panics and stays bounded. The input
//! is a whole vmcore file (seeds: `vmcore::synth` cores, written by
//! `tests/vmcore_props.rs`): its headers and notes are parsed, `kexec
//! vmcore info`'s summary made, and the printk ring read; the records read
//! never outnumber the ring's descriptors, and every line is ASCII.
#![no_main]

use kexec_core::vmcore::printk::Ring;
use kexec_core::vmcore::summary::summarize;
use kexec_core::vmcore::Vmcore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(core) = Vmcore::parse(data) else {
        return;
    };
    let summary = summarize(&core, data);
    assert_eq!(summary.cpus.len(), core.prstatus.len());
    if let Some(p) = &summary.panic {
        assert!(p.note.is_none_or(|n| n < core.prstatus.len()));
    }
    let Ok(ring) = Ring::locate(&core, data) else {
        return;
    };
    let mut n = 0u64;
    for r in ring.records(&core, data) {
        let Ok(r) = r else { break };
        n += 1;
        assert!(r.to_line().is_ascii());
    }
    assert!(n <= 1 << ring.count_bits);
});

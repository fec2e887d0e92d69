//! Property tests of the vmcore reader (`kexec_core::vmcore`) on synthetic
//! vmcores (`vmcore::synth`): the log read back is what the writer left in
//! the ring, and no truncation or corruption makes the reader panic or
//! return more than the ring can hold. Also writes the `vmcore` fuzz
//! target's seeds (`-- --ignored write_vmcore_fuzz_seeds`).

use std::path::{Path, PathBuf};

use kexec_core::vmcore::printk::{Record, Ring};
use kexec_core::vmcore::summary::summarize;
use kexec_core::vmcore::synth::{Synth, SynthRecord};
use kexec_core::vmcore::{Error, Vmcore};
use proptest::prelude::*;

fn dmesg(bytes: &[u8]) -> Result<Vec<Record>, Error> {
    let v = Vmcore::parse(bytes)?;
    let ring = Ring::locate(&v, bytes)?;
    ring.records(&v, bytes).collect()
}

fn record() -> impl Strategy<Value = SynthRecord> {
    (
        any::<u64>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..200),
        prop::bool::weighted(0.1),
        prop::sample::select(vec![0u64, 1, 2, 2, 2, 3]),
    )
        .prop_map(|(ts_nsec, caller_id, text, dataless, state)| SynthRecord {
            ts_nsec,
            caller_id,
            text,
            dataless,
            state,
        })
}

fn synth() -> impl Strategy<Value = Synth> {
    (
        proptest::collection::vec(record(), 0..80),
        2u32..7,
        8u32..13,
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(records, count_bits, size_bits, first_id, load_vaddr)| Synth {
                records,
                count_bits,
                size_bits,
                first_id,
                load_vaddr,
                ..Synth::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// What comes back is, in order, a run of the newest written records
    /// that are readable (with data, committed or finalized), each with the
    /// text, time and caller it was written with; the newest readable one
    /// is always there when it fits the ring.
    #[test]
    fn the_log_is_the_newest_readable_records(s in synth()) {
        let got = dmesg(&s.build()).unwrap();
        prop_assert!(got.len() <= 1 << s.count_bits);
        let mut last_seq = None;
        for r in &got {
            let w = &s.records[usize::try_from(r.seq).unwrap()];
            prop_assert!(!w.dataless && (w.state == 1 || w.state == 2));
            prop_assert_eq!(&r.text, &w.text);
            prop_assert_eq!((r.ts_nsec, r.caller_id), (w.ts_nsec, w.caller_id));
            if let Some(prev) = last_seq {
                prop_assert!(r.seq > prev);
            }
            last_seq = Some(r.seq);
        }
        if let Some(w) = s.records.last() {
            let fits = (8 + w.text.len()).next_multiple_of(8) < 1 << s.size_bits;
            if !w.dataless && (w.state == 1 || w.state == 2) && fits {
                prop_assert_eq!(last_seq, Some(s.records.len() as u64 - 1));
            }
        }
    }

    /// Truncated at any length, the file is refused with a named error or
    /// read in full; never a panic.
    #[test]
    fn truncation_is_an_error_never_a_panic(s in synth(), cut in any::<prop::sample::Index>()) {
        let core = s.build();
        let short = &core[..cut.index(core.len())];
        match Vmcore::parse(short) {
            Ok(v) => {
                let _ = summarize(&v, short);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Corrupted bytes anywhere: no panic, and never more records than the
    /// ring's descriptor count allows.
    #[test]
    fn corruption_never_panics(
        s in synth(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut core = s.build();
        let len = core.len();
        for (at, byte) in edits {
            core[at.index(len)] = byte;
        }
        if let Ok(v) = Vmcore::parse(core.as_slice()) {
            let _ = summarize(&v, core.as_slice());
            if let Ok(ring) = Ring::locate(&v, core.as_slice()) {
                let n = ring.records(&v, core.as_slice()).take((1 << 26) + 1).count();
                prop_assert!(n <= 1 << ring.count_bits);
            }
        }
    }

    /// A record's line has the prefix, escapes every control byte other
    /// than whitespace, and ends with exactly one newline per text newline
    /// plus one.
    #[test]
    fn lines_are_escaped(text in proptest::collection::vec(any::<u8>(), 0..300), ts in any::<u64>()) {
        let r = Record { seq: 0, ts_nsec: ts, caller_id: 0, text: text.clone() };
        let line = r.to_line();
        prop_assert!(line.starts_with('['));
        prop_assert!(line.ends_with('\n'));
        prop_assert!(line.is_ascii());
        let newlines = text.iter().filter(|&&b| b == b'\n').count();
        prop_assert_eq!(line.matches('\n').count(), newlines + 1);
        prop_assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b) || b"\t\n\x0b\x0c\r".contains(&b)));
    }
}

/// Where the seeds go: `$KEXEC_RS_FUZZ_CORPUS`, else the fuzz crate's `corpus/`.
fn corpus_dir() -> PathBuf {
    std::env::var_os("KEXEC_RS_FUZZ_CORPUS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"))
}

/// Small synthetic vmcores of several shapes, each under the 8 KiB that
/// `corpus-min` inputs may have.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let small = Synth {
        count_bits: 3,
        size_bits: 10,
        ..Synth::default()
    };
    let wrapped = Synth {
        records: (0..60usize)
            .map(|i| {
                SynthRecord::new(
                    i as u64 * 1_000_000,
                    1,
                    &format!("record {i} {}", "=".repeat(i % 23)),
                )
            })
            .collect(),
        count_bits: 3,
        size_bits: 9,
        first_id: (1 << 62) - 7,
        ..Synth::default()
    };
    vec![
        ("default", small.build()),
        ("wrapped", wrapped.build()),
        (
            "no-vaddr",
            Synth {
                load_vaddr: false,
                ..small.clone()
            }
            .build(),
        ),
        (
            "no-vmcoreinfo",
            Synth {
                no_vmcoreinfo: true,
                ..small.clone()
            }
            .build(),
        ),
        (
            "empty-log",
            Synth {
                records: vec![],
                ..small
            }
            .build(),
        ),
    ]
}

#[test]
fn seeds_are_read() {
    for (name, bytes) in seeds() {
        assert!(bytes.len() <= 8 << 10, "{name}: {} bytes", bytes.len());
        let v = Vmcore::parse(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name != "no-vmcoreinfo" {
            dmesg(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let _ = summarize(&v, bytes.as_slice());
    }
}

#[test]
#[ignore = "writes files: run to seed the fuzz corpora"]
fn write_vmcore_fuzz_seeds() {
    let dir = corpus_dir().join("vmcore");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

//! What the bare-metal test files share: the built purgatory and payload,
//! one run, and the check that the payload booted as a kernel should.

use std::path::PathBuf;
use std::sync::OnceLock;

use handoff::{SCTLR_C, SCTLR_I, SCTLR_M};
use xtask::baremetal::{
    build_purgatory_image, build_test_payload, BareMetalRun, PurgatoryImage, RunResult, TestPayload,
};

pub fn images() -> &'static (PurgatoryImage, TestPayload) {
    static IMAGES: OnceLock<(PurgatoryImage, TestPayload)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let p = build_purgatory_image().unwrap_or_else(|e| panic!("{e:#}"));
        let t = build_test_payload().unwrap_or_else(|e| panic!("{e:#}"));
        (p, t)
    })
}

pub fn work(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("purgatory-test-{}-{name}", std::process::id()))
}

pub fn run(name: &str, r: &BareMetalRun) -> RunResult {
    let (p, t) = images();
    let out = r
        .run(p, t, &work(name))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let _ = std::fs::remove_dir_all(work(name));
    println!("--- {name} ({:?}) ---\n{}", out.elapsed, out.console);
    out
}

/// The payload ran with x0 = DTB, x1-x3 = 0, MMU/caches off, at `el`, and
/// powered QEMU off.
pub fn assert_booted(name: &str, out: &RunResult, r: &BareMetalRun, el: u64) {
    assert!(
        out.payload_line().is_some(),
        "{name}: no payload line:\n{}",
        out.console
    );
    assert_eq!(
        out.payload_value("x0"),
        Some(r.dtb),
        "{name}: x0 != dtb:\n{}",
        out.console
    );
    for reg in ["x1", "x2", "x3"] {
        assert_eq!(
            out.payload_value(reg),
            Some(0),
            "{name}: {reg}:\n{}",
            out.console
        );
    }
    assert_eq!(
        out.payload_value("el"),
        Some(el),
        "{name}: el:\n{}",
        out.console
    );
    let sctlr = out.payload_value("sctlr").expect("sctlr");
    assert_eq!(
        sctlr & (SCTLR_M | SCTLR_C | SCTLR_I),
        0,
        "{name}: MMU/caches left on: {sctlr:#x}"
    );
    assert_eq!(
        out.payload_value("on"),
        Some(0),
        "{name}: secondary CPUs left on:\n{}",
        out.console
    );
    assert!(
        out.exited,
        "{name}: QEMU did not power off:\n{}",
        out.console
    );
}

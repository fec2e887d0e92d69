//! QEMU end-to-end tests. They boot real Debian arm64 kernels, so they are
//! `#[ignore]`d in a plain `cargo test` and run by `cargo xtask test`
//! (`cargo test -p xtask -- --ignored`) after `cargo xtask setup`.

use xtask::scenario::{check_kernel, CmdlineMode, Expectations, Hop, KexecScenario, Loader};
use xtask::setup::Assets;

fn assets() -> Assets {
    Assets::existing().unwrap_or_else(|e| panic!("{e:#}"))
}

/// The reference scenario: kexec-tools inside kernel A loads kernel B with an
/// initrd and a marker on the command line; B must report all three.
/// The same run is then checked against a wrong marker, which must fail:
/// the harness can tell a wrong kernel B from a right one.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn kexec_tools_boots_kernel_b_on_two_cpus() {
    let outcome = KexecScenario::single(Loader::KexecTools, 2)
        .run(&assets())
        .unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());

    let right = &outcome.expected[0];
    let wrong = Expectations {
        markers: vec![format!("{}0", right.markers[0])],
        ..right.clone()
    };
    let err = check_kernel(&outcome.timeline, &wrong).expect_err("a wrong marker must fail");
    assert!(err.to_string().contains("lacks the marker"), "{err}");
}

/// A chain A → B → C with kexec-tools, the second hop reusing the running
/// command line: proves the harness follows several kexecs and that
/// `--reuse-cmdline` keeps A's marker while adding C's.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn kexec_tools_chain_with_reuse_cmdline() {
    let mut second = Hop::new(Loader::KexecTools);
    second.cmdline = CmdlineMode::Reuse;
    let scenario = KexecScenario {
        hops: vec![Hop::new(Loader::KexecTools), second],
        ..KexecScenario::single(Loader::KexecTools, 2)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected.len(), 2);
    assert_eq!(outcome.expected[1].markers.len(), 2, "C must carry B's and its own marker");
    let text = outcome.kernel_text_addresses();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text.iter().all(|t| t.len() == 16), "{text:?}");
}

/// Our loader, A → B on one CPU: kernel B reports the marker, the initrd
/// digest and its CPU.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_boots_kernel_b_on_one_cpu() {
    let outcome = KexecScenario::single(Loader::Ours, 1)
        .run(&assets())
        .unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
}

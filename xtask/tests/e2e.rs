//! QEMU end-to-end tests. They boot real Debian arm64 kernels, so they are
//! `#[ignore]`d in a plain `cargo test` and run by `cargo xtask test`
//! (`cargo test -p xtask -- --ignored`) after `cargo xtask setup`.

use xtask::qemu::MachineShape;
use xtask::scenario::{check_kernel_b, Expectations, KexecScenario};
use xtask::setup::Assets;

/// The reference scenario: kexec-tools inside kernel A loads kernel B with an
/// initrd and a marker on the command line; B must report all three.
/// The same run is then checked against a wrong marker, which must fail:
/// the harness can tell a wrong kernel B from a right one.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn kexec_tools_boots_kernel_b_on_two_cpus() {
    let assets = Assets::existing().expect("assets");
    let scenario = KexecScenario {
        shape: MachineShape {
            cpus: 2,
            ..MachineShape::default()
        },
        ..KexecScenario::default()
    };
    let outcome = scenario.run(&assets).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());

    let wrong = Expectations {
        marker: format!("{}0", outcome.expected.marker),
        ..outcome.expected.clone()
    };
    let err = check_kernel_b(&outcome.timeline, &wrong).expect_err("a wrong marker must fail");
    assert!(err.to_string().contains("lacks the marker"), "{err}");
}

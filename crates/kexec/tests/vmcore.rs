//! `kexec vmcore info|dmesg FILE` on synthetic vmcores (the real
//! `/proc/vmcore` is read in the QEMU kdump scenario, xtask/tests/e2e.rs).

use std::process::{Command, Output};

use kexec_core::vmcore::synth::Synth;
use test_assets::synthetic::scratch;

fn kexec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(args)
        .output()
        .expect("run kexec")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dmesg_and_info_of_a_synthetic_vmcore() {
    let dir = scratch("vmcore-cli");
    let file = dir.join("vmcore");
    std::fs::write(&file, Synth::default().build()).unwrap();
    let path = file.to_str().unwrap();

    let out = kexec(&["vmcore", "dmesg", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stdout);
    assert!(
        log.ends_with("[   12.000001] Kernel panic - not syncing: sysrq triggered crash\n"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 4);

    let out = kexec(&["vmcore", "info", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kernel release   6.1.0-synth-arm64"));

    let out = kexec(&["vmcore", "info", "--json", path]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["panic"]["message"], "sysrq triggered crash");
}

#[test]
fn bad_and_missing_vmcores_exit_with_a_named_error() {
    let dir = scratch("vmcore-cli-bad");
    let file = dir.join("truncated");
    let core = Synth::default().build();
    std::fs::write(&file, &core[..core.len() / 2]).unwrap();
    let out = kexec(&["vmcore", "dmesg", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("truncated: program header 1's segment"),
        "{err}"
    );
    assert!(err.contains(file.to_str().unwrap()), "{err}");

    let out = kexec(&["vmcore", "info", dir.join("absent").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("cannot open"));
}

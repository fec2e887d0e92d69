//! The QEMU end-to-end test of `kexec boot` (`#[ignore]`d in a plain
//! `cargo test`, run by `cargo xtask test` with the other QEMU tests; alone:
//! `cargo test -p xtask --test boot_entry -- --ignored --nocapture`).

use xtask::scenario::{Hop, KexecScenario, Loader};
use xtask::setup::Assets;

fn assets() -> Assets {
    Assets::existing().unwrap_or_else(|e| panic!("{e:#}"))
}

/// `kexec boot --exec`, what `systemctl kexec` does: kernel A's initramfs
/// holds kernel B as a Boot Loader Specification entry on /boot (two
/// `initrd` lines, the options on two `options` lines) and a decoy entry
/// that sorts after it (`xtask::boot_entry`). `kexec boot --list` must mark
/// B's entry as the default, `kexec boot --exec` loads and boots it, and B
/// reports the marker and the digest of its whole initramfs (the two parts
/// concatenated in order) and that the purgatory verified it.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kexec_boot_boots_the_default_bls_entry() {
    let k = Loader::Ours.guest_path();
    let mut hop = Hop::new(Loader::Ours);
    hop.boot_entry = true;
    hop.exec_args = "boot --exec -v".into();
    hop.before_load = format!(
        "check boot-list-default 0 sh -c \"{k} boot --list | grep -q '^[*] {} '\"\n",
        xtask::boot_entry::ENTRY_ID
    );
    let scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 1)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(
        xtask::scenario::check_guest_checks(&outcome.timeline).unwrap(),
        1
    );
    let said = |t: &str| outcome.timeline.lines.iter().any(|l| l.text.contains(t));
    assert!(
        said("purgatory: 3 segments verified"),
        "{}",
        outcome.timeline.tail(60)
    );
    assert!(said("falling back to kexec_load"), "-v reached the load");
}

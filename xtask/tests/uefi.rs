//! QEMU end-to-end tests on UEFI machines ([`xtask::uefi`]): kernel A boots
//! through its EFI stub under EDK II, on a device tree or on ACPI tables
//! only, 4 CPUs, 4 GiB, GICv3 with an ITS. `#[ignore]`d like tests/e2e.rs:
//! `cargo xtask test` runs them.

use std::time::Instant;

use xtask::scenario::{Hop, KexecScenario, Loader};
use xtask::setup::Assets;
use xtask::uefi::{self, Tables};
use xtask::uefi_initrd;

/// A → B (→ C with `chain`) by `loader` on the UEFI machine with `tables`:
/// each kexec'd kernel reports the marker, the initrd digest and all 4 CPUs
/// (the scenario's checks), and EFI runtime services, kernel A's ACPI table
/// set and the LPI tables A left reserved ([`uefi::check_firmware`]); our
/// purgatory hashed on all 4 CPUs at each kexec, as it printed (on ACPI, on
/// the UART the SPCR names).
///
/// On the device-tree machine kernel A (and C) is Debian 13's 6.12 and B
/// Debian 12's 6.1: both kernels boot through their EFI stub, and each
/// kexecs the other; on the ACPI machine all are 6.1.
fn uefi_kexec(loader: Loader, tables: Tables, chain: bool) {
    let assets = Assets::existing().unwrap_or_else(|e| panic!("{e:#}"));
    let started = Instant::now();
    let count = if chain { 2 } else { 1 };
    let newer = match tables {
        Tables::DeviceTree => {
            let other = assets.other_kernels();
            let k = other.first().expect("setup downloads a second kernel");
            Some(k.version.clone())
        }
        Tables::Acpi => None,
    };
    let mut hops = vec![Hop::new(loader); count];
    if let Some(c) = hops.get_mut(1) {
        c.kernel = newer.clone();
    }
    let mut scenario = KexecScenario {
        shape: uefi::shape(tables),
        kernel_a: newer,
        hops,
        ..KexecScenario::default()
    };
    uefi::add_reports(&mut scenario);
    let outcome = scenario.run(&assets).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    let acpi = uefi::check_firmware(&outcome.timeline, count + 1, 4, tables)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", outcome.timeline.tail(80)));
    if loader == Loader::Ours {
        // Our purgatory hashed on all 4 CPUs at each kexec, and said so:
        // the CPUs from the device tree's /psci and /cpus, or (ACPI) the
        // FADT and the MADT; it prints on the PL011 of stdout-path, or the
        // SPCR's.
        let smp = outcome
            .timeline
            .lines
            .iter()
            .filter(|l| l.text.contains("purgatory: hashed on 4 CPUs"))
            .count();
        assert_eq!(smp, count, "{}", outcome.timeline.tail(80));
    }
    println!(
        "{loader} on UEFI + {}: {} kexecs, ACPI tables [{acpi}], {:.0} s",
        tables.name(),
        count,
        started.elapsed().as_secs_f64()
    );
}

/// Our loader, A → B → C on the UEFI machine with a device tree (6.12 → 6.1 → 6.12).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_dt_ours_a_b_c() {
    uefi_kexec(Loader::Ours, Tables::DeviceTree, true);
}

/// Our loader, A → B → C on the UEFI machine with ACPI tables only.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_acpi_ours_a_b_c() {
    uefi_kexec(Loader::Ours, Tables::Acpi, true);
}

/// The reference: kexec-tools, A → B on the UEFI machine with a device tree (6.12 → 6.1).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_dt_kexec_tools_a_b() {
    uefi_kexec(Loader::KexecTools, Tables::DeviceTree, false);
}

/// The reference: kexec-tools, A → B on the UEFI machine with ACPI tables only.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_acpi_kexec_tools_a_b() {
    uefi_kexec(Loader::KexecTools, Tables::Acpi, false);
}

/// The reference: kexec-tools, A → B with no initrd on the UEFI machine.
/// It passes no initrd, so kernel B takes A's from the EFI table: freed
/// and reused since, it fails to unpack (seen: "Initramfs unpacking failed:
/// invalid magic at start of compressed archive", "Freeing initrd memory:
/// 35232K"), and were it intact B would run A's `/init`. Either way
/// [`uefi_initrd::check`] must fail: the check is shown failing on a real
/// machine, not only on made-up consoles.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_no_initrd_kexec_tools_takes_the_stale_initrd() {
    let assets = Assets::existing().unwrap_or_else(|e| panic!("{e:#}"));
    let timeline =
        uefi_initrd::run(&assets, Loader::KexecTools, None, "").unwrap_or_else(|e| panic!("{e:#}"));
    match uefi_initrd::check(&timeline) {
        Ok(()) => panic!(
            "kexec-tools' kernel b booted as with the empty initramfs\n{}",
            timeline.tail(80)
        ),
        Err(e) => println!("kexec-tools on UEFI, no initrd: {e:#}"),
    }
}

/// Our loader, A → B with no initrd on the UEFI machine: B gets the empty
/// initramfs, not A's (freed) initrd from the EFI table
/// ([`xtask::uefi_initrd`]).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_no_initrd_ours() {
    let assets = Assets::existing().unwrap_or_else(|e| panic!("{e:#}"));
    let started = Instant::now();
    let timeline =
        uefi_initrd::run(&assets, Loader::Ours, None, "").unwrap_or_else(|e| panic!("{e:#}"));
    uefi_initrd::check(&timeline).unwrap_or_else(|e| panic!("{e:#}\n{}", timeline.tail(80)));
    println!(
        "kexec-rs on UEFI, no initrd: kernel b took the empty initramfs, {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// Our loader with `kexec_file_load` (`-s`), on the kernel we build (it has
/// `CONFIG_KEXEC_FILE` and an EFI stub), A → B with no initrd on the UEFI
/// machine: the kernel's own loader gets the empty initramfs as the initrd.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn uefi_no_initrd_ours_kexec_file_load() {
    let assets = Assets::existing().unwrap_or_else(|e| panic!("{e:#}"));
    xtask::kbuild::cached().unwrap_or_else(|e| panic!("{e:#}"));
    let timeline = uefi_initrd::run(
        &assets,
        Loader::Ours,
        Some(xtask::kbuild::TEST_KERNEL),
        "-s --verbose",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    uefi_initrd::check(&timeline).unwrap_or_else(|e| panic!("{e:#}\n{}", timeline.tail(80)));
    let said = |text: &str| timeline.lines.iter().any(|l| l.text.contains(text));
    let kexec: Vec<&str> = timeline
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .filter(|l| l.contains("kexec"))
        .collect();
    assert!(
        said("kexec: using kexec_file_load") && said("passing an empty initramfs"),
        "{kexec:#?}"
    );
}

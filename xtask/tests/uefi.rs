//! QEMU end-to-end tests on UEFI machines ([`xtask::uefi`]): kernel A boots
//! through its EFI stub under EDK II, on a device tree or on ACPI tables
//! only, 4 CPUs, 4 GiB, GICv3 with an ITS. `#[ignore]`d like tests/e2e.rs:
//! `cargo xtask test` runs them.

use std::time::Instant;

use xtask::scenario::{Hop, KexecScenario, Loader};
use xtask::setup::Assets;
use xtask::uefi::{self, Tables};

/// A → B (→ C with `chain`) by `loader` on the UEFI machine with `tables`:
/// each kexec'd kernel reports the marker, the initrd digest and all 4 CPUs
/// (the scenario's checks), and EFI runtime services, kernel A's ACPI table
/// set and the LPI tables A left reserved ([`uefi::check_firmware`]).
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

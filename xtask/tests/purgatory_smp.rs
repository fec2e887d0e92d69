//! Bare-metal tests of hashing on several CPUs (`handoff::smp`) in QEMU
//! `virt`, whose own PSCI firmware (HVC at EL1, SMC with
//! `virtualization=on`) keeps CPUs 1.. off until a `CPU_ON`. The payload
//! (the stand-in kernel) asks PSCI `AFFINITY_INFO` about CPUs 1 to 7 and
//! prints how many are on: `assert_booted` wants none.
//!
//! Run just these: `cargo test -p xtask --test purgatory_smp -- --ignored`

mod baremetal_support;

use baremetal_support::{assert_booted, run};
use handoff::{Conduit, Flags};
use xtask::baremetal::{test_data, BareMetalRun, Blob, MachineConfig};

/// Four CPUs, the three secondaries listed, and a 16 MiB "initrd" in
/// 2 MiB chunks (10 chunks in all with the payload and the 4 KiB blob).
fn four_cpus(el2: bool) -> BareMetalRun {
    let mut r = BareMetalRun {
        machine: MachineConfig {
            el2,
            cpus: 4,
            ..MachineConfig::default()
        },
        psci: if el2 { Conduit::Smc } else { Conduit::Hvc },
        secondaries: vec![1, 2, 3],
        ..BareMetalRun::default()
    };
    r.blobs[1] = Blob {
        addr: 0x4400_0000,
        bytes: test_data(16 << 20, 1),
        verify: true,
    };
    r
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn four_cpus_hash_and_are_off_before_the_kernel_at_el1_and_el2() {
    for (name, el2, el) in [("smp-el1-hvc", false, 1), ("smp-el2-smc", true, 2)] {
        let r = four_cpus(el2);
        let out = run(name, &r);
        assert!(
            out.console.contains("purgatory: hashed on 4 CPUs\r\n"),
            "{name}:\n{}",
            out.console
        );
        assert!(
            out.console.contains("3 segments verified in 10 chunks"),
            "{name}:\n{}",
            out.console
        );
        assert_booted(name, &out, &r, el);
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn a_mismatch_in_a_secondarys_share_is_reported() {
    let mut r = four_cpus(false);
    // 2 MiB chunks: the 16 MiB blob is segment 2; byte 0x60_0010 is in its
    // chunk 3, digest index 1 (payload) + 1 (DTB blob) + 3 = 5: share 1.
    r.corrupt = Some((1, 0x60_0010));
    let out = run("smp-corrupt", &r);
    assert!(
        out.console.contains(
            "purgatory: segment 2 chunk 3 (0x0000000044600000..0x0000000044800000): \
             SHA-256 mismatch\r\n"
        ),
        "{}",
        out.console
    );
    assert_eq!(out.console.matches("SHA-256 mismatch").count(), 1);
    assert!(
        out.payload_line().is_none(),
        "payload ran:\n{}",
        out.console
    );
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn cpus_that_cannot_help_leave_their_share_to_the_boot_cpu() {
    // CPU 5 does not exist (-smp 2): CPU_ON fails, the boot CPU hashes
    // that share.
    let mut r = four_cpus(false);
    r.machine.cpus = 2;
    r.secondaries = vec![1, 5];
    let out = run("smp-missing-cpu", &r);
    assert!(out.console.contains("hashed on 2 CPUs"), "{}", out.console);
    assert_booted("smp-missing-cpu", &out, &r, 1);

    // The VHE host's E2H is the boot CPU's alone: a secondary starts at EL2
    // with E2H clear, in another regime than the page tables were built
    // for, and declines.
    let mut r = four_cpus(true);
    r.machine.cpu = "max".into();
    r.machine.vhe = true;
    let out = run("smp-vhe-declined", &r);
    assert!(!out.console.contains("hashed on"), "{}", out.console);
    assert!(
        out.console.contains("verified in 10 chunks"),
        "{}",
        out.console
    );
    assert_booted("smp-vhe-declined", &out, &r, 2);

    // HVC at EL2 would trap to the purgatory itself: not made, one CPU.
    let mut r = four_cpus(true);
    r.psci = Conduit::Hvc;
    let out = run("smp-hvc-at-el2", &r);
    assert!(!out.console.contains("hashed on"), "{}", out.console);
    assert_booted("smp-hvc-at-el2", &out, &r, 2);

    // Caches off (kexec-tools' way, for measurements): one CPU.
    let mut r = four_cpus(false);
    r.flags = Flags::NO_CACHES;
    let out = run("smp-caches-off", &r);
    assert!(!out.console.contains("hashed on"), "{}", out.console);
    assert_booted("smp-caches-off", &out, &r, 1);
}

#[test]
#[ignore = "boots QEMU with a real Debian kernel (needs `cargo xtask setup`)"]
fn linux_starts_every_cpu_the_purgatory_hashed_on() {
    let kernel = test_assets::debian_kernels()
        .into_iter()
        .next_back()
        .expect("a Debian kernel: run `cargo xtask setup`");
    let image = std::fs::read(&kernel.image).expect("Image");
    assert_eq!(&image[56..60], b"ARM\x64", "not an arm64 Image");
    let text_offset = u64::from_le_bytes(image[8..16].try_into().unwrap());
    let base = 0x4020_0000 + text_offset;
    for el2 in [false, true] {
        let machine = MachineConfig {
            el2,
            cpus: 4,
            ..MachineConfig::default()
        };
        let name = if el2 {
            "smp-linux-el2"
        } else {
            "smp-linux-el1"
        };
        let dir = baremetal_support::work(name);
        std::fs::create_dir_all(&dir).unwrap();
        let dtb = xtask::baremetal::dump_virt_dtb(&machine, &dir.join("virt.dtb"))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let r = BareMetalRun {
            machine,
            payload_addr: base,
            dtb: 0x4800_0000,
            purgatory_addr: 0x4900_0000,
            blobs: vec![Blob {
                addr: 0x4800_0000,
                bytes: dtb,
                verify: true,
            }],
            kernel: Some(image.clone()),
            psci: if el2 { Conduit::Smc } else { Conduit::Hvc },
            secondaries: vec![1, 2, 3],
            timeout: std::time::Duration::from_secs(240),
            // The kernel has started its secondaries with CPU_ON.
            stop_on: vec!["SMP: Total of ".into()],
            ..BareMetalRun::default()
        };
        let (p, t) = baremetal_support::images();
        let out = r
            .run(p, t, &dir)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.console.contains("purgatory: hashed on 4 CPUs"),
            "{name}:\n{}",
            out.console
        );
        assert!(
            out.console.contains("SMP: Total of 4 processors activated"),
            "{name}: the kernel did not start every CPU:\n{}",
            out.console
        );
        assert!(
            !out.console.contains("failed to come online"),
            "{name}:\n{}",
            out.console
        );
    }
}

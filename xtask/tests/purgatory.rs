//! Bare-metal tests of the purgatory in QEMU `virt` (no firmware, no
//! kernel). `#[ignore]`d in a plain `cargo test`; the QEMU suite runs them
//! with `--ignored`. Needs `rustup target add aarch64-unknown-none` and
//! qemu-system-aarch64.
//!
//! Run just these: `cargo test -p xtask --test purgatory -- --ignored --test-threads=1`

mod baremetal_support;

use baremetal_support::{assert_booted, images, run, work};
use handoff::Flags;
use xtask::baremetal::{measure_hash_32m, BareMetalRun, MachineConfig};

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn good_digests_sha2_instructions_el1() {
    let r = BareMetalRun::default();
    let out = run("good-el1", &r);
    assert!(
        out.console.contains(
            "3 segments verified in 3 chunks of 2048 KiB (sha2 instructions, caches on) at EL1\r"
        ),
        "{}",
        out.console
    );
    assert_booted("good-el1", &out, &r, 1);
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn good_digests_sha2_instructions_el2() {
    let r = BareMetalRun {
        machine: MachineConfig {
            el2: true,
            ..MachineConfig::default()
        },
        ..BareMetalRun::default()
    };
    let out = run("good-el2", &r);
    assert!(
        out.console.contains(
            "3 segments verified in 3 chunks of 2048 KiB (sha2 instructions, caches on) at EL2\r"
        ),
        "{}",
        out.console
    );
    assert_booted("good-el2", &out, &r, 2);
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn good_digests_el2_with_e2h_vhe_regime() {
    let r = BareMetalRun {
        machine: MachineConfig {
            cpu: "max".into(),
            el2: true,
            vhe: true,
            ..MachineConfig::default()
        },
        ..BareMetalRun::default()
    };
    let out = run("good-vhe", &r);
    assert!(
        out.console
            .contains("3 chunks of 2048 KiB (sha2 instructions, caches on) at EL2 with E2H"),
        "{}",
        out.console
    );
    assert_booted("good-vhe", &out, &r, 2);
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn good_digests_software_fallback_el1_and_el2() {
    for el2 in [false, true] {
        let r = BareMetalRun {
            machine: MachineConfig {
                el2,
                ..MachineConfig::default()
            },
            flags: Flags::FORCE_SOFT_SHA256,
            ..BareMetalRun::default()
        };
        let out = run("soft", &r);
        assert!(
            out.console.contains(
                "3 segments verified in 3 chunks of 2048 KiB (software sha256, caches on)"
            ),
            "{}",
            out.console
        );
        assert_booted("soft", &out, &r, if el2 { 2 } else { 1 });
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn corrupted_byte_is_reported_and_cpu_parked() {
    for (name, flags, el2) in [
        ("corrupt-sha2-el1", 0, false),
        ("corrupt-soft-el2", Flags::FORCE_SOFT_SHA256, true),
        ("corrupt-cachesoff", Flags::NO_CACHES, false),
    ] {
        let r = BareMetalRun {
            machine: MachineConfig {
                el2,
                ..MachineConfig::default()
            },
            flags,
            // Blob 1 (segment 2, the 1 MiB "initrd"), one byte in the middle;
            // 64 KiB chunks: its chunk 8.
            corrupt: Some((1, 0x8_1234)),
            chunk_shift: 16,
            ..BareMetalRun::default()
        };
        let out = run(name, &r);
        assert!(
            out.console.contains(
                "purgatory: segment 2 chunk 8 (0x0000000044080000..0x0000000044090000): \
                 SHA-256 mismatch\r\n"
            ),
            "{name}:\n{}",
            out.console
        );
        assert_eq!(
            out.console.matches("SHA-256 mismatch").count(),
            1,
            "{name}: only that chunk:\n{}",
            out.console
        );
        assert!(
            out.console.contains("not booting a corrupted image"),
            "{name}"
        );
        assert!(out.payload_line().is_none(), "{name}: payload ran anyway");
        assert!(!out.exited, "{name}: QEMU exited");
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn no_verify_flag_boots_even_a_corrupted_image() {
    let r = BareMetalRun {
        flags: Flags::NO_VERIFY,
        corrupt: Some((1, 7)),
        ..BareMetalRun::default()
    };
    let out = run("no-verify", &r);
    assert!(
        out.console.contains("verification skipped"),
        "{}",
        out.console
    );
    assert_booted("no-verify", &out, &r, 1);
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn caches_off_flag_still_verifies() {
    let r = BareMetalRun {
        flags: Flags::NO_CACHES,
        ..BareMetalRun::default()
    };
    let out = run("caches-off", &r);
    assert!(
        out.console.contains(
            "3 segments verified in 3 chunks of 2048 KiB (sha2 instructions, caches off)"
        ),
        "{}",
        out.console
    );
    assert_booted("caches-off", &out, &r, 1);
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn purgatory_is_position_independent() {
    // An odd 4 KiB aligned address, sharing a 2 MiB block with a segment,
    // and no console at all.
    for (addr, uart) in [
        (0x4812_3000u64, xtask::baremetal::VIRT_UART),
        (0x4400_0000 + 0x10_0000 + 0x5000, 0),
    ] {
        let r = BareMetalRun {
            purgatory_addr: addr,
            uart,
            ..BareMetalRun::default()
        };
        let out = run("pic", &r);
        assert_booted("pic", &out, &r, 1);
    }
}

#[test]
#[ignore = "boots QEMU with a 32 MiB segment several times; prints timings"]
fn measure_hashing_32_mib() {
    let w = work("measure");
    let timings = measure_hash_32m(&w).unwrap_or_else(|e| panic!("{e:#}"));
    let _ = std::fs::remove_dir_all(&w);
    for t in timings {
        println!(
            "32 MiB, {}: purgatory reports {}, whole QEMU run {:.2} s",
            t.label,
            t.in_guest
                .map(|d| format!("{:.3} s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            t.wall.as_secs_f64()
        );
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn odd_segment_address_and_length_all_hash_paths() {
    // Not what kexec_load allows (page-aligned segments), but the handoff
    // takes any byte range: an unaligned start exercises the in-place block
    // reads, also with the MMU off (Device memory: no unaligned accesses).
    for flags in [
        0,
        Flags::FORCE_SOFT_SHA256,
        Flags::NO_CACHES,
        Flags::NO_CACHES | Flags::FORCE_SOFT_SHA256,
    ] {
        // 4 KiB chunks: the 1 MiB blob is 256 of them, and the odd one's
        // chunks start and end at odd addresses too.
        let mut r = BareMetalRun {
            flags,
            chunk_shift: 12,
            ..BareMetalRun::default()
        };
        r.blobs.push(xtask::baremetal::Blob {
            addr: 0x4500_0071,
            bytes: xtask::baremetal::test_data(0x1_2345, 5),
            verify: true,
        });
        let out = run("odd", &r);
        assert!(
            out.console.contains("4 segments verified in ")
                && out.console.contains(" chunks of 4 KiB ("),
            "flags {flags:#x}:\n{}",
            out.console
        );
        assert_booted("odd", &out, &r, 1);
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn every_aarch64_cpu_model_of_qemu_7_2() {
    // All of them implement FEAT_SHA256 (so the software path is tested
    // through FORCE_SOFT_SHA256 instead); a64fx has no EL2 in QEMU.
    for (cpu, el2) in [
        ("cortex-a35", false),
        ("cortex-a53", true),
        ("cortex-a72", true),
        ("cortex-a76", true),
        ("neoverse-n1", true),
        ("a64fx", false),
        ("max", false),
    ] {
        let r = BareMetalRun {
            machine: MachineConfig {
                cpu: cpu.into(),
                el2,
                ..MachineConfig::default()
            },
            ..BareMetalRun::default()
        };
        let out = run(cpu, &r);
        assert!(
            out.console.contains(
                "3 segments verified in 3 chunks of 2048 KiB (sha2 instructions, caches on)"
            ),
            "{cpu}:\n{}",
            out.console
        );
        assert_booted(cpu, &out, &r, if el2 { 2 } else { 1 });
    }
}

#[test]
#[ignore = "builds the bare-metal target"]
fn build_purgatory_writes_a_patchable_flat_binary() {
    let path = xtask::baremetal::build_purgatory().unwrap_or_else(|e| panic!("{e:#}"));
    let bytes = std::fs::read(&path).expect("purgatory.bin");
    let header =
        handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..]).expect("header");
    // Padded to the whole memory footprint: bufsz = memsz for the loader.
    assert_eq!(header.mem_size, bytes.len() as u64);
    assert_eq!(header.params, handoff::HandoffParams::default());
    // The first instruction branches over the header (B, imm26 > 0).
    let insn = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert_eq!(
        insn >> 26,
        0b000101,
        "first instruction {insn:#010x} is not B"
    );
    assert!(
        u64::from(insn & 0x03ff_ffff) * 4 >= (handoff::HEADER_OFFSET + handoff::HEADER_SIZE) as u64
    );
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn unexpected_exception_is_reported_and_cpu_parked() {
    // A segment in a hole of the `virt` memory map (past the end of 512 MiB
    // of RAM): reading it raises an external abort, which must land in the
    // purgatory's own vectors, not the old kernel's.
    for el2 in [false, true] {
        let mut r = BareMetalRun {
            machine: MachineConfig {
                el2,
                ..MachineConfig::default()
            },
            ..BareMetalRun::default()
        };
        // Listed in the header, not backed by anything.
        r.unloaded_segments.push((0x7000_0000, 0x1000));
        let out = run("fault", &r);
        assert!(
            out.console.contains("purgatory: unexpected exception ESR="),
            "el2={el2}:\n{}",
            out.console
        );
        assert!(out.payload_line().is_none());
        assert!(!out.exited);
    }
}

#[test]
#[ignore = "boots QEMU with a real Debian kernel (needs `cargo xtask setup`)"]
fn purgatory_verifies_and_boots_a_real_linux_image() {
    let Some(kernel) = test_assets::debian_kernels().into_iter().next_back() else {
        return;
    };
    let image = std::fs::read(&kernel.image).expect("Image");
    // booting.rst: text_offset at 8, image_size at 16, "ARM\x64" at 56.
    assert_eq!(&image[56..60], b"ARM\x64", "not an arm64 Image");
    let text_offset = u64::from_le_bytes(image[8..16].try_into().unwrap());
    let image_size = u64::from_le_bytes(image[16..24].try_into().unwrap());
    let base = 0x4020_0000 + text_offset; // 2 MiB aligned + text_offset
    assert!(base + image_size < 0x4800_0000);
    for el2 in [false, true] {
        let machine = MachineConfig {
            el2,
            ..MachineConfig::default()
        };
        let dir = work(if el2 { "linux-el2" } else { "linux-el1" });
        std::fs::create_dir_all(&dir).unwrap();
        let dtb = xtask::baremetal::dump_virt_dtb(&machine, &dir.join("virt.dtb"))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let r = BareMetalRun {
            machine,
            payload_addr: base,
            dtb: 0x4800_0000,
            purgatory_addr: 0x4900_0000,
            blobs: vec![xtask::baremetal::Blob {
                addr: 0x4800_0000,
                bytes: dtb,
                verify: true,
            }],
            timeout: std::time::Duration::from_secs(180),
            // Printed after the kernel parsed the DTB it got in x0.
            stop_on: vec!["Machine model: linux,dummy-virt".into()],
            ..BareMetalRun::default()
        };
        let r = BareMetalRun {
            kernel: Some(image.clone()),
            ..r
        };
        let (p, t) = images();
        let out = r
            .run(p, t, &dir)
            .unwrap_or_else(|e| panic!("el2={el2}: {e:#}"));
        let _ = std::fs::remove_dir_all(&dir);
        let head: String = out.console.lines().take(6).collect::<Vec<_>>().join("\n");
        println!(
            "--- Linux {} el2={el2} ({:?}) ---\n{head}",
            kernel.version, out.elapsed
        );
        assert!(
            out.console.contains("purgatory: 2 segments verified in ")
                && out
                    .console
                    .contains(" chunks of 2048 KiB (sha2 instructions, caches on)"),
            "el2={el2}:\n{}",
            out.console
        );
        for line in [
            "Booting Linux on physical CPU",
            "Machine model: linux,dummy-virt",
        ] {
            assert!(
                out.console.contains(line),
                "el2={el2}: no {line:?}:\n{}",
                out.console
            );
        }
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn segment_at_physical_address_zero() {
    // RAM starts at 0 on some SoCs, where a segment may begin at address 0,
    // which no Rust slice may cover. On `virt` address 0 is flash, which the
    // generic loader fills like RAM; hashing it also works with the MMU on.
    for flags in [0, Flags::NO_CACHES, Flags::FORCE_SOFT_SHA256] {
        let mut r = BareMetalRun {
            flags,
            ..BareMetalRun::default()
        };
        r.blobs.push(xtask::baremetal::Blob {
            addr: 0,
            bytes: xtask::baremetal::test_data(0x1234, 11),
            verify: true,
        });
        let out = run("addr0", &r);
        assert!(
            out.console.contains("4 segments verified"),
            "flags {flags:#x}:\n{}",
            out.console
        );
        assert_booted("addr0", &out, &r, 1);
    }
}

#[test]
#[ignore = "boots QEMU; run with --ignored"]
fn a_disabled_console_uart_neither_hangs_nor_stops_the_boot() {
    // The old kernel (here the entry shim) leaves the console PL011 with
    // the UART or its transmitter disabled: the purgatory must not wait for
    // it (handoff::pl011::transmit) and the next kernel must still boot.
    for (what, cr) in [("uart-off", 0u32), ("tx-off", 0x201), ("tx-only", 0x100)] {
        let r = BareMetalRun {
            uart_control: cr,
            timeout: std::time::Duration::from_secs(30),
            ..BareMetalRun::default()
        };
        let out = run(what, &r);
        assert!(
            !out.console.contains("purgatory:"),
            "{what}: printed on a UART that cannot transmit:\n{}",
            out.console
        );
        assert_booted(what, &out, &r, 1);
    }
}

#[test]
#[ignore = "builds the purgatory for aarch64-unknown-none; run with --ignored"]
fn built_purgatory_system_instructions_are_the_modelled_ones() {
    // purgatory_image::from_elf already refused the image if a system
    // instruction were unknown or an SCTLR write not between two ISBs; this
    // shows what the check found in the binary that runs.
    let elf = std::fs::read(
        xtask::baremetal::cargo_build_baremetal()
            .unwrap()
            .join("purgatory"),
    )
    .unwrap();
    let insns = purgatory_image::sysinsn::system_instructions(&elf).unwrap();
    let counts = purgatory_image::sysinsn::check(&insns).unwrap();
    println!("{counts:#?}");
    // One MMU-on and one MMU-off write per EL, each `isb; msr; isb`, on the
    // boot CPU and on a secondary.
    assert_eq!(counts.get("msr sctlr_el1"), Some(&4), "{counts:?}");
    assert_eq!(counts.get("msr sctlr_el2"), Some(&4), "{counts:?}");
    for needed in [
        "dmb sy",
        "dc ivac",
        "dc civac",
        "ic iallu",
        "dsb sy",
        "tlbi alle2",
    ] {
        assert!(counts.contains_key(needed), "no {needed}: {counts:?}");
    }
    // The DMB comes before the first DC IVAC in the code.
    let first = |name: &str| insns.iter().find(|s| s.name == name).map(|s| s.addr);
    assert!(first("dmb sy") < first("dc ivac"));
}

//! Seed corpora for the `fdt_chosen`, `iomem`, `cmdline`, `elfcore` and `machine` fuzz targets in
//! `crates/kexec-core/fuzz`: small hand-made inputs, and the committed
//! captures of `fixtures/sysroots/*` (`sys/firmware/fdt` cut to its
//! `totalsize`, `proc/iomem`, `proc/cmdline`, the kdump sysfs files) and
//! `tests/fixtures/*.dtb`. Generated, not committed: run
//! `cargo test -p kexec-core --test plan_fuzz_seeds -- --ignored` to write
//! them to `crates/kexec-core/fuzz/corpus/<target>/` (or `$KEXEC_RS_FUZZ_CORPUS`).
//! The always-run test checks every seed is accepted by the parser its target
//! exercises.

use std::path::{Path, PathBuf};

use kexec_core::machine::{ctr, efivar, fadt, kconfig, madt, spcr, status};
use kexec_core::{cmdline, elfcore, fdt, iomem};

const QEMU_VIRT_1G: &[u8] = include_bytes!("fixtures/qemu-virt-1g.dtb");

/// Where the seeds go: `$KEXEC_RS_FUZZ_CORPUS`, else the fuzz crate's `corpus/`.
fn corpus_dir() -> PathBuf {
    std::env::var_os("KEXEC_RS_FUZZ_CORPUS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"))
}

/// A blob cut to its header's `totalsize` (captured `/sys/firmware/fdt`s are
/// padded to 1 MiB; libFuzzer's input length follows the largest seed).
fn cut_to_totalsize(dtb: &[u8]) -> Vec<u8> {
    let total = fdt::parse_header(dtb).map_or(dtb.len(), |h| h.totalsize as usize);
    dtb[..total.min(dtb.len())].to_vec()
}

/// Seeds from the committed fixtures: every sysroot capture and test DTB.
fn fixture_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    let mut sysroots: Vec<_> = std::fs::read_dir(root.join("../../fixtures/sysroots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    sysroots.sort();
    for dir in sysroots {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let read = |rel: &str| std::fs::read(dir.join(rel)).ok();
        if let Some(dtb) = read("sys/firmware/fdt") {
            seeds.push(("fdt_chosen", format!("{name}-fdt"), cut_to_totalsize(&dtb)));
            seeds.push(("machine", format!("{name}-fdt"), cut_to_totalsize(&dtb)));
        }
        if let Some(iomem) = read("proc/iomem") {
            seeds.push(("iomem", format!("{name}-iomem"), iomem));
        }
        if let Some(cmdline) = read("proc/cmdline") {
            // `\x01` (odd: a crash load) OLD `\x01` APPEND.
            let seed = [b"\x01".as_slice(), &cmdline, b"\x01reset_devices"].concat();
            seeds.push(("cmdline", format!("{name}-cmdline"), seed));
        }
        for rel in [
            "sys/kernel/vmcoreinfo",
            "sys/devices/system/cpu/possible",
            "sys/devices/system/cpu/cpu0/crash_notes",
        ] {
            if let Some(text) = read(rel) {
                let file = rel.rsplit('/').next().unwrap();
                seeds.push(("elfcore", format!("{name}-{file}"), text));
            }
        }
    }
    let mut dtbs: Vec<_> = std::fs::read_dir(root.join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dtb"))
        .collect();
    dtbs.sort();
    for path in dtbs {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let dtb = std::fs::read(&path).unwrap();
        seeds.push((
            "fdt_chosen",
            format!("fixture-{name}"),
            cut_to_totalsize(&dtb),
        ));
    }
    seeds
}

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds: Vec<_> = hand_made()
        .into_iter()
        .map(|(t, n, b)| (t, n.to_owned(), b))
        .collect();
    seeds.extend(fixture_seeds());
    seeds
}

fn hand_made() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let blank = dtoolkit::model::DeviceTree::new().to_dtb();
    vec![
        ("fdt_chosen", "qemu-virt-1g", QEMU_VIRT_1G.to_vec()),
        ("fdt_chosen", "blank", blank),
        (
            "iomem",
            "virt-crash",
            [
                "09000000-09000fff : pl011@9000000",
                "  09000000-09000fff : 9000000.pl011 pl011@9000000",
                "40000000-7fffffff : System RAM",
                "  40210000-4185ffff : Kernel code",
                "  41860000-41eaffff : reserved",
                "  41eb0000-4220ffff : Kernel data",
                "  6ac00000-7abfffff : Crash kernel",
                "  7ac00000-7fbfffff : reserved",
                "4010000000-401fffffff : PCI ECAM",
                "",
            ]
            .join("\n")
            .into_bytes(),
        ),
        (
            "cmdline",
            "reuse-append",
            b"\x01BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro initrd=\\initrd crashkernel=256M quiet\x01maxcpus=1 reset_devices"
                .to_vec(),
        ),
        // `TEXT \0 BYTES`: sysfs text for the parsers, then bytes that drive
        // the builder's inputs (counts, addresses, sizes).
        ("elfcore", "vmcoreinfo", {
            let mut seed = b"0x0000000048300000 1024\n\0".to_vec();
            seed.extend((0u8..=255).map(|b| b.wrapping_mul(37)));
            seed
        }),
        ("elfcore", "crash-notes", b"7fda6600\n\0\x02\x01".to_vec()),
        ("elfcore", "cpu-list", b"0-3,5\n".to_vec()),
        (
            "machine",
            "kconfig",
            b"CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\nCONFIG_CRASH_DUMP=y\nCONFIG_NR_CPUS=256\n"
                .to_vec(),
        ),
        (
            "machine",
            "status",
            b"Name:\tkexec\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n".to_vec(),
        ),
        ("machine", "secure-boot", vec![6, 0, 0, 0, 1]),
        ("machine", "fadt", fadt::synthetic(276, 0b11)),
        (
            "machine",
            "madt",
            madt::synthetic(&[(1, 0), (1, 1), (1, 0x100), (0, 0x101)]),
        ),
        (
            "machine",
            "spcr",
            spcr::synthetic(spcr::INTERFACE_ARM_PL011, 0x0900_0000, 3),
        ),
        ("machine", "ctr-el0", 0x8444_c004u64.to_le_bytes().to_vec()),
        // No text; the bytes are a /proc/kcore-like header (RAM at the
        // linear map, the kernel image at its own mapping).
        ("elfcore", "kcore", {
            let header = elfcore::build(&elfcore::ElfCoreInputs {
                kernel_text: Some(elfcore::KernelText {
                    phys: iomem::MemoryRange::new(0x4020_0000, 0x4221_0000),
                    vaddr: 0xffff_8000_0800_0000,
                }),
                ram: vec![iomem::MemoryRange::new(0x4000_0000, 0x8000_0000)],
                linear_map: Some(elfcore::LinearMap {
                    page_offset: 0xffff_0000_0000_0000,
                    phys_offset: 0x4000_0000,
                }),
                ..Default::default()
            })
            .unwrap();
            [b"\0".as_slice(), &header].concat()
        }),
    ]
}

#[test]
fn seeds_are_valid() {
    for (target, name, bytes) in seeds() {
        match target {
            "fdt_chosen" => assert!(fdt::parse(&bytes).is_ok(), "{name}"),
            "iomem" => assert!(
                iomem::parse(std::str::from_utf8(&bytes).unwrap()).is_ok(),
                "{name}"
            ),
            "cmdline" => {
                let line = cmdline::reused(&bytes, true);
                assert!(
                    !String::from_utf8_lossy(&line).contains("crashkernel"),
                    "{name}"
                );
            }
            "elfcore" => {
                let text = bytes.split(|&b| b == 0).next().unwrap();
                let text = std::str::from_utf8(text).unwrap();
                assert!(
                    elfcore::parse_vmcoreinfo(text).is_ok()
                        || elfcore::parse_crash_notes(text).is_ok()
                        || elfcore::parse_cpu_list(text).is_ok(),
                    "{name}"
                );
            }
            "machine" => {
                let text = String::from_utf8_lossy(&bytes);
                let mut word = [0u8; 8];
                let n = bytes.len().min(8);
                word[..n].copy_from_slice(&bytes[..n]);
                assert!(
                    kconfig::parse(&text).is_ok()
                        || status::parse(&text).is_ok_and(|c| c.euid.is_some())
                        || efivar::secure_boot(&bytes).is_ok()
                        || fadt::arm_boot_flags(&bytes).is_ok()
                        || madt::cpu_mpidrs(&bytes).is_ok()
                        || spcr::parse(&bytes).is_ok_and(|t| t.pl011().is_ok())
                        || fdt::cpu_boot(&bytes).is_ok()
                        || (bytes.len() == 8 && ctr::decode(u64::from_le_bytes(word)).is_ok()),
                    "{name}"
                );
            }
            other => panic!("unknown target {other}"),
        }
    }
}

#[test]
#[ignore = "writes files: run to seed the fuzz corpora"]
fn write_plan_fuzz_seeds() {
    let corpus = corpus_dir();
    for (target, name, bytes) in seeds() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

//! `kexec capture-sysroot DIR`: copy the system state a load reads into a
//! directory that `--sysroot DIR` replays anywhere. [`files`] is the one list
//! of captured files; `cargo xtask capture-sysroots` runs this command in its
//! guests rather than keeping a list of its own.
//!
//! Captured, relative to the root, when present:
//!
//! | file                                           | read by                    |
//! |------------------------------------------------|----------------------------|
//! | `proc/iomem`, `proc/cmdline`, `sys/firmware/fdt`, `sys/firmware/acpi/tables/{APIC,SPCR}`, `sys/kernel/kexec_{loaded,crash_loaded,crash_size}` | the planner (`sysroot.rs`; the MADT: the CPUs the purgatory may hash on; the SPCR: the UART it prints on) |
//! | `proc/sys/kernel/kexec_load_disabled`, `sys/kernel/security/lockdown` | the choice of system call (`kfile.rs`) |
//! | `sys/devices/system/cpu/online` | `kexec doctor` |
//! | `sys/kernel/vmcoreinfo`, `sys/devices/system/cpu/possible`, `cpuN/crash_notes{,_size}` | `-p` (`crashdump.rs`) |
//! | what `kexec doctor` reads (listed in `doctor/gather.rs`)  | `kexec doctor --sysroot` |
//!
//! (for doctor: `proc/self/status`, `proc/sys/kernel/{osrelease,
//! kexec_load_limit_*}`, `proc/config.gz`, `boot/config-<release>`, the
//! UEFI, `SecureBoot` and ACPI FADT files, each CPU's `online`, cpu0's
//! cache indexes), and the [`MANIFEST`](sysroot::MANIFEST): each file looked for and not found
//! (`absent`) or not readable (`denied`, `unreadable`), so that a replay
//! tells "the machine has none" from "not captured"; and the architecture
//! and `CTR_EL0`, which are not files.
//!
//! Of `/proc/kcore` only its ELF and program headers are kept
//! (`crashdump::kcore_headers`, what a load reads: the linear map and the
//! kernel image mapping), so that a crash load replayed from the capture
//! writes the same ELF core header as on the machine; it needs root with
//! CAP_SYS_RAWIO and no lockdown, and is skipped otherwise. `/proc/kallsyms`
//! is left out (large; the kcore headers give the same address).

use std::fs;
use std::io;
use std::path::Path;

use kexec_core::elfcore::{self, MAX_CPUS};
use kexec_core::iomem;

use crate::crashdump::{self, CPU_POSSIBLE, KCORE, VMCOREINFO};
use crate::doctor::gather::{self, CPU_ONLINE};
use crate::failure::Failure;
use crate::hints::{self, Situation};
use crate::sysroot::{self, Probe, Sysroot};

/// The files captured whatever the machine, in capture order; the
/// `crash_notes{,_size}` of each CPU follow ([`files`]).
pub const FIXED_FILES: [&str; 13] = [
    sysroot::IOMEM,
    sysroot::CMDLINE,
    sysroot::KEXEC_LOAD_DISABLED,
    sysroot::LOCKDOWN,
    sysroot::FDT,
    crate::firmware::ACPI_MADT,
    crate::firmware::ACPI_SPCR,
    sysroot::KEXEC_LOADED,
    sysroot::KEXEC_CRASH_LOADED,
    sysroot::KEXEC_CRASH_SIZE,
    VMCOREINFO,
    CPU_ONLINE,
    CPU_POSSIBLE,
];

/// Every file of `root` to capture, relative to it: [`FIXED_FILES`], then
/// the `crash_notes{,_size}` of every CPU that has them (those of
/// `cpu/possible`, or cpu0, cpu1, ... up to the first without), then what
/// `kexec doctor` reads ([`gather::files`]) that is not already listed.
pub fn files(root: &Sysroot) -> Vec<String> {
    let mut out = crash_files(root);
    for f in gather::files(root) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// [`FIXED_FILES`] and the CPUs' `crash_notes{,_size}`.
fn crash_files(root: &Sysroot) -> Vec<String> {
    let mut out: Vec<String> = FIXED_FILES.iter().map(|&f| f.to_owned()).collect();
    let has_notes = |cpu: u32| {
        root.path(&crashdump::cpu_file(cpu, "crash_notes"))
            .is_file()
    };
    let cpus: Vec<u32> = match root
        .read_text(CPU_POSSIBLE)
        .ok()
        .and_then(|t| elfcore::parse_cpu_list(&t).ok())
    {
        Some(list) => list.into_iter().filter(|&c| has_notes(c)).collect(),
        None => (0u32..)
            .take(MAX_CPUS)
            .take_while(|&c| has_notes(c))
            .collect(),
    };
    for cpu in cpus {
        out.push(crashdump::cpu_file(cpu, "crash_notes"));
        out.push(crashdump::cpu_file(cpu, "crash_notes_size"));
    }
    out
}

/// What [`capture`] did with one file.
#[derive(Debug)]
pub struct Captured {
    /// The file, relative to the root.
    pub rel: String,
    /// Bytes written, or why it was skipped.
    pub result: io::Result<usize>,
    /// What reading it found (the bytes are dropped once written).
    pub probe: Probe,
}

/// Write `bytes` to `dir/rel`.
fn write_file(dir: &Path, rel: &str, bytes: &[u8]) -> io::Result<usize> {
    let dest = dir.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&dest, bytes)?;
    Ok(bytes.len())
}

/// Copies every file of [`files`] that `from` has into `dir`, then the
/// headers of `/proc/kcore`, then writes the [`MANIFEST`](sysroot::MANIFEST)
/// (last).
pub fn capture(from: &Sysroot, dir: &Path) -> Vec<Captured> {
    let write = |rel: &str, probe: Probe| {
        let result = match &probe {
            Probe::Found(bytes) => write_file(dir, rel, bytes),
            Probe::Absent => Err(io::Error::from(io::ErrorKind::NotFound)),
            Probe::Unreadable { denied, message } => Err(io::Error::new(
                if *denied {
                    io::ErrorKind::PermissionDenied
                } else {
                    io::ErrorKind::Other
                },
                message.clone(),
            )),
            Probe::NotCaptured => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not in the capture captured from",
            )),
        };
        let probe = match probe {
            Probe::Found(_) => Probe::Found(Vec::new()),
            other => other,
        };
        Captured {
            rel: rel.to_owned(),
            result,
            probe,
        }
    };
    let mut out: Vec<Captured> = files(from)
        .iter()
        .map(|rel| write(rel, from.probe(rel)))
        .collect();
    // Never `probe` the live /proc/kcore: it is as large as the address space.
    let kcore = match crashdump::kcore_headers(from) {
        Ok(bytes) => Probe::Found(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !from.is_live() => from.probe(KCORE),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Probe::Absent,
        Err(e) => Probe::Unreadable {
            denied: e.kind() == io::ErrorKind::PermissionDenied,
            message: e.to_string(),
        },
    };
    out.push(write(KCORE, kcore));
    let manifest = manifest(from, &out);
    out.push(Captured {
        rel: sysroot::MANIFEST.to_owned(),
        result: write_file(dir, sysroot::MANIFEST, manifest.as_bytes()),
        probe: Probe::Found(Vec::new()),
    });
    out
}

/// The [`MANIFEST`](sysroot::MANIFEST) of a capture of `from` that did `done`.
pub fn manifest(from: &Sysroot, done: &[Captured]) -> String {
    let mut text = String::from(
        "# kexec capture-sysroot: what the capture looked for and did not copy, and facts
",
    );
    if let Some(arch) = from.arch() {
        text.push_str(&format!("arch\t{arch}\n"));
    }
    if let Some(ctr) = from.ctr_el0() {
        text.push_str(&format!("ctr_el0\t{ctr:#x}\n"));
    }
    for c in done {
        match &c.probe {
            Probe::Absent => text.push_str(&format!("absent\t{}\n", c.rel)),
            Probe::Unreadable { denied, message } => text.push_str(&format!(
                "{}\t{}\t{}\n",
                if *denied { "denied" } else { "unreadable" },
                c.rel,
                message.replace(['\t', '\n'], " ")
            )),
            Probe::Found(_) | Probe::NotCaptured => {}
        }
    }
    text
}

/// `kexec capture-sysroot DIR`: capture `from` (the live system; a sysroot
/// in tests) into `dir`; what was written and skipped, or a failure if
/// `/proc/iomem` is missing or hidden.
pub fn capture_sysroot(from: &Sysroot, dir: &Path) -> Result<String, Failure> {
    let mut out = String::new();
    let results = capture(from, dir);
    for c in &results {
        match &c.result {
            Ok(n) => out.push_str(&format!(
                "wrote {} ({n} bytes)\n",
                dir.join(&c.rel).display()
            )),
            Err(e) => out.push_str(&format!("skipped /{}: {e}\n", c.rel)),
        }
    }
    let situation = Situation::of(from);
    if let Some(c) = results.iter().find(|c| c.rel == sysroot::IOMEM) {
        if let Err(e) = &c.result {
            let read = match &c.probe {
                Probe::Found(_) => None,
                _ => Some(e.kind()),
            };
            return Err(Failure::system(
                "/proc/iomem",
                format!("could not be captured: {e}"),
                hints::iomem_not_captured(read, &situation),
            ));
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(sysroot::IOMEM)) {
        if iomem::parse(&text) == Err(iomem::Error::AddressesHidden) {
            return Err(Failure::system(
                "/proc/iomem",
                "captured, but every address is zero",
                hints::hidden_addresses(&situation),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use test_assets::synthetic::{fixture_sysroot, scratch};

    use super::*;
    use crate::crashdump::elf_core_header;

    #[test]
    fn capture_copies_present_files_and_reports_missing_ones() {
        let src = scratch("capture-src");
        fs::create_dir_all(src.join("proc")).unwrap();
        fs::create_dir_all(src.join("sys/kernel")).unwrap();
        fs::write(src.join(sysroot::IOMEM), "40000000-7fffffff : System RAM\n").unwrap();
        fs::write(src.join(sysroot::KEXEC_LOADED), "1\n").unwrap();
        let dst = scratch("capture-dst");
        let results = capture(&Sysroot::at(&src), &dst);
        let ok: Vec<_> = results
            .iter()
            .filter(|c| c.result.is_ok())
            .map(|c| c.rel.as_str())
            .collect();
        assert_eq!(
            ok,
            [sysroot::IOMEM, sysroot::KEXEC_LOADED, sysroot::MANIFEST]
        );
        assert_eq!(
            results.len(),
            files(&Sysroot::at(&src)).len() + 2,
            "and proc/kcore, and the manifest"
        );
        assert_eq!(results.last().unwrap().rel, sysroot::MANIFEST);
        // The source said nothing of the other files (a capture without a
        // manifest): the copy's manifest does not call them absent.
        let manifest = fs::read_to_string(dst.join(sysroot::MANIFEST)).unwrap();
        assert!(!manifest.contains("absent\t"), "{manifest}");
        let copy = Sysroot::at(&dst);
        assert_eq!(copy.probe(sysroot::LOCKDOWN), Probe::NotCaptured);
        assert_eq!(
            copy.read(sysroot::IOMEM).unwrap(),
            b"40000000-7fffffff : System RAM\n"
        );
        assert_eq!(copy.flag(sysroot::KEXEC_LOADED), Some(true));
        assert_eq!(copy.flag(sysroot::KEXEC_CRASH_LOADED), None);
        assert!(!copy.is_live());
        assert!(Sysroot::live().is_live());
        fs::remove_dir_all(src).unwrap();
        fs::remove_dir_all(dst).unwrap();
    }

    /// What a capture records as absent or unreadable, and its facts, a
    /// capture of it records again; a file it has is found.
    #[test]
    fn the_manifest_carries_absence_and_facts() {
        let src = scratch("manifest-src");
        fs::create_dir_all(src.join("proc")).unwrap();
        fs::write(src.join(sysroot::IOMEM), "40000000-7fffffff : System RAM\n").unwrap();
        fs::write(
            src.join(sysroot::MANIFEST),
            "# a comment\narch\taarch64\nctr_el0\t0x8444c004\nabsent\tsys/firmware/efi/fw_platform_size\n\
             denied\tsys/firmware/acpi/tables/FACP\tPermission denied (os error 13)\n",
        )
        .unwrap();
        let from = Sysroot::at(&src);
        assert_eq!(from.probe(gather::EFI_PLATFORM_SIZE), Probe::Absent);
        assert_eq!(
            from.probe(gather::ACPI_FADT),
            Probe::Unreadable {
                denied: true,
                message: "Permission denied (os error 13)".into()
            }
        );
        assert_eq!(from.probe(sysroot::LOCKDOWN), Probe::NotCaptured);
        assert!(matches!(from.probe(sysroot::IOMEM), Probe::Found(_)));
        assert_eq!(from.arch().as_deref(), Some("aarch64"));
        assert_eq!(from.ctr_el0(), Some(0x8444_c004));
        let dst = scratch("manifest-dst");
        capture(&from, &dst);
        let copy = Sysroot::at(&dst);
        assert_eq!(copy.probe(gather::EFI_PLATFORM_SIZE), Probe::Absent);
        assert!(matches!(
            copy.probe(gather::ACPI_FADT),
            Probe::Unreadable { denied: true, .. }
        ));
        assert_eq!(copy.probe(sysroot::LOCKDOWN), Probe::NotCaptured);
        assert_eq!((copy.arch(), copy.ctr_el0()), (from.arch(), from.ctr_el0()));
        fs::remove_dir_all(src).unwrap();
        fs::remove_dir_all(dst).unwrap();
    }

    #[test]
    fn capture_copies_the_crash_state() {
        let from = fixture_sysroot("virt-1g-crashkernel");
        assert_eq!(
            files(&Sysroot::at(&from))[FIXED_FILES.len()..FIXED_FILES.len() + 4],
            [
                "sys/devices/system/cpu/cpu0/crash_notes",
                "sys/devices/system/cpu/cpu0/crash_notes_size",
                "sys/devices/system/cpu/cpu1/crash_notes",
                "sys/devices/system/cpu/cpu1/crash_notes_size",
            ]
        );
        let dir = scratch("capture-crash");
        let results = capture(&Sysroot::at(&from), &dir);
        // What `cargo xtask capture-sysroots` captured, this captures too.
        let (manifest, results) = results.split_last().unwrap();
        assert_eq!(manifest.rel, sysroot::MANIFEST);
        assert!(manifest.result.is_ok());
        for c in results {
            assert_eq!(
                c.result.is_ok(),
                from.join(&c.rel).is_file(),
                "{}: {:?}",
                c.rel,
                c.result
            );
        }
        // ... and nothing it captured is left out.
        let captured = results.iter().filter(|c| c.result.is_ok()).count();
        assert_eq!(captured, 14, "{results:?}");
        // The copy makes the same header as the original.
        let map = iomem::parse(&Sysroot::at(&dir).read_text(sysroot::IOMEM).unwrap()).unwrap();
        let header = |root: &Sysroot| elf_core_header(root, &map, &mut Vec::new()).unwrap();
        assert_eq!(header(&Sysroot::at(&dir)), header(&Sysroot::at(&from)));
        fs::remove_dir_all(dir).unwrap();
    }

    /// Of a /proc/kcore only its headers are captured, and a crash load
    /// replayed from the capture writes the same ELF core header (linear map
    /// in the RAM PT_LOADs' p_vaddr, the kernel image PT_LOAD) as from the
    /// whole file.
    #[test]
    fn capture_keeps_the_kcore_headers_and_the_same_elf_core_header() {
        use kexec_core::elfcore::{ElfCoreInputs, KernelText, LinearMap};
        use kexec_core::iomem::MemoryRange;
        let src = scratch("capture-kcore-src");
        fs::create_dir_all(src.join("proc")).unwrap();
        let iomem = "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
                     41eb0000-4220ffff : Kernel data\n  6ac00000-7abfffff : Crash kernel\n";
        fs::write(src.join(sysroot::IOMEM), iomem).unwrap();
        // A stand-in /proc/kcore: its headers (an ELF core file of the same
        // shape), then 1 MiB of "memory".
        let headers = elfcore::build(&ElfCoreInputs {
            kernel_text: Some(KernelText {
                phys: MemoryRange::new(0x4020_0000, 0x4221_0000),
                vaddr: 0xffff_8000_0800_0000,
            }),
            ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
            linear_map: Some(LinearMap {
                page_offset: 0xffff_0000_0000_0000,
                phys_offset: 0x4000_0000,
            }),
            ..Default::default()
        })
        .unwrap();
        let mut kcore = headers.clone();
        kcore.resize(headers.len() + (1 << 20), 0xaa);
        fs::write(src.join(KCORE), &kcore).unwrap();
        let dst = scratch("capture-kcore-dst");
        let results = capture(&Sysroot::at(&src), &dst);
        let last = &results[results.len() - 2];
        assert_eq!(last.rel, KCORE);
        assert_eq!(last.result.as_ref().unwrap(), &headers.len());
        assert_eq!(fs::read(dst.join(KCORE)).unwrap(), headers);
        let map = iomem::parse(iomem).unwrap();
        let header = |root: &Sysroot| {
            let mut notes = Vec::new();
            let h = elf_core_header(root, &map, &mut notes).unwrap();
            assert!(!notes.iter().any(|n| n.contains("PT_LOAD")), "{notes:?}");
            h
        };
        let from_capture = header(&Sysroot::at(&dst));
        assert_eq!(from_capture, header(&Sysroot::at(&src)));
        // The RAM PT_LOADs carry linear-map addresses, not 0.
        let layout = elfcore::parse_kcore(&from_capture).unwrap();
        assert_eq!(
            layout.linear.map(|l| l.virt(0x4000_0000)),
            Some(0xffff_0000_0000_0000)
        );
        fs::remove_dir_all(src).unwrap();
        fs::remove_dir_all(dst).unwrap();
    }
}

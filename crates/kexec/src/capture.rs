//! `kexec capture-sysroot DIR`: copy the system state a load reads into a
//! directory that `--sysroot DIR` replays anywhere. [`files`] is the one list
//! of captured files; `cargo xtask capture-sysroots` runs this command in its
//! guests rather than keeping a list of its own.
//!
//! Captured, relative to the root, when present:
//!
//! | file                                           | read by                    |
//! |------------------------------------------------|----------------------------|
//! | `proc/iomem`, `proc/cmdline`, `sys/firmware/fdt`, `sys/kernel/kexec_{loaded,crash_loaded,crash_size}` | the planner (`sysroot.rs`) |
//! | `proc/sys/kernel/kexec_load_disabled`, `sys/kernel/security/lockdown` | the choice of system call (`kfile.rs`) |
//! | `sys/devices/system/cpu/online` | nobody: a record of the machine |
//! | `sys/kernel/vmcoreinfo`, `sys/devices/system/cpu/possible`, `cpuN/crash_notes{,_size}` | `-p` (`crashdump.rs`) |
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
use crate::failure::Failure;
use crate::sysroot::{self, Sysroot};

/// `/sys/devices/system/cpu/online`, relative to the root.
pub const CPU_ONLINE: &str = "sys/devices/system/cpu/online";

/// The files captured whatever the machine, in capture order; the
/// `crash_notes{,_size}` of each CPU follow ([`files`]).
pub const FIXED_FILES: [&str; 11] = [
    sysroot::IOMEM,
    sysroot::CMDLINE,
    sysroot::KEXEC_LOAD_DISABLED,
    sysroot::LOCKDOWN,
    sysroot::FDT,
    sysroot::KEXEC_LOADED,
    sysroot::KEXEC_CRASH_LOADED,
    sysroot::KEXEC_CRASH_SIZE,
    VMCOREINFO,
    CPU_ONLINE,
    CPU_POSSIBLE,
];

/// Every file of `root` to capture, relative to it: [`FIXED_FILES`], then
/// the `crash_notes{,_size}` of every CPU that has them (those of
/// `cpu/possible`, or cpu0, cpu1, ... up to the first without).
pub fn files(root: &Sysroot) -> Vec<String> {
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
}

/// Copies every file of [`files`] that `from` has into `dir`, then the
/// headers of `/proc/kcore` (last).
pub fn capture(from: &Sysroot, dir: &Path) -> Vec<Captured> {
    let write = |rel: &str, bytes: io::Result<Vec<u8>>| {
        let result = bytes.and_then(|bytes| {
            let dest = dir.join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&dest, &bytes)?;
            Ok(bytes.len())
        });
        Captured {
            rel: rel.to_owned(),
            result,
        }
    };
    let mut out: Vec<Captured> = files(from)
        .iter()
        .map(|rel| write(rel, from.read(rel)))
        .collect();
    out.push(write(KCORE, crashdump::kcore_headers(from)));
    out
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
    let iomem_ok = results
        .iter()
        .any(|c| c.rel == sysroot::IOMEM && c.result.is_ok());
    if !iomem_ok {
        return Err(Failure::system(
            "/proc/iomem",
            "could not be captured",
            "run as root",
        ));
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(sysroot::IOMEM)) {
        if iomem::parse(&text) == Err(iomem::Error::AddressesHidden) {
            return Err(Failure::system(
                "/proc/iomem",
                "captured, but every address is zero",
                "run `kexec capture-sysroot` as root (CAP_SYS_ADMIN)",
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
        assert_eq!(ok, [sysroot::IOMEM, sysroot::KEXEC_LOADED]);
        assert_eq!(results.len(), FIXED_FILES.len() + 1, "and proc/kcore");
        let copy = Sysroot::at(&dst);
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

    #[test]
    fn capture_copies_the_crash_state() {
        let from = fixture_sysroot("virt-1g-crashkernel");
        assert_eq!(
            files(&Sysroot::at(&from))[FIXED_FILES.len()..],
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
        for c in &results {
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
        let last = results.last().unwrap();
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

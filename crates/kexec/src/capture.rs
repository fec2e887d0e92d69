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
//! `/proc/kcore` and `/proc/kallsyms` are left out (huge, and meaningful only
//! on the live system).

use std::fs;
use std::io;
use std::path::Path;

use kexec_core::elfcore::{self, MAX_CPUS};
use kexec_core::iomem;

use crate::crashdump::{self, CPU_POSSIBLE, VMCOREINFO};
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

/// Copies every file of [`files`] that `from` has into `dir`.
pub fn capture(from: &Sysroot, dir: &Path) -> Vec<Captured> {
    files(from)
        .into_iter()
        .map(|rel| {
            let result = from.read(&rel).and_then(|bytes| {
                let dest = dir.join(&rel);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(&dest, &bytes)?;
                Ok(bytes.len())
            });
            Captured { rel, result }
        })
        .collect()
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
        assert_eq!(results.len(), FIXED_FILES.len());
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
}

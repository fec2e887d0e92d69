//! Where the system state comes from: the live system, or a directory that
//! mirrors it (`--sysroot DIR`, written by `kexec capture-sysroot DIR`).
//!
//! Only these files are read, always relative to the root:
//!
//! | file                              | what                                     |
//! |-----------------------------------|------------------------------------------|
//! | `proc/iomem`                      | physical memory map (needs root)         |
//! | `proc/cmdline`                    | running kernel's command line            |
//! | `sys/firmware/fdt`                | device tree the running kernel booted with |
//! | `sys/kernel/kexec_loaded`         | `1` if a kernel is loaded for `kexec -e` |
//! | `sys/kernel/kexec_crash_loaded`   | `1` if a crash kernel is loaded          |
//! | `sys/kernel/kexec_crash_size`     | size of the crash region, decimal        |
//!
//! and, for `-p`, the crash-dump state listed in `crashdump.rs` (CPU list,
//! `cpuN/crash_notes{,_size}`, `vmcoreinfo`, `/proc/kcore`'s headers,
//! `/proc/kallsyms`); [`capture`] copies the small ones.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// `/proc/iomem`, relative to the root.
pub const IOMEM: &str = "proc/iomem";
/// `/proc/cmdline`, relative to the root.
pub const CMDLINE: &str = "proc/cmdline";
/// `/sys/firmware/fdt`, relative to the root.
pub const FDT: &str = "sys/firmware/fdt";
/// `/sys/kernel/kexec_loaded`, relative to the root.
pub const KEXEC_LOADED: &str = "sys/kernel/kexec_loaded";
/// `/sys/kernel/kexec_crash_loaded`, relative to the root.
pub const KEXEC_CRASH_LOADED: &str = "sys/kernel/kexec_crash_loaded";
/// `/sys/kernel/kexec_crash_size`, relative to the root.
pub const KEXEC_CRASH_SIZE: &str = "sys/kernel/kexec_crash_size";

/// Every file a sysroot may hold, in capture order.
pub const FILES: [&str; 6] = [
    IOMEM,
    CMDLINE,
    FDT,
    KEXEC_LOADED,
    KEXEC_CRASH_LOADED,
    KEXEC_CRASH_SIZE,
];

/// A root directory to read the system state from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysroot {
    root: PathBuf,
    live: bool,
}

impl Sysroot {
    /// The running system (`/`).
    pub fn live() -> Self {
        Self {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    /// A captured system state under `dir`.
    pub fn at(dir: &Path) -> Self {
        Self {
            root: dir.to_path_buf(),
            live: false,
        }
    }

    /// Whether this is the running system.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The full path of `rel` under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The bytes of `rel`.
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(rel))
    }

    /// The text of `rel` (invalid UTF-8 replaced).
    pub fn read_text(&self, rel: &str) -> io::Result<String> {
        Ok(String::from_utf8_lossy(&self.read(rel)?).into_owned())
    }

    /// A `0`/`1` flag file such as `sys/kernel/kexec_loaded`; `None` if
    /// absent or unreadable.
    pub fn flag(&self, rel: &str) -> Option<bool> {
        let text = self.read_text(rel).ok()?;
        match text.trim() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        }
    }
}

/// What [`capture`] did with one file.
#[derive(Debug)]
pub struct Captured {
    /// The file, relative to the root.
    pub rel: String,
    /// Bytes written, or why it was skipped.
    pub result: io::Result<usize>,
}

/// Copies every file of [`FILES`] that `from` has into `dir`, then the
/// crash-dump state a `-p` load reads ([`crate::crashdump::files`]).
pub fn capture(from: &Sysroot, dir: &Path) -> Vec<Captured> {
    FILES
        .iter()
        .map(|&rel| rel.to_owned())
        .chain(crate::crashdump::files(from))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kexec-sysroot-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn capture_copies_present_files_and_reports_missing_ones() {
        let src = scratch("src");
        fs::create_dir_all(src.join("proc")).unwrap();
        fs::create_dir_all(src.join("sys/kernel")).unwrap();
        fs::write(src.join(IOMEM), "40000000-7fffffff : System RAM\n").unwrap();
        fs::write(src.join(KEXEC_LOADED), "1\n").unwrap();
        let dst = scratch("dst");
        let results = capture(&Sysroot::at(&src), &dst);
        let ok: Vec<_> = results
            .iter()
            .filter(|c| c.result.is_ok())
            .map(|c| c.rel.as_str())
            .collect();
        assert_eq!(ok, [IOMEM, KEXEC_LOADED]);
        let copy = Sysroot::at(&dst);
        assert_eq!(
            copy.read(IOMEM).unwrap(),
            b"40000000-7fffffff : System RAM\n"
        );
        assert_eq!(copy.flag(KEXEC_LOADED), Some(true));
        assert_eq!(copy.flag(KEXEC_CRASH_LOADED), None);
        assert!(!copy.is_live());
        assert!(Sysroot::live().is_live());
        fs::remove_dir_all(src).unwrap();
        fs::remove_dir_all(dst).unwrap();
    }
}

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
//! | `sys/kernel/security/lockdown`    | lockdown mode, the active one bracketed (`kfile.rs`) |
//! | `proc/sys/kernel/kexec_load_disabled` | `1` if every kexec load is refused (`kfile.rs`) |
//!
//! and, for `-p`, the crash-dump state listed in `crashdump.rs` (CPU list,
//! `cpuN/crash_notes{,_size}`, `vmcoreinfo`, `/proc/kcore`'s headers,
//! `/proc/kallsyms`). What `kexec capture-sysroot` copies is listed in
//! `capture.rs`.

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

/// `/sys/kernel/security/lockdown`, relative to the root (securityfs).
pub const LOCKDOWN: &str = "sys/kernel/security/lockdown";
/// `/proc/sys/kernel/kexec_load_disabled`, relative to the root.
pub const KEXEC_LOAD_DISABLED: &str = "proc/sys/kernel/kexec_load_disabled";

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

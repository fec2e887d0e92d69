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
//! `/proc/kallsyms`); for `kexec doctor` the files listed in
//! `doctor/gather.rs`. What `kexec capture-sysroot` copies is listed in
//! `capture.rs`.
//!
//! A capture also writes [`MANIFEST`]: the files it looked for and did not
//! find (or could not read), and the facts that are not files (the
//! architecture, `CTR_EL0`). [`Sysroot::probe`] tells "the machine has no
//! such file" from "this capture does not say" with it: an older capture,
//! without the file or without a manifest line about it, does not say.

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

/// The capture's own record, at the root of a capture directory: one line
/// per file it did not copy (`absent REL`, `denied REL MESSAGE`,
/// `unreadable REL MESSAGE`) and per fact (`arch NAME`, `ctr_el0 0xHEX`),
/// fields separated by a tab; `#` starts a comment.
pub const MANIFEST: &str = "kexec-capture.txt";

/// What looking for one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Its bytes.
    Found(Vec<u8>),
    /// The machine has no such file.
    Absent,
    /// It is there but could not be read.
    Unreadable {
        /// The reason is a permission refusal (EACCES, EPERM).
        denied: bool,
        /// The error, as the OS said it.
        message: String,
    },
    /// A capture that does not say whether the machine has it.
    NotCaptured,
}

impl Probe {
    /// The bytes, if found.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Found(b) => Some(b),
            _ => None,
        }
    }

    /// The text, if found (invalid UTF-8 replaced).
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The outcome of reading a live file.
    fn of_read(result: io::Result<Vec<u8>>) -> Self {
        match result {
            Ok(bytes) => Self::Found(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::Absent,
            Err(e) => Self::Unreadable {
                denied: e.kind() == io::ErrorKind::PermissionDenied,
                message: e.to_string(),
            },
        }
    }
}

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

    /// What looking for `rel` finds: on the running system, the file or
    /// why not; in a capture, the file, or what [`MANIFEST`] says of it.
    pub fn probe(&self, rel: &str) -> Probe {
        let read = Probe::of_read(self.read(rel));
        if self.live || read != Probe::Absent {
            return read;
        }
        for fields in self.manifest() {
            match fields.as_slice() {
                [kind, path, rest @ ..] if path == rel => {
                    let message = rest.join("\t");
                    match kind.as_str() {
                        "absent" => return Probe::Absent,
                        "denied" | "unreadable" => {
                            return Probe::Unreadable {
                                denied: kind == "denied",
                                message,
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Probe::NotCaptured
    }

    /// The lines of [`MANIFEST`], split at tabs (none on the running
    /// system, or in a capture without one).
    fn manifest(&self) -> Vec<Vec<String>> {
        if self.live {
            return Vec::new();
        }
        let text = self.read_text(MANIFEST).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// A fact of [`MANIFEST`] (`arch`, `ctr_el0`).
    fn fact(&self, name: &str) -> Option<String> {
        self.manifest()
            .into_iter()
            .find_map(|f| match f.as_slice() {
                [k, v, ..] if k == name => Some(v.clone()),
                _ => None,
            })
    }

    /// The machine's architecture as Rust names it (`aarch64`, `x86_64`):
    /// the one this `kexec` was built for on the running system (it runs
    /// only there), the recorded one in a capture; `None` when a capture
    /// does not say.
    pub fn arch(&self) -> Option<String> {
        if self.live {
            Some(std::env::consts::ARCH.to_owned())
        } else {
            self.fact("arch")
        }
    }

    /// `CTR_EL0` of the CPU this runs on (arm64 only), or as a capture
    /// recorded it.
    pub fn ctr_el0(&self) -> Option<u64> {
        if self.live {
            kexec_sys::ctr_el0()
        } else {
            let text = self.fact("ctr_el0")?;
            u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
        }
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

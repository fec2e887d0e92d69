//! Hints that are true for the situation: each [`Failure`](crate::failure::Failure)'s
//! hint is chosen here from what was observed — the error's kind, who runs
//! `kexec` ([`Situation`]: effective UID and capabilities), on which
//! architecture, whether the state is the running system's or a capture's —
//! never guessed from the failure alone. Each function is pure and tested
//! per state below; `kexec doctor` shares [`Situation`].
//!
//! For example, `/sys/firmware/fdt` missing on an x86 machine is not a
//! permission problem (root gets the same): the machine has no device tree,
//! and the way forward is `--sysroot` or `--dtb`.

use std::io;

use kexec_core::machine::status::{self, Credentials, CAP_SYS_ADMIN};

use crate::sysroot::{self, Sysroot};

/// Who runs `kexec`, on what, reading which state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situation {
    /// The state is the running system's (not a capture's).
    pub live: bool,
    /// The machine's architecture (Rust's name, `aarch64`), when known.
    pub arch: Option<String>,
    /// This process's credentials (`/proc/self/status`), when readable.
    pub creds: Credentials,
}

impl Situation {
    /// The situation of a command reading `root`: this process's
    /// credentials, `root`'s architecture.
    pub fn of(root: &Sysroot) -> Self {
        let creds = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|t| status::parse(&t).ok())
            .unwrap_or_default();
        Self {
            live: root.is_live(),
            arch: root.arch(),
            creds,
        }
    }

    /// The running system's situation.
    pub fn live() -> Self {
        Self::of(&Sysroot::live())
    }

    /// The machine is known not to be arm64: its name.
    pub fn foreign_arch(&self) -> Option<&str> {
        self.arch.as_deref().filter(|a| *a != "aarch64")
    }

    /// Known to run as root (effective UID 0).
    fn root(&self) -> bool {
        self.creds.euid == Some(0)
    }
}

/// What to tell a user on an `arch` machine that is not arm64.
pub fn not_arm64(arch: &str) -> String {
    format!(
        "this is an {arch} machine, not arm64: kexec-rs loads and boots arm64 kernels on arm64 \
         machines; to plan for one from here, capture it there with `kexec capture-sysroot DIR` \
         and use --sysroot DIR (with --dry-run, or `kexec doctor --sysroot DIR`)"
    )
}

/// A state file (`rel`, needed because `need`) could not be read with an
/// error of `kind`.
pub fn state_unreadable(rel: &str, need: &str, kind: io::ErrorKind, s: &Situation) -> String {
    let fdt = rel == sysroot::FDT;
    if !s.live {
        return if kind == io::ErrorKind::NotFound {
            let more = if fdt {
                ", or give one with --dtb FILE"
            } else {
                ""
            };
            format!(
                "{need}; the capture lacks it: capture it with `kexec capture-sysroot DIR` on the \
                 target{more}"
            )
        } else {
            format!("{need}; check the capture's files")
        };
    }
    match kind {
        io::ErrorKind::NotFound if fdt => match s.foreign_arch() {
            Some(arch) => format!(
                "this is an {arch} machine, not arm64: it has no device tree; plan for an arm64 \
                 machine from its capture (`kexec capture-sysroot DIR` there, --sysroot DIR \
                 here), or give a device tree with --dtb FILE"
            ),
            None => "the running kernel did not publish its device tree (drivers/of/fdt.c \
                     leaves out /sys/firmware/fdt when the tree changed after boot): give one \
                     with --dtb FILE"
                .to_owned(),
        },
        io::ErrorKind::NotFound => format!("{need}; is /proc (and /sys) mounted?"),
        io::ErrorKind::PermissionDenied if s.root() => format!(
            "{need}; root was refused: a security module (SELinux, AppArmor) or a container's \
             restrictions forbid it"
        ),
        io::ErrorKind::PermissionDenied => format!("{need}; run as root"),
        _ => need.to_owned(),
    }
}

/// `/proc/iomem` shows every address as zero.
pub fn hidden_addresses(s: &Situation) -> String {
    if !s.live {
        "the capture was made without CAP_SYS_ADMIN: capture it again as root".to_owned()
    } else if s.root() && s.creds.has(CAP_SYS_ADMIN) == Some(false) {
        "this root lacks CAP_SYS_ADMIN (a container?), and the kernel shows zeros without it \
         (kernel/resource.c): run kexec where it has CAP_SYS_ADMIN"
            .to_owned()
    } else {
        "run as root: unprivileged readers see zeros".to_owned()
    }
}

/// A file the user named (kernel, initrd, `--dtb`) could not be read.
pub fn input_unreadable(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::NotFound => "check the path",
        io::ErrorKind::PermissionDenied => "this user may not read it: check its permissions",
        io::ErrorKind::IsADirectory => "give a file, not a directory",
        _ => "check the file",
    }
}

/// A crash load found no `Crash kernel` range; `cmdline` is the (running
/// or captured) kernel's command line, if read.
pub fn no_crash_region(cmdline: Option<&str>, s: &Situation) -> String {
    let asked =
        cmdline.is_some_and(|c| c.split_whitespace().any(|w| w.starts_with("crashkernel=")));
    match (asked, s.live) {
        (true, _) => "crashkernel= is on the command line but the kernel reserved nothing: the \
                      size did not fit (see `dmesg | grep -i crashkernel`); try a smaller one"
            .to_owned(),
        (false, true) => {
            "boot the running kernel with crashkernel=SIZE (e.g. crashkernel=256M)".to_owned()
        }
        (false, false) => {
            "the captured machine was booted without crashkernel=SIZE: nothing is reserved there"
                .to_owned()
        }
    }
}

/// The kernel refused a kexec call with EPERM for `reason`.
pub fn permission(reason: kexec_sys::PermissionReason, s: &Situation) -> String {
    use kexec_sys::PermissionReason as R;
    match reason {
        R::MissingCapability if s.root() => {
            "root here lacks CAP_SYS_BOOT (a container, or a reduced capability bounding set): \
             run kexec on the host, or give it CAP_SYS_BOOT"
                .to_owned()
        }
        R::MissingCapability => "run kexec as root".to_owned(),
        R::LoadDisabled => "kernel.kexec_load_disabled cannot be reset: nothing can be loaded \
                            until the next boot (boot without the setting that writes 1 to it)"
            .to_owned(),
        R::LoadLimit => "kernel.kexec_load_limit_* can only be lowered: nothing more of this kind \
                         loads until the next boot"
            .to_owned(),
        R::Lockdown => "under lockdown only kexec_file_load of a signed plain Image can load: \
                        `kexec -s` or the default -a, without --dtb and -i"
            .to_owned(),
        R::Unknown => "a security module (SELinux, AppArmor, ...) may forbid kexec".to_owned(),
    }
}

/// The kernel answered ENOSYS/EOPNOTSUPP to `call`.
pub fn not_supported(call: &str, s: &Situation) -> String {
    if let Some(arch) = s.foreign_arch() {
        return not_arm64(arch);
    }
    match call {
        "kexec_file_load" => "this kernel lacks kexec_file_load (CONFIG_KEXEC_FILE): use -c \
                              (kexec_load), or the default -a, which falls back to it"
            .to_owned(),
        "reboot" => "this kernel has no kexec support (CONFIG_KEXEC_CORE)".to_owned(),
        _ => "this kernel lacks kexec_load (built without CONFIG_KEXEC): `kexec doctor` shows \
              what it has"
            .to_owned(),
    }
}

/// The kernel answered EBUSY; `stuck_cpus` says whether the device tree
/// shows CPUs that cannot be taken offline (spin-table with several CPUs),
/// when known.
pub fn busy(stuck_cpus: Option<bool>) -> String {
    if stuck_cpus == Some(true) {
        "the secondary CPUs use spin-table, which cannot take a CPU offline, so the kernel \
         refuses kexec loads (arch/arm64/kernel/machine_kexec.c): firmware with PSCI, or \
         nr_cpus=1, is needed (`kexec doctor` shows the CPUs)"
            .to_owned()
    } else {
        "another kexec load or exec holds the kernel's kexec lock: retry when it is done".to_owned()
    }
}

/// The kernel answered EADDRNOTAVAIL to a load of `crash` (or normal) kind.
pub fn address_not_available(crash: bool) -> &'static str {
    if crash {
        "the crash kernel's segments did not fit its region: boot with a larger crashkernel= \
         reservation"
    } else {
        "a segment lies beyond the memory the kernel allows kexec to use: this is a bug in \
         kexec-rs; please report it with `kexec capture-sysroot`"
    }
}

/// `/sys/kernel/kexec_loaded` (or `_crash_loaded`) could not be read with
/// an error of `kind`.
pub fn kexec_state_unreadable(kind: io::ErrorKind, s: &Situation) -> String {
    if !s.live {
        return if kind == io::ErrorKind::NotFound {
            "the capture lacks it: capture it again with `kexec capture-sysroot DIR`".to_owned()
        } else {
            "check the capture's files".to_owned()
        };
    }
    match (kind, s.foreign_arch()) {
        (_, Some(arch)) => not_arm64(arch),
        (io::ErrorKind::NotFound, None) => "the running kernel has no kexec support: \
                                            /sys/kernel/kexec_loaded exists only with \
                                            CONFIG_KEXEC_CORE (set by CONFIG_KEXEC)"
            .to_owned(),
        _ => "is /sys mounted?".to_owned(),
    }
}

/// No kernel of the `crash` (or normal) kind is loaded.
pub fn nothing_loaded(crash: bool, s: &Situation) -> String {
    match (s.foreign_arch(), crash) {
        (Some(arch), _) => not_arm64(arch),
        (None, false) => "load one first with `kexec -l KERNEL ...`".to_owned(),
        (None, true) => "load one with `kexec -p KERNEL ...` (the running kernel needs a \
                         crashkernel= reservation)"
            .to_owned(),
    }
}

/// `capture-sysroot` could not capture `/proc/iomem`: `read` is the read's
/// error kind (`None` if it was read but not written).
pub fn iomem_not_captured(read: Option<io::ErrorKind>, s: &Situation) -> String {
    match read {
        None => "the destination directory is not writable: choose another DIR".to_owned(),
        Some(io::ErrorKind::PermissionDenied) if s.root() => {
            "root was refused: a security module or a container forbids it".to_owned()
        }
        Some(io::ErrorKind::PermissionDenied) => "run as root".to_owned(),
        Some(io::ErrorKind::NotFound) => "is /proc mounted?".to_owned(),
        Some(_) => "check /proc".to_owned(),
    }
}

/// A vmcore at `path` (`/proc/vmcore` when `proc_vmcore`) could not be
/// opened with an error of `kind`.
pub fn vmcore_unopenable(proc_vmcore: bool, kind: io::ErrorKind, s: &Situation) -> String {
    match (proc_vmcore, kind) {
        (true, io::ErrorKind::NotFound) => "/proc/vmcore exists only in a crash kernel booted \
                                            by `kexec -p` after a panic; give a dump file \
                                            instead"
            .to_owned(),
        (_, io::ErrorKind::PermissionDenied) if !s.root() => {
            "run as root (/proc/vmcore and dump files are usually root's)".to_owned()
        }
        (_, io::ErrorKind::PermissionDenied) => {
            "root was refused: a security module (or lockdown) forbids it".to_owned()
        }
        _ => "check the path".to_owned(),
    }
}

/// A file to write (`--svg FILE`) could not be written with an error of `kind`.
pub fn output_file_unwritable(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::NotFound => "its directory does not exist: create it, or give another path",
        io::ErrorKind::PermissionDenied => "this user may not write there: give another path",
        io::ErrorKind::IsADirectory => "give a file name, not a directory",
        _ => "give a path in a directory you can write to",
    }
}

/// `--serial TTY`: `/sys/class/tty/TTY/iomem_base` could not be read with
/// an error of `kind`.
pub fn serial_unreadable(tty: &str, kind: io::ErrorKind, s: &Situation) -> String {
    match (kind, s.live) {
        (io::ErrorKind::NotFound, true) => format!(
            "no tty {tty} with a memory-mapped UART here (see `ls /sys/class/tty`); or drop \
             --serial: the purgatory prints on the PL011 of the device tree's stdout-path"
        ),
        (io::ErrorKind::NotFound, false) => {
            format!("the capture has no /sys/class/tty/{tty}: drop --serial for a dry run of it")
        }
        _ => "drop --serial: the purgatory prints on the PL011 of the device tree's stdout-path"
            .to_owned(),
    }
}

/// Writing the output failed with `kind`.
pub fn output_failed(kind: io::ErrorKind) -> &'static str {
    if kind == io::ErrorKind::BrokenPipe {
        "the program reading kexec's output closed it before the end"
    } else {
        "check where the output goes (a full disk?)"
    }
}

/// A state file the kernel wrote (`live`) or a capture holds could not be
/// parsed.
pub fn malformed_state(live: bool) -> &'static str {
    if live {
        "the running kernel wrote something kexec-rs does not understand: please report it with \
         `kexec capture-sysroot`"
    } else {
        "the capture's file is malformed: capture it again"
    }
}

#[cfg(test)]
mod tests;

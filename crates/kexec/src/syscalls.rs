//! Carrying out a plan: `kexec_load`, `kexec_file_load`, unload, exec and
//! the loaded-kernel status, with every syscall error turned into a
//! [`Failure`].
//!
//! Everything that can be checked is checked before the one `kexec_load`
//! call, which the kernel applies atomically: on any error nothing new is
//! loaded and a previously loaded kernel stays loaded.

use kexec_core::plan::{LoadMode, LoadPlan, SegmentKind};
use kexec_sys::Segment;

use crate::failure::Failure;
use crate::hints::{self, Situation};
use crate::mode::LoadModeExt;
use crate::sysroot::{self, Sysroot};

/// What to do about a refused syscall (about a crash kernel if `crash`),
/// on the running system.
pub(crate) fn syscall_failure(call: &str, err: &kexec_sys::Error, crash: bool) -> Failure {
    let situation = Situation::live();
    let stuck = matches!(err, kexec_sys::Error::Busy)
        .then(|| spin_table_smp(&Sysroot::live()))
        .flatten();
    Failure::system(call, err, failure_hint(call, err, crash, &situation, stuck))
}

/// The hint for `err` from `call` in `situation`; `stuck`: whether the CPUs
/// use spin-table (EBUSY's cause), when known.
fn failure_hint(
    call: &str,
    err: &kexec_sys::Error,
    crash: bool,
    situation: &Situation,
    stuck: Option<bool>,
) -> String {
    use kexec_sys::Error;
    match err {
        Error::PermissionDenied(reason) => hints::permission(*reason, situation),
        Error::Busy => hints::busy(stuck),
        Error::NotSupported(_) => hints::not_supported(call, situation),
        Error::AddressNotAvailable => hints::address_not_available(crash).to_owned(),
        Error::OutOfMemory => "free some memory or use a smaller initrd".to_owned(),
        _ => "run `kexec -l ... --dry-run` to see the plan that was refused".to_owned(),
    }
}

/// Whether the device tree's CPUs use spin-table with more than one CPU
/// (the kernel then refuses kexec loads with EBUSY); `None` when unknown.
fn spin_table_smp(root: &Sysroot) -> Option<bool> {
    let boot = kexec_core::fdt::cpu_boot(&root.read(sysroot::FDT).ok()?).ok()?;
    Some(
        boot.cpus.len() > 1
            && boot
                .cpus
                .iter()
                .any(|c| c.enable_method.as_deref() == Some("spin-table")),
    )
}

/// The bytes of each planned segment, by kind (the plan keeps only digests).
#[derive(Debug, Default)]
pub struct Buffers<'a> {
    /// The kernel Image.
    pub kernel: &'a [u8],
    /// The initrd.
    pub initrd: Option<&'a [u8]>,
    /// The edited device tree.
    pub dtb: &'a [u8],
    /// The patched purgatory.
    pub purgatory: Option<&'a [u8]>,
    /// The ELF core header of a crash load.
    pub elfcorehdr: Option<&'a [u8]>,
}

impl<'a> Buffers<'a> {
    pub(crate) fn get(&self, kind: SegmentKind) -> Option<&'a [u8]> {
        match kind {
            SegmentKind::Kernel => Some(self.kernel),
            SegmentKind::Initrd => self.initrd,
            SegmentKind::Dtb => Some(self.dtb),
            SegmentKind::Purgatory => self.purgatory,
            SegmentKind::ElfCoreHeader => self.elfcorehdr,
        }
    }
}

/// Re-check the whole plan, pair each segment with its bytes, and hand them
/// to the kernel with `kexec_load`.
pub fn kexec_load(plan: &LoadPlan, buffers: &Buffers<'_>) -> Result<(), Failure> {
    let failed: Vec<String> = plan
        .check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.rule.id(), c.detail))
        .collect();
    if !failed.is_empty() {
        return Err(Failure::other(
            "load plan",
            format!(
                "refusing to load a plan that breaks rules: {}",
                failed.join("; ")
            ),
            "this is a bug in kexec-rs; please report it with `kexec capture-sysroot`",
        ));
    }
    let mut segments = Vec::with_capacity(plan.segments.len());
    for s in &plan.segments {
        let buf = buffers
            .get(s.kind)
            .filter(|b| b.len() as u64 == s.bufsz)
            .ok_or_else(|| {
                Failure::other(
                    "load plan",
                    format!("no {}-byte buffer for the {} segment", s.bufsz, s.kind),
                    "this is a bug in kexec-rs",
                )
            })?;
        segments.push(Segment {
            buf,
            mem: s.mem,
            memsz: s.memsz,
        });
    }
    kexec_sys::kexec_load(plan.entry, &segments, plan.mode.image())
        .map_err(|e| syscall_failure("kexec_load", &e, plan.mode == LoadMode::Crash))
}

/// `kexec_file_load` of `kernel` (a file or a sealed memfd), `initrd` and
/// `cmdline`: the kernel loads, verifies and places the image itself. The
/// error is returned as is for the caller to explain (kfile.rs).
pub fn kexec_file_load(
    kernel: &std::fs::File,
    initrd: Option<&std::fs::File>,
    cmdline: &[u8],
    mode: LoadMode,
    no_cma: bool,
) -> Result<(), kexec_sys::Error> {
    let extra = if no_cma {
        kexec_sys::KEXEC_FILE_NO_CMA
    } else {
        0
    };
    kexec_sys::kexec_file_load(kernel, initrd, cmdline, mode.image(), extra)
}

/// `kexec -u`: unload the normal (or, with `-p`, the crash) kernel, with
/// `kexec_file_load(KEXEC_FILE_UNLOAD)` (`file`), `kexec_load` with no
/// segments, or (`auto`) the first and, where the kernel lacks it
/// (ENOSYS), the second. Either unloads whichever way the image was loaded
/// (both free `kexec_image`/`kexec_crash_image`, kernel/kexec.c and
/// kernel/kexec_file.c).
pub fn unload(mode: LoadMode, file: bool, auto: bool) -> Result<String, Failure> {
    let result = if file || auto {
        match kexec_sys::file_unload(mode.image()) {
            Err(e) if auto && matches!(e, kexec_sys::Error::NotSupported(_)) => {
                kexec_sys::unload(mode.image())
            }
            other => other,
        }
    } else {
        kexec_sys::unload(mode.image())
    };
    result.map_err(|e| syscall_failure("unload", &e, mode == LoadMode::Crash))?;
    Ok(String::new())
}

/// Whether a kernel of `mode` is loaded, per `/sys/kernel`.
pub fn is_loaded(root: &Sysroot, mode: LoadMode) -> Result<bool, Failure> {
    let file = mode.loaded_flag();
    let path = root.path(file).display().to_string();
    match root.read_text(file) {
        Ok(text) => match text.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(Failure::system(
                path,
                format!("neither 0 nor 1: {other:?}"),
                hints::malformed_state(root.is_live()),
            )),
        },
        Err(e) => Err(Failure::system(
            path,
            format!("cannot read the kexec state: {e}"),
            hints::kexec_state_unreadable(e.kind(), &Situation::of(root)),
        )),
    }
}

/// Whether the normal kernel is loaded, or the failure to report: kexec-tools
/// checks this before shutting down or booting ("Nothing has been loaded!").
fn ensure_loaded(root: &Sysroot) -> Result<(), Failure> {
    if is_loaded(root, LoadMode::Normal)? {
        Ok(())
    } else {
        Err(Failure::system(
            root.path(LoadMode::Normal.loaded_flag())
                .display()
                .to_string(),
            "nothing has been loaded",
            hints::nothing_loaded(false, &Situation::of(root)),
        ))
    }
}

/// `-e`/`-f`: check a kernel is loaded, sync (unless `-y`), take network
/// interfaces down (unless `-x`; a failure there is reported and ignored,
/// as kexec-tools ignores it), then reboot into the loaded kernel. Returns
/// only on failure.
pub fn exec(root: &Sysroot, sync: bool, ifdown: bool) -> Failure {
    if let Err(f) = ensure_loaded(root) {
        return f;
    }
    if sync {
        kexec_sys::sync();
    }
    if ifdown {
        if let Err(e) = kexec_sys::take_interfaces_down() {
            eprintln!("kexec: taking network interfaces down: {e} (going on)");
        }
    }
    syscall_failure("reboot", &kexec_sys::reboot_into_loaded_kernel(), false)
}

/// Where kexec-tools looks for `shutdown` (its `my_shutdown`), in order.
pub const SHUTDOWN_PATHS: [&str; 3] = ["/sbin/shutdown", "/etc/shutdown", "/bin/shutdown"];

/// A bare `kexec KERNEL`, after the load: run `shutdown -r now`, so the
/// init system stops everything and then reboots into the loaded kernel
/// (systemd, and sysvinit with Debian's kexec hook, do so when a kernel is
/// loaded). Returns only on failure.
pub fn shutdown(root: &Sysroot) -> Failure {
    use std::os::unix::process::CommandExt;
    if let Err(f) = ensure_loaded(root) {
        return f;
    }
    let mut tried = Vec::new();
    for path in SHUTDOWN_PATHS {
        let e = std::process::Command::new(path)
            .arg0("shutdown")
            .args(["-r", "now"])
            .exec();
        tried.push(format!("{path}: {e}"));
    }
    Failure::system(
        "shutdown",
        format!("cannot run shutdown -r now ({})", tried.join("; ")),
        "the kernel is loaded: boot it with `kexec -e`",
    )
}

#[cfg(test)]
mod tests {
    use kexec_core::machine::status::Credentials;
    use kexec_sys::{Error, PermissionReason};

    use super::*;

    fn arm64(euid: u32) -> Situation {
        Situation {
            live: true,
            arch: Some("aarch64".into()),
            creds: Credentials {
                euid: Some(euid),
                cap_eff: Some(0),
            },
        }
    }

    #[test]
    fn each_refusal_gets_the_hint_for_its_reason() {
        let hint = |r| {
            failure_hint(
                "kexec_load",
                &Error::PermissionDenied(r),
                false,
                &arm64(1000),
                None,
            )
        };
        assert!(hint(PermissionReason::Lockdown).starts_with("under lockdown only kexec_file_load"));
        assert_eq!(
            hint(PermissionReason::MissingCapability),
            "run kexec as root"
        );
        // Root without CAP_SYS_BOOT is not told to become root.
        let root = failure_hint(
            "kexec_load",
            &Error::PermissionDenied(PermissionReason::MissingCapability),
            false,
            &arm64(0),
            None,
        );
        assert!(root.starts_with("root here lacks CAP_SYS_BOOT"), "{root}");
        assert!(hint(PermissionReason::LoadDisabled).contains("until the next boot"));
        assert!(hint(PermissionReason::LoadLimit).contains("kexec_load_limit"));
        assert!(hint(PermissionReason::Unknown).contains("security module"));
        let busy = |stuck| failure_hint("kexec_load", &Error::Busy, false, &arm64(0), stuck);
        assert!(busy(Some(true)).contains("spin-table"));
        assert!(busy(Some(false)).contains("retry"));
        let addr = |crash| {
            failure_hint(
                "kexec_load",
                &Error::AddressNotAvailable,
                crash,
                &arm64(0),
                None,
            )
        };
        assert!(addr(true).contains("crashkernel="));
        assert!(!addr(false).contains("crashkernel="), "{}", addr(false));
        let x86 = Situation {
            arch: Some("x86_64".into()),
            ..arm64(0)
        };
        let missing = failure_hint("kexec_load", &Error::NotSupported(""), false, &x86, None);
        assert!(
            missing.starts_with("this is an x86_64 machine, not arm64"),
            "{missing}"
        );
        let f = syscall_failure(
            "kexec_load",
            &Error::PermissionDenied(PermissionReason::Lockdown),
            false,
        );
        assert_eq!(f.code, crate::failure::EXIT_SYSTEM);
        assert!(
            f.problem.contains("the kernel is locked down"),
            "{}",
            f.problem
        );
    }
}

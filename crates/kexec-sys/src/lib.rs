//! The syscall layer of the loader: the only userspace crate allowed `unsafe`.
//!
//! It wraps `kexec_load(2)` (and unloading, a load of zero segments),
//! `kexec_file_load(2)` and `reboot(LINUX_REBOOT_CMD_KEXEC)`, and reads
//! `CTR_EL0` for `kexec doctor`
//! ([`ctr_el0`]). Every failure is mapped to an
//! [`Error`] that says what the user can do about it: for `EPERM` it checks
//! which of "no `CAP_SYS_BOOT`", `kernel.kexec_load_disabled`,
//! `kernel.kexec_load_limit_*` and kernel lockdown applies
//! ([`PermissionReason`]).
//!
//! ABI: include/uapi/linux/kexec.h (`struct kexec_segment`, `KEXEC_*` flags),
//! include/uapi/linux/reboot.h (`LINUX_REBOOT_*`).
#![deny(missing_docs)]

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd};

/// `KEXEC_ON_CRASH`: load the kernel to run after a panic (kdump).
pub const KEXEC_ON_CRASH: u64 = 0x0000_0001;
/// `KEXEC_ARCH_AARCH64`: the architecture field (high 16 bits) for arm64.
pub const KEXEC_ARCH_AARCH64: u64 = 183 << 16;
/// `KEXEC_SEGMENT_MAX`: the most segments one load may carry.
///
/// A copy of `kexec_core::layout::KEXEC_SEGMENT_MAX`, which owns the plan
/// rule: this crate does not depend on kexec-core. A kexec-core test keeps
/// the two equal.
pub const KEXEC_SEGMENT_MAX: usize = 16;
/// `KEXEC_FILE_UNLOAD`.
pub const KEXEC_FILE_UNLOAD: u32 = 0x0000_0001;
/// `KEXEC_FILE_ON_CRASH`.
pub const KEXEC_FILE_ON_CRASH: u32 = 0x0000_0002;
/// `KEXEC_FILE_NO_INITRAMFS`.
pub const KEXEC_FILE_NO_INITRAMFS: u32 = 0x0000_0004;
/// `KEXEC_FILE_NO_CMA` (Linux 6.17, include/uapi/linux/kexec.h): do not
/// place the segments in CMA memory. Older kernels refuse it with EINVAL.
pub const KEXEC_FILE_NO_CMA: u32 = 0x0000_0010;
/// `kexec_file_load`'s syscall number (libc lacks it for musl on aarch64):
/// include/uapi/asm-generic/unistd.h `__NR_kexec_file_load`.
#[cfg(target_arch = "aarch64")]
const SYS_KEXEC_FILE_LOAD: libc::c_long = 294;
/// arch/x86/entry/syscalls/syscall_64.tbl (host builds and tests).
#[cfg(target_arch = "x86_64")]
const SYS_KEXEC_FILE_LOAD: libc::c_long = 320;
#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
const SYS_KEXEC_FILE_LOAD: libc::c_long = libc::SYS_kexec_file_load;
/// `CAP_SYS_BOOT`, the capability every kexec syscall needs.
pub const CAP_SYS_BOOT: u32 = 22;

/// One segment of a `kexec_load`: bytes to copy to a physical range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The bytes; the kernel zero-fills `memsz - buf.len()` after them.
    pub buf: &'a [u8],
    /// Physical destination, page aligned.
    pub mem: u64,
    /// Size of the destination, page aligned, at least `buf.len()`.
    pub memsz: u64,
}

/// `struct kexec_segment` of include/uapi/linux/kexec.h.
#[repr(C)]
#[derive(Debug)]
struct RawSegment {
    buf: *const libc::c_void,
    bufsz: libc::size_t,
    mem: libc::c_ulong,
    memsz: libc::size_t,
}

/// Which kexec image a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// The kernel `kexec -e` boots.
    Normal,
    /// The crash (kdump) kernel a panic boots.
    Crash,
}

impl Image {
    /// The image's bit of `kexec_load`'s flags: `KEXEC_ON_CRASH` or none.
    pub fn kexec_load_flags(self) -> u64 {
        match self {
            Self::Normal => 0,
            Self::Crash => KEXEC_ON_CRASH,
        }
    }

    /// The image's bit of `kexec_file_load`'s flags: `KEXEC_FILE_ON_CRASH` or none.
    pub fn kexec_file_flags(self) -> u32 {
        match self {
            Self::Normal => 0,
            Self::Crash => KEXEC_FILE_ON_CRASH,
        }
    }
}

/// Why the kernel said `EPERM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionReason {
    /// The process lacks `CAP_SYS_BOOT` (usually: not root).
    MissingCapability,
    /// `/proc/sys/kernel/kexec_load_disabled` is 1 (it cannot be reset until reboot).
    LoadDisabled,
    /// `/proc/sys/kernel/kexec_load_limit_reboot` (or `_panic`, for a crash
    /// kernel) is 0: no more loads of this kind until reboot (Linux 6.7+).
    LoadLimit,
    /// The kernel is locked down; only `kexec_file_load` of a signed image works.
    Lockdown,
    /// None of the above could be confirmed.
    Unknown,
}

impl std::fmt::Display for PermissionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingCapability => "this process lacks CAP_SYS_BOOT",
            Self::LoadDisabled => {
                "kexec loading is disabled (kernel.kexec_load_disabled = 1) until the next reboot"
            }
            Self::LoadLimit => {
                "the kernel's kexec load limit is used up (kernel.kexec_load_limit_reboot or \
                 _panic = 0) until the next reboot"
            }
            Self::Lockdown => {
                "the kernel is locked down: kexec_load is refused; only kexec_file_load of a signed Image can load"
            }
            Self::Unknown => "the kernel refused permission (a security module may forbid kexec)",
        })
    }
}

/// A kexec syscall failed; each variant explains what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// EPERM.
    #[error("permission denied: {0}")]
    PermissionDenied(PermissionReason),
    /// EBUSY.
    #[error("the kernel is busy: another kexec load or exec is in progress, or CPUs could not be taken offline")]
    Busy,
    /// EINVAL.
    #[error("the kernel rejected the load as invalid (segments overlap, are unaligned, or exceed memory)")]
    InvalidArgument,
    /// EADDRNOTAVAIL.
    #[error("a segment or the entry point lies outside the memory the kernel allows (for -p: outside the crash kernel region)")]
    AddressNotAvailable,
    /// ENOMEM.
    #[error("the kernel could not allocate memory for the image")]
    OutOfMemory,
    /// ENOSYS / EOPNOTSUPP.
    #[error("this kernel does not support that kexec call (built without CONFIG_KEXEC{0})")]
    NotSupported(&'static str),
    /// EKEYREJECTED / EBADMSG / ENOKEY / ELIBBAD / ENODATA from
    /// kexec_file_load: `kimage_validate_signature` (kernel/kexec_file.c)
    /// returns the PE verifier's error when signatures are enforced
    /// (CONFIG_KEXEC_SIG_FORCE); ENODATA is "no signature"
    /// (crypto/asymmetric_keys/verify_pefile.c).
    #[error("the kernel rejected the image's signature ({0})")]
    SignatureRejected(&'static str),
    /// ENOEXEC from kexec_file_load: no loader of the running kernel takes
    /// this image (`kexec_image_probe_default`, kernel/kexec_file.c).
    #[error("the kernel's file loader does not recognise this image format")]
    UnknownImageFormat,
    /// More segments than `KEXEC_SEGMENT_MAX`.
    #[error("{0} segments: a kexec load carries at most {KEXEC_SEGMENT_MAX}")]
    TooManySegments(usize),
    /// An address or size does not fit this platform's `unsigned long`.
    #[error("address or size {0:#x} does not fit this platform's unsigned long")]
    AddressTooWide(u64),
    /// Any other errno.
    #[error("{call} failed: {source}")]
    Other {
        /// The syscall.
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl Error {
    /// Map the errno of a failed call (about `image`; `None` for `reboot`)
    /// to an explanation.
    pub fn from_os(call: &'static str, image: Option<Image>, err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::EPERM) => Self::PermissionDenied(diagnose_permission_live(image)),
            Some(libc::EBUSY) => Self::Busy,
            Some(libc::EINVAL) => Self::InvalidArgument,
            Some(libc::EADDRNOTAVAIL) => Self::AddressNotAvailable,
            Some(libc::ENOMEM) => Self::OutOfMemory,
            Some(libc::ENOSYS | libc::EOPNOTSUPP) => {
                Self::NotSupported(if call == "kexec_file_load" {
                    "_FILE"
                } else {
                    ""
                })
            }
            Some(libc::EKEYREJECTED) => {
                Self::SignatureRejected("EKEYREJECTED: not signed by a trusted key")
            }
            Some(libc::ENOKEY) => {
                Self::SignatureRejected("ENOKEY: no trusted key matches the signature")
            }
            Some(libc::EBADMSG) => Self::SignatureRejected("EBADMSG: malformed signature"),
            Some(libc::ELIBBAD) => {
                Self::SignatureRejected("ELIBBAD: the PE file's signature wrapper is malformed")
            }
            Some(libc::ENODATA) if call == "kexec_file_load" => {
                Self::SignatureRejected("ENODATA: the image is not signed")
            }
            Some(libc::ENOEXEC) if call == "kexec_file_load" => Self::UnknownImageFormat,
            _ => Self::Other { call, source: err },
        }
    }
}

/// What [`diagnose_permission`] reads: the text of each file (any may be
/// missing: `""`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PermissionState<'a> {
    /// `/proc/self/status`.
    pub status: &'a str,
    /// `/proc/sys/kernel/kexec_load_disabled`.
    pub load_disabled: &'a str,
    /// `/proc/sys/kernel/kexec_load_limit_reboot` or `_panic`, the one of
    /// the image the call was about (Linux 6.7+; `""` before, or for `reboot`).
    pub load_limit: &'a str,
    /// `/sys/kernel/security/lockdown` (`""` for `reboot`, which lockdown
    /// does not restrict).
    pub lockdown: &'a str,
}

/// Decide why `EPERM` happened, in the order the kernel checks
/// (`kexec_load_permitted`, kernel/kexec_core.c, then
/// `security_locked_down(LOCKDOWN_KEXEC)`).
pub fn diagnose_permission(state: &PermissionState<'_>) -> PermissionReason {
    let cap_eff = state
        .status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    if cap_eff.is_some_and(|caps| caps & (1 << CAP_SYS_BOOT) == 0) {
        return PermissionReason::MissingCapability;
    }
    if state.load_disabled.trim() == "1" {
        return PermissionReason::LoadDisabled;
    }
    if state.load_limit.trim() == "0" {
        return PermissionReason::LoadLimit;
    }
    let lockdown = state.lockdown;
    // The active mode is the bracketed one: "none [integrity] confidentiality".
    let active = lockdown
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .unwrap_or("[none]");
    if active != "[none]" {
        return PermissionReason::Lockdown;
    }
    PermissionReason::Unknown
}

/// [`diagnose_permission`] on the running system, for a call about
/// `image`, or `reboot` (`None`: only the capability matters, neither
/// `kexec_load_disabled` nor lockdown stop a loaded kernel from booting:
/// `SYSCALL_DEFINE4(reboot)`, kernel/reboot.c).
fn diagnose_permission_live(image: Option<Image>) -> PermissionReason {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let status = read("/proc/self/status");
    let Some(image) = image else {
        return diagnose_permission(&PermissionState {
            status: &status,
            ..PermissionState::default()
        });
    };
    let limit = match image {
        Image::Normal => "/proc/sys/kernel/kexec_load_limit_reboot",
        Image::Crash => "/proc/sys/kernel/kexec_load_limit_panic",
    };
    diagnose_permission(&PermissionState {
        status: &status,
        load_disabled: &read("/proc/sys/kernel/kexec_load_disabled"),
        load_limit: &read(limit),
        lockdown: &read("/sys/kernel/security/lockdown"),
    })
}

/// `CTR_EL0` of the CPU this runs on (`mrs`), for `kexec doctor`; `None` on
/// other architectures. Linux lets EL0 read it: it sets `SCTLR_EL1.UCT`
/// (`INIT_SCTLR_EL1_MMU_ON`, arch/arm64/include/asm/sysreg.h), or traps
/// the read and returns the system-wide safe value where CPUs differ
/// (`ctr_read_handler`, arch/arm64/kernel/traps.c).
pub fn ctr_el0() -> Option<u64> {
    #[cfg(target_arch = "aarch64")]
    {
        let value: u64;
        // SAFETY: reading CTR_EL0 has no side effects and touches no memory;
        // EL0 access is enabled or emulated by Linux (see above).
        unsafe {
            std::arch::asm!("mrs {}, ctr_el0", out(reg) value, options(nomem, nostack, preserves_flags));
        }
        Some(value)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        None
    }
}

/// `Ok` for a syscall's 0, else the errno (read at once) explained.
fn syscall_result(call: &'static str, image: Image, ret: libc::c_long) -> Result<(), Error> {
    if ret == 0 {
        Ok(())
    } else {
        Err(Error::from_os(
            call,
            Some(image),
            io::Error::last_os_error(),
        ))
    }
}

/// `kexec_load(entry, segments, flags)`: hand the segments to the kernel.
///
/// The kernel copies the buffers during the call, so they need not outlive
/// it. A failed call leaves a previously loaded image in place.
pub fn kexec_load(entry: u64, segments: &[Segment<'_>], image: Image) -> Result<(), Error> {
    if segments.len() > KEXEC_SEGMENT_MAX {
        return Err(Error::TooManySegments(segments.len()));
    }
    let raw = segments
        .iter()
        .map(|s| {
            Ok(RawSegment {
                buf: s.buf.as_ptr().cast(),
                bufsz: s.buf.len(),
                mem: libc::c_ulong::try_from(s.mem).map_err(|_| Error::AddressTooWide(s.mem))?,
                memsz: libc::size_t::try_from(s.memsz)
                    .map_err(|_| Error::AddressTooWide(s.memsz))?,
            })
        })
        .collect::<Result<Vec<RawSegment>, Error>>()?;
    let entry = libc::c_ulong::try_from(entry).map_err(|_| Error::AddressTooWide(entry))?;
    let flags = image.kexec_load_flags() | KEXEC_ARCH_AARCH64;
    // SAFETY: `raw` is a live array of `raw.len()` `struct kexec_segment`s whose
    // `buf`/`bufsz` describe borrowed slices valid for the whole call; the
    // kernel only reads them (it copies the data before returning).
    let ret = unsafe { libc::syscall(libc::SYS_kexec_load, entry, raw.len(), raw.as_ptr(), flags) };
    syscall_result("kexec_load", image, ret)
}

/// Unload the normal or crash image (`kexec_load` with no segments).
pub fn unload(image: Image) -> Result<(), Error> {
    kexec_load(0, &[], image)
}

/// `kexec_file_load`: the kernel reads, verifies and places the image itself.
///
/// `cmdline` must not contain NUL; `initrd` `None` sets `KEXEC_FILE_NO_INITRAMFS`.
pub fn kexec_file_load(
    kernel: &File,
    initrd: Option<&File>,
    cmdline: &[u8],
    image: Image,
    extra_flags: u32,
) -> Result<(), Error> {
    let mut cmd = Vec::with_capacity(cmdline.len() + 1);
    cmd.extend_from_slice(cmdline);
    cmd.push(0);
    let mut flags = image.kexec_file_flags() | extra_flags;
    let initrd_fd = match initrd {
        Some(f) => f.as_raw_fd(),
        None => {
            flags |= KEXEC_FILE_NO_INITRAMFS;
            -1
        }
    };
    // SAFETY: the file descriptors are open for the duration of the call
    // (borrowed `File`s), `cmd` is a NUL-terminated buffer of `cmd.len()`
    // bytes (the length counts the NUL, as the ABI requires) that the kernel
    // only reads.
    let ret = unsafe {
        libc::syscall(
            SYS_KEXEC_FILE_LOAD,
            kernel.as_raw_fd(),
            initrd_fd,
            cmd.len() as libc::c_ulong,
            cmd.as_ptr(),
            libc::c_ulong::from(flags),
        )
    };
    syscall_result("kexec_file_load", image, ret)
}

/// A `kexec_file_load` flag no kernel defines (include/uapi/linux/kexec.h
/// defines bits 0-3): [`file_load_implemented`] probes with it.
const UNDEFINED_FILE_FLAG: libc::c_ulong = 1 << 31;

/// Whether the running kernel implements `kexec_file_load`, asked without
/// side effects: a call with an undefined flag is refused with EINVAL by a
/// kernel that has the call (the flags are checked right after the
/// permission check, before anything is read or loaded:
/// `SYSCALL_DEFINE5(kexec_file_load)` in kernel/kexec_file.c) and with
/// ENOSYS by one built without `CONFIG_KEXEC_FILE`. `None` when the answer
/// is something else (EPERM: no `CAP_SYS_BOOT`, or loading disabled).
pub fn file_load_implemented() -> Option<bool> {
    // SAFETY: no descriptor is read and the command-line pointer is null with
    // length 0; the kernel rejects the flags before touching either.
    let ret = unsafe {
        libc::syscall(
            SYS_KEXEC_FILE_LOAD,
            -1,
            -1,
            0 as libc::c_ulong,
            std::ptr::null::<u8>(),
            UNDEFINED_FILE_FLAG,
        )
    };
    probe_answer(ret, io::Error::last_os_error().raw_os_error())
}

/// [`file_load_implemented`]'s reading of the probe's result.
fn probe_answer(ret: libc::c_long, errno: Option<i32>) -> Option<bool> {
    match (ret, errno) {
        (0, _) => Some(true),
        (_, Some(libc::EINVAL)) => Some(true),
        (_, Some(libc::ENOSYS)) => Some(false),
        _ => None,
    }
}

/// A sealed in-memory file (`memfd_create` + `F_SEAL_*`) holding `bytes`,
/// for `kexec_file_load` of an image we decompressed: the kernel reads it
/// like a file, and the seals (no write, shrink or grow, no further seals)
/// guarantee nobody changes it between our checks and the kernel's read.
pub fn sealed_memfd(name: &str, bytes: &[u8]) -> io::Result<File> {
    let cname = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call; the
    // flags are valid memfd_create(2) flags.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns; the `File`
    // takes ownership and closes it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    file.rewind()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) on a descriptor we own, with an int argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// The seals of a memfd (`F_GET_SEALS`).
pub fn seals(file: &File) -> io::Result<i32> {
    // SAFETY: fcntl(F_GET_SEALS) on a borrowed open descriptor takes no pointer.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(seals)
}

/// Unload an image loaded with `kexec_file_load`.
pub fn file_unload(image: Image) -> Result<(), Error> {
    let flags = KEXEC_FILE_UNLOAD | image.kexec_file_flags();
    // SAFETY: with KEXEC_FILE_UNLOAD the kernel ignores the descriptors and
    // the (empty, null) command line.
    let ret = unsafe {
        libc::syscall(
            SYS_KEXEC_FILE_LOAD,
            -1,
            -1,
            0 as libc::c_ulong,
            std::ptr::null::<u8>(),
            libc::c_ulong::from(flags),
        )
    };
    syscall_result("kexec_file_load", image, ret)
}

mod ifdown;
pub mod mapped;
pub use ifdown::{ifdown_order, take_interfaces_down};

/// Flush file systems to disk (`sync(2)`), as `kexec -e` does before rebooting.
pub fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// `reboot(LINUX_REBOOT_CMD_KEXEC)`: jump to the loaded kernel. Returns only on failure.
pub fn reboot_into_loaded_kernel() -> Error {
    // SAFETY: reboot(2) with the KEXEC command takes no pointers; on success
    // it does not return.
    let ret = unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_KEXEC) };
    debug_assert!(ret != 0);
    Error::from_os("reboot", None, io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_STATUS: &str = "Name:\tkexec\nCapEff:\t000001ffffffffff\n";
    const USER_STATUS: &str = "Name:\tkexec\nCapEff:\t0000000000000000\n";

    fn diagnose(
        status: &str,
        load_disabled: &str,
        load_limit: &str,
        lockdown: &str,
    ) -> PermissionReason {
        diagnose_permission(&PermissionState {
            status,
            load_disabled,
            load_limit,
            lockdown,
        })
    }

    #[test]
    fn eperm_without_cap_sys_boot() {
        assert_eq!(
            diagnose(USER_STATUS, "0", "-1", ""),
            PermissionReason::MissingCapability
        );
        assert!(
            !PermissionReason::MissingCapability
                .to_string()
                .contains("root"),
            "the hint, not the problem, says what to do"
        );
    }

    #[test]
    fn eperm_with_load_disabled() {
        assert_eq!(
            diagnose(ROOT_STATUS, "1\n", "-1", ""),
            PermissionReason::LoadDisabled
        );
    }

    #[test]
    fn eperm_with_the_load_limit_used_up() {
        assert_eq!(
            diagnose(ROOT_STATUS, "0\n", "0\n", "[none] integrity"),
            PermissionReason::LoadLimit
        );
        // -1 is unlimited, 1 is one more load: neither refuses.
        for limit in ["-1\n", "1\n", ""] {
            assert_eq!(
                diagnose(ROOT_STATUS, "0\n", limit, "[none] integrity"),
                PermissionReason::Unknown,
                "{limit:?}"
            );
        }
    }

    #[test]
    fn eperm_under_lockdown() {
        let lockdown = "none [integrity] confidentiality\n";
        assert_eq!(
            diagnose(ROOT_STATUS, "0", "-1", lockdown),
            PermissionReason::Lockdown
        );
        let open = "[none] integrity confidentiality\n";
        assert_eq!(
            diagnose(ROOT_STATUS, "0", "-1", open),
            PermissionReason::Unknown
        );
        assert!(PermissionReason::Lockdown
            .to_string()
            .contains("only kexec_file_load of a signed Image"));
    }

    #[test]
    fn errno_mapping() {
        let e = |n| {
            Error::from_os(
                "kexec_load",
                Some(Image::Normal),
                io::Error::from_raw_os_error(n),
            )
        };
        assert!(matches!(e(libc::EBUSY), Error::Busy));
        assert!(matches!(e(libc::EADDRNOTAVAIL), Error::AddressNotAvailable));
        assert!(matches!(e(libc::ENOSYS), Error::NotSupported("")));
        assert!(matches!(e(libc::ENOMEM), Error::OutOfMemory));
        assert!(matches!(
            e(libc::EIO),
            Error::Other {
                call: "kexec_load",
                ..
            }
        ));
    }

    #[test]
    fn the_probe_reads_einval_as_present_and_enosys_as_absent() {
        assert_eq!(probe_answer(-1, Some(libc::EINVAL)), Some(true));
        assert_eq!(probe_answer(-1, Some(libc::ENOSYS)), Some(false));
        assert_eq!(probe_answer(-1, Some(libc::EPERM)), None);
        assert_eq!(probe_answer(0, None), Some(true));
        assert_eq!(UNDEFINED_FILE_FLAG & 0xf, 0, "bits 0-3 are defined flags");
    }

    #[test]
    fn file_load_errno_mapping() {
        let e = |n| {
            Error::from_os(
                "kexec_file_load",
                Some(Image::Normal),
                io::Error::from_raw_os_error(n),
            )
        };
        assert!(matches!(e(libc::ENOEXEC), Error::UnknownImageFormat));
        assert!(matches!(e(libc::ENOSYS), Error::NotSupported("_FILE")));
        for n in [
            libc::EKEYREJECTED,
            libc::ENOKEY,
            libc::EBADMSG,
            libc::ELIBBAD,
            libc::ENODATA,
        ] {
            assert!(matches!(e(n), Error::SignatureRejected(_)), "{n}");
        }
        // ENOEXEC and ENODATA mean this only from kexec_file_load.
        let l = |n| {
            Error::from_os(
                "kexec_load",
                Some(Image::Crash),
                io::Error::from_raw_os_error(n),
            )
        };
        assert!(matches!(l(libc::ENOEXEC), Error::Other { .. }));
        assert!(matches!(l(libc::ENODATA), Error::Other { .. }));
    }

    #[test]
    fn a_sealed_memfd_holds_the_bytes_and_refuses_writes() {
        use std::io::Read;
        let mut f = sealed_memfd("kexec-test", b"image bytes").unwrap();
        let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        assert_eq!(seals(&f).unwrap(), want);
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"image bytes");
        let err = f.write_all(b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert_eq!(f.metadata().unwrap().len(), 11);
        assert!(sealed_memfd("nul\0name", b"").is_err());
    }

    #[test]
    fn ctr_el0_is_read_only_on_arm64() {
        let ctr = ctr_el0();
        if cfg!(target_arch = "aarch64") {
            // Bit 31 is RES1 in every AArch64 CTR_EL0.
            assert_eq!(ctr.map(|c| c >> 31 & 1), Some(1), "{ctr:x?}");
        } else {
            assert_eq!(ctr, None);
        }
    }

    #[test]
    fn image_flags() {
        assert_eq!(Image::Normal.kexec_load_flags(), 0);
        assert_eq!(Image::Crash.kexec_load_flags(), KEXEC_ON_CRASH);
        assert_eq!(Image::Normal.kexec_file_flags(), 0);
        assert_eq!(Image::Crash.kexec_file_flags(), KEXEC_FILE_ON_CRASH);
    }

    #[test]
    fn too_many_segments_is_refused_before_the_syscall() {
        let seg = Segment {
            buf: &[],
            mem: 0,
            memsz: 0,
        };
        let segments = [seg; KEXEC_SEGMENT_MAX + 1];
        assert!(matches!(
            kexec_load(0, &segments, Image::Normal),
            Err(Error::TooManySegments(17))
        ));
    }
}

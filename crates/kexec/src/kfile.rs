//! `kexec_file_load` done properly: which system call a load uses (`-s`,
//! `-c`, `-a`, default auto) and why ([`decide`]), the running kernel's
//! lockdown state ([`KexecState`]), the kernel file as arm64's file loader
//! takes it ([`FileImage`]: a plain Image only), and what a refusal means
//! ([`explain_file_failure`]).
//!
//! Facts from Linux 6.1:
//! - arm64 registers one file loader, `kexec_image_ops`
//!   (arch/arm64/kernel/machine_kexec_file.c); its `image_probe`
//!   (arch/arm64/kernel/kexec_image.c) takes only a plain Image (the magic at
//!   offset 56), and `image_load` refuses `image_size == 0` (pre-3.17
//!   kernels) with EINVAL. So we decompress every other format ourselves and
//!   pass a sealed memfd; a plain Image is passed as its own file, so IMA
//!   appraisal sees the file itself.
//! - A kernel without `CONFIG_KEXEC_FILE` answers ENOSYS (the syscall is
//!   `COND_SYSCALL`, kernel/sys_ni.c); ENOEXEC means no loader took the
//!   image (`kexec_image_probe_default`, kernel/kexec_file.c). Only these
//!   (and EOPNOTSUPP) make auto fall back to `kexec_load`.
//! - `kimage_validate_signature` (kernel/kexec_file.c): a bad or missing
//!   signature is fatal with `KEXEC_SIG_FORCE` (the verifier's errno:
//!   EKEYREJECTED, ENOKEY, EBADMSG, ELIBBAD, ENODATA), and under lockdown
//!   (`security_locked_down(LOCKDOWN_KEXEC)`: EPERM); otherwise it is only
//!   logged. `kexec_load` under lockdown is EPERM too (`kexec_load_check`,
//!   kernel/kexec.c): so these never fall back.
//! - Options only `kexec_load` honours: `--dtb` (the file loader always
//!   edits the running kernel's device tree, `of_kexec_alloc_and_setup_fdt`
//!   in drivers/of/kexec.c) and the purgatory switches (`-i`: arm64's file
//!   loader has no purgatory at all).

use std::fs::File;
use std::path::Path;

use kexec_core::image::{self, Arm64ImageHeader};
use kexec_core::kernel::{self, KernelFormat, UkiParts};
use kexec_core::pe;

use crate::failure::{chain, Failure};
use crate::hints::{self, Situation};
use crate::plan_input::PlanInput;
use crate::sysroot::{self, Sysroot};

/// Which system call the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `-c`: `kexec_load` only.
    KexecLoad,
    /// `-s`: `kexec_file_load` only.
    KexecFileLoad,
    /// `-a` and the default: `kexec_file_load`, falling back to
    /// `kexec_load` only where the file path cannot work.
    Auto,
}

/// The running kernel's lockdown mode (`/sys/kernel/security/lockdown`,
/// security/lockdown/lockdown.c: the active mode is bracketed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockdown {
    /// `[none]`.
    None,
    /// `[integrity]`: kexec_load refused, kexec_file_load needs a signature.
    Integrity,
    /// `[confidentiality]`: as integrity, and more.
    Confidentiality,
}

impl Lockdown {
    /// The mode's name as the kernel spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Integrity => "integrity",
            Self::Confidentiality => "confidentiality",
        }
    }
}

/// The active mode of a lockdown file's text, `None` if it names none.
pub fn parse_lockdown(text: &str) -> Option<Lockdown> {
    let active = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))?;
    match active {
        "none" => Some(Lockdown::None),
        "integrity" => Some(Lockdown::Integrity),
        "confidentiality" => Some(Lockdown::Confidentiality),
        _ => None,
    }
}

/// What of the running kernel's state decides between the system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KexecState {
    /// The lockdown mode; `None` when the file is missing (no lockdown LSM,
    /// or securityfs not mounted) or unreadable.
    pub lockdown: Option<Lockdown>,
    /// `kernel.kexec_load_disabled`; `None` when unreadable.
    pub load_disabled: Option<bool>,
}

impl KexecState {
    /// Read from `root` (both files are in `capture-sysroot`'s list).
    pub fn read(root: &Sysroot) -> Self {
        Self {
            lockdown: root
                .read_text(sysroot::LOCKDOWN)
                .ok()
                .and_then(|t| parse_lockdown(&t)),
            load_disabled: root.flag(sysroot::KEXEC_LOAD_DISABLED),
        }
    }

    /// Whether lockdown forbids `kexec_load` and unsigned images.
    pub fn locked_down(&self) -> bool {
        matches!(
            self.lockdown,
            Some(Lockdown::Integrity | Lockdown::Confidentiality)
        )
    }

    /// One line for `--dry-run` and `-v`.
    pub fn describe(&self) -> String {
        let lockdown = match self.lockdown {
            Some(l) => l.name(),
            None => "unknown (no /sys/kernel/security/lockdown)",
        };
        let disabled = match self.load_disabled {
            Some(true) => "1 (every kexec load refused until reboot)",
            Some(false) => "0",
            None => "unknown",
        };
        format!("lockdown: {lockdown}; kexec_load_disabled: {disabled}")
    }
}

/// Which call a load makes first, and whether it may fall back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `kexec_load`.
    KexecLoad,
    /// `kexec_file_load`; `fallback`: `kexec_load` if the kernel lacks it.
    KexecFileLoad {
        /// Whether ENOSYS/EOPNOTSUPP/ENOEXEC fall back to `kexec_load`.
        fallback: bool,
    },
}

/// The route and the reason, as said by `--dry-run` and `-v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What is called.
    pub route: Route,
    /// Why, in a sentence.
    pub why: String,
}

/// The option (if any) among `input`'s that only `kexec_load` honours.
fn load_only_option(input: &PlanInput<'_>) -> Option<&'static str> {
    if input.dtb.is_some() {
        Some("--dtb (kexec_file_load always passes the running kernel's device tree)")
    } else if input.purgatory.no_verify {
        Some("-i (arm64's kexec_file_load has no purgatory to skip)")
    } else if !input.window.is_everything() {
        Some("--mem-min/--mem-max (with kexec_file_load the kernel places the segments)")
    } else if input.serial.is_some() {
        Some("--serial (names the purgatory's console; kexec_file_load has no purgatory)")
    } else if input.purgatory.force_soft_sha256 || input.purgatory.no_caches {
        Some("a purgatory test switch (kexec_file_load has no purgatory)")
    } else {
        None
    }
}

/// What of the kernel file bears on the choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `image_size == 0` (before Linux 3.17): arm64's file loader refuses it.
    pub legacy: bool,
    /// A UKI with a `.dtb` section, which only `kexec_load` can pass.
    pub uki_dtb: bool,
}

/// Decide the route of a load from the user's choice, the options, the
/// kernel's state and the kernel file's facts.
pub fn decide(
    call: Call,
    input: &PlanInput<'_>,
    state: &KexecState,
    image: ImageFacts,
) -> Decision {
    let locked = state.locked_down();
    match call {
        Call::KexecLoad => Decision {
            route: Route::KexecLoad,
            why: "-c asks for kexec_load".to_owned(),
        },
        Call::KexecFileLoad => Decision {
            route: Route::KexecFileLoad { fallback: false },
            why: "-s asks for kexec_file_load".to_owned(),
        },
        Call::Auto => {
            if let Some(option) = load_only_option(input) {
                return Decision {
                    route: Route::KexecLoad,
                    why: format!("auto: only kexec_load honours {option}"),
                };
            }
            if image.uki_dtb && !locked {
                return Decision {
                    route: Route::KexecLoad,
                    why: "auto: the UKI carries a .dtb, which only kexec_load can pass \
                          (kexec_file_load passes the running kernel's device tree)"
                        .to_owned(),
                };
            }
            if image.legacy && !locked {
                return Decision {
                    route: Route::KexecLoad,
                    why: "auto: the Image has image_size 0 (before Linux 3.17), which arm64's \
                          kexec_file_load refuses"
                        .to_owned(),
                };
            }
            if locked {
                Decision {
                    route: Route::KexecFileLoad { fallback: false },
                    why: format!(
                        "auto: the kernel is locked down ({}), so only kexec_file_load of a \
                         signed Image can load; no fallback to kexec_load, which lockdown refuses",
                        state.lockdown.map_or("?", Lockdown::name)
                    ),
                }
            } else {
                Decision {
                    route: Route::KexecFileLoad { fallback: true },
                    why: "auto: kexec_file_load first; kexec_load only if this kernel lacks it \
                          (ENOSYS, EOPNOTSUPP) or its loader does not take the image (ENOEXEC)"
                        .to_owned(),
                }
            }
        }
    }
}

/// Whether a `kexec_file_load` error means the file path cannot work here,
/// so auto may fall back to `kexec_load`.
pub fn may_fall_back(err: &kexec_sys::Error) -> bool {
    matches!(
        err,
        kexec_sys::Error::NotSupported(_) | kexec_sys::Error::UnknownImageFormat
    )
}

/// The kernel file as `kexec_file_load` gets it.
#[derive(Debug)]
pub struct FileImage {
    /// The format the file is in.
    pub format: KernelFormat,
    /// The plain Image we decoded, or `None` when the file is one (then the
    /// file itself is passed).
    pub decoded: Option<Vec<u8>>,
    /// Whether what is passed carries a PE signature (certificate table);
    /// `None` until asked ([`FileImage::with_signature`]): a plain Image is
    /// not read beyond its header unless a message needs it.
    pub signed: Option<bool>,
    /// `image_size == 0`: arm64's file loader refuses it.
    pub legacy: bool,
    /// A UKI's other sections.
    pub uki: UkiParts,
}

fn unreadable(path: &Path, e: &std::io::Error) -> Failure {
    Failure::input(
        path.display().to_string(),
        format!("cannot read: {e}"),
        hints::input_unreadable(e.kind()),
    )
}

/// Read `path` for `kexec_file_load`: only the header when it is a plain
/// Image (the kernel reads the file itself), else the whole file, decoded.
pub fn inspect(path: &Path) -> Result<FileImage, Failure> {
    use std::io::Read;
    let mut head = Vec::with_capacity(image::HEADER_SIZE);
    File::open(path)
        .and_then(|f| f.take(image::HEADER_SIZE as u64).read_to_end(&mut head))
        .map_err(|e| unreadable(path, &e))?;
    if kernel::is_plain_image(&head) {
        let header = Arm64ImageHeader::parse(&head).map_err(|e| {
            Failure::input(path.display().to_string(), e, "not a valid arm64 Image")
        })?;
        return Ok(FileImage {
            format: KernelFormat::Image,
            decoded: None,
            signed: None,
            legacy: header.image_size == 0,
            uki: UkiParts::default(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(path, &e))?;
    let k = kernel::decode(&bytes).map_err(|e| {
        Failure::input(
            path.display().to_string(),
            chain(&e),
            "give an arm64 Image, Image.gz/.zst/.xz/.lz4, zboot, ELF vmlinux or UKI",
        )
    })?;
    Ok(FileImage {
        legacy: k.header.image_size == 0,
        signed: Some(pe::certificate_table(&k.image).is_some()),
        decoded: Some(k.image.into_owned()),
        format: k.format,
        uki: k.uki.unwrap_or_default(),
    })
}

impl FileImage {
    /// The facts [`decide`] needs.
    pub fn facts(&self) -> ImageFacts {
        ImageFacts {
            legacy: self.legacy,
            uki_dtb: self.uki.dtb.is_some(),
        }
    }

    /// With [`FileImage::signed`] known: a plain Image's headers are read
    /// ([`pe::HEADERS_READ`] bytes: the certificate table's directory entry
    /// is there; an unreadable file counts as unsigned: the messages only
    /// explain).
    pub fn with_signature(mut self, path: &Path) -> Self {
        self.learn_signature(path);
        self
    }

    /// [`FileImage::with_signature`] in place.
    pub fn learn_signature(&mut self, path: &Path) {
        if self.signed.is_none() {
            use std::io::Read;
            let mut head = Vec::with_capacity(pe::HEADERS_READ);
            self.signed = Some(
                File::open(path)
                    .and_then(|f| f.take(pe::HEADERS_READ as u64).read_to_end(&mut head))
                    .is_ok_and(|_| pe::certificate_table(&head).is_some()),
            );
        }
    }

    /// The descriptor to pass: the file itself, or a sealed memfd of the
    /// decoded Image.
    pub fn open(&self, path: &Path) -> Result<File, Failure> {
        let name = path.display().to_string();
        match &self.decoded {
            None => File::open(path).map_err(|e| {
                Failure::input(
                    name,
                    format!("cannot open: {e}"),
                    hints::input_unreadable(e.kind()),
                )
            }),
            Some(image) => kexec_sys::sealed_memfd("kexec-image", image).map_err(|e| {
                Failure::system(
                    name,
                    format!("cannot put the decompressed Image in a memfd: {e}"),
                    memfd_hint(&e),
                )
            }),
        }
    }

    /// Why this file cannot satisfy a signature check, for messages.
    pub fn signature_problem(&self) -> String {
        if self.decoded.is_some() {
            format!(
                "it is a {}, which kexec decompresses: a decompressed Image carries no PE \
                 signature",
                self.format
            )
        } else if self.signed != Some(true) {
            "it has no PE (Authenticode) signature".to_owned()
        } else {
            "its PE signature is not from a key the kernel trusts (builtin or secondary \
             trusted keyring, or the platform keyring)"
                .to_owned()
        }
    }

    /// What would work instead, for hints.
    pub fn signature_hint(&self) -> &'static str {
        if self.decoded.is_some() {
            "give the signed plain Image (the signature covers the uncompressed PE file)"
        } else if self.signed != Some(true) {
            "sign the Image (sbsign) with a key in the kernel's trusted keyrings, or boot \
             without lockdown"
        } else {
            "sign the Image with a key the running kernel trusts (its build-time \
             CONFIG_SYSTEM_TRUSTED_KEYS, an enrolled MOK, or the UEFI db)"
        }
    }
}

/// What to do when a sealed memfd could not be made (`e`).
pub fn memfd_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        // ENOSYS.
        std::io::ErrorKind::Unsupported => {
            "the kernel lacks memfd_create (CONFIG_MEMFD_CREATE): pass a plain Image"
        }
        std::io::ErrorKind::OutOfMemory => {
            "out of memory: pass a plain Image, which needs no memfd"
        }
        _ => "pass a plain Image, which kexec_file_load reads from the file itself",
    }
}

/// A refused `kexec_file_load` of `image` (from `path`, a crash kernel if
/// `crash`), explained for `situation`.
pub fn explain_file_failure(
    err: &kexec_sys::Error,
    path: &Path,
    image: &FileImage,
    state: &KexecState,
    crash: bool,
    situation: &Situation,
) -> Failure {
    use kexec_sys::{Error, PermissionReason};
    let name = path.display().to_string();
    if let (Error::NotSupported(_) | Error::UnknownImageFormat, Some(arch)) =
        (err, situation.foreign_arch())
    {
        return Failure::system(name, err, hints::not_arm64(arch));
    }
    match err {
        Error::PermissionDenied(PermissionReason::Lockdown) => Failure::system(
            name,
            format!(
                "the kernel is locked down ({}) and did not accept the image's signature: {}; \
                 not falling back to kexec_load, which lockdown refuses too",
                state.lockdown.map_or("?", Lockdown::name),
                image.signature_problem()
            ),
            image.signature_hint(),
        ),
        Error::SignatureRejected(why) => Failure::system(
            name,
            format!(
                "the kernel enforces kexec signatures and rejected this image ({why}): {}; \
                 not falling back to kexec_load: a rejected signature is not a missing feature",
                image.signature_problem()
            ),
            image.signature_hint(),
        ),
        Error::NotSupported(_) => Failure::system(
            "kexec_file_load",
            "this kernel lacks kexec_file_load (built without CONFIG_KEXEC_FILE)",
            if state.locked_down() {
                "under lockdown nothing else can load: boot a kernel with CONFIG_KEXEC_FILE"
            } else {
                "use -c (kexec_load), or the default -a, which falls back to it"
            },
        ),
        Error::UnknownImageFormat => Failure::system(
            name,
            format!(
                "the running kernel's file loader does not take this {}",
                image.format
            ),
            if state.locked_down() {
                "under lockdown only kexec_file_load can load: give a signed plain Image"
            } else {
                "use -c (kexec_load), or the default -a, which falls back to it"
            },
        ),
        Error::InvalidArgument => Failure::system(
            name,
            "the kernel refused the Image (arm64 image_load: image_size 0, an endianness or \
             page size this CPU lacks)",
            if state.locked_down() {
                "under lockdown only kexec_file_load can load: give a current signed Image"
            } else {
                "try -c (kexec_load), which places the Image itself"
            },
        ),
        other => crate::syscalls::syscall_failure("kexec_file_load", other, crash),
    }
}

#[cfg(test)]
mod tests;

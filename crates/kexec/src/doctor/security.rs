//! `kexec doctor`'s checks of what the kernel lets in: lockdown and Secure
//! Boot. Pure, like `checks.rs`.
//!
//! Facts (Linux 6.1): lockdown refuses `kexec_load`
//! (`security_locked_down(LOCKDOWN_KEXEC)`, kernel/kexec.c);
//! `kexec_file_load` then needs an image whose signature verifies
//! (`kimage_validate_signature`, kernel/kexec_file.c), a check that exists
//! only with `CONFIG_KEXEC_SIG` and on arm64 only succeeds with
//! `CONFIG_KEXEC_IMAGE_VERIFY_SIG` (`kexec_image_verify_sig`). The lockdown
//! file exists whenever the LSM is built in (`lockdown_secfs_init`,
//! security/lockdown/lockdown.c), so its absence then means securityfs is
//! not mounted. Distribution kernels turn lockdown on under Secure Boot
//! (`CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT`, Debian's included), and kdump
//! tools pass `-s` there.

use kexec_core::machine::efivar;
use serde_json::{json, Value};

use super::checks::{shown, unknown, Check, Status};
use super::gather::{secure_boot_var, Gathered, EFI_PLATFORM_SIZE};
use super::kconfig::Config;
use crate::kfile::Lockdown;
use crate::sysroot::{self, Probe};

pub(super) fn lockdown_check(
    g: &Gathered,
    mode: Option<Option<Lockdown>>,
    config: &Config,
) -> Check {
    let (id, title) = ("lockdown", "lockdown");
    let rel = sysroot::LOCKDOWN;
    let mode = match mode {
        Some(Some(m)) => m,
        Some(None) => {
            return Check::new(
                id,
                title,
                Status::Unknown,
                format!("{}: no bracketed mode", shown(rel)),
                None,
                Value::Null,
            )
        }
        None => {
            return match (&g.lockdown, config.yes("SECURITY_LOCKDOWN_LSM")) {
                (Probe::Absent, Some(false)) => Check::new(
                    id,
                    title,
                    Status::Ok,
                    "this kernel has no lockdown LSM (CONFIG_SECURITY_LOCKDOWN_LSM is \
                    not set)",
                    None,
                    json!("none"),
                ),
                (Probe::Absent, _) if g.live => Check::new(
                    id,
                    title,
                    Status::Unknown,
                    format!(
                        "{} is absent: securityfs is not mounted, or the kernel has no \
                        lockdown LSM",
                        shown(rel)
                    ),
                    Some(
                        "mount -t securityfs securityfs /sys/kernel/security, then run \
                        kexec doctor again"
                            .to_owned(),
                    ),
                    Value::Null,
                ),
                (probe, _) => unknown(id, title, probe, rel, g),
            }
        }
    };
    let value = json!(mode.name());
    if mode == Lockdown::None {
        return Check::new(
            id,
            title,
            Status::Ok,
            "none: kexec_load and kexec_file_load are both allowed",
            None,
            value,
        );
    }
    let refused = format!("{}: kexec_load is refused", mode.name());
    let signed = "give `kexec -s -l` (or the default -a) a plain Image signed (sbsign) with a \
                  key the kernel trusts; --dtb, -i and compressed images need kexec_load"
        .to_owned();
    let (status, finding, hint) = match (
        config.yes("KEXEC_FILE"),
        config.yes("KEXEC_SIG"),
        config.yes("KEXEC_IMAGE_VERIFY_SIG"),
    ) {
        (Some(false), ..) => (
            Status::Fail,
            format!(
                "{refused}, and this kernel lacks kexec_file_load \
                (CONFIG_KEXEC_FILE): nothing can load"
            ),
            "boot without lockdown (lockdown=none, or without the Secure Boot \
                that turns it on), or a kernel with CONFIG_KEXEC_FILE and \
                CONFIG_KEXEC_SIG"
                .to_owned(),
        ),
        (Some(true), Some(false), _) => (
            Status::Warn,
            format!(
                "{refused}; kexec_file_load loads without a signature check (no \
                CONFIG_KEXEC_SIG)"
            ),
            "use `kexec -s` (or the default -a) with a plain Image".to_owned(),
        ),
        (Some(true), Some(true), Some(false)) => (
            Status::Fail,
            format!(
                "{refused}, and arm64's Image loader cannot check signatures (no \
                CONFIG_KEXEC_IMAGE_VERIFY_SIG): every kexec_file_load is refused \
                too"
            ),
            "boot without lockdown, or a kernel with \
                CONFIG_KEXEC_IMAGE_VERIFY_SIG (unless IMA appraises kexec \
                images)"
                .to_owned(),
        ),
        (Some(true), Some(true), Some(true)) => (
            Status::Warn,
            format!("{refused}; only kexec_file_load of a signed Image can load"),
            signed,
        ),
        _ => (
            Status::Warn,
            format!(
                "{refused}; kexec_file_load needs a signed Image (if the kernel \
                has CONFIG_KEXEC_FILE and CONFIG_KEXEC_SIG: its configuration is \
                unknown)"
            ),
            signed,
        ),
    };
    Check::new(id, title, status, finding, Some(hint), value)
}

pub(super) fn secure_boot(
    g: &Gathered,
    lockdown: Option<Option<Lockdown>>,
    config: &Config,
) -> Check {
    let (id, title) = ("secure_boot", "Secure Boot");
    let var = secure_boot_var();
    match (&g.efi, &g.secure_boot) {
        (Probe::Absent, _) => Check::new(
            id,
            title,
            Status::Ok,
            "not booted through UEFI: no Secure Boot",
            None,
            json!("no-uefi"),
        ),
        (Probe::Found(_), Probe::Found(bytes)) => match efivar::secure_boot(bytes) {
            Ok(false) => Check::new(id, title, Status::Ok, "disabled", None, json!("disabled")),
            Ok(true) => {
                let locked = matches!(
                    lockdown,
                    Some(Some(Lockdown::Integrity | Lockdown::Confidentiality))
                );
                if !locked && config.yes("KEXEC_FILE") == Some(false) {
                    Check::new(
                        id,
                        title,
                        Status::Warn,
                        "enabled, and this kernel lacks kexec_file_load (CONFIG_KEXEC_FILE)",
                        Some(
                            "kdump-tools and kdumpctl load the crash kernel with `kexec -s` \
                            under Secure Boot, which fails here: configure them without -s, \
                            or boot a kernel with CONFIG_KEXEC_FILE"
                                .to_owned(),
                        ),
                        json!("enabled"),
                    )
                } else {
                    let more = if locked {
                        " (the kernel is locked down: see lockdown)"
                    } else {
                        ""
                    };
                    Check::new(
                        id,
                        title,
                        Status::Ok,
                        format!("enabled{more}"),
                        None,
                        json!("enabled"),
                    )
                }
            }
            Err(e) => Check::new(
                id,
                title,
                Status::Unknown,
                format!("{}: {e}", shown(&var)),
                None,
                Value::Null,
            ),
        },
        (Probe::Found(_), Probe::Absent) if g.live => Check::new(
            id,
            title,
            Status::Unknown,
            format!("UEFI, but no {}", shown(&var)),
            Some(
                "efivarfs may not be mounted: mount -t efivarfs efivarfs /sys/firmware/efi/efivars"
                    .to_owned(),
            ),
            Value::Null,
        ),
        (Probe::Found(_), probe) => unknown(id, title, probe, &var, g),
        (probe, _) => unknown(id, title, probe, EFI_PLATFORM_SIZE, g),
    }
}

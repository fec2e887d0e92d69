//! `kexec doctor`'s view of the running kernel's build configuration:
//! where it comes from ([`config`]: `/proc/config.gz`, the kernel's own,
//! then `/boot/config-<release>`) and the checks of the options that
//! decide what kexec can do ([`config_checks`]). Pure, like `checks.rs`.
//!
//! Facts (arm64, Linux 6.1, arch/arm64/Kconfig): `CONFIG_KEXEC` gives
//! `kexec_load`, `CONFIG_KEXEC_FILE` `kexec_file_load`;
//! `CONFIG_KEXEC_SIG` makes `kexec_file_load` check the image's signature
//! (`kimage_validate_signature`, kernel/kexec_file.c), which on arm64
//! needs `CONFIG_KEXEC_IMAGE_VERIFY_SIG` (arch/arm64/kernel/kexec_image.c:
//! without it the check always fails, `kexec_image_verify_sig`);
//! `CONFIG_CRASH_DUMP` lets a kernel run as the crash kernel
//! (`/proc/vmcore`).

use kexec_core::decompress;
use kexec_core::machine::kconfig::{self, KernelConfig};
use serde_json::{json, Value};

use super::checks::{not_read, not_read_hint, Check, Status};
use super::gather::{Gathered, CONFIG_LIMIT, PROC_CONFIG_GZ};
use crate::sysroot::Probe;

/// The kernel configuration, where it came from, or why it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// Read from `source`.
    Known {
        /// `/proc/config.gz` or `/boot/config-<release>`.
        source: String,
        /// The options.
        config: KernelConfig,
    },
    /// Not readable: why, and what would help.
    Unknown {
        /// One line.
        why: String,
        /// A hint.
        hint: Option<String>,
    },
}

impl Config {
    /// The configuration, if known.
    pub fn get(&self) -> Option<&KernelConfig> {
        match self {
            Self::Known { config, .. } => Some(config),
            Self::Unknown { .. } => None,
        }
    }

    /// Whether option `name` is `y`; `None` when the configuration is unknown.
    pub fn yes(&self, name: &str) -> Option<bool> {
        self.get().map(|c| c.is_yes(name))
    }
}

/// The running kernel's configuration: `/proc/config.gz` (its own) first,
/// then `/boot/config-<release>`.
pub fn config(g: &Gathered) -> Config {
    let mut why = Vec::new();
    match &g.config_gz {
        Probe::Found(gz) => {
            let parsed = decompress::gunzip(gz, CONFIG_LIMIT)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    kconfig::parse(&String::from_utf8_lossy(&b)).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(config) => {
                    return Config::Known {
                        source: "/proc/config.gz".to_owned(),
                        config,
                    }
                }
                Err(e) => why.push(format!("/proc/config.gz: {e}")),
            }
        }
        other => why.push(not_read(other, PROC_CONFIG_GZ)),
    }
    match &g.boot_config {
        Some((path, Probe::Found(bytes))) => {
            match kconfig::parse(&String::from_utf8_lossy(bytes)) {
                Ok(config) => {
                    return Config::Known {
                        source: path.clone(),
                        config,
                    }
                }
                Err(e) => why.push(format!("{path}: {e}")),
            }
        }
        Some((path, other)) => why.push(not_read(other, path)),
        None => why.push("the kernel release is unknown, so /boot/config-<release> is too".into()),
    }
    let captured = g.config_gz == Probe::NotCaptured
        && g.boot_config
            .as_ref()
            .is_none_or(|(_, p)| *p == Probe::NotCaptured);
    Config::Unknown {
        why: why.join("; "),
        hint: if captured {
            not_read_hint(&Probe::NotCaptured, g)
        } else {
            Some(
                "install the running kernel's configuration as /boot/config-$(uname -r) (Debian \
                 and most distributions ship it with the kernel), or boot a kernel with \
                 CONFIG_IKCONFIG_PROC"
                    .to_owned(),
            )
        },
    }
}

pub(super) fn kernel_config(config: &Config) -> Check {
    let (id, title) = ("kernel_config", "kernel configuration");
    match config {
        Config::Known { source, config } => Check::new(
            id,
            title,
            Status::Ok,
            format!("from {source} ({} options set)", config.len()),
            None,
            json!({"source": source}),
        ),
        Config::Unknown { why, hint } => Check::new(
            id,
            title,
            Status::Unknown,
            why.clone(),
            hint.clone(),
            Value::Null,
        ),
    }
}

/// The value of a config option for the JSON: `"y"`, `"m"`, the value, or null.
fn option_value(config: &KernelConfig, name: &str) -> Value {
    config.get(name).map_or(Value::Null, |v| json!(v.as_str()))
}

/// The five option checks (`locked`: the kernel is locked down).
pub(super) fn config_checks(config: &Config, locked: bool) -> Vec<Check> {
    const OPTIONS: [(&str, &str); 5] = [
        ("config_kexec", "CONFIG_KEXEC"),
        ("config_kexec_file", "CONFIG_KEXEC_FILE"),
        ("config_kexec_sig", "CONFIG_KEXEC_SIG"),
        ("config_crash_dump", "CONFIG_CRASH_DUMP"),
        ("config_randomize_base", "CONFIG_RANDOMIZE_BASE"),
    ];
    let Some(c) = config.get() else {
        return OPTIONS
            .iter()
            .map(|&(id, title)| {
                Check::new(
                    id,
                    title,
                    Status::Unknown,
                    "the kernel configuration is unknown (see kernel_config)",
                    None,
                    Value::Null,
                )
            })
            .collect();
    };
    let (file, sig, verify) = (
        c.is_yes("KEXEC_FILE"),
        c.is_yes("KEXEC_SIG"),
        c.is_yes("KEXEC_IMAGE_VERIFY_SIG"),
    );
    let kexec = if c.is_yes("KEXEC") {
        (Status::Ok, "y: kexec_load is available".to_owned(), None)
    } else if file {
        (
            Status::Warn,
            "not set: no kexec_load; only kexec_file_load (-s) of a plain \
            Image"
                .to_owned(),
            Some(
                "the default -a uses kexec_file_load; --dtb, -i, -c and \
             compressed-only kernels need kexec_load"
                    .to_owned(),
            ),
        )
    } else {
        (
            Status::Fail,
            "not set, nor CONFIG_KEXEC_FILE: this kernel cannot kexec".to_owned(),
            Some(
                "boot a kernel built with CONFIG_KEXEC (Debian's arm64 kernels have it)".to_owned(),
            ),
        )
    };
    let kexec_file = if file {
        (
            Status::Ok,
            "y: kexec_file_load is available (-s; the default -a tries it first)".to_owned(),
            None,
        )
    } else {
        let hint = if locked {
            "the kernel is locked down, where only kexec_file_load could load: see lockdown"
        } else {
            "enough unless a tool passes -s (kdump-tools under Secure Boot, kdumpctl on aarch64)"
        };
        (
            Status::Warn,
            "not set: no kexec_file_load; -s fails, the default -a uses kexec_load".to_owned(),
            Some(hint.to_owned()),
        )
    };
    let kexec_sig = match (sig, verify) {
        (true, true) => {
            let force = if c.is_yes("KEXEC_SIG_FORCE") {
                "; required (KEXEC_SIG_FORCE)"
            } else {
                ""
            };
            let finding = format!("y: kexec_file_load checks the Image's PE signature{force}");
            (Status::Ok, finding, None)
        }
        (true, false) => (
            Status::Warn,
            "y, but arm64's Image loader cannot check signatures \
             (CONFIG_KEXEC_IMAGE_VERIFY_SIG is not set): a check always fails"
                .to_owned(),
            Some(
                "under lockdown or KEXEC_SIG_FORCE every kexec_file_load is refused; otherwise \
                 the failure is only logged"
                    .to_owned(),
            ),
        ),
        (false, _) if file => (
            Status::Ok,
            "not set: kexec_file_load does not check signatures".to_owned(),
            None,
        ),
        (false, _) => (Status::Ok, "not set (no kexec_file_load)".to_owned(), None),
    };
    let crash_dump = if c.is_yes("CRASH_DUMP") {
        (
            Status::Ok,
            "y: this kernel can run as a crash kernel (/proc/vmcore)".to_owned(),
            None,
        )
    } else {
        (
            Status::Warn,
            "not set: this kernel cannot serve as the crash kernel".to_owned(),
            Some("for kdump, give `kexec -p` a kernel built with CONFIG_CRASH_DUMP".to_owned()),
        )
    };
    let kaslr = if c.is_yes("RANDOMIZE_BASE") {
        (
            Status::Ok,
            "y: KASLR; kexec gives the new kernel a fresh kaslr-seed".to_owned(),
            None,
        )
    } else {
        (
            Status::Ok,
            "not set: no KASLR in this kernel (a new kernel with it still gets a fresh kaslr-seed)"
                .to_owned(),
            None,
        )
    };
    let verdicts = [kexec, kexec_file, kexec_sig, crash_dump, kaslr];
    OPTIONS
        .iter()
        .zip(verdicts)
        .map(|(&(id, title), (status, finding, hint))| {
            let name = title.trim_start_matches("CONFIG_");
            Check::new(id, title, status, finding, hint, option_value(c, name))
        })
        .collect()
}

//! The decision of `kexec doctor`: [`diagnose`] turns what was read
//! ([`Gathered`]) into [`Check`]s, each `ok`, `warn`, `fail` or `unknown`
//! with a one-line finding and a hint true for that state. Pure: no I/O, so
//! every state is a unit test (`checks/tests.rs`, `platform/tests.rs`).
//! This file holds the types, the order and the checks of who may kexec;
//! `security.rs` lockdown and Secure Boot, `kconfig.rs` the kernel's
//! configuration, `platform.rs` the machine (crash region, firmware, CPUs,
//! caches).
//!
//! Facts: every kexec call needs `CAP_SYS_BOOT` and `kexec_load_disabled`
//! = 0 (`kexec_load_check`, kernel/kexec.c; kernel/kexec_file.c, Linux
//! 6.1); from 6.7, `kexec_load_limit_{reboot,panic}` count down loads of
//! each kind, -1 unlimited, 0 none left (`kexec_load_permitted`,
//! kernel/kexec_core.c).

use kexec_core::machine::status::{self, CAP_SYS_BOOT};
use serde_json::{json, Value};

use super::gather::Gathered;
use super::kconfig::{config, config_checks, kernel_config};
use super::platform;
use super::security::{lockdown_check, secure_boot};
use crate::hints;
use crate::kfile::{parse_lockdown, Lockdown};
use crate::sysroot::Probe;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Works.
    Ok,
    /// Could not be told (a file absent from a capture, unreadable, or not
    /// judged on this machine).
    Unknown,
    /// Works with a limit the user should know.
    Warn,
    /// What this check is about cannot work: `kexec doctor` exits 1.
    Fail,
}

impl Status {
    /// The name in the output and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unknown => "unknown",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Stable identifier (docs/doctor-json.md).
    pub id: &'static str,
    /// A few words for people.
    pub title: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found, one line.
    pub finding: String,
    /// What to do, or what it means; `None` when there is nothing to add.
    pub hint: Option<String>,
    /// The finding for machines (per-check shape: docs/doctor-json.md).
    pub value: Value,
}

impl Check {
    pub(super) fn new(
        id: &'static str,
        title: &'static str,
        status: Status,
        finding: impl Into<String>,
        hint: Option<String>,
        value: Value,
    ) -> Self {
        Self {
            id,
            title,
            status,
            finding: finding.into(),
            hint,
            value,
        }
    }
}

/// Checks that judge the path to booting an arm64 kernel: on a machine
/// known not to be arm64 they are reported, not judged (the architecture
/// check has said what matters).
pub const ARM64_ONLY: [&str; 15] = [
    "kexec_load_disabled",
    "kexec_load_limit",
    "lockdown",
    "secure_boot",
    "config_kexec",
    "config_kexec_file",
    "config_kexec_sig",
    "config_crash_dump",
    "config_randomize_base",
    "kexec_loaded",
    "crashkernel",
    "crash_kernel_loaded",
    "psci",
    "cpu_hotplug",
    "cache",
];

/// `/REL` for messages.
pub(super) fn shown(rel: &str) -> String {
    format!("/{}", rel.trim_start_matches('/'))
}

/// Why a file that was not found tells nothing, one line.
pub(super) fn not_read(probe: &Probe, rel: &str) -> String {
    let path = shown(rel);
    match probe {
        Probe::Found(_) => format!("{path} was read"),
        Probe::Absent => format!("{path} is absent"),
        Probe::Unreadable { message, .. } => format!("{path}: cannot read: {message}"),
        Probe::NotCaptured => format!("{path} is not in this capture"),
    }
}

/// The hint for a file that could not be used, if any.
pub(super) fn not_read_hint(probe: &Probe, g: &Gathered) -> Option<String> {
    match probe {
        Probe::NotCaptured => Some(
            "capture the machine again with a current `kexec capture-sysroot DIR`, which \
             records what doctor reads"
                .to_owned(),
        ),
        Probe::Unreadable { denied: true, .. } if g.live && !root(g) => {
            Some("run kexec doctor as root".to_owned())
        }
        _ => None,
    }
}

/// An `unknown` check about a file that could not be used.
pub(super) fn unknown(
    id: &'static str,
    title: &'static str,
    probe: &Probe,
    rel: &str,
    g: &Gathered,
) -> Check {
    Check::new(
        id,
        title,
        Status::Unknown,
        not_read(probe, rel),
        not_read_hint(probe, g),
        Value::Null,
    )
}

/// Whether this process runs as root (live: the status file says so).
pub(super) fn root(g: &Gathered) -> bool {
    g.status
        .text()
        .and_then(|t| status::parse(&t).ok())
        .is_some_and(|c| c.euid == Some(0))
}

/// Decide every check from what was read.
pub fn diagnose(g: &Gathered) -> Vec<Check> {
    let config = config(g);
    let lockdown = g.lockdown.text().map(|t| parse_lockdown(&t));
    let mut checks = vec![
        arch(g),
        privileges(g),
        load_disabled(g),
        load_limits(g),
        lockdown_check(g, lockdown, &config),
        secure_boot(g, lockdown, &config),
        kernel_config(&config),
    ];
    let locked = matches!(
        lockdown,
        Some(Some(Lockdown::Integrity | Lockdown::Confidentiality))
    );
    checks.extend(config_checks(&config, locked));
    checks.extend(platform::checks(g));
    if let Some(arch) = g.arch.as_deref().filter(|a| *a != "aarch64") {
        for c in checks.iter_mut().filter(|c| ARM64_ONLY.contains(&c.id)) {
            c.status = Status::Unknown;
            c.finding = format!("{} (not judged: {arch} is not arm64)", c.finding);
            c.hint = None;
        }
    }
    checks
}

fn arch(g: &Gathered) -> Check {
    let (id, title) = ("arch", "architecture");
    match g.arch.as_deref() {
        Some("aarch64") => Check::new(
            id,
            title,
            Status::Ok,
            "aarch64 (arm64)",
            None,
            json!("aarch64"),
        ),
        Some(other) => Check::new(
            id,
            title,
            Status::Fail,
            if g.live {
                format!("{other}: this is not an arm64 machine")
            } else {
                format!("{other}: the capture is not of an arm64 machine")
            },
            Some(hints::not_arm64(other)),
            json!(other),
        ),
        None => Check::new(
            id,
            title,
            Status::Unknown,
            "the capture does not record it (made before kexec doctor)",
            not_read_hint(&Probe::NotCaptured, g),
            Value::Null,
        ),
    }
}

fn privileges(g: &Gathered) -> Check {
    let (id, title) = ("privileges", "root / CAP_SYS_BOOT");
    let Some(text) = g.status.text() else {
        return unknown(id, title, &g.status, super::gather::SELF_STATUS, g);
    };
    let creds = match status::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            return Check::new(
                id,
                title,
                Status::Unknown,
                format!("/proc/self/status: {e}"),
                None,
                Value::Null,
            )
        }
    };
    let who = match creds.euid {
        Some(0) => "root (euid 0)".to_owned(),
        Some(n) => format!("euid {n}"),
        None => "unknown user".to_owned(),
    };
    let whose = if g.live {
        ""
    } else {
        " (the capturing process)"
    };
    let value = json!({"euid": creds.euid, "cap_sys_boot": creds.has(CAP_SYS_BOOT)});
    match creds.has(CAP_SYS_BOOT) {
        Some(true) => Check::new(
            id,
            title,
            Status::Ok,
            format!("{who} with CAP_SYS_BOOT{whose}"),
            None,
            value,
        ),
        Some(false) => Check::new(
            id,
            title,
            Status::Fail,
            format!("{who} without CAP_SYS_BOOT{whose}: every kexec call is refused (EPERM)"),
            Some(hints::permission(
                kexec_sys::PermissionReason::MissingCapability,
                &hints::Situation {
                    live: g.live,
                    arch: g.arch.clone(),
                    creds,
                },
            )),
            value,
        ),
        None => Check::new(
            id,
            title,
            Status::Unknown,
            format!("{who}; no CapEff line"),
            None,
            value,
        ),
    }
}

fn load_disabled(g: &Gathered) -> Check {
    let (id, title) = ("kexec_load_disabled", "kexec_load_disabled");
    let rel = crate::sysroot::KEXEC_LOAD_DISABLED;
    match (
        g.load_disabled.text().as_deref().map(str::trim),
        &g.load_disabled,
    ) {
        (Some("0"), _) => Check::new(
            id,
            title,
            Status::Ok,
            "0: loading is allowed",
            None,
            json!(0),
        ),
        (Some("1"), _) => Check::new(
            id,
            title,
            Status::Fail,
            "1: the kernel refuses every kexec load until the next boot",
            Some(hints::permission(
                kexec_sys::PermissionReason::LoadDisabled,
                &situation(g),
            )),
            json!(1),
        ),
        (Some(other), _) => Check::new(
            id,
            title,
            Status::Unknown,
            format!("unexpected content {other:?}"),
            None,
            Value::Null,
        ),
        (None, Probe::Absent) => Check::new(
            id,
            title,
            Status::Fail,
            format!(
                "{} is absent: the kernel has no kexec support (CONFIG_KEXEC_CORE)",
                shown(rel)
            ),
            Some("boot a kernel built with CONFIG_KEXEC".to_owned()),
            Value::Null,
        ),
        (None, probe) => unknown(id, title, probe, rel, g),
    }
}

/// A load limit's value: -1 unlimited, N left.
fn limit(probe: &Probe) -> Option<i64> {
    probe.text()?.trim().parse().ok()
}

fn load_limits(g: &Gathered) -> Check {
    let (id, title) = ("kexec_load_limit", "kexec_load_limit_*");
    use super::gather::{LOAD_LIMIT_PANIC, LOAD_LIMIT_REBOOT};
    let both = [
        (&g.limit_reboot, LOAD_LIMIT_REBOOT),
        (&g.limit_panic, LOAD_LIMIT_PANIC),
    ];
    if both.iter().all(|(p, _)| **p == Probe::Absent) {
        return Check::new(
            id,
            title,
            Status::Ok,
            "no load limits (these sysctls exist from Linux 6.7)",
            None,
            Value::Null,
        );
    }
    for (probe, rel) in both {
        if limit(probe).is_none() {
            return match probe {
                Probe::Found(_) => Check::new(
                    id,
                    title,
                    Status::Unknown,
                    format!("{}: not a number", shown(rel)),
                    None,
                    Value::Null,
                ),
                other => unknown(id, title, other, rel, g),
            };
        }
    }
    let (reboot, panic) = (limit(&g.limit_reboot), limit(&g.limit_panic));
    let say = |n: Option<i64>| match n {
        Some(-1) => "unlimited".to_owned(),
        Some(n) => format!("{n} left"),
        None => "?".to_owned(),
    };
    let finding = format!("reboot: {}, panic: {}", say(reboot), say(panic));
    let value = json!({"reboot": reboot, "panic": panic});
    let hint = Some(hints::permission(
        kexec_sys::PermissionReason::LoadLimit,
        &situation(g),
    ));
    if reboot == Some(0) {
        Check::new(
            id,
            title,
            Status::Fail,
            format!("{finding}: kexec -l is refused"),
            hint,
            value,
        )
    } else if panic == Some(0) {
        Check::new(
            id,
            title,
            Status::Warn,
            format!("{finding}: kexec -p is refused"),
            hint,
            value,
        )
    } else {
        Check::new(id, title, Status::Ok, finding, None, value)
    }
}

/// The hints' view of who reads `g`.
pub(super) fn situation(g: &Gathered) -> hints::Situation {
    hints::Situation {
        live: g.live,
        arch: g.arch.clone(),
        creds: g
            .status
            .text()
            .and_then(|t| status::parse(&t).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;

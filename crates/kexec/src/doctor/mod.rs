//! `kexec doctor [--json] [--sysroot DIR]`: tell the user what will happen
//! before anything is tried. Each check (privileges, sysctls, lockdown,
//! Secure Boot, the kernel's configuration, the crash region and loaded
//! kernels, firmware, PSCI and CPU hotplug, cache geometry, architecture)
//! is `ok`, `warn`, `fail` or `unknown`, with a one-line finding and a hint
//! true for that state.
//!
//! Three parts: [`gather`] reads the files (through the [`Sysroot`], so a
//! capture replays), [`checks::diagnose`] decides (pure: tested per state),
//! and this file prints a table or JSON (docs/doctor-json.md).
//!
//! Exit code: 0 when no check fails, 1 when one does (warnings and unknowns
//! do not change it); 2 for bad arguments.

pub mod checks;
mod cpus;
pub mod gather;
mod kconfig;
mod platform;
mod security;
#[cfg(test)]
mod testing;

use std::path::PathBuf;

use serde::Serialize;

use crate::failure::{Failure, Output, EXIT_OTHER, EXIT_SUCCESS};
use crate::sysroot::Sysroot;
use checks::{Check, Status};

/// Identifier and version of the JSON document.
pub const SCHEMA: &str = "kexec-rs/doctor/v1";

/// `kexec doctor`'s options.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct DoctorArgs {
    /// Print one JSON object (docs/doctor-json.md).
    #[arg(long)]
    pub json: bool,
    /// Examine a capture (`kexec capture-sysroot DIR`) instead of this machine.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
}

/// The exit code for these checks: 1 if one fails.
pub fn exit_code(checks: &[Check]) -> u8 {
    if checks.iter().any(|c| c.status == Status::Fail) {
        EXIT_OTHER
    } else {
        EXIT_SUCCESS
    }
}

/// How many checks have each status, in `ok, warn, fail, unknown` order.
fn counts(checks: &[Check]) -> [(Status, usize); 4] {
    [Status::Ok, Status::Warn, Status::Fail, Status::Unknown]
        .map(|s| (s, checks.iter().filter(|c| c.status == s).count()))
}

/// What was examined, for the heading.
fn source(root: &Sysroot) -> String {
    if root.is_live() {
        "this machine".to_owned()
    } else {
        format!("the capture in {}", capture_dir(root))
    }
}

/// The capture's directory as given (without the trailing `/` of `path("")`).
fn capture_dir(root: &Sysroot) -> String {
    let dir = root.path("").display().to_string();
    match dir.trim_end_matches('/') {
        "" => dir,
        trimmed => trimmed.to_owned(),
    }
}

/// The report for people: one aligned row per check, its hint below (a
/// hint already given is not repeated).
pub fn to_text(checks: &[Check], root: &Sysroot) -> String {
    let width = checks.iter().map(|c| c.title.len()).max().unwrap_or(0);
    let mut out = format!("kexec doctor: {}\n\n", source(root));
    let mut given: Vec<&str> = Vec::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Unknown => "?",
        };
        out.push_str(&format!(
            "  {status:<4}  {:<width$}  {}\n",
            c.title, c.finding
        ));
        if let Some(hint) = c.hint.as_deref().filter(|h| !given.contains(h)) {
            out.push_str(&format!("  {:<4}  {:<width$}  hint: {hint}\n", "", ""));
            given.push(hint);
        }
    }
    let summary: Vec<String> = counts(checks)
        .iter()
        .map(|(s, n)| format!("{n} {}", s.name()))
        .collect();
    out.push_str(&format!(
        "\n{}; exit {}\n",
        summary.join(", "),
        exit_code(checks)
    ));
    out
}

/// The JSON document (docs/doctor-json.md), fields in this order.
#[derive(Serialize)]
struct JsonDoc<'a> {
    schema: &'static str,
    live: bool,
    sysroot: Option<String>,
    exit_code: u8,
    summary: JsonSummary,
    checks: Vec<JsonCheck<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    ok: usize,
    warn: usize,
    fail: usize,
    unknown: usize,
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    id: &'static str,
    title: &'static str,
    status: &'static str,
    finding: &'a str,
    hint: Option<&'a str>,
    value: &'a serde_json::Value,
}

/// The report for programs (docs/doctor-json.md).
pub fn to_json(checks: &[Check], root: &Sysroot) -> String {
    let [ok, warn, fail, unknown] = counts(checks).map(|(_, n)| n);
    let doc = JsonDoc {
        schema: SCHEMA,
        live: root.is_live(),
        sysroot: (!root.is_live()).then(|| capture_dir(root)),
        exit_code: exit_code(checks),
        summary: JsonSummary {
            ok,
            warn,
            fail,
            unknown,
        },
        checks: checks
            .iter()
            .map(|c| JsonCheck {
                id: c.id,
                title: c.title,
                status: c.status.name(),
                finding: &c.finding,
                hint: c.hint.as_deref(),
                value: &c.value,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// `kexec doctor`.
pub fn run(args: &DoctorArgs) -> Result<Output, Failure> {
    let root = match &args.sysroot {
        Some(dir) if !dir.is_dir() => {
            return Err(Failure::input(
                dir.display().to_string(),
                "not a directory",
                "give a directory written by `kexec capture-sysroot DIR`",
            ))
        }
        Some(dir) => Sysroot::at(dir),
        None => Sysroot::live(),
    };
    let checks = checks::diagnose(&gather::gather(&root));
    Ok(Output {
        text: if args.json {
            to_json(&checks, &root)
        } else {
            to_text(&checks, &root)
        },
        code: exit_code(&checks),
    })
}

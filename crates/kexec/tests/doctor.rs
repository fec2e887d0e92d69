//! `kexec doctor` end to end: golden reports of the committed sysroots
//! (older captures, which say little: what they lack is `unknown`, never a
//! failure; and `doctor-uefi-locked`, Debian 12 under Secure Boot, which
//! says everything), the JSON document against docs/doctor-json.md, a
//! capture's round trip, and the real binary on this machine.
//!
//! `UPDATE_GOLDEN=1 cargo test -p kexec --test doctor` rewrites the goldens.

mod dry_run_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dry_run_support::{golden, manifest, s};
use serde_json::Value;
use test_assets::synthetic::{fixture_sysroot, scratch};

/// Every check id, in report order (docs/doctor-json.md lists the same).
const IDS: [&str; 19] = [
    "arch",
    "privileges",
    "kexec_load_disabled",
    "kexec_load_limit",
    "lockdown",
    "secure_boot",
    "kernel_config",
    "config_kexec",
    "config_kexec_file",
    "config_kexec_sig",
    "config_crash_dump",
    "config_randomize_base",
    "kexec_loaded",
    "crashkernel",
    "crash_kernel_loaded",
    "firmware",
    "psci",
    "cpu_hotplug",
    "cache",
];

fn fixtures() -> PathBuf {
    fixture_sysroot("qemu-virt-1g")
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `kexec ARGS` run from `fixtures/sysroots`, so that reports name the
/// sysroot as given (relative) and goldens do not depend on the checkout.
fn kexec_in_fixtures(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run kexec")
}

fn text(out: &Output) -> (String, String, Option<i32>) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// The document's shape: docs/doctor-json.md.
fn assert_schema(doc: &Value, code: Option<i32>) {
    assert_eq!(doc["schema"], "kexec-rs/doctor/v1");
    assert_eq!(doc["exit_code"].as_i64(), code.map(i64::from));
    let checks = doc["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS, "ids and order");
    let mut counted = std::collections::BTreeMap::new();
    for c in checks {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "unknown"].contains(&status), "{c}");
        *counted.entry(status.to_owned()).or_insert(0u64) += 1;
        assert!(c["title"].is_string() && c["finding"].is_string(), "{c}");
        assert!(c["hint"].is_string() || c["hint"].is_null(), "{c}");
        assert!(c.get("value").is_some(), "{c}");
    }
    for status in ["ok", "warn", "fail", "unknown"] {
        assert_eq!(
            doc["summary"][status].as_u64(),
            Some(counted.get(status).copied().unwrap_or(0)),
            "{status}"
        );
    }
    let fails = counted.get("fail").copied().unwrap_or(0);
    assert_eq!(
        code,
        Some(i32::from(fails > 0)),
        "exit 1 exactly when a check fails"
    );
}

/// The older captures (made before doctor) give a report with what they
/// lack `unknown`, no failure, exit 0.
#[test]
fn golden_reports_of_older_captures() {
    for name in ["virt-1g", "virt-1g-crashkernel", "qemu-virt-1g"] {
        let (out, err, code) = text(&kexec_in_fixtures(&["doctor", "--sysroot", name]));
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(!out.contains("FAIL"), "{out}");
        golden(&format!("doctor-{name}.txt"), &out);
        let json = kexec_in_fixtures(&["doctor", "--json", "--sysroot", name]);
        let doc = json_of(&json);
        assert_schema(&doc, json.status.code());
        assert_eq!(check(&doc, "arch")["status"], "unknown");
        assert_eq!(check(&doc, "psci")["status"], "ok", "{name}");
        assert_eq!(doc["sysroot"], name);
        assert_eq!(doc["live"], false);
    }
}

/// Debian 12 on arm64 under Secure Boot: Debian's kernel locks itself down
/// there (`CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT`), which refuses kexec_load,
/// and it lacks kexec_file_load: nothing can load. Exit 1.
#[test]
fn golden_report_of_a_locked_down_debian() {
    let name = "doctor-uefi-locked";
    let (out, _, code) = text(&kexec_in_fixtures(&["doctor", "--sysroot", name]));
    assert_eq!(code, Some(1), "{out}");
    golden("doctor-uefi-locked.txt", &out);
    let json = kexec_in_fixtures(&["doctor", "--json", "--sysroot", name]);
    golden(
        "doctor-uefi-locked.json",
        &String::from_utf8_lossy(&json.stdout),
    );
    let doc = json_of(&json);
    assert_schema(&doc, json.status.code());
    let lockdown = check(&doc, "lockdown");
    assert_eq!(lockdown["status"], "fail");
    assert_eq!(lockdown["value"], "integrity");
    assert!(lockdown["finding"]
        .as_str()
        .unwrap()
        .contains("nothing can load"));
    assert_eq!(check(&doc, "secure_boot")["value"], "enabled");
    assert_eq!(check(&doc, "config_kexec_file")["value"], Value::Null);
    assert_eq!(check(&doc, "config_kexec")["value"], "y");
    assert_eq!(check(&doc, "firmware")["value"]["uefi"], true);
    assert_eq!(check(&doc, "cache")["value"]["dminline"], 64);
    assert_eq!(check(&doc, "cpu_hotplug")["status"], "ok");
    // The only failure is lockdown's.
    let failed: Vec<_> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(failed, ["lockdown"]);
}

/// A capture of the fixture replays to the same report: every file doctor
/// reads is captured, and what the fixture records as absent stays absent.
#[test]
fn a_capture_replays_to_the_same_report() {
    let from = fixtures().join("doctor-uefi-locked");
    let dir = scratch("doctor-capture");
    let out = kexec_in_fixtures(&["capture-sysroot", "--from", s(&from), s(&dir.join("snap"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = |root: &Path| {
        let out = kexec_in_fixtures(&["doctor", "--json", "--sysroot", s(root)]);
        let mut doc = json_of(&out);
        doc["sysroot"] = Value::Null;
        doc
    };
    assert_eq!(report(&dir.join("snap")), report(&from));
}

#[test]
fn ids_match_docs() {
    let doc = std::fs::read_to_string(manifest().join("../../docs/doctor-json.md")).unwrap();
    for id in IDS {
        assert!(
            doc.contains(&format!("| `{id}` |")),
            "docs/doctor-json.md lacks {id}"
        );
    }
}

#[test]
fn a_sysroot_that_is_not_a_directory_is_bad_input() {
    let (_, err, code) = text(&kexec_in_fixtures(&["doctor", "--sysroot", "no-such-dir"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no-such-dir: not a directory"), "{err}");
}

/// The real binary on this machine: on anything but arm64 the first thing
/// it says is that, and it exits 1.
#[test]
fn doctor_on_this_machine() {
    let out = kexec_in_fixtures(&["doctor"]);
    let (stdout, _, code) = text(&out);
    let json = kexec_in_fixtures(&["doctor", "--json"]);
    let doc = json_of(&json);
    assert_schema(&doc, json.status.code());
    assert_eq!(doc["live"], true);
    let arch = std::env::consts::ARCH;
    assert_eq!(check(&doc, "arch")["value"], arch);
    let first = stdout.lines().nth(2).unwrap_or_default();
    if arch == "aarch64" {
        assert!(first.starts_with("  ok    architecture"), "{stdout}");
    } else {
        assert!(
            first.contains(&format!(
                "FAIL  architecture           {arch}: this is not an arm64 machine"
            )),
            "{stdout}"
        );
        assert_eq!(code, Some(1));
        assert_eq!(check(&doc, "arch")["status"], "fail");
        // The arm64 checks are reported, not judged.
        assert_eq!(check(&doc, "psci")["status"], "unknown");
        assert!(check(&doc, "cache")["finding"]
            .as_str()
            .unwrap()
            .starts_with(&format!("no CTR_EL0: {arch} is not an arm64 machine")));
    }
}

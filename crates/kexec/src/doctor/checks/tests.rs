//! Every state of the checks in `checks.rs`, decided from hand-made
//! [`Gathered`] values (no I/O): each status a check can give, and its
//! hint. `platform/tests.rs` does the same for `platform.rs`.

use std::io::Write;

use super::*;
use crate::doctor::gather::Gathered;
use crate::doctor::testing::{check, config_text, machine, BASE_CONFIG};

fn found(text: &str) -> Probe {
    Probe::Found(text.as_bytes().to_vec())
}

#[test]
fn a_healthy_debian_guest_passes_with_warnings_only() {
    let checks = diagnose(&machine());
    let bad: Vec<_> = checks
        .iter()
        .filter(|c| c.status == Status::Fail || c.status == Status::Unknown)
        .map(|c| (c.id, c.finding.clone()))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(crate::doctor::exit_code(&checks), 0);
    // Debian's kernel lacks CONFIG_KEXEC_FILE: a warning, not a failure.
    assert_eq!(check(&machine(), "config_kexec_file").status, Status::Warn);
    // The ids are unique and in the documented order.
    let ids: Vec<_> = checks.iter().map(|c| c.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "{ids:?}");
}

#[test]
fn architecture() {
    let c = check(&machine(), "arch");
    assert_eq!((c.status, c.value.clone()), (Status::Ok, json!("aarch64")));
    let x86 = Gathered {
        arch: Some("x86_64".into()),
        ..machine()
    };
    let c = check(&x86, "arch");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.finding, "x86_64: this is not an arm64 machine");
    assert!(c
        .hint
        .unwrap()
        .starts_with("this is an x86_64 machine, not arm64"));
    let capture = Gathered {
        live: false,
        ..x86.clone()
    };
    assert!(check(&capture, "arch")
        .finding
        .contains("the capture is not of an arm64 machine"));
    let old = Gathered {
        live: false,
        arch: None,
        ..machine()
    };
    let c = check(&old, "arch");
    assert_eq!(c.status, Status::Unknown);
    assert!(c.hint.unwrap().contains("kexec capture-sysroot"));
    // On x86, the arm64 checks are reported, not judged; the rest are.
    let checks = diagnose(&x86);
    for c in &checks {
        if ARM64_ONLY.contains(&c.id) {
            assert_eq!(c.status, Status::Unknown, "{}", c.id);
            assert!(
                c.finding.ends_with("(not judged: x86_64 is not arm64)"),
                "{}",
                c.finding
            );
            assert_eq!(c.hint, None);
        }
    }
    assert_eq!(crate::doctor::exit_code(&checks), 1);
}

fn with_status(status: &str) -> Gathered {
    Gathered {
        status: found(status),
        ..machine()
    }
}

#[test]
fn privileges() {
    let c = check(&machine(), "privileges");
    assert_eq!(c.status, Status::Ok);
    assert_eq!(c.finding, "root (euid 0) with CAP_SYS_BOOT");
    let user = with_status("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n");
    let c = check(&user, "privileges");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.finding.starts_with("euid 1000 without CAP_SYS_BOOT"),
        "{}",
        c.finding
    );
    assert_eq!(c.hint.as_deref(), Some("run kexec as root"));
    let container = with_status("Uid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\n");
    let c = check(&container, "privileges");
    assert_eq!(c.status, Status::Fail);
    assert!(c.hint.unwrap().starts_with("root here lacks CAP_SYS_BOOT"));
    let capture = Gathered {
        live: false,
        ..machine()
    };
    assert!(check(&capture, "privileges")
        .finding
        .ends_with("(the capturing process)"));
    assert_eq!(
        check(&with_status("Uid:\t0\t0\t0\t0\n"), "privileges").status,
        Status::Unknown
    );
    assert_eq!(
        check(&with_status("CapEff:\tzz\n"), "privileges").status,
        Status::Unknown
    );
    let missing = Gathered {
        live: false,
        status: Probe::NotCaptured,
        ..machine()
    };
    let c = check(&missing, "privileges");
    assert_eq!(c.status, Status::Unknown);
    assert!(c.finding.contains("not in this capture"));
}

#[test]
fn load_disabled() {
    let at = |p: Probe| {
        check(
            &Gathered {
                load_disabled: p,
                ..machine()
            },
            "kexec_load_disabled",
        )
    };
    assert_eq!(at(found("0\n")).status, Status::Ok);
    let c = at(found("1\n"));
    assert_eq!(c.status, Status::Fail);
    assert!(c.hint.unwrap().contains("cannot be reset"));
    assert_eq!(at(found("2\n")).status, Status::Unknown);
    let c = at(Probe::Absent);
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("no kexec support"), "{}", c.finding);
    assert_eq!(at(Probe::NotCaptured).status, Status::Unknown);
}

#[test]
fn load_limits() {
    let at = |reboot: Probe, panic: Probe| {
        check(
            &Gathered {
                limit_reboot: reboot,
                limit_panic: panic,
                ..machine()
            },
            "kexec_load_limit",
        )
    };
    let c = at(Probe::Absent, Probe::Absent);
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.contains("Linux 6.7"));
    let c = at(found("-1\n"), found("3\n"));
    assert_eq!(
        (c.status, c.finding.as_str()),
        (Status::Ok, "reboot: unlimited, panic: 3 left")
    );
    assert_eq!(c.value, json!({"reboot": -1, "panic": 3}));
    let c = at(found("0\n"), found("-1\n"));
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.ends_with("kexec -l is refused"));
    let c = at(found("2\n"), found("0\n"));
    assert_eq!(c.status, Status::Warn);
    assert!(c.finding.ends_with("kexec -p is refused"));
    assert_eq!(at(found("x"), found("-1")).status, Status::Unknown);
    assert_eq!(at(Probe::NotCaptured, found("-1")).status, Status::Unknown);
}

/// `machine()` with `lockdown` and the options of `extra` added to (or,
/// with `-NAME`, removed from) the base configuration.
fn locked(lockdown: Probe, extra: &[&str]) -> Gathered {
    Gathered {
        lockdown,
        boot_config: Some((
            "/boot/config-6.1.0-57-arm64".into(),
            found(&config_text(extra)),
        )),
        ..machine()
    }
}

#[test]
fn lockdown() {
    let at = |g: &Gathered| check(g, "lockdown");
    let none = found("[none] integrity confidentiality\n");
    let integrity = found("none [integrity] confidentiality\n");
    assert_eq!(at(&locked(none, &[])).status, Status::Ok);
    // Debian's kernel (no KEXEC_FILE) locked down: nothing can load.
    let c = at(&locked(integrity.clone(), &[]));
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("nothing can load"), "{}", c.finding);
    assert_eq!(c.value, json!("integrity"));
    let c = at(&locked(integrity.clone(), &["KEXEC_FILE"]));
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.finding.contains("without a signature check"),
        "{}",
        c.finding
    );
    let c = at(&locked(integrity.clone(), &["KEXEC_FILE", "KEXEC_SIG"]));
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.finding.contains("CONFIG_KEXEC_IMAGE_VERIFY_SIG"),
        "{}",
        c.finding
    );
    let c = at(&locked(
        found("none integrity [confidentiality]\n"),
        &["KEXEC_FILE", "KEXEC_SIG", "KEXEC_IMAGE_VERIFY_SIG"],
    ));
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.finding.contains("only kexec_file_load of a signed Image"),
        "{}",
        c.finding
    );
    assert!(c.hint.unwrap().contains("kexec -s -l"));
    let unknown_config = Gathered {
        boot_config: None,
        lockdown: integrity,
        ..machine()
    };
    let c = at(&unknown_config);
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.finding.contains("configuration is unknown"),
        "{}",
        c.finding
    );
    // No lockdown file: without the LSM, nothing to worry about; with it,
    // securityfs is not mounted.
    assert_eq!(
        at(&locked(Probe::Absent, &["-SECURITY_LOCKDOWN_LSM"])).status,
        Status::Ok
    );
    let c = at(&locked(Probe::Absent, &[]));
    assert_eq!(c.status, Status::Unknown);
    assert!(c.hint.unwrap().starts_with("mount -t securityfs"));
    assert_eq!(at(&locked(found("weird\n"), &[])).status, Status::Unknown);
    let capture = Gathered {
        live: false,
        ..locked(Probe::NotCaptured, &[])
    };
    assert_eq!(at(&capture).status, Status::Unknown);
    // A capture recording no lockdown file: unknown, with no advice to
    // mount anything on this machine.
    let recorded = Gathered {
        live: false,
        ..locked(Probe::Absent, &[])
    };
    let c = at(&recorded);
    assert_eq!(c.status, Status::Unknown);
    assert_eq!(c.finding, "/sys/kernel/security/lockdown is absent");
    assert_eq!(c.hint, None);
}

fn uefi(var: Probe, lockdown: &str, extra: &[&str]) -> Gathered {
    Gathered {
        efi: found("64\n"),
        secure_boot: var,
        ..locked(found(lockdown), extra)
    }
}

#[test]
fn secure_boot() {
    let at = |g: &Gathered| check(g, "secure_boot");
    let on = Probe::Found(vec![6, 0, 0, 0, 1]);
    let open = "[none] integrity confidentiality";
    let c = at(&machine());
    assert_eq!((c.status, c.value.clone()), (Status::Ok, json!("no-uefi")));
    let c = at(&uefi(Probe::Found(vec![6, 0, 0, 0, 0]), open, &[]));
    assert_eq!((c.status, c.finding.as_str()), (Status::Ok, "disabled"));
    // On, not locked down, no kexec_file_load: kdump tools passing -s fail.
    let c = at(&uefi(on.clone(), open, &[]));
    assert_eq!(c.status, Status::Warn);
    assert!(c.hint.unwrap().contains("kdump-tools"));
    assert_eq!(
        at(&uefi(on.clone(), open, &["KEXEC_FILE"])).status,
        Status::Ok
    );
    let c = at(&uefi(on, "none [integrity]", &["KEXEC_FILE"]));
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.contains("locked down"), "{}", c.finding);
    assert_eq!(
        at(&uefi(Probe::Found(vec![6, 0, 0, 0, 7]), open, &[])).status,
        Status::Unknown
    );
    let c = at(&uefi(Probe::Absent, open, &[]));
    assert_eq!(c.status, Status::Unknown);
    assert!(c.hint.unwrap().contains("efivarfs"));
    let recorded = Gathered {
        live: false,
        ..uefi(Probe::Absent, open, &[])
    };
    let c = at(&recorded);
    assert_eq!(c.status, Status::Unknown);
    assert_eq!(c.hint, None, "no advice to mount efivarfs here");
    let capture = Gathered {
        live: false,
        efi: Probe::NotCaptured,
        ..machine()
    };
    assert_eq!(at(&capture).status, Status::Unknown);
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

#[test]
fn kernel_configuration_sources() {
    let c = check(&machine(), "kernel_config");
    assert_eq!(c.status, Status::Ok);
    assert!(
        c.finding.starts_with("from /boot/config-6.1.0-57-arm64"),
        "{}",
        c.finding
    );
    // /proc/config.gz (the running kernel's own) comes first.
    let gz = Gathered {
        config_gz: Probe::Found(gzip(&config_text(&["KEXEC_FILE"]))),
        ..machine()
    };
    assert!(check(&gz, "kernel_config")
        .finding
        .starts_with("from /proc/config.gz"));
    assert_eq!(check(&gz, "config_kexec_file").status, Status::Ok);
    // A corrupt one falls through to /boot.
    let bad = Gathered {
        config_gz: Probe::Found(b"\x1f\x8b junk".to_vec()),
        ..machine()
    };
    assert!(check(&bad, "kernel_config")
        .finding
        .starts_with("from /boot/config"));
    let none = Gathered {
        boot_config: Some(("/boot/config-6.1.0-57-arm64".into(), Probe::Absent)),
        ..machine()
    };
    let c = check(&none, "kernel_config");
    assert_eq!(c.status, Status::Unknown);
    assert!(c.hint.unwrap().contains("/boot/config-$(uname -r)"));
    for id in [
        "config_kexec",
        "config_kexec_file",
        "config_kexec_sig",
        "config_crash_dump",
        "config_randomize_base",
    ] {
        assert_eq!(check(&none, id).status, Status::Unknown, "{id}");
    }
    let capture = Gathered {
        live: false,
        config_gz: Probe::NotCaptured,
        boot_config: None,
        ..machine()
    };
    let c = check(&capture, "kernel_config");
    assert!(c.finding.contains("release is unknown"), "{}", c.finding);
    let not_config = Gathered {
        boot_config: Some(("/boot/config-x".into(), found("hello\n"))),
        ..machine()
    };
    assert!(check(&not_config, "kernel_config")
        .finding
        .contains("not a kernel configuration"));
}

#[test]
fn configuration_options() {
    let with = |extra: &[&str], id: &str| check(&locked(Probe::Absent, extra), id);
    assert_eq!(with(&[], "config_kexec").status, Status::Ok);
    assert_eq!(with(&[], "config_kexec").value, json!("y"));
    let c = with(&["-KEXEC", "KEXEC_FILE"], "config_kexec");
    assert_eq!(c.status, Status::Warn);
    let c = with(&["-KEXEC"], "config_kexec");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("cannot kexec"));
    assert_eq!(
        with(&["KEXEC_FILE"], "config_kexec_file").status,
        Status::Ok
    );
    let c = with(&[], "config_kexec_file");
    assert_eq!((c.status, c.value.clone()), (Status::Warn, Value::Null));
    let sig = ["KEXEC_FILE", "KEXEC_SIG", "KEXEC_IMAGE_VERIFY_SIG"];
    assert_eq!(with(&sig, "config_kexec_sig").status, Status::Ok);
    assert!(with(
        &[&sig[..], &["KEXEC_SIG_FORCE"]].concat(),
        "config_kexec_sig"
    )
    .finding
    .contains("required"));
    assert_eq!(
        with(&["KEXEC_FILE", "KEXEC_SIG"], "config_kexec_sig").status,
        Status::Warn
    );
    assert!(with(&["KEXEC_FILE"], "config_kexec_sig")
        .finding
        .contains("does not check"));
    assert!(with(&[], "config_kexec_sig")
        .finding
        .contains("no kexec_file_load"));
    assert_eq!(with(&[], "config_crash_dump").status, Status::Ok);
    let c = with(&["-CRASH_DUMP"], "config_crash_dump");
    assert_eq!(c.status, Status::Warn);
    assert!(c.hint.unwrap().contains("kexec -p"));
    assert!(with(&[], "config_randomize_base")
        .finding
        .starts_with("y: KASLR"));
    let c = with(&["-RANDOMIZE_BASE"], "config_randomize_base");
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.starts_with("not set"));
    // The base configuration is Debian's choices for these options.
    assert!(BASE_CONFIG.contains("# CONFIG_KEXEC_FILE is not set"));
}

#[test]
fn status_names_are_the_documented_ones() {
    let names = [Status::Ok, Status::Unknown, Status::Warn, Status::Fail].map(Status::name);
    assert_eq!(names, ["ok", "unknown", "warn", "fail"]);
}

#[test]
fn findings_name_the_file_and_hints_follow_who_reads() {
    let absent = Gathered {
        load_disabled: Probe::Absent,
        ..machine()
    };
    assert_eq!(
        check(&absent, "kexec_load_disabled").finding,
        "/proc/sys/kernel/kexec_load_disabled is absent: the kernel has no kexec support \
         (CONFIG_KEXEC_CORE)"
    );
    let denied = Probe::Unreadable {
        denied: true,
        message: "Permission denied (os error 13)".into(),
    };
    let at = |live: bool, status: &str| {
        check(
            &Gathered {
                live,
                status: found(status),
                limit_reboot: denied.clone(),
                limit_panic: found("-1\n"),
                ..machine()
            },
            "kexec_load_limit",
        )
    };
    let user = "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n";
    let root = "Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n";
    let c = at(true, user);
    assert_eq!(c.status, Status::Unknown);
    assert_eq!(
        c.finding,
        "/proc/sys/kernel/kexec_load_limit_reboot: cannot read: Permission denied (os error 13)"
    );
    assert_eq!(c.hint.as_deref(), Some("run kexec doctor as root"));
    // Root refused, or a capture's record of a refusal: becoming root is no answer.
    assert_eq!(at(true, root).hint, None);
    assert_eq!(at(false, user).hint, None);
}

#[test]
fn an_unknown_configuration_gets_the_hint_for_why() {
    let at = |gz: Probe, boot: Option<Probe>| {
        check(
            &Gathered {
                live: false,
                config_gz: gz,
                boot_config: boot.map(|p| ("/boot/config-6.1.0-57-arm64".to_owned(), p)),
                ..machine()
            },
            "kernel_config",
        )
        .hint
        .unwrap()
    };
    let capture = "kexec capture-sysroot";
    let install = "/boot/config-$(uname -r)";
    // Neither was captured: capture again.
    assert!(at(Probe::NotCaptured, None).contains(capture));
    assert!(at(Probe::NotCaptured, Some(Probe::NotCaptured)).contains(capture));
    // One is known to be absent: capturing again would not help.
    assert!(at(Probe::NotCaptured, Some(Probe::Absent)).contains(install));
    assert!(at(Probe::Absent, Some(Probe::NotCaptured)).contains(install));
    assert!(at(Probe::Absent, None).contains(install));
}

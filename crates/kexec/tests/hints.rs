//! Hints true for the situation, through the real binary: each failure's
//! hint asserted for the state that produced it. On this machine (an x86
//! host as root, in the project's CI) `kexec -l Image --dry-run` and
//! `kexec -e` must say the machine is not arm64 rather than ask for root or
//! for CONFIG_KEXEC; the other states are made with sysroots and files.
//! The hint functions themselves are unit-tested per state in
//! `src/hints/tests.rs`.

mod dry_run_support;

use std::process::Output;

use dry_run_support::{inputs, kexec, s};
use test_assets::synthetic::{fixture_sysroot, scratch};

/// `kexec: SUBJECT: PROBLEM` and the hint of a failed run.
fn failure(out: &Output) -> (String, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut lines = err.lines();
    let first = lines.next().unwrap_or_default().to_owned();
    let hint = lines
        .next()
        .and_then(|l| l.strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint line: {err}"))
        .to_owned();
    (first, hint)
}

/// This process's effective UID, from /proc/self/status.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `kexec -l Image --dry-run` on this machine. On x86 as root, /proc/iomem
/// is readable and /sys/firmware/fdt does not exist: the hint says the
/// machine has no device tree and points at --sysroot and --dtb, not at
/// root. As a user, the zeros of /proc/iomem come first: run as root.
#[test]
fn dry_run_on_this_machine() {
    let dir = scratch("hints-dry-run");
    let (image, _) = inputs(&dir);
    let out = kexec(&["-l", s(&image), "--dry-run"]);
    let arch = std::env::consts::ARCH;
    let fdt = std::path::Path::new("/sys/firmware/fdt").exists();
    match (arch, euid(), fdt) {
        ("aarch64", ..) | (_, _, true) => {
            // A device-tree machine: the plan is made (or refused for a
            // reason of its own), never for want of a device tree.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("/sys/firmware/fdt: cannot read"), "{err}");
        }
        (_, Some(0), false) => {
            assert_eq!(out.status.code(), Some(3));
            let (first, hint) = failure(&out);
            assert!(
                first.starts_with("kexec: /sys/firmware/fdt: cannot read"),
                "{first}"
            );
            assert!(
                hint.starts_with(&format!(
                    "this is an {arch} machine, not arm64: it has no device tree"
                )),
                "{hint}"
            );
            assert!(
                hint.contains("--sysroot DIR") && hint.contains("--dtb FILE"),
                "{hint}"
            );
            assert!(!hint.contains("run as root"), "{hint}");
        }
        (_, _, false) => {
            let (_, hint) = failure(&out);
            assert!(hint.starts_with("run as root"), "{hint}");
        }
    }
}

/// `kexec -e` on this machine, run only where it cannot boot anything:
/// no kexec support at all, or nothing loaded. On a machine that is not
/// arm64 the hint says so (not "is this kernel built with CONFIG_KEXEC?").
#[test]
fn exec_on_this_machine() {
    let loaded = std::fs::read_to_string("/sys/kernel/kexec_loaded").ok();
    if loaded.as_deref().map(str::trim) == Some("1") {
        // A loaded kernel: `kexec -e` would boot it. Not here.
        eprintln!("skipped: a kernel is loaded on this machine");
        return;
    }
    let out = kexec(&["-e"]);
    assert_eq!(out.status.code(), Some(3));
    let (first, hint) = failure(&out);
    let arch = std::env::consts::ARCH;
    if arch != "aarch64" {
        assert!(
            hint.starts_with(&format!("this is an {arch} machine, not arm64")),
            "{hint}"
        );
        assert!(!hint.contains("CONFIG_KEXEC?"), "{hint}");
    } else if loaded.is_none() {
        assert!(hint.contains("no kexec support"), "{hint}");
    } else {
        assert!(first.ends_with("no kernel is loaded"), "{first}");
        assert!(hint.contains("kexec -l"), "{hint}");
    }
}

/// Status from captures: a capture without the flag file lacks it (not
/// "is this kernel built with CONFIG_KEXEC?"); one with it answers, with no
/// failure (`-S` exits 0 when nothing is loaded, as kexec-tools).
#[test]
fn status_hints_from_captures() {
    let empty = scratch("hints-empty-capture");
    for args in [&["--status"][..], &["-l", "--status"][..]] {
        let out = kexec(&[args, &["--sysroot", s(&empty)]].concat());
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let (first, hint) = failure(&out);
        assert!(first.contains("cannot read the kexec state"), "{first}");
        assert!(hint.starts_with("the capture lacks it"), "{hint}");
    }
    let root = fixture_sysroot("qemu-virt-1g");
    let out = kexec(&["--status", "--sysroot", s(&root)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A crash load without a crash region: the captured machine was booted
/// without crashkernel=, or asked for one the kernel could not reserve.
#[test]
fn crash_region_hints() {
    let dir = scratch("hints-crash");
    let (image, _) = inputs(&dir);
    let (_, hint) = failure(&kexec(&[
        "-p",
        s(&image),
        "--dry-run",
        "--sysroot",
        s(&fixture_sysroot("qemu-virt-1g")),
    ]));
    assert!(
        hint.starts_with("the captured machine was booted without crashkernel="),
        "{hint}"
    );
    let root = dir.join("asked");
    for rel in ["proc/iomem", "sys/firmware/fdt"] {
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture_sysroot("qemu-virt-1g").join(rel), to).unwrap();
    }
    std::fs::write(root.join("proc/cmdline"), "root=/dev/vda crashkernel=64G\n").unwrap();
    let (_, hint) = failure(&kexec(&[
        "-p",
        s(&image),
        "--dry-run",
        "--sysroot",
        s(&root),
    ]));
    assert!(hint.contains("reserved nothing"), "{hint}");
}

/// Files the user names: missing, a directory, a capture lacking the
/// device tree (which --dtb replaces).
#[test]
fn input_and_capture_hints() {
    let dir = scratch("hints-input");
    let (image, _) = inputs(&dir);
    let root = fixture_sysroot("qemu-virt-1g");
    let run = |kernel: &str| failure(&kexec(&["-l", kernel, "--dry-run", "--sysroot", s(&root)]));
    assert_eq!(run(s(&dir.join("nope"))).1, "check the path");
    // -c: kexec_load, which reads the kernel file whole.
    let (_, hint) = failure(&kexec(&[
        "-c",
        "-l",
        s(&dir),
        "--dry-run",
        "--sysroot",
        s(&root),
    ]));
    assert_eq!(hint, "give a file, not a directory");
    let bare = dir.join("bare");
    std::fs::create_dir_all(bare.join("proc")).unwrap();
    std::fs::copy(root.join("proc/iomem"), bare.join("proc/iomem")).unwrap();
    let (first, hint) = failure(&kexec(&[
        "-l",
        s(&image),
        "--dry-run",
        "--sysroot",
        s(&bare),
    ]));
    assert!(first.contains("sys/firmware/fdt: cannot read"), "{first}");
    assert!(
        hint.contains("the capture lacks it") && hint.contains("--dtb FILE"),
        "{hint}"
    );
}

/// `kexec vmcore` outside a crash kernel, and with a missing file.
#[test]
fn vmcore_hints() {
    if std::path::Path::new("/proc/vmcore").exists() {
        eprintln!("skipped: this is a crash kernel");
        return;
    }
    let (_, hint) = failure(&kexec(&["vmcore", "info"]));
    assert!(
        hint.starts_with("/proc/vmcore exists only in a crash kernel"),
        "{hint}"
    );
    let (_, hint) = failure(&kexec(&["vmcore", "info", "/no/such/dump"]));
    assert_eq!(hint, "check the path");
}

//! `--dry-run` states which system call a real run would make and why,
//! from the sysroot's lockdown and `kexec_load_disabled` files (a copy of
//! the `qemu-virt-1g` fixture with those files added).

use std::path::{Path, PathBuf};
use std::process::Command;

use test_assets::synthetic::{fixture_sysroot, scratch, synthetic_image};

/// A scratch copy of `qemu-virt-1g` with `lockdown` (if any) and
/// `kexec_load_disabled`, and a synthetic Image and its gzip'd copy.
fn machine(label: &str, lockdown: Option<&str>, disabled: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(label);
    let root = dir.join("root");
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(fixture_sysroot("qemu-virt-1g"))
        .arg(&root)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    if let Some(text) = lockdown {
        std::fs::create_dir_all(root.join("sys/kernel/security")).unwrap();
        std::fs::write(root.join("sys/kernel/security/lockdown"), text).unwrap();
    }
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    std::fs::write(root.join("proc/sys/kernel/kexec_load_disabled"), disabled).unwrap();
    let image = dir.join("Image");
    std::fs::write(&image, synthetic_image(1 << 20, 20 << 20, 0b1010, 7)).unwrap();
    let ok = Command::new("gzip")
        .args(["-k", "-f"])
        .arg(&image)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    (root, image.clone(), image.with_extension("gz"))
}

/// The dry run's `syscall:` note for `args` on `root`.
fn syscall_note(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(args)
        .arg("--dry-run")
        .arg("--sysroot")
        .arg(root)
        .env("KEXEC_RS_TEST_SEED", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("note: syscall: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("{args:?}: no syscall note in\n{text}"))
}

#[test]
fn auto_on_an_open_kernel_tries_kexec_file_load_with_the_file_itself() {
    let (root, image, gz) = machine(
        "choice-open",
        Some("[none] integrity confidentiality\n"),
        "0\n",
    );
    let note = syscall_note(&root, &["-l", image.to_str().unwrap()]);
    assert!(
        note.starts_with("kexec_file_load (kexec_load if the kernel lacks it): auto:"),
        "{note}"
    );
    assert!(
        note.contains("(lockdown: none; kexec_load_disabled: 0)"),
        "{note}"
    );
    assert!(
        note.contains("the file itself, which carries no PE signature"),
        "{note}"
    );
    assert!(!note.contains("lockdown will refuse it"), "{note}");
    let note = syscall_note(&root, &["-l", gz.to_str().unwrap()]);
    assert!(
        note.contains("decompressed Image in a sealed memfd"),
        "{note}"
    );
    let note = syscall_note(&root, &["-c", "-l", image.to_str().unwrap()]);
    assert!(
        note.starts_with("kexec_load: -c asks for kexec_load"),
        "{note}"
    );
    let note = syscall_note(&root, &["-s", "-l", image.to_str().unwrap()]);
    assert!(
        note.starts_with("kexec_file_load: -s asks for kexec_file_load"),
        "{note}"
    );
    let note = syscall_note(&root, &["-l", image.to_str().unwrap(), "-i"]);
    assert!(
        note.starts_with("kexec_load: auto: only kexec_load honours -i"),
        "{note}"
    );
}

#[test]
fn a_locked_down_sysroot_means_no_fallback_and_a_refused_unsigned_image() {
    let (root, image, gz) = machine(
        "choice-locked",
        Some("none [integrity] confidentiality\n"),
        "1\n",
    );
    let note = syscall_note(&root, &["-l", image.to_str().unwrap()]);
    assert!(
        note.starts_with(
            "kexec_file_load: auto: the kernel is locked down (integrity), so only \
             kexec_file_load of a signed Image can load; no fallback"
        ),
        "{note}"
    );
    assert!(
        note.contains("kexec_load_disabled: 1 (every kexec load refused until reboot)"),
        "{note}"
    );
    assert!(
        note.contains("lockdown will refuse it: it has no PE (Authenticode) signature"),
        "{note}"
    );
    let note = syscall_note(&root, &["-l", gz.to_str().unwrap()]);
    assert!(
        note.contains("lockdown will refuse it: it is a gzip-compressed Image"),
        "{note}"
    );
}

#[test]
fn without_a_lockdown_file_the_state_is_unknown_and_auto_may_fall_back() {
    let (root, image, _) = machine("choice-unknown", None, "0\n");
    let note = syscall_note(&root, &["-l", image.to_str().unwrap()]);
    assert!(
        note.contains("lockdown: unknown (no /sys/kernel/security/lockdown)"),
        "{note}"
    );
    assert!(
        note.starts_with("kexec_file_load (kexec_load if the kernel lacks it)"),
        "{note}"
    );
}

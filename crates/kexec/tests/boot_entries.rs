//! `kexec boot` against boot partitions laid out as real distributions lay
//! them out (`tests/boot_trees/<name>/root`, copied over a captured machine
//! state, `fixtures/sysroots/qemu-virt-1g`), with the kernels, initrds and
//! UKIs each tree's `synth.txt` lists written here (kernel bytes are never
//! committed):
//!
//! - `fedora`: Fedora 40's GRUB BLS entries on /boot (XBOOTLDR role), ESP at
//!   /boot/efi, a rescue entry; `fedora-kernelopts`: Fedora 31's
//!   `options $kernelopts`;
//! - `arch-uki`: systemd-boot, ESP at /efi, mkinitcpio UKIs in
//!   /efi/EFI/Linux, a Memtest86+ `efi` entry;
//! - `debian`: systemd-boot with kernel-install's layout on the ESP at
//!   /boot/efi (`<machine-id>/<version>/linux`), bootctl's `default
//!   <machine-id>-*`, an exhausted boot counter, a second OS, an x64 entry;
//! - `broken`: what systemd-boot would not offer, and what kexec cannot boot.
//!
//! Golden files: `tests/golden/boot-*`; `UPDATE_GOLDEN=1` rewrites them.

mod dry_run_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use dry_run_support::{golden, kexec, manifest, s, stdout_ok};
use kexec_core::bootentry::efivar;
use test_assets::pe::uki_with_osrel;
use test_assets::synthetic::{fixture_sysroot, scratch, synthetic_image};

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A small synthetic Image; `n` varies its bytes (and so its digest).
fn kernel(n: u32) -> Vec<u8> {
    synthetic_image(64 << 10, 20 << 20, 0b1010, 7 + 2 * n)
}

/// The machine state of a QEMU virt guest plus the boot tree `name`, with
/// its synthesized files, in a scratch directory of its own (`test` names
/// it: tests run in parallel); returns the root.
fn tree(name: &str, test: &str) -> PathBuf {
    let root = scratch(&format!("boot-{test}")).join("root");
    copy_tree(&fixture_sysroot("qemu-virt-1g"), &root);
    let src = manifest().join("tests/boot_trees").join(name);
    copy_tree(&src.join("root"), &root);
    let synth = fs::read_to_string(src.join("synth.txt")).unwrap();
    for (n, line) in synth
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .enumerate()
    {
        let n = u32::try_from(n).unwrap();
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "kernel" => write(&root, words[1], &kernel(n)),
            "initrd" => {
                let len: u32 = words[2].parse().unwrap();
                let bytes: Vec<u8> = (0..len)
                    .map(|i| u8::try_from((i * (n + 3)) % 251).unwrap())
                    .collect();
                write(&root, words[1], &bytes);
            }
            "uki" | "truncated-uki" => {
                let osrel = fs::read_to_string(src.join(words.get(2).unwrap_or(&"arch.osrel")))
                    .unwrap_or_else(|_| "ID=x\n".into());
                let cmdline = words[3.min(words.len())..].join(" ");
                let initrd = vec![0x30u8; 3000 + n as usize];
                let mut uki = uki_with_osrel(
                    &kernel(n),
                    &osrel,
                    (!cmdline.is_empty()).then_some(cmdline.as_str()),
                    Some(&initrd),
                );
                if words[0] == "truncated-uki" {
                    uki.truncate(uki.len() / 2);
                }
                write(&root, words[1], &uki);
            }
            "efivar" => write(
                &root,
                &format!("{}/{}", efivar::EFIVARS_DIR, efivar::file_name(words[1])),
                &efivar::encode_string(words[2]),
            ),
            other => panic!("synth.txt: unknown {other}"),
        }
    }
    root
}

fn boot(root: &Path, args: &[&str]) -> Output {
    kexec(&[&["boot", "--sysroot", s(root)], args].concat())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first stderr line of a failed run, with its exit code.
fn failed(out: &Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        stderr(out).lines().next().unwrap_or("").to_owned(),
    )
}

#[test]
fn fedora_lists_newest_first_and_boots_it() {
    let root = tree("fedora", "fedora-1");
    golden(
        "boot-fedora-list.txt",
        &stdout_ok(&boot(&root, &["--list"])),
    );
    let out = stdout_ok(&boot(&root, &["--dry-run"]));
    golden("boot-fedora-dry-run.txt", &out);
    assert!(
        out.contains("kernel:  /boot/vmlinuz-6.8.9-300.fc40.aarch64"),
        "{out}"
    );
    // By title, version, or id without .conf: the rescue entry.
    for name in [
        "Fedora Linux (0-rescue-5f3b2c1d9e8a4b7c6d5e4f3a2b1c0d9e) 40 (Server Edition)",
        "0-rescue-5f3b2c1d9e8a4b7c6d5e4f3a2b1c0d9e",
        "5f3b2c1d9e8a4b7c6d5e4f3a2b1c0d9e-0-rescue",
    ] {
        let out = stdout_ok(&boot(&root, &[name, "--dry-run"]));
        assert!(
            out.contains("kernel:  /boot/vmlinuz-0-rescue-5f3b"),
            "{name}: {out}"
        );
    }
}

/// systemd-boot passes `$kernelopts` literally (only GRUB expands it from
/// grubenv): booting such an entry would lose `root=`, so it is refused.
#[test]
fn fedora_kernelopts_is_refused_with_the_reason() {
    let root = tree("fedora-kernelopts", "fedora-kernelopts-1");
    let list = stdout_ok(&boot(&root, &["--list"]));
    assert!(
        list.contains("not bootable by kexec: options use GRUB variables ($kernelopts)"),
        "{list}"
    );
    let out = boot(&root, &["--dry-run"]);
    let (code, line) = failed(&out);
    assert_eq!(code, Some(2), "{}", stderr(&out));
    assert!(
        line.ends_with("5.3.7-301.fc31.aarch64.conf: options use GRUB variables ($kernelopts), which only GRUB expands (from its grubenv); systemd-boot passes them literally"),
        "{line}"
    );
}

#[test]
fn arch_ukis_in_efi_linux() {
    let root = tree("arch-uki", "arch-uki-1");
    golden(
        "boot-arch-uki-list.txt",
        &stdout_ok(&boot(&root, &["--list"])),
    );
    let json = stdout_ok(&boot(&root, &["arch-linux-lts", "--dry-run", "--json"]));
    golden("boot-arch-uki-lts-dry-run.json", &json);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["entry"]["id"], "arch-linux-lts.efi");
    assert_eq!(doc["plan"]["kernel"]["file"], "arch-linux-lts.efi");
    assert_eq!(doc["plan"]["cmdline"], "root=PARTUUID=8c1f0a2e-02 rw quiet");
    // The UKI's own .initrd is the initrd segment.
    let segs = doc["plan"]["segments"].as_array().unwrap();
    assert!(
        segs.iter()
            .any(|s| s["source"] == "arch-linux-lts.efi:.initrd"),
        "{json}"
    );
    // The default: the first in systemd-boot's order.
    let out = stdout_ok(&boot(&root, &["--dry-run"]));
    assert!(
        out.starts_with("boot entry /efi/EFI/Linux/arch-linux.efi (type2, ESP /efi)"),
        "{out}"
    );
    // The memtest entry is listed but refused.
    let (code, line) = failed(&boot(&root, &["Memtest86+", "--dry-run"]));
    assert_eq!(code, Some(2));
    assert_eq!(
        line,
        "kexec: /efi/loader/entries/memtest86+.conf: efi /memtest86+/memtest.efi: an EFI program, \
         which only firmware can start (kexec boots Linux)"
    );
}

#[test]
fn debian_kernel_install_layout_glob_and_boot_counting() {
    let root = tree("debian", "debian-1");
    let json = stdout_ok(&boot(&root, &["--list", "--json"]));
    golden("boot-debian-list.json", &json);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "9a8b7c6d5e4f40312a1b2c3d4e5f6071-6.9.1-1-aarch64-ARCH.conf",
            "2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-21-arm64.conf",
            "2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-18-arm64.conf",
            "2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-22-arm64.conf",
        ],
        "sort-key archarm < debian; the exhausted 6.1.0-22+0-3 last"
    );
    assert_eq!(
        doc["default"],
        "2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-21-arm64.conf"
    );
    assert_eq!(
        doc["default_reason"],
        "loader.conf default \"2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-*\""
    );
    assert_eq!(
        doc["skipped"][0]["problem"],
        "architecture x64, not aa64 (arm64)"
    );
    golden(
        "boot-debian-dry-run.txt",
        &stdout_ok(&boot(&root, &["--dry-run"])),
    );
    // The second OS's entry has two initrds: one concatenated segment, the
    // first padded from 4099 to 4100 bytes.
    let json = stdout_ok(&boot(
        &root,
        &[
            "9a8b7c6d5e4f40312a1b2c3d4e5f6071-6.9.1-1-aarch64-ARCH",
            "--dry-run",
            "--json",
        ],
    ));
    golden("boot-debian-two-initrds-dry-run.json", &json);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let initrd = doc["plan"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "initrd")
        .unwrap();
    assert_eq!(
        initrd["source"],
        "9a8b7c6d5e4f40312a1b2c3d4e5f6071-6.9.1-1-aarch64-ARCH.initrd"
    );
    assert_eq!(initrd["bufsz"], 4100 + 120_000);
}

/// `@saved` is the entry booted now (LoaderEntrySelected); LoaderEntryOneShot
/// wins over loader.conf.
#[test]
fn efi_variables_choose_the_default() {
    let root = tree("debian", "debian-2");
    let conf = root.join("boot/efi/loader/loader.conf");
    fs::write(&conf, "default @saved\n").unwrap();
    fs::write(
        root.join(efivar::EFIVARS_DIR)
            .join(efivar::file_name(efivar::SELECTED)),
        efivar::encode_string("2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-18-arm64.conf"),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&stdout_ok(&boot(&root, &["--list", "--json"]))).unwrap();
    assert_eq!(
        doc["default"],
        "2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-6.1.0-18-arm64.conf"
    );
    assert_eq!(doc["default_reason"], "loader.conf default \"@saved\"");
    fs::write(
        root.join(efivar::EFIVARS_DIR)
            .join(efivar::file_name(efivar::ONE_SHOT)),
        efivar::encode_string("9a8b*"),
    )
    .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&stdout_ok(&boot(&root, &["--list", "--json"]))).unwrap();
    assert_eq!(
        doc["default"],
        "9a8b7c6d5e4f40312a1b2c3d4e5f6071-6.9.1-1-aarch64-ARCH.conf"
    );
    assert_eq!(
        doc["default_reason"],
        "EFI variable LoaderEntryOneShot \"9a8b*\""
    );
}

#[test]
fn broken_entries_are_listed_with_file_and_line_and_refused_when_named() {
    let root = tree("broken", "broken-1");
    let list = stdout_ok(&boot(&root, &["--list"]));
    golden("boot-broken-list.txt", &list);
    assert!(
        !list.contains("hidden.conf") && !list.contains("auto-windows"),
        "{list}"
    );
    for (name, code, message) in [
        ("escape", 2, "kexec: /boot/loader/entries/escape.conf: line 3: initrd \"/../../etc/shadow\": `..` would leave the partition"),
        ("twice", 2, "kexec: /boot/loader/entries/twice.conf: line 3: `efi` after `linux`: an entry starts one thing (systemd-boot ignores it too)"),
        ("latin1", 2, "kexec: /boot/loader/entries/latin1.conf: line 1: not UTF-8"),
        ("gone", 2, "kexec: /boot/loader/entries/gone.conf: linux /boot/vmlinuz-gone is missing"),
        ("No initrd", 2, "kexec: /boot/loader/entries/noinitrd.conf: its initrd /boot/initrd-gone.img is missing"),
        ("Overlay", 2, "kexec: /boot/loader/entries/overlay.conf: devicetree-overlay /overlays/uart.dtbo: applying device tree overlays is not supported"),
        ("net", 2, "kexec: /boot/loader/entries/net.conf: uki-url http://boot.example/uki.efi: a network boot, not supported"),
        ("cut.efi", 2, "kexec: /boot/EFI/Linux/cut.efi: truncated: its sections end at byte"),
        ("nothing-like-it", 2, "kexec: arguments: no boot entry \"nothing-like-it\""),
    ] {
        let out = boot(&root, &[name, "--dry-run"]);
        let (got_code, line) = failed(&out);
        assert_eq!(got_code, Some(code), "{name}: {}", stderr(&out));
        assert!(line.starts_with(message), "{name}: {line}");
        assert!(stderr(&out).lines().nth(1).unwrap_or("").starts_with("hint: "), "{name}");
    }
    // The default (the first in order, by id: overlay > noinitrd > good)
    // cannot be booted: refused, not replaced by another.
    let (code, line) = failed(&boot(&root, &["--dry-run"]));
    assert_eq!(code, Some(2));
    assert!(
        line.starts_with("kexec: /boot/loader/entries/overlay.conf: devicetree-overlay"),
        "{line}"
    );
    // The good one boots when named.
    let out = stdout_ok(&boot(&root, &["good", "--dry-run"]));
    assert!(
        out.starts_with("boot entry /boot/loader/entries/good.conf"),
        "{out}"
    );
}

#[test]
fn arguments_and_missing_partitions() {
    let root = tree("fedora", "fedora-2");
    // --sysroot and --json only describe; -e never with --dry-run/--list.
    let (code, line) = failed(&boot(&root, &[]));
    assert_eq!(code, Some(2));
    assert!(
        line.contains("--sysroot describes another machine"),
        "{line}"
    );
    let (code, line) = failed(&kexec(&["boot", "--json", "--esp", s(&root)]));
    assert_eq!(
        (code, line.as_str()),
        (
            Some(2),
            "kexec: arguments: --json describes a listing or a plan"
        )
    );
    for argv in [
        &["boot", "--list", "--dry-run"][..],
        &["boot", "-e", "--dry-run"],
        &["boot", "x", "--list"],
    ] {
        assert_eq!(kexec(argv).status.code(), Some(2), "{argv:?}");
    }
    // --esp/--boot are inside the sysroot.
    let out = stdout_ok(&boot(&root, &["--boot", "/boot", "--list"]));
    assert!(out.starts_with("XBOOTLDR: /boot\n"), "{out}");
    let (code, line) = failed(&boot(&root, &["--esp", "/nope", "--list"]));
    assert_eq!(code, Some(2));
    assert!(line.ends_with("/nope: not a directory"), "{line}");
    // No partition at all.
    let empty = scratch("boot-empty");
    let (code, line) = failed(&boot(&empty, &["--list"]));
    assert_eq!(code, Some(3));
    assert!(line.contains("no boot partition"), "{line}");
    // A partition without entries.
    fs::create_dir_all(empty.join("efi/EFI/BOOT")).unwrap();
    let (code, line) = failed(&boot(&empty, &["--dry-run"]));
    assert_eq!(code, Some(3));
    assert_eq!(
        line,
        "kexec: boot entries: no bootable entry in ESP /efi (0 skipped)"
    );
}

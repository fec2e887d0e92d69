//! The exact command lines real callers run (docs/compat.md, "The callers'
//! exact command lines"), each made against `--dry-run --sysroot` fixtures:
//! they must be accepted and give the plan the caller means (mode, initrd,
//! command line byte for byte). Each names its source. The same lines run
//! in the QEMU guest (`callers_command_lines_in_the_guest`, xtask/tests/e2e.rs).

mod dry_run_support;

use dry_run_support::{inputs, kexec, s, stdout_ok};
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch};

/// Run `words` (with `{K}` the kernel and `{I}` the initrd of the scratch
/// directory `name`) plus `--dry-run --json --sysroot ROOT`; the plan.
fn plan(name: &str, root: &str, words: &[&str]) -> serde_json::Value {
    let dir = scratch(name);
    let (image, initrd) = inputs(&dir);
    let mut args: Vec<String> = words
        .iter()
        .map(|w| w.replace("{K}", s(&image)).replace("{I}", s(&initrd)))
        .collect();
    let root = sysroot(root);
    args.extend(["--dry-run", "--json", "--sysroot", s(&root)].map(str::to_owned));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(&stdout_ok(&kexec(&argv))).unwrap()
}

fn has_initrd(plan: &serde_json::Value) -> bool {
    plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["kind"] == "initrd")
}

/// (source, command words, sysroot, mode, command line, initrd?)
type Row = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
    bool,
);

const LOADS: &[Row] = &[
    (
        "Debian kdump-tools kdump-config kdump_load",
        &[
            "-p",
            "--command-line= root=/dev/vda1  nr_cpus=1 reset_devices",
            "--initrd={I}",
            "{K}",
        ],
        "qemu-virt-crash",
        "crash",
        " root=/dev/vda1  nr_cpus=1 reset_devices",
        true,
    ),
    (
        "kdump-tools under Secure Boot",
        &[
            "-p",
            "-s",
            "--command-line=root=/dev/vda1 reset_devices",
            "--initrd={I}",
            "{K}",
        ],
        "qemu-virt-crash",
        "crash",
        "root=/dev/vda1 reset_devices",
        true,
    ),
    (
        "Fedora kdump-utils kdumpctl, KEXEC_ARGS=-s plus Secure Boot's -s",
        &[
            "-s",
            "-s",
            "-p",
            "--command-line=root=/dev/vda1 irqpoll nr_cpus=1 reset_devices",
            "--initrd={I}",
            "{K}",
        ],
        "qemu-virt-crash",
        "crash",
        "root=/dev/vda1 irqpoll nr_cpus=1 reset_devices",
        true,
    ),
    (
        "older kdumpctl: -d -p",
        &[
            "-d",
            "-p",
            "--command-line=root=/dev/vda1",
            "--initrd={I}",
            "{K}",
        ],
        "qemu-virt-crash",
        "crash",
        "root=/dev/vda1",
        true,
    ),
    (
        "kdump-utils' own test: --reuse-cmdline --append=rd.earlykdump",
        &[
            "-s",
            "-l",
            "{K}",
            "--initrd={I}",
            "--reuse-cmdline",
            "--append=rd.earlykdump",
        ],
        "qemu-virt-1g",
        "normal",
        "root=/dev/vda1 ro console=ttyAMA0 quiet rd.earlykdump",
        true,
    ),
    (
        "systemd systemctl kexec (separate arguments)",
        &[
            "--load",
            "{K}",
            "--append",
            "root=/dev/vda1 ro",
            "--initrd",
            "{I}",
        ],
        "qemu-virt-1g",
        "normal",
        "root=/dev/vda1 ro",
        true,
    ),
    (
        "openSUSE kdump: kernel first, -a last",
        &[
            "-p",
            "{K}",
            "--append=root=/dev/vda2 irqpoll nr_cpus=1",
            "--initrd={I}",
            "-a",
        ],
        "qemu-virt-crash",
        "crash",
        "root=/dev/vda2 irqpoll nr_cpus=1",
        true,
    ),
    (
        "Debian kexec-tools /etc/init.d/kexec-load",
        &[
            "-l",
            "{K}",
            "--initrd={I}",
            "--append=root=/dev/vda1 ro quiet",
        ],
        "qemu-virt-1g",
        "normal",
        "root=/dev/vda1 ro quiet",
        true,
    ),
    (
        "NixOS netboot kexec script",
        &[
            "--load",
            "{K}",
            "--kexec-syscall-auto",
            "--initrd={I}",
            "--no-checks",
            "--command-line",
            "init=/nix/store/x-nixos/init loglevel=4",
        ],
        "qemu-virt-1g",
        "normal",
        "init=/nix/store/x-nixos/init loglevel=4",
        true,
    ),
    (
        "petitboot without arguments: the literal --append=\"\"",
        &["-l", "--initrd={I}", "--append=\"\"", "{K}"],
        "qemu-virt-1g",
        "normal",
        "\"\"",
        true,
    ),
];

#[test]
fn each_callers_load_gives_the_plan_it_means() {
    for (i, (source, words, root, mode, cmdline, initrd)) in LOADS.iter().enumerate() {
        let p = plan(&format!("caller-{i}"), root, words);
        assert_eq!(p["mode"], *mode, "{source}");
        assert_eq!(p["cmdline"], *cmdline, "{source}");
        assert_eq!(has_initrd(&p), *initrd, "{source}");
        assert_eq!(p["valid"], true, "{source}");
    }
}

#[test]
fn an_empty_command_line_keeps_the_device_trees_bootargs() {
    // systemd passes `--append ""` for an entry without options; kexec-tools
    // then leaves bootargs alone (arm64 set_bootargs), so the new kernel
    // keeps root=.
    let p = plan(
        "empty-append",
        "qemu-virt-1g",
        &["--load", "{K}", "--append", ""],
    );
    assert_eq!(p["cmdline"], serde_json::Value::Null);
    let changes = p["chosen"]["changes"].as_array().unwrap();
    assert!(
        changes.iter().all(|c| c["property"] != "bootargs"),
        "{changes:?}"
    );
    // The last --append wins.
    let p = plan(
        "last-append",
        "qemu-virt-1g",
        &["-l", "{K}", "--append=a", "--append=b"],
    );
    assert_eq!(p["cmdline"], "b");
}

#[test]
fn unload_status_and_ckr_size_as_callers_run_them() {
    let crash = sysroot("qemu-virt-crash");
    // kdump-tools / kdumpctl / openSUSE unload.
    for argv in [&["-p", "-u"][..], &["-s", "-p", "-u"], &["-a", "-p", "-u"]] {
        let out = kexec(&[argv, &["--dry-run"]].concat());
        assert_eq!(
            stdout_ok(&out),
            "dry run: would unload the crash kernel\n",
            "{argv:?}"
        );
    }
    // kdump-tools' autopkgtest: the crash region's size in bytes.
    let out = kexec(&["--print-ckr-size", "--sysroot", s(&crash)]);
    let size: u64 = stdout_ok(&out).trim().parse().unwrap();
    let iomem = std::fs::read_to_string(crash.join("proc/iomem")).unwrap();
    let line = iomem.lines().find(|l| l.contains("Crash kernel")).unwrap();
    let (a, b) = line
        .trim()
        .split_once(" : ")
        .unwrap()
        .0
        .split_once('-')
        .unwrap();
    let (a, b) = (
        u64::from_str_radix(a, 16).unwrap(),
        u64::from_str_radix(b, 16).unwrap(),
    );
    assert_eq!(size, b - a + 1, "{line}");
    // No reservation: 0, as kexec-tools prints.
    let out = kexec(&["--print-ckr-size", "--sysroot", s(&sysroot("qemu-virt-1g"))]);
    assert_eq!(stdout_ok(&out), "0\n");
}

#[test]
fn a_reused_line_that_is_not_utf8_passes_through() {
    // /proc/cmdline may hold any bytes (a Latin-1 label); --reuse-cmdline
    // must pass them on, never U+FFFD. The text report shows the bytes.
    let dir = scratch("latin1-root");
    let from = sysroot("qemu-virt-1g");
    for rel in ["proc/iomem", "sys/firmware/fdt"] {
        std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), dir.join(rel)).unwrap();
    }
    std::fs::write(dir.join("proc/cmdline"), b"root=LABEL=caf\xe9 ro\n").unwrap();
    let (image, _) = inputs(&scratch("latin1-inputs"));
    let out = kexec(&[
        "-l",
        s(&image),
        "--reuse-cmdline",
        "--dry-run",
        "--sysroot",
        s(&dir),
    ]);
    let text = stdout_ok(&out);
    assert!(
        text.contains(r#"command line: b"root=LABEL=caf\xe9 ro" (not UTF-8, passed as is)"#),
        "{text}"
    );
    assert!(!text.contains('\u{fffd}'), "{text}");
}

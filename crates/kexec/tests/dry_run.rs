//! End-to-end tests of `kexec ... --dry-run` against captured sysroots.
//!
//! Golden files live in `tests/golden/`; they are compared byte for byte.
//! `UPDATE_GOLDEN=1 cargo test -p kexec --test dry_run` rewrites them.
//! Seeds are fixed with `KEXEC_RS_TEST_SEED`; the kernel and initrd are
//! generated here, so the digests are stable.

mod dry_run_support;

use std::path::Path;
use std::process::Output;

use dry_run_support::{golden, inputs, kexec, s, stdout_ok};
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch};

#[test]
fn golden_qemu_virt_1g_reuse_cmdline_with_initrd() {
    let dir = scratch("1g");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    let base = [
        "-l",
        s(&image),
        "--initrd",
        s(&initrd),
        "--reuse-cmdline",
        "--append=console=ttyAMA0",
    ];
    let json = stdout_ok(&kexec(
        &[&base[..], &["--dry-run", "--json", "--sysroot", s(&root)]].concat(),
    ));
    golden("qemu-virt-1g.json", &json);
    let text = stdout_ok(&kexec(
        &[&base[..], &["--dry-run", "--sysroot", s(&root)]].concat(),
    ));
    golden("qemu-virt-1g.txt", &text);
}

#[test]
fn golden_qemu_virt_4g_command_line_no_initrd() {
    let dir = scratch("4g");
    let (image, _) = inputs(&dir);
    let root = sysroot("qemu-virt-4g");
    let out = kexec(&[
        "-l",
        s(&image),
        "--command-line",
        "root=/dev/vda2 rw",
        "--dry-run",
        "--json",
        "--sysroot",
        s(&root),
    ]);
    golden("qemu-virt-4g.json", &stdout_ok(&out));
}

#[test]
fn same_inputs_same_plan() {
    let dir = scratch("determinism");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("qemu-virt-4g");
    let args = [
        "-l",
        s(&image),
        "--initrd",
        s(&initrd),
        "--dry-run",
        "--json",
        "--sysroot",
        s(&root),
    ];
    assert_eq!(stdout_ok(&kexec(&args)), stdout_ok(&kexec(&args)));
}

/// The same Image gzip-compressed plans the same kernel segment: the CLI
/// goes through `kexec_core::kernel::decode`.
#[test]
fn gzip_kernel_plans_like_the_plain_image() {
    use std::io::Write;
    let dir = scratch("gzip");
    let (image, _) = inputs(&dir);
    let gz = dir.join("Image.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&image).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let root = sysroot("qemu-virt-1g");
    let plan = |k: &Path| -> serde_json::Value {
        let out = kexec(&["-l", s(k), "--dry-run", "--json", "--sysroot", s(&root)]);
        serde_json::from_str(&stdout_ok(&out)).unwrap()
    };
    let (plain, packed) = (plan(&image), plan(&gz));
    assert_eq!(packed["kernel"]["format"], "gzip-compressed Image");
    assert_eq!(
        plain["segments"][0]["sha256"],
        packed["segments"][0]["sha256"]
    );
    assert_eq!(plain["segments"][0]["mem"], packed["segments"][0]["mem"]);
    assert_eq!(packed["segments"][0]["source"], "Image.gz");
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_dtb_is_bad_input() {
    let dir = scratch("bad-dtb");
    let (image, _) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    let not_a_dtb = root.join("proc/iomem");
    let out = kexec(&[
        "-l",
        s(&image),
        "--dtb",
        s(&not_a_dtb),
        "--dry-run",
        "--sysroot",
        s(&root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    let mut lines = err.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("kexec: ") && first.contains("proc/iomem: bad magic 0x30303030"),
        "{err}"
    );
    assert!(lines.next().unwrap().starts_with("hint: "), "{err}");
}

#[test]
fn bad_kernel_is_bad_input() {
    let dir = scratch("bad-kernel");
    let junk = dir.join("junk");
    std::fs::write(&junk, [0u8; 4096]).unwrap();
    let out = kexec(&[
        "-l",
        s(&junk),
        "--dry-run",
        "--sysroot",
        s(&sysroot("qemu-virt-1g")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("not an arm64 kernel"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn crash_load_without_crash_region_is_a_system_problem() {
    let dir = scratch("no-crash");
    let (image, _) = inputs(&dir);
    let out = kexec(&[
        "-p",
        s(&image),
        "--dry-run",
        "--sysroot",
        s(&sysroot("qemu-virt-1g")),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("no \"Crash kernel\" region"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn hidden_iomem_addresses_are_a_system_problem() {
    let dir = scratch("hidden");
    let (image, _) = inputs(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/iomem"),
        "00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n",
    )
    .unwrap();
    let out = kexec(&["-l", s(&image), "--dry-run", "--sysroot", s(&root)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("all addresses are zero"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn initrd_that_does_not_fit_is_explained() {
    let dir = scratch("too-big");
    let (image, _) = inputs(&dir);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::create_dir_all(root.join("sys/firmware")).unwrap();
    std::fs::write(root.join("proc/iomem"), "40000000-43ffffff : System RAM\n").unwrap();
    std::fs::copy(
        sysroot("qemu-virt-1g").join("sys/firmware/fdt"),
        root.join("sys/firmware/fdt"),
    )
    .unwrap();
    let big = dir.join("big.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(50 << 20)
        .unwrap();
    let out = kexec(&[
        "-l",
        s(&image),
        "--initrd",
        s(&big),
        "--dry-run",
        "--sysroot",
        s(&root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("big.img: initrd of 50 MiB does not fit: largest free RAM range in usable RAM within the kernel's 32 GiB window is 0x41400000-0x43ffffff (44 MiB)"),
        "{err}"
    );
}

#[test]
fn a_sysroot_is_only_for_dry_runs() {
    // A plan made from another machine's files must never be loaded here.
    let dir = scratch("sysroot-load");
    let (image, _) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    for args in [
        &["-l", s(&image), "--sysroot", s(&root)][..],
        &["-e", "--sysroot", s(&root)][..],
        &["-u", "--sysroot", s(&root)][..],
    ] {
        let out = kexec(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains("--sysroot describes another machine"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn status_reads_the_kexec_state() {
    // kexec-tools' -S: exit 1 when loaded, 0 when not; the crash kernel
    // unless -l is given.
    let root = sysroot("qemu-virt-1g");
    for (argv, text) in [
        (&["--status"][..], "no crash kernel is loaded\n"),
        (&["-l", "-S"][..], "no normal kernel is loaded\n"),
    ] {
        let out = kexec(&[argv, &["--sysroot", s(&root)]].concat());
        assert_eq!(out.status.code(), Some(0), "{argv:?}: {}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{argv:?}");
    }
    let dir = scratch("status-loaded");
    std::fs::create_dir_all(dir.join("sys/kernel")).unwrap();
    std::fs::write(dir.join("sys/kernel/kexec_loaded"), "1\n").unwrap();
    std::fs::write(dir.join("sys/kernel/kexec_crash_loaded"), "0\n").unwrap();
    let out = kexec(&["-l", "--status", "--sysroot", s(&dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a normal kernel is loaded\n"
    );
    let out = kexec(&["-S", "--sysroot", s(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    std::fs::remove_file(dir.join("sys/kernel/kexec_crash_loaded")).unwrap();
    let out = kexec(&["-p", "-S", "--sysroot", s(&dir)]);
    assert_eq!(out.status.code(), Some(3), "an unreadable flag is an error");
}

#[test]
fn command_line_too_long_is_bad_input() {
    let dir = scratch("long-cmdline");
    let (image, _) = inputs(&dir);
    let long = "x".repeat(2048);
    let out = kexec(&[
        "-l",
        s(&image),
        "--append",
        &long,
        "--dry-run",
        "--sysroot",
        s(&sysroot("qemu-virt-1g")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("command line is 2048 bytes"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn capture_sysroot_round_trips_a_sysroot() {
    // Capturing the live system needs root and a Linux /proc: capture a
    // captured one instead (the hidden `--from`), and get it back file for
    // file.
    let from = sysroot("virt-1g-crashkernel");
    let snap = scratch("capture").join("snap");
    let out = kexec(&["capture-sysroot", "--from", s(&from), s(&snap)]);
    let text = stdout_ok(&out);
    let files = |root: &Path| {
        let mut found = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    found.push(path.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        found.sort();
        found
    };
    let captured = files(&from);
    // Everything, and the capture's manifest (the fixture, an older
    // capture, has none).
    let manifest = std::path::PathBuf::from("kexec-capture.txt");
    let mut with_manifest = captured.clone();
    with_manifest.push(manifest.clone());
    with_manifest.sort();
    assert_eq!(files(&snap), with_manifest);
    for rel in &captured {
        assert_eq!(
            std::fs::read(snap.join(rel)).unwrap(),
            std::fs::read(from.join(rel)).unwrap(),
            "{}",
            rel.display()
        );
        let bytes = std::fs::metadata(from.join(rel)).unwrap().len();
        let line = format!("wrote {} ({bytes} bytes)", snap.join(rel).display());
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    // Files the fixture lacks (an older capture has no lockdown file, none
    // has the /proc/kcore headers yet) are reported as skipped, not written.
    assert!(
        text.lines().any(|l| l.starts_with("skipped /proc/kcore: ")),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("wrote ")).count(),
        captured.len() + 1,
        "{text}"
    );
    // The fixture does not say what its machine lacks: neither does the copy.
    let recorded = std::fs::read_to_string(snap.join(&manifest)).unwrap();
    assert!(recorded.lines().all(|l| l.starts_with('#')), "{recorded}");
}

/// A real Debian kernel (from `cargo xtask setup`), planned on the 1 GiB
/// QEMU sysroot: compare structure, not digests.
#[test]
fn real_debian_kernel_dry_run() {
    for k in test_assets::debian_kernels() {
        let out = kexec(&[
            "-l",
            s(&k.image),
            "--reuse-cmdline",
            "--dry-run",
            "--json",
            "--sysroot",
            s(&sysroot("qemu-virt-1g")),
        ]);
        let plan: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
        assert_eq!(plan["schema"], "kexec-rs/plan/v1");
        assert_eq!(plan["kernel"]["format"], "arm64 Image");
        let kinds: Vec<_> = plan["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["kernel", "dtb", "purgatory"], "{}", k.version);
        let kernel = &plan["segments"][0];
        let size = std::fs::metadata(&k.image).unwrap().len();
        assert_eq!(kernel["bufsz"], size);
        assert!(
            kernel["memsz"].as_u64().unwrap() >= plan["kernel"]["image_size"].as_u64().unwrap()
        );
        let failed: Vec<_> = plan["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["passed"] == false)
            .map(|r| r["id"].clone())
            .collect();
        assert!(failed.is_empty(), "{failed:?} {}", k.version);
        assert_eq!(plan["cmdline"], "root=/dev/vda1 ro console=ttyAMA0 quiet");
    }
}

/// The sysroots `cargo xtask capture-sysroots` captured from real QEMU guests
/// (`fixtures/sysroots/*`: 1 GiB, 4 GiB with RAM above 4 GiB,
/// `crashkernel=256M`, 4 CPUs, and the UEFI machines with a device tree and
/// with ACPI only): every one plans a normal load, and those with
/// a `Crash kernel` range a crash load inside it; each plan is a golden file.
#[test]
fn captured_guest_sysroots_plan() {
    let dir = scratch("captured");
    let (image, initrd) = inputs(&dir);
    let mut seen = 0;
    // The shapes of xtask/src/capture.rs `fixture_shapes` (the hand-made
    // `qemu-virt-*` beside them have golden files of their own).
    for name in [
        "virt-1g",
        "virt-1g-crashkernel",
        "virt-1g-smp4",
        "virt-4g",
        "virt-uefi-dt",
        "virt-uefi-acpi",
    ] {
        let sysroot = sysroot(name);
        let iomem = std::fs::read_to_string(sysroot.join("proc/iomem")).unwrap();
        let crash = iomem.contains("Crash kernel");
        for mode in if crash {
            &["-l", "-p"][..]
        } else {
            &["-l"][..]
        } {
            let out = kexec(&[
                mode,
                s(&image),
                "--initrd",
                s(&initrd),
                "--reuse-cmdline",
                "--dry-run",
                "--json",
                "--sysroot",
                s(&sysroot),
            ]);
            let plan: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
            let failed: Vec<_> = plan["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["passed"] == false)
                .map(|r| r["id"].clone())
                .collect();
            assert!(failed.is_empty(), "{failed:?} {} {mode}", sysroot.display());
            let kinds: Vec<_> = plan["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["kind"].as_str().unwrap())
                .collect();
            let expected: &[&str] = if *mode == "-p" {
                &["kernel", "initrd", "elfcorehdr", "dtb", "purgatory"]
            } else {
                &["kernel", "initrd", "dtb", "purgatory"]
            };
            assert_eq!(kinds, expected);
            // Golden too: recapturing the fixtures (`cargo xtask
            // capture-sysroots`) is followed by UPDATE_GOLDEN=1.
            let suffix = if *mode == "-p" { "-crash" } else { "" };
            golden(&format!("captured-{name}{suffix}.json"), &stdout_ok(&out));
            seen += 1;
        }
    }
    assert!(seen >= 7, "only {seen} plans");
}

/// A crash load on the captured `crashkernel=256M` guest. Structural (not a
/// golden file): the fixture belongs to `cargo xtask capture-sysroots` and may
/// be recaptured.
/// `-i`: nothing will verify the digests, so none are computed (hashing is
/// most of a load's time); the plan shows `null` and is otherwise valid.
#[test]
fn no_checks_plans_without_digests() {
    let dir = scratch("no-checks");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    let args = [
        "-l",
        s(&image),
        "--initrd",
        s(&initrd),
        "--dry-run",
        "--json",
        "--sysroot",
        s(&root),
    ];
    let with: serde_json::Value = serde_json::from_str(&stdout_ok(&kexec(&args))).unwrap();
    let mut no_checks = args.to_vec();
    no_checks.push("-i");
    let without: serde_json::Value = serde_json::from_str(&stdout_ok(&kexec(&no_checks))).unwrap();
    for (a, b) in with["segments"]
        .as_array()
        .unwrap()
        .iter()
        .zip(without["segments"].as_array().unwrap())
    {
        let chunks = a["sha256_chunks"].as_array().unwrap();
        assert!(!chunks.is_empty(), "{a}");
        assert!(
            chunks.iter().all(|c| c.as_str().map(str::len) == Some(64)),
            "{a}"
        );
        assert!(b["sha256_chunks"].is_null(), "{b}");
        assert_eq!(
            (&a["mem"], &a["memsz"]),
            (&b["mem"], &b["memsz"]),
            "same placement"
        );
    }
    assert!(without["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["passed"] == true));
}

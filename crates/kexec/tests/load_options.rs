//! kexec-tools' load options beyond the basics, against `--dry-run
//! --sysroot` fixtures: `--mem-min`/`--mem-max` bound every segment, `--type`
//! refuses a kernel of another type, `--serial` names the purgatory's UART
//! or is refused. (`-d`'s segment lines need a real load: the kdump
//! scenario's `kdumpctl-old-d` guest check reads them.)

mod dry_run_support;

use dry_run_support::{inputs, kexec, s, stdout_ok};
use kexec_core::machine::spcr;
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch};

fn hex(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn mem_min_and_mem_max_bound_every_segment() {
    let dir = scratch("mem-window");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    let run = |extra: &[&str]| {
        let mut args = vec!["-l", s(&image), "--initrd", s(&initrd)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--dry-run", "--json", "--sysroot", s(&root)]);
        let plan: serde_json::Value = serde_json::from_str(&stdout_ok(&kexec(&args))).unwrap();
        plan["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|seg| {
                (
                    hex(&seg["mem"]),
                    hex(&seg["mem"]) + seg["memsz"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let free = run(&[]);
    assert!(free.iter().any(|&(a, _)| a < 0x6000_0000), "{free:x?}");
    let (min, max) = (0x6000_0000u64, 0x7fff_ffffu64);
    let bounded = run(&["--mem-min=0x60000000", "--mem-max", "0x7fffffff"]);
    for &(a, b) in &bounded {
        assert!(a >= min && b <= max + 1, "{a:#x}-{b:#x} outside the window");
    }
    // A window without memory is refused, naming both options.
    let out = kexec(&[
        "-l",
        s(&image),
        "--mem-min=0x10000000",
        "--mem-max=0x1fffffff",
        "--dry-run",
        "--sysroot",
        s(&root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leave no usable memory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn type_refuses_a_kernel_of_another_type() {
    let dir = scratch("type-check");
    let (image, _) = inputs(&dir);
    let root = sysroot("qemu-virt-1g");
    let ok = kexec(&[
        "-l",
        s(&image),
        "-t",
        "Image",
        "--dry-run",
        "--sysroot",
        s(&root),
    ]);
    assert_eq!(ok.status.code(), Some(0));
    let out = kexec(&[
        "-l",
        s(&image),
        "--type=vmlinux",
        "--dry-run",
        "--sysroot",
        s(&root),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--type Vmlinux: the file is arm64 Image"),
        "{err}"
    );
}

#[test]
fn serial_must_name_the_purgatorys_uart() {
    let dir = scratch("serial");
    let (image, _) = inputs(&dir);
    // A sysroot with the tty's iomem_base, as sysfs shows it.
    let root = dir.join("root");
    let from = sysroot("qemu-virt-1g");
    for rel in ["proc/iomem", "proc/cmdline", "sys/firmware/fdt"] {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), root.join(rel)).unwrap();
    }
    for (tty, base) in [
        ("ttyAMA0", "0x9000000"),
        ("ttyS0", "0x1c020000"),
        ("ttyX", "0x0"),
    ] {
        let d = root.join("sys/class/tty").join(tty);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("iomem_base"), format!("{base}\n")).unwrap();
    }
    let run = |tty: &str| {
        kexec(&[
            "-l",
            s(&image),
            "--serial",
            tty,
            "--dry-run",
            "--sysroot",
            s(&root),
        ])
    };
    assert_eq!(run("ttyAMA0").status.code(), Some(0));
    for (tty, says) in [
        (
            "ttyS0",
            "is at 0x1c020000, but the purgatory prints on the PL011 at 0x9000000 that stdout-path names",
        ),
        ("ttyX", "is not a MMIO address"),
        ("ttyNONE", "cannot read"),
        ("../x", "not a tty name"),
    ] {
        let out = run(tty);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{tty}");
        assert!(err.contains(says), "{tty}: {err}");
    }
    // Booted with ACPI: the running tree has no stdout-path, the SPCR names
    // the console. A note says so, and --serial must name that UART.
    let from = sysroot("virt-uefi-acpi");
    for rel in ["proc/iomem", "proc/cmdline", "sys/firmware/fdt"] {
        std::fs::copy(from.join(rel), root.join(rel)).unwrap();
    }
    let spcr = root.join("sys/firmware/acpi/tables/SPCR");
    std::fs::create_dir_all(spcr.parent().unwrap()).unwrap();
    let note = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        format!("{text}{err}")
    };
    for (table, code, says) in [
        (
            spcr::synthetic(spcr::INTERFACE_ARM_PL011, 0x0900_0000, 7),
            0,
            "the purgatory prints on the PL011 at 0x9000000 that the ACPI SPCR names",
        ),
        (
            spcr::synthetic(spcr::INTERFACE_ARM_PL011, 0x0c00_0000, 7),
            2,
            "is at 0x9000000, but the purgatory prints on the PL011 at 0xc000000 that the ACPI SPCR names",
        ),
        (
            spcr::synthetic(0x0e, 0x0900_0000, 7),
            2,
            "neither the device tree's stdout-path nor an ACPI SPCR names a PL011",
        ),
    ] {
        std::fs::write(&spcr, &table).unwrap();
        let out = run("ttyAMA0");
        assert_eq!(out.status.code(), Some(code), "{}", note(&out));
        assert!(note(&out).contains(says), "{}", note(&out));
    }
    // Without --serial, a table the purgatory cannot use is a note, not an
    // error: the load goes on, with a silent purgatory.
    for (table, says) in [
        (
            spcr::synthetic(0x0e, 0x0900_0000, 7),
            "interface type 0xe is not a PL011",
        ),
        (b"SPCR".to_vec(), "SPCR: 4 bytes, at least 80 expected"),
    ] {
        std::fs::write(&spcr, &table).unwrap();
        let out = kexec(&["-l", s(&image), "--dry-run", "--sysroot", s(&root)]);
        assert_eq!(out.status.code(), Some(0), "{}", note(&out));
        for says in [
            says,
            "the purgatory will not print on it",
            "the purgatory will be silent",
        ] {
            assert!(note(&out).contains(says), "{says}: {}", note(&out));
        }
        // A tree of one's own whose stdout-path names the PL011: the
        // purgatory prints there, and the SPCR is not worth a note.
        let dtb = sysroot("qemu-virt-1g").join("sys/firmware/fdt");
        let out = kexec(&[
            "-l",
            s(&image),
            "--dtb",
            s(&dtb),
            "--dry-run",
            "--sysroot",
            s(&root),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", note(&out));
        for absent in [says, "SPCR", "the purgatory will be silent"] {
            assert!(!note(&out).contains(absent), "{absent}: {}", note(&out));
        }
    }
}

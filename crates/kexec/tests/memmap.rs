//! The memory map of `kexec --dry-run` and its picture (`--svg FILE`):
//! the text map of every committed sysroot fixture (and of a two-bank
//! machine made here) is a golden file (`tests/golden/memmap/`;
//! `UPDATE_GOLDEN=1 cargo test -p kexec --test memmap` rewrites them), and
//! the SVG written beside it is rendered by `resvg` and must show, pixel
//! for pixel at each cell's centre, what the text map shows
//! (`memmap_support`).

mod dry_run_support;
mod memmap_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use dry_run_support::{golden, inputs, kexec, s, stdout_ok};
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch};

/// The map in a text report: from its title to the line before `rules:`.
fn map_of(report: &str) -> String {
    let start = report
        .find("memory map, to scale")
        .unwrap_or_else(|| panic!("no memory map in\n{report}"));
    let end = report[start..].find("rules:\n").unwrap() + start;
    report[start..end].to_owned()
}

/// `kexec MODE Image --initrd initrd.img --append … --dry-run --svg
/// DIR/map.svg --sysroot ROOT`: the text map and the SVG.
fn map_and_picture(name: &str, mode: &str, root: &Path) -> (String, String) {
    let dir = scratch(&format!("memmap-{name}"));
    let (image, initrd) = inputs(&dir);
    let svg = dir.join("map.svg");
    let out = kexec(&[
        mode,
        s(&image),
        "--initrd",
        s(&initrd),
        "--append=console=ttyAMA0",
        "--dry-run",
        "--svg",
        s(&svg),
        "--sysroot",
        s(root),
    ]);
    let report = stdout_ok(&out);
    let line = format!("note: memory map drawn in {}", svg.display());
    assert!(report.lines().any(|l| l == line), "{report}");
    (map_of(&report), std::fs::read_to_string(&svg).unwrap())
}

/// A machine with two RAM banks (2 GiB at 0x40000000, 2 GiB at
/// 0x880000000, the second DRAM window of Arm's base memory map, as on Juno
/// and many arm64 servers) booted with `crashkernel=256M,high
/// crashkernel=64M,low`: `qemu-virt-4g-crash-high` with this /proc/iomem
/// (QEMU's `virt` has one bank, so no guest could be captured).
const TWO_BANKS_IOMEM: &str = "\
00000000-03ffffff : 0.flash flash@0
08000000-0800ffff : GICD
09000000-09000fff : pl011@9000000
40000000-bfffffff : System RAM
  40210000-4149ffff : Kernel code
  414a0000-4172ffff : reserved
  41730000-41bcffff : Kernel data
  48000000-480fffff : reserved
  b8000000-bbffffff : Crash kernel
  bfe00000-bfffffff : reserved
880000000-8ffffffff : System RAM
  8e0000000-8efffffff : Crash kernel
  8ff6e0000-8ff7dffff : reserved
  8ffa00000-8ffdfffff : reserved
  8ffe20000-8ffffffff : reserved
";

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn two_banks_sysroot() -> PathBuf {
    let root = scratch("memmap-two-banks-root").join("root");
    copy_tree(&sysroot("qemu-virt-4g-crash-high"), &root);
    std::fs::write(root.join("proc/iomem"), TWO_BANKS_IOMEM).unwrap();
    root
}

fn check(name: &str, mode: &str, root: &Path) -> (String, String) {
    let (map, svg) = map_and_picture(name, mode, root);
    golden(&format!("memmap/{name}.txt"), &map);
    let wrong = memmap_support::mismatches(&map, &svg);
    assert!(wrong.is_empty(), "{name}:\n{}\n{map}", wrong.join("\n"));
    (map, svg)
}

/// Every committed fixture, `-l`, and `-p` where it has a crash region.
#[test]
fn every_fixture_map_is_golden_and_its_picture_matches() {
    for name in [
        "qemu-virt-1g",
        "qemu-virt-4g",
        "qemu-virt-crash",
        "qemu-virt-4g-crash-high",
        "virt-1g",
        "virt-1g-crashkernel",
        "virt-1g-smp4",
        "virt-4g",
    ] {
        let root = sysroot(name);
        check(name, "-l", &root);
        let iomem = std::fs::read_to_string(root.join("proc/iomem")).unwrap();
        if iomem.contains("Crash kernel") {
            check(&format!("{name}-crash"), "-p", &root);
        }
    }
}

#[test]
fn two_banks_crash_load_map() {
    let root = two_banks_sysroot();
    let (map, _) = check("two-banks", "-l", &root);
    assert!(
        map.contains("≈ no RAM 0xc0000000-0x87fffffff (31 GiB)"),
        "{map}"
    );
    let (map, _) = check("two-banks-crash", "-p", &root);
    // Both crash regions, the segments in the high one.
    let rows: Vec<&str> = map.lines().filter(|l| l.contains('│')).collect();
    assert!(rows
        .iter()
        .any(|r| r.starts_with(" 0xb0000000") && r.contains('░')));
    let kernel_row = rows.iter().find(|r| r.contains('K')).unwrap();
    assert!(kernel_row.starts_with("0x8e0000000 │K"), "{map}");
}

/// The pixel check sees a picture that is wrong: a segment moved by a
/// cell, or drawn in the wrong colour, or a picture of another size.
#[test]
fn the_pixel_check_fails_on_a_wrong_picture() {
    let (map, svg) = map_and_picture("wrong", "-l", &sysroot("qemu-virt-1g"));
    assert!(memmap_support::mismatches(&map, &svg).is_empty());
    let shifted = memmap_support::shift_rect(&svg, "segment kernel", 10);
    let wrong = memmap_support::mismatches(&map, &shifted);
    assert!(
        wrong.iter().any(|w| w.starts_with("line 0 column ")),
        "{wrong:?}"
    );
    let recoloured = svg.replacen("#2166ac", "#2166ad", 1);
    let wrong = memmap_support::mismatches(&map, &recoloured);
    assert!(wrong.iter().any(|w| w.contains("('K')")), "{wrong:?}");
    let resized = svg.replacen("width=\"", "width=\"1", 1);
    let wrong = memmap_support::mismatches(&map, &resized);
    assert!(wrong[0].starts_with("picture is "), "{wrong:?}");
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn svg_needs_a_dry_run_of_a_load() {
    let dir = scratch("memmap-refused");
    let (image, _) = inputs(&dir);
    let svg = dir.join("map.svg");
    let root = sysroot("qemu-virt-1g");
    // The load without --dry-run comes last: were the refusal missing,
    // the test fails on a harmless case before it makes a real syscall.
    for args in [
        &["-u", "--dry-run", "--svg", s(&svg)][..],
        &["-e", "--dry-run", "--svg", s(&svg)],
        &["--status", "--svg", s(&svg), "--sysroot", s(&root)],
        &["-l", s(&image), "--svg", s(&svg)],
    ] {
        let err = refused(&kexec(args));
        assert!(
            err.starts_with(
                "kexec: --svg: --svg draws the memory map of a planned load: \
                 it needs --dry-run and a kernel\nhint: "
            ),
            "{args:?}: {err}"
        );
        assert!(!svg.exists());
    }
    // A path that cannot be written: bad input, nothing printed.
    let out = kexec(&[
        "-l",
        s(&image),
        "--dry-run",
        "--svg",
        s(&dir.join("no/such/dir/map.svg")),
        "--sysroot",
        s(&root),
    ]);
    let err = refused(&out);
    assert!(
        err.contains("map.svg: cannot write the memory map: "),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// With `--json` the picture is written and stdout stays the JSON plan.
#[test]
fn json_and_svg_together() {
    let dir = scratch("memmap-json");
    let (image, _) = inputs(&dir);
    let svg = dir.join("map.svg");
    let out = kexec(&[
        "-l",
        s(&image),
        "--dry-run",
        "--json",
        "--svg",
        s(&svg),
        "--sysroot",
        s(&sysroot("qemu-virt-1g")),
    ]);
    let plan: serde_json::Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    assert_eq!(plan["schema"], "kexec-rs/plan/v1");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg "));
}

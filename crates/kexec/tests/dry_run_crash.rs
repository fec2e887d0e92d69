//! `kexec -p ... --dry-run` against hand-made and captured sysroots: the
//! crash region, both reservations, the crash `/chosen` properties and the
//! ELF core header. Golden files as in `dry_run.rs`
//! (`UPDATE_GOLDEN=1 cargo test -p kexec --test dry_run_crash` rewrites them).

mod dry_run_support;

use std::path::Path;

use dry_run_support::{golden, inputs, kexec, s, stdout_ok};
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch};

/// `kexec -p IMAGE --initrd INITRD [EXTRA…] --dry-run --json --sysroot ROOT`
/// with synthetic inputs made in the scratch directory `name`: the plan's
/// JSON text.
fn crash_plan(name: &str, root: &Path, extra: &[&str]) -> String {
    let dir = scratch(name);
    let (image, initrd) = inputs(&dir);
    let mut args = vec!["-p", s(&image), "--initrd", s(&initrd)];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--dry-run", "--json", "--sysroot", s(root)]);
    stdout_ok(&kexec(&args))
}

/// A `0x…` string of the plan's JSON as a number.
fn hex(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The new value of `/chosen`'s `property` in the plan's JSON.
fn chosen_change(plan: &serde_json::Value, property: &str) -> serde_json::Value {
    plan["chosen"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["property"] == property)
        .unwrap_or_else(|| panic!("no change of {property}"))["new"]
        .clone()
}

/// What a crash-kernel helper (kdump-tools, kdumpctl) appends.
const KDUMP_ARGS: &[&str] = &["--reuse-cmdline", "--append", "maxcpus=1 reset_devices"];

#[test]
fn golden_qemu_virt_crash_load() {
    let out = crash_plan("crash", &sysroot("qemu-virt-crash"), KDUMP_ARGS);
    golden("qemu-virt-crash.json", &out);
}

#[test]
fn crash_load_stays_in_the_crash_region() {
    let out = crash_plan("crash-region", &sysroot("qemu-virt-crash"), &[]);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    for seg in plan["segments"].as_array().unwrap() {
        assert!(
            hex(&seg["mem"]) >= 0x6f60_0000 && hex(&seg["end"]) <= 0x7f60_0000,
            "{seg}"
        );
    }
    assert_eq!(
        chosen_change(&plan, "linux,usable-memory-range"),
        "<0x0 0x6f600000 0x0 0x10000000>"
    );
}

/// `crashkernel=512M,high crashkernel=128M,low` on a 4 GiB machine: two
/// `Crash kernel` ranges in /proc/iomem. The segments go in the high one
/// (`crashk_res`: the kernel checks segments against it and takes its
/// control pages there), `linux,usable-memory-range` lists high then low
/// (drivers/of/kexec.c writes that order for kexec_file_load; crash kernels
/// before 5.18 read only the first range), and the ELF core header describes
/// RAM outside both.
#[test]
fn golden_qemu_virt_4g_crash_high_and_low() {
    let out = crash_plan(
        "crash-high",
        &sysroot("qemu-virt-4g-crash-high"),
        KDUMP_ARGS,
    );
    golden("qemu-virt-4g-crash-high.json", &out);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (high, high_end) = (0x1_1b60_0000u64, 0x1_3b60_0000u64);
    assert_eq!(plan["memory"][0]["start"], "0x11b600000");
    assert_eq!(plan["memory"].as_array().unwrap().len(), 1);
    for seg in plan["segments"].as_array().unwrap() {
        assert!(
            hex(&seg["mem"]) >= high && hex(&seg["end"]) <= high_end,
            "{seg}"
        );
    }
    let change = |name: &str| chosen_change(&plan, name);
    assert_eq!(
        change("linux,usable-memory-range"),
        "<0x1 0x1b600000 0x0 0x20000000 0x0 0xf8000000 0x0 0x8000000>"
    );
    // RAM below the low region, between the two, above the high one: three
    // PT_LOADs (no notes in this hand-made sysroot).
    let header = plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "elfcorehdr")
        .unwrap();
    assert_eq!(header["bufsz"], 64 + 3 * 56);
    assert_eq!(
        change("linux,elfcorehdr"),
        format!(
            "<{:#x} {:#x} 0x0 0xe8>",
            hex(&header["mem"]) >> 32,
            hex(&header["mem"]) & 0xffff_ffff
        )
    );
    assert_eq!(plan["valid"], true);
}

#[test]
fn captured_virt_1g_crashkernel_crash_load() {
    let root = sysroot("virt-1g-crashkernel");
    let iomem = std::fs::read_to_string(root.join("proc/iomem")).unwrap();
    let crash_line = iomem.lines().find(|l| l.contains("Crash kernel")).unwrap();
    let (span, _) = crash_line.trim().split_once(" : ").unwrap();
    let (lo, hi) = span.split_once('-').unwrap();
    let lo = u64::from_str_radix(lo, 16).unwrap();
    let end = u64::from_str_radix(hi, 16).unwrap() + 1;

    let out = crash_plan(
        "captured-crash",
        &root,
        &["--reuse-cmdline", "--append=maxcpus=1 reset_devices"],
    );
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["mode"], "crash");
    assert_eq!(
        hex(&plan["segments"][0]["mem"]),
        lo,
        "kernel at the base of the crash region"
    );
    for seg in plan["segments"].as_array().unwrap() {
        assert!(hex(&seg["mem"]) >= lo && hex(&seg["end"]) <= end, "{seg}");
    }
    let cmdline = plan["cmdline"].as_str().unwrap();
    assert!(
        !cmdline.contains("crashkernel=") && cmdline.ends_with("maxcpus=1 reset_devices"),
        "{cmdline}"
    );
    assert_eq!(
        chosen_change(&plan, "linux,usable-memory-range"),
        format!("<0x0 {lo:#x} 0x0 {:#x}>", end - lo)
    );
    // The ELF core header: 2 CPU notes, VMCOREINFO, and the RAM below and
    // above the crash region (the capture has no /proc/kallsyms, so no
    // kernel image PT_LOAD); /chosen points at it.
    let header = plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "elfcorehdr")
        .unwrap();
    assert_eq!(header["bufsz"], 64 + 5 * 56);
    assert_eq!(
        chosen_change(&plan, "linux,elfcorehdr"),
        format!("<0x0 {:#x} 0x0 {:#x}>", hex(&header["mem"]), 64 + 5 * 56)
    );
}

//! `kexec --dry-run` and `kexec sim` with the Images of old kernels, which
//! kexec-tools loads: a pre-3.17 header (`image_size` 0, so `text_offset`
//! 0x80000 and no BSS size) and a `text_offset` randomised by
//! `CONFIG_ARM64_RANDOMIZE_TEXT_OFFSET` (0x81000 on 4 KiB pages, v3.17 to
//! v5.7). Golden plans (`tests/golden/old-*`, `UPDATE_GOLDEN=1` rewrites
//! them) show where the initrd and the DTB go on the captured `virt-1g`
//! machine; the assertions say why.

mod dry_run_support;

use std::path::{Path, PathBuf};

use dry_run_support::{golden, kexec, s, stdout_ok};
use serde_json::Value;
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch, synthetic_image_at};

const MIB: u64 = 1 << 20;

/// A pre-3.17 Image of 1 MiB: `text_offset` 0x80000, `image_size` and
/// `flags` 0 (booting.rst §4).
fn pre_3_17(dir: &Path) -> PathBuf {
    let image = dir.join("Image-3.16");
    std::fs::write(&image, synthetic_image_at(0x8_0000, 1 << 20, 0, 0, 31)).unwrap();
    image
}

/// A 1 MiB Image of a v3.17–v5.7 kernel with 4 KiB pages and a randomised
/// `text_offset` of 0x81000: `image_size` 20 MiB, flags LE, 4K pages,
/// bit 3 clear (as before v4.6).
fn randomised(dir: &Path) -> PathBuf {
    let image = dir.join("Image-rand");
    let bytes = synthetic_image_at(0x8_1000, 1 << 20, 20 << 20, 0b0010, 31);
    std::fs::write(&image, bytes).unwrap();
    image
}

/// A 200 KiB initrd.
fn initrd(dir: &Path) -> PathBuf {
    let initrd = dir.join("initrd.img");
    let bytes: Vec<u8> = (0..200u32 * 1024)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    std::fs::write(&initrd, bytes).unwrap();
    initrd
}

fn addr(v: &Value) -> u64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not an address: {v}"));
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

fn segment<'a>(plan: &'a Value, kind: &str) -> &'a Value {
    plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} segment"))
}

fn rule<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

/// The dry run of `kernel` with the initrd on `machine`, as text and JSON.
fn dry_run(kernel: &Path, initrd: &Path, machine: &str, crash: bool) -> (String, Value) {
    let root = sysroot(machine);
    let load = if crash { "-p" } else { "-l" };
    let base = [
        load,
        s(kernel),
        "--initrd",
        s(initrd),
        "--append=console=ttyAMA0",
        "--dry-run",
        "--sysroot",
        s(&root),
    ];
    let text = stdout_ok(&kexec(&base));
    let json = stdout_ok(&kexec(&[&base[..], &["--json"]].concat()));
    (text, serde_json::from_str(&json).unwrap())
}

/// Before 3.17 the header has no `image_size`: the BSS follows the file by
/// an unknown amount and the first page tables sit below the Image. The
/// initrd and the DTB go after the file + 16 MiB (kexec-tools assumes
/// 16 MiB in all), nothing into the 2 MiB base below the Image.
#[test]
fn golden_pre_3_17_image_leaves_room_after_the_file_and_below_the_image() {
    let dir = scratch("old-pre-3.17");
    let (kernel, initrd) = (pre_3_17(&dir), initrd(&dir));
    let (text, plan) = dry_run(&kernel, &initrd, "virt-1g", false);
    golden("old-pre-3.17-virt-1g.txt", &text);
    assert_eq!(plan["valid"], true, "{text}");
    let k = &plan["kernel"];
    assert_eq!(k["text_offset"], "0x80000");
    assert_eq!(k["image_size"], 17 * MIB, "the file + 16 MiB");
    assert_eq!(k["place_anywhere"], false);
    let load = addr(&k["load_addr"]);
    assert_eq!(load % (2 * MIB), 0x8_0000);
    assert_eq!(addr(&k["footprint"]["start"]), load - 0x8_0000);
    let end = addr(&k["footprint"]["end"]);
    assert_eq!(end, load + 17 * MIB);
    assert_eq!(addr(&segment(&plan, "kernel")["mem"]), load);
    // Where kexec-rs put them before: right after the 1 MiB file, in the
    // new kernel's BSS.
    for kind in ["initrd", "dtb"] {
        assert!(addr(&segment(&plan, kind)["mem"]) >= end, "{kind}: {text}");
    }
    let purgatory = addr(&segment(&plan, "purgatory")["mem"]);
    assert!(purgatory >= end || purgatory + 0x4_0000 <= load - 0x8_0000);
    assert_eq!(rule(&plan, "kernel-footprint")["passed"], true);
    assert_eq!(rule(&plan, "linear-map-reach")["passed"], true);
    let notes = plan["notes"].to_string();
    assert!(notes.contains("pre-3.17 Image (image_size 0)"), "{notes}");
    // arm64's kexec_file_load refuses image_size 0.
    assert!(notes.contains("syscall: kexec_load"), "{notes}");
}

/// A pre-3.17 crash kernel: the whole footprint, the 2 MiB base included,
/// inside the crash region (the page tables below the Image would
/// otherwise overwrite the crashed kernel's memory).
#[test]
fn a_pre_3_17_crash_kernel_keeps_its_footprint_in_the_crash_region() {
    let dir = scratch("old-pre-3.17-crash");
    let (kernel, initrd) = (pre_3_17(&dir), initrd(&dir));
    let (text, plan) = dry_run(&kernel, &initrd, "virt-1g-crashkernel", true);
    assert_eq!(plan["valid"], true, "{text}");
    let region = &plan["memory"][0];
    let footprint = &plan["kernel"]["footprint"];
    assert!(
        addr(&footprint["start"]) >= addr(&region["start"]),
        "{text}"
    );
    assert!(addr(&footprint["end"]) <= addr(&region["end"]), "{text}");
    for kind in ["initrd", "dtb", "elfcorehdr", "purgatory"] {
        let mem = addr(&segment(&plan, kind)["mem"]);
        assert!(mem >= addr(&footprint["end"]), "{kind}: {text}");
    }
}

/// `text_offset` 0x81000 is not 64 KiB aligned (the segment alignment that
/// is valid whatever the running kernel's page size): the kernel segment
/// starts 4 KiB lower, at 0x80000 above the 2 MiB base, with zeros; the
/// kernel is entered at the Image itself. Its flags bit 3 is clear, so the
/// initrd and the DTB stay above the base; below the Image is fine there
/// (since 3.17 that memory "has no special significance").
#[test]
fn golden_text_offset_0x81000_pads_the_kernel_segment() {
    let dir = scratch("old-0x81000");
    let (kernel, initrd) = (randomised(&dir), initrd(&dir));
    let (text, plan) = dry_run(&kernel, &initrd, "virt-1g", false);
    golden("old-text-offset-0x81000-virt-1g.txt", &text);
    assert_eq!(plan["valid"], true, "{text}");
    let load = addr(&plan["kernel"]["load_addr"]);
    assert_eq!(load % (2 * MIB), 0x8_1000);
    let k = segment(&plan, "kernel");
    assert_eq!(addr(&k["mem"]), load - 0x1000);
    assert_eq!(k["bufsz"], MIB + 0x1000);
    assert_eq!(k["memsz"], 20 * MIB + 0x1_0000);
    assert_eq!(addr(&plan["kernel"]["footprint"]["start"]), load);
    let base = load - 0x8_1000;
    for kind in ["initrd", "dtb"] {
        assert!(addr(&segment(&plan, kind)["mem"]) >= base, "{kind}: {text}");
    }
    let notes = plan["notes"].to_string();
    assert!(notes.contains("starts 4 KiB below the Image"), "{notes}");
}

/// The padded plan runs in the memory-system model: the simulated
/// purgatory checks the kernel segment's digest over the zeros and the
/// Image, enters 0x1000 into the segment, and the model compares the code
/// there with the Image's first bytes.
#[test]
fn the_padded_kernel_segment_boots_in_the_model() {
    let dir = scratch("old-0x81000-sim");
    let (kernel, initrd) = (randomised(&dir), initrd(&dir));
    let root = sysroot("virt-1g");
    let out = kexec(&[
        "sim",
        s(&kernel),
        "--initrd",
        s(&initrd),
        "--sysroot",
        s(&root),
        "--config",
        "a57-like",
        "--seeds",
        "1",
    ]);
    let text = stdout_ok(&out);
    assert!(text.contains("kernel entry 0x40081000"), "{text}");
    assert!(text.contains("PASS  a57-like"), "{text}");
    assert!(text.contains("all 1 configuration(s) passed"), "{text}");
}

/// A `text_offset` that is no multiple of 4 KiB is no kernel's: bad input,
/// named, nothing planned.
#[test]
fn a_text_offset_off_4_kib_is_bad_input() {
    let dir = scratch("old-bad-offset");
    let kernel = dir.join("Image-bad");
    let bytes = synthetic_image_at(0x8_0010, 1 << 20, 20 << 20, 0b0010, 31);
    std::fs::write(&kernel, bytes).unwrap();
    let root = sysroot("virt-1g");
    let out = kexec(&["-l", s(&kernel), "--dry-run", "--sysroot", s(&root)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Image-bad: text_offset 0x80010 is not a multiple of 4 KiB"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

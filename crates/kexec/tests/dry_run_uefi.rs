//! `kexec -l ... --dry-run` on the UEFI machines captured from QEMU guests
//! booted by EDK II (`virt-uefi-dt`: the firmware's device tree;
//! `virt-uefi-acpi`: ACPI only, the EFI stub's tree of nothing but
//! `/chosen`): what the report says of the firmware and the hand-over, and
//! a UKI whose `.dtb` differs from the running tree, merged with the running
//! tree's UEFI state. Golden files in `tests/golden/uefi-*`
//! (`UPDATE_GOLDEN=1` rewrites them).

mod dry_run_support;

use std::path::{Path, PathBuf};

use dry_run_support::{golden, inputs, kexec, s, stdout_ok};
use serde_json::Value;
use test_assets::pe::uki;
use test_assets::synthetic::{fixture_sysroot as sysroot, scratch, synthetic_image};

/// The plan, and its JSON and text reports.
fn dry_run(args: &[&str], root: &Path) -> (Value, (String, String)) {
    let json = stdout_ok(&kexec(
        &[args, &["--dry-run", "--json", "--sysroot", s(root)]].concat(),
    ));
    let text = stdout_ok(&kexec(
        &[args, &["--dry-run", "--sysroot", s(root)]].concat(),
    ));
    (serde_json::from_str(&json).unwrap(), (json, text))
}

/// Both reports as golden files `NAME.json` and `NAME.txt`.
fn goldens(name: &str, (json, text): &(String, String)) {
    golden(&format!("{name}.json"), json);
    golden(&format!("{name}.txt"), text);
}

fn failed_rules(plan: &Value) -> Vec<Value> {
    plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["id"].clone())
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

const UEFI_PROPERTIES: [&str; 6] = [
    "linux,uefi-system-table",
    "linux,uefi-mmap-start",
    "linux,uefi-mmap-size",
    "linux,uefi-mmap-desc-size",
    "linux,uefi-mmap-desc-ver",
    "linux,uefi-secure-boot",
];

/// The EFI memory map the running `/chosen` names: no segment there, and
/// `memory` has a hole for it.
fn assert_mmap_avoided(plan: &Value) {
    let reserved = plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "dtb-reserved")
        .unwrap();
    assert_eq!(reserved["passed"], true);
    assert_eq!(reserved["detail"], "1 reserved range, none used");
}

#[test]
fn uefi_device_tree_machine() {
    let dir = scratch("uefi-dt");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("virt-uefi-dt");
    let args = ["-l", s(&image), "--initrd", s(&initrd), "--reuse-cmdline"];
    let (plan, both) = dry_run(&args, &root);
    goldens("uefi-dt", &both);
    assert_eq!(failed_rules(&plan), [""; 0]);
    let fw = &plan["firmware"];
    assert_eq!(
        (fw["uefi"].clone(), fw["acpi"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(fw["new_kernel"], "device-tree");
    let h = &plan["handover"];
    assert_eq!(h["uefi_boot"], true);
    assert_eq!(h["merged"], false);
    let mut kept = strings(&h["uefi"]);
    kept.sort_unstable();
    let mut expected = UEFI_PROPERTIES.to_vec();
    expected.sort_unstable();
    assert_eq!(kept, expected, "every linux,uefi-* property kept");
    assert_eq!(h["risks"], Value::Array(vec![]));
    // None of /chosen's changes touches a linux,uefi-* property.
    for c in plan["chosen"]["changes"].as_array().unwrap() {
        let p = c["property"].as_str().unwrap();
        assert!(!p.starts_with("linux,uefi-"), "{p} changed");
    }
    assert_mmap_avoided(&plan);
    // RAM above 4 GiB: the plan's memory reaches past it.
    let top = plan["memory"].as_array().unwrap().last().unwrap()["end"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        u64::from_str_radix(&top[2..], 16).unwrap() > 1 << 32,
        "{top}"
    );
}

#[test]
fn uefi_acpi_machine() {
    let dir = scratch("uefi-acpi");
    let (image, initrd) = inputs(&dir);
    let root = sysroot("virt-uefi-acpi");
    let args = ["-l", s(&image), "--initrd", s(&initrd), "--reuse-cmdline"];
    let (plan, both) = dry_run(&args, &root);
    goldens("uefi-acpi", &both);
    assert_eq!(failed_rules(&plan), [""; 0]);
    let fw = &plan["firmware"];
    assert_eq!(
        (fw["uefi"].clone(), fw["acpi"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(fw["new_kernel"], "acpi");
    assert_eq!(plan["handover"]["risks"], Value::Array(vec![]));
    assert_eq!(strings(&plan["handover"]["uefi"]).len(), 6);
    assert_mmap_avoided(&plan);
    // The captured FADT says PSCI over HVC and the MADT names 4 CPUs; the
    // SPCR names QEMU's PL011, which the tree (the EFI stub's) does not.
    assert_eq!(plan["verification"]["psci"], "hvc");
    assert_eq!(
        strings(&plan["verification"]["secondaries"]),
        ["0x0", "0x1", "0x2", "0x3"]
    );
    assert_note(
        &plan,
        "the purgatory prints on the PL011 at 0x9000000 that the ACPI SPCR names",
    );
}

/// The running tree of a DT machine without UEFI (QEMU's own, from
/// `qemu-virt-1g`): a tree that differs from the UEFI machines' in every
/// node and has no `linux,uefi-*` property.
fn other_tree() -> PathBuf {
    sysroot("qemu-virt-1g").join("sys/firmware/fdt")
}

#[test]
fn a_uki_dtb_is_merged_with_the_running_uefi_state() {
    let dir = scratch("uefi-uki");
    let dtb = std::fs::read(other_tree()).unwrap();
    let linux = synthetic_image(1 << 20, 20 << 20, 0b1010, 31);
    let path = dir.join("linux.efi");
    std::fs::write(
        &path,
        uki(&linux, Some("console=ttyAMA0"), None, Some(&dtb)),
    )
    .unwrap();
    let root = sysroot("virt-uefi-dt");
    let (plan, both) = dry_run(&["-l", s(&path)], &root);
    goldens("uefi-dt-uki-dtb", &both);
    assert_eq!(failed_rules(&plan), [""; 0]);
    assert_eq!(plan["chosen"]["from"], "linux.efi:.dtb");
    let h = &plan["handover"];
    assert_eq!(h["merged"], true);
    let carried: Vec<&str> = h["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["property"].as_str().unwrap())
        .collect();
    let mut sorted = carried.clone();
    sorted.sort_unstable();
    let mut expected = UEFI_PROPERTIES.to_vec();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(strings(&h["uefi"]).len(), 6);
    assert_mmap_avoided(&plan);
    // No initrd on a UEFI machine: the new kernel would take the first
    // kernel's (freed) initrd from the EFI table; it gets an empty one.
    assert_eq!(h["risks"], serde_json::json!([]));
    assert_empty_initramfs(&plan);
    // --dtb FILE on the same machine: the same merge.
    let (image, _) = inputs(&dir);
    let (with_dtb, _) = plan_of_dtb(&image, &root);
    assert_eq!(with_dtb["handover"]["carried"], h["carried"]);
}

fn plan_of_dtb(image: &Path, root: &Path) -> (Value, (String, String)) {
    let other = other_tree();
    let initrd = image.with_file_name("initrd.img");
    dry_run(
        &["-l", s(image), "--initrd", s(&initrd), "--dtb", s(&other)],
        root,
    )
}

/// `--dtb` with a full tree on the ACPI machine: the new kernel would use
/// the device tree, which the report flags.
#[test]
fn a_full_tree_on_the_acpi_machine_is_flagged() {
    let dir = scratch("uefi-acpi-dtb");
    let (image, initrd) = inputs(&dir);
    let (plan, _) = plan_of_dtb(&image, &sysroot("virt-uefi-acpi"));
    assert_eq!(plan["firmware"]["new_kernel"], "device-tree");
    let risks: Vec<&str> = plan["handover"]["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(risks, ["acpi-to-device-tree"]);
    // With acpi=force the new kernel keeps ACPI: nothing flagged.
    let (forced, _) = dry_run(
        &[
            "-l",
            s(&image),
            "--initrd",
            s(&initrd),
            "--dtb",
            s(&other_tree()),
            "--append",
            "acpi=force",
        ],
        &sysroot("virt-uefi-acpi"),
    );
    assert_eq!(forced["firmware"]["new_kernel"], "acpi");
    assert_eq!(forced["handover"]["risks"], Value::Array(vec![]));
}

/// `--dtb` on a UEFI machine whose running tree cannot be read: nothing to
/// merge from, which the report says (a note) and flags (`uefi-state-lost`).
#[test]
fn no_running_tree_to_merge_from_is_flagged() {
    let dir = scratch("uefi-no-fdt");
    let (image, _) = inputs(&dir);
    let root = dir.join("root");
    copy_dir(&sysroot("virt-uefi-dt"), &root);
    std::fs::remove_file(root.join("sys/firmware/fdt")).unwrap();
    let (plan, _) = plan_of_dtb(&image, &root);
    assert_eq!(plan["handover"]["merged"], false);
    let risks: Vec<&str> = plan["handover"]["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(risks, ["uefi-state-lost"]);
    assert_note(
        &plan,
        "nothing of the running kernel's UEFI state is carried over",
    );
}

/// One of the plan's notes contains `text`.
fn assert_note(plan: &Value, text: &str) {
    let notes = plan["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains(text)),
        "{notes:?}"
    );
}

/// The plan's initrd segment is the empty initramfs (one page), and a note
/// says why.
fn assert_empty_initramfs(plan: &Value) {
    let initrds: Vec<&Value> = plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "initrd")
        .collect();
    assert_eq!(initrds.len(), 1, "{:#}", plan["segments"]);
    assert_eq!(initrds[0]["source"], "empty-initramfs");
    assert_eq!(initrds[0]["bufsz"], 4096);
    assert_note(
        plan,
        "no initrd on a UEFI machine: an empty initramfs (4 KiB) is passed",
    );
    assert_eq!(failed_rules(plan), [""; 0]);
}

/// `-l` without `--initrd`: on both UEFI machines the empty initramfs; on
/// a machine without UEFI, no initrd at all.
#[test]
fn no_initrd_on_uefi_gets_the_empty_initramfs() {
    let dir = scratch("uefi-no-initrd");
    let (image, _) = inputs(&dir);
    for machine in ["virt-uefi-dt", "virt-uefi-acpi"] {
        let (plan, _) = dry_run(&["-l", s(&image)], &sysroot(machine));
        assert_empty_initramfs(&plan);
    }
    let (plan, _) = dry_run(&["-l", s(&image)], &sysroot("qemu-virt-1g"));
    let kinds: Vec<&str> = plan["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"initrd"), "{kinds:?}");
    assert!(
        !plan["notes"].to_string().contains("empty initramfs"),
        "{}",
        plan["notes"]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

//! Tests of the firmware facts and of each risk, made to appear by the
//! input that triggers it and absent otherwise.

use kexec_core::fdt::{prepare, Handover};

use super::*;

/// A handed-over tree: UEFI or not (`linux,uefi-system-table` in
/// `/chosen`), a stub (ACPI) or a full tree with a GICv3 ITS.
fn handover(uefi: bool, stub: bool) -> Handover {
    use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
    let mut tree = DeviceTree::new();
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    if uefi {
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            UEFI_SYSTEM_TABLE,
            0xbff5_0018u64,
        ));
    }
    tree.root.add_child(chosen);
    if !stub {
        let mut its = DeviceTreeNode::new_unchecked("its@8080000");
        its.add_property(DeviceTreeProperty::new_unchecked(
            "compatible",
            "arm,gic-v3-its",
        ));
        tree.root.add_child(its);
    }
    prepare(&tree.to_dtb(), None).unwrap()
}

fn ids(fw: Firmware, h: &Handover, cmdline: &str) -> Vec<&'static str> {
    let (new, _) = new_kernel_interface(h, cmdline.as_bytes());
    risks(fw, h, new).into_iter().map(|r| r.id).collect()
}

const UEFI_ACPI: Firmware = Firmware {
    uefi: Some(true),
    acpi: Some(true),
};
const UEFI_DT: Firmware = Firmware {
    uefi: Some(true),
    acpi: Some(false),
};
const DT: Firmware = Firmware {
    uefi: Some(false),
    acpi: Some(false),
};

#[test]
fn firmware_from_the_probes() {
    let found = Probe::Found(vec![b'6', b'4']);
    let denied = Probe::Unreadable {
        denied: true,
        message: "Permission denied".into(),
    };
    assert_eq!(Firmware::of(&found, &denied), UEFI_ACPI);
    assert_eq!(Firmware::of(&Probe::Absent, &Probe::Absent), DT);
    let unknown = Firmware::of(&Probe::NotCaptured, &Probe::NotCaptured);
    assert_eq!(unknown, Firmware::default());
    assert_eq!(UEFI_ACPI.describe(), "UEFI, ACPI");
    assert_eq!(DT.describe(), "no UEFI, device tree");
    assert_eq!(unknown.describe(), "UEFI unknown, ACPI unknown");
}

#[test]
fn the_new_kernels_interface_follows_acpi_boot_table_init() {
    let stub = handover(true, true);
    let full = handover(true, false);
    let of = |h: &Handover, c: &str| new_kernel_interface(h, c.as_bytes()).0;
    assert_eq!(of(&stub, "root=/dev/vda2"), Interface::Acpi);
    assert_eq!(of(&stub, "acpi=off"), Interface::DeviceTree);
    assert_eq!(of(&full, "quiet"), Interface::DeviceTree);
    assert_eq!(of(&full, "acpi=force quiet"), Interface::Acpi);
    assert_eq!(of(&full, "acpi=on"), Interface::Acpi);
    // The last acpi= wins.
    assert_eq!(of(&full, "acpi=force acpi=off"), Interface::DeviceTree);
    assert_eq!(of(&full, "acpi=off\tacpi=force"), Interface::Acpi);
}

#[test]
fn a_uefi_acpi_handover_is_not_risky() {
    assert_eq!(ids(UEFI_ACPI, &handover(true, true), ""), [""; 0]);
    assert_eq!(ids(UEFI_DT, &handover(true, false), ""), [""; 0]);
    assert_eq!(
        ids(UEFI_ACPI, &handover(true, false), "acpi=force"),
        [""; 0]
    );
    assert_eq!(ids(DT, &handover(false, true), "acpi=off"), [""; 0]);
}

#[test]
fn each_risk_appears_for_its_cause() {
    // Without the system table the new kernel cannot find the memreserve
    // table either: the ITS's tables go unreserved too.
    assert_eq!(
        ids(UEFI_DT, &handover(false, false), "acpi=off"),
        ["uefi-state-lost", "its-without-efi-memreserve"]
    );
    assert_eq!(
        ids(UEFI_DT, &handover(false, true), "acpi=off"),
        ["uefi-state-lost"]
    );
    assert_eq!(ids(DT, &handover(false, true), ""), ["acpi-without-uefi"]);
    assert_eq!(
        ids(DT, &handover(false, false), ""),
        ["its-without-efi-memreserve"]
    );
    assert_eq!(
        ids(UEFI_ACPI, &handover(true, false), ""),
        ["acpi-to-device-tree"]
    );
    let all = ids(UEFI_ACPI, &handover(false, false), "acpi=force");
    assert_eq!(
        all,
        [
            "uefi-state-lost",
            "acpi-without-uefi",
            "its-without-efi-memreserve"
        ]
    );
    let (new, _) = new_kernel_interface(&handover(false, false), b"");
    let detail = &risks(DT, &handover(false, false), new)[0].detail;
    assert!(detail.contains("/its@8080000"), "{detail}");
}

#[test]
fn every_risk_id_is_documented() {
    let doc = include_str!("../../../docs/plan-json.md");
    for id in RISK_IDS {
        assert!(
            doc.contains(&format!("| `{id}` |")),
            "docs/plan-json.md lacks {id}"
        );
    }
    let actions = [
        kexec_core::fdt::Fate::Kept,
        kexec_core::fdt::Fate::Carried,
        kexec_core::fdt::Fate::DroppedLikeEfiStub,
        kexec_core::fdt::Fate::RunningInitrd,
        kexec_core::fdt::Fate::ImaBuffer,
    ];
    for fate in actions {
        assert!(doc.contains(&format!("`{}`", fate.id())), "{}", fate.id());
    }
}

/// Read from the UEFI guests' captures: both booted through UEFI, one uses
/// ACPI; and each interface's JSON name.
#[test]
fn firmware_is_read_from_a_sysroot() {
    let at = |name: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/sysroots")
            .join(name);
        Firmware::read(&Sysroot::at(&dir))
    };
    assert_eq!(at("virt-uefi-acpi"), UEFI_ACPI);
    assert_eq!(at("virt-uefi-dt"), UEFI_DT);
    assert_eq!(Interface::Acpi.id(), "acpi");
    assert_eq!(Interface::DeviceTree.id(), "device-tree");
}

//! Tests of [`super::prepare`]: the UEFI merge, the stale state removed
//! (each rule made to fail by the input that triggers it), and the facts
//! read for the report.

use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};

use super::*;
use crate::fdt::{read_back, UEFI_MMAP_SIZE, UEFI_MMAP_START};

const SYSTAB: u64 = 0xbff5_0018;
const MMAP: u64 = 0xbcd1_0018;

fn rsv(tree: &mut DeviceTree, start: u64, size: u64) {
    tree.memory_reservations
        .push(MemoryReservation::new(start, size));
}

macro_rules! prop {
    ($node:expr, $name:expr, $v:expr) => {
        $node.add_property(DeviceTreeProperty::new_unchecked($name, $v))
    };
}

/// The tree the EFI stub leaves: `/chosen` with the UEFI properties, no
/// memory reservations; `acpi`: nothing else (no `/memory`), else a small
/// DT machine with a GICv3 ITS.
fn uefi_running(acpi: bool) -> DeviceTree {
    let mut tree = DeviceTree::new();
    prop!(&mut tree.root, "#address-cells", 2u32);
    prop!(&mut tree.root, "#size-cells", 2u32);
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    prop!(&mut chosen, "bootargs", "root=/dev/vda2");
    prop!(&mut chosen, UEFI_SYSTEM_TABLE, SYSTAB);
    prop!(&mut chosen, UEFI_MMAP_START, MMAP);
    prop!(&mut chosen, UEFI_MMAP_SIZE, 0x6c0u32);
    prop!(&mut chosen, "linux,uefi-mmap-desc-size", 0x30u32);
    prop!(&mut chosen, "linux,uefi-mmap-desc-ver", 1u32);
    prop!(&mut chosen, "linux,uefi-secure-boot", 0u32);
    prop!(&mut chosen, "linux,initrd-start", 0x4800_0000u64);
    prop!(&mut chosen, "linux,initrd-end", 0x4812_3456u64);
    tree.root.add_child(chosen);
    if !acpi {
        tree.root.add_child(its_machine());
    }
    tree
}

fn its_machine() -> DeviceTreeNode {
    let mut intc = DeviceTreeNode::new_unchecked("intc@8000000");
    prop!(&mut intc, "compatible", "arm,gic-v3");
    let mut its = DeviceTreeNode::new_unchecked("its@8080000");
    prop!(&mut its, "compatible", "arm,gic-v3-its");
    intc.add_child(its);
    intc
}

fn uki_dtb() -> DeviceTree {
    let mut tree = DeviceTree::new();
    prop!(&mut tree.root, "#address-cells", 2u32);
    prop!(&mut tree.root, "#size-cells", 2u32);
    prop!(&mut tree.root, "model", "from the UKI");
    let mut memory = DeviceTreeNode::new_unchecked("memory@40000000");
    prop!(&mut memory, "device_type", "memory");
    tree.root.add_child(memory);
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    prop!(&mut chosen, "stdout-path", "/pl011@9000000");
    prop!(&mut chosen, UEFI_MMAP_START, 0x1234u64); // stale, from a dump
    tree.root.add_child(chosen);
    rsv(&mut tree, 0x5000_0000, 0x1000); // the stub deletes it
    tree
}

fn chosen_of(dtb: &[u8]) -> Vec<(String, Vec<u8>)> {
    let tree = crate::fdt::parse(dtb).unwrap();
    let chosen = chosen_node(&tree).unwrap();
    chosen
        .properties()
        .map(|p| (p.name().to_owned(), p.value().to_vec()))
        .collect()
}

#[test]
fn the_running_tree_keeps_every_uefi_property_untouched() {
    let running = uefi_running(true).to_dtb();
    let h = prepare(&running, None).unwrap();
    assert!(h.uefi && !h.merged && h.acpi_stub && !h.memory_nodes);
    assert_eq!(h.its, None);
    let before: Vec<_> = chosen_of(&running)
        .into_iter()
        .filter(|p| p.0.starts_with(UEFI_PREFIX))
        .collect();
    let after: Vec<_> = chosen_of(&h.dtb)
        .into_iter()
        .filter(|p| p.0.starts_with(UEFI_PREFIX))
        .collect();
    assert_eq!(before.len(), 6);
    assert_eq!(before, after, "byte for byte");
    assert_eq!(h.uefi_properties.len(), 6);
    // The EFI memory map is reserved for the new kernel, which reads it.
    let back = read_back(&h.dtb).unwrap();
    assert_eq!(back.reserved, [MemoryRange::with_size(MMAP, 0x6c0)]);
}

#[test]
fn a_uki_dtb_on_uefi_is_merged_as_the_efi_stub_would() {
    let mut running = uefi_running(false);
    rsv(&mut running, 0x7000_0000, 0x2000); // a previous loader's: carried
    let h = prepare(&uki_dtb().to_dtb(), Some(&running.to_dtb())).unwrap();
    assert!(h.uefi && h.merged && !h.acpi_stub && h.memory_nodes);
    // The UKI's tree, not the running one: no ITS there.
    assert_eq!(h.its, None);
    let tree = crate::fdt::parse(&h.dtb).unwrap();
    assert!(tree.root.property("model").is_some());
    let chosen = chosen_of(&h.dtb);
    let get = |n: &str| chosen.iter().find(|p| p.0 == n).map(|p| p.1.clone());
    assert_eq!(get(UEFI_SYSTEM_TABLE), Some(SYSTAB.to_be_bytes().to_vec()));
    assert_eq!(get(UEFI_MMAP_START), Some(MMAP.to_be_bytes().to_vec()));
    assert_eq!(
        get("stdout-path").as_deref(),
        Some(&b"/pl011@9000000\0"[..])
    );
    // Six carried; mmap-start replaced a different value.
    assert_eq!(h.carried.len(), 6);
    let start = h
        .carried
        .iter()
        .find(|c| c.name == UEFI_MMAP_START)
        .unwrap();
    assert_eq!(start.old.as_deref(), Some("0x1234"));
    assert_eq!(start.new.as_deref(), Some("0xbcd10018"));
    // The UKI's reservation dropped, the running one carried.
    assert_eq!(
        h.reservations,
        [
            Reservation {
                range: MemoryRange::with_size(0x5000_0000, 0x1000),
                fate: Fate::DroppedLikeEfiStub,
            },
            Reservation {
                range: MemoryRange::with_size(0x7000_0000, 0x2000),
                fate: Fate::Carried,
            },
        ]
    );
    let back = read_back(&h.dtb).unwrap();
    assert_eq!(
        back.reserved,
        [
            MemoryRange::with_size(0x7000_0000, 0x2000),
            MemoryRange::with_size(MMAP, 0x6c0)
        ]
    );
}

#[test]
fn without_uefi_a_given_tree_is_passed_without_its_uefi_properties() {
    let mut running = uefi_running(false);
    chosen_mut(&mut running)
        .unwrap()
        .remove_property(UEFI_SYSTEM_TABLE);
    let h = prepare(&uki_dtb().to_dtb(), Some(&running.to_dtb())).unwrap();
    assert!(!h.uefi && !h.merged && h.carried.is_empty());
    assert_eq!(h.reservations[0].fate, Fate::Kept);
    let chosen = chosen_of(&h.dtb);
    assert!(!chosen.iter().any(|p| p.0.starts_with(UEFI_PREFIX)));
    // The dump's stale linux,uefi-mmap-start went, and says so.
    assert_eq!(h.removed.len(), 1);
    assert_eq!(
        (h.removed[0].name.as_str(), h.removed[0].value.as_str()),
        (UEFI_MMAP_START, "0x1234")
    );
    assert!(h.uefi_properties.is_empty());
    // The running tree itself is never stripped of them.
    let own = prepare(&running.to_dtb(), None).unwrap();
    assert_eq!(own.uefi_properties.len(), 5);
    assert!(own.removed.is_empty());
}

#[test]
fn the_running_initrd_reservation_goes_exact_or_page_rounded() {
    // initrd 0x48000000..0x48123456: exact size, then rounded up to 4, 16
    // and 64 KiB pages; the first match goes, others stay.
    for size in [0x12_3456, 0x12_4000, 0x13_0000] {
        let mut tree = uefi_running(true);
        rsv(&mut tree, 0x4800_0000, size);
        rsv(&mut tree, 0x4900_0000, 0x1000);
        let h = prepare(&tree.to_dtb(), None).unwrap();
        assert_eq!(h.reservations[0].fate, Fate::RunningInitrd, "{size:#x}");
        assert_eq!(h.reservations[1].fate, Fate::Kept);
        let back = crate::fdt::parse(&h.dtb).unwrap();
        assert_eq!(
            back.memory_reservations,
            [MemoryReservation::new(0x4900_0000, 0x1000)]
        );
    }
    // Another start or size: not the initrd's.
    let mut tree = uefi_running(true);
    rsv(&mut tree, 0x4800_1000, 0x12_3456);
    rsv(&mut tree, 0x4800_0000, 0x12_5000);
    let h = prepare(&tree.to_dtb(), None).unwrap();
    assert!(h.reservations.iter().all(|r| r.fate == Fate::Kept));
    // No initrd in /chosen: nothing judged stale.
    let mut tree = uefi_running(true);
    chosen_mut(&mut tree)
        .unwrap()
        .remove_property("linux,initrd-end");
    rsv(&mut tree, 0x4800_0000, 0x12_3456);
    let h = prepare(&tree.to_dtb(), None).unwrap();
    assert_eq!(h.reservations[0].fate, Fate::Kept);
}

#[test]
fn the_ima_buffer_and_its_reservation_go() {
    let mut tree = uefi_running(true);
    let mut value = 0x5000_0000u64.to_be_bytes().to_vec();
    value.extend_from_slice(&0x3000u64.to_be_bytes());
    prop!(chosen_mut(&mut tree).unwrap(), IMA_KEXEC_BUFFER, value);
    rsv(&mut tree, 0x5000_0000, 0x3000);
    rsv(&mut tree, 0x5000_0000, 0x4000);
    let h = prepare(&tree.to_dtb(), None).unwrap();
    assert_eq!(h.removed.len(), 1);
    assert_eq!(h.removed[0].name, IMA_KEXEC_BUFFER);
    assert_eq!(h.reservations[0].fate, Fate::ImaBuffer);
    assert_eq!(h.reservations[1].fate, Fate::Kept, "only the exact range");
    assert!(!chosen_of(&h.dtb).iter().any(|p| p.0 == IMA_KEXEC_BUFFER));
    // Too short for the root's cells: the property goes, no reservation.
    let mut tree = uefi_running(true);
    prop!(
        chosen_mut(&mut tree).unwrap(),
        IMA_KEXEC_BUFFER,
        0x5000_0000u64
    );
    rsv(&mut tree, 0x5000_0000, 0x3000);
    let h = prepare(&tree.to_dtb(), None).unwrap();
    assert_eq!(h.removed.len(), 1);
    assert_eq!(h.reservations[0].fate, Fate::Kept);
}

#[test]
fn every_kho_property_goes() {
    let mut tree = uefi_running(true);
    let chosen = chosen_mut(&mut tree).unwrap();
    prop!(chosen, "linux,kho-fdt", vec![0u8; 16]);
    prop!(chosen, "linux,kho-scratch", vec![0u8; 16]);
    prop!(chosen, "linux,kho-mem", vec![0u8; 16]); // an older series' name
    let h = prepare(&tree.to_dtb(), None).unwrap();
    let names: Vec<_> = h.removed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["linux,kho-fdt", "linux,kho-scratch", "linux,kho-mem"]
    );
    assert!(!chosen_of(&h.dtb)
        .iter()
        .any(|p| p.0.starts_with(KHO_PREFIX)));
}

#[test]
fn the_boot_interface_and_the_its_are_found() {
    let h = prepare(&uefi_running(false).to_dtb(), None).unwrap();
    assert!(!h.acpi_stub);
    assert_eq!(h.its.as_deref(), Some("/intc@8000000/its@8080000"));
    // A Xen hypervisor node still makes a stub; any other node does not.
    let mut tree = uefi_running(true);
    let mut xen = DeviceTreeNode::new_unchecked("hypervisor");
    prop!(&mut xen, "compatible", "xen,xen\0xen,xen-4.17");
    tree.root.add_child(xen);
    assert!(prepare(&tree.to_dtb(), None).unwrap().acpi_stub);
    let mut tree = uefi_running(true);
    tree.root
        .add_child(DeviceTreeNode::new_unchecked("hypervisor"));
    assert!(!prepare(&tree.to_dtb(), None).unwrap().acpi_stub);
}

#[test]
fn errors_name_the_input() {
    let good = uefi_running(true).to_dtb();
    assert_eq!(prepare(&good[..20], None).unwrap_err().0, Input::Given);
    assert_eq!(
        prepare(&good, Some(&good[..20])).unwrap_err().0,
        Input::Running
    );
}

#[test]
fn boot_cpuid_phys_is_kept() {
    let mut dtb = uefi_running(true).to_dtb();
    dtb[28..32].copy_from_slice(&3u32.to_be_bytes());
    let h = prepare(&dtb, None).unwrap();
    assert_eq!(h.dtb[28..32], 3u32.to_be_bytes());
}

#[test]
fn fate_ids_are_the_documented_ones() {
    let all = [
        (Fate::Kept, "kept", true),
        (Fate::Carried, "carried", true),
        (Fate::DroppedLikeEfiStub, "dropped-like-efi-stub", false),
        (Fate::RunningInitrd, "removed-running-initrd", false),
        (Fate::ImaBuffer, "removed-ima-buffer", false),
    ];
    for (fate, id, passed_on) in all {
        assert_eq!((fate.id(), fate.passed_on()), (id, passed_on));
    }
}

#[test]
fn a_tree_without_chosen_still_reads_back_its_reservations() {
    let mut tree = DeviceTree::new();
    rsv(&mut tree, 0x4000_0000, 0x1000);
    rsv(&mut tree, 0x4100_0000, 0); // empty: reserves nothing
    let back = read_back(&tree.to_dtb()).unwrap();
    assert_eq!(back.reserved, [MemoryRange::with_size(0x4000_0000, 0x1000)]);
    assert_eq!((back.initrd, back.bootargs), (None, None));
}

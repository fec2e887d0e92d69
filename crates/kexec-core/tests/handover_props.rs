//! Properties of [`fdt::prepare`], the hand-over of the running kernel's
//! boot state: on random trees with UEFI properties, memory reservations,
//! an initrd and stale IMA/KHO state, the `linux,uefi-*` properties pass
//! byte for byte, exactly the reservations reported kept are in the tree,
//! at most one reservation goes for the initrd (the kernel's
//! `fdt_find_and_del_mem_rsv` deletes the first match), and a merge keeps
//! the running tree's reservations, never the given tree's.

use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};
use kexec_core::fdt::{self, prepare, Fate};
use proptest::prelude::*;

/// A running tree: `/chosen` with the EFI stub's properties (when `uefi`),
/// an initrd at `initrd`, optional IMA and KHO properties, reservations.
fn tree(
    uefi: bool,
    initrd: Option<(u64, u64)>,
    stale: bool,
    reservations: &[(u64, u64)],
) -> DeviceTree {
    let mut t = DeviceTree::new();
    t.root
        .add_property(DeviceTreeProperty::new_unchecked("#address-cells", 2u32));
    t.root
        .add_property(DeviceTreeProperty::new_unchecked("#size-cells", 2u32));
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    if uefi {
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::UEFI_SYSTEM_TABLE,
            0xbff5_0018u64,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::UEFI_MMAP_START,
            0xbcd1_0018u64,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::UEFI_MMAP_SIZE,
            0x6c0u32,
        ));
    }
    if let Some((start, end)) = initrd {
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            "linux,initrd-start",
            start,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked("linux,initrd-end", end));
    }
    if stale {
        let mut ima = 0x5000_0000u64.to_be_bytes().to_vec();
        ima.extend_from_slice(&0x3000u64.to_be_bytes());
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::IMA_KEXEC_BUFFER,
            ima,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            "linux,kho-fdt",
            vec![0u8; 16],
        ));
    }
    t.root.add_child(chosen);
    for &(a, s) in reservations {
        t.memory_reservations.push(MemoryReservation::new(a, s));
    }
    t
}

fn chosen_props(dtb: &[u8], prefix: &str) -> Vec<(String, Vec<u8>)> {
    let t = fdt::parse(dtb).unwrap();
    let chosen = t.root.children().find(|c| c.name() == "chosen").unwrap();
    chosen
        .properties()
        .filter(|p| p.name().starts_with(prefix))
        .map(|p| (p.name().to_owned(), p.value().to_vec()))
        .collect()
}

/// Reservations near the initrd (its exact and page-rounded sizes), the
/// IMA buffer, and elsewhere.
fn reservations() -> impl Strategy<Value = Vec<(u64, u64)>> {
    let one = prop_oneof![
        Just((0x4800_0000u64, 0x12_3456u64)),
        Just((0x4800_0000, 0x12_4000)),
        Just((0x4800_0000, 0x13_0000)),
        Just((0x5000_0000, 0x3000)),
        (0x4000_0000u64..0x8000_0000, 1u64..0x10_0000),
    ];
    prop::collection::vec(one, 0..6)
}

proptest! {
    #[test]
    fn the_running_tree_hands_over(
        uefi in any::<bool>(),
        with_initrd in any::<bool>(),
        stale in any::<bool>(),
        rsv in reservations(),
    ) {
        let initrd = with_initrd.then_some((0x4800_0000u64, 0x4812_3456u64));
        let dtb = tree(uefi, initrd, stale, &rsv).to_dtb();
        let h = prepare(&dtb, None).unwrap();
        prop_assert_eq!(h.uefi, uefi);
        prop_assert_eq!(chosen_props(&h.dtb, "linux,uefi-"), chosen_props(&dtb, "linux,uefi-"));
        prop_assert!(chosen_props(&h.dtb, "linux,kho-").is_empty());
        prop_assert!(chosen_props(&h.dtb, fdt::IMA_KEXEC_BUFFER).is_empty());
        // Exactly the reservations reported kept, in order.
        let kept: Vec<_> = h.reservations.iter().filter(|r| r.fate.passed_on())
            .map(|r| (r.range.start, r.range.size())).collect();
        let out: Vec<_> = fdt::parse(&h.dtb).unwrap().memory_reservations.iter()
            .map(|r| (r.address(), r.size())).collect();
        prop_assert_eq!(kept, out);
        prop_assert_eq!(h.reservations.len(), rsv.len());
        let initrd_gone = h.reservations.iter().filter(|r| r.fate == Fate::RunningInitrd).count();
        prop_assert!(initrd_gone <= 1);
        // One goes for the initrd whenever one matches exactly or rounded.
        let matches = rsv.iter().any(|&(a, s)| a == 0x4800_0000
            && [0x12_3456, 0x12_4000, 0x13_0000].contains(&s));
        prop_assert_eq!(initrd_gone == 1, with_initrd && matches);
        let ima_gone = h.reservations.iter().filter(|r| r.fate == Fate::ImaBuffer).count();
        prop_assert_eq!(ima_gone == 1, stale && rsv.contains(&(0x5000_0000, 0x3000)));
    }

    #[test]
    fn a_merge_takes_the_running_reservations(
        given_rsv in reservations(),
        running_rsv in reservations(),
        uefi in any::<bool>(),
    ) {
        let given = tree(false, None, true, &given_rsv).to_dtb();
        let running = tree(uefi, Some((0x4800_0000, 0x4812_3456)), false, &running_rsv).to_dtb();
        let h = prepare(&given, Some(&running)).unwrap();
        prop_assert_eq!(h.merged, uefi);
        let out: Vec<_> = fdt::parse(&h.dtb).unwrap().memory_reservations.iter()
            .map(|r| (r.address(), r.size())).collect();
        let carried: Vec<_> = h.reservations.iter().filter(|r| r.fate == Fate::Carried)
            .map(|r| (r.range.start, r.range.size())).collect();
        if uefi {
            prop_assert_eq!(&out, &carried);
            prop_assert!(h.reservations.iter().take(given_rsv.len())
                .all(|r| r.fate == Fate::DroppedLikeEfiStub || !r.fate.passed_on()));
            prop_assert_eq!(chosen_props(&h.dtb, "linux,uefi-"), chosen_props(&running, "linux,uefi-"));
        } else {
            prop_assert!(carried.is_empty());
            prop_assert!(chosen_props(&h.dtb, "linux,uefi-").is_empty());
        }
    }

    #[test]
    fn prepare_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(&fdt::FDT_MAGIC.to_be_bytes());
            let len = u32::try_from(bytes.len()).unwrap();
            bytes[4..8].copy_from_slice(&len.to_be_bytes());
        }
        let _ = prepare(&bytes, None);
        let _ = prepare(&bytes, Some(&bytes));
    }
}

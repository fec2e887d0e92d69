//! Properties of the planner's inputs: `/proc/iomem` parsing and `/chosen`
//! editing.

use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};
use kexec_core::fdt::{self, chosen_initrd, edit_chosen, ChosenEdit, BOOTARGS};
use kexec_core::iomem::{self, MemoryRange};
use proptest::prelude::*;

/// System RAM ranges (page granular, disjoint), each with reserved children.
fn ram_with_reserved() -> impl Strategy<Value = Vec<(MemoryRange, Vec<MemoryRange>)>> {
    prop::collection::vec(
        (
            1u64..0x1000,
            1u64..0x4000,
            prop::collection::vec((0u64..0x4000, 1u64..0x100), 0..6),
        ),
        1..5,
    )
    .prop_map(|parts| {
        let mut at = 0x4_0000u64; // in pages
        let mut out = Vec::new();
        for (gap, pages, holes) in parts {
            let start = at + gap;
            let end = start + pages;
            let mut children: Vec<MemoryRange> = Vec::new();
            let mut cursor = start;
            let mut holes = holes;
            holes.sort();
            for (off, len) in holes {
                let s = (start + off).max(cursor);
                let e = (s + len).min(end);
                if s < e {
                    children.push(MemoryRange::new(s * 0x1000, e * 0x1000));
                    cursor = e;
                }
            }
            out.push((MemoryRange::new(start * 0x1000, end * 0x1000), children));
            at = end;
        }
        out
    })
}

fn render(parts: &[(MemoryRange, Vec<MemoryRange>)]) -> String {
    let mut text = String::from("09000000-09000fff : pl011@9000000\n");
    for (ram, holes) in parts {
        text.push_str(&format!(
            "{:08x}-{:08x} : System RAM\n",
            ram.start,
            ram.end - 1
        ));
        for h in holes {
            text.push_str(&format!("  {:08x}-{:08x} : reserved\n", h.start, h.end - 1));
        }
    }
    text
}

fn covered(ranges: &[MemoryRange]) -> u64 {
    ranges.iter().map(MemoryRange::size).sum()
}

proptest! {
    #[test]
    fn usable_ram_is_ram_minus_reserved(parts in ram_with_reserved()) {
        let map = iomem::parse(&render(&parts)).unwrap();
        let usable = map.usable_ram();
        let rams: Vec<_> = parts.iter().map(|p| p.0).collect();
        let holes: Vec<_> = parts.iter().flat_map(|p| p.1.iter().copied()).collect();
        prop_assert_eq!(map.system_ram(), rams.clone());
        for u in &usable {
            prop_assert!(!u.is_empty());
            prop_assert!(rams.iter().any(|r| r.contains_range(u)));
            prop_assert!(holes.iter().all(|h| !h.overlaps(u)));
        }
        prop_assert_eq!(covered(&usable) + covered(&holes), covered(&rams));
    }

    #[test]
    fn iomem_parser_never_panics(text in "([0-9a-f]{1,9}-[0-9a-f]{1,9} : [a-zA-Z ]{0,12}\n|  |\n){0,40}") {
        let _ = iomem::parse(&text);
    }

    #[test]
    fn chosen_edit_round_trips(
        bootargs in "[ -~]{0,200}",
        start in 0u64..(1 << 40),
        len in 1u64..(1 << 30),
        kaslr in any::<u64>(),
        rng in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut tree = DeviceTree::new();
        tree.root.add_property(DeviceTreeProperty::new_unchecked("#address-cells", 2u32));
        tree.root.add_property(DeviceTreeProperty::new_unchecked("#size-cells", 2u32));
        let mut mem = DeviceTreeNode::new_unchecked("memory@40000000");
        mem.add_property(DeviceTreeProperty::new_unchecked("device_type", "memory"));
        tree.root.add_child(mem);
        tree.memory_reservations.push(MemoryReservation::new(0x4000_0000, 0x1_0000));
        let initrd = MemoryRange::with_size(start, len);
        let edit = ChosenEdit {
            bootargs: Some(bootargs.clone().into_bytes()),
            initrd: Some(initrd),
            kaslr_seed: Some(kaslr),
            rng_seed: Some(rng),
            crash: None,
        };
        let out = edit_chosen(&tree.to_dtb(), &edit).unwrap();
        prop_assert_eq!(chosen_initrd(&out.dtb).unwrap(), Some(initrd));
        let back = fdt::parse(&out.dtb).unwrap();
        prop_assert_eq!(&back.memory_reservations, &tree.memory_reservations);
        prop_assert!(back.find_node("/memory@40000000").is_some());
        let chosen = back.find_node("/chosen").unwrap();
        let mut want = bootargs.into_bytes();
        want.push(0);
        let got = chosen.property(BOOTARGS).unwrap().value().to_vec();
        prop_assert_eq!(got, want);
        // Editing again with the same values changes nothing.
        let again = edit_chosen(&out.dtb, &edit).unwrap();
        prop_assert!(again.changes.is_empty());
        prop_assert_eq!(again.dtb, out.dtb);
    }

    #[test]
    fn dtb_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(&fdt::FDT_MAGIC.to_be_bytes());
            let len = u32::try_from(bytes.len()).unwrap();
            bytes[4..8].copy_from_slice(&len.to_be_bytes());
        }
        let _ = edit_chosen(&bytes, &ChosenEdit::default());
    }
}

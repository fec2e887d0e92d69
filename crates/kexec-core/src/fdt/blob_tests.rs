//! Tests at the limits of the reader and the edit: hand-written blobs (one
//! commented line per field, vm-fdt style) checked against the DT spec and
//! libfdt, the header's version range, the 2 MiB limit of booting.rst.

use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

use super::chosen::*;
use super::parse::*;
use crate::iomem::MemoryRange;
use crate::layout::DTB_MAX_SIZE;

/// A root node with one property `a = <1>`, an `FDT_NOP` before it, and two
/// memory reservations, the first at address 0. `size_dt_struct` is a
/// parameter so that tests can cut the structure block short.
#[rustfmt::skip]
fn nop_blob(size_dt_struct: u8) -> Vec<u8> {
    vec![
        0xd0, 0x0d, 0xfe, 0xed, // 0000: magic
        0x00, 0x00, 0x00, 0x7e, // 0004: totalsize = 126
        0x00, 0x00, 0x00, 0x58, // 0008: off_dt_struct
        0x00, 0x00, 0x00, 0x7c, // 000c: off_dt_strings
        0x00, 0x00, 0x00, 0x28, // 0010: off_mem_rsvmap
        0x00, 0x00, 0x00, 0x11, // 0014: version = 17
        0x00, 0x00, 0x00, 0x10, // 0018: last_comp_version = 16
        0x00, 0x00, 0x00, 0x00, // 001c: boot_cpuid_phys
        0x00, 0x00, 0x00, 0x02, // 0020: size_dt_strings
        0x00, 0x00, 0x00, size_dt_struct, // 0024: size_dt_struct
        0x00, 0x00, 0x00, 0x00, // 0028: reservation 0: address = 0
        0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, // 0030: size = 0x1000
        0x00, 0x00, 0x10, 0x00, //
        0x00, 0x00, 0x00, 0x00, // 0038: reservation 1: address = 0x40000000
        0x40, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, // 0040: size = 0x1000
        0x00, 0x00, 0x10, 0x00, //
        0x00, 0x00, 0x00, 0x00, // 0048: terminator: address = 0
        0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, // 0050: size = 0
        0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x01, // 0058: FDT_BEGIN_NODE
        0x00, 0x00, 0x00, 0x00, // 005c: name "" and padding
        0x00, 0x00, 0x00, 0x04, // 0060: FDT_NOP
        0x00, 0x00, 0x00, 0x03, // 0064: FDT_PROP
        0x00, 0x00, 0x00, 0x04, // 0068: len = 4
        0x00, 0x00, 0x00, 0x00, // 006c: nameoff = 0 ("a")
        0x00, 0x00, 0x00, 0x01, // 0070: value <1>
        0x00, 0x00, 0x00, 0x02, // 0074: FDT_END_NODE
        0x00, 0x00, 0x00, 0x09, // 0078: FDT_END
        b'a', 0x00,             // 007c: strings: "a"
    ]
}

/// Full structure block: 0x58..0x7c.
const NOP_BLOB_STRUCT_SIZE: u8 = 0x24;

fn nop_blob_tree() -> DeviceTree {
    let mut tree = DeviceTree::new();
    tree.root
        .add_property(DeviceTreeProperty::new_unchecked("a", 1u32));
    tree.memory_reservations = vec![
        MemoryReservation::new(0, 0x1000),
        MemoryReservation::new(0x4000_0000, 0x1000),
    ];
    tree
}

/// DT spec § 5.4.1: `FDT_NOP` is skipped. § 5.3: only an entry with address
/// *and* size 0 ends the reservation block (a reservation at address 0 is
/// one; the kernel, drivers/of/fdt.c `early_init_fdt_scan_reserved_mem`,
/// likewise only stops at size 0).
#[test]
fn lenient_reader_skips_nop_and_keeps_a_reservation_at_address_zero() {
    let blob = nop_blob(NOP_BLOB_STRUCT_SIZE);
    let h = parse_header(&blob).unwrap();
    assert_eq!(parse_lenient(&blob, &h), Ok(nop_blob_tree()));
    assert_eq!(parse(&blob), Ok(nop_blob_tree()));
}

/// A token that does not fit in the structure block is refused even when
/// the bytes follow in the blob, and so is a property value (libfdt
/// `fdt_next_tag`: FDT_ERR_TRUNCATED).
#[test]
fn lenient_reader_refuses_a_token_past_the_structure_block() {
    for size in [NOP_BLOB_STRUCT_SIZE - 4, NOP_BLOB_STRUCT_SIZE - 2] {
        let blob = nop_blob(size);
        let h = parse_header(&blob).unwrap();
        assert_eq!(
            parse_lenient(&blob, &h),
            Err(Error::Malformed {
                offset: 0x78,
                what: "truncated structure block"
            }),
            "size_dt_struct {size:#x}"
        );
    }
    // The block ends before the property's value; the strings follow.
    let blob = nop_blob(0x18);
    let h = parse_header(&blob).unwrap();
    assert_eq!(
        parse_lenient(&blob, &h),
        Err(Error::Malformed {
            offset: 0x64,
            what: "property value out of bounds"
        })
    );
}

/// libfdt `fdt_check_header`: a blob is readable if `last_comp_version` is at
/// most the version we read (17), whatever its `version` beyond.
#[test]
fn last_compatible_version_17_is_read_18_is_not() {
    let mut blob = nop_blob(NOP_BLOB_STRUCT_SIZE);
    blob[0x18..0x1c].copy_from_slice(&17u32.to_be_bytes());
    blob[0x14..0x18].copy_from_slice(&18u32.to_be_bytes());
    assert_eq!(parse_header(&blob).unwrap().last_comp_version, 17);
    blob[0x18..0x1c].copy_from_slice(&18u32.to_be_bytes());
    assert_eq!(
        parse_header(&blob),
        Err(Error::UnsupportedVersion {
            version: 18,
            last_comp_version: 18
        })
    );
}

/// A tree whose edited blob is `DTB_MAX_SIZE + extra` bytes: a root property
/// sized to reach it, its name (in the strings block, which is not padded)
/// chosen to make the remainder a whole number of 4-byte words.
fn edited_to(extra: usize) -> Result<EditedDtb, Error> {
    let with_filler = |name: &str, len: usize| {
        let mut tree = DeviceTree::new();
        tree.root
            .add_property(DeviceTreeProperty::new_unchecked(name, vec![0u8; len]));
        tree.root.add_child(DeviceTreeNode::new_unchecked(CHOSEN));
        tree.to_dtb()
    };
    let limit = usize::try_from(DTB_MAX_SIZE).unwrap();
    let (name, base) = ["f", "fi", "fil", "fill"]
        .into_iter()
        .map(|name| {
            let out = edit_chosen(&with_filler(name, 0), &ChosenEdit::default()).unwrap();
            (name, out.dtb.len())
        })
        .find(|(_, base)| (limit - base) % 4 == 0)
        .unwrap();
    edit_chosen(
        &with_filler(name, limit - base + extra),
        &ChosenEdit::default(),
    )
}

/// booting.rst § 2: the device tree "must not exceed 2 megabytes".
#[test]
fn edited_blob_of_exactly_2_mib_is_accepted_4_bytes_more_refused() {
    let limit = usize::try_from(DTB_MAX_SIZE).unwrap();
    assert_eq!(edited_to(0).unwrap().dtb.len(), limit);
    assert_eq!(edited_to(4), Err(Error::TooLarge { size: limit + 4 }));
}

/// drivers/of/fdt.c `early_init_dt_check_for_initrd` reads 1 or 2 cells.
#[test]
fn initrd_properties_of_one_cell_are_read() {
    let mut tree = DeviceTree::new();
    let mut chosen = DeviceTreeNode::new_unchecked(CHOSEN);
    chosen.add_property(DeviceTreeProperty::new_unchecked(
        "linux,initrd-start",
        0x4800_0000u32,
    ));
    chosen.add_property(DeviceTreeProperty::new_unchecked(
        "linux,initrd-end",
        0x4810_0000u32,
    ));
    tree.root.add_child(chosen);
    assert_eq!(
        chosen_initrd(&tree.to_dtb()),
        Ok(Some(MemoryRange::new(0x4800_0000, 0x4810_0000)))
    );
}

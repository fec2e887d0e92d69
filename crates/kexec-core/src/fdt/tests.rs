//! Tests of header parsing, the lenient reader and the `/chosen` edits,
//! with expected bytes written against the DT spec.

use dtoolkit::fdt::Fdt;
use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};

use super::chosen::*;
use super::parse::*;
use crate::iomem::MemoryRange;

/// A minimal tree: root with `#address-cells = <2>`, `#size-cells = <2>`,
/// a `/chosen` with stale properties, one memory reservation.
fn sample(address_cells: u32, size_cells: u32) -> Vec<u8> {
    let mut tree = DeviceTree::new();
    tree.root.add_property(DeviceTreeProperty::new_unchecked(
        "#address-cells",
        address_cells,
    ));
    tree.root
        .add_property(DeviceTreeProperty::new_unchecked("#size-cells", size_cells));
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    chosen.add_property(DeviceTreeProperty::new_unchecked(BOOTARGS, "old"));
    chosen.add_property(DeviceTreeProperty::new_unchecked(
        INITRD_START,
        0x4800_0000u32,
    ));
    chosen.add_property(DeviceTreeProperty::new_unchecked(
        INITRD_END,
        0x4810_0000u32,
    ));
    chosen.add_property(DeviceTreeProperty::new_unchecked(KASLR_SEED, 0u64));
    chosen.add_property(DeviceTreeProperty::new_unchecked(
        "linux,uefi-mmap-start",
        0x1234u64,
    ));
    chosen.add_property(DeviceTreeProperty::new_unchecked(ELFCOREHDR, vec![0u8; 16]));
    tree.root.add_child(chosen);
    tree.memory_reservations
        .push(MemoryReservation::new(0x4000_0000, 0x1000));
    tree.to_dtb()
}

fn set_word(dtb: &mut [u8], at: usize, v: u32) {
    dtb[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn header_errors_are_exact() {
    let good = sample(2, 2);
    assert_eq!(parse_header(&good[..10]), Err(Error::TooShort { len: 10 }));
    let mut bad = good.clone();
    set_word(&mut bad, 0, 0xdead_beef);
    assert_eq!(
        parse_header(&bad),
        Err(Error::BadMagic { found: 0xdead_beef })
    );
    let mut bad = good.clone();
    let len = u32::try_from(good.len()).unwrap();
    set_word(&mut bad, 4, len + 1);
    assert_eq!(
        parse_header(&bad),
        Err(Error::TotalSizeExceedsBuffer {
            totalsize: len + 1,
            len: good.len()
        })
    );
    let mut bad = good.clone();
    set_word(&mut bad, 16, 44);
    assert_eq!(
        parse_header(&bad),
        Err(Error::MisalignedOffset {
            field: "off_mem_rsvmap",
            offset: 44,
            align: 8
        })
    );
    let mut bad = good.clone();
    set_word(&mut bad, 8, 0x42);
    assert_eq!(
        parse_header(&bad),
        Err(Error::MisalignedOffset {
            field: "off_dt_struct",
            offset: 0x42,
            align: 4
        })
    );
    let mut bad = good;
    set_word(&mut bad, 20, 16);
    assert_eq!(
        parse_header(&bad),
        Err(Error::UnsupportedVersion {
            version: 16,
            last_comp_version: 16
        })
    );
}

#[test]
fn header_bytes_read_against_the_spec() {
    #[rustfmt::skip]
    let header: [u8; 40] = [
        0xd0, 0x0d, 0xfe, 0xed, // 0000: magic
        0x00, 0x00, 0x00, 0x28, // 0004: totalsize = 40
        0x00, 0x00, 0x00, 0x38, // 0008: off_dt_struct
        0x00, 0x00, 0x00, 0x48, // 000c: off_dt_strings
        0x00, 0x00, 0x00, 0x28, // 0010: off_mem_rsvmap
        0x00, 0x00, 0x00, 0x11, // 0014: version = 17
        0x00, 0x00, 0x00, 0x10, // 0018: last_comp_version = 16
        0x00, 0x00, 0x00, 0x00, // 001c: boot_cpuid_phys
        0x00, 0x00, 0x00, 0x00, // 0020: size_dt_strings
        0x00, 0x00, 0x00, 0x10, // 0024: size_dt_struct
    ];
    let h = parse_header(&header).unwrap();
    assert_eq!(h.totalsize, 40);
    assert_eq!(h.off_dt_struct, 0x38);
    assert_eq!(h.version, 17);
    // Structure offsets past the buffer: the library's structural check.
    assert!(matches!(parse(&header), Err(Error::Parse(_))));
}

#[test]
fn address_cells_zero_or_three_are_refused() {
    assert_eq!(
        edit_chosen(&sample(0, 2), &ChosenEdit::default()),
        Err(Error::BadAddressCells(0))
    );
    assert_eq!(
        edit_chosen(&sample(3, 2), &ChosenEdit::default()),
        Err(Error::BadAddressCells(3))
    );
    assert_eq!(
        edit_chosen(&sample(2, 0), &ChosenEdit::default()),
        Err(Error::BadSizeCells(0))
    );
}

#[test]
fn normal_load_edit() {
    let edit = ChosenEdit {
        bootargs: Some("console=ttyAMA0".into()),
        initrd: Some(MemoryRange::new(0x4820_0000, 0x4830_0000)),
        kaslr_seed: Some(0x1122_3344_5566_7788),
        rng_seed: Some(vec![0xaa; RNG_SEED_LEN]),
        crash: None,
    };
    let out = edit_chosen(&sample(2, 2), &edit).unwrap();
    assert!(!out.chosen_created);
    let names: Vec<_> = out.changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            BOOTARGS,
            INITRD_START,
            INITRD_END,
            KASLR_SEED,
            RNG_SEED,
            ELFCOREHDR
        ]
    );
    assert_eq!(out.changes[1].old.as_deref(), Some("<0x48000000>"));
    assert_eq!(out.changes[1].new.as_deref(), Some("0x48200000"));
    assert_eq!(out.changes[5].new, None);
    let tree = parse(&out.dtb).unwrap();
    let chosen = tree.find_node("/chosen").unwrap();
    #[rustfmt::skip]
    assert_eq!(chosen.property(INITRD_START).unwrap().value(), &[
        0x00, 0x00, 0x00, 0x00, 0x48, 0x20, 0x00, 0x00, // u64 big endian, like kexec-tools
    ]);
    assert!(chosen.property("linux,uefi-mmap-start").is_some());
    assert_eq!(
        tree.memory_reservations,
        vec![MemoryReservation::new(0x4000_0000, 0x1000)]
    );
    assert_eq!(
        chosen_initrd(&out.dtb).unwrap(),
        Some(MemoryRange::new(0x4820_0000, 0x4830_0000))
    );
}

#[test]
fn no_initrd_removes_stale_properties() {
    let out = edit_chosen(&sample(2, 2), &ChosenEdit::default()).unwrap();
    assert_eq!(chosen_initrd(&out.dtb).unwrap(), None);
    let tree = parse(&out.dtb).unwrap();
    // bootargs untouched when no command line is given.
    assert_eq!(
        tree.find_node("/chosen")
            .unwrap()
            .property(BOOTARGS)
            .unwrap()
            .value(),
        b"old\0"
    );
}

#[test]
fn crash_properties_follow_root_cells() {
    let crash = CrashChosen {
        elfcorehdr: Some(MemoryRange::with_size(0x7f00_0000, 0x1_0000)),
        usable: vec![
            MemoryRange::new(0x7000_0000, 0x8000_0000),
            MemoryRange::new(0x4000_0000, 0x4100_0000),
        ],
    };
    let edit = ChosenEdit {
        crash: Some(crash.clone()),
        ..Default::default()
    };
    let out = edit_chosen(&sample(1, 1), &edit).unwrap();
    let tree = parse(&out.dtb).unwrap();
    let chosen = tree.find_node("/chosen").unwrap();
    #[rustfmt::skip]
    assert_eq!(chosen.property(USABLE_MEMORY_RANGE).unwrap().value(), &[
        0x70, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // high range first: addr, size
        0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // then low
    ]);
    #[rustfmt::skip]
    assert_eq!(chosen.property(ELFCOREHDR).unwrap().value(), &[
        0x7f, 0x00, 0x00, 0x00, // addr, 1 cell
        0x00, 0x01, 0x00, 0x00, // size, 1 cell
    ]);
    let high = CrashChosen {
        elfcorehdr: Some(MemoryRange::with_size(1 << 33, 0x1000)),
        usable: vec![],
    };
    assert_eq!(
        edit_chosen(
            &sample(1, 1),
            &ChosenEdit {
                crash: Some(high),
                ..Default::default()
            }
        ),
        Err(Error::ValueTooLargeForCells {
            property: ELFCOREHDR,
            field: "#address-cells",
            value: 1 << 33,
            cells: 1,
            declared: true,
        })
    );
    let three = CrashChosen {
        usable: vec![crash.usable[0]; 3],
        ..crash
    };
    assert_eq!(
        edit_chosen(
            &sample(2, 2),
            &ChosenEdit {
                crash: Some(three),
                ..Default::default()
            }
        ),
        Err(Error::TooManyUsableRanges(3))
    );
}

#[test]
fn chosen_is_created_when_missing() {
    let mut tree = DeviceTree::new();
    tree.root
        .add_child(DeviceTreeNode::new_unchecked("memory@40000000"));
    let out = edit_chosen(
        &tree.to_dtb(),
        &ChosenEdit {
            kaslr_seed: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(out.chosen_created);
    let tree = parse(&out.dtb).unwrap();
    assert!(tree.find_node("/memory@40000000").is_some());
    assert!(tree
        .find_node("/chosen")
        .unwrap()
        .property(KASLR_SEED)
        .is_some());
}

/// The node the kernel reads as `/chosen` (libfdt `fdt_path_offset`: the
/// first root child named `chosen` or `chosen@…`), looked up here without
/// the code under test: the names in blob order.
fn kernel_chosen(dtb: &[u8]) -> String {
    let tree = parse(dtb).unwrap();
    tree.root
        .children()
        .map(|c| c.name().to_owned())
        .find(|n| n == "chosen" || n.starts_with("chosen@"))
        .unwrap()
}

/// A `chosen@N` before `chosen` is what the kernel reads (the first match of
/// `fdt_path_offset(fdt, "/chosen")`); a lone `chosen@0` too (and it is the
/// kernel's `/chosen@0` fallback). The edits go there; no second `chosen`
/// is added. (The fuzz target once found the opposite behaviour, then
/// thought right.)
#[test]
fn chosen_with_unit_address_is_the_one_the_kernel_reads() {
    let edit = ChosenEdit {
        bootargs: Some("new".into()),
        initrd: Some(MemoryRange::new(0x4800_0000, 0x4810_0000)),
        ..Default::default()
    };
    let tree_of = |names: &[&str]| {
        let mut tree = DeviceTree::new();
        tree.root
            .add_child(DeviceTreeNode::new_unchecked("memory@40000000"));
        for name in names {
            let mut node = DeviceTreeNode::new_unchecked(*name);
            node.add_property(DeviceTreeProperty::new_unchecked(BOOTARGS, *name));
            tree.root.add_child(node);
        }
        tree.to_dtb()
    };
    for (names, read) in [
        (&["chosen@9019999", "chosen"][..], "chosen@9019999"),
        (&["chosen", "chosen@0"][..], "chosen"),
        (&["chosen@0"][..], "chosen@0"),
        (&["chosenx", "chosen@1"][..], "chosen@1"),
    ] {
        let out = edit_chosen(&tree_of(names), &edit).unwrap();
        assert!(!out.chosen_created, "{names:?}");
        assert_eq!(kernel_chosen(&out.dtb), read, "{names:?}");
        let tree = parse(&out.dtb).unwrap();
        let count = tree.root.children().count();
        assert_eq!(count, names.len() + 1, "{names:?}: no node added");
        for node in tree.root.children() {
            let bootargs = node.property(BOOTARGS).map(|p| p.value().to_vec());
            if node.name() == read {
                assert_eq!(bootargs.as_deref(), Some(&b"new\0"[..]), "{names:?}");
            } else if node.name() != "memory@40000000" {
                assert_ne!(bootargs.as_deref(), Some(&b"new\0"[..]), "{names:?}");
            }
        }
        assert_eq!(chosen_initrd(&out.dtb).unwrap(), edit.initrd, "{names:?}");
    }
    // `chosenx` is not chosen: /chosen is created.
    let out = edit_chosen(&tree_of(&["chosenx"]), &edit).unwrap();
    assert!(out.chosen_created);
    assert_eq!(kernel_chosen(&out.dtb), "chosen");
}

/// Without root `#address-cells`/`#size-cells` the kernel reads the crash
/// properties with 1 and 1 cells (`OF_ROOT_NODE_*_CELLS_DEFAULT`); a value
/// that does not fit is refused with the sizes, naming the default.
#[test]
fn crash_properties_without_root_cells_use_the_kernels_defaults() {
    let mut tree = DeviceTree::new();
    tree.root.add_child(DeviceTreeNode::new_unchecked("chosen"));
    let dtb = tree.to_dtb();
    let crash = |core: MemoryRange, usable: MemoryRange| ChosenEdit {
        crash: Some(CrashChosen {
            elfcorehdr: Some(core),
            usable: vec![usable],
        }),
        ..Default::default()
    };
    let out = edit_chosen(
        &dtb,
        &crash(
            MemoryRange::with_size(0x6b00_0000, 0xb0),
            MemoryRange::new(0x6ac0_0000, 0x7ac0_0000),
        ),
    )
    .unwrap();
    let tree = parse(&out.dtb).unwrap();
    let chosen = tree.find_node("/chosen").unwrap();
    #[rustfmt::skip]
    assert_eq!(chosen.property(ELFCOREHDR).unwrap().value(), &[
        0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0,
    ]);
    #[rustfmt::skip]
    assert_eq!(chosen.property(USABLE_MEMORY_RANGE).unwrap().value(), &[
        0x6a, 0xc0, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    ]);
    let high = crash(
        MemoryRange::with_size(0x1_4000_0000, 0x1000),
        MemoryRange::new(0x1_4000_0000, 0x1_5000_0000),
    );
    let err = edit_chosen(&dtb, &high).unwrap_err();
    assert_eq!(
        err,
        Error::ValueTooLargeForCells {
            property: ELFCOREHDR,
            field: "#address-cells",
            value: 0x1_4000_0000,
            cells: 1,
            declared: false,
        }
    );
    assert_eq!(
        err.to_string(),
        "linux,elfcorehdr: 0x140000000 needs 33 bits, but the root's #address-cells is 1 \
         (32 bits), the kernel's default when the root does not set it"
    );
    // A size of 4 GiB does not fit one size cell either.
    let big = crash(
        MemoryRange::with_size(0x4000_0000, 0x1000),
        MemoryRange::with_size(0x8000_0000, 1 << 32),
    );
    assert!(matches!(
        edit_chosen(&dtb, &big),
        Err(Error::ValueTooLargeForCells {
            field: "#size-cells",
            value: 0x1_0000_0000,
            ..
        })
    ));
}

/// Names longer than the spec's 31 characters occur in shipped trees;
/// the lenient reader keeps them, and the edit round-trips.
#[test]
fn long_names_are_read_leniently() {
    let long = "snps,dis-u2-freeclk-exists-quirk";
    assert_eq!(long.len(), 32);
    let mut tree = DeviceTree::new();
    tree.root
        .add_property(DeviceTreeProperty::new_unchecked("#address-cells", 2u32));
    let mut usb = DeviceTreeNode::new_unchecked("usb@fe800000");
    usb.add_property(DeviceTreeProperty::new_unchecked(long, Vec::<u8>::new()));
    tree.root.add_child(usb);
    tree.root.add_child(DeviceTreeNode::new_unchecked(
        "a-node-name-that-is-longer-than-31@1",
    ));
    tree.memory_reservations
        .push(MemoryReservation::new(0x4000_0000, 0x1000));
    let dtb = tree.to_dtb();
    assert!(Fdt::new(&dtb).is_err(), "dtoolkit alone refuses it");
    assert_eq!(parse(&dtb).unwrap(), tree);
    let out = edit_chosen(
        &dtb,
        &ChosenEdit {
            bootargs: Some("x".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let back = parse(&out.dtb).unwrap();
    assert!(back
        .find_node("/usb@fe800000")
        .unwrap()
        .property(long)
        .is_some());
    assert_eq!(back.memory_reservations, tree.memory_reservations);
}

#[test]
fn lenient_reader_refuses_broken_structure() {
    let mut tree = DeviceTree::new();
    tree.root.add_property(DeviceTreeProperty::new_unchecked(
        "a-property-name-longer-than-31-chars",
        1u32,
    ));
    let good = tree.to_dtb();
    let h = parse_header(&good).unwrap();
    let s = h.off_dt_struct as usize;
    // Root BEGIN_NODE, "", then the property: make its length run past the block.
    let mut bad = good.clone();
    bad[s + 8 + 4..s + 8 + 8].copy_from_slice(&0x1000u32.to_be_bytes());
    assert_eq!(
        parse_lenient(&bad, &h),
        Err(Error::Malformed {
            offset: s + 8,
            what: "property value out of bounds"
        })
    );
    // A bad token where the property was.
    let mut bad = good.clone();
    bad[s + 8..s + 12].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(
        parse_lenient(&bad, &h),
        Err(Error::Malformed {
            offset: s + 8,
            what: "bad token"
        })
    );
    // A name offset past the strings block.
    let mut bad = good;
    bad[s + 8 + 8..s + 8 + 12].copy_from_slice(&0xffffu32.to_be_bytes());
    assert_eq!(
        parse_lenient(&bad, &h),
        Err(Error::Malformed {
            offset: h.off_dt_strings as usize + 0xffff,
            what: "string out of bounds"
        })
    );
}

#[test]
fn boot_cpuid_phys_is_kept() {
    let mut dtb = sample(2, 2);
    set_word(&mut dtb, BOOT_CPUID_PHYS_OFFSET, 3);
    let out = edit_chosen(&dtb, &ChosenEdit::default()).unwrap();
    assert_eq!(parse_header(&out.dtb).unwrap().boot_cpuid_phys, 3);
}

#[test]
fn trailing_padding_is_ignored() {
    let mut padded = sample(2, 2);
    padded.extend_from_slice(&[0; 64]);
    assert!(parse(&padded).is_ok());
}

#[test]
fn diff_renders_strings_numbers_and_seeds() {
    assert_eq!(
        render_value("bootargs", b"root=/dev/vda\0"),
        "\"root=/dev/vda\""
    );
    assert_eq!(
        render_value("stdout-path", b"/pl011@9000000\0"),
        "\"/pl011@9000000\""
    );
    assert_eq!(render_value("rng-seed", &[7; 64]), "<64 bytes>");
    assert_eq!(
        render_value("linux,initrd-start", &0x4800_0000u64.to_be_bytes()),
        "0x48000000"
    );
    assert_eq!(
        render_value("kaslr-seed", &0x1234u64.to_be_bytes()),
        "0x1234"
    );
    assert_eq!(
        render_value("linux,initrd-end", &0x4800_0000u64.to_be_bytes()),
        "0x48000000"
    );
    // Other 8-byte values, and 32-bit initrd addresses, are cells.
    assert_eq!(
        render_value("linux,elfcorehdr", &0x10u64.to_be_bytes()),
        "<0x0 0x10>"
    );
    assert_eq!(
        render_value("linux,initrd-start", &[0, 0, 0x10, 0]),
        "<0x1000>"
    );
    // Up to 8 cells; longer, empty or odd-length values by size.
    assert_eq!(
        render_value("x", &[0; 32]),
        format!("<{}>", ["0x0"; 8].join(" "))
    );
    assert_eq!(render_value("x", &[0; 36]), "<36 bytes>");
    assert_eq!(render_value("x", &[]), "<0 bytes>");
    assert_eq!(render_value("x", &[0; 6]), "<6 bytes>");
}

/// `linux,elfcorehdr` is read back with the root's cells, as
/// `early_init_dt_check_for_elfcorehdr` reads it: one address and one size;
/// a shorter property is none; extra bytes are ignored.
#[test]
fn elfcorehdr_is_read_back_with_the_root_cells() {
    let with = |address: Option<u32>, size: Option<u32>, value: Vec<u8>| {
        let mut tree = DeviceTree::new();
        if let Some(a) = address {
            tree.root
                .add_property(DeviceTreeProperty::new_unchecked("#address-cells", a));
        }
        if let Some(s) = size {
            tree.root
                .add_property(DeviceTreeProperty::new_unchecked("#size-cells", s));
        }
        let mut chosen = DeviceTreeNode::new_unchecked("chosen");
        chosen.add_property(DeviceTreeProperty::new_unchecked(ELFCOREHDR, value));
        tree.root.add_child(chosen);
        read_back(&tree.to_dtb()).unwrap().elfcorehdr
    };
    let cells = |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
    let core = Some(MemoryRange::with_size(0x1_6b00_0000, 0x1f8));
    assert_eq!(
        with(Some(2), Some(2), cells(&[1, 0x6b00_0000, 0, 0x1f8])),
        core
    );
    assert_eq!(
        with(Some(2), Some(1), cells(&[1, 0x6b00_0000, 0x1f8])),
        core
    );
    assert_eq!(with(Some(2), Some(2), cells(&[1, 0x6b00_0000, 0])), None);
    assert_eq!(
        with(Some(2), Some(2), cells(&[1, 0x6b00_0000, 0, 0x1f8, 7])),
        core
    );
    // No root cells: 1 and 1.
    let low = Some(MemoryRange::with_size(0x6b00_0000, 0x1f8));
    assert_eq!(with(None, None, cells(&[0x6b00_0000, 0x1f8])), low);
    assert_eq!(with(None, None, cells(&[0x6b00_0000])), None);
    // Three address cells: no edit writes that; read as none, not an error.
    assert_eq!(
        with(Some(3), Some(1), cells(&[0, 1, 0x6b00_0000, 0x1f8])),
        None
    );
}

//! `/chosen` edits on a real QEMU `virt` device tree (fixtures/qemu-virt-1g.dtb,
//! see fixtures/sysroots/README.md): everything outside `/chosen`
//! survives byte for byte, and `/chosen` ends up exactly as asked.

use dtoolkit::{Node, Property};
use kexec_core::fdt::{self, edit_chosen, ChosenEdit, CrashChosen};
use kexec_core::iomem::MemoryRange;

const QEMU_VIRT_1G: &[u8] = include_bytes!("fixtures/qemu-virt-1g.dtb");

fn without_chosen(dtb: &[u8]) -> dtoolkit::model::DeviceTree {
    let mut tree = fdt::parse(dtb).unwrap();
    tree.root.remove_child("chosen");
    tree
}

fn chosen_props(dtb: &[u8]) -> Vec<(String, Vec<u8>)> {
    let tree = fdt::parse(dtb).unwrap();
    let chosen = tree.find_node("/chosen").unwrap();
    chosen
        .properties()
        .map(|p| (p.name().to_owned(), p.value().to_vec()))
        .collect()
}

#[test]
fn fixture_is_what_the_running_kernel_shows() {
    let props = chosen_props(QEMU_VIRT_1G);
    let names: Vec<_> = props.iter().map(|p| p.0.as_str()).collect();
    assert!(names.contains(&"bootargs"));
    assert!(!names.contains(&"rng-seed"), "the kernel removes rng-seed");
    let kaslr = props.iter().find(|p| p.0 == "kaslr-seed").unwrap();
    assert_eq!(kaslr.1, vec![0; 8], "the kernel zeroes kaslr-seed");
}

#[test]
fn normal_load_changes_only_chosen() {
    let edit = ChosenEdit {
        bootargs: Some("root=/dev/vda1 console=ttyAMA0".into()),
        initrd: Some(MemoryRange::new(0x4140_0000, 0x4143_2000)),
        kaslr_seed: Some(0x0123_4567_89ab_cdef),
        rng_seed: Some(vec![0x42; fdt::RNG_SEED_LEN]),
        crash: None,
    };
    let out = edit_chosen(QEMU_VIRT_1G, &edit).unwrap();
    assert_eq!(without_chosen(&out.dtb), without_chosen(QEMU_VIRT_1G));
    let props = chosen_props(&out.dtb);
    let get = |n: &str| props.iter().find(|p| p.0 == n).map(|p| p.1.clone());
    assert_eq!(
        get("bootargs").unwrap(),
        b"root=/dev/vda1 console=ttyAMA0\0"
    );
    #[rustfmt::skip]
    assert_eq!(get("linux,initrd-start").unwrap(), [
        0x00, 0x00, 0x00, 0x00, 0x41, 0x40, 0x00, 0x00, // u64: 0x41400000
    ]);
    #[rustfmt::skip]
    assert_eq!(get("linux,initrd-end").unwrap(), [
        0x00, 0x00, 0x00, 0x00, 0x41, 0x43, 0x20, 0x00, // u64: 0x41432000 (exclusive)
    ]);
    #[rustfmt::skip]
    assert_eq!(get("kaslr-seed").unwrap(), [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, // u64, big endian
    ]);
    assert_eq!(get("rng-seed").unwrap(), vec![0x42; fdt::RNG_SEED_LEN]);
    // QEMU's own stdout-path is kept.
    assert!(get("stdout-path").is_some());
    assert_eq!(get("linux,elfcorehdr"), None);
    assert_eq!(get("linux,usable-memory-range"), None);
}

#[test]
fn crash_load_adds_usable_memory_range_in_root_cells() {
    let edit = ChosenEdit {
        crash: Some(CrashChosen {
            elfcorehdr: Some(MemoryRange::with_size(0x7f50_0000, 0x1_0000)),
            usable: vec![MemoryRange::new(0x6f60_0000, 0x7f60_0000)],
        }),
        ..ChosenEdit::default()
    };
    let out = edit_chosen(QEMU_VIRT_1G, &edit).unwrap();
    assert_eq!(without_chosen(&out.dtb), without_chosen(QEMU_VIRT_1G));
    let props = chosen_props(&out.dtb);
    let get = |n: &str| props.iter().find(|p| p.0 == n).map(|p| p.1.clone());
    // QEMU virt: #address-cells = <2>, #size-cells = <2>.
    #[rustfmt::skip]
    assert_eq!(get("linux,usable-memory-range").unwrap(), [
        0x00, 0x00, 0x00, 0x00, 0x6f, 0x60, 0x00, 0x00, // address, 2 cells
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // size, 2 cells: 256 MiB
    ]);
    #[rustfmt::skip]
    assert_eq!(get("linux,elfcorehdr").unwrap(), [
        0x00, 0x00, 0x00, 0x00, 0x7f, 0x50, 0x00, 0x00, // address
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, // size: 64 KiB
    ]);
    // No initrd given: QEMU's stale initrd properties are gone.
    assert_eq!(fdt::chosen_initrd(&out.dtb).unwrap(), None);
}

#[test]
fn truncated_fixture_is_refused_exactly() {
    let cut = &QEMU_VIRT_1G[..QEMU_VIRT_1G.len() - 1];
    assert_eq!(
        fdt::parse(cut),
        Err(fdt::Error::TotalSizeExceedsBuffer {
            totalsize: u32::try_from(QEMU_VIRT_1G.len()).unwrap(),
            len: cut.len()
        })
    );
}

/// The whole serialised blob for a tiny edit, one commented line per field.
#[test]
fn tiny_tree_bytes() {
    let blank = dtoolkit::model::DeviceTree::new().to_dtb();
    let out = edit_chosen(
        &blank,
        &ChosenEdit {
            bootargs: Some("a".into()),
            ..ChosenEdit::default()
        },
    )
    .unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0xd0, 0x0d, 0xfe, 0xed, // 0000: magic
        0x00, 0x00, 0x00, 0x71, // 0004: totalsize = 113
        0x00, 0x00, 0x00, 0x38, // 0008: off_dt_struct
        0x00, 0x00, 0x00, 0x68, // 000c: off_dt_strings
        0x00, 0x00, 0x00, 0x28, // 0010: off_mem_rsvmap
        0x00, 0x00, 0x00, 0x11, // 0014: version = 17
        0x00, 0x00, 0x00, 0x10, // 0018: last_comp_version = 16
        0x00, 0x00, 0x00, 0x00, // 001c: boot_cpuid_phys
        0x00, 0x00, 0x00, 0x09, // 0020: size_dt_strings
        0x00, 0x00, 0x00, 0x30, // 0024: size_dt_struct
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028: memrsv terminator: address
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0030: memrsv terminator: size
        0x00, 0x00, 0x00, 0x01, // 0038: FDT_BEGIN_NODE
        0x00, 0x00, 0x00, 0x00, // 003c: "" (root), padded
        0x00, 0x00, 0x00, 0x01, // 0040: FDT_BEGIN_NODE
        b'c', b'h', b'o', b's', // 0044: "chosen"
        b'e', b'n', 0x00, 0x00, // 0048: ... NUL, padded
        0x00, 0x00, 0x00, 0x03, // 004c: FDT_PROP
        0x00, 0x00, 0x00, 0x02, // 0050: len = 2
        0x00, 0x00, 0x00, 0x00, // 0054: nameoff = 0 ("bootargs")
        b'a', 0x00, 0x00, 0x00, // 0058: "a", padded
        0x00, 0x00, 0x00, 0x02, // 005c: FDT_END_NODE (chosen)
        0x00, 0x00, 0x00, 0x02, // 0060: FDT_END_NODE (root)
        0x00, 0x00, 0x00, 0x09, // 0064: FDT_END
        b'b', b'o', b'o', b't', // 0068: strings: "bootargs"
        b'a', b'r', b'g', b's', // 006c
        0x00,                   // 0070: NUL
    ];
    assert_eq!(out.dtb, expected);
    assert!(out.chosen_created);
}

/// `plan::build` end to end on the QEMU tree: the DTB segment holds the edited
/// blob, whose `/chosen` names the initrd segment; with a purgatory every
/// rule passes.
#[test]
fn build_on_qemu_virt() {
    use kexec_core::iomem;
    use kexec_core::plan::{self, Blob, KernelFacts, LoadMode, LoadRequest, SegmentKind};
    use sha2::{Digest, Sha256};

    let map = iomem::parse(
        "40000000-7fffffff : System RAM\n  40210000-4149ffff : Kernel code\n  414a0000-4172ffff : reserved\n  41730000-41bcffff : Kernel data\n  48000000-480fffff : reserved\n",
    )
    .unwrap();
    let kernel = vec![0x11u8; 1 << 20];
    let initrd = vec![0x22u8; 300 << 10];
    // A stand-in purgatory: 8 KiB, a valid header, 64 KiB in memory.
    let mut purgatory = vec![0x33u8; 8 << 10];
    let header = handoff::PurgatoryHeader {
        mem_size: 64 << 10,
        params: handoff::HandoffParams::default(),
    };
    purgatory[handoff::HEADER_OFFSET..][..handoff::HEADER_SIZE]
        .copy_from_slice(&header.encode().unwrap());
    let req = LoadRequest {
        mode: LoadMode::Normal,
        memory: plan::memory_for(&map, LoadMode::Normal).unwrap(),
        total_ram: map.total_ram(),
        running_kernel: map.running_kernel(),
        kernel: Blob {
            source: "Image",
            bytes: &kernel,
            digests: None,
        },
        kernel_facts: KernelFacts {
            text_offset: 0,
            image_size: 24 << 20,
            place_anywhere: false,
            uses_memory_below_image: false,
        },
        initrd: Some(Blob {
            source: "initrd",
            bytes: &initrd,
            digests: None,
        }),
        elfcorehdr: None,
        dtb: QEMU_VIRT_1G,
        chosen: ChosenEdit {
            bootargs: Some("console=ttyAMA0".into()),
            ..ChosenEdit::default()
        },
        purgatory: Some((
            kexec_core::purgatory::Purgatory::parse(&purgatory).unwrap(),
            kexec_core::purgatory::PurgatoryOptions::default(),
        )),
        acpi_cpus: None,
        acpi_uart: None,
    };
    let built = plan::build(&req).unwrap();
    let plan = &built.plan;
    let failed: Vec<_> = plan.check().into_iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    // Kernel below the reserved block at 0x414a0000 does not fit (24 MiB), so
    // the lowest 2 MiB aligned base after it is 0x41800000.
    assert_eq!(plan.segment(SegmentKind::Kernel).unwrap().mem, 0x4180_0000);
    let dtb = plan.segment(SegmentKind::Dtb).unwrap();
    assert_eq!(
        dtb.digests,
        Some(vec![<[u8; 32]>::from(Sha256::digest(&built.dtb.dtb))])
    );
    let initrd_seg = plan.segment(SegmentKind::Initrd).unwrap();
    assert_eq!(
        fdt::chosen_initrd(&built.dtb.dtb).unwrap(),
        Some(MemoryRange::with_size(initrd_seg.mem, initrd_seg.bufsz))
    );
    let purg = plan.segment(SegmentKind::Purgatory).unwrap();
    assert_eq!(
        plan.entry, purg.mem,
        "the purgatory's entry is its first byte"
    );
    // The image, zeros up to its mem_size, then the digest table: one
    // digest per chunk of the kernel (1 MiB), the initrd and the DTB.
    let chunks: u64 = [SegmentKind::Kernel, SegmentKind::Initrd, SegmentKind::Dtb]
        .iter()
        .map(|k| {
            plan.segment(*k)
                .unwrap()
                .bufsz
                .div_ceil(kexec_core::digest::CHUNK_SIZE)
        })
        .sum();
    assert_eq!(purg.bufsz, (64 << 10) + 32 * chunks);
    assert_eq!(
        purg.memsz,
        128 << 10,
        "the header's mem_size and the table, in 64 KiB"
    );
    // Its header now carries what it needs to verify and enter the kernel.
    let bytes = built.purgatory.as_deref().unwrap();
    assert_eq!(
        purg.digests,
        Some(vec![<[u8; 32]>::from(Sha256::digest(bytes))])
    );
    let header = handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..]).unwrap();
    let params = header.params;
    assert_eq!(params.entry, plan.segment(SegmentKind::Kernel).unwrap().mem);
    assert_eq!(params.dtb, plan.dtb_addr);
    assert_eq!(
        params.uart, 0x0900_0000,
        "QEMU virt's stdout-path is the PL011"
    );
    let stdout_path = plan::Uart {
        base: 0x0900_0000,
        named_by: plan::UartSource::StdoutPath,
    };
    assert_eq!(built.uart, Some(stdout_path));
    // An ACPI SPCR's UART is only for a tree whose stdout-path names none.
    let spcr = |dtb| {
        let req = LoadRequest {
            dtb,
            acpi_uart: Some(0x0c00_0000),
            ..req.clone()
        };
        let built = plan::build(&req).unwrap();
        let bytes = built.purgatory.clone().unwrap();
        let header = handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..]).unwrap();
        (built.uart, header.params.uart)
    };
    assert_eq!(spcr(QEMU_VIRT_1G), (Some(stdout_path), 0x0900_0000));
    let mut tree = fdt::parse(QEMU_VIRT_1G).unwrap();
    tree.root
        .child_mut("chosen")
        .unwrap()
        .remove_property("stdout-path");
    let spcr_uart = plan::Uart {
        base: 0x0c00_0000,
        named_by: plan::UartSource::AcpiSpcr,
    };
    assert_eq!(spcr(&tree.to_dtb()), (Some(spcr_uart), 0x0c00_0000));
    assert_eq!(params.flags.0, 0);
    let verified: Vec<(u64, u64)> = params.segments().iter().map(|d| (d.addr, d.len)).collect();
    let others: Vec<_> = [SegmentKind::Kernel, SegmentKind::Initrd, SegmentKind::Dtb]
        .iter()
        .map(|k| plan.segment(*k).unwrap())
        .collect();
    let expected: Vec<(u64, u64)> = others.iter().map(|s| (s.mem, s.bufsz)).collect();
    assert_eq!(verified, expected, "every other segment is verified");
    assert_eq!(params.chunk_shift, kexec_core::digest::CHUNK_SHIFT);
    assert_eq!(params.digests_offset, 64 << 10);
    assert_eq!(u64::from(params.nr_digests), chunks);
    let table: Vec<u8> = others
        .iter()
        .flat_map(|s| s.digests.clone().unwrap())
        .flatten()
        .collect();
    assert_eq!(&bytes[64 << 10..], &table[..], "the table follows mem_size");
    // Deterministic.
    assert_eq!(plan::build(&req).unwrap(), built);

    // text_offset 0x81000 (randomised, 4 KiB pages): the purgatory verifies
    // the padded segment and enters the Image, 4 KiB into it.
    let mut req = req;
    req.kernel_facts.text_offset = 0x8_1000;
    let built = plan::build(&req).unwrap();
    let plan = &built.plan;
    let failed: Vec<_> = plan.check().into_iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let k = plan.segment(SegmentKind::Kernel).unwrap();
    assert_eq!((k.mem, k.bufsz), (0x4188_0000, (1 << 20) + 0x1000));
    let bytes = built.purgatory.as_deref().unwrap();
    let params = handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..])
        .unwrap()
        .params;
    assert_eq!(params.entry, 0x4188_1000);
    assert_eq!(plan.kernel_load_addr(), Some(0x4188_1000));
    let first = params.segments()[0];
    assert_eq!((first.addr, first.len), (k.mem, k.bufsz));
}

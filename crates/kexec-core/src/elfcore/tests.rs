//! Tests of the ELF core header and of the sysfs text it is built from,
//! with expected bytes written against the ELF specification.

use super::*;
use object::elf::{FileHeader64, PT_LOAD as OBJ_PT_LOAD, PT_NOTE as OBJ_PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader as _};
use object::LittleEndian;

/// The captured `crashkernel=256M` QEMU guest
/// (fixtures/sysroots/virt-1g-crashkernel).
fn captured() -> ElfCoreInputs {
    ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x7fda_6600,
                size: 424,
            },
            Note {
                addr: 0x7fdc_5600,
                size: 424,
            },
        ],
        vmcoreinfo: Some(Note {
            addr: 0x4830_0000,
            size: 0x1024,
        }),
        kernel_text: Some(KernelText {
            phys: MemoryRange::new(0x4021_0000, 0x4221_0000),
            vaddr: 0xffff_8000_0801_0000,
        }),
        ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
        crash: vec![MemoryRange::new(0x6ac0_0000, 0x7ac0_0000)],
        linear_map: Some(LinearMap {
            page_offset: 0xffff_0000_0000_0000,
            phys_offset: 0x4000_0000,
        }),
    }
}

#[test]
fn elf_header_and_program_headers_byte_for_byte() {
    let out = build(&captured()).unwrap();
    assert_eq!(out.len(), EHDR_SIZE + 6 * PHDR_SIZE);
    #[rustfmt::skip]
    let ehdr: [u8; EHDR_SIZE] = [
        0x7f, b'E', b'L', b'F',                         // 00: EI_MAG
        0x02,                                           // 04: EI_CLASS = ELFCLASS64
        0x01,                                           // 05: EI_DATA = ELFDATA2LSB
        0x01,                                           // 06: EI_VERSION = EV_CURRENT
        0x00,                                           // 07: EI_OSABI = SYSV
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 08: EI_ABIVERSION, padding
        0x04, 0x00,                                     // 10: e_type = ET_CORE
        0xb7, 0x00,                                     // 12: e_machine = EM_AARCH64 (183)
        0x01, 0x00, 0x00, 0x00,                         // 14: e_version = EV_CURRENT
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 18: e_entry
        0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 20: e_phoff = 64
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 28: e_shoff
        0x00, 0x00, 0x00, 0x00,                         // 30: e_flags
        0x40, 0x00,                                     // 34: e_ehsize = 64
        0x38, 0x00,                                     // 36: e_phentsize = 56
        0x06, 0x00,                                     // 38: e_phnum = 6
        0x00, 0x00,                                     // 3a: e_shentsize
        0x00, 0x00,                                     // 3c: e_shnum
        0x00, 0x00,                                     // 3e: e_shstrndx
    ];
    assert_eq!(out[..EHDR_SIZE], ehdr);
    #[rustfmt::skip]
    let cpu0_note: [u8; PHDR_SIZE] = [
        0x04, 0x00, 0x00, 0x00,                         // 00: p_type = PT_NOTE
        0x00, 0x00, 0x00, 0x00,                         // 04: p_flags
        0x00, 0x66, 0xda, 0x7f, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = crash_notes
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 10: p_vaddr = 0
        0x00, 0x66, 0xda, 0x7f, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = crash_notes
        0xa8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 424
        0xa8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 424
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    assert_eq!(out[EHDR_SIZE..EHDR_SIZE + PHDR_SIZE], cpu0_note);
    // The fifth header: RAM below the crash region, at the linear map.
    #[rustfmt::skip]
    let low_ram: [u8; PHDR_SIZE] = [
        0x01, 0x00, 0x00, 0x00,                         // 00: p_type = PT_LOAD
        0x07, 0x00, 0x00, 0x00,                         // 04: p_flags = PF_R | PF_W | PF_X
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x40000000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, // 10: p_vaddr = PAGE_OFFSET + 0
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x40000000
        0x00, 0x00, 0xc0, 0x2a, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 0x2ac00000
        0x00, 0x00, 0xc0, 0x2a, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    let fifth = EHDR_SIZE + 4 * PHDR_SIZE;
    assert_eq!(out[fifth..fifth + PHDR_SIZE], low_ram);
}

#[test]
fn object_reads_it_back() {
    let out = build(&captured()).unwrap();
    let header = FileHeader64::<LittleEndian>::parse(&*out).unwrap();
    let e = header.endian().unwrap();
    assert_eq!(header.e_type.get(e), object::elf::ET_CORE);
    assert_eq!(header.e_machine.get(e), object::elf::EM_AARCH64);
    assert_eq!(header.e_version.get(e), 1, "EV_CURRENT");
    let phdrs = header.program_headers(e, &*out).unwrap();
    let got: Vec<_> = phdrs
        .iter()
        .map(|p| {
            (
                p.p_type(e),
                p.p_offset(e),
                p.p_paddr(e),
                p.p_vaddr(e),
                p.p_filesz(e),
                p.p_memsz(e),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (OBJ_PT_NOTE, 0x7fda_6600, 0x7fda_6600, 0, 424, 424),
            (OBJ_PT_NOTE, 0x7fdc_5600, 0x7fdc_5600, 0, 424, 424),
            (OBJ_PT_NOTE, 0x4830_0000, 0x4830_0000, 0, 0x1024, 0x1024),
            (
                OBJ_PT_LOAD,
                0x4021_0000,
                0x4021_0000,
                0xffff_8000_0801_0000,
                0x200_0000,
                0x200_0000
            ),
            (
                OBJ_PT_LOAD,
                0x4000_0000,
                0x4000_0000,
                0xffff_0000_0000_0000,
                0x2ac0_0000,
                0x2ac0_0000
            ),
            (
                OBJ_PT_LOAD,
                0x7ac0_0000,
                0x7ac0_0000,
                0xffff_0000_3ac0_0000,
                0x540_0000,
                0x540_0000
            ),
        ]
    );
}

#[test]
fn without_kernel_text_or_linear_map() {
    let inputs = ElfCoreInputs {
        kernel_text: None,
        linear_map: None,
        vmcoreinfo: None,
        ..captured()
    };
    assert_eq!(inputs.program_header_count(), 4);
    let out = build(&inputs).unwrap();
    let header = FileHeader64::<LittleEndian>::parse(&*out).unwrap();
    let e = header.endian().unwrap();
    let phdrs = header.program_headers(e, &*out).unwrap();
    assert_eq!(phdrs.len(), 4);
    assert!(phdrs[2..]
        .iter()
        .all(|p| p.p_type(e) == OBJ_PT_LOAD && p.p_vaddr(e) == 0 && p.p_offset(e) == p.p_paddr(e)));
}

#[test]
fn both_crash_regions_are_left_out() {
    let inputs = ElfCoreInputs {
        ram: vec![
            MemoryRange::new(0x4000_0000, 0x8000_0000),
            MemoryRange::new(0x1_0000_0000, 0x2_0000_0000),
        ],
        crash: vec![
            MemoryRange::new(0x1_f000_0000, 0x2_0000_0000),
            MemoryRange::new(0x4000_0000, 0x4800_0000),
        ],
        ..Default::default()
    };
    assert_eq!(
        inputs.dumped_ram(),
        [
            MemoryRange::new(0x4800_0000, 0x8000_0000),
            MemoryRange::new(0x1_0000_0000, 0x1_f000_0000),
        ]
    );
}

#[test]
fn build_errors() {
    let bad_cpu = ElfCoreInputs {
        cpu_notes: vec![Note {
            addr: 0x1000,
            size: 0,
        }],
        ..captured()
    };
    assert_eq!(
        build(&bad_cpu),
        Err(Error::BadNote {
            what: "cpu 0 crash_notes".into(),
            addr: 0x1000,
            size: 0
        })
    );
    let overflow = ElfCoreInputs {
        vmcoreinfo: Some(Note {
            addr: u64::MAX,
            size: 2,
        }),
        ..captured()
    };
    assert!(matches!(build(&overflow), Err(Error::BadNote { .. })));
    let all_crash = ElfCoreInputs {
        crash: vec![MemoryRange::new(0, u64::MAX)],
        ..captured()
    };
    assert_eq!(build(&all_crash), Err(Error::NoRam));
    let empty_text = ElfCoreInputs {
        kernel_text: Some(KernelText {
            phys: MemoryRange::new(5, 5),
            vaddr: 0,
        }),
        ..captured()
    };
    assert_eq!(
        build(&empty_text),
        Err(Error::EmptyKernelText(MemoryRange::new(5, 5)))
    );
    let many = ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x1000,
                size: 8
            };
            MAX_PHDRS
        ],
        ..captured()
    };
    assert!(matches!(build(&many), Err(Error::TooManyProgramHeaders(_))));
}

#[test]
fn sysfs_text() {
    assert_eq!(parse_crash_notes("7fda6600\n"), Ok(0x7fda_6600));
    assert_eq!(parse_crash_notes_size("424\n"), Ok(424));
    assert_eq!(
        parse_vmcoreinfo("0x0000000048300000 1024\n"),
        Ok(Note {
            addr: 0x4830_0000,
            size: 0x1024
        })
    );
    assert_eq!(
        parse_crash_notes("xyz"),
        Err(Error::BadHex {
            what: "crash_notes",
            text: "xyz".into()
        })
    );
    assert_eq!(
        parse_crash_notes("0x"),
        Err(Error::BadHex {
            what: "crash_notes",
            text: "0x".into()
        })
    );
    assert_eq!(
        parse_crash_notes("1ffffffffffffffff"),
        Err(Error::BadHex {
            what: "crash_notes",
            text: "1ffffffffffffffff".into()
        })
    );
    assert_eq!(
        parse_crash_notes_size("0x10"),
        Err(Error::BadDecimal {
            what: "crash_notes_size",
            text: "0x10".into()
        })
    );
    assert_eq!(
        parse_vmcoreinfo("0x1000"),
        Err(Error::BadVmcoreinfo("0x1000".into()))
    );
    assert_eq!(
        parse_vmcoreinfo("0x1000 10 20"),
        Err(Error::BadVmcoreinfo("0x1000 10 20".into()))
    );
}

#[test]
fn cpu_lists() {
    assert_eq!(parse_cpu_list("0-1\n"), Ok(vec![0, 1]));
    assert_eq!(parse_cpu_list("0-3,5,7-8"), Ok(vec![0, 1, 2, 3, 5, 7, 8]));
    assert_eq!(parse_cpu_list("3,0-1,1"), Ok(vec![0, 1, 3]));
    assert_eq!(parse_cpu_list(""), Ok(vec![]));
    assert_eq!(
        parse_cpu_list("3-1"),
        Err(Error::BackwardCpuRange("3-1".into()))
    );
    assert_eq!(parse_cpu_list("0-4096"), Err(Error::TooManyCpus));
    assert_eq!(
        parse_cpu_list("0-4095,0-4095,0-4095"),
        Err(Error::TooManyCpus)
    );
    assert!(matches!(parse_cpu_list("a"), Err(Error::BadDecimal { .. })));
}

#[test]
fn kallsyms_and_vmcoreinfo_text() {
    let syms = "ffff800008000000 T _text\nffff800008010000 T _stext\n\
                ffff800008020000 t foo\t[mod]\n";
    assert_eq!(
        kallsyms_address(syms, "_stext"),
        Some(0xffff_8000_0801_0000)
    );
    assert_eq!(kallsyms_address(syms, "_etext"), None);
    assert_eq!(
        kallsyms_address("0000000000000000 T _stext\n", "_stext"),
        None
    );

    let info = "OSRELEASE=6.1.0-13-arm64\nNUMBER(VA_BITS)=48\n\
                NUMBER(PHYS_OFFSET)=0x40000000\nKERNELOFFSET=0\n";
    assert_eq!(
        LinearMap::from_vmcoreinfo(info),
        Some(LinearMap {
            page_offset: 0xffff_0000_0000_0000,
            phys_offset: 0x4000_0000
        })
    );
    let old = "OSRELEASE=4.19.0\nNUMBER(VA_BITS)=39\nNUMBER(PHYS_OFFSET)=1073741824\n";
    let m = LinearMap::from_vmcoreinfo(old).unwrap();
    assert_eq!(m.page_offset, 0xffff_ffc0_0000_0000);
    assert_eq!(m.virt(0x4000_1000), 0xffff_ffc0_0000_1000);
    assert_eq!(LinearMap::from_vmcoreinfo("NUMBER(VA_BITS)=48\n"), None);
    assert_eq!(
        LinearMap::from_vmcoreinfo("NUMBER(VA_BITS)=64\nNUMBER(PHYS_OFFSET)=0\n"),
        None
    );
}

#[test]
fn kcore_layout_from_program_headers() {
    // A /proc/kcore-like header: RAM at its linear-map addresses, the
    // kernel image at its own, and a vmalloc PT_LOAD without a physical
    // address.
    let mut kcore = build(&captured()).unwrap();
    ProgramHeader {
        p_type: PT_LOAD,
        p_flags: PF_R | PF_W | PF_X,
        p_offset: 0x1000,
        p_vaddr: 0xffff_8000_0000_0000,
        p_paddr: u64::MAX,
        p_filesz: 1 << 40,
        p_memsz: 1 << 40,
        p_align: 0,
    }
    .write(&mut kcore);
    kcore[56] += 1; // e_phnum
    assert_eq!(
        kcore_header_len(&kcore[..EHDR_SIZE]),
        Some(kcore.len() as u64)
    );
    let layout = parse_kcore(&kcore).unwrap();
    let linear = layout.linear.unwrap();
    assert_eq!(linear.virt(0x4000_0000), 0xffff_0000_0000_0000);
    assert_eq!(linear.virt(0x7ac0_0000), 0xffff_0000_3ac0_0000);
    assert_eq!(layout.image_virt(0x4021_0000), Some(0xffff_8000_0801_0000));
    assert_eq!(layout.image_virt(0x4022_0000), Some(0xffff_8000_0802_0000));
    assert_eq!(layout.image_virt(0x4221_0000), None);

    assert!(matches!(parse_kcore(b"not elf"), Err(Error::BadKcore(_))));
    assert_eq!(kcore_header_len(b"short"), None);
    let mut big_endian = kcore[..EHDR_SIZE].to_vec();
    big_endian[5] = 2; // ELFDATA2MSB
    assert_eq!(kcore_header_len(&big_endian), None);
    // Only RAM: no image mapping.
    let ram_only = build(&ElfCoreInputs {
        kernel_text: None,
        ..captured()
    })
    .unwrap();
    assert_eq!(parse_kcore(&ram_only).unwrap().image, None);
}

#[test]
fn kernel_image_from_iomem() {
    let map = crate::iomem::parse(
        "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
         41860000-41eaffff : reserved\n  41eb0000-4220ffff : Kernel data\n",
    )
    .unwrap();
    assert_eq!(
        kernel_image_range(&map),
        Some(MemoryRange::new(0x4021_0000, 0x4221_0000))
    );
    let none = crate::iomem::parse("40000000-7fffffff : System RAM\n").unwrap();
    assert_eq!(kernel_image_range(&none), None);
}

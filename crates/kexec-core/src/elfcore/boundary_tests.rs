//! Tests at the limits of the ELF core header and of the text it is built
//! from: the most program headers `e_phnum` can count, crash regions
//! touching a RAM range's start or end, `/proc/kcore` headers in any order,
//! the 5.4 layout change, and sysfs numbers with a sign. Facts from Linux
//! 6.1: kernel/kexec_file.c (`crash_prepare_elf64_headers`), fs/proc/kcore.c
//! (`read_kcore`), fs/proc/vmcore.c (`parse_crash_elf64_headers`),
//! include/uapi/linux/elf.h.

use super::*;

/// One CPU note, one RAM range: the smallest header [`build`] writes.
fn one_cpu() -> ElfCoreInputs {
    ElfCoreInputs {
        cpu_notes: vec![Note {
            addr: 0x7fda_6600,
            size: 424,
        }],
        ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
        ..Default::default()
    }
}

/// The `n`th program header of a built header.
fn phdr(out: &[u8], n: usize) -> &[u8] {
    let at = EHDR_SIZE + n * PHDR_SIZE;
    &out[at..at + PHDR_SIZE]
}

/// `e_phnum` of a built header (offset 0x38).
fn e_phnum(out: &[u8]) -> u16 {
    u16::from_le_bytes([out[0x38], out[0x39]])
}

#[test]
fn most_program_headers_e_phnum_can_count() {
    // include/uapi/linux/elf.h: an e_phnum of PN_XNUM (0xffff) means "the
    // count is in section header 0", which a header without sections does
    // not have: 0xfffe is the most.
    let at_limit = ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x1000,
                size: 8
            };
            MAX_PHDRS - 1
        ],
        ..one_cpu()
    };
    assert_eq!(at_limit.program_header_count(), 0xfffe);
    let out = build(&at_limit).unwrap();
    assert_eq!(out.len(), EHDR_SIZE + 0xfffe * PHDR_SIZE);
    assert_eq!(out[0x38..0x3a], [0xfe, 0xff]); // e_phnum = 0xfffe
    assert_eq!(e_phnum(&out), 0xfffe);

    let pn_xnum = ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x1000,
                size: 8
            };
            MAX_PHDRS
        ],
        ..one_cpu()
    };
    assert_eq!(build(&pn_xnum), Err(Error::TooManyProgramHeaders(0xffff)));
    let past_u16 = ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x1000,
                size: 8
            };
            MAX_PHDRS + 1
        ],
        ..one_cpu()
    };
    assert_eq!(
        build(&past_u16),
        Err(Error::TooManyProgramHeaders(0x1_0000))
    );
}

#[test]
fn program_header_count_counts_every_kind() {
    // Two CPU notes, VMCOREINFO, the kernel image, RAM in two pieces: the
    // order and kinds of crash_prepare_elf64_headers.
    let inputs = ElfCoreInputs {
        cpu_notes: vec![
            Note {
                addr: 0x7fda_6600,
                size: 424
            };
            2
        ],
        vmcoreinfo: Some(Note {
            addr: 0x4830_0000,
            size: 0x1024,
        }),
        kernel_text: Some(KernelText {
            phys: MemoryRange::new(0x4021_0000, 0x4221_0000),
            vaddr: 0xffff_8000_0801_0000,
        }),
        crash: vec![MemoryRange::new(0x6ac0_0000, 0x7ac0_0000)],
        ..one_cpu()
    };
    assert_eq!(inputs.program_header_count(), 6);
    let out = build(&inputs).unwrap();
    assert_eq!(e_phnum(&out), 6);
    // Only VMCOREINFO besides a note and RAM; only the kernel image.
    let vmcoreinfo_only = ElfCoreInputs {
        kernel_text: None,
        crash: vec![],
        ..inputs.clone()
    };
    assert_eq!(vmcoreinfo_only.program_header_count(), 4);
    let text_only = ElfCoreInputs {
        vmcoreinfo: None,
        crash: vec![],
        ..inputs
    };
    assert_eq!(text_only.program_header_count(), 4);
}

#[test]
fn crash_region_at_the_start_of_ram() {
    // The crash region takes RAM's first 256 MiB: one PT_LOAD from its end,
    // none of zero bytes before it.
    let inputs = ElfCoreInputs {
        crash: vec![MemoryRange::new(0x4000_0000, 0x5000_0000)],
        linear_map: Some(LinearMap {
            page_offset: 0xffff_0000_0000_0000,
            phys_offset: 0x4000_0000,
        }),
        ..one_cpu()
    };
    let out = build(&inputs).unwrap();
    assert_eq!(out.len(), EHDR_SIZE + 2 * PHDR_SIZE);
    #[rustfmt::skip]
    let ram: [u8; PHDR_SIZE] = [
        0x01, 0x00, 0x00, 0x00,                         // 00: p_type = PT_LOAD
        0x07, 0x00, 0x00, 0x00,                         // 04: p_flags = PF_R | PF_W | PF_X
        0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x50000000
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0xff, 0xff, // 10: p_vaddr = PAGE_OFFSET + 0x10000000
        0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x50000000
        0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 0x30000000
        0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 0x30000000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    assert_eq!(phdr(&out, 1), ram);
}

#[test]
fn crash_region_at_the_end_of_ram() {
    let inputs = ElfCoreInputs {
        crash: vec![MemoryRange::new(0x7000_0000, 0x8000_0000)],
        ..one_cpu()
    };
    let out = build(&inputs).unwrap();
    assert_eq!(out.len(), EHDR_SIZE + 2 * PHDR_SIZE);
    #[rustfmt::skip]
    let ram: [u8; PHDR_SIZE] = [
        0x01, 0x00, 0x00, 0x00,                         // 00: p_type = PT_LOAD
        0x07, 0x00, 0x00, 0x00,                         // 04: p_flags = PF_R | PF_W | PF_X
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x40000000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 10: p_vaddr = 0 (no linear map)
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x40000000
        0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 0x30000000
        0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 0x30000000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    assert_eq!(phdr(&out, 1), ram);
}

#[test]
fn kernel_text_and_vmcoreinfo_headers_byte_for_byte() {
    // crash_prepare_elf64_headers: the VMCOREINFO note at its physical
    // address, then the kernel image at its kernel-image virtual address.
    let inputs = ElfCoreInputs {
        vmcoreinfo: Some(Note {
            addr: 0x4830_0000,
            size: 0x1024,
        }),
        kernel_text: Some(KernelText {
            phys: MemoryRange::new(0x4021_0000, 0x4221_0000),
            vaddr: 0xffff_8000_0801_0000,
        }),
        ..one_cpu()
    };
    let out = build(&inputs).unwrap();
    #[rustfmt::skip]
    let vmcoreinfo: [u8; PHDR_SIZE] = [
        0x04, 0x00, 0x00, 0x00,                         // 00: p_type = PT_NOTE
        0x00, 0x00, 0x00, 0x00,                         // 04: p_flags
        0x00, 0x00, 0x30, 0x48, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x48300000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 10: p_vaddr = 0
        0x00, 0x00, 0x30, 0x48, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x48300000
        0x24, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 0x1024
        0x24, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 0x1024
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    assert_eq!(phdr(&out, 1), vmcoreinfo);
    #[rustfmt::skip]
    let text: [u8; PHDR_SIZE] = [
        0x01, 0x00, 0x00, 0x00,                         // 00: p_type = PT_LOAD
        0x07, 0x00, 0x00, 0x00,                         // 04: p_flags = PF_R | PF_W | PF_X
        0x00, 0x00, 0x21, 0x40, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x40210000
        0x00, 0x00, 0x01, 0x08, 0x00, 0x80, 0xff, 0xff, // 10: p_vaddr = 0xffff800008010000
        0x00, 0x00, 0x21, 0x40, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x40210000
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 32 MiB
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 32 MiB
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
    ];
    assert_eq!(phdr(&out, 2), text);
}

/// A `/proc/kcore`-like header (fs/proc/kcore.c): `p_paddr` is the physical
/// address for `KCORE_RAM` and `KCORE_TEXT`, -1 for the rest.
fn kcore(loads: &[(u64, u64, u64)]) -> Vec<u8> {
    let mut out = build(&one_cpu()).unwrap();
    out.truncate(EHDR_SIZE);
    out[0x38..0x3a].copy_from_slice(&u16::try_from(loads.len()).unwrap().to_le_bytes());
    for &(phys, virt, size) in loads {
        ProgramHeader {
            p_paddr: phys,
            ..ProgramHeader::load(MemoryRange::with_size(0, size), virt)
        }
        .write(&mut out);
    }
    out
}

#[test]
fn kcore_linear_map_is_the_lowest_ram_in_any_order() {
    const PAGE_OFFSET: u64 = 0xffff_0000_0000_0000;
    const TEXT: u64 = 0xffff_8000_0800_0000;
    let low = (0x4000_0000, PAGE_OFFSET, 0x1000_0000);
    let high = (0x1_0000_0000, PAGE_OFFSET + 0xc000_0000, 0x4000_0000);
    let text = (0x4020_0000, TEXT, 0x200_0000);
    let vmalloc = (u64::MAX, 0xffff_8000_8000_0000, 1 << 40);
    let want = KcoreLayout {
        linear: Some(LinearMap {
            page_offset: PAGE_OFFSET,
            phys_offset: 0x4000_0000,
        }),
        image: Some((MemoryRange::new(0x4020_0000, 0x4220_0000), TEXT)),
    };
    for order in [
        [vmalloc, text, low, high],
        [vmalloc, text, high, low],
        [high, low, text, vmalloc],
    ] {
        assert_eq!(parse_kcore(&kcore(&order)), Ok(want), "{order:x?}");
    }
    // The image mapping covers [_text, _end) only.
    assert_eq!(want.image_virt(0x4020_0000), Some(TEXT));
    assert_eq!(want.image_virt(0x421f_ffff), Some(TEXT + 0x1ff_ffff));
    assert_eq!(want.image_virt(0x401f_ffff), None);
    assert_eq!(want.image_virt(0x4220_0000), None);
}

#[test]
fn kcore_header_len_needs_a_whole_elf64_header() {
    let ehdr = kcore(&[(0x4000_0000, 0xffff_0000_0000_0000, 0x1000)]);
    assert_eq!(
        kcore_header_len(&ehdr[..EHDR_SIZE]),
        Some((EHDR_SIZE + PHDR_SIZE) as u64)
    );
    // The magic alone, and one byte short of an Elf64_Ehdr.
    assert_eq!(kcore_header_len(&ehdr[..4]), None);
    assert_eq!(kcore_header_len(&ehdr[..EHDR_SIZE - 1]), None);
    let mut class32 = ehdr[..EHDR_SIZE].to_vec();
    class32[4] = 1; // ELFCLASS32
    assert_eq!(kcore_header_len(&class32), None);
    let mut not_elf = ehdr[..EHDR_SIZE].to_vec();
    not_elf[0] = 0x7e;
    assert_eq!(kcore_header_len(&not_elf), None);
}

#[test]
fn vmcoreinfo_layout_changes_at_5_4() {
    // 14c127c957c1 (v5.4-rc1) flipped the kernel VA space: PAGE_OFFSET is
    // -(1 << VA_BITS) from 5.4, -(1 << (VA_BITS - 1)) before.
    let info = |release: &str, va_bits: u32| {
        format!("OSRELEASE={release}\nNUMBER(VA_BITS)={va_bits}\nNUMBER(PHYS_OFFSET)=0x40000000\n")
    };
    let page_offset = |release: &str, va_bits| {
        LinearMap::from_vmcoreinfo(&info(release, va_bits)).map(|m| m.page_offset)
    };
    assert_eq!(page_offset("5.4.0", 48), Some(0xffff_0000_0000_0000));
    assert_eq!(page_offset("5.3.18-lp152", 48), Some(0xffff_8000_0000_0000));
    assert_eq!(
        page_offset("5.10.0-28-arm64", 39),
        Some(0xffff_ff80_0000_0000)
    );
    // Without OSRELEASE, or one that is not a release: the 5.4 layout.
    assert_eq!(page_offset("unknown", 48), Some(0xffff_0000_0000_0000));
    // VA_BITS from 36 (16K pages, 2 levels) to 52 (LVA).
    assert_eq!(page_offset("6.1.0", 36), Some(0xffff_fff0_0000_0000));
    assert_eq!(page_offset("6.1.0", 52), Some(0xfff0_0000_0000_0000));
    assert_eq!(page_offset("6.1.0", 35), None);
    assert_eq!(page_offset("6.1.0", 53), None);
    // PHYS_OFFSET in hex or decimal.
    let decimal = "NUMBER(VA_BITS)=48\nNUMBER(PHYS_OFFSET)=2147483648\n";
    assert_eq!(
        LinearMap::from_vmcoreinfo(decimal).map(|m| m.phys_offset),
        Some(0x8000_0000)
    );
    let bad = "NUMBER(VA_BITS)=48\nNUMBER(PHYS_OFFSET)=0xg\n";
    assert_eq!(LinearMap::from_vmcoreinfo(bad), None);
}

#[test]
fn sysfs_numbers_take_no_sign() {
    // `%llx` and `%u` never print a sign; from_str_radix would accept "+".
    assert_eq!(
        parse_crash_notes("+7fda6600"),
        Err(Error::BadHex {
            what: "crash_notes",
            text: "+7fda6600".into()
        })
    );
    assert_eq!(
        parse_crash_notes_size("+424"),
        Err(Error::BadDecimal {
            what: "crash_notes_size",
            text: "+424".into()
        })
    );
    assert_eq!(
        parse_vmcoreinfo("0x48300000 +1024"),
        Err(Error::BadHex {
            what: "vmcoreinfo size",
            text: "+1024".into()
        })
    );
}

#[test]
fn cpu_list_limits() {
    // 4096 CPUs, the most arm64's NR_CPUS allows, and each named twice.
    let all: Vec<u32> = (0..4096).collect();
    assert_eq!(parse_cpu_list("0-4095"), Ok(all.clone()));
    assert_eq!(parse_cpu_list("0-4095,0-4095"), Ok(all.clone()));
    assert_eq!(parse_cpu_list("0-4095,4095"), Ok(all.clone()));
    assert_eq!(parse_cpu_list("0-4095,0-4095,0"), Err(Error::TooManyCpus));
    assert_eq!(parse_cpu_list("4096"), Err(Error::TooManyCpus));
    assert_eq!(parse_cpu_list("4095"), Ok(vec![4095]));
    assert_eq!(parse_cpu_list("7-7"), Ok(vec![7]));
}

#[test]
fn kallsyms_with_modules_and_restricted_pointers() {
    // `%px %c %s\t[%s]`: a module symbol carries its module after a tab.
    let syms = "ffff800008010000 T _stext\nffff800000a10000 t _stext\t[evil]\n";
    assert_eq!(
        kallsyms_address(syms, "_stext"),
        Some(0xffff_8000_0801_0000)
    );
    assert_eq!(kallsyms_address("ffff800008010000 T\n", "_stext"), None);
    assert_eq!(kallsyms_address("xyz T _stext\n", "_stext"), None);
}

#[test]
fn readelf_reads_the_program_headers() {
    let Ok(out) = std::process::Command::new("readelf")
        .arg("--version")
        .output()
    else {
        eprintln!("readelf not installed: cross-check skipped");
        return;
    };
    assert!(out.status.success());
    let inputs = ElfCoreInputs {
        vmcoreinfo: Some(Note {
            addr: 0x4830_0000,
            size: 0x1024,
        }),
        kernel_text: Some(KernelText {
            phys: MemoryRange::new(0x4021_0000, 0x4221_0000),
            vaddr: 0xffff_8000_0801_0000,
        }),
        crash: vec![MemoryRange::new(0x6ac0_0000, 0x7ac0_0000)],
        linear_map: Some(LinearMap {
            page_offset: 0xffff_0000_0000_0000,
            phys_offset: 0x4000_0000,
        }),
        ..one_cpu()
    };
    let path = std::env::temp_dir().join(format!("kexec-elfcore-{}.core", std::process::id()));
    std::fs::write(&path, build(&inputs).unwrap()).unwrap();
    let out = std::process::Command::new("readelf")
        .args(["-h", "-l", "-W"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Class:                             ELF64",
        "Data:                              2's complement, little endian",
        "Type:                              CORE (Core file)",
        "Machine:                           AArch64",
        "Number of program headers:         5",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // Type, Offset, VirtAddr, PhysAddr, FileSiz, MemSiz, Flg, Align.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| matches!(f.first(), Some(&"NOTE") | Some(&"LOAD")))
        .collect();
    let want: [&[&str]; 5] = [
        &[
            "NOTE",
            "0x7fda6600",
            "0x0000000000000000",
            "0x000000007fda6600",
            "0x0001a8",
            "0x0001a8",
            "",
            "0",
        ],
        &[
            "NOTE",
            "0x48300000",
            "0x0000000000000000",
            "0x0000000048300000",
            "0x001024",
            "0x001024",
            "",
            "0",
        ],
        &[
            "LOAD",
            "0x40210000",
            "0xffff800008010000",
            "0x0000000040210000",
            "0x2000000",
            "0x2000000",
            "RWE",
            "0",
        ],
        &[
            "LOAD",
            "0x40000000",
            "0xffff000000000000",
            "0x0000000040000000",
            "0x2ac00000",
            "0x2ac00000",
            "RWE",
            "0",
        ],
        &[
            "LOAD",
            "0x7ac00000",
            "0xffff00003ac00000",
            "0x000000007ac00000",
            "0x5400000",
            "0x5400000",
            "RWE",
            "0",
        ],
    ];
    let want: Vec<Vec<&str>> = want
        .iter()
        .map(|r| r.iter().copied().filter(|f| !f.is_empty()).collect())
        .collect();
    assert_eq!(rows, want, "readelf -l:\n{text}");
}

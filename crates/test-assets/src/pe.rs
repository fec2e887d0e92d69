//! Minimal PE32+ files as the kernel's EFI stub, ukify and systemd-stub lay
//! them out (Microsoft PE format: DOS header, "PE\\0\\0", COFF header, PE32+
//! optional header, section table), for tests of UKI and zboot handling.

fn align(value: usize, to: usize) -> usize {
    value.next_multiple_of(to)
}

/// Machine type of an arm64 PE file.
pub const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;

/// A minimal PE32+ EFI application with the given sections (raw data
/// aligned to 0x200, virtual addresses to 0x1000). Returns the file and the
/// file offset of each section's data.
pub fn pe(machine: u16, sections: &[(&str, &[u8])]) -> (Vec<u8>, Vec<usize>) {
    const FILE_ALIGN: usize = 0x200;
    const SECTION_ALIGN: usize = 0x1000;
    const PE_OFFSET: usize = 0x40;
    let headers_len = align(PE_OFFSET + 4 + 20 + 240 + 40 * sections.len(), FILE_ALIGN);
    let mut offsets = Vec::new();
    let mut file_pos = headers_len;
    let mut va = align(headers_len, SECTION_ALIGN);
    let mut table = Vec::new();
    for (name, data) in sections {
        let raw = align(data.len(), FILE_ALIGN);
        let mut n = [0u8; 8];
        n[..name.len()].copy_from_slice(name.as_bytes());
        table.extend_from_slice(&n); // Name
        table.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes()); // VirtualSize
        table.extend_from_slice(&u32::try_from(va).unwrap().to_le_bytes()); // VirtualAddress
        table.extend_from_slice(&u32::try_from(raw).unwrap().to_le_bytes()); // SizeOfRawData
        table.extend_from_slice(&u32::try_from(file_pos).unwrap().to_le_bytes()); // PointerToRawData
        table.extend_from_slice(&[0u8; 12]); // relocations, line numbers, counts
        table.extend_from_slice(&0x4000_0040u32.to_le_bytes()); // INITIALIZED_DATA | MEM_READ
        offsets.push(file_pos);
        file_pos += raw;
        va += align(data.len().max(1), SECTION_ALIGN);
    }
    let mut f = vec![0u8; PE_OFFSET];
    f[..2].copy_from_slice(b"MZ"); // e_magic
    f[0x3c..0x40].copy_from_slice(&u32::try_from(PE_OFFSET).unwrap().to_le_bytes()); // e_lfanew
    f.extend_from_slice(b"PE\0\0");
    // COFF file header.
    f.extend_from_slice(&machine.to_le_bytes()); // Machine
    f.extend_from_slice(&u16::try_from(sections.len()).unwrap().to_le_bytes()); // NumberOfSections
    f.extend_from_slice(&[0u8; 12]); // TimeDateStamp, PointerToSymbolTable, NumberOfSymbols
    f.extend_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader
    f.extend_from_slice(&0x0206u16.to_le_bytes()); // EXECUTABLE_IMAGE | LINE_NUMS_STRIPPED | DEBUG_STRIPPED
                                                   // PE32+ optional header.
    f.extend_from_slice(&0x20bu16.to_le_bytes()); // Magic
    f.extend_from_slice(&[0u8; 2]); // linker version
    f.extend_from_slice(&[0u8; 12]); // SizeOfCode, SizeOfInitializedData, SizeOfUninitializedData
    f.extend_from_slice(&0u32.to_le_bytes()); // AddressOfEntryPoint
    f.extend_from_slice(&0u32.to_le_bytes()); // BaseOfCode
    f.extend_from_slice(&0u64.to_le_bytes()); // ImageBase
    f.extend_from_slice(&u32::try_from(SECTION_ALIGN).unwrap().to_le_bytes()); // SectionAlignment
    f.extend_from_slice(&u32::try_from(FILE_ALIGN).unwrap().to_le_bytes()); // FileAlignment
    f.extend_from_slice(&[0u8; 12]); // OS, image, subsystem versions
    f.extend_from_slice(&0u32.to_le_bytes()); // Win32VersionValue
    f.extend_from_slice(&u32::try_from(va).unwrap().to_le_bytes()); // SizeOfImage
    f.extend_from_slice(&u32::try_from(headers_len).unwrap().to_le_bytes()); // SizeOfHeaders
    f.extend_from_slice(&0u32.to_le_bytes()); // CheckSum
    f.extend_from_slice(&10u16.to_le_bytes()); // Subsystem: EFI application
    f.extend_from_slice(&0u16.to_le_bytes()); // DllCharacteristics
    f.extend_from_slice(&[0u8; 32]); // stack and heap reserve/commit
    f.extend_from_slice(&0u32.to_le_bytes()); // LoaderFlags
    f.extend_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    f.extend_from_slice(&[0u8; 16 * 8]); // data directories
    f.extend_from_slice(&table);
    f.resize(headers_len, 0);
    for (name, data) in sections {
        let _ = name;
        f.extend_from_slice(data);
        f.resize(align(f.len(), FILE_ALIGN), 0);
    }
    (f, offsets)
}

/// A UKI (arm64 PE with `.linux` and optional other sections).
pub fn uki(
    linux: &[u8],
    cmdline: Option<&str>,
    initrd: Option<&[u8]>,
    dtb: Option<&[u8]>,
) -> Vec<u8> {
    let mut sections: Vec<(&str, &[u8])> = vec![(".osrel", b"ID=debian\n")];
    if let Some(c) = cmdline {
        sections.push((".cmdline", c.as_bytes()));
    }
    if let Some(d) = dtb {
        sections.push((".dtb", d));
    }
    sections.push((".linux", linux));
    if let Some(i) = initrd {
        sections.push((".initrd", i));
    }
    pe(IMAGE_FILE_MACHINE_ARM64, &sections).0
}

/// A UKI with the given `.osrel` text and optional `.cmdline` and
/// `.initrd`, `.linux` holding `linux` (as `ukify build` orders sections).
pub fn uki_with_osrel(
    linux: &[u8],
    osrel: &str,
    cmdline: Option<&str>,
    initrd: Option<&[u8]>,
) -> Vec<u8> {
    let mut sections: Vec<(&str, &[u8])> = vec![(".osrel", osrel.as_bytes())];
    if let Some(c) = cmdline {
        sections.push((".cmdline", c.as_bytes()));
    }
    sections.push((".linux", linux));
    if let Some(i) = initrd {
        sections.push((".initrd", i));
    }
    pe(IMAGE_FILE_MACHINE_ARM64, &sections).0
}

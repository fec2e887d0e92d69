//! EFI-stub kernels are entered at the Image entry, never the PE entry
//! point. An arm64 Image built with `CONFIG_EFI_STUB` is also a PE/COFF
//! file: its `code0` is "MZ" (an instruction that does nothing,
//! arch/arm64/kernel/head.S `efi_signature_nop`) and its PE header's
//! `AddressOfEntryPoint` names `efi_pe_entry`, the EFI stub, which calls
//! boot services — gone once a kernel has run (ExitBootServices). kexec
//! enters the kernel as a boot loader does without UEFI: at the first byte
//! of the Image with x0 = DTB (Documentation/arch/arm64/booting.rst § 4).
//!
//! Here a plain EFI-stub Image, the same in a zboot `vmlinuz.efi` and in a
//! UKI's `.linux`, each with an `AddressOfEntryPoint` 64 KiB into the
//! Image: the purgatory's entry must be the Image's load address.

mod formats_support;

use formats_support as support;
use kexec_core::iomem::MemoryRange;
use kexec_core::kernel::{self, KernelFormat};
use kexec_core::plan::{self, Blob, KernelFacts, LoadMode, LoadRequest, SegmentKind};
use kexec_core::purgatory::{Purgatory, PurgatoryOptions};

/// Where the PE header's `AddressOfEntryPoint` points, from the Image start.
const PE_ENTRY: u32 = 0x1_0000;

/// A 1 MiB EFI-stub Image: "MZ" `code0`, the PE header at 0x40 (the Image
/// header's `res5`) with `AddressOfEntryPoint` = [`PE_ENTRY`].
fn efi_stub_image() -> Vec<u8> {
    let mut image = support::synthetic_image(1 << 20);
    let mut pe = Vec::new();
    pe.extend_from_slice(b"PE\0\0");
    pe.extend_from_slice(&0xaa64u16.to_le_bytes()); // Machine: arm64
    pe.extend_from_slice(&0u16.to_le_bytes()); // NumberOfSections
    pe.extend_from_slice(&[0u8; 12]); // TimeDateStamp, symbols
    pe.extend_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader
    pe.extend_from_slice(&0x0206u16.to_le_bytes()); // Characteristics
    pe.extend_from_slice(&0x20bu16.to_le_bytes()); // PE32+ magic
    pe.extend_from_slice(&[0u8; 14]); // linker version, code and data sizes
    pe.extend_from_slice(&PE_ENTRY.to_le_bytes()); // AddressOfEntryPoint
    image[0x40..0x40 + pe.len()].copy_from_slice(&pe);
    image
}

/// A stand-in purgatory: 8 KiB, a valid header, 64 KiB in memory.
fn purgatory() -> Vec<u8> {
    let mut bytes = vec![0x33u8; 8 << 10];
    let header = handoff::PurgatoryHeader {
        mem_size: 64 << 10,
        params: handoff::HandoffParams::default(),
    };
    bytes[handoff::HEADER_OFFSET..][..handoff::HEADER_SIZE]
        .copy_from_slice(&header.encode().unwrap());
    bytes
}

/// The kernel entry the purgatory is told, and the Image's load address.
fn entries(file: &[u8]) -> (u64, u64) {
    let k = kernel::decode(file).unwrap();
    assert!(k.header.is_efi_stub(), "{}", k.format);
    let purgatory = purgatory();
    let dtb = dtoolkit::model::DeviceTree::new().to_dtb();
    let req = LoadRequest {
        mode: LoadMode::Normal,
        memory: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
        total_ram: 1 << 30,
        kernel: Blob {
            source: "kernel",
            bytes: &k.image,
            digests: None,
        },
        kernel_facts: KernelFacts::from_header(&k.header, k.image.len() as u64),
        initrd: None,
        elfcorehdr: None,
        dtb: &dtb,
        chosen: Default::default(),
        purgatory: Some((
            Purgatory::parse(&purgatory).unwrap(),
            PurgatoryOptions::default(),
        )),
        running_kernel: None,
        acpi_cpus: None,
        acpi_uart: None,
    };
    let built = plan::build(&req).unwrap();
    let bytes = built.purgatory.as_deref().unwrap();
    let params = handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..])
        .unwrap()
        .params;
    let load = built.plan.kernel_load_addr().unwrap();
    // The kernel segment holds the Image from its first byte: "MZ".
    let seg = built.plan.segment(SegmentKind::Kernel).unwrap();
    assert_eq!(seg.mem, load);
    assert_eq!(&k.image[..2], b"MZ");
    (params.entry, load)
}

#[test]
fn each_efi_stub_format_is_entered_at_the_image() {
    let image = efi_stub_image();
    let zboot = {
        let gz = support::gzip(&image);
        let payload = support::with_size_trailer(gz, image.len());
        support::zboot("gzip", &payload, payload.len())
    };
    let uki = support::uki(&image, Some("quiet"), None, None);
    for (name, file) in [("Image", &image), ("zboot", &zboot), ("UKI", &uki)] {
        let format = kernel::decode(file).unwrap().format;
        match name {
            "Image" => assert_eq!(format, KernelFormat::Image),
            "zboot" => assert!(matches!(format, KernelFormat::Zboot { .. })),
            _ => assert_eq!(format, KernelFormat::Uki),
        }
        let (entry, load) = entries(file);
        assert_eq!(entry, load, "{name}: entered at the Image");
        assert_ne!(
            entry,
            load + u64::from(PE_ENTRY),
            "{name}: never at the PE entry point"
        );
    }
}

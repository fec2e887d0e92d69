//! Builders of kernel containers for the format tests: they wrap an Image the
//! way the kernel build (or ukify, or the linker) would.
#![allow(dead_code)]

use std::io::{Read, Write};

use kexec_core::image::{ARM64_IMAGE_MAGIC, HEADER_SIZE};

/// 8 MiB: the kernel's lz4 legacy block size.
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;
/// The lz4 legacy frame magic, little endian.
pub const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// arm64 kernel virtual address of `_text` in a 6.1 `vmlinux` (KIMAGE_VADDR).
pub const KIMAGE_VADDR: u64 = 0xffff_8000_0800_0000;

/// A 64-byte Image header with the given fields; code0 "MZ" when `efi`.
pub fn header(text_offset: u64, image_size: u64, flags: u64, efi: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_SIZE);
    let code0: u32 = if efi { 0xfa40_5a4d } else { 0x1400_0010 };
    h.extend_from_slice(&code0.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&text_offset.to_le_bytes());
    h.extend_from_slice(&image_size.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&[0u8; 24]);
    h.extend_from_slice(&ARM64_IMAGE_MAGIC.to_le_bytes());
    h.extend_from_slice(&(if efi { 0x40u32 } else { 0 }).to_le_bytes());
    h
}

/// A synthetic Image of `len` bytes (at least 64): a 4K-page header, then a
/// compressible but not trivial body.
pub fn synthetic_image(len: usize) -> Vec<u8> {
    let len = len.max(HEADER_SIZE);
    let mut image = header(
        0,
        (len as u64).next_multiple_of(0x1_0000) + 0x1_0000,
        0xa,
        true,
    );
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while image.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Small alphabet: compresses like code does.
        image.push((state % 16) as u8);
    }
    image
}

/// gzip, as `gzip -n` writes it.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// zstd, one frame with a checksum (ruzstd's encoder).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// xz the way scripts/xz_wrap.sh writes arm64 kernels: the ARM64 BCJ filter,
/// LZMA2 and a CRC32 check (preset 1 here rather than a 32 MiB dictionary, for speed).
pub fn xz(data: &[u8]) -> Vec<u8> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    let mut filters = Filters::new();
    filters.arm64();
    filters.lzma2(&LzmaOptions::new_preset(1).unwrap());
    let stream = Stream::new_stream_encoder(&filters, Check::Crc32).unwrap();
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new_stream(data, stream)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A compressor used by the tests.
pub type Encoder = fn(&[u8]) -> Vec<u8>;

/// One compressor per decoder.
pub fn encoders() -> [(kexec_core::decompress::Compression, Encoder); 4] {
    use kexec_core::decompress::Compression;
    [
        (Compression::Gzip, gzip),
        (Compression::Zstd, zstd),
        (Compression::Xz, xz),
        (Compression::Lz4Legacy, lz4_legacy),
    ]
}

/// An lz4 legacy frame as `lz4 -l` writes it: magic, then per 8 MiB chunk a
/// `u32` LE compressed size and the lz4 block.
pub fn lz4_legacy(data: &[u8]) -> Vec<u8> {
    let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
    for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
        let block = lz4_flex::block::compress(chunk);
        out.extend_from_slice(&u32::try_from(block.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// `data` followed by the 4-byte LE size trailer of scripts/Makefile.lib `size_append`.
pub fn with_size_trailer(mut compressed: Vec<u8>, uncompressed_len: usize) -> Vec<u8> {
    compressed.extend_from_slice(&u32::try_from(uncompressed_len).unwrap().to_le_bytes());
    compressed
}

fn align(value: usize, to: usize) -> usize {
    value.next_multiple_of(to)
}

pub use test_assets::pe::{pe, uki, IMAGE_FILE_MACHINE_ARM64};

/// An EFI zboot image as drivers/firmware/efi/libstub/zboot-header.S lays it
/// out, with `payload` (which may end in a size trailer) in its `.data`
/// section and `payload_size` (the header field) given separately.
pub fn zboot(compression: &str, payload: &[u8], payload_size: usize) -> Vec<u8> {
    let (mut f, offsets) = pe(
        IMAGE_FILE_MACHINE_ARM64,
        &[(".text", &[0u8; 16]), (".data", payload)],
    );
    f[4..8].copy_from_slice(b"zimg"); // image type
    f[8..12].copy_from_slice(&u32::try_from(offsets[1]).unwrap().to_le_bytes()); // payload offset
    f[12..16].copy_from_slice(&u32::try_from(payload_size).unwrap().to_le_bytes()); // payload size
    f[24..24 + compression.len()].copy_from_slice(compression.as_bytes()); // comp type, NUL padded
    f[0x38..0x3c].copy_from_slice(&0x8182_23cdu32.to_le_bytes()); // LINUX_PE_MAGIC
    f
}

/// One `PT_LOAD` for [`elf`]: virtual address, file bytes, memory size.
pub struct Segment<'a> {
    /// `p_vaddr` (and `p_paddr`, as on arm64).
    pub vaddr: u64,
    /// File bytes.
    pub data: &'a [u8],
    /// `p_memsz`.
    pub memsz: u64,
}

/// An ELF64 little-endian `EM_AARCH64` `ET_EXEC` with the given `PT_LOAD`s
/// (plus a `PT_NOTE` to be skipped), segment data at 64 KiB aligned offsets.
pub fn elf(entry: u64, segments: &[Segment<'_>]) -> Vec<u8> {
    elf_aligned(entry, segments, 0x1_0000)
}

/// [`elf`] with segment data at `align_to`-aligned file offsets.
pub fn elf_aligned(entry: u64, segments: &[Segment<'_>], align_to: usize) -> Vec<u8> {
    let phnum = segments.len() + 1;
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF"); // EI_MAG
    f.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE
    f.extend_from_slice(&[0u8; 8]); // EI_ABIVERSION, padding
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&183u16.to_le_bytes()); // e_machine: EM_AARCH64
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&entry.to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&u16::try_from(phnum).unwrap().to_le_bytes()); // e_phnum
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&[0u8; 4]); // e_shnum, e_shstrndx
    let mut offset = align(64 + 56 * phnum, align_to);
    let mut offsets = Vec::new();
    for s in segments {
        f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
        f.extend_from_slice(&7u32.to_le_bytes()); // p_flags: RWX
        f.extend_from_slice(&(offset as u64).to_le_bytes()); // p_offset
        f.extend_from_slice(&s.vaddr.to_le_bytes()); // p_vaddr
        f.extend_from_slice(&s.vaddr.to_le_bytes()); // p_paddr == p_vaddr on arm64
        f.extend_from_slice(&(s.data.len() as u64).to_le_bytes()); // p_filesz
        f.extend_from_slice(&s.memsz.to_le_bytes()); // p_memsz
        f.extend_from_slice(&(align_to as u64).to_le_bytes()); // p_align
        offsets.push(offset);
        offset = align(offset + s.data.len(), align_to);
    }
    f.extend_from_slice(&4u32.to_le_bytes()); // p_type: PT_NOTE
    f.extend_from_slice(&4u32.to_le_bytes()); // p_flags: R
    f.extend_from_slice(&[0u8; 48]); // empty note
    for (s, off) in segments.iter().zip(offsets) {
        f.resize(off, 0);
        f.extend_from_slice(s.data);
    }
    f
}

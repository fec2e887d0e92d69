//! The arm64 `Image` header.
//!
//! Implements the 64-byte header described in Documentation/arch/arm64/booting.rst,
//! section 4 ("Call the kernel image"):
//!
//! ```text
//! u32 code0;          /* Executable code */
//! u32 code1;          /* Executable code */
//! u64 text_offset;    /* Image load offset, little endian */
//! u64 image_size;     /* Effective Image size, little endian */
//! u64 flags;          /* kernel flags, little endian */
//! u64 res2 = 0;       /* reserved */
//! u64 res3 = 0;       /* reserved */
//! u64 res4 = 0;       /* reserved */
//! u32 magic = 0x644d5241;  /* Magic number, little endian, "ARM\x64" */
//! u32 res5;           /* reserved (used for PE COFF offset) */
//! ```
//!
//! All fields are little endian whatever the endianness of the kernel; bit 0
//! of `flags` tells the kernel's own endianness, and this loader only boots
//! little-endian kernels.

use thiserror::Error;

/// Size of the arm64 Image header, in bytes.
pub const HEADER_SIZE: usize = 64;
/// The header magic, "ARM\x64" read as a little-endian `u32` (booting.rst).
pub const ARM64_IMAGE_MAGIC: u32 = 0x644d_5241;
/// Offset of the `magic` field in the header.
pub(crate) const MAGIC_OFFSET: usize = 56;
/// Offset of `res5`, which holds the PE/COFF header offset on EFI-stub kernels.
pub(crate) const PE_HEADER_OFFSET_OFFSET: usize = 60;
/// The DOS/PE signature "MZ" that starts `code0` of an EFI-stub kernel.
pub const MZ_MAGIC: [u8; 2] = *b"MZ";
/// `text_offset` to assume for kernels older than 3.17 (`image_size == 0`).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// Room kept free after the end of the file for a kernel older than 3.17
/// (`image_size == 0`), whose header does not say how much BSS follows:
/// booting.rst §4 only asks a loader to keep "as much memory as possible"
/// free after the image, the need being "effectively unbound".
///
/// kexec-tools guesses 16 MiB for the whole kernel (`KERNEL_IMAGE_SIZE` in
/// kexec/arch/arm64/kexec-arm64.c `arm64_process_image_header`, 2.0.29) and
/// truncates a longer file to it. We keep 16 MiB *after the file*: never
/// less than kexec-tools reserves, and still room for the BSS when the file
/// alone is near or over 16 MiB (the BSS of Debian's 6.1 and 6.12 kernels is
/// 2-3 % of their file length).
pub const LEGACY_IMAGE_ROOM: u64 = 0x100_0000;
/// 2 MiB: the alignment of the Image load base (booting.rst).
pub const SZ_2M: u64 = 0x20_0000;

/// `flags` bit 0: kernel endianness (0 little endian, 1 big endian).
pub(crate) const FLAG_BE: u64 = 1 << 0;
/// `flags` bits 1-2: kernel page size.
pub(crate) const FLAG_PAGE_SIZE_MASK: u64 = 0b11 << FLAG_PAGE_SIZE_SHIFT;
/// Shift of the page size field in `flags`.
pub(crate) const FLAG_PAGE_SIZE_SHIFT: u32 = 1;
/// `flags` bit 3: physical placement (0 near the base of DRAM, 1 anywhere).
pub(crate) const FLAG_PHYS_PLACEMENT_ANYWHERE: u64 = 1 << 3;

/// Errors from [`Arm64ImageHeader::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is shorter than the 64-byte header.
    #[error("arm64 Image header truncated: {len} bytes, the header needs 64")]
    Truncated {
        /// Length of the input.
        len: usize,
    },
    /// The magic at offset 56 is not "ARM\x64".
    #[error("not an arm64 Image: magic at offset 56 is {found:#010x}, expected 0x644d5241 (\"ARM\\x64\")")]
    BadMagic {
        /// The value found at offset 56.
        found: u32,
    },
    /// `flags` bit 0 says the kernel is big endian.
    #[error(
        "arm64 Image is big endian (flags {flags:#x}); only little-endian kernels are supported"
    )]
    BigEndian {
        /// The `flags` field.
        flags: u64,
    },
}

/// Kernel page size announced by `flags` bits 1-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// 0: unspecified (kernels before 3.17 leave it at 0).
    Unspecified,
    /// 1: 4 KiB pages.
    Size4K,
    /// 2: 16 KiB pages.
    Size16K,
    /// 3: 64 KiB pages.
    Size64K,
}

impl PageSize {
    /// The page size in bytes, if specified.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Self::Unspecified => None,
            Self::Size4K => Some(0x1000),
            Self::Size16K => Some(0x4000),
            Self::Size64K => Some(0x1_0000),
        }
    }
}

/// Where the Image may be placed in physical memory (`flags` bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// 0: 2 MiB aligned base as close as possible to the base of DRAM.
    NearDramBase,
    /// 1: 2 MiB aligned base anywhere in usable RAM.
    Anywhere,
}

/// The parsed 64-byte arm64 Image header (booting.rst section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm64ImageHeader {
    /// Executable code (an "MZ" signature on EFI-stub kernels).
    pub code0: u32,
    /// Executable code.
    pub code1: u32,
    /// Image load offset from a 2 MiB aligned base.
    pub text_offset: u64,
    /// Effective Image size including BSS; 0 on kernels before 3.17.
    pub image_size: u64,
    /// Kernel flags (endianness, page size, placement).
    pub flags: u64,
    /// Reserved.
    pub res2: u64,
    /// Reserved.
    pub res3: u64,
    /// Reserved.
    pub res4: u64,
    /// Magic, always [`ARM64_IMAGE_MAGIC`] once parsed.
    pub magic: u32,
    /// Reserved; the PE/COFF header offset on EFI-stub kernels.
    pub res5: u32,
}

fn le_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// Whether `bytes` carries the arm64 Image magic at offset 56.
pub(crate) fn has_image_magic(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_SIZE && le_u32(bytes, MAGIC_OFFSET) == ARM64_IMAGE_MAGIC
}

impl Arm64ImageHeader {
    /// Parses the header at the start of `bytes` (the rest of the Image may follow).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_SIZE {
            return Err(Error::Truncated { len: bytes.len() });
        }
        let header = Self {
            code0: le_u32(bytes, 0),
            code1: le_u32(bytes, 4),
            text_offset: le_u64(bytes, 8),
            image_size: le_u64(bytes, 16),
            flags: le_u64(bytes, 24),
            res2: le_u64(bytes, 32),
            res3: le_u64(bytes, 40),
            res4: le_u64(bytes, 48),
            magic: le_u32(bytes, MAGIC_OFFSET),
            res5: le_u32(bytes, PE_HEADER_OFFSET_OFFSET),
        };
        if header.magic != ARM64_IMAGE_MAGIC {
            return Err(Error::BadMagic {
                found: header.magic,
            });
        }
        if header.flags & FLAG_BE != 0 {
            return Err(Error::BigEndian {
                flags: header.flags,
            });
        }
        Ok(header)
    }

    /// Serialises the header back to its 64 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&self.code0.to_le_bytes());
        out[4..8].copy_from_slice(&self.code1.to_le_bytes());
        out[8..16].copy_from_slice(&self.text_offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.image_size.to_le_bytes());
        out[24..32].copy_from_slice(&self.flags.to_le_bytes());
        out[32..40].copy_from_slice(&self.res2.to_le_bytes());
        out[40..48].copy_from_slice(&self.res3.to_le_bytes());
        out[48..56].copy_from_slice(&self.res4.to_le_bytes());
        out[56..60].copy_from_slice(&self.magic.to_le_bytes());
        out[60..64].copy_from_slice(&self.res5.to_le_bytes());
        out
    }

    /// Whether this is a kernel from before 3.17 (`image_size == 0`), whose
    /// `text_offset` and `flags` are not meaningful.
    pub fn is_legacy(&self) -> bool {
        self.image_size == 0
    }

    /// The load offset from the 2 MiB aligned base: `text_offset`, or
    /// [`LEGACY_TEXT_OFFSET`] for a kernel before 3.17 (booting.rst).
    pub fn effective_text_offset(&self) -> u64 {
        if self.is_legacy() {
            LEGACY_TEXT_OFFSET
        } else {
            self.text_offset
        }
    }

    /// The number of bytes to reserve for the kernel from the start of the
    /// Image, BSS included: `image_size`, or for a kernel before 3.17 the
    /// file length plus [`LEGACY_IMAGE_ROOM`].
    pub fn effective_image_size(&self, file_len: u64) -> u64 {
        if self.is_legacy() {
            file_len.saturating_add(LEGACY_IMAGE_ROOM)
        } else {
            self.image_size
        }
    }

    /// Kernel page size from `flags` bits 1-2.
    pub fn page_size(&self) -> PageSize {
        match (self.flags & FLAG_PAGE_SIZE_MASK) >> FLAG_PAGE_SIZE_SHIFT {
            0 => PageSize::Unspecified,
            1 => PageSize::Size4K,
            2 => PageSize::Size16K,
            _ => PageSize::Size64K,
        }
    }

    /// Physical placement rule from `flags` bit 3.
    pub fn placement(&self) -> Placement {
        if self.flags & FLAG_PHYS_PLACEMENT_ANYWHERE != 0 {
            Placement::Anywhere
        } else {
            Placement::NearDramBase
        }
    }

    /// Whether the kernel carries an EFI stub (`code0` starts with "MZ").
    pub fn is_efi_stub(&self) -> bool {
        self.code0.to_le_bytes()[..2] == MZ_MAGIC
    }

    /// The PE/COFF header offset (`res5`) of an EFI-stub kernel.
    pub fn pe_header_offset(&self) -> Option<u32> {
        self.is_efi_stub().then_some(self.res5)
    }
}

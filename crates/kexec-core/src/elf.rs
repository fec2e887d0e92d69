//! ELF `vmlinux` kernels.
//!
//! An arm64 `vmlinux` is an ELF64 little-endian `EM_AARCH64` executable
//! (System V gABI, "ELF Header" and "Program Header"). Its `PT_LOAD` segments
//! are linked at kernel *virtual* addresses: on arm64 `p_paddr` equals
//! `p_vaddr` and is not a physical address, so it is ignored here. The entry
//! point is `_text`, where the arm64 Image header sits (arch/arm64/kernel/head.S,
//! Documentation/arch/arm64/booting.rst section 4).
//!
//! [`flatten`] rebuilds what `objcopy -O binary vmlinux Image` produces: the
//! file bytes of every `PT_LOAD`, placed at `p_vaddr - lowest p_vaddr`, gaps
//! zero-filled, up to the end of the last segment's file bytes (BSS is not
//! part of the Image; the header's `image_size` covers it). The loader then
//! chooses a 2 MiB aligned physical base for it like for any Image.

use object::elf::{FileHeader64, EM_AARCH64, ET_DYN, ET_EXEC, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian;
use thiserror::Error;

use crate::image::{self, Arm64ImageHeader};

/// The ELF magic, `"\x7fELF"` (gABI `e_ident[EI_MAG0..EI_MAG3]`).
pub(crate) const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// Errors from [`flatten`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The ELF structure is malformed (or not ELF64 little endian).
    #[error("ELF vmlinux: malformed ELF64 little-endian file: {reason}")]
    Malformed {
        /// The ELF reader's description.
        reason: String,
    },
    /// `e_machine` is not `EM_AARCH64`.
    #[error("ELF vmlinux: e_machine {machine} is not EM_AARCH64 (183)")]
    NotAarch64 {
        /// `e_machine`.
        machine: u16,
    },
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`.
    #[error("ELF vmlinux: e_type {e_type} is not an executable (ET_EXEC or ET_DYN)")]
    NotExecutable {
        /// `e_type`.
        e_type: u16,
    },
    /// There is no non-empty `PT_LOAD` segment.
    #[error("ELF vmlinux: no PT_LOAD segment")]
    NoLoadSegments,
    /// A segment has more file bytes than memory bytes.
    #[error("ELF vmlinux: PT_LOAD at {vaddr:#x} has p_filesz {filesz:#x} > p_memsz {memsz:#x}")]
    FileSizeExceedsMemSize {
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A segment's address range overflows 64 bits.
    #[error("ELF vmlinux: PT_LOAD at {vaddr:#x} of size {memsz:#x} overflows the address space")]
    AddressOverflow {
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A segment's file bytes lie outside the file.
    #[error("ELF vmlinux: PT_LOAD at {vaddr:#x}: p_offset {offset:#x} + p_filesz {filesz:#x} past end of file (len {file_len:#x})")]
    SegmentOutOfBounds {
        /// `p_vaddr`.
        vaddr: u64,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        filesz: u64,
        /// Length of the file.
        file_len: usize,
    },
    /// Two segments overlap in memory.
    #[error("ELF vmlinux: PT_LOAD at {vaddr:#x} overlaps the previous segment (ending at {previous_end:#x})")]
    OverlappingSegments {
        /// `p_vaddr` of the later segment.
        vaddr: u64,
        /// End of the previous segment in memory.
        previous_end: u64,
    },
    /// The flat image would be larger than the caller's limit.
    #[error("ELF vmlinux: flat image of {size:#x} bytes exceeds the limit of {limit:#x} bytes")]
    TooLarge {
        /// Size of the flat image.
        size: u64,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The entry point is not the start of the lowest segment.
    #[error("ELF vmlinux: entry {entry:#x} is not the start of the image at {base:#x}")]
    EntryNotAtStart {
        /// `e_entry`.
        entry: u64,
        /// Lowest `p_vaddr`.
        base: u64,
    },
    /// No valid arm64 Image header at the entry point.
    #[error("ELF vmlinux: no arm64 Image header at the entry point: {0}")]
    Header(#[from] image::Error),
    /// The header's `image_size` is smaller than the segments' memory span.
    #[error(
        "ELF vmlinux: header image_size {image_size:#x} is smaller than the PT_LOAD span {span:#x}"
    )]
    ImageSizeTooSmall {
        /// `image_size` from the header.
        image_size: u64,
        /// Lowest `p_vaddr` to the highest `p_vaddr + p_memsz`.
        span: u64,
    },
}

/// An ELF `vmlinux` rebuilt into a flat arm64 Image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfKernel {
    /// `e_entry`, a kernel virtual address.
    pub entry: u64,
    /// The lowest `p_vaddr`, the virtual address of the Image's first byte.
    pub base_vaddr: u64,
    /// Lowest `p_vaddr` to the highest `p_vaddr + p_memsz` (BSS included).
    pub mem_span: u64,
    /// The flat Image bytes.
    pub image: Vec<u8>,
    /// The Image header at the entry point.
    pub header: Arm64ImageHeader,
}

/// Whether `bytes` starts with the ELF magic.
pub(crate) fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&ELF_MAGIC)
}

struct Load<'a> {
    vaddr: u64,
    memsz: u64,
    data: &'a [u8],
}

/// Rebuilds the flat Image from the `PT_LOAD` segments of the `vmlinux` in
/// `bytes`, refusing images larger than `limit` bytes.
pub fn flatten(bytes: &[u8], limit: usize) -> Result<ElfKernel, Error> {
    let malformed = |err: object::read::Error| Error::Malformed {
        reason: err.to_string(),
    };
    let header = FileHeader64::<LittleEndian>::parse(bytes).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let machine = header.e_machine(endian);
    if machine != EM_AARCH64 {
        return Err(Error::NotAarch64 { machine: machine.0 });
    }
    let e_type = header.e_type(endian);
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(Error::NotExecutable { e_type: e_type.0 });
    }
    let entry = header.e_entry(endian);

    let mut loads = Vec::new();
    for phdr in header.program_headers(endian, bytes).map_err(malformed)? {
        if phdr.p_type(endian) != PT_LOAD || phdr.p_memsz(endian) == 0 {
            continue;
        }
        let vaddr = phdr.p_vaddr(endian);
        let (filesz, memsz) = (phdr.p_filesz(endian), phdr.p_memsz(endian));
        if filesz > memsz {
            return Err(Error::FileSizeExceedsMemSize {
                vaddr,
                filesz,
                memsz,
            });
        }
        if vaddr.checked_add(memsz).is_none() {
            return Err(Error::AddressOverflow { vaddr, memsz });
        }
        let data = phdr
            .data(endian, bytes)
            .map_err(|()| Error::SegmentOutOfBounds {
                vaddr,
                offset: phdr.p_offset(endian),
                filesz,
                file_len: bytes.len(),
            })?;
        loads.push(Load { vaddr, memsz, data });
    }
    loads.sort_by_key(|load| load.vaddr);
    let Some(first) = loads.first() else {
        return Err(Error::NoLoadSegments);
    };
    let base = first.vaddr;

    let mut previous_end = base;
    let mut file_end = base;
    for load in &loads {
        if load.vaddr < previous_end {
            return Err(Error::OverlappingSegments {
                vaddr: load.vaddr,
                previous_end,
            });
        }
        // Cannot overflow: checked above, and data.len() <= filesz <= memsz.
        previous_end = load.vaddr + load.memsz;
        if !load.data.is_empty() {
            file_end = load.vaddr + load.data.len() as u64;
        }
    }
    let mem_span = previous_end - base;
    let flat_size = file_end - base;
    let flat_len = usize::try_from(flat_size).unwrap_or(usize::MAX);
    if flat_size > limit as u64 || flat_len > limit {
        return Err(Error::TooLarge {
            size: flat_size,
            limit,
        });
    }
    if entry != base {
        return Err(Error::EntryNotAtStart { entry, base });
    }

    let mut image = vec![0u8; flat_len];
    for load in &loads {
        // In range: vaddr - base + len <= file_end - base == flat_len.
        let start = usize::try_from(load.vaddr - base).unwrap_or(usize::MAX);
        if let Some(dest) = image.get_mut(start..start.saturating_add(load.data.len())) {
            dest.copy_from_slice(load.data);
        }
    }
    let header = Arm64ImageHeader::parse(&image)?;
    if header.image_size != 0 && header.image_size < mem_span {
        return Err(Error::ImageSizeTooSmall {
            image_size: header.image_size,
            span: mem_span,
        });
    }
    Ok(ElfKernel {
        entry,
        base_vaddr: base,
        mem_span,
        image,
        header,
    })
}

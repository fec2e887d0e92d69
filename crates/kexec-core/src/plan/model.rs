//! The data of a load plan: what a [`Segment`] is, the [`SegmentKind`]s, the
//! [`LoadMode`], the [`KernelFacts`] read from the Image header, and the
//! [`LoadPlan`] itself. No placement and no checking here: the placer
//! ([`super::Planner`]) fills these in and the rules ([`super::Rule`]) read
//! them, and neither imports the other.

use std::fmt;

use crate::image::{Arm64ImageHeader, Placement};
use crate::iomem::MemoryRange;
use crate::layout::SEGMENT_ALIGN;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentKind {
    /// The kernel Image (decompressed).
    Kernel,
    /// The initial ramdisk.
    Initrd,
    /// The edited device tree blob.
    Dtb,
    /// The purgatory: code run between the old and the new kernel.
    Purgatory,
    /// The ELF core header of a crash load.
    ElfCoreHeader,
}

impl SegmentKind {
    /// Lower-case name, as printed and in the JSON schema.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Initrd => "initrd",
            Self::Dtb => "dtb",
            Self::Purgatory => "purgatory",
            Self::ElfCoreHeader => "elfcorehdr",
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Normal load (`-l`) or crash load (`-p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadMode {
    /// `kexec -l`: any usable RAM.
    Normal,
    /// `kexec -p`: only the crash region; segments and entry inside it.
    Crash,
}

/// One kexec segment: `{buf, bufsz, mem, memsz}` of include/uapi/linux/kexec.h,
/// with where its bytes came from and their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// What it holds.
    pub kind: SegmentKind,
    /// File it was read from, or `generated`.
    pub source: String,
    /// Physical start (`mem`).
    pub mem: u64,
    /// Bytes copied from the buffer (`bufsz`).
    pub bufsz: u64,
    /// Bytes reserved at `mem` (`memsz`); the rest after `bufsz` is zeroed.
    pub memsz: u64,
    /// SHA-256 of each [`crate::digest::CHUNK_SIZE`] chunk of the `bufsz`
    /// bytes (the last chunk may be shorter), what the purgatory verifies;
    /// `None` when the plan was made without digests (`kexec -i`: nothing
    /// will verify them).
    pub digests: Option<Vec<crate::digest::Sha256Digest>>,
}

impl Segment {
    /// The reserved physical range `[mem, mem + memsz)`.
    pub fn range(&self) -> MemoryRange {
        MemoryRange::with_size(self.mem, self.memsz)
    }

    /// The chunk digests in lower-case hex, if computed.
    pub fn digests_hex(&self) -> Option<Vec<String>> {
        self.digests.as_ref().map(|ds| {
            ds.iter()
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
                .collect()
        })
    }
}

/// What the planner needs to know about the kernel, from its Image header
/// (booting.rst § 4). The values are the *effective* ones: for an old header
/// with `image_size == 0`, `text_offset` is already 0x80000
/// ([`crate::image::LEGACY_TEXT_OFFSET`]) and `image_size` the file length
/// plus [`crate::image::LEGACY_IMAGE_ROOM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFacts {
    /// Offset of the Image from its 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running from the start of the Image,
    /// BSS included.
    pub image_size: u64,
    /// Header flags bit 3: the Image may sit anywhere in RAM rather than as
    /// close as possible to the base of DRAM.
    pub place_anywhere: bool,
    /// The kernel also writes between its 2 MiB base and the Image: before
    /// 3.17 (`image_size == 0`) its initial page tables (`swapper_pg_dir`,
    /// `idmap_pg_dir`) sat just below the text, in arch/arm64/kernel/head.S,
    /// until commit bd00cd5f8c8c ("arm64: place initial page tables above
    /// the kernel") moved them after the BSS.
    pub uses_memory_below_image: bool,
}

impl KernelFacts {
    /// The facts of a parsed header, for an Image of `file_len` bytes.
    pub fn from_header(header: &Arm64ImageHeader, file_len: u64) -> Self {
        Self {
            text_offset: header.effective_text_offset(),
            image_size: header.effective_image_size(file_len),
            place_anywhere: header.placement() == Placement::Anywhere,
            uses_memory_below_image: header.is_legacy(),
        }
    }

    /// Zero bytes the kernel segment carries before the Image, so that it
    /// starts on a 64 KiB boundary (the segment alignment, page aligned for
    /// every arm64 page size): `text_offset` modulo 64 KiB
    /// (0x1000 for the `text_offset` 0x81000 of a randomised 4 KiB-page
    /// kernel). booting.rst § 4: the memory between the 2 MiB base and the
    /// Image "has no special significance to the kernel".
    pub fn segment_padding(&self) -> u64 {
        self.text_offset % SEGMENT_ALIGN
    }

    /// The memory the kernel uses once running, its Image loaded at `load`:
    /// `image_size` bytes from `load`, and from its 2 MiB base when
    /// [`KernelFacts::uses_memory_below_image`]. Nothing else may be placed
    /// there.
    pub fn footprint(&self, load: u64) -> MemoryRange {
        let start = if self.uses_memory_below_image {
            load.saturating_sub(self.text_offset)
        } else {
            load
        };
        MemoryRange::new(start, load.saturating_add(self.image_size))
    }
}

/// A complete, checked placement of every segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Normal or crash load.
    pub mode: LoadMode,
    /// The segments, in placement order.
    pub segments: Vec<Segment>,
    /// Where execution starts: the purgatory's entry, else the kernel's.
    pub entry: u64,
    /// Physical address of the device tree (x0 for the new kernel).
    pub dtb_addr: u64,
    /// The kernel header facts the plan was made with.
    pub kernel: KernelFacts,
    /// The RAM the plan could use (usable RAM, or the crash region).
    pub memory: Vec<MemoryRange>,
    /// The initrd range `/chosen` names, as read back from the placed DTB.
    pub dtb_initrd: Option<MemoryRange>,
    /// The ELF core header range `/chosen` `linux,elfcorehdr` names, as
    /// the crash kernel will read it back from the placed DTB.
    pub dtb_elfcorehdr: Option<MemoryRange>,
    /// The ranges the placed DTB reserves for others, as the new kernel
    /// will read them back ([`crate::fdt::reserved_ranges`]): its memory
    /// reservations and the EFI memory map.
    pub dtb_reserved: Vec<MemoryRange>,
    /// The RAM the running kernel manages, in bytes: an estimate of its
    /// `totalram_pages()` from /proc/iomem, never above it
    /// ([`crate::iomem::MemoryMap::total_ram`]).
    pub total_ram: u64,
}

impl LoadPlan {
    /// The first segment of a kind.
    pub fn segment(&self, kind: SegmentKind) -> Option<&Segment> {
        self.segments.iter().find(|s| s.kind == kind)
    }

    /// Where the Image starts: the kernel segment's start plus its padding
    /// ([`KernelFacts::segment_padding`]); the kernel's entry point.
    pub fn kernel_load_addr(&self) -> Option<u64> {
        let k = self.segment(SegmentKind::Kernel)?;
        k.mem.checked_add(self.kernel.segment_padding())
    }
}

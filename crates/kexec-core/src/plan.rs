//! The load plan: which bytes go to which physical address, and why that is
//! allowed.
//!
//! [`Planner`] places segments one at a time, lowest address first, so the same
//! inputs always give the same plan. The order matters: the kernel first (its
//! position fixes the 32 GiB window), then the initrd (its address goes into
//! the device tree's `/chosen`), then the edited device tree, then the
//! purgatory and any other blob. [`Planner::finish`] yields a [`LoadPlan`];
//! [`LoadPlan::check`] re-validates every [`Rule`] on its own, without trusting
//! the placer, and says which passed.
//!
//! The rules come from Documentation/arch/arm64/booting.rst (§ 2 "Setup the
//! device tree", § 4 "Call the kernel image") and include/uapi/linux/kexec.h /
//! kernel/kexec_core.c (`sanity_check_segment_list`); each is named once in
//! [`Rule`] with its source, and its numbers live in [`crate::layout`].

use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::fdt;
use crate::image::{Arm64ImageHeader, Placement};
use crate::iomem::{subtract, MemoryRange};
use crate::layout::{
    align_down, align_up, human_size, is_aligned, DTB_ALIGN, DTB_MAX_SIZE, INITRD_WINDOW_ALIGN,
    INITRD_WINDOW_MAX, KERNEL_BASE_ALIGN, KEXEC_SEGMENT_MAX, PHYS_ADDR_LIMIT_48, SEGMENT_ALIGN,
};

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
    /// SHA-256 of the `bufsz` bytes; `None` when the plan was made without
    /// digests (`kexec -i`: nothing will verify them).
    pub sha256: Option<[u8; 32]>,
}

impl Segment {
    /// The reserved physical range `[mem, mem + memsz)`.
    pub fn range(&self) -> MemoryRange {
        MemoryRange::with_size(self.mem, self.memsz)
    }

    /// The digest in lower-case hex, if computed.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// What the planner needs to know about the kernel, from its Image header
/// (booting.rst § 4). The values are the *effective* ones: for an old header
/// with `image_size == 0`, `text_offset` is already 0x80000
/// ([`crate::image::LEGACY_TEXT_OFFSET`]) and `image_size` the file length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFacts {
    /// Offset of the Image from its 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running, BSS included.
    pub image_size: u64,
    /// Header flags bit 3: the Image may sit anywhere in RAM rather than as
    /// close as possible to the base of DRAM.
    pub place_anywhere: bool,
}

impl KernelFacts {
    /// The facts of a parsed header, for an Image of `file_len` bytes.
    pub fn from_header(header: &Arm64ImageHeader, file_len: u64) -> Self {
        Self {
            text_offset: header.effective_text_offset(),
            image_size: header.effective_image_size(file_len),
            place_anywhere: header.placement() == Placement::Anywhere,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// No free range satisfies a segment's constraints.
    #[error("{kind} of {size} does not fit: {}", describe_largest(*.largest, .region))]
    NoSpace {
        /// The segment that did not fit.
        kind: SegmentKind,
        /// Its size, human readable.
        size: String,
        /// Where it had to go, e.g. "in the kernel's 32 GiB window".
        region: String,
        /// The largest free range there, if any.
        largest: Option<MemoryRange>,
    },
    /// A 17th segment.
    #[error("more than {KEXEC_SEGMENT_MAX} segments (KEXEC_SEGMENT_MAX)")]
    TooManySegments,
    /// A segment placed before the kernel, whose position constrains it.
    #[error("the kernel must be placed before the {0}")]
    KernelNotPlaced(SegmentKind),
    /// The kernel or device tree placed twice.
    #[error("{0} placed twice")]
    AlreadyPlaced(SegmentKind),
    /// [`Planner::place_blob`] asked to place a kind that has its own method.
    #[error("the {0} has its own placement method")]
    DedicatedKind(SegmentKind),
    /// [`Planner::finish`] without a kernel or device tree.
    #[error("no {0} in the plan")]
    Missing(SegmentKind),
    /// A `text_offset` that is not segment aligned cannot start a segment.
    #[error("text_offset {0:#x} is not 64 KiB aligned")]
    UnalignedTextOffset(u64),
    /// A device tree over booting.rst's 2 MiB limit.
    #[error("device tree of {size} bytes exceeds the 2 MiB limit")]
    DtbTooLarge {
        /// Its size.
        size: u64,
    },
    /// A purgatory entry offset outside the purgatory.
    #[error("purgatory entry offset {offset:#x} is outside its {len} bytes")]
    EntryOutsidePurgatory {
        /// The offset.
        offset: u64,
        /// The purgatory's length.
        len: u64,
    },
    /// The device tree given to [`Planner::place_dtb`] is unreadable.
    #[error(transparent)]
    Fdt(#[from] fdt::Error),
}

fn describe_largest(largest: Option<MemoryRange>, region: &str) -> String {
    match largest {
        Some(r) => format!(
            "largest free RAM range {region} is {r} ({})",
            human_size(r.size())
        ),
        None => format!("no free RAM {region}"),
    }
}

/// A rule every plan must satisfy. [`LoadPlan::check`] tests each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// At most `KEXEC_SEGMENT_MAX` (16) segments.
    SegmentCount,
    /// Every `mem` and `memsz` page aligned.
    SegmentAlignment,
    /// `bufsz <= memsz`, and `memsz > 0`.
    SegmentSizes,
    /// No two segments overlap.
    SegmentOverlap,
    /// Every segment inside usable RAM (the crash region for a crash load).
    SegmentsInMemory,
    /// The Image at a 2 MiB aligned base plus `text_offset`.
    KernelAlignment,
    /// The kernel segment reserves `image_size`, not just the file length.
    KernelImageSize,
    /// Flags bit 3 clear: the Image as close as possible to the base of DRAM.
    KernelLowest,
    /// Flags bit 3 set: all of `image_size` below 2^48.
    Kernel48Bit,
    /// The device tree 8-byte aligned.
    DtbAlignment,
    /// The device tree at most 2 MiB.
    DtbSize,
    /// Kernel and initrd inside one 1 GiB aligned window of at most 32 GiB.
    InitrdWindow,
    /// `/chosen` names the initrd exactly where it is placed (or none).
    DtbInitrd,
    /// The entry point lies inside a loaded segment.
    EntryInSegment,
    /// Something passes the DTB in x0: kexec_load enters with x0 = 0.
    DtbHandedOver,
}

impl Rule {
    /// Every rule, in check order.
    pub const ALL: [Rule; 15] = [
        Rule::SegmentCount,
        Rule::SegmentAlignment,
        Rule::SegmentSizes,
        Rule::SegmentOverlap,
        Rule::SegmentsInMemory,
        Rule::KernelAlignment,
        Rule::KernelImageSize,
        Rule::KernelLowest,
        Rule::Kernel48Bit,
        Rule::DtbAlignment,
        Rule::DtbSize,
        Rule::InitrdWindow,
        Rule::DtbInitrd,
        Rule::EntryInSegment,
        Rule::DtbHandedOver,
    ];

    /// Stable identifier (used in the JSON output).
    pub const fn id(self) -> &'static str {
        match self {
            Rule::SegmentCount => "segment-count",
            Rule::SegmentAlignment => "segment-alignment",
            Rule::SegmentSizes => "segment-sizes",
            Rule::SegmentOverlap => "segment-overlap",
            Rule::SegmentsInMemory => "segments-in-memory",
            Rule::KernelAlignment => "kernel-alignment",
            Rule::KernelImageSize => "kernel-image-size",
            Rule::KernelLowest => "kernel-lowest",
            Rule::Kernel48Bit => "kernel-48bit",
            Rule::DtbAlignment => "dtb-alignment",
            Rule::DtbSize => "dtb-size",
            Rule::InitrdWindow => "initrd-window",
            Rule::DtbInitrd => "dtb-initrd",
            Rule::EntryInSegment => "entry-in-segment",
            Rule::DtbHandedOver => "dtb-handed-over",
        }
    }

    /// The rule in one sentence.
    pub const fn description(self) -> &'static str {
        match self {
            Rule::SegmentCount => "at most 16 segments (KEXEC_SEGMENT_MAX)",
            Rule::SegmentAlignment => {
                "segment start and size page aligned (64 KiB, valid for every arm64 page size)"
            }
            Rule::SegmentSizes => "0 < bufsz <= memsz for every segment",
            Rule::SegmentOverlap => "segments do not overlap",
            Rule::SegmentsInMemory => "every segment inside usable RAM (the crash region for -p)",
            Rule::KernelAlignment => "Image at a 2 MiB aligned base + text_offset",
            Rule::KernelImageSize => "kernel segment reserves image_size bytes (BSS included)",
            Rule::KernelLowest => "flags bit 3 = 0: Image as close as possible to the base of DRAM",
            Rule::Kernel48Bit => "flags bit 3 = 1: all image_size bytes below 2^48",
            Rule::DtbAlignment => "DTB 8-byte aligned",
            Rule::DtbSize => "DTB at most 2 MiB",
            Rule::InitrdWindow => {
                "kernel and initrd inside one 1 GiB aligned window of at most 32 GiB"
            }
            Rule::DtbInitrd => "/chosen linux,initrd-start/end match the initrd segment",
            Rule::EntryInSegment => "entry point inside a loaded segment",
            Rule::DtbHandedOver => "a purgatory sets x0 = DTB (kexec_load enters with x0 = 0)",
        }
    }

    /// Where the rule is written.
    pub const fn source(self) -> &'static str {
        match self {
            Rule::SegmentCount
            | Rule::SegmentAlignment
            | Rule::SegmentSizes
            | Rule::SegmentOverlap
            | Rule::SegmentsInMemory => {
                "include/uapi/linux/kexec.h; kernel/kexec_core.c sanity_check_segment_list"
            }
            Rule::KernelAlignment
            | Rule::KernelImageSize
            | Rule::KernelLowest
            | Rule::Kernel48Bit => "Documentation/arch/arm64/booting.rst §4",
            Rule::DtbAlignment | Rule::DtbSize | Rule::InitrdWindow => {
                "Documentation/arch/arm64/booting.rst §2"
            }
            Rule::DtbInitrd => "Documentation/devicetree/bindings/chosen.txt",
            Rule::EntryInSegment => "kernel/kexec_core.c; arch/arm64/kernel/relocate_kernel.S",
            Rule::DtbHandedOver => {
                "Documentation/arch/arm64/booting.rst §4 (x0 = DTB); arch/arm64/kernel/cpu-reset.S"
            }
        }
    }
}

/// The outcome of one [`Rule`] on one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    /// The rule.
    pub rule: Rule,
    /// Whether the plan satisfies it.
    pub passed: bool,
    /// Why, in a few words (addresses, sizes).
    pub detail: String,
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
}

/// The lowest `s = base + offset` (`base` a multiple of `align`) with
/// `[s, s + size)` inside one of `free` and inside `window`.
fn lowest_fit(
    free: &[MemoryRange],
    window: MemoryRange,
    size: u64,
    align: u64,
    offset: u64,
) -> Option<u64> {
    free.iter().find_map(|r| {
        let lo = r.start.max(window.start);
        let hi = r.end.min(window.end);
        let base = align_up(lo.saturating_sub(offset), align)?;
        // base >= lo - offset, so start >= lo.
        let start = base.checked_add(offset)?;
        (start.checked_add(size)? <= hi).then_some(start)
    })
}

fn largest_in(free: &[MemoryRange], window: MemoryRange) -> Option<MemoryRange> {
    free.iter()
        .map(|r| MemoryRange::new(r.start.max(window.start), r.end.min(window.end)))
        .filter(|r| !r.is_empty())
        .max_by_key(|r| (r.size(), std::cmp::Reverse(r.start)))
}

/// Places segments one by one; see the module documentation for the order.
#[derive(Debug, Clone)]
pub struct Planner {
    mode: LoadMode,
    memory: Vec<MemoryRange>,
    segments: Vec<Segment>,
    kernel: Option<KernelFacts>,
    dtb: Option<(u64, Option<MemoryRange>)>,
    entry: Option<u64>,
    digests: bool,
}

impl Planner {
    /// A planner over `memory`: usable RAM for a normal load, the (high) crash
    /// region for a crash load.
    pub fn new(memory: &[MemoryRange], mode: LoadMode) -> Self {
        let mut memory: Vec<_> = memory.iter().copied().filter(|r| !r.is_empty()).collect();
        memory.sort();
        Self {
            mode,
            memory,
            segments: Vec::new(),
            kernel: None,
            dtb: None,
            entry: None,
            digests: true,
        }
    }

    /// Do not compute segment digests (for `kexec -i`, whose purgatory does
    /// not verify): hashing hundreds of MiB is most of a load's time.
    pub fn without_digests(mut self) -> Self {
        self.digests = false;
        self
    }

    fn free(&self) -> Vec<MemoryRange> {
        let used: Vec<_> = self.segments.iter().map(Segment::range).collect();
        subtract(&self.memory, &used)
    }

    fn region_name(&self) -> &'static str {
        match self.mode {
            LoadMode::Normal => "in usable RAM",
            LoadMode::Crash => "in the crash region",
        }
    }

    /// The window every non-kernel segment must stay in: the addresses from
    /// which the kernel and that segment still fit one 1 GiB aligned 32 GiB
    /// window ([`Rule::InitrdWindow`]; we keep the DTB and purgatory there too).
    fn window(&self, kind: SegmentKind) -> Result<MemoryRange, Error> {
        let k = self
            .segments
            .iter()
            .find(|s| s.kind == SegmentKind::Kernel)
            .ok_or(Error::KernelNotPlaced(kind))?
            .range();
        let lo = align_up(k.end.saturating_sub(INITRD_WINDOW_MAX), INITRD_WINDOW_ALIGN)
            .unwrap_or(u64::MAX);
        let hi = align_down(k.start, INITRD_WINDOW_ALIGN).saturating_add(INITRD_WINDOW_MAX);
        Ok(MemoryRange::new(lo, hi))
    }

    fn push(
        &mut self,
        kind: SegmentKind,
        source: &str,
        bytes: &[u8],
        mem: u64,
        memsz: u64,
    ) -> Result<(), Error> {
        if self.segments.len() >= KEXEC_SEGMENT_MAX {
            return Err(Error::TooManySegments);
        }
        self.segments.push(Segment {
            kind,
            source: source.to_owned(),
            mem,
            bufsz: bytes.len() as u64,
            memsz,
            sha256: self.digests.then(|| Sha256::digest(bytes).into()),
        });
        Ok(())
    }

    fn place_in_window(
        &mut self,
        kind: SegmentKind,
        source: &str,
        bytes: &[u8],
        align: u64,
    ) -> Result<u64, Error> {
        self.place_in_window_sized(kind, source, bytes, 0, align)
    }

    /// Like `place_in_window`, reserving at least `min_memsz` bytes.
    fn place_in_window_sized(
        &mut self,
        kind: SegmentKind,
        source: &str,
        bytes: &[u8],
        min_memsz: u64,
        align: u64,
    ) -> Result<u64, Error> {
        if self.segments.len() >= KEXEC_SEGMENT_MAX {
            return Err(Error::TooManySegments);
        }
        let window = self.window(kind)?;
        let len = bytes.len() as u64;
        let size = len.max(min_memsz).max(1);
        let memsz =
            align_up(size, SEGMENT_ALIGN).ok_or_else(|| self.no_space(kind, size, window))?;
        let free = self.free();
        let mem = lowest_fit(&free, window, memsz, align.max(SEGMENT_ALIGN), 0)
            .ok_or_else(|| self.no_space(kind, size, window))?;
        self.push(kind, source, bytes, mem, memsz)?;
        Ok(mem)
    }

    fn no_space(&self, kind: SegmentKind, size: u64, window: MemoryRange) -> Error {
        let region = if window.start == 0 && window.end == u64::MAX {
            self.region_name().to_owned()
        } else {
            format!("{} within the kernel's 32 GiB window", self.region_name())
        };
        Error::NoSpace {
            kind,
            size: human_size(size),
            region,
            largest: largest_in(&self.free(), window),
        }
    }

    /// Places the kernel: the lowest 2 MiB aligned base (+ `text_offset`) where
    /// `image_size` bytes fit below 2^48. Lowest is what flags bit 3 = 0
    /// demands ("as close as possible to the base of DRAM") and a fine choice
    /// for bit 3 = 1. Returns the Image's load address.
    pub fn place_kernel(
        &mut self,
        source: &str,
        image: &[u8],
        facts: KernelFacts,
    ) -> Result<u64, Error> {
        if self.kernel.is_some() {
            return Err(Error::AlreadyPlaced(SegmentKind::Kernel));
        }
        if !is_aligned(facts.text_offset, SEGMENT_ALIGN) {
            return Err(Error::UnalignedTextOffset(facts.text_offset));
        }
        let len = image.len() as u64;
        let size = facts.image_size.max(len).max(1);
        let whole = MemoryRange::new(0, u64::MAX);
        let memsz = align_up(size, SEGMENT_ALIGN)
            .ok_or_else(|| self.no_space(SegmentKind::Kernel, size, whole))?;
        let limit = MemoryRange::new(0, PHYS_ADDR_LIMIT_48);
        let mem = lowest_fit(
            &self.free(),
            limit,
            memsz,
            KERNEL_BASE_ALIGN,
            facts.text_offset,
        )
        .ok_or_else(|| {
            let mut e = self.no_space(SegmentKind::Kernel, size, whole);
            if let Error::NoSpace { region, .. } = &mut e {
                region.push_str(" at a 2 MiB aligned base below 2^48");
            }
            e
        })?;
        self.push(SegmentKind::Kernel, source, image, mem, memsz)?;
        self.kernel = Some(facts);
        Ok(mem)
    }

    /// Places the initrd in the kernel's window; returns the range to write
    /// into `/chosen` (`[start, start + len)`).
    pub fn place_initrd(&mut self, source: &str, initrd: &[u8]) -> Result<MemoryRange, Error> {
        let mem = self.place_in_window(SegmentKind::Initrd, source, initrd, SEGMENT_ALIGN)?;
        Ok(MemoryRange::with_size(mem, initrd.len() as u64))
    }

    /// Places the (already edited) device tree; returns its address.
    pub fn place_dtb(&mut self, source: &str, dtb: &[u8]) -> Result<u64, Error> {
        if self.dtb.is_some() {
            return Err(Error::AlreadyPlaced(SegmentKind::Dtb));
        }
        if dtb.len() as u64 > DTB_MAX_SIZE {
            return Err(Error::DtbTooLarge {
                size: dtb.len() as u64,
            });
        }
        let initrd = fdt::chosen_initrd(dtb)?;
        let mem = self.place_in_window(SegmentKind::Dtb, source, dtb, DTB_ALIGN)?;
        self.dtb = Some((mem, initrd));
        Ok(mem)
    }

    /// Places the purgatory; execution will start at `entry_offset` into it.
    /// `mem_size` (at least the blob's length) is what it occupies once
    /// running: its bss, page tables and stack follow the loaded bytes.
    pub fn place_purgatory(
        &mut self,
        source: &str,
        blob: &[u8],
        entry_offset: u64,
        mem_size: u64,
    ) -> Result<u64, Error> {
        if entry_offset >= blob.len() as u64 {
            return Err(Error::EntryOutsidePurgatory {
                offset: entry_offset,
                len: blob.len() as u64,
            });
        }
        let mem = self.place_in_window_sized(
            SegmentKind::Purgatory,
            source,
            blob,
            mem_size,
            SEGMENT_ALIGN,
        )?;
        self.entry = Some(mem + entry_offset);
        Ok(mem)
    }

    /// Places any other blob (e.g. the ELF core header of a crash load).
    /// The kernel, device tree and purgatory have their own methods.
    pub fn place_blob(
        &mut self,
        kind: SegmentKind,
        source: &str,
        blob: &[u8],
    ) -> Result<u64, Error> {
        if matches!(
            kind,
            SegmentKind::Kernel | SegmentKind::Dtb | SegmentKind::Purgatory
        ) {
            return Err(Error::DedicatedKind(kind));
        }
        self.place_in_window(kind, source, blob, SEGMENT_ALIGN)
    }

    /// The plan. Entry: the purgatory's if one was placed, else the kernel's
    /// load address.
    pub fn finish(self) -> Result<LoadPlan, Error> {
        let kernel = self.kernel.ok_or(Error::Missing(SegmentKind::Kernel))?;
        let (dtb_addr, dtb_initrd) = self.dtb.ok_or(Error::Missing(SegmentKind::Dtb))?;
        let kernel_mem = self
            .segments
            .iter()
            .find(|s| s.kind == SegmentKind::Kernel)
            .map(|s| s.mem)
            .ok_or(Error::Missing(SegmentKind::Kernel))?;
        Ok(LoadPlan {
            mode: self.mode,
            entry: self.entry.unwrap_or(kernel_mem),
            dtb_addr,
            kernel,
            memory: self.memory,
            dtb_initrd,
            segments: self.segments,
        })
    }
}

impl LoadPlan {
    /// The first segment of a kind.
    pub fn segment(&self, kind: SegmentKind) -> Option<&Segment> {
        self.segments.iter().find(|s| s.kind == kind)
    }

    /// Whether every rule passes.
    pub fn is_valid(&self) -> bool {
        self.check().iter().all(|c| c.passed)
    }

    /// Re-validates every [`Rule`] from the plan alone.
    pub fn check(&self) -> Vec<RuleCheck> {
        Rule::ALL
            .iter()
            .map(|&rule| {
                let (passed, detail) = self.check_rule(rule);
                RuleCheck {
                    rule,
                    passed,
                    detail,
                }
            })
            .collect()
    }

    fn offenders(&self, bad: impl Fn(&Segment) -> bool, ok: &str) -> (bool, String) {
        let names: Vec<_> = self
            .segments
            .iter()
            .filter(|s| bad(s))
            .map(|s| s.kind.name())
            .collect();
        if names.is_empty() {
            (true, ok.to_owned())
        } else {
            (false, format!("violated by {}", names.join(", ")))
        }
    }

    fn check_rule(&self, rule: Rule) -> (bool, String) {
        let kernel = self.segment(SegmentKind::Kernel);
        let dtb = self.segment(SegmentKind::Dtb);
        let initrd = self.segment(SegmentKind::Initrd);
        match rule {
            Rule::SegmentCount => {
                let n = self.segments.len();
                (
                    n <= KEXEC_SEGMENT_MAX,
                    format!("{n} of {KEXEC_SEGMENT_MAX}"),
                )
            }
            Rule::SegmentAlignment => self.offenders(
                |s| !is_aligned(s.mem, SEGMENT_ALIGN) || !is_aligned(s.memsz, SEGMENT_ALIGN),
                "all 64 KiB aligned",
            ),
            Rule::SegmentSizes => self.offenders(
                |s| s.memsz == 0 || s.bufsz > s.memsz,
                "all 0 < bufsz <= memsz",
            ),
            Rule::SegmentOverlap => {
                let mut ranges: Vec<_> =
                    self.segments.iter().map(|s| (s.range(), s.kind)).collect();
                ranges.sort();
                match ranges
                    .windows(2)
                    .find(|w| w[0].0.overlaps(&w[1].0) || w[0].0.end < w[0].0.start)
                {
                    Some(w) => (false, format!("{} overlaps {}", w[0].1, w[1].1)),
                    None => (true, "disjoint".into()),
                }
            }
            Rule::SegmentsInMemory => {
                let inside = |s: &Segment| {
                    let r = s.range();
                    s.mem.checked_add(s.memsz).is_some()
                        && self.memory.iter().any(|m| m.contains_range(&r))
                };
                let place = match self.mode {
                    LoadMode::Normal => "usable RAM",
                    LoadMode::Crash => "the crash region",
                };
                self.offenders(|s| !inside(s), &format!("all inside {place}"))
            }
            Rule::KernelAlignment => match kernel {
                Some(k) => {
                    let base = k.mem.wrapping_sub(self.kernel.text_offset);
                    let ok =
                        k.mem >= self.kernel.text_offset && is_aligned(base, KERNEL_BASE_ALIGN);
                    (
                        ok,
                        format!(
                            "base {base:#x} + text_offset {:#x}",
                            self.kernel.text_offset
                        ),
                    )
                }
                None => (false, "no kernel segment".into()),
            },
            Rule::KernelImageSize => match kernel {
                Some(k) => (
                    k.memsz >= self.kernel.image_size && k.memsz >= k.bufsz,
                    format!(
                        "memsz {:#x} for image_size {:#x}",
                        k.memsz, self.kernel.image_size
                    ),
                ),
                None => (false, "no kernel segment".into()),
            },
            Rule::KernelLowest => match kernel {
                _ if self.kernel.place_anywhere => (
                    true,
                    "flags bit 3 set: any 2 MiB aligned base allowed".into(),
                ),
                Some(k) => {
                    let lowest = self.lowest_kernel_base(k.memsz);
                    match lowest {
                        Some(low) if low == k.mem => {
                            (true, format!("{:#x} is the lowest fit", k.mem))
                        }
                        Some(low) => (false, format!("{:#x} placed, but {low:#x} fits", k.mem)),
                        None => (false, "no lower bound found".into()),
                    }
                }
                None => (false, "no kernel segment".into()),
            },
            Rule::Kernel48Bit => match kernel {
                Some(k) => {
                    let end = k.mem.checked_add(self.kernel.image_size.max(k.bufsz));
                    let ok = end.is_some_and(|e| e <= PHYS_ADDR_LIMIT_48);
                    (ok, format!("ends at {:#x}", end.unwrap_or(u64::MAX)))
                }
                None => (false, "no kernel segment".into()),
            },
            Rule::DtbAlignment => match dtb {
                Some(d) => (
                    d.mem == self.dtb_addr && is_aligned(d.mem, DTB_ALIGN),
                    format!("at {:#x}", d.mem),
                ),
                None => (false, "no dtb segment".into()),
            },
            Rule::DtbSize => match dtb {
                Some(d) => (d.bufsz <= DTB_MAX_SIZE, format!("{} bytes", d.bufsz)),
                None => (false, "no dtb segment".into()),
            },
            Rule::InitrdWindow => match (kernel, initrd) {
                (_, None) => (true, "no initrd".into()),
                (Some(k), Some(i)) => {
                    let (k, i) = (k.range(), i.range());
                    let low = align_down(k.start.min(i.start), INITRD_WINDOW_ALIGN);
                    let high = k.end.max(i.end);
                    let span = high - low;
                    (
                        span <= INITRD_WINDOW_MAX,
                        format!("window {low:#x} spans {}", human_size(span)),
                    )
                }
                (None, Some(_)) => (false, "no kernel segment".into()),
            },
            Rule::DtbInitrd => {
                let expected = initrd.map(|i| MemoryRange::with_size(i.mem, i.bufsz));
                let shown = |r: Option<MemoryRange>| r.map_or("none".to_owned(), |r| r.to_string());
                (
                    expected == self.dtb_initrd,
                    format!(
                        "/chosen {} for initrd {}",
                        shown(self.dtb_initrd),
                        shown(expected)
                    ),
                )
            }
            Rule::EntryInSegment => {
                let hit = self
                    .segments
                    .iter()
                    .find(|s| self.entry >= s.mem && self.entry - s.mem < s.bufsz);
                match hit {
                    Some(s) => (
                        matches!(s.kind, SegmentKind::Kernel | SegmentKind::Purgatory),
                        format!("{:#x} in {}", self.entry, s.kind),
                    ),
                    None => (false, format!("{:#x} in no segment", self.entry)),
                }
            }
            Rule::DtbHandedOver => match self.segment(SegmentKind::Purgatory) {
                Some(_) => (true, "purgatory present".into()),
                None => (
                    false,
                    "no purgatory yet: the new kernel would start with x0 = 0, no DTB".into(),
                ),
            },
        }
    }

    /// The lowest 2 MiB aligned kernel position in `memory`, computed
    /// directly (the kernel is placed first, so only RAM limits it).
    fn lowest_kernel_base(&self, memsz: u64) -> Option<u64> {
        let to = self.kernel.text_offset;
        self.memory.iter().find_map(|r| {
            let mut base = align_down(r.start.saturating_sub(to), KERNEL_BASE_ALIGN);
            while base + to < r.start {
                base = base.checked_add(KERNEL_BASE_ALIGN)?;
            }
            let start = base + to;
            let end = start.checked_add(memsz)?;
            (end <= r.end && end <= PHYS_ADDR_LIMIT_48).then_some(start)
        })
    }
}

/// A file (or generated blob) to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob<'a> {
    /// File name, or `generated`.
    pub source: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// Everything a load needs, gathered by the caller (the CLI reads the files
/// and the system state; nothing here does I/O).
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    /// Normal or crash load.
    pub mode: LoadMode,
    /// Usable RAM, or the crash region: see [`memory_for`].
    pub memory: Vec<MemoryRange>,
    /// The plain Image.
    pub kernel: Blob<'a>,
    /// Facts from its header.
    pub kernel_facts: KernelFacts,
    /// The initrd, if any.
    pub initrd: Option<Blob<'a>>,
    /// The ELF core header of a crash load ([`crate::elfcore::build`]);
    /// [`build`] places it and points `/chosen/linux,elfcorehdr` at it, so
    /// `chosen.crash` must be set.
    pub elfcorehdr: Option<Blob<'a>>,
    /// The device tree to edit (the running one, `--dtb`, or a UKI's).
    pub dtb: &'a [u8],
    /// The `/chosen` edits; `initrd` is filled in by [`build`].
    pub chosen: fdt::ChosenEdit,
    /// The purgatory to load last (it verifies every other segment), with
    /// its options; `None` enters the kernel directly (x0 = 0: only useful
    /// for plans that are printed, not loaded).
    pub purgatory: Option<(
        crate::purgatory::Purgatory<'a>,
        crate::purgatory::PurgatoryOptions,
    )>,
}

/// Why [`build`] failed: which step, so the caller can name the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// A segment could not be placed.
    #[error("{error}")]
    Place {
        /// The segment.
        kind: SegmentKind,
        /// Why.
        #[source]
        error: Error,
    },
    /// An ELF core header for a request without crash `/chosen` edits.
    #[error("an ELF core header needs the crash /chosen edits (a crash load)")]
    ElfCoreHeaderWithoutCrash,
    /// The device tree could not be edited.
    #[error(transparent)]
    Fdt(#[from] fdt::Error),
    /// The purgatory's header could not be filled in.
    #[error(transparent)]
    Purgatory(#[from] crate::purgatory::Error),
}

/// A plan and the device tree it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The plan.
    pub plan: LoadPlan,
    /// The edited device tree (the bytes of the DTB segment) and its diff.
    pub dtb: fdt::EditedDtb,
    /// The purgatory with its header filled in (the bytes of its segment).
    pub purgatory: Option<Vec<u8>>,
    /// The console UART the purgatory reports on (from `stdout-path`).
    pub uart: Option<u64>,
}

/// The memory a load may use: usable RAM for a normal load; the highest
/// `Crash kernel` range for a crash load (`None` if there is none).
pub fn memory_for(map: &crate::iomem::MemoryMap, mode: LoadMode) -> Option<Vec<MemoryRange>> {
    match mode {
        LoadMode::Normal => Some(map.usable_ram()),
        LoadMode::Crash => map.crash_kernel().map(|r| vec![r]),
    }
}

/// Makes the plan in the one order that works: kernel (fixes the window),
/// initrd and ELF core header (their addresses go into `/chosen`), the edited
/// DTB, then the purgatory.
pub fn build(req: &LoadRequest<'_>) -> Result<Built, BuildError> {
    let at = |kind| move |error| BuildError::Place { kind, error };
    let mut planner = Planner::new(&req.memory, req.mode);
    if matches!(req.purgatory, Some((_, options)) if options.no_verify) {
        planner = planner.without_digests();
    }
    planner
        .place_kernel(req.kernel.source, req.kernel.bytes, req.kernel_facts)
        .map_err(at(SegmentKind::Kernel))?;
    let initrd = match req.initrd {
        Some(b) => Some(
            planner
                .place_initrd(b.source, b.bytes)
                .map_err(at(SegmentKind::Initrd))?,
        ),
        None => None,
    };
    let mut chosen = req.chosen.clone();
    if let Some(b) = req.elfcorehdr {
        let crash = chosen
            .crash
            .as_mut()
            .ok_or(BuildError::ElfCoreHeaderWithoutCrash)?;
        let mem = planner
            .place_blob(SegmentKind::ElfCoreHeader, b.source, b.bytes)
            .map_err(at(SegmentKind::ElfCoreHeader))?;
        crash.elfcorehdr = Some(MemoryRange::with_size(mem, b.bytes.len() as u64));
    }
    let edit = fdt::ChosenEdit { initrd, ..chosen };
    let dtb = fdt::edit_chosen(req.dtb, &edit)?;
    planner
        .place_dtb("generated", &dtb.dtb)
        .map_err(at(SegmentKind::Dtb))?;
    let mut purgatory = None;
    let mut uart = None;
    if let Some((image, options)) = req.purgatory {
        // Everything placed so far is verified by the purgatory, which is
        // placed last: its own bytes carry the digests.
        uart = fdt::stdout_pl011(&dtb.dtb)?;
        let kernel_entry = planner
            .segments
            .iter()
            .find(|s| s.kind == SegmentKind::Kernel)
            .map(|s| s.mem)
            .ok_or(BuildError::Place {
                kind: SegmentKind::Purgatory,
                error: Error::KernelNotPlaced(SegmentKind::Purgatory),
            })?;
        let dtb_addr = planner.dtb.map(|(addr, _)| addr).ok_or(BuildError::Place {
            kind: SegmentKind::Purgatory,
            error: Error::Missing(SegmentKind::Dtb),
        })?;
        let params = crate::purgatory::handoff_params(
            // Without digests the purgatory is told not to verify (NO_VERIFY).
            planner
                .segments
                .iter()
                .map(|s| (s.mem, s.bufsz, s.sha256.unwrap_or_default())),
            kernel_entry,
            dtb_addr,
            uart,
            options,
        )?;
        let bytes = image.patched(&params)?;
        planner
            .place_purgatory(
                "purgatory (built in)",
                &bytes,
                crate::purgatory::Purgatory::ENTRY_OFFSET,
                image.mem_size,
            )
            .map_err(at(SegmentKind::Purgatory))?;
        purgatory = Some(bytes);
    }
    let plan = planner.finish().map_err(at(SegmentKind::Kernel))?;
    Ok(Built {
        plan,
        dtb,
        purgatory,
        uart,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{SZ_1G, SZ_1M, SZ_2M};

    fn facts(image_size: u64) -> KernelFacts {
        KernelFacts {
            text_offset: 0,
            image_size,
            place_anywhere: true,
        }
    }

    fn dtb_without_initrd() -> Vec<u8> {
        dtoolkit::model::DeviceTree::new().to_dtb()
    }

    #[test]
    fn lowest_fit_respects_alignment_and_offset() {
        let free = [MemoryRange::new(0x4010_0000, 0x8000_0000)];
        let all = MemoryRange::new(0, u64::MAX);
        assert_eq!(lowest_fit(&free, all, SZ_2M, SZ_2M, 0), Some(0x4020_0000));
        assert_eq!(
            lowest_fit(&free, all, SZ_2M, SZ_2M, 0x8_0000),
            Some(0x4020_0000 + 0x8_0000)
        );
        assert_eq!(lowest_fit(&free, all, SZ_1G, SZ_2M, 0), None);
    }

    #[test]
    fn simple_plan_is_valid_apart_from_purgatory() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        let image = vec![0u8; 3 << 20];
        assert_eq!(
            p.place_kernel("Image", &image, facts(8 * SZ_1M)).unwrap(),
            0x4000_0000
        );
        let dtb = dtb_without_initrd();
        assert_eq!(p.place_dtb("generated", &dtb).unwrap(), 0x4080_0000);
        let plan = p.finish().unwrap();
        assert_eq!(plan.entry, 0x4000_0000);
        let failed: Vec<_> = plan
            .check()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule)
            .collect();
        assert_eq!(failed, vec![Rule::DtbHandedOver]);
    }

    #[test]
    fn initrd_that_does_not_fit_is_explained() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        p.place_kernel("Image", &[0u8; 4096], facts(32 * SZ_1M))
            .unwrap();
        let err = p
            .place_initrd("big.img", &vec![0u8; 1200 << 20])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "initrd of 1200 MiB does not fit: largest free RAM range in usable RAM within the kernel's \
             32 GiB window is 0x42000000-0x7fffffff (992 MiB)"
        );
    }

    #[test]
    fn place_blob_refuses_kinds_with_their_own_method() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M)).unwrap();
        assert_eq!(
            p.place_blob(SegmentKind::Kernel, "x", &[0]),
            Err(Error::DedicatedKind(SegmentKind::Kernel))
        );
        assert_eq!(
            p.place_blob(SegmentKind::Initrd, "x", &[0]),
            Ok(0x4020_0000)
        );
    }

    #[test]
    fn kernel_not_first_is_refused() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        assert_eq!(
            p.place_initrd("i", &[1]),
            Err(Error::KernelNotPlaced(SegmentKind::Initrd))
        );
    }

    #[test]
    fn seventeen_segments_are_refused() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M)).unwrap();
        for _ in 0..15 {
            p.place_blob(SegmentKind::ElfCoreHeader, "generated", &[0u8; 16])
                .unwrap();
        }
        assert_eq!(
            p.place_blob(SegmentKind::ElfCoreHeader, "generated", &[0u8; 16]),
            Err(Error::TooManySegments)
        );
    }

    #[test]
    fn check_catches_a_tampered_plan() {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        p.place_kernel(
            "Image",
            &[0u8; 4096],
            KernelFacts {
                place_anywhere: false,
                ..facts(SZ_2M)
            },
        )
        .unwrap();
        p.place_dtb("generated", &dtb_without_initrd()).unwrap();
        let mut plan = p.finish().unwrap();
        // Two 2 MiB steps up: still aligned, clear of the DTB, no longer lowest.
        plan.segments[0].mem += 2 * SZ_2M;
        plan.entry += 2 * SZ_2M;
        let failed: Vec<_> = plan
            .check()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule)
            .collect();
        assert_eq!(failed, vec![Rule::KernelLowest, Rule::DtbHandedOver]);
        plan.segments[0].mem += 0x1000;
        let failed: Vec<_> = plan
            .check()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule)
            .collect();
        assert!(failed.contains(&Rule::KernelAlignment));
        assert!(failed.contains(&Rule::SegmentAlignment));
    }

    #[test]
    fn build_places_the_elf_core_header_and_points_chosen_at_it() {
        use dtoolkit::{Node, Property};

        let crash = MemoryRange::new(0x6ac0_0000, 0x7ac0_0000);
        let header = crate::elfcore::build(&crate::elfcore::ElfCoreInputs {
            ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
            crash: vec![crash],
            ..Default::default()
        })
        .unwrap();
        let kernel = vec![0u8; 1 << 20];
        let dtb = dtb_without_initrd();
        let mut req = LoadRequest {
            mode: LoadMode::Crash,
            memory: vec![crash],
            kernel: Blob {
                source: "Image",
                bytes: &kernel,
            },
            kernel_facts: facts(4 * SZ_1M),
            initrd: None,
            elfcorehdr: Some(Blob {
                source: "generated",
                bytes: &header,
            }),
            dtb: &dtb,
            chosen: fdt::ChosenEdit {
                crash: Some(fdt::CrashChosen {
                    elfcorehdr: None,
                    usable: vec![crash],
                }),
                ..Default::default()
            },
            purgatory: None,
        };
        let built = build(&req).unwrap();
        let seg = built.plan.segment(SegmentKind::ElfCoreHeader).unwrap();
        // Right after the 4 MiB kernel, inside the crash region.
        assert_eq!(seg.mem, 0x6b00_0000);
        assert_eq!(seg.bufsz, header.len() as u64);
        assert!(crash.contains_range(&seg.range()));
        let tree = fdt::parse(&built.dtb.dtb).unwrap();
        let chosen = tree.find_node("/chosen").unwrap();
        #[rustfmt::skip]
        assert_eq!(chosen.property(fdt::ELFCOREHDR).unwrap().value(), &[
            0x00, 0x00, 0x00, 0x00, 0x6b, 0x00, 0x00, 0x00, // address, 2 cells (default)
            0x00, 0x00, 0x00, 0xb0,                         // size, 1 cell: 64 + 2 * 56 bytes
        ]);
        let failed: Vec<_> = built
            .plan
            .check()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule)
            .collect();
        assert_eq!(failed, [Rule::DtbHandedOver], "no purgatory in this test");

        req.chosen.crash = None;
        assert_eq!(build(&req), Err(BuildError::ElfCoreHeaderWithoutCrash));
    }
}

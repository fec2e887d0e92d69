//! The placer: [`Planner`] puts segments one at a time at the lowest address
//! that fits, kernel first, and yields a [`LoadPlan`]; [`Error`] says why a
//! segment did not fit. Its result is re-checked by [`LoadPlan::check`],
//! which does not trust it.

use thiserror::Error;

use crate::fdt;
use crate::iomem::{subtract, MemoryRange};
use crate::layout::{
    align_down, align_up, human_size, is_aligned, CRASH_CONTROL_PAGES, DTB_ALIGN, DTB_MAX_SIZE,
    INITRD_WINDOW_ALIGN, INITRD_WINDOW_MAX, KERNEL_BASE_ALIGN, KEXEC_SEGMENT_MAX,
    OLD_KERNEL_DTB_BLOCK, OLD_KERNEL_DTB_REACH, PHYS_ADDR_LIMIT_48, SEGMENT_ALIGN,
    TEXT_OFFSET_ALIGN,
};

use super::model::{KernelFacts, LoadMode, LoadPlan, Segment, SegmentKind};
#[cfg(doc)]
use super::rules::Rule;

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
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
    /// A `text_offset` that is not a multiple of 4 KiB: no arm64 kernel has
    /// one, and its entry would not be page aligned.
    #[error(
        "text_offset {0:#x} is not a multiple of 4 KiB: no arm64 kernel has one \
         (arch/arm64/kernel/head.S requires it), so this is not a bootable Image"
    )]
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
    /// The segments fill the crash region: the kernel needs free pages there
    /// for its control pages ([`Rule::CrashControlPages`]).
    #[error(
        "the segments leave {free} free in the crash region {region}; the kernel needs \
         {CRASH_CONTROL_PAGES} free 64 KiB pages there for its control pages (ENOMEM otherwise): \
         reserve a larger crashkernel= or load less"
    )]
    NoRoomForControlPages {
        /// The crash region.
        region: MemoryRange,
        /// Free 64 KiB aligned bytes left there, human readable.
        free: String,
    },
    /// Segments larger than half of the machine's RAM ([`Rule::SegmentsHalfRam`]).
    #[error(
        "{what} of {size} is more than half of the {ram} of RAM the kernel manages \
         (kexec_load refuses with EINVAL)"
    )]
    MoreThanHalfOfRam {
        /// `the kernel`, `the initrd`, … or `the segments together`.
        what: String,
        /// Their size, human readable.
        size: String,
        /// The machine's RAM, human readable.
        ram: String,
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

/// The lowest start `s` (a multiple of `align`) with `[s, s + size)` inside
/// one of `free`, inside `window`, and inside one `block` aligned block.
fn lowest_fit_in_block(
    free: &[MemoryRange],
    window: MemoryRange,
    size: u64,
    align: u64,
    block: u64,
) -> Option<u64> {
    let mut from = window.start;
    loop {
        let start = lowest_fit(free, MemoryRange::new(from, window.end), size, align, 0)?;
        let next_block = align_down(start, block).checked_add(block)?;
        if start.checked_add(size)? <= next_block {
            return Some(start);
        }
        // Crosses a block boundary: nothing in this block fits, try above.
        from = next_block;
    }
}

/// Places segments one by one; see the module documentation for the order.
#[derive(Debug, Clone)]
pub struct Planner {
    mode: LoadMode,
    memory: Vec<MemoryRange>,
    segments: Vec<Segment>,
    /// The kernel's facts and where its Image starts, once placed.
    kernel: Option<(KernelFacts, u64)>,
    dtb: Option<(u64, fdt::ReadBack)>,
    entry: Option<u64>,
    digests: bool,
    total_ram: u64,
    /// Ranges the non-kernel segments avoid when they fit elsewhere.
    avoid: Vec<MemoryRange>,
    /// Digests the caller computed, by the address and length of the bytes
    /// they are of ([`Planner::with_chunk_digests`]).
    known_digests: Vec<((usize, usize), Vec<crate::digest::Sha256Digest>)>,
}

impl Planner {
    /// A planner over `memory`: usable RAM for a normal load, the (high) crash
    /// region for a crash load. The machine's RAM ([`LoadPlan::total_ram`])
    /// is taken to be the sum of `memory` until [`Planner::with_total_ram`]
    /// says otherwise (a crash load should: its `memory` is the region).
    pub fn new(memory: &[MemoryRange], mode: LoadMode) -> Self {
        let mut memory: Vec<_> = memory.iter().copied().filter(|r| !r.is_empty()).collect();
        memory.sort();
        let total_ram = memory
            .iter()
            .map(MemoryRange::size)
            .fold(0u64, u64::saturating_add);
        Self {
            mode,
            memory,
            segments: Vec::new(),
            kernel: None,
            dtb: None,
            entry: None,
            digests: true,
            total_ram,
            avoid: Vec::new(),
            known_digests: Vec::new(),
        }
    }

    /// Places the initrd, DTB, purgatory and other non-kernel segments
    /// outside `ranges` (the running kernel's image,
    /// [`crate::iomem::MemoryMap::running_kernel`]) where they fit, and only
    /// otherwise over them, lowest first either way. A preference, never a
    /// rule: a normal load may overwrite the running kernel (the segments
    /// are copied into place at exec time). Measured under QEMU TCG
    /// (`cargo xtask bench`, issue 15): with the initrd over the first MiB of
    /// the running kernel's text, the old kernel's relocation took ≈ 0.2 s
    /// longer, the whole gap to kexec-tools, whose other segments follow
    /// the kernel. The kernel segment is not moved: flags bit 3 = 0 wants it
    /// lowest, and over the running kernel's data it costs nothing measurable.
    pub fn avoiding(mut self, ranges: Vec<MemoryRange>) -> Self {
        self.avoid = ranges;
        self
    }

    /// The RAM the running kernel manages, in bytes
    /// ([`crate::iomem::MemoryMap::total_ram`]): no segment, nor all of them
    /// together, may exceed half of it.
    pub fn with_total_ram(mut self, bytes: u64) -> Self {
        self.total_ram = bytes;
        self
    }

    /// Do not compute segment digests (for `kexec -i`, whose purgatory does
    /// not verify): hashing hundreds of MiB is most of a load's time.
    pub(crate) fn without_digests(mut self) -> Self {
        self.digests = false;
        self
    }

    /// The chunk digests of `bytes` ([`crate::digest::chunk_digests`] with
    /// no padding), computed by the caller: a segment of exactly these
    /// bytes takes them instead of hashing again. Ignored unless there is
    /// one per chunk.
    pub(crate) fn with_chunk_digests(
        mut self,
        bytes: &[u8],
        digests: &[crate::digest::Sha256Digest],
    ) -> Self {
        let chunks = (bytes.len() as u64).div_ceil(crate::digest::CHUNK_SIZE);
        if digests.len() as u64 == chunks {
            self.known_digests
                .push(((bytes.as_ptr() as usize, bytes.len()), digests.to_vec()));
        }
        self
    }

    /// The segments placed so far, in placement order (for the builder,
    /// which hands them to the purgatory).
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Where the device tree was placed, once it was.
    pub(super) fn dtb_addr(&self) -> Option<u64> {
        self.dtb.as_ref().map(|(addr, _)| *addr)
    }

    /// `memory` less every segment and the kernel's footprint
    /// ([`KernelFacts::footprint`]: before 3.17, from its 2 MiB base).
    fn free(&self) -> Vec<MemoryRange> {
        let mut used: Vec<_> = self.segments.iter().map(Segment::range).collect();
        used.extend(self.kernel.map(|(facts, load)| facts.footprint(load)));
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
    /// window ([`Rule::InitrdWindow`]; we keep the DTB and purgatory there
    /// too). For a kernel with flags bit 3 clear, the initrd and the DTB stay
    /// above its 2 MiB base and the DTB within 512 MiB of it
    /// ([`Rule::LinearMapReach`]).
    fn window(&self, kind: SegmentKind) -> Result<MemoryRange, Error> {
        let k = self
            .segments
            .iter()
            .find(|s| s.kind == SegmentKind::Kernel)
            .ok_or(Error::KernelNotPlaced(kind))?
            .range();
        let mut lo = align_up(k.end.saturating_sub(INITRD_WINDOW_MAX), INITRD_WINDOW_ALIGN)
            .unwrap_or(u64::MAX);
        let mut hi = align_down(k.start, INITRD_WINDOW_ALIGN).saturating_add(INITRD_WINDOW_MAX);
        if let Some(base) = self.old_kernel_base(kind) {
            lo = lo.max(base);
            if kind == SegmentKind::Dtb {
                hi = hi.min(base.saturating_add(OLD_KERNEL_DTB_REACH));
            }
        }
        Ok(MemoryRange::new(lo, hi))
    }

    /// The 2 MiB base of a kernel with flags bit 3 clear, when `kind` (the
    /// initrd or the DTB, which that kernel reads through its linear map)
    /// must stay above it ([`Rule::LinearMapReach`]).
    fn old_kernel_base(&self, kind: SegmentKind) -> Option<u64> {
        let (facts, load) = self.kernel?;
        let reads = matches!(kind, SegmentKind::Initrd | SegmentKind::Dtb);
        (reads && !facts.place_anywhere).then(|| load.saturating_sub(facts.text_offset))
    }

    /// Adds a segment of `padding` zero bytes followed by `bytes`.
    fn push(
        &mut self,
        kind: SegmentKind,
        source: &str,
        (padding, bytes): (u64, &[u8]),
        mem: u64,
        memsz: u64,
    ) -> Result<(), Error> {
        if self.segments.len() >= KEXEC_SEGMENT_MAX {
            return Err(Error::TooManySegments);
        }
        // The padding is at most 60 KiB (text_offset modulo 64 KiB).
        let key = (bytes.as_ptr() as usize, bytes.len());
        let digests = self.digests.then(|| {
            self.known_digests
                .iter()
                .find(|(k, _)| padding == 0 && *k == key)
                .map_or_else(
                    || crate::digest::chunk_digests(padding, bytes),
                    |(_, d)| d.clone(),
                )
        });
        self.segments.push(Segment {
            kind,
            source: source.to_owned(),
            mem,
            bufsz: padding + bytes.len() as u64,
            memsz,
            digests,
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
        let align = align.max(SEGMENT_ALIGN);
        let block = kind == SegmentKind::Dtb && self.old_kernel_base(kind).is_some();
        let fit = |free: &[MemoryRange]| {
            if block {
                lowest_fit_in_block(free, window, memsz, align, OLD_KERNEL_DTB_BLOCK)
            } else {
                lowest_fit(free, window, memsz, align, 0)
            }
        };
        let mem = fit(&subtract(&free, &self.avoid))
            .or_else(|| fit(&free))
            .ok_or_else(|| self.no_space(kind, size, window))?;
        self.push(kind, source, (0, bytes), mem, memsz)?;
        Ok(mem)
    }

    /// No room for a non-kernel segment: always inside the kernel's window
    /// (see [`Planner::window`]; it never spans the whole address space).
    fn no_space(&self, kind: SegmentKind, size: u64, window: MemoryRange) -> Error {
        let mut region = format!("{} within the kernel's 32 GiB window", self.region_name());
        if self.old_kernel_base(kind).is_some() {
            region.push_str(" above its 2 MiB base (flags bit 3 = 0)");
            if kind == SegmentKind::Dtb {
                region.push_str(", within 512 MiB of it in one 2 MiB block");
            }
        }
        Error::NoSpace {
            kind,
            size: human_size(size),
            region,
            largest: largest_in(&self.free(), window),
        }
    }

    /// Places the kernel: the lowest 2 MiB aligned base (+ `text_offset`) where
    /// its footprint ([`KernelFacts::footprint`]: `image_size` bytes, and
    /// before 3.17 the base up to the Image) fits below 2^48. Lowest is what
    /// flags bit 3 = 0 demands ("as close as possible to the base of DRAM")
    /// and a fine choice for bit 3 = 1. A `text_offset` that is not 64 KiB
    /// aligned starts the segment at the 64 KiB boundary below the Image,
    /// with zeros up to it ([`KernelFacts::segment_padding`]). Returns the
    /// Image's load address, the kernel's entry point.
    pub fn place_kernel(
        &mut self,
        source: &str,
        image: &[u8],
        facts: KernelFacts,
    ) -> Result<u64, Error> {
        if self.kernel.is_some() {
            return Err(Error::AlreadyPlaced(SegmentKind::Kernel));
        }
        if !is_aligned(facts.text_offset, TEXT_OFFSET_ALIGN) {
            return Err(Error::UnalignedTextOffset(facts.text_offset));
        }
        let padding = facts.segment_padding();
        // Offsets from the 2 MiB base: of the segment, and of the footprint.
        let segment_offset = facts.text_offset - padding;
        let footprint_offset = if facts.uses_memory_below_image {
            0
        } else {
            segment_offset
        };
        let len = image.len() as u64;
        let size = facts.image_size.max(len).max(1);
        let whole = MemoryRange::new(0, u64::MAX);
        let no_space = |planner: &Self| {
            let mut e = planner.no_space(SegmentKind::Kernel, size, whole);
            if let Error::NoSpace { region, .. } = &mut e {
                region.push_str(" at a 2 MiB aligned base below 2^48");
            }
            e
        };
        let memsz = padding
            .checked_add(size)
            .and_then(|n| align_up(n, SEGMENT_ALIGN))
            .ok_or_else(|| no_space(self))?;
        let below = segment_offset - footprint_offset;
        let reserve = below.checked_add(memsz).ok_or_else(|| no_space(self))?;
        let limit = MemoryRange::new(0, PHYS_ADDR_LIMIT_48);
        let start = lowest_fit(
            &self.free(),
            limit,
            reserve,
            KERNEL_BASE_ALIGN,
            footprint_offset,
        )
        .ok_or_else(|| no_space(self))?;
        // start + reserve fits, so neither sum overflows.
        let mem = start + below;
        self.push(SegmentKind::Kernel, source, (padding, image), mem, memsz)?;
        let load = mem + padding;
        self.kernel = Some((facts, load));
        Ok(load)
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
        let read_back = fdt::read_back(dtb)?;
        let mem = self.place_in_window(SegmentKind::Dtb, source, dtb, DTB_ALIGN)?;
        self.dtb = Some((mem, read_back));
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

    /// Refuses what the kernel would refuse of segments that each fit:
    /// more than half of RAM, and a crash region left without room for the
    /// control pages. (The rules check the plan again, on their own.)
    fn check_kernel_limits(&self) -> Result<(), Error> {
        let half = self.total_ram / 2;
        let ram = human_size(self.total_ram);
        let too_big = |what: String, size: u64| Error::MoreThanHalfOfRam {
            what,
            size: human_size(size),
            ram: ram.clone(),
        };
        if let Some(s) = self.segments.iter().find(|s| s.memsz > half) {
            return Err(too_big(format!("the {}", s.kind), s.memsz));
        }
        let total = self
            .segments
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.memsz));
        if total > half {
            return Err(too_big("the segments together".into(), total));
        }
        if self.mode == LoadMode::Crash {
            if let Some(&region) = self.memory.last() {
                let free: u64 = self
                    .free()
                    .iter()
                    .filter(|r| region.contains_range(r))
                    .filter_map(|r| {
                        let start = align_up(r.start, SEGMENT_ALIGN)?;
                        Some(align_down(r.end, SEGMENT_ALIGN).saturating_sub(start))
                    })
                    .sum();
                if free < CRASH_CONTROL_PAGES * SEGMENT_ALIGN {
                    return Err(Error::NoRoomForControlPages {
                        region,
                        free: human_size(free),
                    });
                }
            }
        }
        Ok(())
    }

    /// The plan. Entry: the purgatory's if one was placed, else the kernel's
    /// load address.
    pub fn finish(mut self) -> Result<LoadPlan, Error> {
        let (kernel, load) = self.kernel.ok_or(Error::Missing(SegmentKind::Kernel))?;
        let (dtb_addr, read_back) = self.dtb.take().ok_or(Error::Missing(SegmentKind::Dtb))?;
        self.check_kernel_limits()?;
        Ok(LoadPlan {
            mode: self.mode,
            entry: self.entry.unwrap_or(load),
            dtb_addr,
            kernel,
            memory: self.memory,
            dtb_initrd: read_back.initrd,
            dtb_elfcorehdr: read_back.elfcorehdr,
            dtb_reserved: read_back.reserved,
            total_ram: self.total_ram,
            segments: self.segments,
        })
    }
}

#[cfg(test)]
#[path = "place_tests.rs"]
mod tests;

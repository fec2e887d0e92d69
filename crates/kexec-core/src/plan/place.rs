//! The placer: [`Planner`] puts segments one at a time at the lowest address
//! that fits, kernel first, and yields a [`LoadPlan`]; [`Error`] says why a
//! segment did not fit. Its result is re-checked by [`LoadPlan::check`],
//! which does not trust it.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::fdt;
use crate::iomem::{subtract, MemoryRange};
use crate::layout::{
    align_down, align_up, human_size, is_aligned, CRASH_CONTROL_PAGES, DTB_ALIGN, DTB_MAX_SIZE,
    INITRD_WINDOW_ALIGN, INITRD_WINDOW_MAX, KERNEL_BASE_ALIGN, KEXEC_SEGMENT_MAX,
    PHYS_ADDR_LIMIT_48, SEGMENT_ALIGN,
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

/// Places segments one by one; see the module documentation for the order.
#[derive(Debug, Clone)]
pub struct Planner {
    mode: LoadMode,
    memory: Vec<MemoryRange>,
    segments: Vec<Segment>,
    kernel: Option<KernelFacts>,
    dtb: Option<(u64, fdt::ReadBack)>,
    entry: Option<u64>,
    digests: bool,
    total_ram: u64,
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
        }
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

    /// The segments placed so far, in placement order (for the builder,
    /// which hands them to the purgatory).
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Where the device tree was placed, once it was.
    pub(super) fn dtb_addr(&self) -> Option<u64> {
        self.dtb.map(|(addr, _)| addr)
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

    /// No room for a non-kernel segment: always inside the kernel's window
    /// (see [`Planner::window`]; it never spans the whole address space).
    fn no_space(&self, kind: SegmentKind, size: u64, window: MemoryRange) -> Error {
        let region = format!("{} within the kernel's 32 GiB window", self.region_name());
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
    pub fn finish(self) -> Result<LoadPlan, Error> {
        let kernel = self.kernel.ok_or(Error::Missing(SegmentKind::Kernel))?;
        let (dtb_addr, read_back) = self.dtb.ok_or(Error::Missing(SegmentKind::Dtb))?;
        self.check_kernel_limits()?;
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
            dtb_initrd: read_back.initrd,
            dtb_elfcorehdr: read_back.elfcorehdr,
            total_ram: self.total_ram,
            segments: self.segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::facts;
    use super::*;
    use crate::layout::{SZ_1G, SZ_1M, SZ_2M};

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

    /// A crash region the segments fill up to less than two 64 KiB pages is
    /// refused (the kernel's kimage_alloc_crash_control_pages would fail
    /// with ENOMEM); two free pages are enough.
    #[test]
    fn a_full_crash_region_is_refused() {
        let plan = |region_end: u64| {
            let mut p = Planner::new(
                &[MemoryRange::new(0x4000_0000, region_end)],
                LoadMode::Crash,
            )
            .with_total_ram(SZ_1G);
            p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M))?;
            // The DTB takes one 64 KiB page, the purgatory three.
            p.place_dtb("generated", &dtoolkit::model::DeviceTree::new().to_dtb())?;
            p.place_purgatory("purgatory", &[0u8; 4096], 0, 0x3_0000)?;
            p.finish()
        };
        let used = 0x4020_0000 + 0x4_0000;
        assert!(plan(used + 0x2_0000).is_ok());
        let err = plan(used + 0x1_0000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the segments leave 64 KiB free in the crash region 0x40000000-0x4024ffff; the kernel \
             needs 2 free 64 KiB pages there for its control pages (ENOMEM otherwise): reserve a \
             larger crashkernel= or load less"
        );
        assert!(matches!(
            plan(used),
            Err(Error::NoRoomForControlPages { .. })
        ));
    }

    /// A segment over half of RAM, or segments together over it, are refused
    /// (sanity_check_segment_list: EINVAL); exactly half passes.
    #[test]
    fn more_than_half_of_ram_is_refused() {
        let plan = |total_ram: u64| {
            let mut p = Planner::new(
                &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
                LoadMode::Normal,
            )
            .with_total_ram(total_ram);
            p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M))?;
            p.place_dtb("generated", &dtoolkit::model::DeviceTree::new().to_dtb())?;
            p.finish()
        };
        // 2 MiB + 64 KiB in all.
        assert!(plan(2 * (SZ_2M + 0x1_0000)).is_ok());
        assert_eq!(
            plan(2 * (SZ_2M + 0x1_0000) - 1).unwrap_err().to_string(),
            "the segments together of 2.1 MiB is more than half of the 4.1 MiB of RAM the \
             kernel manages (kexec_load refuses with EINVAL)"
        );
        assert!(matches!(
            plan(4 * SZ_1M - 1),
            Err(Error::MoreThanHalfOfRam { what, .. }) if what == "the kernel"
        ));
        // A kernel of exactly half is allowed: only the total is over.
        assert!(matches!(
            plan(4 * SZ_1M),
            Err(Error::MoreThanHalfOfRam { what, .. }) if what == "the segments together"
        ));
    }
}

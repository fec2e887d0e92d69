//! The rules every plan must satisfy ([`Rule`]) and the checker that
//! re-validates a finished [`LoadPlan`] against them ([`LoadPlan::check`]).
//!
//! The checker distrusts the placer: it reads only the plan's data
//! ([`super::model`]) and recomputes every constraint from
//! [`crate::layout`]; it does not import [`super::Planner`].
//!
//! The rules come from Documentation/arch/arm64/booting.rst (§ 2 "Setup the
//! device tree", § 4 "Call the kernel image") and include/uapi/linux/kexec.h /
//! kernel/kexec_core.c (`sanity_check_segment_list`); each is named once in
//! [`Rule`] with its source, and its numbers live in [`crate::layout`].

use crate::iomem::MemoryRange;
use crate::layout::{
    align_down, align_up, human_size, is_aligned, CRASH_CONTROL_PAGES, DTB_ALIGN, DTB_MAX_SIZE,
    INITRD_WINDOW_ALIGN, INITRD_WINDOW_MAX, KERNEL_BASE_ALIGN, KEXEC_SEGMENT_MAX,
    OLD_KERNEL_DTB_BLOCK, OLD_KERNEL_DTB_REACH, PHYS_ADDR_LIMIT_48, SEGMENT_ALIGN,
    TEXT_OFFSET_ALIGN,
};

use super::model::{LoadMode, LoadPlan, Segment, SegmentKind};

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
    /// Every segment, and all of them together, at most half of the RAM the
    /// kernel manages (`sanity_check_segment_list`: EINVAL otherwise).
    SegmentsHalfRam,
    /// A crash load leaves the kernel's control pages free room in the crash
    /// region (`kimage_alloc_crash_control_pages`: ENOMEM otherwise).
    CrashControlPages,
    /// The Image at a 2 MiB aligned base plus `text_offset`, a multiple of
    /// 4 KiB.
    KernelAlignment,
    /// The kernel segment reserves `image_size`, not just the file length.
    KernelImageSize,
    /// Nothing else inside the memory the kernel uses once running
    /// ([`super::KernelFacts::footprint`]), and that memory inside `memory`.
    KernelFootprint,
    /// Flags bit 3 clear: the Image as close as possible to the base of DRAM.
    KernelLowest,
    /// Flags bit 3 set: all of `image_size` below 2^48.
    Kernel48Bit,
    /// The device tree 8-byte aligned.
    DtbAlignment,
    /// The device tree at most 2 MiB.
    DtbSize,
    /// Flags bit 3 clear: the initrd and the device tree above the kernel's
    /// 2 MiB base, the device tree inside one 2 MiB block within 512 MiB of
    /// it.
    LinearMapReach,
    /// Kernel and initrd inside one 1 GiB aligned window of at most 32 GiB.
    InitrdWindow,
    /// `/chosen` names the initrd exactly where it is placed (or none).
    DtbInitrd,
    /// `/chosen` `linux,elfcorehdr` names the ELF core header segment exactly
    /// (or is absent without one).
    DtbElfcorehdr,
    /// No segment overlaps what the placed DTB reserves for others: its
    /// memory reservations and the EFI memory map `/chosen` names.
    DtbReserved,
    /// The entry point lies inside a loaded segment.
    EntryInSegment,
    /// Something passes the DTB in x0: kexec_load enters with x0 = 0.
    DtbHandedOver,
}

impl Rule {
    /// Every rule, in check order.
    pub const ALL: [Rule; 21] = [
        Rule::SegmentCount,
        Rule::SegmentAlignment,
        Rule::SegmentSizes,
        Rule::SegmentOverlap,
        Rule::SegmentsInMemory,
        Rule::SegmentsHalfRam,
        Rule::CrashControlPages,
        Rule::KernelAlignment,
        Rule::KernelImageSize,
        Rule::KernelFootprint,
        Rule::KernelLowest,
        Rule::Kernel48Bit,
        Rule::DtbAlignment,
        Rule::DtbSize,
        Rule::LinearMapReach,
        Rule::InitrdWindow,
        Rule::DtbInitrd,
        Rule::DtbElfcorehdr,
        Rule::DtbReserved,
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
            Rule::SegmentsHalfRam => "segments-half-ram",
            Rule::CrashControlPages => "crash-control-pages",
            Rule::KernelAlignment => "kernel-alignment",
            Rule::KernelImageSize => "kernel-image-size",
            Rule::KernelFootprint => "kernel-footprint",
            Rule::KernelLowest => "kernel-lowest",
            Rule::Kernel48Bit => "kernel-48bit",
            Rule::DtbAlignment => "dtb-alignment",
            Rule::DtbSize => "dtb-size",
            Rule::LinearMapReach => "linear-map-reach",
            Rule::InitrdWindow => "initrd-window",
            Rule::DtbInitrd => "dtb-initrd",
            Rule::DtbElfcorehdr => "dtb-elfcorehdr",
            Rule::DtbReserved => "dtb-reserved",
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
            Rule::SegmentsHalfRam => {
                "each segment and their total at most half of the RAM the kernel manages"
            }
            Rule::CrashControlPages => {
                "-p: two free 64 KiB pages in the crash region outside the segments, for the kernel's control pages"
            }
            Rule::KernelAlignment => {
                "Image at a 2 MiB aligned base + text_offset (a multiple of 4 KiB)"
            }
            Rule::KernelImageSize => "kernel segment reserves image_size bytes (BSS included)",
            Rule::KernelFootprint => {
                "nothing else in the kernel's footprint (image_size from the Image; before 3.17 \
                 also its 2 MiB base up to the Image), which lies in usable RAM"
            }
            Rule::KernelLowest => "flags bit 3 = 0: Image as close as possible to the base of DRAM",
            Rule::Kernel48Bit => "flags bit 3 = 1: all image_size bytes below 2^48",
            Rule::DtbAlignment => "DTB 8-byte aligned",
            Rule::DtbSize => "DTB at most 2 MiB",
            Rule::LinearMapReach => {
                "flags bit 3 = 0: initrd and DTB above the kernel's 2 MiB base, the DTB in one \
                 2 MiB block within 512 MiB of it"
            }
            Rule::InitrdWindow => {
                "kernel and initrd inside one 1 GiB aligned window of at most 32 GiB"
            }
            Rule::DtbInitrd => "/chosen linux,initrd-start/end match the initrd segment",
            Rule::DtbElfcorehdr => "/chosen linux,elfcorehdr matches the ELF core header segment",
            Rule::DtbReserved => {
                "no segment overlaps the DTB's memory reservations or the EFI memory map it names"
            }
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
            | Rule::SegmentsInMemory
            | Rule::SegmentsHalfRam => {
                "include/uapi/linux/kexec.h; kernel/kexec_core.c sanity_check_segment_list"
            }
            Rule::CrashControlPages => {
                "kernel/kexec_core.c kimage_alloc_crash_control_pages; kernel/kexec.c kimage_alloc_init"
            }
            Rule::KernelAlignment => {
                "Documentation/arch/arm64/booting.rst §4; arch/arm64/kernel/head.S (v3.17 to v5.7)"
            }
            Rule::KernelImageSize | Rule::KernelLowest | Rule::Kernel48Bit => {
                "Documentation/arch/arm64/booting.rst §4"
            }
            Rule::KernelFootprint => {
                "Documentation/arch/arm64/booting.rst §4; arch/arm64/kernel/head.S (before v3.17)"
            }
            Rule::LinearMapReach => {
                "Documentation/arch/arm64/booting.rst §4; arch/arm64/kernel/head.S \
                 __create_page_tables (before v4.2)"
            }
            Rule::DtbAlignment | Rule::DtbSize | Rule::InitrdWindow => {
                "Documentation/arch/arm64/booting.rst §2"
            }
            Rule::DtbInitrd => "Documentation/devicetree/bindings/chosen.txt",
            Rule::DtbElfcorehdr => {
                "Documentation/devicetree/bindings/chosen.txt; drivers/of/fdt.c early_init_dt_check_for_elfcorehdr"
            }
            Rule::DtbReserved => {
                "Documentation/arch/arm64/booting.rst §4 (memreserve); Documentation/arch/arm/uefi.rst \
                 (linux,uefi-mmap-*)"
            }
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

impl LoadPlan {
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
                // Every pair, as sanity_check_segment_list (kernel/kexec_core.c)
                // compares them: at most 16 segments, and no reliance on a
                // sort (a neighbour-only check misses overlaps around an
                // empty range). `range()` saturates, so no range wraps.
                let s = &self.segments;
                let clash = (0..s.len())
                    .flat_map(|i| (i + 1..s.len()).map(move |j| (i, j)))
                    .find(|&(i, j)| s[i].range().overlaps(&s[j].range()));
                match clash {
                    Some((i, j)) => {
                        let (a, b) = if s[i].mem <= s[j].mem { (i, j) } else { (j, i) };
                        (false, format!("{} overlaps {}", s[a].kind, s[b].kind))
                    }
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
            Rule::SegmentsHalfRam => self.half_ram(),
            Rule::CrashControlPages => self.crash_control_pages(),
            Rule::KernelAlignment => match self.kernel_load_addr() {
                Some(load) => {
                    let to = self.kernel.text_offset;
                    let base = load.wrapping_sub(to);
                    let ok = load >= to
                        && is_aligned(base, KERNEL_BASE_ALIGN)
                        && is_aligned(to, TEXT_OFFSET_ALIGN);
                    (ok, format!("base {base:#x} + text_offset {to:#x}"))
                }
                None => (false, "no kernel segment".into()),
            },
            Rule::KernelImageSize => match kernel {
                Some(k) => {
                    let pad = self.kernel.segment_padding();
                    let need = pad.saturating_add(self.kernel.image_size);
                    let padding = if pad == 0 {
                        String::new()
                    } else {
                        format!(" after {pad:#x} bytes of padding")
                    };
                    (
                        k.memsz >= need && k.memsz >= k.bufsz,
                        format!(
                            "memsz {:#x} for image_size {:#x}{padding}",
                            k.memsz, self.kernel.image_size
                        ),
                    )
                }
                None => (false, "no kernel segment".into()),
            },
            Rule::KernelFootprint => self.kernel_footprint(),
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
                    // The running kernel's end, or the loaded bytes' if the
                    // file is longer than image_size says.
                    let running = self
                        .kernel_load_addr()
                        .and_then(|load| load.checked_add(self.kernel.image_size));
                    let end = running
                        .zip(k.mem.checked_add(k.bufsz))
                        .map(|(a, b)| a.max(b));
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
            Rule::LinearMapReach => self.linear_map_reach(),
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
            Rule::DtbElfcorehdr => {
                let expected = self
                    .segment(SegmentKind::ElfCoreHeader)
                    .map(|h| MemoryRange::with_size(h.mem, h.bufsz));
                let shown = |r: Option<MemoryRange>| r.map_or("none".to_owned(), |r| r.to_string());
                (
                    expected == self.dtb_elfcorehdr,
                    format!(
                        "/chosen {} for ELF core header {}",
                        shown(self.dtb_elfcorehdr),
                        shown(expected)
                    ),
                )
            }
            Rule::DtbReserved => {
                let hit = self.segments.iter().find_map(|s| {
                    let r = s.range();
                    self.dtb_reserved
                        .iter()
                        .find(|m| m.overlaps(&r))
                        .map(|m| (s.kind, *m))
                });
                match hit {
                    Some((kind, m)) => (false, format!("{kind} overlaps the reserved {m}")),
                    None => {
                        let n = self.dtb_reserved.len();
                        let ranges = if n == 1 { "range" } else { "ranges" };
                        (true, format!("{n} reserved {ranges}, none used"))
                    }
                }
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

    /// [`Rule::SegmentsHalfRam`]. The kernel refuses a segment of more than
    /// `totalram_pages() / 2` pages, or more pages in total
    /// (`PAGE_COUNT(memsz) > nr_pages / 2`). Our `memsz` are 64 KiB
    /// multiples, so for every page size P the kernel's limit in bytes is
    /// `P * floor(total / 2P)`, smallest for the largest P: half of
    /// `total_ram` rounded down to 64 KiB.
    fn half_ram(&self) -> (bool, String) {
        let limit = align_down(self.total_ram / 2, SEGMENT_ALIGN);
        let total = self
            .segments
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.memsz));
        let (ok, detail) = self.offenders(|s| s.memsz > limit, "");
        let budget = format!(
            "at most {} (half of {} RAM, 64 KiB pages)",
            human_size(limit),
            human_size(self.total_ram)
        );
        if !ok {
            return (false, format!("{detail}: each {budget}"));
        }
        (
            total <= limit,
            format!("{} in all, {budget}", human_size(total)),
        )
    }

    /// [`Rule::CrashControlPages`]: replays `kimage_alloc_crash_control_pages`
    /// (kernel/kexec_core.c) for [`CRASH_CONTROL_PAGES`] pages of 64 KiB:
    /// from the start of the crash region (`crashk_res`, the highest range of
    /// `memory` for a crash load), the first aligned page that overlaps no
    /// segment, then the next one above it.
    fn crash_control_pages(&self) -> (bool, String) {
        if self.mode == LoadMode::Normal {
            return (
                true,
                "normal load: control pages come from any free RAM".into(),
            );
        }
        let Some(region) = self.memory.iter().max_by_key(|r| r.start) else {
            return (false, "no crash region".into());
        };
        let mut found = Vec::new();
        let mut cursor = region.start;
        while (found.len() as u64) < CRASH_CONTROL_PAGES {
            let Some(page) = align_up(cursor, SEGMENT_ALIGN)
                .map(|start| MemoryRange::with_size(start, SEGMENT_ALIGN))
                .filter(|p| p.size() == SEGMENT_ALIGN && p.end <= region.end)
            else {
                break;
            };
            match self.segments.iter().find(|s| s.range().overlaps(&page)) {
                Some(s) => cursor = s.range().end,
                None => {
                    found.push(page.start);
                    cursor = page.end;
                }
            }
        }
        let at: Vec<String> = found.iter().map(|a| format!("{a:#x}")).collect();
        if found.len() as u64 == CRASH_CONTROL_PAGES {
            (true, format!("free at {}", at.join(", ")))
        } else {
            (
                false,
                format!(
                    "crash region {region} has room for {} of {CRASH_CONTROL_PAGES} 64 KiB \
                     control pages outside the segments: the kernel would refuse with ENOMEM",
                    found.len()
                ),
            )
        }
    }

    /// The lowest kernel segment start (2 MiB aligned base + `text_offset`,
    /// less the padding) in `memory`, computed directly (the kernel is placed
    /// first, so only RAM limits it). Before 3.17 the memory from the base
    /// up must be RAM too ([`super::KernelFacts::footprint`]).
    fn lowest_kernel_base(&self, memsz: u64) -> Option<u64> {
        let seg = self.kernel.text_offset - self.kernel.segment_padding();
        let from = if self.kernel.uses_memory_below_image {
            0
        } else {
            seg
        };
        self.memory.iter().find_map(|r| {
            let mut base = align_down(r.start.saturating_sub(from), KERNEL_BASE_ALIGN);
            while base.checked_add(from)? < r.start {
                base = base.checked_add(KERNEL_BASE_ALIGN)?;
            }
            let start = base.checked_add(seg)?;
            let end = start.checked_add(memsz)?;
            (end <= r.end && end <= PHYS_ADDR_LIMIT_48).then_some(start)
        })
    }

    /// [`Rule::KernelFootprint`]: the kernel's footprint lies in `memory`
    /// and no other segment enters it. For a kernel that states `image_size`
    /// the kernel segment covers it and `segment-overlap` already implies
    /// this; before 3.17 the footprint reaches down to the 2 MiB base, where
    /// the kernel writes its first page tables, and past the file by
    /// [`crate::image::LEGACY_IMAGE_ROOM`].
    fn kernel_footprint(&self) -> (bool, String) {
        let Some(index) = self
            .segments
            .iter()
            .position(|s| s.kind == SegmentKind::Kernel)
        else {
            return (false, "no kernel segment".into());
        };
        let Some(load) = self.kernel_load_addr() else {
            return (false, "kernel segment wraps".into());
        };
        let footprint = self.kernel.footprint(load);
        let size = human_size(footprint.size());
        if !self.memory.iter().any(|m| m.contains_range(&footprint)) {
            let place = match self.mode {
                LoadMode::Normal => "usable RAM",
                LoadMode::Crash => "the crash region",
            };
            return (false, format!("{footprint} ({size}) is not inside {place}"));
        }
        let inside: Vec<_> = self
            .segments
            .iter()
            .enumerate()
            .filter(|&(i, s)| i != index && s.range().overlaps(&footprint))
            .map(|(_, s)| s.kind.name())
            .collect();
        if inside.is_empty() {
            (true, format!("{footprint} ({size}) holds only the kernel"))
        } else {
            (
                false,
                format!("{} inside {footprint} ({size})", inside.join(", ")),
            )
        }
    }

    /// [`Rule::LinearMapReach`]: a kernel with flags bit 3 clear reaches no
    /// memory below its 2 MiB base, and (before v4.2) finds the device tree
    /// only in one 2 MiB block within 512 MiB above it.
    fn linear_map_reach(&self) -> (bool, String) {
        if self.kernel.place_anywhere {
            return (true, "flags bit 3 set: the kernel maps all of RAM".into());
        }
        let Some(load) = self.kernel_load_addr() else {
            return (false, "no kernel segment".into());
        };
        let base = load.saturating_sub(self.kernel.text_offset);
        let (ok, detail) = self.offenders(
            |s| matches!(s.kind, SegmentKind::Initrd | SegmentKind::Dtb) && s.mem < base,
            "",
        );
        if !ok {
            return (false, format!("{detail}: below the base {base:#x}"));
        }
        let Some(dtb) = self.segment(SegmentKind::Dtb) else {
            return (false, "no dtb segment".into());
        };
        let block = align_down(dtb.mem, OLD_KERNEL_DTB_BLOCK);
        let in_block = dtb
            .mem
            .checked_add(dtb.bufsz)
            .is_some_and(|end| end - block <= OLD_KERNEL_DTB_BLOCK);
        // A block below the base (only if the base is not 2 MiB aligned,
        // which kernel-alignment refuses) is as unreachable as one too high.
        let above = block.checked_sub(base);
        let ok = in_block && above.is_some_and(|a| a < OLD_KERNEL_DTB_REACH);
        let distance = above.map_or_else(|| "below".to_owned(), |a| human_size(a) + " above");
        (
            ok,
            format!(
                "DTB {} in the 2 MiB block at {block:#x}, {distance} the base {base:#x}",
                MemoryRange::with_size(dtb.mem, dtb.bufsz),
            ),
        )
    }
}

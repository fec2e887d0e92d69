//! Every rule of `LoadPlan::check` shown failing: a valid plan, written out
//! field by field, is tampered once per rule so that exactly that rule fails
//! and every other still passes. A rule that could never fail would prove
//! nothing; a new rule without a case here fails `every_rule_has_a_case`.
//! The other way round, plans exactly at each rule's limit must pass
//! (`limits_pass`), so a rule cannot be stricter than booting.rst either.

use kexec_core::iomem::MemoryRange;
use kexec_core::plan::{KernelFacts, LoadMode, LoadPlan, Rule, Segment, SegmentKind};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn segment(kind: SegmentKind, mem: u64, bufsz: u64, memsz: u64) -> Segment {
    Segment {
        kind,
        source: kind.name().to_owned(),
        mem,
        bufsz,
        memsz,
        digests: Some(vec![[0; 32]]),
    }
}

/// 1 GiB of RAM at 0x4000_0000 and, with a gap after each, the kernel at the
/// base of RAM (3 MiB file, `image_size` 8 MiB, placed lowest), an initrd,
/// the DTB and the purgatory, entered 0x100 into it.
fn valid() -> LoadPlan {
    LoadPlan {
        mode: LoadMode::Normal,
        segments: vec![
            segment(SegmentKind::Kernel, 0x4000_0000, 3 * MIB, 8 * MIB),
            segment(SegmentKind::Initrd, 0x4100_0000, 0x1_2345, 0x2_0000),
            segment(SegmentKind::Dtb, 0x4200_0000, 0x1000, 0x1_0000),
            segment(SegmentKind::Purgatory, 0x4300_0000, 0x4000, 0x3_0000),
        ],
        entry: 0x4300_0100,
        dtb_addr: 0x4200_0000,
        kernel: KernelFacts {
            text_offset: 0,
            image_size: 8 * MIB,
            place_anywhere: false,
            uses_memory_below_image: false,
        },
        memory: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
        dtb_initrd: Some(MemoryRange::with_size(0x4100_0000, 0x1_2345)),
        dtb_elfcorehdr: None,
        dtb_reserved: Vec::new(),
        total_ram: GIB,
    }
}

/// The crash region of [`to_crash`]: 64 MiB from the kernel's base.
const CRASH_REGION: MemoryRange = MemoryRange::new(0x4000_0000, 0x4400_0000);

/// Makes `valid()` a crash load: memory is the 64 MiB crash region, an ELF
/// core header follows the purgatory and `/chosen` names it.
fn to_crash(p: &mut LoadPlan) {
    p.mode = LoadMode::Crash;
    p.memory = vec![CRASH_REGION];
    push_extra(p, 0x4303_0000, 0x1f8, 0x1_0000);
    p.dtb_elfcorehdr = Some(MemoryRange::with_size(0x4303_0000, 0x1f8));
}

/// Grows every segment of a crash plan up to the next one, and the last to
/// `end`: only the space from `end` to the end of the region stays free.
fn fill_crash_region_up_to(p: &mut LoadPlan, end: u64) {
    let mut starts: Vec<u64> = p.segments.iter().map(|s| s.mem).collect();
    starts.sort_unstable();
    for s in &mut p.segments {
        let next = starts.iter().copied().find(|&m| m > s.mem).unwrap_or(end);
        s.memsz = next - s.mem;
    }
}

/// Adds a segment that only counts, overlaps or lies somewhere: an ELF core
/// header (the kind any number of which may be loaded), with `/chosen`
/// naming the first one so that `dtb-elfcorehdr` holds.
fn push_extra(p: &mut LoadPlan, mem: u64, bufsz: u64, memsz: u64) {
    p.segments
        .push(segment(SegmentKind::ElfCoreHeader, mem, bufsz, memsz));
    if p.dtb_elfcorehdr.is_none() {
        p.dtb_elfcorehdr = Some(MemoryRange::with_size(mem, bufsz));
    }
}

fn seg(plan: &mut LoadPlan, kind: SegmentKind) -> &mut Segment {
    plan.segments.iter_mut().find(|s| s.kind == kind).unwrap()
}

/// Makes `valid()` a pre-3.17 kernel (`image_size` 0 in its header): its
/// Image at 0x80000 above the same 2 MiB base, whose first 512 KiB the
/// kernel uses too (its first page tables).
fn to_legacy(p: &mut LoadPlan) {
    p.kernel.text_offset = 0x8_0000;
    p.kernel.uses_memory_below_image = true;
    seg(p, SegmentKind::Kernel).mem = 0x4008_0000;
}

/// Move the device tree to `mem`, and x0 with it.
fn move_dtb(plan: &mut LoadPlan, mem: u64) {
    seg(plan, SegmentKind::Dtb).mem = mem;
    plan.dtb_addr = mem;
}

/// Move the initrd to `mem`, and `/chosen` with it.
fn move_initrd(plan: &mut LoadPlan, mem: u64) {
    let initrd = seg(plan, SegmentKind::Initrd);
    initrd.mem = mem;
    let len = initrd.bufsz;
    plan.dtb_initrd = Some(MemoryRange::with_size(mem, len));
}

/// A rule, what the tampering does, and the tampering.
type Case = (Rule, &'static str, fn(&mut LoadPlan));

/// One tampering per rule (several where the rule has several ways to fail).
fn cases() -> Vec<Case> {
    vec![
        (Rule::SegmentCount, "17 segments", |p| {
            for i in 0..13 {
                let mem = 0x5000_0000 + i * 0x1_0000;
                push_extra(p, mem, 0x100, 0x1_0000);
            }
        }),
        (Rule::SegmentAlignment, "memsz not 64 KiB aligned", |p| {
            seg(p, SegmentKind::Purgatory).memsz += 0x1000;
        }),
        (Rule::SegmentAlignment, "mem not 64 KiB aligned", |p| {
            push_extra(p, 0x5000_1000, 0x100, 0x1_0000);
        }),
        (Rule::SegmentSizes, "bufsz > memsz", |p| {
            let purgatory = seg(p, SegmentKind::Purgatory);
            purgatory.bufsz = purgatory.memsz + 1;
        }),
        (Rule::SegmentSizes, "memsz 0", |p| {
            push_extra(p, 0x5000_0000, 0, 0);
        }),
        (Rule::SegmentOverlap, "DTB inside the initrd's memsz", |p| {
            seg(p, SegmentKind::Dtb).mem = 0x4101_0000;
            p.dtb_addr = 0x4101_0000;
        }),
        (
            Rule::SegmentsInMemory,
            "purgatory past the end of RAM",
            |p| {
                p.memory = vec![MemoryRange::new(0x4000_0000, 0x4300_0000)];
            },
        ),
        (Rule::SegmentsInMemory, "a segment that wraps", |p| {
            push_extra(p, 0xffff_ffff_ffff_0000, 0x100, 0x2_0000);
            p.memory
                .push(MemoryRange::new(0xffff_ffff_fff0_0000, u64::MAX));
        }),
        (Rule::SegmentsHalfRam, "the kernel over half of RAM", |p| {
            // Half of 15 MiB is 7.5 MiB; the kernel reserves 8 MiB.
            p.total_ram = 15 * MIB;
        }),
        (
            Rule::SegmentsHalfRam,
            "the kernel exactly half of RAM, together over it",
            |p| {
                p.total_ram = 16 * MIB;
            },
        ),
        (
            Rule::SegmentsHalfRam,
            "each under half of RAM, together over it",
            |p| {
                // 8 MiB + 128 KiB + 64 KiB + 192 KiB = 8.375 MiB > 8.25 MiB.
                p.total_ram = 16 * MIB + MIB / 2;
            },
        ),
        (
            Rule::CrashControlPages,
            "segments fill the crash region",
            |p| {
                to_crash(p);
                fill_crash_region_up_to(p, CRASH_REGION.end);
            },
        ),
        (
            Rule::CrashControlPages,
            "one free 64 KiB page in the crash region",
            |p| {
                to_crash(p);
                fill_crash_region_up_to(p, CRASH_REGION.end - 0x1_0000);
            },
        ),
        (
            Rule::CrashControlPages,
            "free pages only in a lower range, not the crash region",
            |p| {
                to_crash(p);
                fill_crash_region_up_to(p, CRASH_REGION.end);
                // kimage_alloc_crash_control_pages looks in crashk_res only.
                p.memory
                    .insert(0, MemoryRange::new(0x3000_0000, 0x3040_0000));
            },
        ),
        (Rule::KernelAlignment, "base 64 KiB off 2 MiB", |p| {
            p.kernel.place_anywhere = true;
            seg(p, SegmentKind::Kernel).mem = 0x4001_0000;
        }),
        (
            Rule::KernelAlignment,
            "text_offset below the base of RAM",
            |p| {
                p.kernel.place_anywhere = true;
                p.kernel.text_offset = 0x8_0000;
                p.memory = vec![MemoryRange::new(0, 0x8000_0000)];
                seg(p, SegmentKind::Kernel).mem = 0x1_0000;
            },
        ),
        (
            Rule::KernelAlignment,
            "text_offset not a multiple of 4 KiB",
            |p| {
                // Base 0x4000_0000 and the segment 64 KiB aligned below the
                // Image: only the Image's own alignment is wrong.
                p.kernel.text_offset = 0x8_0010;
                let kernel = seg(p, SegmentKind::Kernel);
                kernel.mem = 0x4008_0000;
                kernel.memsz += 0x1_0000;
            },
        ),
        (Rule::KernelImageSize, "memsz below image_size", |p| {
            seg(p, SegmentKind::Kernel).memsz = 4 * MIB;
        }),
        (
            Rule::KernelImageSize,
            "memsz covers image_size but not the padding before the Image",
            |p| {
                p.kernel.text_offset = 0x8_1000;
                seg(p, SegmentKind::Kernel).mem = 0x4008_0000;
            },
        ),
        (
            Rule::KernelFootprint,
            "pre-3.17: the DTB between the 2 MiB base and the Image",
            |p| {
                to_legacy(p);
                move_dtb(p, 0x4000_0000);
            },
        ),
        (
            Rule::KernelFootprint,
            "pre-3.17: the 2 MiB base below RAM",
            |p| {
                to_legacy(p);
                // Anywhere, so that kernel-lowest does not ask for 0x4028_0000.
                p.kernel.place_anywhere = true;
                p.memory = vec![MemoryRange::new(0x4004_0000, 0x8000_0000)];
            },
        ),
        (Rule::KernelLowest, "2 MiB above the lowest fit", |p| {
            seg(p, SegmentKind::Kernel).mem = 0x4020_0000;
        }),
        (Rule::Kernel48Bit, "image_size crosses 2^48", |p| {
            let top = 1u64 << 48;
            p.memory
                .push(MemoryRange::new(top - 16 * MIB, top + 16 * MIB));
            p.kernel.place_anywhere = true;
            seg(p, SegmentKind::Kernel).mem = top - 4 * MIB;
            move_initrd(p, top + 8 * MIB);
        }),
        // x0 must point at the DTB segment; a misaligned segment would also
        // fail segment-alignment (64 KiB implies 8 bytes).
        (
            Rule::DtbAlignment,
            "x0 is not the DTB segment's address",
            |p| {
                p.dtb_addr = 0x4200_0008;
            },
        ),
        (Rule::DtbSize, "2 MiB + 1 byte", |p| {
            // No 2 MiB block holds it: a kernel with flags bit 3 clear would
            // fail linear-map-reach too.
            p.kernel.place_anywhere = true;
            let dtb = seg(p, SegmentKind::Dtb);
            dtb.bufsz = 2 * MIB + 1;
            dtb.memsz = 2 * MIB + 0x1_0000;
        }),
        (
            Rule::LinearMapReach,
            "flags bit 3 clear: the initrd below the kernel's base",
            |p| {
                // 4 MiB of RAM below the kernel: too small for it (so the
                // kernel is still lowest), room enough for the initrd.
                p.memory
                    .insert(0, MemoryRange::new(0x3000_0000, 0x3040_0000));
                move_initrd(p, 0x3000_0000);
            },
        ),
        (
            Rule::LinearMapReach,
            "flags bit 3 clear: the DTB 512 MiB above the base",
            |p| move_dtb(p, 0x6000_0000),
        ),
        (
            Rule::LinearMapReach,
            "flags bit 3 clear: the DTB across a 2 MiB boundary",
            |p| {
                move_dtb(p, 0x421f_0000);
                let dtb = seg(p, SegmentKind::Dtb);
                dtb.bufsz = 0x1_0001;
                dtb.memsz = 0x2_0000;
            },
        ),
        (Rule::InitrdWindow, "initrd 63 GiB above the kernel", |p| {
            p.memory.push(MemoryRange::new(64 * GIB, 65 * GIB));
            move_initrd(p, 64 * GIB);
        }),
        (Rule::DtbInitrd, "/chosen names no initrd", |p| {
            p.dtb_initrd = None;
        }),
        (Rule::DtbInitrd, "/chosen names the initrd's memsz", |p| {
            p.dtb_initrd = Some(MemoryRange::with_size(0x4100_0000, 0x2_0000));
        }),
        (
            Rule::DtbElfcorehdr,
            "/chosen names no ELF core header",
            |p| {
                to_crash(p);
                p.dtb_elfcorehdr = None;
            },
        ),
        (
            Rule::DtbElfcorehdr,
            "/chosen names the header's memsz",
            |p| {
                to_crash(p);
                p.dtb_elfcorehdr = Some(MemoryRange::with_size(0x4303_0000, 0x1_0000));
            },
        ),
        (Rule::DtbElfcorehdr, "/chosen names another address", |p| {
            to_crash(p);
            p.dtb_elfcorehdr = Some(MemoryRange::with_size(0x4304_0000, 0x1f8));
        }),
        (
            Rule::DtbElfcorehdr,
            "a normal load with a stale linux,elfcorehdr",
            |p| {
                p.dtb_elfcorehdr = Some(MemoryRange::with_size(0x7000_0000, 0x1f8));
            },
        ),
        (
            Rule::DtbReserved,
            "the initrd over the EFI memory map",
            |p| {
                // 0x6c0 bytes of EFI memory map in the initrd's reserved tail.
                p.dtb_reserved = vec![MemoryRange::with_size(0x4101_f940, 0x6c0)];
            },
        ),
        (
            Rule::DtbReserved,
            "the kernel's first byte memreserved",
            |p| {
                p.dtb_reserved = vec![
                    MemoryRange::with_size(0x3000_0000, 0x1000),
                    MemoryRange::with_size(0x3fff_ffff, 2),
                ];
            },
        ),
        (Rule::EntryInSegment, "entry in the initrd", |p| {
            p.entry = 0x4100_0000;
        }),
        (
            Rule::EntryInSegment,
            "entry past the purgatory's bytes",
            |p| {
                p.entry = 0x4300_4000;
            },
        ),
        (Rule::DtbHandedOver, "no purgatory", |p| {
            p.segments.retain(|s| s.kind != SegmentKind::Purgatory);
            p.entry = 0x4000_0000;
        }),
    ]
}

/// A change to a valid plan.
type Edit = fn(&mut LoadPlan);

/// Plans exactly at a rule's limit, each still valid.
fn limits() -> Vec<(&'static str, Edit)> {
    vec![
        ("reservations touching segments on both sides", |p| {
            p.dtb_reserved = vec![
                MemoryRange::new(0x3000_0000, 0x4000_0000),
                MemoryRange::new(0x4102_0000, 0x4200_0000),
                MemoryRange::new(0x4201_0000, 0x4300_0000),
            ];
        }),
        ("a segment with bufsz == memsz", |p| {
            seg(p, SegmentKind::Dtb).bufsz = 0x1_0000;
        }),
        ("a DTB of exactly 2 MiB", |p| {
            let dtb = seg(p, SegmentKind::Dtb);
            dtb.bufsz = 2 * MIB;
            dtb.memsz = 2 * MIB;
        }),
        ("segments touching end to start", |p| {
            seg(p, SegmentKind::Dtb).mem = 0x4102_0000;
            p.dtb_addr = 0x4102_0000;
        }),
        ("RAM ending exactly at the purgatory's end", |p| {
            p.memory = vec![MemoryRange::new(0x4000_0000, 0x4303_0000)];
        }),
        (
            "text_offset above a RAM start that is not 2 MiB aligned",
            |p| {
                // Lowest base: 0x4020_0000, as 0x4000_0000 + 0x8_0000 is below RAM.
                p.memory = vec![MemoryRange::new(0x4010_0000, 0x8000_0000)];
                p.kernel.text_offset = 0x8_0000;
                seg(p, SegmentKind::Kernel).mem = 0x4028_0000;
            },
        ),
        (
            "text_offset putting the Image exactly at an unaligned RAM start",
            |p| {
                // Base 0x4000_0000 (below RAM) + 1 MiB = 0x4010_0000, RAM's start.
                p.memory = vec![MemoryRange::new(0x4010_0000, 0x8000_0000)];
                p.kernel.text_offset = 0x10_0000;
                seg(p, SegmentKind::Kernel).mem = 0x4010_0000;
            },
        ),
        ("a pre-3.17 kernel", to_legacy),
        (
            "a pre-3.17 kernel above a RAM start that leaves no room for base 0x40000000",
            |p| {
                to_legacy(p);
                // The Image would fit at 0x4008_0000; its page tables below
                // would not: the lowest is base 0x4020_0000.
                p.memory = vec![MemoryRange::new(0x4004_0000, 0x8000_0000)];
                seg(p, SegmentKind::Kernel).mem = 0x4028_0000;
            },
        ),
        ("a pre-3.17 crash kernel", |p| {
            to_crash(p);
            to_legacy(p);
        }),
        (
            "a pre-3.17 kernel whose footprint ends where the initrd starts",
            |p| {
                to_legacy(p);
                p.kernel.image_size = 0x4100_0000 - 0x4008_0000;
                seg(p, SegmentKind::Kernel).memsz = p.kernel.image_size;
            },
        ),
        (
            "text_offset 0x80000 (v3.17+): the DTB at the 2 MiB base",
            |p| {
                p.kernel.text_offset = 0x8_0000;
                seg(p, SegmentKind::Kernel).mem = 0x4008_0000;
                move_dtb(p, 0x4000_0000);
            },
        ),
        (
            "a randomised text_offset 0x81000: 4 KiB of zeros before the Image",
            |p| {
                p.kernel.text_offset = 0x8_1000;
                let kernel = seg(p, SegmentKind::Kernel);
                kernel.mem = 0x4008_0000;
                kernel.bufsz += 0x1000;
                kernel.memsz += 0x1_0000;
            },
        ),
        (
            "flags bit 3 clear: the DTB ending at a 2 MiB boundary",
            |p| {
                move_dtb(p, 0x421f_0000);
                seg(p, SegmentKind::Dtb).bufsz = 0x1_0000;
            },
        ),
        (
            "flags bit 3 clear: the DTB in the last 2 MiB block of its reach",
            |p| move_dtb(p, 0x5fe0_0000),
        ),
        ("flags bit 3 set: the initrd below the kernel's base", |p| {
            p.kernel.place_anywhere = true;
            p.memory
                .insert(0, MemoryRange::new(0x3000_0000, 0x3040_0000));
            move_initrd(p, 0x3000_0000);
        }),
        ("a first RAM range too small for the kernel", |p| {
            p.memory
                .insert(0, MemoryRange::new(0x3000_0000, 0x3070_0000));
        }),
        ("image_size ending exactly at 2^48", |p| {
            let top = 1u64 << 48;
            p.memory
                .push(MemoryRange::new(top - 16 * MIB, top + 16 * MIB));
            p.kernel.place_anywhere = true;
            seg(p, SegmentKind::Kernel).mem = top - 8 * MIB;
            move_initrd(p, top + 8 * MIB);
        }),
        ("kernel and initrd spanning exactly 32 GiB", |p| {
            let end = 0x4000_0000 + 32 * GIB;
            p.memory.push(MemoryRange::new(end - GIB, end));
            move_initrd(p, end - 0x2_0000);
        }),
        ("entry at the purgatory's last loaded byte", |p| {
            p.entry = 0x4300_3fff;
        }),
        ("entry in the kernel (no purgatory checks needed)", |p| {
            p.entry = 0x4000_0000;
        }),
        ("a crash load", to_crash),
        ("a crash load leaving exactly two free 64 KiB pages", |p| {
            to_crash(p);
            fill_crash_region_up_to(p, CRASH_REGION.end - 0x2_0000);
        }),
        ("a crash load with its two free pages in two holes", |p| {
            to_crash(p);
            fill_crash_region_up_to(p, CRASH_REGION.end - 0x1_0000);
            // Shrink the kernel by 64 KiB: still >= image_size? No: the
            // initrd instead, whose memsz is free to shrink.
            seg(p, SegmentKind::Initrd).memsz -= 0x1_0000;
        }),
        ("segments of exactly half of RAM in all", |p| {
            // 8 MiB + 128 KiB + 64 KiB + 192 KiB = 8.375 MiB.
            p.total_ram = 2 * (8 * MIB + 0x6_0000);
        }),
        (
            "RAM one byte short of twice the segments, rounded to 64 KiB",
            |p| {
                p.total_ram = 2 * (8 * MIB + 0x6_0000) + 1;
            },
        ),
        ("16 segments", |p| {
            for i in 0..12 {
                let mem = 0x5000_0000 + i * 0x1_0000;
                push_extra(p, mem, 0x100, 0x1_0000);
            }
        }),
    ]
}

fn failed(plan: &LoadPlan) -> Vec<Rule> {
    plan.check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule)
        .collect()
}

#[test]
fn the_untampered_plan_passes_every_rule() {
    assert_eq!(failed(&valid()), [], "{:#?}", valid().check());
    assert!(valid().is_valid());
}

#[test]
fn each_tampering_fails_exactly_its_rule() {
    for (rule, what, tamper) in cases() {
        let mut plan = valid();
        tamper(&mut plan);
        assert_eq!(failed(&plan), [rule], "{what}: {:#?}", plan.check());
        assert!(!plan.is_valid(), "{what}");
    }
}

/// The failing rule says where: the detail names the offenders, lower
/// address first.
#[test]
fn failures_name_the_offender() {
    let detail = |rule: Rule, tamper: fn(&mut LoadPlan)| {
        let mut plan = valid();
        tamper(&mut plan);
        let check = plan.check().into_iter().find(|c| c.rule == rule).unwrap();
        assert!(!check.passed);
        check.detail
    };
    let cases = cases();
    let find = |what: &str| cases.iter().find(|c| c.1 == what).unwrap();
    let (rule, _, tamper) = *find("DTB inside the initrd's memsz");
    assert_eq!(detail(rule, tamper), "initrd overlaps dtb");
    let (rule, _, tamper) = *find("memsz not 64 KiB aligned");
    assert_eq!(detail(rule, tamper), "violated by purgatory");
    let (rule, _, tamper) = *find("pre-3.17: the DTB between the 2 MiB base and the Image");
    assert_eq!(
        detail(rule, tamper),
        "dtb inside 0x40000000-0x4087ffff (8.5 MiB)"
    );
    let (rule, _, tamper) = *find("flags bit 3 clear: the initrd below the kernel's base");
    assert_eq!(
        detail(rule, tamper),
        "violated by initrd: below the base 0x40000000"
    );
    let (rule, _, tamper) = *find("flags bit 3 clear: the DTB 512 MiB above the base");
    assert_eq!(
        detail(rule, tamper),
        "DTB 0x60000000-0x60000fff in the 2 MiB block at 0x60000000, 512 MiB above the base \
         0x40000000"
    );
    let (rule, _, tamper) = *find("memsz below image_size");
    assert_eq!(
        detail(rule, tamper),
        "memsz 0x400000 for image_size 0x800000"
    );
    let (rule, _, tamper) = *find("memsz covers image_size but not the padding before the Image");
    assert_eq!(
        detail(rule, tamper),
        "memsz 0x800000 for image_size 0x800000 after 0x1000 bytes of padding"
    );
    let (rule, _, tamper) = *find("the initrd over the EFI memory map");
    assert_eq!(
        detail(rule, tamper),
        "initrd overlaps the reserved 0x4101f940-0x4101ffff"
    );
    let (rule, _, tamper) = *find("17 segments");
    assert_eq!(detail(rule, tamper), "17 of 16");
    let (rule, _, tamper) = *find("entry in the initrd");
    assert_eq!(detail(rule, tamper), "0x41000000 in initrd");
    let (rule, _, tamper) = *find("the kernel over half of RAM");
    assert_eq!(
        detail(rule, tamper),
        "violated by kernel: each at most 7.5 MiB (half of 15 MiB RAM, 64 KiB pages)"
    );
    // A segment of exactly half is allowed; only the total is over.
    let (rule, _, tamper) = *find("the kernel exactly half of RAM, together over it");
    assert_eq!(
        detail(rule, tamper),
        "8.4 MiB in all, at most 8 MiB (half of 16 MiB RAM, 64 KiB pages)"
    );
}

#[test]
fn limits_pass() {
    for (what, adjust) in limits() {
        let mut plan = valid();
        adjust(&mut plan);
        assert_eq!(failed(&plan), [], "{what}: {:#?}", plan.check());
    }
}

/// The rule ids are the `rule` values of the JSON schema: the table in
/// docs/plan-json.md lists each with its description and source.
#[test]
fn ids_descriptions_and_sources_are_the_documented_ones() {
    let doc = include_str!("../../../docs/plan-json.md");
    let mut descriptions = Vec::new();
    for rule in Rule::ALL {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` ", rule.id())))
            .unwrap_or_else(|| panic!("docs/plan-json.md has no row for `{}`", rule.id()));
        assert!(rule.description().len() > 15, "{rule:?}");
        let source = rule.source();
        assert!(
            ["Documentation/", "include/", "kernel/"]
                .iter()
                .any(|dir| source.contains(dir)),
            "{rule:?}: {source}"
        );
        let named = source
            .split("; ")
            .filter_map(|part| part.split(' ').next()?.rsplit('/').next())
            .any(|file| row.contains(file));
        assert!(named, "the documented source differs: {row} vs {source}");
        descriptions.push(rule.description());
    }
    descriptions.sort_unstable();
    descriptions.dedup();
    assert_eq!(
        descriptions.len(),
        Rule::ALL.len(),
        "descriptions must differ"
    );
}

#[test]
fn every_rule_has_a_case() {
    let covered: Vec<Rule> = cases().into_iter().map(|c| c.0).collect();
    for rule in Rule::ALL {
        assert!(covered.contains(&rule), "no tampered plan fails {rule:?}");
    }
}

/// A passing `dtb-reserved` counts its ranges (the dry run prints it).
#[test]
fn dtb_reserved_counts_the_ranges_it_kept_clear() {
    let range = |at: u64| MemoryRange::new(at, at + 0x1000);
    for (ranges, want) in [
        (vec![range(0x3000_0000)], "1 reserved range, none used"),
        (
            vec![range(0x3000_0000), range(0x3100_0000)],
            "2 reserved ranges, none used",
        ),
        (Vec::new(), "0 reserved ranges, none used"),
    ] {
        let mut plan = valid();
        plan.dtb_reserved = ranges;
        let checks = plan.check();
        let check = checks.iter().find(|c| c.rule == Rule::DtbReserved).unwrap();
        assert!(check.passed, "{}", check.detail);
        assert_eq!(check.detail, want);
    }
}

//! Properties of the planner: for random memory maps, sizes and Image header
//! values (pre-3.17 headers, `text_offset`s that are not 64 KiB aligned,
//! flags bit 3 either way), every plan it produces passes `LoadPlan::check`
//! and keeps every other segment out of the kernel's footprint, the same
//! inputs give the same plan, and when it refuses, it says why — and a
//! brute-force search agrees for the kernel.

use dtoolkit::model::DeviceTree;
use kexec_core::fdt::{self, edit_chosen, ChosenEdit};
use kexec_core::image::Arm64ImageHeader;
use kexec_core::iomem::MemoryRange;
use kexec_core::layout::{align_down, align_up, SZ_1G, SZ_2M, SZ_4K, SZ_64K};
use kexec_core::plan::{Error, KernelFacts, LoadMode, LoadPlan, Planner, SegmentKind};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    ram: Vec<MemoryRange>,
    facts: KernelFacts,
    kernel_len: usize,
    initrd_len: Option<usize>,
    crash: bool,
    /// Length of `bootargs`: up to 3 MiB, so the DTB is sometimes over the
    /// 2 MiB limit and often too large for the space left.
    bootargs_len: usize,
    /// Memory the purgatory occupies once running (its bss, tables, stack).
    purgatory_mem: u64,
}

/// 1–4 disjoint ranges, 4 KiB granular, with gaps of up to 40 GiB so the
/// 32 GiB window matters, sizes up to 48 MiB so space runs out often.
fn ram() -> impl Strategy<Value = Vec<MemoryRange>> {
    prop::collection::vec((0u64..(40 * SZ_1G / 0x1000), 1u64..(48 << 8)), 1..5).prop_map(|parts| {
        let mut at = 0x4000_0000u64;
        let mut out = Vec::new();
        for (gap, pages) in parts {
            let start = at + gap * 0x1000;
            let end = start + pages * 0x1000;
            out.push(MemoryRange::new(start, end));
            at = end;
        }
        out
    })
}

/// The header's `text_offset`: 0 (v5.8+), 0x80000 (the default before),
/// or a random multiple of 4 KiB below 2 MiB
/// (`CONFIG_ARM64_RANDOMIZE_TEXT_OFFSET`), mostly not 64 KiB aligned.
fn text_offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0u64),
        2 => Just(0x8_0000u64),
        3 => (0u64..512).prop_map(|n| n * SZ_4K),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        ram(),
        text_offset(),
        // 0: a pre-3.17 header (image_size 0), one case in five.
        prop_oneof![1 => Just(0u64), 4 => 1u64..(24 << 8)],
        any::<bool>(),
        1usize..64,
        prop::option::of(1usize..(16 << 20)),
        any::<bool>(),
        prop_oneof![6 => 1usize..256, 6 => (1usize..32).prop_map(|n| n << 16), 1 => (2usize << 20)..(3 << 20)],
        prop_oneof![2 => Just(0x3_0000u64), 1 => (1u64..256).prop_map(|n| n * SZ_64K)],
    )
        .prop_map(
            |(
                ram,
                text_offset,
                pages,
                place_anywhere,
                kernel_kib,
                initrd_len,
                crash,
                bootargs_len,
                purgatory_mem,
            )| {
                let kernel_len = kernel_kib * 1024;
                let image_size = if pages == 0 {
                    0
                } else {
                    (pages * 0x1000).max(kernel_len as u64)
                };
                // Flags: LE, 4 KiB pages, bit 3 as drawn (pre-3.17: all 0).
                let flags = if pages == 0 {
                    0
                } else {
                    0b0010 | u64::from(place_anywhere) << 3
                };
                let header = test_assets::synthetic::arm64_image_header(text_offset, image_size, flags);
                let header = Arm64ImageHeader::parse(&header).unwrap();
                Case {
                    ram,
                    facts: KernelFacts::from_header(&header, kernel_len as u64),
                    kernel_len,
                    initrd_len,
                    crash,
                    bootargs_len,
                    purgatory_mem,
                }
            },
        )
}

fn plan(case: &Case) -> Result<LoadPlan, Error> {
    let mode = if case.crash {
        LoadMode::Crash
    } else {
        LoadMode::Normal
    };
    let memory = if case.crash {
        vec![*case.ram.iter().max_by_key(|r| r.start).unwrap()]
    } else {
        case.ram.clone()
    };
    let mut p = Planner::new(&memory, mode).with_total_ram(machine_ram(case));
    p.place_kernel("Image", &vec![0x5a; case.kernel_len], case.facts)?;
    let initrd = match case.initrd_len {
        Some(n) => Some(p.place_initrd("initrd", &vec![0xa5; n])?),
        None => None,
    };
    let dtb = edit_chosen(
        &DeviceTree::new().to_dtb(),
        &ChosenEdit {
            initrd,
            bootargs: Some(vec![b'b'; case.bootargs_len]),
            ..Default::default()
        },
    )?;
    p.place_dtb("generated", &dtb.dtb)?;
    p.place_purgatory("purgatory", &[0u8; 4096], 0x100, case.purgatory_mem)?;
    p.finish()
}

/// The machine's RAM: every range of the case, also for a crash load.
fn machine_ram(case: &Case) -> u64 {
    case.ram.iter().map(MemoryRange::size).sum()
}

/// The least the segments reserve together: each input rounded up to
/// 64 KiB (the DTB, at least one 64 KiB page, is counted as that).
fn least_memsz(case: &Case) -> u64 {
    let up = |n: u64| align_up(n.max(1), SZ_64K).unwrap();
    up(case.facts.image_size.max(case.kernel_len as u64))
        + case.initrd_len.map_or(0, |n| up(n as u64))
        + up(case.purgatory_mem.max(4096))
        + SZ_64K
}

/// Whether any 2 MiB aligned base fits the kernel, by trying them all (in
/// 2 MiB steps over each range): its segment from the 64 KiB boundary at or
/// below the Image, and before 3.17 from the base itself.
fn kernel_fits_somewhere(memory: &[MemoryRange], facts: &KernelFacts, len: usize) -> bool {
    let segment = align_down(facts.text_offset, SZ_64K);
    let padding = facts.text_offset - segment;
    let memsz = align_up(padding + facts.image_size.max(len as u64), SZ_64K).unwrap();
    let from = if facts.uses_memory_below_image {
        0
    } else {
        segment
    };
    memory.iter().any(|r| {
        let mut base = r.start / SZ_2M * SZ_2M;
        while base + segment + memsz <= r.end {
            if base + from >= r.start {
                return true;
            }
            base += SZ_2M;
        }
        false
    })
}

/// What the kernel will use, recomputed from the plan and the case alone:
/// the Image at the kernel segment's 64 KiB boundary plus `text_offset`'s
/// remainder, `image_size` bytes from there, and before 3.17 the 2 MiB base
/// up to it.
fn footprint(plan: &LoadPlan, case: &Case) -> (u64, MemoryRange) {
    let kernel = plan.segment(SegmentKind::Kernel).unwrap();
    let load = kernel.mem + case.facts.text_offset % SZ_64K;
    let base = load - case.facts.text_offset;
    let start = if case.facts.uses_memory_below_image {
        base
    } else {
        load
    };
    (base, MemoryRange::new(start, load + case.facts.image_size))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_passes_check_or_the_refusal_is_explained(case in case()) {
        match plan(&case) {
            Ok(plan) => {
                let failed: Vec<_> = plan.check().into_iter().filter(|c| !c.passed).collect();
                prop_assert!(failed.is_empty(), "rules failed: {failed:?}\nplan: {plan:#?}");
                // Nothing else in the kernel's footprint, which is in memory;
                // with flags bit 3 clear, the initrd and the DTB above the
                // base and the DTB in one 2 MiB block within 512 MiB.
                let (base, used) = footprint(&plan, &case);
                prop_assert_eq!(base % SZ_2M, 0);
                prop_assert!(plan.memory.iter().any(|m| m.contains_range(&used)), "{used}");
                let kernel = plan.segment(SegmentKind::Kernel).unwrap();
                prop_assert_eq!(kernel.bufsz, case.facts.text_offset % SZ_64K + case.kernel_len as u64);
                for s in plan.segments.iter().filter(|s| s.kind != SegmentKind::Kernel) {
                    prop_assert!(!s.range().overlaps(&used), "{} in {used}", s.kind);
                    let read = matches!(s.kind, SegmentKind::Initrd | SegmentKind::Dtb);
                    if read && !case.facts.place_anywhere {
                        prop_assert!(s.mem >= base, "{} below {base:#x}", s.kind);
                    }
                }
                if !case.facts.place_anywhere {
                    let dtb = plan.segment(SegmentKind::Dtb).unwrap();
                    let block = dtb.mem / SZ_2M * SZ_2M;
                    prop_assert!(dtb.mem + dtb.bufsz <= block + SZ_2M);
                    prop_assert!(block - base < 512 << 20);
                }
                prop_assert_eq!(plan.segments.len(), 3 + usize::from(case.initrd_len.is_some()));
                // Deterministic.
                prop_assert_eq!(Ok(plan), self::plan(&case));
            }
            Err(Error::NoSpace { kind, size, region, .. }) => {
                let text = Error::NoSpace { kind, size, region, largest: None }.to_string();
                prop_assert!(text.contains("does not fit"));
                if kind == SegmentKind::Kernel {
                    let memory = if case.crash { vec![*case.ram.iter().max_by_key(|r| r.start).unwrap()] } else { case.ram.clone() };
                    prop_assert!(!kernel_fits_somewhere(&memory, &case.facts, case.kernel_len));
                }
            }
            Err(Error::DtbTooLarge { size }) => {
                prop_assert!(size > 2 << 20 && case.bootargs_len > (2 << 20) - 4096);
            }
            Err(e @ Error::MoreThanHalfOfRam { .. }) => {
                // The DTB may add up to 2 MiB to the least the others need.
                let most = least_memsz(&case) + (2 << 20);
                prop_assert!(2 * most > machine_ram(&case), "{e}");
            }
            Err(e @ Error::NoRoomForControlPages { .. }) => {
                let region = case.ram.iter().max_by_key(|r| r.start).unwrap();
                prop_assert!(case.crash, "{e}");
                prop_assert!(region.size() < least_memsz(&case) + (2 << 20) + 2 * SZ_64K, "{e}");
            }
            Err(Error::Fdt(fdt::Error::TooLarge { size })) => {
                prop_assert!(size > 2 << 20 && case.bootargs_len > (2 << 20) - 4096);
            }
            Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
        }
    }
}

#[test]
fn kernel_oracle_agrees_on_a_tight_fit() {
    let facts = KernelFacts {
        text_offset: 0x8_0000,
        image_size: SZ_2M,
        place_anywhere: false,
        uses_memory_below_image: false,
    };
    // Before 3.17 the base must be RAM too: 0x4020_0000, not 0x4000_0000.
    let old = KernelFacts {
        uses_memory_below_image: true,
        ..facts
    };
    let ram = [MemoryRange::new(0x4010_0000, 0x4060_0000)];
    assert!(kernel_fits_somewhere(&ram, &old, 4096));
    let mut p = Planner::new(&ram, LoadMode::Normal);
    assert_eq!(p.place_kernel("Image", &[0; 4096], old), Ok(0x4028_0000));
    // RAM from the Image's address at base 0x4000_0000: enough for a
    // v3.17+ kernel there, not for a pre-3.17 one (nor at 0x4020_0000).
    let ram = [MemoryRange::new(0x4008_0000, 0x4040_0000)];
    assert!(!kernel_fits_somewhere(&ram, &old, 4096));
    assert!(kernel_fits_somewhere(&ram, &facts, 4096));
    let mut p = Planner::new(&ram, LoadMode::Normal);
    assert_eq!(p.place_kernel("Image", &[0; 4096], facts), Ok(0x4008_0000));
    let mut p = Planner::new(&ram, LoadMode::Normal);
    assert!(matches!(
        p.place_kernel("Image", &[0; 4096], old),
        Err(Error::NoSpace { .. })
    ));
    // [0x4010_0000, 0x4060_0000): base 0x4020_0000 + 0x8_0000 + 2 MiB = 0x404_80000 fits.
    let ram = [MemoryRange::new(0x4010_0000, 0x4060_0000)];
    assert!(kernel_fits_somewhere(&ram, &facts, 4096));
    let mut p = Planner::new(&ram, LoadMode::Normal);
    assert_eq!(p.place_kernel("Image", &[0; 4096], facts), Ok(0x4028_0000));
    let small = [MemoryRange::new(0x4010_0000, 0x4040_0000)];
    assert!(!kernel_fits_somewhere(&small, &facts, 4096));
    let mut p = Planner::new(&small, LoadMode::Normal);
    assert!(matches!(
        p.place_kernel("Image", &[0; 4096], facts),
        Err(Error::NoSpace { .. })
    ));
}

/// The generator is useful only if it yields plans, and refusals of every
/// kind the planner has: no space for each segment, and a DTB over 2 MiB.
#[test]
fn generator_covers_plans_and_every_refusal() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut initrd_ok) = (0, 0);
    // Accepted plans of each old shape: a pre-3.17 header, a padded kernel
    // segment, flags bit 3 clear.
    let (mut pre_3_17, mut padded, mut bit3_clear) = (0, 0, 0);
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let case = case().new_tree(&mut runner).unwrap().current();
        match plan(&case) {
            Ok(p) => {
                ok += 1;
                initrd_ok += usize::from(p.segment(SegmentKind::Initrd).is_some());
                pre_3_17 += usize::from(p.kernel.uses_memory_below_image);
                padded += usize::from(p.kernel.segment_padding() != 0);
                bit3_clear += usize::from(!p.kernel.place_anywhere);
            }
            Err(Error::NoSpace { kind, .. }) => {
                *refused.entry(format!("no space: {kind}")).or_default() += 1
            }
            Err(Error::DtbTooLarge { .. } | Error::Fdt(fdt::Error::TooLarge { .. })) => {
                *refused.entry("dtb too large".into()).or_default() += 1
            }
            Err(Error::MoreThanHalfOfRam { .. }) => {
                *refused.entry("more than half of RAM".into()).or_default() += 1
            }
            Err(Error::NoRoomForControlPages { .. }) => {
                *refused
                    .entry("no room for control pages".into())
                    .or_default() += 1
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    assert!(
        ok >= 60 && initrd_ok >= 30,
        "ok {ok}, with initrd {initrd_ok}"
    );
    assert!(
        pre_3_17 >= 10 && padded >= 15 && bit3_clear >= 30,
        "pre-3.17 {pre_3_17}, padded {padded}, flags bit 3 clear {bit3_clear}"
    );
    for kind in ["kernel", "initrd", "dtb", "purgatory"] {
        let n = refused
            .get(&format!("no space: {kind}"))
            .copied()
            .unwrap_or(0);
        // The runner is deterministic: these counts are the same every run
        // (the DTB, placed after kernel and initrd, runs out of room least).
        assert!(
            n >= 2,
            "{n} cases refused for lack of space for the {kind}: {refused:?}"
        );
    }
    assert!(
        refused.get("dtb too large").copied().unwrap_or(0) >= 5,
        "{refused:?}"
    );
    assert!(
        refused.get("more than half of RAM").copied().unwrap_or(0) >= 2,
        "{refused:?}"
    );
    // No room for the control pages needs a crash region filled to within
    // 128 KiB: too rare to generate; place.rs tests it exactly.
}

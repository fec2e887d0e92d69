//! The layout on hand-made inputs (exact drawings, golden files in
//! `tests/golden/memmap/`; `UPDATE_GOLDEN=1` rewrites them) and its
//! properties on random ones, each picture checked in `resvg`.

use std::path::PathBuf;

use kexec_core::iomem::{self, MemoryRange};
use kexec_core::plan::SegmentKind;
use proptest::prelude::*;

use super::*;

#[path = "../../tests/memmap_support/mod.rs"]
mod pixels;

const MIB: u64 = 1 << 20;

fn r(start: u64, end: u64) -> MemoryRange {
    MemoryRange::new(start, end)
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/memmap")
        .join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; UPDATE_GOLDEN=1 creates it", path.display()));
    assert!(
        expected == actual,
        "{} differs\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Text and picture agree, and the text fits the terminal.
fn drawn(input: &MapInput) -> (Layout, String) {
    let l = layout(input);
    let text = to_text(&l);
    for line in text.lines() {
        assert!(line.chars().count() <= MAX_WIDTH, "{line:?}");
    }
    let wrong = pixels::mismatches(&text, &to_svg(&l));
    assert!(wrong.is_empty(), "{}\n{text}", wrong.join("\n"));
    (l, text)
}

/// Two small banks far apart: a break, the crash region, a reservation
/// smaller than a cell, and three segments in one cell.
#[test]
fn two_banks_with_small_segments() {
    let input = MapInput {
        ram: vec![r(0x4000_0000, 0x4010_0000), r(0x8_0000_0000, 0x8_0004_0000)],
        reserved: vec![r(0x400f_f000, 0x4010_0000)],
        crash: vec![r(0x4008_0000, 0x400c_0000)],
        segments: vec![
            (SegmentKind::Kernel, r(0x4008_0000, 0x4009_0000)),
            (SegmentKind::Initrd, r(0x4009_0000, 0x4009_0800)),
            (SegmentKind::Dtb, r(0x4009_0800, 0x4009_0c00)),
            (SegmentKind::Purgatory, r(0x4009_0c00, 0x4009_1000)),
        ],
    };
    let (l, text) = drawn(&input);
    assert_eq!(l.cell, 4096, "the smallest cell: 5 rows and a break fit");
    golden("unit-two-banks.txt", &text);
    let k = l.segments[0];
    assert_eq!((k.line, k.col, k.cells, k.to_scale), (2, 0, 16, true));
    // The initrd takes the cell all three start in; the others move aside.
    let rest: Vec<_> = l.segments[1..]
        .iter()
        .map(|d| (d.line, d.col, d.cells, d.to_scale))
        .collect();
    assert_eq!(
        rest,
        [(2, 16, 1, false), (2, 17, 1, false), (2, 18, 1, false)]
    );
    assert!(matches!(
        l.lines[4],
        Line::Break {
            start: 0x4010_0000,
            end: 0x8_0000_0000
        }
    ));
}

/// The cell is the smallest power of two that keeps the map within
/// MAX_LINES: 1 GiB is 16 rows of 1 MiB cells (32 of 512 KiB is too many).
#[test]
fn the_scale_is_the_finest_that_fits() {
    let input = MapInput {
        ram: vec![r(0x4000_0000, 0x8000_0000)],
        ..MapInput::default()
    };
    let l = layout(&input);
    assert_eq!((l.cell, l.lines.len()), (MIB, 16));
    let input = MapInput {
        ram: vec![r(0x4000_0000, 0x4000_0000 + 24 * 64 * MIB)],
        ..MapInput::default()
    };
    assert_eq!(
        layout(&input).lines.len(),
        24,
        "exactly MAX_LINES is allowed"
    );
}

/// Gaps of at most one row are drawn (blank), longer ones are breaks.
#[test]
fn short_gaps_are_drawn_long_ones_break() {
    let row = 64 * 4096;
    let input = |gap_rows: u64| MapInput {
        ram: vec![r(0, row), r(row * (1 + gap_rows), row * (2 + gap_rows))],
        ..MapInput::default()
    };
    let one = layout(&input(1));
    assert_eq!(one.lines.len(), 3);
    assert!(
        matches!(&one.lines[1], Line::Row { cells, .. } if cells.iter().all(|c| *c == Cell::NoRam))
    );
    let two = layout(&input(2));
    assert_eq!(two.lines.len(), 3);
    assert_eq!(
        two.lines[1],
        Line::Break {
            start: row,
            end: 3 * row
        }
    );
}

/// A cell shows the most restrictive thing in it.
#[test]
fn cells_show_the_most_restrictive() {
    let input = MapInput {
        ram: vec![r(0x1000, 0x40_0000)],
        reserved: vec![r(0x2fff, 0x3000), r(0x5000, 0x6000)],
        crash: vec![r(0x4000, 0x8000)],
        segments: vec![],
    };
    let l = layout(&input);
    let Line::Row { cells, .. } = &l.lines[0] else {
        panic!()
    };
    use Cell::*;
    assert_eq!(
        cells[..9],
        [NoRam, Ram, Reserved, Ram, Crash, Reserved, Crash, Crash, Ram]
    );
}

/// Segments pushed past the end of their rows are pulled back.
#[test]
fn pack_pulls_back_from_the_end() {
    assert_eq!(
        pack(&[(0, 3), (1, 2), (1, 2)], 10),
        [(0, 3), (3, 1), (4, 1)]
    );
    assert_eq!(
        pack(&[(8, 10), (9, 10), (9, 10)], 10),
        [(6, 2), (8, 1), (9, 1)]
    );
    assert_eq!(pack(&[(8, 10), (9, 10)], 10), [(7, 2), (9, 1)]);
    // More than fits: one cell each.
    assert_eq!(pack(&[(0, 6), (0, 6)], 8), [(0, 1), (1, 1)]);
}

/// Labels of more than 13 characters leave room for 32 cells a row.
#[test]
fn long_labels_narrow_the_rows() {
    let input = MapInput {
        ram: vec![r(u64::MAX - (1 << 30) + 1, u64::MAX)],
        ..MapInput::default()
    };
    let (l, text) = drawn(&input);
    assert_eq!((l.cols, l.label_width), (NARROW_COLS, 18));
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("0xffffffffc0000000 │"));
    // A break whose range and size do not fit 80 columns says less.
    let input = MapInput {
        ram: vec![
            r(0x100_0000_0000, 0x100_0006_0000),
            r(u64::MAX - 0x4_0000 + 1, u64::MAX),
        ],
        ..MapInput::default()
    };
    let (l, text) = drawn(&input);
    let at = l
        .lines
        .iter()
        .position(|x| matches!(x, Line::Break { .. }))
        .unwrap();
    assert_eq!(
        text.lines().nth(at + 1).unwrap(),
        format!("{:18} ≈ no RAM", "")
    );
}

/// The map's input from /proc/iomem: `reserved` clipped to System RAM
/// (a top-level one outside RAM is not RAM the plan avoids), both crash
/// regions.
#[test]
fn input_from_iomem() {
    let map = iomem::parse(
        "00000000-0fffffff : reserved\n\
         40000000-7fffffff : System RAM\n  \
           41000000-41ffffff : reserved\n  \
           60000000-6fffffff : Crash kernel\n\
         80000000-8fffffff : reserved\n\
         100000000-13fffffff : System RAM\n  \
           13f000000-13fffffff : reserved\n",
    )
    .unwrap();
    let plan = kexec_core::plan::LoadPlan {
        mode: kexec_core::plan::LoadMode::Normal,
        segments: vec![],
        entry: 0,
        dtb_addr: 0,
        kernel: kexec_core::plan::KernelFacts {
            text_offset: 0,
            image_size: 0,
            place_anywhere: true,
            uses_memory_below_image: false,
        },
        memory: vec![],
        dtb_initrd: None,
        dtb_elfcorehdr: None,
        dtb_reserved: Vec::new(),
        total_ram: 0,
    };
    let input = MapInput::new(&map, &plan);
    assert_eq!(
        input.ram,
        [r(0x4000_0000, 0x8000_0000), r(0x1_0000_0000, 0x1_4000_0000)]
    );
    assert_eq!(
        input.reserved,
        [r(0x4100_0000, 0x4200_0000), r(0x1_3f00_0000, 0x1_4000_0000)]
    );
    assert_eq!(input.crash, [r(0x6000_0000, 0x7000_0000)]);
}

fn range_in(bank: MemoryRange) -> impl Strategy<Value = MemoryRange> {
    let size = bank.size();
    (0..size, 1..=size.min(256 * MIB)).prop_map(move |(off, len)| {
        let start = bank.start + off;
        MemoryRange::new(start, start + len.min(bank.end - start))
    })
}

/// 1 to 4 banks (low addresses, or near 2^64), up to 16 segments (some
/// overlapping, as in a broken plan), reservations and crash regions
/// inside the banks.
fn inputs() -> impl Strategy<Value = MapInput> {
    let base = prop_oneof![
        0..(1u64 << 44),
        (u64::MAX - (1 << 41))..(u64::MAX - (1 << 40))
    ];
    let banks = prop::collection::vec((1u64..(1 << 36), 0u64..(1 << 36)), 1..=4);
    (base, banks)
        .prop_map(|(base, banks)| {
            let mut at = base;
            let mut ram = Vec::new();
            for (size, gap) in banks {
                ram.push(MemoryRange::new(at, at + size));
                at += size + gap;
            }
            ram
        })
        .prop_flat_map(|ram| {
            let any = prop::sample::select(ram.clone()).prop_flat_map(range_in);
            let kinds = prop::sample::select(vec![
                SegmentKind::Kernel,
                SegmentKind::Initrd,
                SegmentKind::Dtb,
                SegmentKind::Purgatory,
                SegmentKind::ElfCoreHeader,
            ]);
            (
                Just(ram),
                prop::collection::vec(any.clone(), 0..6),
                prop::collection::vec(any.clone(), 0..3),
                prop::collection::vec((kinds, any), 0..=16),
            )
        })
        .prop_map(|(ram, reserved, crash, segments)| MapInput {
            ram,
            reserved,
            crash,
            segments,
        })
}

/// Cell index counted over the whole grid.
fn global(l: &Layout, (line, col): (usize, usize)) -> usize {
    line * l.cols + col
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn layout_properties(input in inputs(), picks in prop::collection::vec(any::<prop::sample::Index>(), 1..40)) {
        let (l, _) = drawn(&input);
        prop_assert!(l.lines.len() <= MAX_LINES);
        prop_assert!(l.cell.is_power_of_two() && l.cell >= 4096);
        // Positions grow with the address, over every bank.
        let mut addrs: Vec<u64> = picks
            .iter()
            .map(|p| {
                let bank = input.ram[p.index(input.ram.len())];
                bank.start + p.index(usize::try_from(bank.size()).unwrap()) as u64
            })
            .collect();
        addrs.sort_unstable();
        let pos: Vec<usize> = addrs
            .iter()
            .map(|&a| global(&l, l.position(a).expect("every RAM byte is drawn")))
            .collect();
        prop_assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{addrs:x?} {pos:?}");
        // Every segment is drawn, in its own cells, in address order.
        prop_assert_eq!(l.segments.len(), input.segments.len());
        let mut order: Vec<usize> = (0..l.segments.len()).collect();
        order.sort_by_key(|&i| (input.segments[i].1.start, input.segments[i].1.end.max(input.segments[i].1.start + 1), i));
        let mut next = 0;
        for &i in &order {
            let d = l.segments[i];
            let shown = l.lines.iter().map(|line| match line {
                Line::Row { cells, .. } => cells.iter().filter(|c| **c == Cell::Segment(i)).count(),
                Line::Break { .. } => 0,
            }).sum::<usize>();
            prop_assert!(d.cells >= 1 && shown == d.cells, "segment {i}: {d:?}, {shown} cells shown");
            let first = global(&l, (d.line, d.col));
            prop_assert!(first >= next, "segment {i} overlaps the one before");
            next = first + d.cells;
            // Drawn to scale: within a cell of where its start lies.
            if d.to_scale {
                let at = global(&l, l.position(d.range.start).unwrap());
                prop_assert!(first.abs_diff(at) <= 1, "segment {i} at {first}, address at {at}");
            }
        }
    }
}

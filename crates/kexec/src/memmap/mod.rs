//! The physical memory map of a load plan, drawn to scale: where the RAM,
//! its reservations, the crash region and each segment lie.
//!
//! [`layout`] is a pure function from a [`MapInput`] (what `/proc/iomem`
//! and the plan say) to a [`Layout`]: a grid of cells, one row per address
//! band, read left to right and top to bottom like a hex dump. Every cell
//! covers the same number of bytes (a power of two, at least a 4 KiB page,
//! the smallest with which the map fits [`MAX_LINES`] lines), so the map is
//! linear in the physical address inside each stretch of RAM; a stretch of
//! addresses without RAM longer than one row is a break line (`≈`) instead.
//! The two renderers draw that grid: `text` for the terminal (at most
//! [`MAX_WIDTH`] columns, part of the `--dry-run` report) and `svg` for
//! `--dry-run --svg FILE`.
//!
//! A cell shows the most restrictive thing any of its bytes holds
//! (reserved, then crash region, then RAM), so a reservation smaller than a
//! cell is still seen. A segment covers the cells its rounded start and end
//! span; one smaller than a cell still gets one cell, and one whose cell an
//! earlier segment took is moved to the next free cell: such segments are
//! not to scale and are drawn in lower case (the text) or outlined (the
//! picture).

mod svg;
#[cfg(test)]
mod tests;
mod text;

use kexec_core::iomem::{MemoryMap, MemoryRange, RESERVED};
use kexec_core::plan::{LoadPlan, SegmentKind};

pub use svg::to_svg;
pub use text::to_text;

/// Widest line of the text map, in characters.
pub const MAX_WIDTH: usize = 80;
/// Cells in a row when the address labels leave room ([`MAX_WIDTH`]).
pub const COLS: usize = 64;
/// Cells in a row when they do not (labels of more than 13 characters).
pub const NARROW_COLS: usize = 32;
/// Most lines (rows and breaks) the grid aims for; the cell size is the
/// smallest power of two that keeps within it.
pub const MAX_LINES: usize = 24;
/// Smallest cell: a 4 KiB page, arm64's smallest `PAGE_SIZE`.
pub const MIN_CELL_SHIFT: u32 = 12;
/// Characters around a row besides its cells: a space and `│` before them,
/// `│` after.
pub(crate) const ROW_FRAME: usize = 3;

/// What the map shows: the machine's RAM and the plan's segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapInput {
    /// `System RAM`, sorted.
    pub ram: Vec<MemoryRange>,
    /// RAM the plan may not use: the `reserved` ranges inside `System RAM`.
    pub reserved: Vec<MemoryRange>,
    /// The `Crash kernel` ranges.
    pub crash: Vec<MemoryRange>,
    /// Each segment's reserved range (`mem`, `memsz`), in plan order.
    pub segments: Vec<(SegmentKind, MemoryRange)>,
}

impl MapInput {
    /// The map of `plan` on the machine whose `/proc/iomem` is `map`.
    pub fn new(map: &MemoryMap, plan: &LoadPlan) -> Self {
        let ram = map.system_ram();
        let mut reserved: Vec<MemoryRange> = map
            .all()
            .into_iter()
            .filter(|r| r.name == RESERVED)
            .flat_map(|r| {
                let r = r.range();
                ram.iter()
                    .map(move |b| MemoryRange::new(r.start.max(b.start), r.end.min(b.end)))
            })
            .filter(|r| !r.is_empty())
            .collect();
        reserved.sort();
        Self {
            ram,
            reserved,
            crash: map.crash_regions(),
            segments: plan.segments.iter().map(|s| (s.kind, s.range())).collect(),
        }
    }
}

/// What a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    /// No RAM: between banks, or before or after one in its first or last row.
    NoRam,
    /// RAM.
    Ram,
    /// Reserved RAM.
    Reserved,
    /// The crash region.
    Crash,
    /// Segment `n` of [`Layout::segments`].
    Segment(usize),
}

/// One line of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A row of cells starting at physical address `start`.
    Row {
        /// Address of the row's first cell.
        start: u64,
        /// Its cells.
        cells: Vec<Cell>,
    },
    /// Addresses `[start, end)` hold no RAM and are not drawn.
    Break {
        /// First address skipped.
        start: u64,
        /// One past the last (`u64::MAX` rounds up to 2^64, stored as `u64::MAX`).
        end: u64,
    },
}

/// Where a segment is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    /// What it holds.
    pub kind: SegmentKind,
    /// Its physical range.
    pub range: MemoryRange,
    /// Line of its first cell.
    pub line: usize,
    /// Column of its first cell.
    pub col: usize,
    /// Cells it covers (continuing on the following rows).
    pub cells: usize,
    /// Whether it is drawn to scale: at least a cell long and on the cells
    /// its rounded start and end give (each end within half a cell); false
    /// when it is smaller than a cell or was moved to a free cell.
    pub to_scale: bool,
}

/// The grid both renderers draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per cell, a power of two.
    pub cell: u64,
    /// Cells per row.
    pub cols: usize,
    /// Characters of the widest row address label (`0x…`).
    pub label_width: usize,
    /// Rows and breaks, in address order.
    pub lines: Vec<Line>,
    /// The segments, in the order of [`MapInput::segments`].
    pub segments: Vec<Drawn>,
}

impl Layout {
    /// Bytes per row.
    pub fn row_bytes(&self) -> u128 {
        u128::from(self.cell) * self.cols as u128
    }

    /// The line and column of the cell holding `addr`, if a row draws it.
    #[cfg(test)]
    pub fn position(&self, addr: u64) -> Option<(usize, usize)> {
        let row = self.row_bytes();
        self.lines.iter().enumerate().find_map(|(i, l)| match l {
            Line::Row { start, .. } => {
                let off = u128::from(addr).checked_sub(u128::from(*start))?;
                (off < row).then(|| (i, usize::try_from(off / u128::from(self.cell)).unwrap_or(0)))
            }
            Line::Break { .. } => None,
        })
    }

    /// Whether a kind of cell appears in the grid.
    pub fn shows(&self, what: Cell) -> bool {
        self.lines.iter().any(|l| match l {
            Line::Row { cells, .. } => cells.contains(&what),
            Line::Break { .. } => false,
        })
    }
}

/// A run of rows: `[start, end)`, both multiples of the row size.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u128,
    end: u128,
}

fn bounds(r: &MemoryRange) -> (u128, u128) {
    let start = u128::from(r.start);
    // An empty segment is drawn as its first byte.
    (start, u128::from(r.end).max(start + 1))
}

/// The runs of rows that hold everything in `extents` (sorted) for rows of
/// `row` bytes: extents at most one empty row apart share a run, which then
/// draws that row blank; longer gaps end it.
fn spans(extents: &[(u128, u128)], row: u128) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for &(start, end) in extents {
        let s = start / row * row;
        let e = end.div_ceil(row) * row;
        match out.last_mut() {
            Some(last) if s <= last.end + row => last.end = last.end.max(e),
            _ => out.push(Span { start: s, end: e }),
        }
    }
    out
}

fn line_count(spans: &[Span], row: u128) -> u128 {
    let rows: u128 = spans.iter().map(|s| (s.end - s.start) / row).sum();
    rows + spans.len().saturating_sub(1) as u128
}

/// The most restrictive thing in `[a, b)`.
fn background(input: &MapInput, a: u128, b: u128) -> Cell {
    let hit = |rs: &[MemoryRange]| {
        rs.iter().any(|r| {
            let (s, e) = (u128::from(r.start), u128::from(r.end));
            s < b && a < e
        })
    };
    if hit(&input.reserved) {
        Cell::Reserved
    } else if hit(&input.crash) {
        Cell::Crash
    } else if hit(&input.ram) {
        Cell::Ram
    } else {
        Cell::NoRam
    }
}

/// Cells `[first, first + len)` of a span for each segment, in address
/// order, never overlapping and never past `cells`: each starts at its
/// rounded start or right after the previous one.
fn pack(wanted: &[(u128, u128)], cells: u128) -> Vec<(u128, u128)> {
    let mut lens: Vec<u128> = wanted.iter().map(|&(s, e)| e - s).collect();
    if lens.iter().sum::<u128>() > cells {
        // More than fits (overlapping segments of a broken plan): one cell
        // each.
        lens.iter_mut().for_each(|l| *l = 1);
    }
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(wanted.len());
    for (&(s, _), &len) in wanted.iter().zip(&lens) {
        let first = out.last().map_or(s, |&(f, l)| s.max(f + l));
        out.push((first, len));
    }
    // Pushed past the end: pull back from the end.
    let mut limit = cells;
    for (first, len) in out.iter_mut().rev() {
        if *first + *len > limit {
            *first = limit.saturating_sub(*len);
        }
        limit = *first;
    }
    out
}

/// Lay out `input` (see the module comment).
pub fn layout(input: &MapInput) -> Layout {
    let mut extents: Vec<(u128, u128)> = input
        .ram
        .iter()
        .chain(&input.crash)
        .filter(|r| !r.is_empty())
        .map(bounds)
        .chain(input.segments.iter().map(|(_, r)| bounds(r)))
        .collect();
    extents.sort_unstable();
    let top = extents.iter().map(|&(_, e)| e - 1).max().unwrap_or(0);
    let label_width = format!("{top:#x}").len();
    let cols = if label_width + ROW_FRAME + COLS <= MAX_WIDTH {
        COLS
    } else {
        NARROW_COLS
    };
    let cols_u = cols as u128;
    // The smallest cell that fits MAX_LINES; at 2^58 bytes a 64-cell row
    // covers the whole address space.
    let shift = (MIN_CELL_SHIFT..64)
        .find(|&k| {
            let row = (1u128 << k) * cols_u;
            line_count(&spans(&extents, row), row) <= MAX_LINES as u128
        })
        .unwrap_or(63);
    let cell = 1u128 << shift;
    let row = cell * cols_u;
    let spans = spans(&extents, row);

    let mut lines = Vec::new();
    let mut order: Vec<usize> = (0..input.segments.len()).collect();
    order.sort_by_key(|&i| (bounds(&input.segments[i].1), i));
    let mut drawn: Vec<Option<Drawn>> = vec![None; input.segments.len()];
    for (n, span) in spans.iter().enumerate() {
        if n > 0 {
            let prev = spans[n - 1].end;
            lines.push(Line::Break {
                start: to_u64(prev),
                end: to_u64(span.start),
            });
        }
        let first_line = lines.len();
        let rows = (span.end - span.start) / row;
        for r in 0..rows {
            let start = span.start + r * row;
            let cells = (0..cols_u)
                .map(|c| background(input, start + c * cell, start + (c + 1) * cell))
                .collect();
            lines.push(Line::Row {
                start: to_u64(start),
                cells,
            });
        }
        // The segments of this span, in address order.
        let mine: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| {
                let (s, _) = bounds(&input.segments[i].1);
                s >= span.start && s < span.end
            })
            .collect();
        let round = |a: u128| (a - span.start + cell / 2) / cell;
        let wanted: Vec<(u128, u128)> = mine
            .iter()
            .map(|&i| {
                let (s, e) = bounds(&input.segments[i].1);
                let (s, e) = (round(s), round(e.min(span.end)));
                (s, e.max(s + 1))
            })
            .collect();
        let placed = pack(&wanted, rows * cols_u);
        for ((&i, &(ws, we)), &(first, len)) in mine.iter().zip(&wanted).zip(&placed) {
            let (kind, range) = input.segments[i];
            let to_scale = first == ws && len == we - ws && range.size() >= to_u64(cell);
            for c in first..first + len {
                let (l, col) = (first_line + to_usize(c / cols_u), to_usize(c % cols_u));
                if let Some(Line::Row { cells, .. }) = lines.get_mut(l) {
                    cells[col] = Cell::Segment(i);
                }
            }
            drawn[i] = Some(Drawn {
                kind,
                range,
                line: first_line + to_usize(first / cols_u),
                col: to_usize(first % cols_u),
                cells: to_usize(len),
                to_scale,
            });
        }
    }
    Layout {
        cell: to_u64(cell),
        cols,
        label_width,
        lines,
        // Every segment lies in a span: the extents include them.
        segments: drawn.into_iter().flatten().collect(),
    }
}

/// Addresses past `u64::MAX` (the end of the last row of the address
/// space) are shown as `u64::MAX`.
fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn to_usize(v: u128) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

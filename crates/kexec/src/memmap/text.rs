//! The map in the terminal: one character per cell, rows framed by `│`
//! and labelled with their first address, breaks as `≈` lines, then a
//! legend of what appears. At most [`MAX_WIDTH`] columns.

use kexec_core::layout::human_size;
use kexec_core::plan::SegmentKind;

use super::{Cell, Layout, Line, MAX_WIDTH};

/// A RAM cell.
pub const RAM: char = '·';
/// A reserved cell.
pub const RESERVED: char = '▒';
/// A crash-region cell.
pub const CRASH: char = '░';
/// A cell without RAM.
pub const NO_RAM: char = ' ';

/// The letter of a segment kind (upper case: to scale).
pub const fn letter(kind: SegmentKind) -> char {
    match kind {
        SegmentKind::Kernel => 'K',
        SegmentKind::Initrd => 'I',
        SegmentKind::Dtb => 'D',
        SegmentKind::Purgatory => 'P',
        SegmentKind::ElfCoreHeader => 'E',
    }
}

/// The character of a cell.
pub fn glyph(layout: &Layout, cell: Cell) -> char {
    match cell {
        Cell::NoRam => NO_RAM,
        Cell::Ram => RAM,
        Cell::Reserved => RESERVED,
        Cell::Crash => CRASH,
        Cell::Segment(i) => layout.segments.get(i).map_or('?', |d| {
            let c = letter(d.kind);
            if d.to_scale {
                c
            } else {
                c.to_ascii_lowercase()
            }
        }),
    }
}

/// What appears in the grid, in legend order: RAM, reserved, crash region,
/// then the segments in plan order; each with its text.
pub(crate) fn legend(layout: &Layout) -> Vec<(Cell, String)> {
    let mut out: Vec<(Cell, String)> = [
        (Cell::Ram, "RAM"),
        (Cell::Reserved, "reserved"),
        (Cell::Crash, "crash region"),
    ]
    .into_iter()
    .filter(|(c, _)| layout.shows(*c))
    .map(|(c, t)| (c, t.to_owned()))
    .collect();
    for (i, d) in layout.segments.iter().enumerate() {
        out.push((Cell::Segment(i), d.kind.name().to_owned()));
    }
    out
}

/// The map's title: the scale.
pub(crate) fn title(layout: &Layout) -> String {
    let row = u64::try_from(layout.row_bytes()).map_or_else(|_| "16 EiB".to_owned(), human_size);
    format!(
        "memory map, to scale: 1 cell = {}, 1 row = {row}",
        human_size(layout.cell)
    )
}

/// What a break line says.
pub(crate) fn break_text(start: u64, end: u64) -> String {
    let size = end.saturating_sub(start);
    format!(
        "≈ no RAM {start:#x}-{:#x} ({})",
        end.saturating_sub(1),
        human_size(size)
    )
}

/// The text map: title, grid, legend; every line ends in a newline.
pub fn to_text(layout: &Layout) -> String {
    let w = layout.label_width;
    let mut out = title(layout);
    out.push('\n');
    for line in &layout.lines {
        match line {
            Line::Row { start, cells } => {
                let label = format!("{start:#x}");
                let grid: String = cells.iter().map(|&c| glyph(layout, c)).collect();
                out.push_str(&format!("{label:>w$} │{grid}│\n"));
            }
            Line::Break { start, end } => {
                let mut text = format!("{:w$} {}", "", break_text(*start, *end));
                if text.chars().count() > MAX_WIDTH {
                    text = format!("{:w$} ≈ no RAM", "");
                }
                out.push_str(&text);
                out.push('\n');
            }
        }
    }
    // The legend, wrapped at MAX_WIDTH.
    let mut items: Vec<String> = legend(layout)
        .into_iter()
        .map(|(c, t)| format!("{} {t}", glyph(layout, c)))
        .collect();
    if layout.segments.iter().any(|d| !d.to_scale) {
        items.push("(lower case: under one cell, or moved aside: not to scale)".to_owned());
    }
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.chars().count() + 2 + item.chars().count() > MAX_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        line.push_str("  ");
        line.push_str(&item);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

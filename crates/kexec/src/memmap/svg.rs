//! The map as an SVG picture (`kexec --dry-run --svg FILE`): the same grid
//! as the text, one [`CELL_W`] x [`CELL_H`] pixel rectangle per cell, the
//! row addresses on the left, a legend below with one row per kind of cell
//! that appears (a swatch, then the name; for a segment also its range and
//! size). Hand-written SVG 1.1, no dependency.
//!
//! Geometry, in pixels (the renderer test in `tests/memmap.rs` relies on
//! it): the grid's top-left corner is at ([`grid_x`], [`GRID_Y`]); the
//! cell of line `l`, column `c` is the rectangle at
//! (`grid_x + c * CELL_W`, `GRID_Y + l * CELL_H`). The picture is
//! `grid_x + cols * CELL_W + MARGIN` wide and
//! `GRID_Y + lines * CELL_H + LEGEND_GAP + items * LEGEND_ROW_H + MARGIN`
//! high, where items is the number of legend rows.

use std::fmt::Write;

use kexec_core::layout::human_size;
use kexec_core::plan::SegmentKind;

use super::text::{break_text, legend, title};
use super::{Cell, Layout, Line};

/// Blank space around the picture.
pub const MARGIN: u32 = 10;
/// Height of the title above the grid.
pub const TITLE_H: u32 = 24;
/// Top of the grid.
pub const GRID_Y: u32 = MARGIN + TITLE_H;
/// Width of a cell.
pub const CELL_W: u32 = 10;
/// Height of a cell (and of a break line).
pub const CELL_H: u32 = 14;
/// Width allowed per character of an address label (12 px monospace).
pub const CHAR_W: u32 = 8;
/// Space between the labels and the grid.
pub const LABEL_GAP: u32 = 8;
/// Space between the grid and the legend.
pub const LEGEND_GAP: u32 = 12;
/// Height of a legend row.
pub const LEGEND_ROW_H: u32 = 20;
/// Side of a legend swatch.
pub const SWATCH: u32 = 14;

/// Fill of cells without RAM, and of the picture's background.
pub const NO_RAM_FILL: &str = "#ffffff";
/// Fill of RAM.
pub const RAM_FILL: &str = "#c7e9c0";
/// Fill of reserved RAM.
pub const RESERVED_FILL: &str = "#969696";
/// Fill of the crash region.
pub const CRASH_FILL: &str = "#fdae6b";

/// Fill of a segment kind.
pub const fn segment_fill(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Kernel => "#2166ac",
        SegmentKind::Initrd => "#762a83",
        SegmentKind::Dtb => "#1b7837",
        SegmentKind::Purgatory => "#d6604d",
        SegmentKind::ElfCoreHeader => "#8c510a",
    }
}

/// Left edge of the grid for labels of `label_width` characters.
pub const fn grid_x(label_width: u32) -> u32 {
    MARGIN + label_width * CHAR_W + LABEL_GAP
}

fn px(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn fill(layout: &Layout, cell: Cell) -> &'static str {
    match cell {
        Cell::NoRam => NO_RAM_FILL,
        Cell::Ram => RAM_FILL,
        Cell::Reserved => RESERVED_FILL,
        Cell::Crash => CRASH_FILL,
        Cell::Segment(i) => layout
            .segments
            .get(i)
            .map_or(NO_RAM_FILL, |d| segment_fill(d.kind)),
    }
}

/// `class` and extra attributes of a cell's rectangle: segments not to
/// scale get a dashed outline.
fn style(layout: &Layout, cell: Cell) -> (String, &'static str) {
    match cell {
        Cell::NoRam => ("no-ram".to_owned(), ""),
        Cell::Ram => ("ram".to_owned(), ""),
        Cell::Reserved => ("reserved".to_owned(), ""),
        Cell::Crash => ("crash".to_owned(), ""),
        Cell::Segment(i) => match layout.segments.get(i) {
            Some(d) if !d.to_scale => (
                format!("segment {}", d.kind.name()),
                r##" stroke="#000000" stroke-width="1" stroke-dasharray="2 2""##,
            ),
            Some(d) => (format!("segment {}", d.kind.name()), ""),
            None => ("segment".to_owned(), ""),
        },
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The picture's width and height in pixels, for `items` legend rows.
pub fn size(layout: &Layout, items: usize) -> (u32, u32) {
    let width = grid_x(px(layout.label_width)) + px(layout.cols) * CELL_W + MARGIN;
    let height =
        GRID_Y + px(layout.lines.len()) * CELL_H + LEGEND_GAP + px(items) * LEGEND_ROW_H + MARGIN;
    (width, height)
}

/// The SVG document of `layout`.
pub fn to_svg(layout: &Layout) -> String {
    let items = legend(layout);
    let (width, height) = size(layout, items.len());
    let x0 = grid_x(px(layout.label_width));
    let text = r##"font-family="monospace" font-size="12" fill="#000000""##;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" shape-rendering="crispEdges">"##
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="{NO_RAM_FILL}"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{MARGIN}" y="{}" {text}>{}</text>"##,
        MARGIN + 14,
        esc(&title(layout))
    );
    let mut block: Option<(u32, u32)> = None; // first row's y, rows
    let frame = |s: &mut String, block: Option<(u32, u32)>| {
        if let Some((y, rows)) = block {
            let _ = writeln!(
                s,
                r##"<rect class="frame" x="{x0}" y="{y}" width="{}" height="{}" fill="none" stroke="#404040" stroke-width="1"/>"##,
                px(layout.cols) * CELL_W,
                rows * CELL_H
            );
        }
    };
    for (l, line) in layout.lines.iter().enumerate() {
        let y = GRID_Y + px(l) * CELL_H;
        match line {
            Line::Row { start, cells } => {
                block = Some(block.map_or((y, 1), |(by, n)| (by, n + 1)));
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" text-anchor="end" {text}>{start:#x}</text>"##,
                    x0 - LABEL_GAP,
                    y + CELL_H - 3
                );
                let mut c = 0;
                while c < cells.len() {
                    let run = cells[c..].iter().take_while(|&&x| x == cells[c]).count();
                    let (class, extra) = style(layout, cells[c]);
                    let _ = writeln!(
                        s,
                        r##"<rect class="{class}" x="{}" y="{y}" width="{}" height="{CELL_H}" fill="{}"{extra}/>"##,
                        x0 + px(c) * CELL_W,
                        px(run) * CELL_W,
                        fill(layout, cells[c])
                    );
                    c += run;
                }
            }
            Line::Break { start, end } => {
                frame(&mut s, block.take());
                let _ = writeln!(
                    s,
                    r##"<text class="break" x="{}" y="{}" {text}>{}</text>"##,
                    x0 + 4,
                    y + CELL_H - 3,
                    esc(&break_text(*start, *end))
                );
            }
        }
    }
    frame(&mut s, block.take());
    let legend_y = GRID_Y + px(layout.lines.len()) * CELL_H + LEGEND_GAP;
    for (n, (cell, name)) in items.iter().enumerate() {
        let y = legend_y + px(n) * LEGEND_ROW_H;
        let (class, extra) = style(layout, *cell);
        let _ = writeln!(
            s,
            r##"<rect class="legend {class}" x="{MARGIN}" y="{y}" width="{SWATCH}" height="{SWATCH}" fill="{}" stroke="#404040" stroke-width="1"{}/>"##,
            fill(layout, *cell),
            if extra.is_empty() {
                ""
            } else {
                r#" stroke-dasharray="2 2""#
            }
        );
        let label = match cell {
            Cell::Segment(i) => layout.segments.get(*i).map_or_else(String::new, |d| {
                format!(
                    "{name} {} ({}){}",
                    d.range,
                    human_size(d.range.size()),
                    if d.to_scale {
                        ""
                    } else {
                        ", not to scale: under one cell, or moved aside"
                    }
                )
            }),
            _ => name.clone(),
        };
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" {text}>{}</text>"##,
            MARGIN + SWATCH + 8,
            y + SWATCH - 2,
            esc(&label)
        );
    }
    s.push_str("</svg>\n");
    s
}

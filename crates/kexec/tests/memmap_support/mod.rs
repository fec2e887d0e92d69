//! Checks the `--svg` picture against the text map with an independent
//! renderer: `resvg` (pure Rust, a dev-dependency) draws the SVG to pixels,
//! and every cell of the text map must have its colour at the centre of the
//! cell the SVG geometry puts it at; the picture's size and the legend's
//! swatches must match too. Used by `tests/memmap.rs` (the binary's output)
//! and by the unit tests of `src/memmap` (random layouts), which include
//! this file by path.
//!
//! The geometry and colours are restated here from `src/memmap/svg.rs`'s
//! documentation on purpose: a change there must be a deliberate change
//! here.
#![allow(dead_code)] // each user takes a different subset

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg::{Options, Tree};

const MARGIN: u32 = 10;
const GRID_Y: u32 = 34;
const CELL_W: u32 = 10;
const CELL_H: u32 = 14;
const CHAR_W: u32 = 8;
const LABEL_GAP: u32 = 8;
const LEGEND_GAP: u32 = 12;
const LEGEND_ROW_H: u32 = 20;
const SWATCH: u32 = 14;

/// The fill a character of the text map stands for (lower-case segments
/// are filled like upper-case ones).
pub fn colour(glyph: char) -> Option<[u8; 3]> {
    Some(match glyph.to_ascii_uppercase() {
        ' ' => [0xff, 0xff, 0xff],
        '·' => [0xc7, 0xe9, 0xc0],
        '▒' => [0x96, 0x96, 0x96],
        '░' => [0xfd, 0xae, 0x6b],
        'K' => [0x21, 0x66, 0xac],
        'I' => [0x76, 0x2a, 0x83],
        'D' => [0x1b, 0x78, 0x37],
        'P' => [0xd6, 0x60, 0x4d],
        'E' => [0x8c, 0x51, 0x0a],
        _ => return None,
    })
}

/// The SVG drawn to pixels, at its own size.
pub fn render(svg: &str) -> Result<Pixmap, String> {
    let tree = Tree::from_str(svg, &Options::default()).map_err(|e| format!("resvg: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        Pixmap::new(size.width(), size.height()).ok_or_else(|| "empty picture".to_owned())?;
    resvg::render(&tree, Transform::default(), &mut pixmap.as_mut());
    Ok(pixmap)
}

fn rgb(pixmap: &Pixmap, x: u32, y: u32) -> Option<[u8; 3]> {
    let p = pixmap.pixel(x, y)?;
    (p.alpha() == 255).then(|| [p.red(), p.green(), p.blue()])
}

/// The parts of a text map (title, grid, legend, as `kexec --dry-run`
/// prints them).
pub struct TextMap {
    /// Label width in characters.
    pub label_width: u32,
    /// Each line of the grid: `Some(cells)` for a row, `None` for a break.
    pub lines: Vec<Option<Vec<char>>>,
    /// The legend's glyphs, in order.
    pub legend: Vec<char>,
}

/// Parse a text map (the lines from its title to its legend).
pub fn parse_text(map: &str) -> TextMap {
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    let mut label_width = 0;
    for line in map.lines().skip(1) {
        if let Some((label, rest)) = line.split_once(" │") {
            label_width = u32::try_from(label.chars().count()).unwrap();
            let cells: Vec<char> = rest.trim_end_matches('│').chars().collect();
            lines.push(Some(cells));
        } else if line.trim_start().starts_with('≈') {
            lines.push(None);
        } else {
            for item in line.split("  ").filter(|i| !i.is_empty()) {
                if !item.starts_with('(') {
                    legend.push(item.chars().next().unwrap());
                }
            }
        }
    }
    TextMap {
        label_width,
        lines,
        legend,
    }
}

/// Every disagreement between the text map and the rendered SVG (empty if
/// none): the picture's size, each cell's colour, each legend swatch.
pub fn mismatches(map: &str, svg: &str) -> Vec<String> {
    let text = parse_text(map);
    let pixmap = match render(svg) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    let cols = text.lines.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let grid_x = MARGIN + text.label_width * CHAR_W + LABEL_GAP;
    let lines = u32::try_from(text.lines.len()).unwrap();
    let items = u32::try_from(text.legend.len()).unwrap();
    let want = (
        grid_x + u32::try_from(cols).unwrap() * CELL_W + MARGIN,
        GRID_Y + lines * CELL_H + LEGEND_GAP + items * LEGEND_ROW_H + MARGIN,
    );
    if (pixmap.width(), pixmap.height()) != want {
        out.push(format!(
            "picture is {}x{}, the text map needs {}x{}",
            pixmap.width(),
            pixmap.height(),
            want.0,
            want.1
        ));
    }
    for (l, line) in text.lines.iter().enumerate() {
        let Some(cells) = line else { continue };
        let y = GRID_Y + u32::try_from(l).unwrap() * CELL_H + CELL_H / 2;
        for (c, &g) in cells.iter().enumerate() {
            let x = grid_x + u32::try_from(c).unwrap() * CELL_W + CELL_W / 2;
            let expected = colour(g);
            let found = rgb(&pixmap, x, y);
            if expected.is_none() || expected != found {
                out.push(format!(
                    "line {l} column {c} ({g:?}): pixel ({x}, {y}) is {found:02x?}, expected {expected:02x?}"
                ));
            }
        }
    }
    let legend_y = GRID_Y + lines * CELL_H + LEGEND_GAP;
    for (n, &g) in text.legend.iter().enumerate() {
        let (x, y) = (
            MARGIN + SWATCH / 2,
            legend_y + u32::try_from(n).unwrap() * LEGEND_ROW_H + SWATCH / 2,
        );
        let found = rgb(&pixmap, x, y);
        if colour(g) != found {
            out.push(format!(
                "legend row {n} ({g:?}): pixel ({x}, {y}) is {found:02x?}, expected {:02x?}",
                colour(g)
            ));
        }
    }
    out
}

/// The SVG with the `x` of the first `<rect class="CLASS"` moved by `dx`
/// pixels (to show that [`mismatches`] sees a misplaced rectangle).
pub fn shift_rect(svg: &str, class: &str, dx: i64) -> String {
    let tag = format!("<rect class=\"{class}\" x=\"");
    let at = svg.find(&tag).expect("no such rect") + tag.len();
    let len = svg[at..].find('"').unwrap();
    let x: i64 = svg[at..at + len].parse().unwrap();
    format!("{}{}{}", &svg[..at], x + dx, &svg[at + len..])
}

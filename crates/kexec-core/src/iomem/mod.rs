//! `/proc/iomem`: the physical memory map of the running kernel.
//!
//! Each line is `START-END : NAME`, with START and END inclusive and in hex;
//! two spaces of indentation per nesting level (kernel/resource.c,
//! `r_show`). On arm64, `System RAM` holds children such as `Kernel code`,
//! `Kernel data`, `reserved` (memblock reservations: firmware tables, the
//! memory map, … — exported since Linux 4.19, commit 50d7ba36b916) and
//! `Crash kernel` (`crashkernel=`; Documentation/admin-guide/kdump/kdump.rst).
//!
//! Like kexec-tools on arm64, the RAM a kexec_load(2) may use is every
//! `System RAM` range minus its `reserved` children. The running kernel's own
//! `Kernel code`/`Kernel data` stay usable: for a normal load the kernel copies
//! the segments into place only at exec time. A normal load also avoids the
//! `Crash kernel` ranges, which a crash load uses exclusively.

use std::fmt;

use thiserror::Error;

/// `/proc/iomem` longer than this is refused: real ones have a few hundred
/// lines; this bounds the work on hostile input.
pub const MAX_LINES: usize = 100_000;

/// Name of the top-level RAM resources.
pub(crate) const SYSTEM_RAM: &str = "System RAM";
/// Name of the memblock reservations the new segments must avoid.
pub const RESERVED: &str = "reserved";
/// Name of the `crashkernel=` reservation(s).
pub const CRASH_KERNEL: &str = "Crash kernel";
/// `/proc/iomem` name of the kernel's text resource (arch/arm64/kernel/setup.c).
pub(crate) const KERNEL_CODE: &str = "Kernel code";
/// `/proc/iomem` name of the kernel's data resource, which ends at `_end`.
pub(crate) const KERNEL_DATA: &str = "Kernel data";

/// Why `/proc/iomem` text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// More lines than [`MAX_LINES`].
    #[error("more than {limit} lines")]
    TooManyLines {
        /// The limit, [`MAX_LINES`].
        limit: usize,
    },
    /// A line without the `START-END : NAME` shape.
    #[error("line {line}: expected `START-END : NAME`, found {text:?}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// An address that is not hexadecimal or does not fit in 64 bits.
    #[error("line {line}: bad hex address {text:?}")]
    BadHex {
        /// 1-based line number.
        line: usize,
        /// The offending field.
        text: String,
    },
    /// A range whose start lies after its end.
    #[error("line {line}: start {start:#x} is after end {end:#x}")]
    StartAfterEnd {
        /// 1-based line number.
        line: usize,
        /// Range start.
        start: u64,
        /// Range end (inclusive).
        end: u64,
    },
    /// Indentation that is odd or deeper than one level below the previous line.
    #[error("line {line}: bad nesting (indentation of {indent} spaces)")]
    BadNesting {
        /// 1-based line number.
        line: usize,
        /// Number of leading spaces.
        indent: usize,
    },
    /// A child resource that is not inside its parent.
    #[error("line {line}: {start:#x}-{end:#x} is not inside its parent {parent_start:#x}-{parent_end:#x}")]
    ChildOutsideParent {
        /// 1-based line number.
        line: usize,
        /// Child start.
        start: u64,
        /// Child end (inclusive).
        end: u64,
        /// Parent start.
        parent_start: u64,
        /// Parent end (inclusive).
        parent_end: u64,
    },
    /// Every address is zero: the file was read without `CAP_SYS_ADMIN`
    /// (kernel/resource.c hides addresses from unprivileged readers).
    #[error("all addresses are zero: read it as root (CAP_SYS_ADMIN)")]
    AddressesHidden,
    /// No `System RAM` line at the top level.
    #[error("no top-level \"System RAM\" range")]
    NoSystemRam,
}

/// A half-open physical address range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemoryRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl MemoryRange {
    /// The range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The range of `size` bytes at `start` (saturating at `u64::MAX`).
    pub const fn with_size(start: u64, size: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(size),
        }
    }

    /// Length in bytes.
    pub const fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `other` lies entirely inside `self`.
    pub const fn contains_range(&self, other: &MemoryRange) -> bool {
        other.start >= self.start && other.end <= self.end
    }

    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &MemoryRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for MemoryRange {
    /// `0x40000000-0x7fffffff`: inclusive end, like `/proc/iomem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end.saturating_sub(1))
    }
}

/// One line of `/proc/iomem` and the lines nested under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive, as printed).
    pub end: u64,
    /// Name, e.g. `System RAM`.
    pub name: String,
    /// Nested resources.
    pub children: Vec<Resource>,
}

impl Resource {
    /// The half-open range this resource covers.
    pub fn range(&self) -> MemoryRange {
        MemoryRange::new(self.start, self.end.saturating_add(1))
    }

    fn visit<'a>(&'a self, out: &mut Vec<&'a Resource>) {
        out.push(self);
        for child in &self.children {
            child.visit(out);
        }
    }
}

/// The parsed `/proc/iomem` tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryMap {
    /// Top-level resources, in file order.
    pub resources: Vec<Resource>,
}

impl MemoryMap {
    /// Every resource, depth first, in file order.
    pub fn all(&self) -> Vec<&Resource> {
        let mut out = Vec::new();
        for r in &self.resources {
            r.visit(&mut out);
        }
        out
    }

    /// The top-level `System RAM` ranges, sorted.
    pub fn system_ram(&self) -> Vec<MemoryRange> {
        let mut ram: Vec<_> = self
            .resources
            .iter()
            .filter(|r| r.name == SYSTEM_RAM)
            .map(Resource::range)
            .collect();
        ram.sort();
        ram
    }

    /// The `Crash kernel` ranges (at most two on arm64: high, then low), sorted.
    pub fn crash_regions(&self) -> Vec<MemoryRange> {
        let mut crash: Vec<_> = self
            .all()
            .into_iter()
            .filter(|r| r.name == CRASH_KERNEL)
            .map(Resource::range)
            .collect();
        crash.sort();
        crash
    }

    /// The crash region a crash load uses: the highest one. With
    /// `crashkernel=X,high` the low range only serves DMA for the crash kernel;
    /// the segments and the entry go in the high range.
    pub(crate) fn crash_kernel(&self) -> Option<MemoryRange> {
        self.crash_regions().into_iter().max()
    }

    /// RAM a normal load may use: `System RAM` minus every `reserved` and
    /// `Crash kernel` range nested in it. Sorted, disjoint, not merged across
    /// separate `System RAM` lines.
    pub fn usable_ram(&self) -> Vec<MemoryRange> {
        let holes: Vec<MemoryRange> = self
            .all()
            .into_iter()
            .filter(|r| r.name == RESERVED || r.name == CRASH_KERNEL)
            .map(Resource::range)
            .collect();
        subtract(&self.system_ram(), &holes)
    }
}

impl MemoryMap {
    /// The running kernel's image, `Kernel code` start to `Kernel data` end
    /// (arch/arm64/kernel/setup.c, `kernel_code`/`kernel_data`: `_stext` to
    /// `_etext`, `_sdata` to `_end`), if both are listed.
    pub fn running_kernel(&self) -> Option<MemoryRange> {
        let all = self.all();
        let code = all.iter().find(|r| r.name == KERNEL_CODE)?;
        let data = all.iter().find(|r| r.name == KERNEL_DATA)?;
        (code.start <= data.end).then(|| MemoryRange::new(code.start, data.end.saturating_add(1)))
    }

    /// An estimate of the RAM the running kernel manages (`totalram_pages()`
    /// in bytes), which `sanity_check_segment_list` (kernel/kexec_core.c)
    /// halves to bound every `kexec_load` segment and their total.
    ///
    /// totalram_pages counts the pages memblock handed to the page
    /// allocator: `System RAM` minus memblock's reservations. /proc/iomem
    /// shows most of those (`reserved`, `Crash kernel`, and the kernel image
    /// from `Kernel code` to `Kernel data`), so the sum of `System RAM` is an
    /// over-estimate. We take `System RAM` minus all of them: still a little
    /// above totalram_pages where memblock reserved more after /proc/iomem's
    /// ranges were published, a little below once the kernel freed its
    /// `__init` memory: within a few MiB (per-CPU areas, early page
    /// tables) of the kernel's count, where segments that approach half of
    /// RAM are hundreds of MiB.
    pub fn total_ram(&self) -> u64 {
        let mut holes: Vec<MemoryRange> = self
            .all()
            .into_iter()
            .filter(|r| r.name == RESERVED || r.name == CRASH_KERNEL)
            .map(Resource::range)
            .collect();
        holes.extend(self.running_kernel());
        subtract(&self.system_ram(), &holes)
            .iter()
            .map(MemoryRange::size)
            .fold(0u64, u64::saturating_add)
    }
}

/// `ranges` minus every range in `holes`; the result is sorted.
pub(crate) fn subtract(ranges: &[MemoryRange], holes: &[MemoryRange]) -> Vec<MemoryRange> {
    let mut holes = holes.to_vec();
    holes.sort();
    let mut out = Vec::new();
    for r in ranges {
        let mut cursor = r.start;
        for h in holes.iter().filter(|h| h.overlaps(r)) {
            if h.start > cursor {
                out.push(MemoryRange::new(cursor, h.start));
            }
            cursor = cursor.max(h.end);
        }
        if cursor < r.end {
            out.push(MemoryRange::new(cursor, r.end));
        }
    }
    out.sort();
    out
}

fn parse_hex(line: usize, text: &str) -> Result<u64, Error> {
    let bad = || Error::BadHex {
        line,
        text: text.to_owned(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(text, 16).map_err(|_| bad())
}

/// Parses the text of `/proc/iomem`.
///
/// ```
/// use kexec_core::iomem::{parse, MemoryRange};
/// let map = parse("40000000-7fffffff : System RAM\n  40210000-4149ffff : Kernel code\n  7c000000-7c0fffff : reserved\n").unwrap();
/// assert_eq!(map.usable_ram(), vec![
///     MemoryRange::new(0x4000_0000, 0x7c00_0000),
///     MemoryRange::new(0x7c10_0000, 0x8000_0000),
/// ]);
/// ```
pub fn parse(text: &str) -> Result<MemoryMap, Error> {
    if text.lines().nth(MAX_LINES).is_some() {
        return Err(Error::TooManyLines { limit: MAX_LINES });
    }
    // (depth, resource) in file order; the tree is built afterwards.
    let mut flat: Vec<(usize, Resource, usize)> = Vec::new();
    let mut stack: Vec<(u64, u64)> = Vec::new();
    let mut any_nonzero = false;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        if indent % 2 != 0 || indent / 2 > stack.len() {
            return Err(Error::BadNesting { line, indent });
        }
        let depth = indent / 2;
        let body = &raw[indent..];
        let malformed = || Error::Malformed {
            line,
            text: raw.to_owned(),
        };
        let (span, name) = body.split_once(" : ").ok_or_else(malformed)?;
        let (start, end) = span.split_once('-').ok_or_else(malformed)?;
        let (start, end) = (parse_hex(line, start)?, parse_hex(line, end)?);
        if start > end {
            return Err(Error::StartAfterEnd { line, start, end });
        }
        any_nonzero |= start != 0 || end != 0;
        stack.truncate(depth);
        if let Some(&(parent_start, parent_end)) = stack.last() {
            if start < parent_start || end > parent_end {
                return Err(Error::ChildOutsideParent {
                    line,
                    start,
                    end,
                    parent_start,
                    parent_end,
                });
            }
        }
        stack.push((start, end));
        let name = name.trim().to_owned();
        flat.push((
            depth,
            Resource {
                start,
                end,
                name,
                children: Vec::new(),
            },
            line,
        ));
    }
    if !flat.is_empty() && !any_nonzero {
        return Err(Error::AddressesHidden);
    }
    let resources = build_tree(&mut flat.into_iter().map(|(d, r, _)| (d, r)).peekable(), 0);
    if !resources.iter().any(|r| r.name == SYSTEM_RAM) {
        return Err(Error::NoSystemRam);
    }
    Ok(MemoryMap { resources })
}

fn build_tree<I: Iterator<Item = (usize, Resource)>>(
    it: &mut std::iter::Peekable<I>,
    depth: usize,
) -> Vec<Resource> {
    let mut out: Vec<Resource> = Vec::new();
    while let Some((d, _)) = it.peek() {
        if *d < depth {
            break;
        }
        if *d > depth {
            // Nested under the last resource at this depth (the parser
            // guarantees one exists).
            let children = build_tree(it, depth + 1);
            if let Some(parent) = out.last_mut() {
                parent.children.extend(children);
            }
            continue;
        }
        if let Some((_, r)) = it.next() {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests;

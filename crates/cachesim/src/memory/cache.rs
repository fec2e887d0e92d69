//! The data-cache levels (L1D, L2 = the PoU, an optional system cache
//! before the PoC): lines and their views, write-back and eviction, the
//! data loads and stores, and seeding and inspecting lines.

use super::{align_down, Event, MemorySystem};
use std::fmt;

/// A data-cache level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// L1 D-cache, inside the PoU.
    L1,
    /// L2, the PoU (where instruction and data paths meet).
    L2,
    /// System cache beyond the PoU, before the PoC.
    System,
}

impl Level {
    pub(super) const ALL: [Level; 3] = [Level::L1, Level::L2, Level::System];
    pub(super) fn index(self) -> usize {
        match self {
            Level::L1 => 0,
            Level::L2 => 1,
            Level::System => 2,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::L1 => "L1D",
            Level::L2 => "L2",
            Level::System => "system cache",
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) dirty: bool,
    pub(super) data: Box<[u8]>,
}

impl MemorySystem {
    fn has_system(&self) -> bool {
        self.cfg.system_cache.is_some()
    }

    pub(super) fn levels_present(&self) -> &'static [Level] {
        if self.has_system() {
            &Level::ALL
        } else {
            &Level::ALL[..2]
        }
    }

    /// The newest copy of `line` at or below `from` (cache or DRAM).
    pub(super) fn view_line(&self, line: u64, from: Level) -> Box<[u8]> {
        for &lv in self.levels_present() {
            if lv < from {
                continue;
            }
            if let Some(l) = self.levels[lv.index()].get(&line) {
                return l.data.clone();
            }
        }
        let mut v = vec![0; self.dline_usize()];
        self.dram_read(line, &mut v);
        v.into_boxed_slice()
    }

    pub(super) fn dline_usize(&self) -> usize {
        usize::try_from(self.cfg.d_line).unwrap_or(64)
    }

    /// Bytes as the instruction side sees them at the PoU.
    pub(super) fn pou_bytes(&self, addr: u64, len: u64) -> Vec<u8> {
        let from = if self.cfg.idc { Level::L1 } else { Level::L2 };
        self.view_bytes(addr, len, from)
    }

    pub(super) fn view_bytes(&self, addr: u64, len: u64, from: Level) -> Vec<u8> {
        let dl = self.cfg.d_line;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut a = addr;
        while a < addr + len {
            let line = align_down(a, dl);
            let data = self.view_line(line, from);
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            out.extend_from_slice(&data[s..e]);
            a = end;
        }
        out
    }

    /// Write a line back one level down (or to DRAM).
    fn write_down(&mut self, from: Level, line: u64, data: Box<[u8]>) {
        let next = match from {
            Level::L1 => Some(Level::L2),
            Level::L2 if self.has_system() => Some(Level::System),
            _ => None,
        };
        match next {
            Some(lv) => {
                self.levels[lv.index()].insert(line, Line { dirty: true, data });
            }
            None => self.dram_write(line, &data),
        }
    }

    pub(super) fn evict(&mut self, level: Level, line: u64) {
        if let Some(l) = self.levels[level.index()].remove(&line) {
            self.record(Event::Evict {
                level,
                line,
                dirty: l.dirty,
            });
            if l.dirty {
                self.write_down(level, line, l.data);
            }
        }
    }

    /// Clean `line` out of the levels in `scope` to the level below them.
    pub(super) fn clean_line(&mut self, line: u64, scope: &[Level]) {
        let newest_dirty = scope.iter().find_map(|lv| {
            self.levels[lv.index()]
                .get(&line)
                .filter(|l| l.dirty)
                .map(|l| (*lv, l.data.clone()))
        });
        if let Some((lv, data)) = newest_dirty {
            self.counters.writebacks[lv.index()] += 1;
            for l in scope {
                if let Some(x) = self.levels[l.index()].get_mut(&line) {
                    x.dirty = false;
                }
            }
            let bottom = scope.last().copied().unwrap_or(Level::L1);
            self.write_down(bottom, line, data);
        }
    }

    /// A data load of `out.len()` bytes at `addr`.
    pub fn read(&mut self, addr: u64, out: &mut [u8]) {
        self.last_was_isb = false;
        self.data_step();
        let len = out.len() as u64;
        let Some(cacheable) = self.access_cacheable(addr) else {
            out.fill(0xff);
            return;
        };
        self.record(Event::Read {
            addr,
            len,
            cacheable,
        });
        if !cacheable {
            self.counters.noncacheable_bytes += len;
            self.dram_read(addr, out);
            // A non-cacheable *mapping* over a line still cached: the read
            // may hit it (mismatched attributes; see Adversary::nc_hit).
            if self.sctlr.m && self.translation.is_some() && self.rng.chance(self.adv.nc_hit) {
                let dl = self.cfg.d_line;
                let mut a = addr;
                while a < addr + len {
                    let line = align_down(a, dl);
                    let end = (line + dl).min(addr + len);
                    let cached = self
                        .levels_present()
                        .iter()
                        .find_map(|lv| self.levels[lv.index()].get(&line))
                        .map(|l| l.data.clone());
                    if let Some(data) = cached {
                        let s = usize::try_from(a - line).unwrap_or(0);
                        let e = usize::try_from(end - line).unwrap_or(0);
                        let o = usize::try_from(a - addr).unwrap_or(0);
                        out[o..o + (e - s)].copy_from_slice(&data[s..e]);
                    }
                    a = end;
                }
            }
            return;
        }
        self.counters.cacheable_bytes += len;
        let dl = self.cfg.d_line;
        let mut a = addr;
        let mut o = 0usize;
        while a < addr + len {
            let line = align_down(a, dl);
            if !self.levels[0].contains_key(&line) {
                let data = self.view_line(line, Level::L1);
                self.counters.line_fills += 1;
                self.levels[0].insert(line, Line { dirty: false, data });
            }
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            if let Some(l) = self.levels[0].get(&line) {
                out[o..o + (e - s)].copy_from_slice(&l.data[s..e]);
            }
            o += e - s;
            a = end;
        }
    }

    /// A data store of `data` at `addr`.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        self.last_was_isb = false;
        self.data_step();
        let len = data.len() as u64;
        let Some(cacheable) = self.access_cacheable(addr) else {
            return;
        };
        self.uncompleted_stores = true;
        self.record(Event::Write {
            addr,
            len,
            cacheable,
        });
        if !cacheable {
            self.counters.noncacheable_bytes += len;
            self.dram_write(addr, data);
            let dl = self.cfg.d_line;
            let mut line = align_down(addr, dl);
            while line < addr + len {
                self.unordered_stores.insert(line);
                line += dl;
            }
            return;
        }
        self.counters.cacheable_bytes += len;
        self.cacheable_store(addr, data);
    }

    pub(super) fn cacheable_store(&mut self, addr: u64, data: &[u8]) {
        let dl = self.cfg.d_line;
        let len = data.len() as u64;
        let mut a = addr;
        let mut o = 0usize;
        while a < addr + len {
            let line = align_down(a, dl);
            if !self.levels[0].contains_key(&line) {
                let d = self.view_line(line, Level::L1);
                self.counters.line_fills += 1;
                self.levels[0].insert(
                    line,
                    Line {
                        dirty: false,
                        data: d,
                    },
                );
            }
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            if let Some(l) = self.levels[0].get_mut(&line) {
                l.data[s..e].copy_from_slice(&data[o..o + (e - s)]);
                l.dirty = true;
            }
            o += e - s;
            a = end;
        }
    }

    /// Put a line into `level` with `data` (test setup: what the old kernel
    /// left behind).
    pub fn seed_dline(&mut self, level: Level, addr: u64, dirty: bool, data: &[u8]) {
        let line = align_down(addr, self.cfg.d_line);
        let mut d = self.view_line(line, level);
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        if level == Level::System && !self.has_system() {
            return;
        }
        self.levels[level.index()].insert(line, Line { dirty, data: d });
    }

    /// Every cached data line overlapping `[addr, addr+len)`:
    /// (level, line address, dirty, data).
    pub fn cached_lines(&self, addr: u64, len: u64) -> Vec<(Level, u64, bool, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.d_line);
        let mut v = Vec::new();
        for &lv in self.levels_present() {
            for (k, l) in self.levels[lv.index()].range(lo..addr + len) {
                v.push((lv, *k, l.dirty, l.data.to_vec()));
            }
        }
        v
    }
}

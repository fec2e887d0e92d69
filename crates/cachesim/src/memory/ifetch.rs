//! The instruction side: the fetch buffer (instructions fetched ahead,
//! discarded only by ISB), the I-cache (PIPT, VIPT-aliasing or
//! ASID-tagged) filled from the PoU, IC maintenance and execution.

use super::{align_down, Event, MemorySystem, Pending, PAGE_SIZE};
use crate::config::ICachePolicy;

/// Instruction-cache maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IcOp {
    /// IC IVAU: invalidate by VA to the PoU (this VA's alias/tag only).
    Ivau,
    /// IC IALLU: invalidate all, local.
    Iallu,
    /// IC IALLUIS: invalidate all, Inner Shareable (same as IALLU on one CPU).
    Ialluis,
}

impl IcOp {
    /// Its slot in [`Counters::ic`](super::Counters::ic).
    pub(super) const fn counter_index(self) -> usize {
        match self {
            IcOp::Ivau => 0,
            IcOp::Iallu => 1,
            IcOp::Ialluis => 2,
        }
    }
}

impl MemorySystem {
    pub(super) fn icache_tag(&self, va: u64) -> u64 {
        match self.cfg.icache {
            ICachePolicy::Pipt => 0,
            ICachePolicy::Vipt { colours } => (va / PAGE_SIZE) % colours,
            ICachePolicy::AsidTagged => self.asid,
        }
    }

    /// Instruction fetch of one I-line, below the fetch buffer.
    pub(super) fn ifetch_line(&mut self, line: u64) -> Box<[u8]> {
        let il = self.cfg.i_line;
        if self.sctlr.i && self.cfg.dic {
            return self.pou_bytes(line, il).into_boxed_slice();
        }
        if self.sctlr.i {
            let tag = self.icache_tag(line);
            if let Some(d) = self.icache.get(&(line, tag)) {
                return d.clone();
            }
            let d = self.pou_bytes(line, il).into_boxed_slice();
            self.icache.insert((line, tag), d.clone());
            self.record(Event::IFill { line, tag });
            return d;
        }
        // SCTLR.I = 0: Non-cacheable fetches, from the PoC. A conservative
        // I-cache (Adversary::icache_while_disabled) is still looked up and
        // may allocate.
        if self.adv.icache_while_disabled > 0 && !self.cfg.dic {
            let tag = self.icache_tag(line);
            if let Some(d) = self.icache.get(&(line, tag)) {
                return d.clone();
            }
            if self.rng.chance(self.adv.icache_while_disabled) {
                return self.ifill_from_poc(line);
            }
        }
        let mut v = vec![0; usize::try_from(il).unwrap_or(64)];
        self.dram_read(line, &mut v);
        v.into_boxed_slice()
    }

    /// Allocates the I-cache line for `line` with the bytes at the PoC (a
    /// fill while SCTLR.I = 0).
    pub(super) fn ifill_from_poc(&mut self, line: u64) -> Box<[u8]> {
        let mut v = vec![0; usize::try_from(self.cfg.i_line).unwrap_or(64)];
        self.dram_read(line, &mut v);
        let d = v.into_boxed_slice();
        let tag = self.icache_tag(line);
        self.icache.insert((line, tag), d.clone());
        self.record(Event::IFill { line, tag });
        d
    }

    /// Whether the I-cache is looked up and may allocate while SCTLR.I = 0
    /// (the conservative model, [`super::Adversary::icache_while_disabled`]).
    pub fn icache_used_while_disabled(&self) -> bool {
        self.adv.icache_while_disabled > 0 && !self.cfg.dic
    }

    /// IC `op` (`va` only matters for IVAU).
    pub fn ic(&mut self, op: IcOp, va: u64) {
        self.last_was_isb = false;
        self.step();
        self.record(Event::Ic(op, va));
        match op {
            IcOp::Ivau => {
                self.counters.ic[op.counter_index()] += 1;
                let line = align_down(va, self.cfg.i_line);
                let tag = match self.cfg.icache {
                    ICachePolicy::Pipt => None,
                    _ => Some(self.icache_tag(va)),
                };
                self.pending.push(Pending::IcLine { line, tag });
            }
            IcOp::Iallu | IcOp::Ialluis => {
                self.counters.ic[op.counter_index()] += 1;
                self.pending.push(Pending::IcAll);
            }
        }
    }

    /// Execute (fetch) `len` bytes of instructions at `addr`.
    pub fn execute(&mut self, addr: u64, len: u64) -> Vec<u8> {
        self.step();
        self.record(Event::Execute(addr));
        self.counters.fetched_bytes += len;
        let il = self.cfg.i_line;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut a = addr;
        while a < addr + len {
            let line = align_down(a, il);
            let data = match self.fetch_buf.get(&line) {
                Some(d) => d.clone(),
                None => {
                    let d = self.ifetch_line(line);
                    self.fetch_buf.insert(line, d.clone());
                    d
                }
            };
            let end = (line + il).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            out.extend_from_slice(&data[s..e]);
            a = end;
        }
        out
    }

    /// Record the branch to the next image.
    pub fn enter(&mut self, entry: u64) {
        self.last_was_isb = false;
        self.step();
        self.record(Event::Enter(entry));
    }

    /// Put a stale I-cache line (with `tag`) holding `data`.
    pub fn seed_iline(&mut self, addr: u64, tag: u64, data: &[u8]) {
        let line = align_down(addr, self.cfg.i_line);
        let mut d = vec![0; usize::try_from(self.cfg.i_line).unwrap_or(64)];
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        self.icache.insert((line, tag), d.into_boxed_slice());
    }

    /// Put a line into the fetch buffer (instructions fetched ahead).
    pub fn seed_fetch_buffer(&mut self, addr: u64, data: &[u8]) {
        let line = align_down(addr, self.cfg.i_line);
        let mut d = vec![0; usize::try_from(self.cfg.i_line).unwrap_or(64)];
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        self.fetch_buf.insert(line, d.into_boxed_slice());
    }

    /// Every I-cache line overlapping the range: (line, tag, data).
    pub fn icache_lines(&self, addr: u64, len: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.i_line);
        self.icache
            .range((lo, 0)..(addr + len, 0))
            .map(|((l, t), d)| (*l, *t, d.to_vec()))
            .collect()
    }

    /// Every fetch-buffer line overlapping the range: (line, data).
    pub fn fetch_buffer_lines(&self, addr: u64, len: u64) -> Vec<(u64, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.i_line);
        self.fetch_buf
            .range(lo..addr + len)
            .map(|(l, d)| (*l, d.to_vec()))
            .collect()
    }
}

//! Data-cache maintenance (DC by VA, DC by set/way), the queue of issued
//! maintenance operations (TLBI and IC included) that complete whenever
//! the adversary likes, and DSB, which completes them all.

use super::{align_down, Event, Level, MemorySystem};
use crate::config::SystemCache;
use std::fmt;

/// Data-cache maintenance by VA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DcOp {
    /// Clean to the PoC.
    Cvac,
    /// Clean and invalidate to the PoC.
    Civac,
    /// Invalidate to the PoC (may discard dirty data).
    Ivac,
    /// Clean to the PoU.
    Cvau,
    /// Zero a block (a store; faults on Device memory).
    Zva,
}

/// Data-cache maintenance by set/way, modelled as "every set and way of every
/// local level" (L1 then L2). It never reaches a system cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetWayOp {
    /// DC CSW over all local levels.
    Csw,
    /// DC CISW over all local levels.
    Cisw,
}

impl DcOp {
    /// Its slot in [`Counters::dc`](super::Counters::dc).
    pub(super) const fn counter_index(self) -> usize {
        match self {
            DcOp::Cvac => 0,
            DcOp::Civac => 1,
            DcOp::Ivac => 2,
            DcOp::Cvau => 3,
            DcOp::Zva => 4,
        }
    }
}

impl SetWayOp {
    /// Its slot in [`Counters::set_way`](super::Counters::set_way).
    pub(super) const fn counter_index(self) -> usize {
        match self {
            SetWayOp::Csw => 0,
            SetWayOp::Cisw => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    Dc(DcOp, u64),
    SetWay(SetWayOp),
    IcLine { line: u64, tag: Option<u64> },
    IcAll,
    Tlbi,
}

impl Pending {
    fn name(&self) -> &'static str {
        match self {
            Pending::Dc(DcOp::Cvac, _) => "DC CVAC",
            Pending::Dc(DcOp::Civac, _) => "DC CIVAC",
            Pending::Dc(DcOp::Ivac, _) => "DC IVAC",
            Pending::Dc(DcOp::Cvau, _) => "DC CVAU",
            Pending::Dc(DcOp::Zva, _) => "DC ZVA",
            Pending::SetWay(SetWayOp::Csw) => "DC CSW (all)",
            Pending::SetWay(SetWayOp::Cisw) => "DC CISW (all)",
            Pending::IcLine { .. } => "IC IVAU",
            Pending::IcAll => "IC IALLU",
            Pending::Tlbi => "TLBI ALL",
        }
    }
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pending::Dc(op, l) => write!(f, "DC {op:?} {l:#x}"),
            Pending::SetWay(op) => write!(f, "DC {op:?}"),
            Pending::IcLine { line, .. } => write!(f, "IC IVAU {line:#x}"),
            Pending::IcAll => f.write_str("IC IALLU"),
            Pending::Tlbi => f.write_str("TLBI ALL"),
        }
    }
}

impl MemorySystem {
    /// The levels maintenance by VA to the PoC reaches.
    fn poc_scope(&self) -> &'static [Level] {
        match self.cfg.system_cache {
            Some(SystemCache::HonoursVa) => &Level::ALL,
            Some(SystemCache::IgnoresVa) | None => &Level::ALL[..2],
        }
    }

    pub(super) fn perform(&mut self, p: Pending) {
        match p {
            Pending::Dc(op, line) => {
                let scope = self.poc_scope();
                match op {
                    DcOp::Cvac => self.clean_line(line, scope),
                    DcOp::Civac => {
                        self.clean_line(line, scope);
                        for l in scope {
                            self.levels[l.index()].remove(&line);
                        }
                    }
                    DcOp::Ivac => {
                        if self.rng.chance(self.adv.ivac_cleans) {
                            self.clean_line(line, scope);
                        }
                        for l in scope {
                            self.levels[l.index()].remove(&line);
                        }
                    }
                    DcOp::Cvau => self.clean_line(line, &Level::ALL[..1]),
                    DcOp::Zva => {}
                }
            }
            Pending::SetWay(op) => {
                for lv in [Level::L1, Level::L2] {
                    let lines: Vec<u64> = self.levels[lv.index()].keys().copied().collect();
                    for line in lines {
                        self.clean_line(line, &[lv]);
                        if op == SetWayOp::Cisw {
                            self.levels[lv.index()].remove(&line);
                        }
                    }
                }
            }
            Pending::IcLine { line, tag } => {
                let il = self.cfg.i_line;
                let hit: Vec<(u64, u64)> = self
                    .icache
                    .range((line, 0)..(line + il, 0))
                    .map(|(k, _)| *k)
                    .filter(|(_, t)| tag.is_none_or(|want| *t == want))
                    .collect();
                for k in hit {
                    self.icache.remove(&k);
                }
            }
            Pending::IcAll => self.icache.clear(),
            Pending::Tlbi => self.tlb.clear(),
        }
        let line = match p {
            Pending::Dc(_, l) | Pending::IcLine { line: l, .. } => Some(l),
            Pending::SetWay(_) | Pending::IcAll | Pending::Tlbi => None,
        };
        self.record(Event::Completed(p.name(), line));
    }

    /// Complete every queued operation, in an adversarial order, with
    /// speculative fills allowed between completions (a DSB waits for all of
    /// them, but they finish in no architected order).
    fn complete_all(&mut self) {
        let mut ops = std::mem::take(&mut self.pending);
        while !ops.is_empty() {
            let i = usize::try_from(self.rng.below(ops.len() as u64)).unwrap_or(0);
            let p = ops.swap_remove(i);
            self.perform(p);
            if !ops.is_empty() {
                self.speculate();
            }
        }
    }

    /// DC `op` by VA (the line containing `va`).
    pub fn dc(&mut self, op: DcOp, va: u64) {
        self.last_was_isb = false;
        self.step();
        self.counters.dc[op.counter_index()] += 1;
        self.record(Event::Dc(op, va));
        let line = align_down(va, self.cfg.d_line);
        if op != DcOp::Zva && self.unordered_stores.contains(&line) {
            self.report_fault(
                format!(
                    "DC {op:?} of a line stored to by a non-cacheable access with no DMB or \
                     DSB in between: DC by VA is ordered only after accesses to Normal \
                     cacheable memory (Arm ARM), so the invalidation may overtake the store \
                     (Linux orders them: \"dmb sy // needed before dc ivac with MMU off\", \
                     arch/arm64/kernel/head.S)"
                ),
                va,
            );
        }
        if op == DcOp::Zva {
            if self.access_cacheable(va) != Some(true) {
                self.report_fault(
                    "DC ZVA to Device memory (MMU off): alignment fault".into(),
                    va,
                );
                return;
            }
            let zeros = vec![0; self.dline_usize()];
            self.uncompleted_stores = true;
            self.cacheable_store(line, &zeros);
            return;
        }
        self.pending.push(Pending::Dc(op, line));
    }

    /// DC `op` by set/way over every set and way of the local levels.
    pub fn dc_set_way_all(&mut self, op: SetWayOp) {
        self.last_was_isb = false;
        self.step();
        self.counters.set_way[op.counter_index()] += 1;
        self.record(Event::SetWay(op));
        self.pending.push(Pending::SetWay(op));
    }

    /// DMB SY: orders earlier non-cacheable stores before later DC by VA
    /// (it completes no maintenance).
    pub fn dmb(&mut self) {
        self.last_was_isb = false;
        self.step();
        self.counters.dmb += 1;
        self.record(Event::Dmb);
        self.unordered_stores.clear();
    }

    /// DSB SY: every queued maintenance operation completes; earlier stores
    /// are ordered before anything later.
    pub fn dsb(&mut self) {
        self.last_was_isb = false;
        self.step();
        self.counters.dsb += 1;
        self.record(Event::Dsb);
        self.unordered_stores.clear();
        self.uncompleted_stores = false;
        self.complete_all();
    }
}

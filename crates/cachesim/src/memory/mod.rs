//! The memory-system model: DRAM (the PoC), a data-cache hierarchy, an
//! instruction cache, SCTLR_ELx, queued maintenance, and a seeded adversary.
//!
//! Semantics, in short (each is a deliberate, documented simplification):
//! - Addresses are physical; translation is the identity (VA == PA). Only the
//!   I-cache tag (colour or ASID) depends on "which VA" and is modelled
//!   explicitly.
//! - Data accesses are cacheable iff the committed SCTLR has M and C set;
//!   otherwise they are Device/non-cacheable: they read and write DRAM only and
//!   leave cache lines as they are (so lines can go stale). A system cache is
//!   *not* looked up by non-cacheable accesses.
//! - Instruction fetches go through a per-CPU fetch buffer (instructions
//!   fetched ahead; discarded only by ISB), then the I-cache if SCTLR.I is set
//!   (filled from the PoU), otherwise DRAM; with
//!   `Adversary::icache_while_disabled` the I-cache is also hit, and filled
//!   from DRAM (the PoC), while SCTLR.I is clear. With CTR_EL0.DIC the
//!   I-cache is coherent and never stale; with CTR_EL0.IDC the PoU view
//!   includes L1D.
//! - Non-cacheable stores are not ordered with a later DC by VA of their
//!   line until a DMB or DSB: such a DC is reported as a fault.
//! - Maintenance instructions are queued and complete at any time the
//!   adversary chooses, and at the latest at the next DSB.
//! - A write to SCTLR takes effect at any time the adversary chooses, and at
//!   the latest at the next ISB.
//! - At every step the adversary may evict (write back) any line, allocate a
//!   clean line for any cacheable-mapped address while M+C are on, fill the
//!   I-cache or the fetch buffer from any executable address.
//!
//! # Where each part lives
//! - this file: the [`MemorySystem`] state, its registers, faults and the
//!   bounded event log;
//! - `dram`: sparse DRAM, the point of coherency;
//! - `cache`: the data-cache levels and the data loads and stores;
//! - `maintenance`: DC by VA and by set/way, the queue of issued
//!   maintenance and DSB;
//! - `translation`: SCTLR_ELx, MAIR/TCR/TTBR0, the TLB and ISB;
//! - `pe`: what each PE has of its own, and the switch between PEs;
//! - `ifetch`: the instruction side (fetch buffer, I-cache, IC);
//! - `adversary`: the seeded adversary and its step before each
//!   instruction;
//! - `event`: the event timeline and the operation counters.

mod adversary;
mod cache;
mod dram;
mod event;
mod ifetch;
mod maintenance;
mod pe;
mod translation;

pub use adversary::Adversary;
pub use cache::Level;
pub use event::{Counters, Event};
pub use ifetch::IcOp;
pub use maintenance::{DcOp, SetWayOp};
pub use pe::PeState;
pub use translation::Sctlr;

use crate::config::CacheConfig;
use crate::rng::Rng;
use cache::Line;
use handoff::pagetable::{MemAttr, MmuConfig};
use maintenance::Pending;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The translation granule the model uses for DRAM pages and I-cache colours.
pub const PAGE_SIZE: u64 = 4096;

/// How many events the bounded log keeps.
const LOG_CAPACITY: usize = 4096;

/// A fault raised by the model (e.g. DC ZVA on Device memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What went wrong.
    pub what: String,
    /// Where.
    pub addr: u64,
}

/// The whole modelled memory system: DRAM, the data caches, and the
/// running PE's own state (its TLB, instruction side, SCTLR, queued
/// maintenance; another PE's is swapped in with [`MemorySystem::swap_pe`]).
#[derive(Debug, Clone)]
pub struct MemorySystem {
    cfg: CacheConfig,
    rng: Rng,
    adv: Adversary,
    dram: BTreeMap<u64, Box<[u8]>>,
    levels: [BTreeMap<u64, Line>; 3],
    icache: BTreeMap<(u64, u64), Box<[u8]>>,
    fetch_buf: BTreeMap<u64, Box<[u8]>>,
    sctlr: Sctlr,
    pending_sctlr: Option<Sctlr>,
    /// MAIR/TCR/TTBR0 written, not yet synchronised by an ISB.
    pending_translation: Option<Option<MmuConfig>>,
    pending: Vec<Pending>,
    regs: [u64; 4],
    asid: u64,
    log: VecDeque<(u64, Event)>,
    step: u64,
    counters: Counters,
    data_ranges: Vec<(u64, u64)>,
    exec_ranges: Vec<(u64, u64)>,
    fault: Option<Fault>,
    translation: Option<MmuConfig>,
    tlb: BTreeMap<u64, Option<MemAttr>>,
    data_accesses: u64,
    /// Whether the last instruction executed was an ISB (Falkor E1041).
    last_was_isb: bool,
    /// Lines written by non-cacheable stores since the last DMB or DSB: a
    /// DC by VA of one of them is not ordered after the store.
    unordered_stores: BTreeSet<u64>,
    /// A store since the last DSB (see [`MemorySystem::stores_not_completed`]).
    uncompleted_stores: bool,
    /// Where the code will branch next, as a branch predictor may know it:
    /// the adversary's fetch-ahead picks it often.
    branch_target: Option<u64>,
}

fn align_down(a: u64, size: u64) -> u64 {
    a & !(size - 1)
}

fn in_ranges(ranges: &[(u64, u64)], a: u64) -> bool {
    ranges.iter().any(|&(s, l)| a >= s && a - s < l)
}

impl MemorySystem {
    /// A machine in reset state: MMU and caches off, empty caches, DRAM
    /// holding address-dependent garbage.
    pub fn new(cfg: CacheConfig, seed: u64) -> Self {
        Self {
            cfg,
            rng: Rng::new(seed),
            adv: Adversary::for_seed(seed),
            dram: BTreeMap::new(),
            levels: [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()],
            icache: BTreeMap::new(),
            fetch_buf: BTreeMap::new(),
            sctlr: Sctlr::default(),
            pending_sctlr: None,
            pending_translation: None,
            pending: Vec::new(),
            regs: [0; 4],
            asid: 0,
            log: VecDeque::new(),
            step: 0,
            counters: Counters::default(),
            data_ranges: Vec::new(),
            exec_ranges: Vec::new(),
            fault: None,
            translation: None,
            tlb: BTreeMap::new(),
            data_accesses: 0,
            last_was_isb: false,
            unordered_stores: BTreeSet::new(),
            uncompleted_stores: false,
            branch_target: None,
        }
    }

    /// The configuration this machine models.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// Replace the adversary's probabilities.
    pub fn set_adversary(&mut self, adv: Adversary) {
        self.adv = adv;
    }

    /// Ranges that are mapped cacheable while the MMU is on: the adversary
    /// speculatively allocates and evicts lines here.
    pub fn add_data_range(&mut self, start: u64, len: u64) {
        if len > 0 {
            self.data_ranges.push((start, len));
        }
    }

    /// Ranges the CPU may fetch instructions from (speculatively).
    pub fn add_exec_range(&mut self, start: u64, len: u64) {
        if len > 0 {
            self.exec_ranges.push((start, len));
        }
    }

    /// The code will branch to `target` (the next image's entry): from now
    /// on half of the adversary's fetches ahead are of that line, as a
    /// branch predictor's would be.
    pub fn predict_branch(&mut self, target: u64) {
        self.branch_target = Some(target);
    }

    /// Set the current ASID (the tag of an ASID-tagged I-cache).
    pub fn set_asid(&mut self, asid: u64) {
        self.asid = asid;
    }

    /// Counters for the cost model.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The first fault raised, if any.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// Committed SCTLR.
    pub fn sctlr(&self) -> Sctlr {
        self.sctlr
    }

    /// A pending (issued, not yet synchronised) SCTLR write.
    pub fn pending_sctlr(&self) -> Option<Sctlr> {
        self.pending_sctlr
    }

    /// Whether queued maintenance has not yet completed.
    pub fn maintenance_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// x0..x3 as set by the code under test.
    pub fn regs(&self) -> [u64; 4] {
        self.regs
    }

    /// Set x0..x3 (the boot-protocol registers).
    pub fn set_reg(&mut self, r: u8, v: u64) {
        if let Some(slot) = self.regs.get_mut(usize::from(r)) {
            *slot = v;
        }
        self.record(Event::SetReg(r, v));
    }

    fn record(&mut self, e: Event) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back((self.step, e));
    }

    /// Log a phase boundary.
    pub fn phase(&mut self, name: &'static str) {
        self.record(Event::Phase(name));
    }

    /// The last `max` events touching `[addr, addr+len)` plus all global
    /// events (barriers, SCTLR, IALLU, phases), oldest first.
    pub fn timeline(&self, addr: u64, len: u64, max: usize) -> Vec<(u64, Event)> {
        let mut out: Vec<(u64, Event)> = self
            .log
            .iter()
            .rev()
            .filter(|(_, e)| match e.address() {
                Some((a, l)) => {
                    let lo = align_down(a, self.cfg.d_line.max(self.cfg.i_line));
                    lo < addr.saturating_add(len.max(1))
                        && addr < a.saturating_add(l.max(self.cfg.d_line))
                }
                None => !matches!(e, Event::SetReg(..)),
            })
            .take(max)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Whether `a` is inside a data or exec range registered with the model.
    pub fn is_tracked(&self, a: u64) -> bool {
        in_ranges(&self.data_ranges, a) || in_ranges(&self.exec_ranges, a)
    }
}

#[cfg(test)]
mod tests;

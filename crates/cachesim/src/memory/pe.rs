//! Several PEs over one memory system: what each PE has of its own, and
//! the switch from one to another.
//!
//! A PE's own state ([`PeState`]) is its SCTLR (committed and pending),
//! its translation registers (synchronised and pending) and TLB, its
//! instruction side (I-cache and fetch buffer), x0-x3, its queue of issued
//! maintenance (a DSB waits for its own PE's operations), its stores not
//! yet ordered or completed, and its branch prediction.
//!
//! Shared by every PE: DRAM, and the data caches. Coherent data caches (the
//! CPUs of one inner-shareable domain) give every cacheable access one view
//! of a line, whichever PE's cache holds it, and DC by VA to the PoC or PoU
//! is broadcast to all of them (Arm ARM: maintenance by VA applies to every
//! cache of the shareability domain that can hold the location): one shared
//! hierarchy models exactly that. Lines a PE allocated stay in it after the
//! PE is off, which is more than hardware leaves (`CPU_OFF` cleans and
//! invalidates the caches of a PE it powers down), never less. What the
//! shared hierarchy cannot show is maintenance by set/way, which is local:
//! nothing that runs on a secondary uses it.

use super::{MemorySystem, Pending, Sctlr};
use handoff::pagetable::{MemAttr, MmuConfig};
use std::collections::{BTreeMap, BTreeSet};

/// One PE's own state while another PE runs (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct PeState {
    icache: BTreeMap<(u64, u64), Box<[u8]>>,
    fetch_buf: BTreeMap<u64, Box<[u8]>>,
    sctlr: Sctlr,
    pending_sctlr: Option<Sctlr>,
    pending_translation: Option<Option<MmuConfig>>,
    pending: Vec<Pending>,
    regs: [u64; 4],
    asid: u64,
    translation: Option<MmuConfig>,
    tlb: BTreeMap<u64, Option<MemAttr>>,
    last_was_isb: bool,
    unordered_stores: BTreeSet<u64>,
    uncompleted_stores: bool,
    branch_target: Option<u64>,
}

impl PeState {
    /// A PE as PSCI `CPU_ON` starts it: MMU and data cache off, the
    /// instruction cache on or off (`icache_on`: the PSCI implementation
    /// chooses), nothing issued, empty caches and TLB (seed them with
    /// [`MemorySystem::seed_iline`] and [`MemorySystem::seed_tlb`] once it
    /// runs: the architecture does not promise an empty TLB or I-cache at
    /// power-up).
    pub fn powered_on(icache_on: bool) -> Self {
        Self {
            sctlr: Sctlr {
                m: false,
                c: false,
                i: icache_on,
            },
            ..Self::default()
        }
    }

    /// The committed SCTLR of this (not running) PE.
    pub fn sctlr(&self) -> Sctlr {
        self.sctlr
    }

    /// Every I-cache line of this (not running) PE overlapping the range,
    /// with `i_line` the I-cache line size: (line, tag, data).
    pub fn icache_lines(&self, addr: u64, len: u64, i_line: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let lo = addr & !(i_line - 1);
        self.icache
            .range((lo, 0)..(addr.saturating_add(len), 0))
            .map(|((l, t), d)| (*l, *t, d.to_vec()))
            .collect()
    }
}

impl MemorySystem {
    /// The running PE becomes the one `other` holds, and `other` receives
    /// the state of the PE that was running. Takes no step: the switch is
    /// the model's, not an instruction.
    pub fn swap_pe(&mut self, other: &mut PeState) {
        use std::mem::swap;
        swap(&mut self.icache, &mut other.icache);
        swap(&mut self.fetch_buf, &mut other.fetch_buf);
        swap(&mut self.sctlr, &mut other.sctlr);
        swap(&mut self.pending_sctlr, &mut other.pending_sctlr);
        swap(
            &mut self.pending_translation,
            &mut other.pending_translation,
        );
        swap(&mut self.pending, &mut other.pending);
        swap(&mut self.regs, &mut other.regs);
        swap(&mut self.asid, &mut other.asid);
        swap(&mut self.translation, &mut other.translation);
        swap(&mut self.tlb, &mut other.tlb);
        swap(&mut self.last_was_isb, &mut other.last_was_isb);
        swap(&mut self.unordered_stores, &mut other.unordered_stores);
        swap(&mut self.uncompleted_stores, &mut other.uncompleted_stores);
        swap(&mut self.branch_target, &mut other.branch_target);
    }

    /// Whether the running PE stored something since its last DSB: another
    /// PE (or the PSCI firmware) is not guaranteed to observe the store
    /// yet, so a PSCI call that hands memory over must follow a DSB.
    pub fn stores_not_completed(&self) -> bool {
        self.uncompleted_stores
    }

    /// Every dirty data line, any level: (level, line).
    pub fn all_dirty_lines(&self) -> BTreeSet<(super::Level, u64)> {
        self.levels_present()
            .iter()
            .flat_map(|&lv| {
                self.levels[lv.index()]
                    .iter()
                    .filter(|(_, l)| l.dirty)
                    .map(move |(k, _)| (lv, *k))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CacheConfig;
    use crate::memory::Level;

    fn memory() -> MemorySystem {
        let cfg = CacheConfig::named("a57-like").expect("a named configuration");
        MemorySystem::new(cfg, 1)
    }

    #[test]
    fn a_swap_exchanges_the_pes_own_state_and_keeps_the_data_caches() {
        let mut m = memory();
        m.seed_iline(0x1000, 0, &[7; 64]);
        m.seed_tlb(0x2000, MemAttr::NormalWb);
        m.seed_dline(Level::L1, 0x3000, true, &[9; 64]);
        m.set_reg(0, 0x42);
        m.write_sctlr(Sctlr {
            m: false,
            c: false,
            i: true,
        });
        let mut other = PeState::powered_on(false);
        m.swap_pe(&mut other);
        assert!(m.icache_lines(0x1000, 64).is_empty());
        assert_eq!(m.regs(), [0; 4]);
        assert_eq!(m.pending_sctlr(), None);
        assert!(!m.sctlr().i);
        // The data caches are shared: the dirty line is still there.
        assert!(m.all_dirty_lines().contains(&(Level::L1, 0x3000)));
        assert_eq!(other.icache_lines(0x1000, 64, 64).len(), 1);
        assert!(other.pending_sctlr.is_some_and(|s| s.i));
        m.swap_pe(&mut other);
        assert_eq!(m.regs(), [0x42, 0, 0, 0]);
        assert_eq!(m.icache_lines(0x1000, 64).len(), 1);
        assert!(m.pending_sctlr().is_some_and(|s| s.i));
        assert_eq!(other.sctlr(), Sctlr::default());
    }

    #[test]
    fn stores_are_uncompleted_until_a_dsb() {
        let mut m = memory();
        assert!(!m.stores_not_completed());
        m.write(0x5000, &[1; 8]);
        assert!(m.stores_not_completed());
        m.dmb();
        assert!(
            m.stores_not_completed(),
            "a DMB orders, it does not complete"
        );
        m.dsb();
        assert!(!m.stores_not_completed());
    }

    #[test]
    fn a_powered_on_pe_has_its_caches_and_mmu_off_and_its_icache_as_chosen() {
        for on in [false, true] {
            let s = PeState::powered_on(on).sctlr();
            assert_eq!((s.m, s.c, s.i), (false, false, on));
        }
    }
}

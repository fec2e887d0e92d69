//! SCTLR_ELx (M, C, I) and stage-1 translation: the MAIR/TCR/TTBR0
//! writes, the TLB, whether a data access is cacheable, and ISB, which
//! synchronises them.

use super::{align_down, Event, Fault, Level, MemorySystem, Pending, PAGE_SIZE};
use handoff::pagetable::{translate, MemAttr, MmuConfig};
use std::fmt;

/// The SCTLR_ELx bits the model honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sctlr {
    /// M: stage 1 translation (the MMU) enabled.
    pub m: bool,
    /// C: data accesses cacheable (only with M).
    pub c: bool,
    /// I: instruction fetches cacheable.
    pub i: bool,
}

impl fmt::Display for Sctlr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |on: bool, c: char| if on { c } else { '-' };
        write!(f, "{}{}{}", b(self.m, 'M'), b(self.c, 'C'), b(self.i, 'I'))
    }
}

impl MemorySystem {
    pub(super) fn commit_sctlr(&mut self) {
        if let Some(s) = self.pending_sctlr.take() {
            if s.m && !self.sctlr.m && self.pending_translation.is_some() && self.fault.is_none() {
                self.fault = Some(Fault {
                    what: "SCTLR.M took effect before the MAIR/TCR/TTBR0 writes were \
                           synchronised (no ISB between them)"
                        .into(),
                    addr: 0,
                });
            }
            self.sctlr = s;
            self.record(Event::SctlrEffective(s));
        }
    }

    /// MSR MAIR/TCR/TTBR0: program (or, with `None`, forget) the
    /// translation tables used while SCTLR.M is set. Without tables the
    /// MMU-on regime is the old kernel's linear map: everything Normal
    /// write-back. Takes effect at the next ISB; the TLB keeps what it holds
    /// (see [`MemorySystem::seed_tlb`]). SCTLR.M taking effect before that ISB is
    /// a fault (the walk would use unsynchronised registers).
    pub fn set_translation(&mut self, cfg: Option<MmuConfig>) {
        self.last_was_isb = false;
        self.step();
        self.pending_translation = Some(cfg);
    }

    /// TLBI ALL for the current regime: queued like cache maintenance,
    /// complete at the latest at the next DSB.
    pub fn tlb_invalidate_all(&mut self) {
        self.last_was_isb = false;
        self.step();
        self.pending.push(Pending::Tlbi);
    }

    /// A TLB entry left by the old kernel (its regime mapped `page`
    /// with `attr`), used once SCTLR.M is set unless invalidated.
    pub fn seed_tlb(&mut self, page: u64, attr: MemAttr) {
        self.tlb.insert(align_down(page, PAGE_SIZE), Some(attr));
    }

    /// Whether a data access to `va` is cacheable now; `None` on a
    /// translation fault (recorded as the machine's fault).
    pub(super) fn access_cacheable(&mut self, va: u64) -> Option<bool> {
        if !(self.sctlr.m) {
            return Some(false);
        }
        let Some(cfg) = self.translation else {
            return Some(self.sctlr.c);
        };
        let page = align_down(va, PAGE_SIZE);
        let attr = match self.tlb.get(&page) {
            Some(a) => *a,
            None => {
                let a = self.walk_attr(&cfg, va);
                self.tlb.insert(page, a);
                a
            }
        };
        match attr {
            Some(a) => Some(self.sctlr.c && a == MemAttr::NormalWb),
            None => {
                if self.fault.is_none() {
                    self.fault = Some(Fault {
                        what: "translation fault (table walk found no valid descriptor)".into(),
                        addr: va,
                    });
                }
                None
            }
        }
    }

    /// The memory attribute of `va` from a table walk (no TLB), `None` if
    /// no valid descriptor maps it. Walks are cacheable (TCR IRGN/ORGN =
    /// WBWA) iff SCTLR.C.
    fn walk_attr(&self, cfg: &MmuConfig, va: u64) -> Option<MemAttr> {
        let walk_cached = self.sctlr.c;
        translate(cfg, va, |pa| {
            let mut b = [0u8; 8];
            if walk_cached {
                b.copy_from_slice(&self.view_bytes(pa, 8, Level::L1));
            } else {
                self.dram_read(pa, &mut b);
            }
            u64::from_le_bytes(b)
        })
        .map(|leaf| leaf.attr)
    }

    /// Whether the current regime maps `va` Normal write-back (what
    /// speculative allocation needs: nothing is allocated for a
    /// non-cacheable or unmapped location). No fault, no TLB fill.
    pub(super) fn maps_write_back(&self, va: u64) -> bool {
        let Some(cfg) = self.translation else {
            return true;
        };
        let page = align_down(va, PAGE_SIZE);
        let attr = match self.tlb.get(&page) {
            Some(a) => *a,
            None => self.walk_attr(&cfg, va),
        };
        attr == Some(MemAttr::NormalWb)
    }

    /// ISB: instructions fetched ahead are discarded; SCTLR writes take
    /// effect. Does not complete maintenance.
    pub fn isb(&mut self) {
        self.last_was_isb = true;
        self.step();
        self.counters.isb += 1;
        self.record(Event::Isb);
        self.fetch_buf.clear();
        if let Some(t) = self.pending_translation.take() {
            self.translation = t;
        }
        self.commit_sctlr();
    }

    /// MSR SCTLR_ELx: takes effect by the next ISB.
    pub fn write_sctlr(&mut self, s: Sctlr) {
        let mmu_on = self.pending_sctlr.unwrap_or(self.sctlr).m;
        if self.cfg.falkor_e1041 && mmu_on && !s.m && !self.last_was_isb && self.fault.is_none() {
            self.fault = Some(Fault {
                what: "Falkor erratum E1041: the MSR clearing SCTLR.M is not immediately \
                       preceded by an ISB (a speculative instruction fetch may use an \
                       incorrect translation)"
                    .into(),
                addr: 0,
            });
        }
        self.last_was_isb = false;
        self.step();
        self.counters.sctlr_writes += 1;
        self.record(Event::SctlrWrite(s));
        self.pending_sctlr = Some(s);
    }
}

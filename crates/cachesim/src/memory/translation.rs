//! SCTLR_ELx (M, C, I) and stage-1 translation: the MAIR/TCR/TTBR0
//! writes, the TLB, whether a data access is cacheable, and ISB, which
//! synchronises them.

use super::{align_down, Event, Fault, Level, MemorySystem, Pending, PAGE_SIZE};
use handoff::pagetable::{translate, MemAttr, MmuConfig, Regime};
use std::fmt;

/// `TCR_ELx.T0SZ` (bits 5:0), the same in `TCR_EL1` and `TCR_EL2`.
const TCR_T0SZ_MASK: u64 = 0x3f;
/// `TCR_ELx.EPD0` (bit 7; `TCR_EL1` layout only): no walks from TTBR0.
const TCR_EPD0: u64 = 1 << 7;
/// `TCR_ELx.IRGN0` (bits 9:8): inner cacheability of the walks; 0b00 is
/// Non-cacheable.
const TCR_IRGN0_SHIFT: u64 = 8;
/// `TCR_ELx.TG0` (bits 15:14): 0b00 is the 4 KiB granule.
const TCR_TG0_SHIFT: u64 = 14;
/// The T0SZ the model's walker (and the handoff's tables) use: 48-bit
/// input addresses, a walk that starts at level 0.
const T0SZ_48_BIT: u64 = 16;

/// How the MMU walks the tables `cfg` describes, from its TCR (Arm ARM
/// D8.2: the granule, the input size that fixes the start level, EPD0), or
/// why the model's four-level 4 KiB walker cannot (and a CPU would not find
/// the handoff's tables where it looks): `Ok(walks are inner cacheable)`.
pub(super) fn walk_setup(cfg: &MmuConfig) -> Result<bool, String> {
    let tcr = cfg.tcr;
    if (tcr >> TCR_TG0_SHIFT) & 3 != 0 {
        return Err(format!(
            "TCR.TG0 = {:#b}: not the 4 KiB granule the tables are built for",
            (tcr >> TCR_TG0_SHIFT) & 3
        ));
    }
    if tcr & TCR_T0SZ_MASK != T0SZ_48_BIT {
        return Err(format!(
            "TCR.T0SZ = {}: the walk would not start at level 0, where the tables are",
            tcr & TCR_T0SZ_MASK
        ));
    }
    if cfg.regime != Regime::El2 && tcr & TCR_EPD0 != 0 {
        return Err("TCR.EPD0 set: no walks from TTBR0".into());
    }
    Ok((tcr >> TCR_IRGN0_SHIFT) & 3 != 0)
}

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
            if s.m && !self.sctlr.m && self.pending_translation.is_some() {
                self.report_fault(
                    "SCTLR.M took effect before the MAIR/TCR/TTBR0 writes were \
                     synchronised (no ISB between them)"
                        .into(),
                    0,
                );
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
                if let Err(why) = walk_setup(&cfg) {
                    self.report_fault(format!("translation fault: {why}"), va);
                    return None;
                }
                let a = self.walk_attr(&cfg, va);
                self.tlb.insert(page, a);
                a
            }
        };
        match attr {
            Some(a) => Some(self.sctlr.c && a == MemAttr::NormalWb),
            None => {
                self.report_fault(
                    "translation fault (table walk found no valid descriptor)".into(),
                    va,
                );
                None
            }
        }
    }

    /// The memory attribute of `va` from a table walk (no TLB), `None` if
    /// no valid descriptor maps it or the TCR does not describe the walk
    /// ([`walk_setup`]). Walks look up the caches iff SCTLR.C and
    /// TCR.IRGN0 is cacheable.
    fn walk_attr(&self, cfg: &MmuConfig, va: u64) -> Option<MemAttr> {
        let walk_cached = self.sctlr.c && walk_setup(cfg).ok()?;
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

    /// Whether a data access to `va` now goes through the caches: SCTLR.M
    /// and C in effect and `va` mapped Normal write-back (no fault, no TLB
    /// fill).
    pub fn data_access_cached(&self, va: u64) -> bool {
        self.sctlr.m && self.sctlr.c && self.maps_write_back(va)
    }

    /// The attribute the current translation gives `va` with the MMU on:
    /// `None` when the MMU is off or unmapped (no fault, no TLB fill).
    pub fn mapped_attr(&self, va: u64) -> Option<MemAttr> {
        if !self.sctlr.m {
            return None;
        }
        let cfg = self.translation?;
        match self.tlb.get(&align_down(va, PAGE_SIZE)) {
            Some(a) => *a,
            None => self.walk_attr(&cfg, va),
        }
    }

    /// Records `what` at `addr` as the machine's fault (the first one
    /// stays).
    pub fn report_fault(&mut self, what: String, addr: u64) {
        if self.fault.is_none() {
            self.fault = Some(Fault { what, addr });
        }
    }

    /// Whether the current regime maps `va` Normal write-back (what
    /// speculative allocation needs: nothing is allocated for a
    /// non-cacheable or unmapped location). No fault, no TLB fill.
    pub fn maps_write_back(&self, va: u64) -> bool {
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
        // The pipeline refills at once with what follows, a predicted
        // branch's target included.
        if let Some(t) = self.branch_target {
            if self.rng.chance(500) {
                let line = align_down(t, self.cfg.i_line);
                let data = self.ifetch_line(line);
                self.fetch_buf.insert(line, data);
                self.record(Event::Prefetch(line));
            }
        }
    }

    /// MSR SCTLR_ELx: takes effect by the next ISB.
    pub fn write_sctlr(&mut self, s: Sctlr) {
        let mmu_on = self.pending_sctlr.unwrap_or(self.sctlr).m;
        if self.cfg.falkor_e1041 && mmu_on && !s.m && !self.last_was_isb {
            self.report_fault(
                "Falkor erratum E1041: the MSR clearing SCTLR.M is not immediately \
                 preceded by an ISB (a speculative instruction fetch may use an \
                 incorrect translation)"
                    .into(),
                0,
            );
        }
        self.last_was_isb = false;
        self.step();
        self.counters.sctlr_writes += 1;
        self.record(Event::SctlrWrite(s));
        self.pending_sctlr = Some(s);
    }
}

#[cfg(test)]
mod tcr_tests {
    use super::*;
    use handoff::pagetable::tcr_value;

    fn cfg(regime: Regime, tcr: u64) -> MmuConfig {
        MmuConfig {
            regime,
            mair: handoff::pagetable::MAIR_VALUE,
            tcr,
            ttbr0: 0x4840_1000,
        }
    }

    #[test]
    fn the_handoffs_tcr_is_walked_cacheable_in_every_regime() {
        for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
            let tcr = tcr_value(regime, 0x5);
            assert_eq!(walk_setup(&cfg(regime, tcr)), Ok(true), "{regime:?}");
            // Non-cacheable walks: still a walk, not through the caches.
            assert_eq!(walk_setup(&cfg(regime, tcr & !(0xf << 8))), Ok(false));
            // Another granule, another start level: no walk the tables fit.
            for bad in [(tcr & !(3 << 14)) | (1 << 14), (tcr & !0x3f) | 25] {
                assert!(
                    walk_setup(&cfg(regime, bad)).is_err(),
                    "{regime:?} {bad:#x}"
                );
            }
        }
        let el1 = tcr_value(Regime::El1, 0x5);
        assert!(walk_setup(&cfg(Regime::El1, el1 | TCR_EPD0)).is_err());
    }
}

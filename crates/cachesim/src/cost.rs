//! A cost model: operation counts per phase and an estimated cycle cost.
//!
//! The per-operation costs are ASSUMPTIONS, picked from the middle of
//! plausible ranges for a 2 GHz Cortex-A57/A72-class core with DDR4; they
//! are meant to rank handoff variants, not to predict a board:
//! - L1 hit load/store: about 4 cycles latency, 1–2 accesses per cycle
//!   pipelined; modelled as 1 cycle per 8 bytes.
//! - Line fill from DRAM: 80–150 ns of DRAM latency (160–300 cycles), partly
//!   hidden by prefetch on streaming reads; modelled as 100 cycles per line.
//! - Device-nGnRnE (MMU off) access: no merging, no prefetch, each access a
//!   full round trip: 100–300 cycles per access; modelled as 200 cycles per
//!   8 bytes. This is why verifying with the caches off is slow (compare the
//!   measured 12.8 s vs 0.2 s in ARM64-KEXEC.md §5, QEMU TCG, where the
//!   effect is amplified by emulation).
//! - DC by VA: 10–50 cycles issue cost per line, plus a DRAM write (50–200
//!   cycles, partly overlapped) when it writes back a dirty line; modelled
//!   as 20 + 100 per write-back.
//! - DC by set/way over all local levels: one pass over every set and way
//!   (e.g. 32 Ki lines of a 2 MiB L2 at a few cycles each): 50 000–200 000;
//!   modelled as 100 000.
//! - IC IVAU 10–30 (modelled 20); IC IALLU 50–500 (modelled 200);
//!   DSB 20–500 depending on outstanding work (modelled 100); ISB: a pipeline
//!   refill, 10–30 (modelled 20); MSR SCTLR 10.

use crate::memory::{Counters, DcOp, IcOp, Level};
use std::fmt;

/// Assumed cycles per operation (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostModel {
    /// Per 8 bytes of cacheable access (L1 hit).
    pub cacheable_per_8b: u64,
    /// Per line filled from below.
    pub line_fill: u64,
    /// Per 8 bytes of non-cacheable (Device) access.
    pub noncacheable_per_8b: u64,
    /// Per DC by VA.
    pub dc_by_va: u64,
    /// Extra per dirty line written back by maintenance.
    pub writeback: u64,
    /// Per DC by set/way over all local levels.
    pub set_way_all: u64,
    /// IC IVAU.
    pub ic_ivau: u64,
    /// IC IALLU/IALLUIS.
    pub ic_iallu: u64,
    /// DSB.
    pub dsb: u64,
    /// ISB.
    pub isb: u64,
    /// MSR SCTLR.
    pub sctlr: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            cacheable_per_8b: 1,
            line_fill: 100,
            noncacheable_per_8b: 200,
            dc_by_va: 20,
            writeback: 100,
            set_way_all: 100_000,
            ic_ivau: 20,
            ic_iallu: 200,
            dsb: 100,
            isb: 20,
            sctlr: 10,
        }
    }
}

impl CostModel {
    /// Where the costs come from (printed with them).
    pub const SOURCE: &'static str = "per-operation costs for a 2 GHz Cortex-A57/A72-class core \
        with DDR4 (cachesim::cost); they rank handoff variants, they do not predict a board";

    /// Estimated cycles for `c`.
    pub fn cycles(&self, c: &Counters) -> u64 {
        let dc: u64 = c.dc.iter().sum();
        let wb: u64 = c.writebacks.iter().sum();
        let sw: u64 = c.set_way.iter().sum();
        c.cacheable_bytes.div_ceil(8) * self.cacheable_per_8b
            + c.line_fills * self.line_fill
            + c.noncacheable_bytes.div_ceil(8) * self.noncacheable_per_8b
            + dc * self.dc_by_va
            + wb * self.writeback
            + sw * self.set_way_all
            + c.ic_count(IcOp::Ivau) * self.ic_ivau
            + c.ic_all_count() * self.ic_iallu
            + c.dsb * self.dsb
            + c.isb * self.isb
            + c.sctlr_writes * self.sctlr
    }
}

/// The costs, as `kexec sim` prints them (three lines, no final newline).
impl fmt::Display for CostModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cost model, cycles per operation ASSUMED ({}):\n  cacheable access {}/8 B, line fill {}, \
             non-cacheable access {}/8 B, DC by VA {} (+{} per dirty write-back), DC set/way (all) {},\n  \
             IC IVAU {}, IC IALLU {}, DSB {}, ISB {}, MSR SCTLR {}",
            Self::SOURCE,
            self.cacheable_per_8b,
            self.line_fill,
            self.noncacheable_per_8b,
            self.dc_by_va,
            self.writeback,
            self.set_way_all,
            self.ic_ivau,
            self.ic_iallu,
            self.dsb,
            self.isb,
            self.sctlr
        )
    }
}

/// `f` of each pair of fields of `a` and `b`.
fn fieldwise(a: &Counters, b: &Counters, f: impl Fn(u64, u64) -> u64) -> Counters {
    let mut c = Counters::default();
    for i in 0..5 {
        c.dc[i] = f(a.dc[i], b.dc[i]);
    }
    for i in 0..2 {
        c.set_way[i] = f(a.set_way[i], b.set_way[i]);
    }
    for i in 0..3 {
        c.ic[i] = f(a.ic[i], b.ic[i]);
        c.writebacks[i] = f(a.writebacks[i], b.writebacks[i]);
    }
    c.dmb = f(a.dmb, b.dmb);
    c.dsb = f(a.dsb, b.dsb);
    c.isb = f(a.isb, b.isb);
    c.sctlr_writes = f(a.sctlr_writes, b.sctlr_writes);
    c.cacheable_bytes = f(a.cacheable_bytes, b.cacheable_bytes);
    c.noncacheable_bytes = f(a.noncacheable_bytes, b.noncacheable_bytes);
    c.line_fills = f(a.line_fills, b.line_fills);
    c.fetched_bytes = f(a.fetched_bytes, b.fetched_bytes);
    c
}

/// The difference of two counter snapshots (saturating).
pub fn counters_delta(after: &Counters, before: &Counters) -> Counters {
    fieldwise(after, before, u64::saturating_sub)
}

/// `a + b`, field by field (saturating).
pub fn counters_add(a: &Counters, b: &Counters) -> Counters {
    fieldwise(a, b, u64::saturating_add)
}

/// Counts and cost of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseCost {
    /// Phase name ("relocate", "purgatory", "secondaries": the work of
    /// the secondary CPUs, done beside the boot CPU's; the report's total
    /// sums work, not time).
    pub name: &'static str,
    /// Operation counts.
    pub counters: Counters,
    /// Estimated cycles under [`CostModel::default`].
    pub cycles: u64,
}

/// The result of one successful simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Configuration name.
    pub config: &'static str,
    /// CTR_EL0 of the configuration.
    pub ctr_el0: u64,
    /// Adversary seed.
    pub seed: u64,
    /// Bytes of segments checked at entry.
    pub checked_bytes: u64,
    /// Per-phase counts and costs.
    pub phases: Vec<PhaseCost>,
}

impl Report {
    /// Total estimated cycles.
    pub fn total_cycles(&self) -> u64 {
        self.phases.iter().map(|p| p.cycles).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "config {} (CTR_EL0={:#010x}), seed {}: OK, {} bytes checked at entry",
            self.config, self.ctr_el0, self.seed, self.checked_bytes
        )?;
        for p in &self.phases {
            let c = &p.counters;
            writeln!(
                f,
                "  {:<10} DC CVAC/CIVAC/IVAC/CVAU/ZVA {}/{}/{}/{}/{}  set/way {}  IC IVAU/IALLU {}/{}  DSB {}  ISB {}",
                p.name,
                c.dc_count(DcOp::Cvac),
                c.dc_count(DcOp::Civac),
                c.dc_count(DcOp::Ivac),
                c.dc_count(DcOp::Cvau),
                c.dc_count(DcOp::Zva),
                c.set_way_total(),
                c.ic_count(IcOp::Ivau),
                c.ic_all_count(),
                c.dsb,
                c.isb
            )?;
            writeln!(
                f,
                "  {:<10} cacheable {} B, non-cacheable {} B, fills {}, write-backs L1/L2/SLC {}/{}/{}  ≈ {} cycles (assumed costs)",
                "",
                c.cacheable_bytes,
                c.noncacheable_bytes,
                c.line_fills,
                c.writebacks_from(Level::L1),
                c.writebacks_from(Level::L2),
                c.writebacks_from(Level::System),
                p.cycles
            )?;
        }
        write!(f, "  total ≈ {} cycles", self.total_cycles())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_add_up() {
        let c = Counters {
            dsb: 2,
            isb: 1,
            noncacheable_bytes: 16,
            ..Counters::default()
        };
        assert_eq!(CostModel::default().cycles(&c), 2 * 100 + 20 + 2 * 200);
    }
}

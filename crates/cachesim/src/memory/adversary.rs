//! The seeded adversary: its per-mille probabilities and the step it
//! takes before every modelled instruction (evictions, speculative
//! allocation and fetch, early completion of maintenance and of SCTLR
//! writes).

use super::{align_down, Event, Level, Line, MemorySystem};

/// The adversary acts before one data access in this many.
const DATA_STEP_STRIDE: u64 = 4;

/// Per-mille probabilities of adversarial actions at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adversary {
    /// Evict (write back) a line.
    pub evict: u32,
    /// Speculatively allocate a clean line (M+C on).
    pub spec_alloc: u32,
    /// Speculatively fill the I-cache (I on).
    pub ifill: u32,
    /// Fetch instructions ahead into the fetch buffer.
    pub prefetch: u32,
    /// Complete one queued maintenance operation early.
    pub complete: u32,
    /// Let a pending SCTLR write take effect early.
    pub sctlr_early: u32,
    /// Perform a DC IVAC as a clean+invalidate. Both outcomes are real:
    /// some cores always clean dirty data first (Cortex-A53 TRM: "if the
    /// data is dirty within the cluster then a clean is performed before
    /// the invalidate"; Cortex-A76 TRM A6.2.4: DC IVAC "treated as DC
    /// CIVAC"; the Arm ARM upgrades it at EL1 when HCR_EL2.VM is set),
    /// others discard it, which is how an IVAC-for-CIVAC bug stays latent on
    /// one board and hangs another.
    pub ivac_cleans: u32,
    /// Let a non-cacheable read through a Normal-NC or Device *mapping*
    /// (MMU on) hit a line a cache still holds for the location. Arm ARM:
    /// mismatched memory attributes (the old kernel mapped everything
    /// write-back) can lose coherency until the location is cleaned and
    /// invalidated; Cortex-A53/A35 TRMs call such a hit "unexpected",
    /// "architecturally UNPREDICTABLE", and ignore it, which other cores
    /// need not do.
    pub nc_hit: u32,
    /// With SCTLR.I = 0, let the I-cache still be used: a fetch hits a line
    /// the I-cache holds (always), and a missing line, or any executable
    /// line at any step, is allocated with this probability. Fills come
    /// from the PoC: with SCTLR.I = 0 (and the MMU off) instruction
    /// fetches are Non-cacheable. The architecture does not promise an
    /// I-cache that is idle while SCTLR.I = 0; Linux's `set_sctlr_el1`
    /// (arch/arm64/include/asm/assembler.h) invalidates the I-cache right
    /// after enabling the MMU "so that any instructions fetched
    /// speculatively from the PoC are discarded". 0 = the permissive model
    /// (no lookup, no allocation while SCTLR.I = 0).
    pub icache_while_disabled: u32,
}

impl Adversary {
    /// The default probabilities, with the early-completion rate varied by
    /// seed (lazy, moderate, eager), so that some runs keep every
    /// maintenance operation queued until a DSB and others complete them at
    /// once.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            complete: [0, 50, 300][usize::try_from(seed % 3).unwrap_or(0)],
            // One seed in four runs the permissive I-cache, where stale
            // I-cache lines may sit over the purgatory at entry (see
            // `sim::setup::purgatory_entry_state`).
            icache_while_disabled: if seed % 4 == 3 { 0 } else { 100 },
            ..Self::default()
        }
    }
}

impl Default for Adversary {
    fn default() -> Self {
        Self {
            evict: 150,
            spec_alloc: 150,
            ifill: 100,
            prefetch: 100,
            complete: 300,
            sctlr_early: 100,
            ivac_cleans: 300,
            nc_hit: 300,
            icache_while_disabled: 100,
        }
    }
}

impl MemorySystem {
    fn random_line_in(&mut self, ranges_exec: bool, size: u64) -> Option<u64> {
        let n = if ranges_exec {
            self.exec_ranges.len()
        } else {
            self.data_ranges.len()
        };
        if n == 0 {
            return None;
        }
        let i = usize::try_from(self.rng.below(n as u64)).unwrap_or(0);
        let (s, l) = if ranges_exec {
            self.exec_ranges[i]
        } else {
            self.data_ranges[i]
        };
        let off = self.rng.below(l);
        Some(align_down(s + off, size))
    }

    /// Whether speculative data allocation is possible at all.
    fn data_cacheable(&self) -> bool {
        self.sctlr.m && self.sctlr.c
    }

    /// The adversary's turn before a data access: it acts before one data
    /// access in [`DATA_STEP_STRIDE`] (with the same per-step
    /// probabilities), which keeps page copies cheap to model while every
    /// maintenance instruction and barrier still gets its own turn.
    pub(super) fn data_step(&mut self) {
        self.data_accesses += 1;
        if self.data_accesses.is_multiple_of(DATA_STEP_STRIDE) {
            self.step();
        } else {
            self.step += 1;
        }
    }

    /// One adversarial step, taken before every modelled instruction.
    pub(super) fn step(&mut self) {
        self.step += 1;
        let adv = self.adv;
        if self.rng.chance(adv.evict) {
            let all = self.data_ranges.len() + self.exec_ranges.len();
            if all > 0 {
                let pick_exec = self.rng.below(all as u64) >= self.data_ranges.len() as u64;
                if let Some(line) = self.random_line_in(pick_exec, self.cfg.d_line) {
                    let lv = self.levels_present();
                    let level = lv[usize::try_from(self.rng.below(lv.len() as u64)).unwrap_or(0)];
                    self.evict(level, line);
                }
            }
        }
        self.speculate();
        if self.rng.chance(adv.prefetch) {
            let predicted = match self.branch_target {
                Some(t) if self.rng.chance(500) => Some(align_down(t, self.cfg.i_line)),
                _ => None,
            };
            if let Some(line) = predicted.or_else(|| self.random_line_in(true, self.cfg.i_line)) {
                let data = self.ifetch_line(line);
                self.fetch_buf.insert(line, data);
                self.record(Event::Prefetch(line));
            }
        }
        if !self.pending.is_empty() && self.rng.chance(adv.complete) {
            let i = usize::try_from(self.rng.below(self.pending.len() as u64)).unwrap_or(0);
            let p = self.pending.remove(i);
            self.perform(p);
        }
        if self.pending_sctlr.is_some() && self.rng.chance(adv.sctlr_early) {
            self.commit_sctlr();
        }
    }

    /// Speculative data allocation and I-cache fill.
    pub(super) fn speculate(&mut self) {
        let adv = self.adv;
        if self.data_cacheable() && self.rng.chance(adv.spec_alloc) {
            if let Some(line) = self
                .random_line_in(false, self.cfg.d_line)
                .filter(|&l| self.maps_write_back(l))
            {
                let level = if self.rng.chance(500) {
                    Level::L1
                } else {
                    Level::L2
                };
                if !self.levels[level.index()].contains_key(&line) {
                    let data = self.view_line(line, level);
                    self.levels[level.index()].insert(line, Line { dirty: false, data });
                    self.record(Event::SpecAlloc { level, line });
                }
            }
        }
        if self.sctlr.i && !self.cfg.dic && self.rng.chance(adv.ifill) {
            if let Some(line) = self.random_line_in(true, self.cfg.i_line) {
                let tag = self.icache_tag(line);
                let data = self.pou_bytes(line, self.cfg.i_line).into_boxed_slice();
                self.icache.insert((line, tag), data);
                self.record(Event::IFill { line, tag });
            }
        }
        if !self.sctlr.i && !self.cfg.dic && self.rng.chance(adv.icache_while_disabled) {
            if let Some(line) = self.random_line_in(true, self.cfg.i_line) {
                self.ifill_from_poc(line);
            }
        }
    }

    /// A random number from the adversary's stream (for seeding).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

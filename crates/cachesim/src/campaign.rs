//! The mutation campaign: every mutant (see [`crate::mutant`]) of the real
//! relocation and handoff, run through the simulation until some
//! configuration and seed reports a violation.

use crate::check::{Rule, Violation};
use crate::config::CacheConfig;
use crate::mutant::{units, Mutation, Site};
use crate::sim::{real_handoff, real_relocate, run_with, SimOptions, SimPlan};
use std::fmt;

/// The outcome of one mutant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutantOutcome {
    /// Scenario label.
    pub scenario: &'static str,
    /// Purgatory flags of the scenario.
    pub flags: u64,
    /// Whether the scenario's header names secondary CPUs (the boot CPU's
    /// path is another one then).
    pub smp: bool,
    /// The (first) site, as recorded on the first configuration.
    pub site: Site,
    /// How many sites the unit has (iterations of a loop; 1 otherwise).
    pub unit_len: usize,
    /// Index of the site among the sites of its phase.
    pub index_in_phase: usize,
    /// The mutation.
    pub mutation: Mutation,
    /// The first (configuration, seed, rule) that detected it by a rule
    /// other than [`Rule::Fault`], or else the first fault.
    pub killed_by: Option<(&'static str, u64, Rule)>,
}

impl MutantOutcome {
    /// What identifies "the same mutant" across scenarios: the purgatory
    /// flags (they change the handoff's path), the phase, the site's index
    /// in its phase, the operation and the mutation. E.g.
    /// `verify purgatory.6 IC IALLU / remove`.
    pub fn key(&self) -> String {
        mutant_key(
            self.flags,
            self.smp,
            &self.site,
            self.index_in_phase,
            self.mutation,
        )
    }
}

fn mutant_key(flags: u64, smp: bool, site: &Site, index_in_phase: usize, m: Mutation) -> String {
    // The purgatory's flags and secondaries change its path; the
    // relocation's path is the same under every flag.
    let mode = if site.phase == "relocate" {
        "any"
    } else if flags & handoff::Flags::NO_VERIFY != 0 {
        "no-verify"
    } else if smp {
        "smp"
    } else {
        "verify"
    };
    format!("{mode} {}.{index_in_phase} {} / {m}", site.phase, site.kind)
}

impl fmt::Display for MutantOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<26} {:<48} {}", self.scenario, self.key(), self.site)?;
        if self.unit_len > 1 {
            write!(f, " (and {} more iterations)", self.unit_len - 1)?;
        }
        f.write_str(": ")?;
        match &self.killed_by {
            Some((c, s, r)) => write!(f, "killed on {c} seed {s} ({r})"),
            None => f.write_str("SURVIVED"),
        }
    }
}

/// Every mutant of the code `opts` runs (the real relocation and handoff),
/// each tried on up to `seeds` runs, seed `n` on configuration
/// `configs[n % len]`, until one run reports a violation of a rule other
/// than [`Rule::Fault`] (a fault says the model stopped, not which rule of
/// booting.rst the mutant breaks: it is the kill only if no seed shows
/// another rule). Mutants whose
/// key is in `skip` (already killed elsewhere) are not run. Fails with the
/// violation if the unmutated code fails one of the trials.
pub fn mutation_campaign(
    plan: &SimPlan,
    configs: &[CacheConfig],
    seeds: std::ops::Range<u64>,
    opts: &SimOptions,
    scenario: &'static str,
    skip: &std::collections::BTreeSet<String>,
) -> Result<Vec<MutantOutcome>, Violation> {
    let record = |cfg: &CacheConfig| {
        run_with(
            plan,
            cfg,
            0,
            opts,
            None,
            &mut real_relocate,
            &mut real_handoff,
        )
        .sites
    };
    let per_config: Vec<Vec<Site>> = configs.iter().map(record).collect();
    // The unmutated code must pass every trial, or kills mean nothing.
    for seed in seeds.clone() {
        let n = usize::try_from(seed).unwrap_or(0) % configs.len().max(1);
        if let Some(cfg) = configs.get(n) {
            let r = run_with(
                plan,
                cfg,
                seed,
                opts,
                None,
                &mut real_relocate,
                &mut real_handoff,
            );
            r.result?;
        }
    }
    let Some(base) = per_config.first() else {
        return Ok(Vec::new());
    };
    let per_config_units: Vec<Vec<Vec<Site>>> = per_config.iter().map(|s| units(s)).collect();
    let mut out = Vec::new();
    for (u, unit) in units(base).iter().enumerate() {
        let site = &unit[0];
        let index_in_phase = base[..site.index]
            .iter()
            .filter(|s| s.phase == site.phase)
            .count();
        for mutation in Mutation::all() {
            if !unit.iter().any(|s| mutation.applies(s)) {
                continue;
            }
            let smp = opts.smp.is_some();
            if skip.contains(&mutant_key(opts.flags, smp, site, index_in_phase, mutation)) {
                continue;
            }
            let mut killed_by = None;
            let mut fault = None;
            for seed in seeds.clone() {
                let n = usize::try_from(seed).unwrap_or(0) % configs.len();
                let cfg = &configs[n];
                let Some(members) = per_config_units[n]
                    .get(u)
                    .filter(|m| m[0].kind == site.kind && m.len() == unit.len())
                else {
                    continue;
                };
                if !members.iter().any(|s| mutation.applies(s)) {
                    continue;
                }
                let r = run_with(
                    plan,
                    cfg,
                    seed,
                    opts,
                    Some((members.as_slice(), mutation)),
                    &mut real_relocate,
                    &mut real_handoff,
                );
                match r.result {
                    Err(v) if v.rule == Rule::Fault => {
                        fault.get_or_insert((cfg.name, seed, v.rule));
                    }
                    Err(v) => {
                        killed_by = Some((cfg.name, seed, v.rule));
                        break;
                    }
                    Ok(_) => {}
                }
            }
            let killed_by = killed_by.or(fault);
            out.push(MutantOutcome {
                scenario,
                flags: opts.flags,
                smp,
                site: *site,
                unit_len: unit.len(),
                index_in_phase,
                mutation,
                killed_by,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::CacheConfig;
    use crate::memory::MemorySystem;
    use crate::mutant::{Mutant, Mutation, OpKind};
    use crate::sim::SimCpu;
    use handoff::Machine;

    fn cpu() -> SimCpu {
        SimCpu::new(MemorySystem::new(
            CacheConfig::named("a57-like").expect("config"),
            0,
        ))
    }

    fn program(m: &mut Mutant<SimCpu>) {
        for va in (0x1000..0x1100).step_by(64) {
            m.dc_civac(va);
        }
        m.dsb_sy();
        m.ic_iallu();
        m.isb();
    }

    #[test]
    fn sites_group_runs() {
        let mut r = Mutant::recorder(cpu());
        program(&mut r);
        let kinds: Vec<(OpKind, usize)> = r.sites().iter().map(|s| (s.kind, s.len)).collect();
        assert_eq!(
            kinds,
            [
                (OpKind::DcCivac, 4),
                (OpKind::DsbSy, 1),
                (OpKind::IcIallu, 1),
                (OpKind::Isb, 1)
            ]
        );
    }

    fn dc_counts(site: usize, m: Mutation) -> [u64; 5] {
        let mut r = Mutant::recorder(cpu());
        program(&mut r);
        let s = r.sites()[site];
        let mut x = Mutant::new(cpu(), &s, m);
        program(&mut x);
        x.inner().memory.counters().dc
    }

    #[test]
    fn mutations_do_what_they_say() {
        assert_eq!(dc_counts(0, Mutation::Remove), [0, 0, 0, 0, 0]);
        assert_eq!(dc_counts(0, Mutation::Shorten), [0, 3, 0, 0, 0]);
        assert_eq!(dc_counts(0, Mutation::Weaken), [4, 0, 0, 0, 0]);
        let mut r = Mutant::recorder(cpu());
        program(&mut r);
        let s = r.sites()[2];
        let mut x = Mutant::new(cpu(), &s, Mutation::Remove);
        program(&mut x);
        assert_eq!(x.inner().memory.counters().ic, [0, 0, 0]);
        assert_eq!(x.inner().memory.counters().isb, 1);
    }
}

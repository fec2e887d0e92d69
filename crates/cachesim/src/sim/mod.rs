//! Running the whole path in the model: the old kernel's state, the
//! kernel's relocation, the purgatory's [`handoff::handoff`], and the checks
//! at kernel entry.
//!
//! - `plan`: what to run ([`SimPlan`], [`SimOptions`]);
//! - `loader_plan`: a loader's plan as the model's input ([`SimInput`]:
//!   the purgatory header read back, long segments sampled);
//! - `cpu`: the model as a [`handoff::Machine`] ([`SimCpu`]);
//! - `setup`: the layout and the state a run starts from;
//! - this file: a run, its phases, and the checks between them.

mod cpu;
pub mod loader_plan;
mod plan;
mod setup;
mod smp;
mod trace;

pub use cpu::SimCpu;
pub use loader_plan::{LoaderPlanError, LoaderSegment, SampledSegment, Sampling, SimInput, Window};
pub use plan::{regime_for_seed, sha2_for_seed, Scenario, SimOptions, SimPlan, SimSegment};
pub use smp::{secondary_mpidr, SecondaryRun, Smp, SmpOptions, MODEL_PSCI_VERSION};
pub use trace::SysTrace;

use crate::check::{
    check_code, check_cpu, check_data, check_mmu_off, execute_and_compare, Expected, Location,
    Rule, Violation,
};
use crate::config::CacheConfig;
use crate::cost::{counters_delta, CostModel, PhaseCost, Report};
use crate::memory::{Counters, MemorySystem, PAGE_SIZE};
use crate::mutant::{Mutant, Mutation, Site};
use crate::relocate::{relocate_new_kernel, RelocStyle};
use handoff::pagetable::MemAttr;
use handoff::{HandoffParams, Outcome, PurgatoryMemory};
use setup::{layout, old_kernel, purgatory_entry_state, Layout, STACK_FRAME};

/// The result of one run: the verdict and the sites the code went through.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Report or the first violation.
    pub result: Result<Report, Violation>,
    /// Maintenance sites, in program order.
    pub sites: Vec<Site>,
    /// The system instructions of the purgatory's run (empty when it did
    /// not run: `kexec_file_load`, or a failure before it).
    pub purgatory_trace: SysTrace,
    /// The system instructions of each secondary CPU that ran, by MPIDR.
    pub secondary_traces: Vec<(u64, SysTrace)>,
    /// How many secondaries ran and turned themselves off.
    pub secondaries_off: usize,
}

fn phase_cost(name: &'static str, c: Counters) -> PhaseCost {
    PhaseCost {
        name,
        counters: c,
        cycles: CostModel::default().cycles(&c),
    }
}

/// The purgatory code under test: by default [`handoff::handoff`].
pub type PurgatoryFn<'a> = dyn FnMut(&mut Mutant<SimCpu>, &HandoffParams, &PurgatoryMemory) + 'a;
/// The relocation code under test: by default [`relocate_new_kernel`].
pub type RelocateFn<'a> = dyn FnMut(&mut Mutant<SimCpu>, u64, u64, u64, RelocStyle) + 'a;

/// The default purgatory: the real [`handoff::handoff`].
pub fn real_handoff(cpu: &mut Mutant<SimCpu>, p: &HandoffParams, own: &PurgatoryMemory) {
    if let Outcome::Parked((), handoff::Failure::DigestMismatch { failed, .. }) =
        handoff::handoff(cpu, p, own)
    {
        cpu.inner_mut().failed_segments = failed;
    }
}

/// The default relocation: [`relocate_new_kernel`].
pub fn real_relocate(cpu: &mut Mutant<SimCpu>, head: u64, entry: u64, x0: u64, style: RelocStyle) {
    relocate_new_kernel(cpu, head, entry, x0, style);
}

/// Run everything with explicit code under test and an optional mutation.
pub fn run_with(
    plan: &SimPlan,
    cfg: &CacheConfig,
    seed: u64,
    opts: &SimOptions,
    mutation: Option<(&[Site], Mutation)>,
    relocate: &mut RelocateFn<'_>,
    purgatory: &mut PurgatoryFn<'_>,
) -> RunResult {
    let lay = match layout(plan, opts.flags, opts.purgatory_base, opts.smp.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            let m = MemorySystem::new(cfg.clone(), seed);
            return RunResult {
                result: Err(Violation::new(
                    &m,
                    seed,
                    Rule::NoEntry,
                    None,
                    Location::Register,
                    e,
                )),
                sites: Vec::new(),
                purgatory_trace: SysTrace::default(),
                secondary_traces: Vec::new(),
                secondaries_off: 0,
            };
        }
    };
    let memory = MemorySystem::new(cfg.clone(), seed);
    let mut sim = SimCpu::new(memory);
    sim.set_cpu(
        opts.regime.unwrap_or(regime_for_seed(seed)),
        opts.sha2_instructions.unwrap_or(sha2_for_seed(seed)),
    );
    sim.set_clock(opts.clock_step_ns);
    if let Some(s) = &opts.smp {
        let entry = lay.own.image.start + SECONDARY_ENTRY_OFFSET;
        sim.set_smp(Smp::new(s, &lay.params, lay.own, entry, seed));
    }
    let mut cpu = match mutation {
        Some((sites, mu)) => Mutant::new_unit(sim, sites, mu),
        None => Mutant::recorder(sim),
    };
    let mut phases = Vec::new();
    let result = (|| {
        match opts.scenario {
            Scenario::KexecFile => {
                let before = old_kernel(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    Scenario::KexecFile,
                    &mut cpu,
                    relocate,
                );
                let c = counters_delta(&cpu.inner().memory.counters(), &before);
                phases.push(phase_cost("relocate", c));
            }
            Scenario::KexecLoad(style) => {
                let before = old_kernel(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    Scenario::KexecLoad(style),
                    &mut cpu,
                    relocate,
                );
                let c = counters_delta(&cpu.inner().memory.counters(), &before);
                phases.push(phase_cost("relocate", c));
                if cpu.inner().entered.last() != Some(&lay.own.image.start) {
                    let m = &cpu.inner().memory;
                    return Err(Violation::new(
                        m,
                        seed,
                        Rule::NoEntry,
                        None,
                        Location::Register,
                        "the relocation did not branch to the purgatory".into(),
                    ));
                }
                let m = &mut cpu.inner_mut().memory;
                if let Some(f) = m.fault().cloned() {
                    return Err(Violation::new(
                        m,
                        seed,
                        Rule::Fault,
                        Some(f.addr),
                        Location::Register,
                        f.what,
                    ));
                }
                // The purgatory's entry contract (ARM64-KEXEC.md §3): MMU
                // and caches off, its code what the I-side fetches.
                let code = Expected {
                    addr: lay.purg_image.0,
                    bytes: &lay.purg_image.1,
                };
                check_mmu_off(m, seed, "to the purgatory")?;
                check_code(m, seed, code)?;
                execute_and_compare(m, seed, code, lay.purg_image.1.len())?;
            }
            Scenario::PurgatoryOnly => {
                purgatory_entry_state(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    opts.flags,
                    &mut cpu.inner_mut().memory,
                );
            }
        }
        if opts.scenario != Scenario::KexecFile {
            run_purgatory(&mut cpu, &lay, seed, purgatory, &mut phases)?;
        }
        let m = &cpu.inner().memory;
        fault_check(m, seed)?;
        if cpu.inner().entered.last() != Some(&plan.entry) {
            return Err(Violation::new(
                m,
                seed,
                Rule::NoEntry,
                None,
                Location::Register,
                "the kernel was not entered".into(),
            ));
        }
        cpu.inner().check_secondaries(seed)?;
        check_cpu(m, seed, lay.params.dtb)?;
        let images: Vec<Expected<'_>> = lay
            .segs
            .iter()
            .map(|(a, b)| Expected { addr: *a, bytes: b })
            .collect();
        check_data(m, seed, &images)?;
        let kernel = Expected {
            addr: lay.kernel.0,
            bytes: &lay.kernel.1,
        };
        check_code(m, seed, kernel)?;
        let il = usize::try_from(cfg.i_line).unwrap_or(64);
        let m = &mut cpu.inner_mut().memory;
        let entry = Expected {
            addr: plan.entry,
            bytes: &lay.kernel.1[usize::try_from(plan.entry - lay.kernel.0).unwrap_or(0)..],
        };
        execute_and_compare(m, seed, entry, 2 * il)?;
        Ok(())
    })();
    let sites = cpu.sites().to_vec();
    let purgatory_trace = cpu
        .inner()
        .system_instructions()
        .cloned()
        .unwrap_or_default();
    let (secondary_traces, secondaries_off) = cpu
        .inner()
        .smp()
        .map(|s| (s.traces(), s.turned_off()))
        .unwrap_or_default();
    let checked: u64 = lay.segs.iter().map(|(_, b)| b.len() as u64).sum();
    RunResult {
        result: result.map(|()| Report {
            config: cfg.name,
            ctr_el0: cfg.ctr_el0(),
            seed,
            checked_bytes: checked,
            phases,
        }),
        sites,
        purgatory_trace,
        secondary_traces,
        secondaries_off,
    }
}

/// Where the model's purgatory image has its secondary entry (any address
/// in the image: the model fetches the image's lines, not this one's).
const SECONDARY_ENTRY_OFFSET: u64 = 0x800;

/// The purgatory phase: run `purgatory` from its entry state, record its
/// cost, and report what it got wrong on the way.
fn run_purgatory(
    cpu: &mut Mutant<SimCpu>,
    lay: &Layout,
    seed: u64,
    purgatory: &mut PurgatoryFn<'_>,
    phases: &mut Vec<PhaseCost>,
) -> Result<(), Violation> {
    let start = cpu.inner().memory.counters();
    cpu.inner_mut().memory.phase("purgatory");
    cpu.set_phase("purgatory");
    let entered_before = cpu.inner().entered.len();
    cpu.inner_mut()
        .set_running_code(lay.purg_image.0, lay.purg_image.1.clone());
    cpu.inner_mut().enter_purgatory();
    // The old kernel's regime (everything Normal write-back) may have left
    // TLB entries for the purgatory's own pages.
    for r in [
        lay.own.image,
        lay.own.tables,
        lay.own.stack,
        lay.own.mailbox,
    ] {
        for page in (r.start..r.start + r.len).step_by(usize::try_from(PAGE_SIZE).unwrap_or(4096)) {
            cpu.inner_mut().memory.seed_tlb(page, MemAttr::NormalWb);
        }
    }
    // The entry code's and purgatory_main's frames at the top of the stack.
    let top = lay.own.stack.start + lay.own.stack.len;
    let frame = SimSegment::generated(
        top - STACK_FRAME,
        usize::try_from(STACK_FRAME).unwrap_or(128),
        0x57ac,
    )
    .bytes;
    cpu.inner_mut().set_stack_frame(top - STACK_FRAME, frame);
    cpu.inner_mut().memory.predict_branch(lay.params.entry);
    purgatory(cpu, &lay.params, &lay.own);
    cpu.inner_mut().code = None;
    cpu.inner_mut().stack_frame = None;
    if let Some(v) = cpu.inner().smp().and_then(|s| s.violation()) {
        return Err(v.clone());
    }
    let m = &cpu.inner().memory;
    if let Some(a) = cpu.inner().stack_corrupt {
        return Err(Violation::new(
            m,
            seed,
            Rule::StackCorrupted,
            Some(a),
            Location::Dram,
            "the purgatory read back its stack frame wrong".into(),
        ));
    }
    if let Some(a) = cpu.inner().stale_fetch {
        return Err(Violation::new(
            m,
            seed,
            Rule::StaleCodeExecuted,
            Some(a),
            Location::ICache(0),
            "the purgatory fetched stale instructions of its own image".into(),
        ));
    }
    let spent = counters_delta(&m.counters(), &start);
    match cpu.inner().smp().map(|s| s.spent()) {
        Some(secondaries) if secondaries != Counters::default() => {
            phases.push(phase_cost(
                "purgatory",
                counters_delta(&spent, &secondaries),
            ));
            phases.push(phase_cost("secondaries", secondaries));
        }
        _ => phases.push(phase_cost("purgatory", spent)),
    }
    fault_check(m, seed)?;
    if let Some(a) = cpu.inner().hashed_uncached {
        return Err(Violation::new(
            m,
            seed,
            Rule::CachesNotOn,
            Some(a),
            Location::Register,
            "the purgatory set SCTLR.{M,C,I} but hashed before the write took effect".into(),
        ));
    }
    let claims_caches_on = String::from_utf8_lossy(&cpu.inner().console).contains("caches on");
    if let (true, Some(a)) = (claims_caches_on, cpu.inner().uncached_hash) {
        return Err(Violation::new(
            m,
            seed,
            Rule::CachesNotOn,
            Some(a),
            Location::Register,
            "the purgatory reported verifying with its caches on, but hashed this segment \
             without them (reads not cacheable, or SCTLR.I not in effect)"
                .into(),
        ));
    }
    if cpu.inner().parked {
        let failed = cpu.inner().failed_segments;
        let seg = lay
            .segs
            .iter()
            .enumerate()
            .find(|(i, _)| failed & (1 << i) != 0)
            .map(|(_, (a, _))| *a);
        return Err(Violation::new(
            m,
            seed,
            Rule::VerificationFailed,
            seg,
            Location::Dram,
            format!(
                "purgatory parked: digest mismatch, failed-segment mask {failed:#x} \
                     (it hashed bytes other than the image)"
            ),
        ));
    }
    if cpu.inner().entered.len() == entered_before {
        return Err(Violation::new(
            m,
            seed,
            Rule::NoEntry,
            None,
            Location::Register,
            "the purgatory returned without entering the kernel".into(),
        ));
    }
    Ok(())
}

/// Run the whole `kexec_load` path (Linux >= 5.16 relocation, the real
/// purgatory handoff) for `plan` on `config` with adversary `seed`.
pub fn simulate(plan: &SimPlan, config: &CacheConfig, seed: u64) -> Result<Report, Violation> {
    simulate_with(plan, config, seed, &SimOptions::default())
}

/// [`simulate`] with options.
pub fn simulate_with(
    plan: &SimPlan,
    config: &CacheConfig,
    seed: u64,
    opts: &SimOptions,
) -> Result<Report, Violation> {
    run_with(
        plan,
        config,
        seed,
        opts,
        None,
        &mut real_relocate,
        &mut real_handoff,
    )
    .result
}

/// The outcome of many seeds on one configuration (for `kexec sim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSweep {
    /// Seeds that passed (all of them, on success).
    pub runs: u64,
    /// The report of the first seed.
    pub first: Report,
}

/// Run `seeds` adversary seeds of [`simulate_with`]; stop at the first
/// violation.
pub fn simulate_seeds(
    plan: &SimPlan,
    config: &CacheConfig,
    seeds: std::ops::Range<u64>,
    opts: &SimOptions,
) -> Result<SeedSweep, Violation> {
    let mut first = None;
    let mut runs = 0;
    for seed in seeds {
        let r = simulate_with(plan, config, seed, opts)?;
        first.get_or_insert(r);
        runs += 1;
    }
    match first {
        Some(first) => Ok(SeedSweep { runs, first }),
        None => {
            let m = MemorySystem::new(config.clone(), 0);
            Err(Violation::new(
                &m,
                0,
                Rule::NoEntry,
                None,
                Location::Register,
                "no seeds to run".into(),
            ))
        }
    }
}

/// A fault the model recorded, as a [`Rule::Fault`] violation.
fn fault_check(m: &MemorySystem, seed: u64) -> Result<(), Violation> {
    match m.fault() {
        Some(f) => Err(Violation::new(
            m,
            seed,
            Rule::Fault,
            Some(f.addr),
            Location::Register,
            f.what.clone(),
        )),
        None => Ok(()),
    }
}

//! Hashing on several CPUs in the model (issue 15): the real
//! `handoff::smp` sequences, the boot CPU's and each secondary's, run
//! against the model's PSCI firmware on every configuration, pass; each
//! step a secondary takes is necessary (its mutants are killed, or listed
//! with the reason they change nothing that matters); and the model says
//! what it did (the CPUs that hashed, each secondary's system
//! instructions).

use cachesim::campaign::{mutation_campaign, MutantOutcome};
use cachesim::mutant::{Mutation, OpKind};
use cachesim::sim::{
    real_handoff, real_relocate, run_with, secondary_mpidr, RunResult, SecondaryRun, SmpOptions,
};
use cachesim::{CacheConfig, Rule, Scenario, SimOptions, SimPlan};
use handoff::params::MAX_SECONDARIES;
use handoff::{Conduit, Regime};
use std::collections::{BTreeMap, BTreeSet};

const REGIMES: [Regime; 3] = [Regime::El1, Regime::El2, Regime::El2Host];

/// `n` secondaries on the conduit of `regime`, run when the seed says.
fn opts(scenario: Scenario, regime: Regime, n: usize) -> SimOptions {
    SimOptions {
        scenario,
        regime: Some(regime),
        smp: Some(SmpOptions::for_regime(n, regime)),
        ..SimOptions::default()
    }
}

/// [`opts`] with the secondaries run at `run` on every seed (a mutant's
/// site is found by its place in the run).
fn fixed(scenario: Scenario, regime: Regime, n: usize, run: SecondaryRun) -> SimOptions {
    SimOptions {
        smp: Some(SmpOptions {
            run,
            ..SmpOptions::for_regime(n, regime)
        }),
        ..opts(scenario, regime, n)
    }
}

fn run(cfg: &CacheConfig, seed: u64, o: &SimOptions) -> RunResult {
    run_with(
        &SimPlan::tiny(),
        cfg,
        seed,
        o,
        None,
        &mut real_relocate,
        &mut real_handoff,
    )
}

#[test]
fn hashing_on_secondaries_passes_every_configuration_regime_and_entry() {
    let mut runs = 0;
    for cfg in CacheConfig::all_named() {
        for regime in REGIMES {
            for scenario in [
                Scenario::PurgatoryOnly,
                Scenario::KexecLoad(cachesim::relocate::RelocStyle::MmuOn),
            ] {
                // The header names the boot CPU too (as the loader does),
                // except with 7 secondaries: all the header can name.
                for (seed, n) in (0..6).zip([1, 3, 7].into_iter().cycle()) {
                    let mut o = opts(scenario, regime, n);
                    if let Some(s) = o.smp.as_mut() {
                        s.boot_listed = n < MAX_SECONDARIES;
                    }
                    let r = run(&cfg, seed, &o);
                    if let Err(v) = r.result {
                        panic!("{} {regime:?} {scenario:?} {n} secondaries:\n{v}", cfg.name);
                    }
                    assert_eq!(r.secondaries_off, n, "{} {regime:?}", cfg.name);
                    let mpidrs: Vec<u64> = r.secondary_traces.iter().map(|(m, _)| *m).collect();
                    let want: Vec<u64> = (1..=n).map(secondary_mpidr).collect();
                    assert_eq!(mpidrs, want);
                    runs += 1;
                }
            }
        }
    }
    println!("{runs} runs");
}

/// What a secondary executes, in order (its entry code, then
/// `handoff::smp::secondary`), at EL1 and at EL2.
#[test]
fn a_secondarys_system_instructions() {
    let cfg = CacheConfig::named("a57-like").expect("config");
    for (regime, el) in [(Regime::El1, "el1"), (Regime::El2, "el2")] {
        let o = SimOptions {
            sha2_instructions: Some(false),
            ..opts(Scenario::PurgatoryOnly, regime, 1)
        };
        let r = run(&cfg, 0, &o);
        assert!(r.result.is_ok(), "{regime:?}");
        let [(mpidr, t)] = r.secondary_traces.as_slice() else {
            panic!("one secondary: {:?}", r.secondary_traces);
        };
        assert_eq!(*mpidr, 1);
        let s = t.to_string();
        let tlbi = if regime == Regime::El1 {
            "tlbi vmalle1"
        } else {
            "tlbi alle2"
        };
        let call = if regime == Regime::El1 {
            "hvc #0"
        } else {
            "smc #0"
        };
        let want = format!(
            "mrs id_aa64isar0_el1, ic iallu, msr mair_{el}, msr tcr_{el}, msr ttbr0_{el}, \
             {tlbi}, dsb sy, mrs sctlr_{el}, isb, msr sctlr_{el}, isb, mrs sctlr_{el}, isb, \
             msr sctlr_{el}, isb, dsb sy x2, {call}"
        );
        assert!(
            s.ends_with(&want),
            "{regime:?}:\n  got  {s}\n  want …{want}"
        );
        assert!(s.starts_with("msr daifset, mrs currentel"), "{s}");
    }
}

#[test]
fn hvc_at_el2_starts_nothing_and_the_boot_cpu_hashes_alone() {
    let cfg = CacheConfig::named("a57-like").expect("config");
    for regime in [Regime::El2, Regime::El2Host] {
        let o = SimOptions {
            smp: Some(SmpOptions {
                conduit: Conduit::Hvc,
                ..SmpOptions::for_regime(3, regime)
            }),
            ..opts(Scenario::PurgatoryOnly, regime, 3)
        };
        let r = run(&cfg, 1, &o);
        assert!(r.result.is_ok(), "{regime:?}");
        assert_eq!(r.secondaries_off, 0);
        assert!(r.secondary_traces.is_empty());
        assert!(
            !r.purgatory_trace.letters().contains("hvc #0"),
            "{}",
            r.purgatory_trace
        );
    }
}

#[test]
fn a_secondary_in_another_regime_declines_and_turns_off() {
    let cfg = CacheConfig::named("a53-vipt").expect("config");
    let o = SimOptions {
        smp: Some(SmpOptions {
            secondary_regime: Some(Regime::El2Host),
            ..SmpOptions::for_regime(2, Regime::El2)
        }),
        ..opts(Scenario::PurgatoryOnly, Regime::El2, 2)
    };
    for seed in 0..4 {
        let r = run(&cfg, seed, &o);
        if let Err(v) = r.result {
            panic!("seed {seed}:\n{v}");
        }
        assert_eq!(r.secondaries_off, 2);
        for (_, t) in &r.secondary_traces {
            // It declined before its MMU came on: no TLBI, no SCTLR write.
            assert!(!t.letters().contains("tlbi alle2"), "{t}");
            assert!(t.letters().contains("smc #0"), "{t}");
        }
    }
}

fn mutated(
    o: &SimOptions,
    phase: &str,
    n: usize,
    kind: OpKind,
    m: Mutation,
    seed: u64,
) -> RunResult {
    let cfg = CacheConfig::named("a57-like").expect("config");
    let plan = SimPlan::tiny();
    let sites = run(&cfg, 0, o).sites;
    let site = *sites
        .iter()
        .filter(|s| s.phase == phase)
        .nth(n)
        .expect("the site exists");
    assert_eq!(site.kind, kind, "{site}");
    run_with(
        &plan,
        &cfg,
        seed,
        o,
        Some((std::slice::from_ref(&site), m)),
        &mut real_relocate,
        &mut real_handoff,
    )
}

/// The first violation over seeds 0..12, if any.
fn first_violation(
    o: &SimOptions,
    phase: &str,
    n: usize,
    kind: OpKind,
) -> Option<cachesim::Violation> {
    (0..12).find_map(|seed| {
        mutated(o, phase, n, kind, Mutation::Remove, seed)
            .result
            .err()
    })
}

#[test]
fn a_cpu_that_never_comes_up_has_its_share_hashed_by_the_boot_cpu() {
    let cfg = CacheConfig::named("a57-like").expect("config");
    let o = fixed(Scenario::PurgatoryOnly, Regime::El2, 2, SecondaryRun::Never);
    for seed in 0..4 {
        let r = run(&cfg, seed, &o);
        if let Err(v) = r.result {
            panic!("seed {seed}:\n{v}");
        }
        assert_eq!(r.secondaries_off, 0);
        assert!(r.secondary_traces.is_empty());
    }
}

#[test]
fn a_secondary_run_while_the_boot_cpu_waits_passes() {
    for cfg in CacheConfig::all_named() {
        for k in 1..=3 {
            let o = fixed(
                Scenario::PurgatoryOnly,
                Regime::El1,
                2,
                SecondaryRun::AtAffinityInfo(k),
            );
            let r = run(&cfg, u64::from(k), &o);
            if let Err(v) = r.result {
                panic!("{} after {k} polls:\n{v}", cfg.name);
            }
            assert_eq!(r.secondaries_off, 2);
        }
    }
}

#[test]
fn cpu_on_before_the_mailbox_is_complete_is_a_fault() {
    let o = fixed(
        Scenario::PurgatoryOnly,
        Regime::El1,
        1,
        SecondaryRun::AtCpuOn,
    );
    // The boot CPU's DSB after the mailbox writes: the purgatory phase's
    // site right before the secondary's first.
    let cfg = CacheConfig::named("a57-like").expect("config");
    let sites = run(&cfg, 0, &o).sites;
    let first_secondary = sites
        .iter()
        .position(|s| s.phase == "secondary")
        .expect("a secondary ran");
    let dsb = sites[first_secondary - 1];
    assert_eq!((dsb.phase, dsb.kind), ("purgatory", OpKind::DsbSy), "{dsb}");
    let n = sites[..dsb.index]
        .iter()
        .filter(|s| s.phase == "purgatory")
        .count();
    let v = first_violation(&o, "purgatory", n, OpKind::DsbSy).expect("caught");
    assert_eq!(v.rule, Rule::Fault, "{v}");
    assert!(v.detail.contains("CPU_ON with stores not completed"), "{v}");
}

#[test]
fn cpu_off_before_the_result_is_complete_is_a_fault() {
    let o = fixed(
        Scenario::PurgatoryOnly,
        Regime::El1,
        1,
        SecondaryRun::AtCpuOn,
    );
    let cfg = CacheConfig::named("a57-like").expect("config");
    let sites = run(&cfg, 0, &o).sites;
    let last = sites.iter().filter(|s| s.phase == "secondary").count() - 1;
    let v = first_violation(&o, "secondary", last, OpKind::DsbSy).expect("caught");
    assert_eq!(v.rule, Rule::Fault, "{v}");
    assert!(
        v.detail.contains("CPU_OFF with stores not completed"),
        "{v}"
    );
}

#[test]
fn a_secondary_without_its_ic_iallu_fetches_stale_code() {
    // Its first site (after its entry code): stale lines over the
    // purgatory's image, left while its I-cache was off and idle, are
    // fetched once it sets SCTLR.I.
    let o = fixed(
        Scenario::PurgatoryOnly,
        Regime::El1,
        1,
        SecondaryRun::AtCpuOn,
    );
    let v = first_violation(&o, "secondary", 0, OpKind::IcIallu).expect("caught");
    assert_eq!(v.rule, Rule::StaleCodeExecuted, "{v}");
}

// The mutation campaign of the secondaries' steps.

/// How many distinct mutants the SMP scenarios generate: the boot CPU's
/// path with one secondary (its 16 sites before the secondary runs, 5
/// after) and the secondary's 12 sites, with every mutation that applies.
const MUTANTS: usize = 91;

const ORDER_FREE: &str = "order-free, as the same pair on one CPU (tests/mutation.rs): the \
    two operations touch different lines or registers and complete at the same later DSB";
const SECONDARY_MMU_OFF: &str = "the secondary's MMU-off before CPU_OFF: nothing after it depends \
    on it (its result goes through the Normal-NC mailbox mapping either way, PSCI powers the CPU \
    down and the next CPU_ON starts it in PSCI's entry state); kept so that a CPU whose CPU_OFF \
    fails parks with its MMU off (the boot CPU then does not enter the kernel either)";
const LOAD_ORDER: &str = "an order the model does not reorder (docs/model-assumptions.md S3): it \
    performs a CPU's loads and stores in program order, and runs a secondary to its end at one \
    point of the boot CPU's run; the DSB is required by the host tests of handoff::smp and kept \
    by the path check";

/// Survivors and why they survive.
const ALLOWED: &[(&str, &str)] = &[
    (
        "smp purgatory.1 DC IVAC / skip last line",
        "the last line of the range is the mailbox \
        page's last, beyond the 0x3c0 bytes the mailbox uses: nothing reads or writes it (on one \
        CPU the range ends with the stack frame, and the same mutant is killed)",
    ),
    ("smp purgatory.1 DC IVAC / swap with next", ORDER_FREE),
    ("smp purgatory.2 DC CIVAC / swap with next", ORDER_FREE),
    ("smp purgatory.3 DC CIVAC / swap with next", ORDER_FREE),
    ("smp purgatory.4 DC CIVAC / swap with next", ORDER_FREE),
    ("smp purgatory.5 DC CIVAC / swap with next", ORDER_FREE),
    (
        "smp purgatory.6 DC CIVAC / swap with next",
        "as verify purgatory.6 in tests/mutation.rs: \
        the digest table's clean completes at the DSB after the TLBI, before the caches come on",
    ),
    ("smp purgatory.8 IC IALLU / swap with next", ORDER_FREE),
    (
        "smp purgatory.9 MSR MAIR/TCR/TTBR0 / swap with next",
        ORDER_FREE,
    ),
    (
        "smp purgatory.9 MSR MAIR/TCR/TTBR0 / MAIR device as write-back",
        "as on one CPU: the \
        console's mapping is used only while the MMU is off",
    ),
    (
        "smp purgatory.9 MSR MAIR/TCR/TTBR0 / TCR walks non-cacheable",
        "as on one CPU: \
        non-cacheable walks read the PoC, which holds the tables",
    ),
    (
        "smp purgatory.11 DSB SY / swap with next",
        "as verify purgatory.11 in tests/mutation.rs",
    ),
    ("smp purgatory.16 DSB SY / remove", LOAD_ORDER),
    (
        "smp purgatory.18 MSR SCTLR / keep SCTLR.I",
        "as on one CPU: booting.rst lets the kernel \
        be entered with the I-cache on",
    ),
    ("smp secondary.0 IC IALLU / swap with next", ORDER_FREE),
    (
        "smp secondary.1 MSR MAIR/TCR/TTBR0 / swap with next",
        ORDER_FREE,
    ),
    (
        "smp secondary.1 MSR MAIR/TCR/TTBR0 / MAIR device as write-back",
        "a secondary prints \
        nothing: the console's mapping is never used on it",
    ),
    (
        "smp secondary.1 MSR MAIR/TCR/TTBR0 / TCR walks non-cacheable",
        "as on the boot CPU: \
        non-cacheable walks read the PoC, which holds the tables",
    ),
    (
        "smp secondary.3 DSB SY / swap with next",
        "as verify purgatory.11 in tests/mutation.rs: \
        the DSB after the ISB still completes the TLBI and IC IALLU before the MSR",
    ),
    ("smp secondary.8 MSR SCTLR / remove", SECONDARY_MMU_OFF),
    (
        "smp secondary.8 MSR SCTLR / keep SCTLR.M",
        SECONDARY_MMU_OFF,
    ),
    (
        "smp secondary.8 MSR SCTLR / keep SCTLR.C",
        SECONDARY_MMU_OFF,
    ),
    (
        "smp secondary.8 MSR SCTLR / keep SCTLR.I",
        SECONDARY_MMU_OFF,
    ),
    (
        "smp secondary.8 MSR SCTLR / swap with next",
        SECONDARY_MMU_OFF,
    ),
    ("smp secondary.9 ISB / remove", SECONDARY_MMU_OFF),
    ("smp secondary.10 DSB SY / remove", LOAD_ORDER),
];

/// Mutants only [`Rule::Fault`] kills, and why that is the right verdict.
const KILLED_ONLY_BY_FAULT: &[(&str, &str)] = &[
    (
        "smp purgatory.0 DMB SY / remove",
        "as on one CPU: MMU-off stores unordered with the DC IVAC \
        of their lines",
    ),
    ("smp purgatory.0 DMB SY / swap with next", "as on one CPU"),
    (
        "smp purgatory.12 ISB / remove",
        "as on one CPU: SCTLR.M before MAIR/TCR/TTBR0 are \
        synchronised",
    ),
    ("smp purgatory.12 ISB / swap with next", "as on one CPU"),
    (
        "smp purgatory.15 DSB SY / remove",
        "the DSB after the mailbox writes: CPU_ON with stores \
        not completed; the model reports it (the secondary may read the mailbox before they reach \
        memory) rather than delaying the stores",
    ),
    (
        "smp purgatory.17 ISB / remove",
        "Falkor E1041's ISB before the MMU-off MSR, as on one CPU",
    ),
    (
        "smp purgatory.17 ISB / swap with next",
        "Falkor E1041, as on one CPU",
    ),
    (
        "smp secondary.7 ISB / remove",
        "Falkor E1041's ISB before the secondary's MMU-off MSR",
    ),
    (
        "smp secondary.7 ISB / swap with next",
        "Falkor E1041, on the secondary",
    ),
    (
        "smp secondary.11 DSB SY / remove",
        "the DSB before CPU_OFF: CPU_OFF with stores not \
        completed; reported, not simulated, as at CPU_ON",
    ),
];

fn campaign(configs: &[CacheConfig], seeds: std::ops::Range<u64>) -> Vec<MutantOutcome> {
    let plan = SimPlan::tiny();
    let mut all = Vec::new();
    let mut killed = BTreeSet::new();
    for (name, regime, at) in [
        ("smp EL1 at CPU_ON", Regime::El1, SecondaryRun::AtCpuOn),
        ("smp EL2 at CPU_ON", Regime::El2, SecondaryRun::AtCpuOn),
        (
            "smp EL1 while waited for",
            Regime::El1,
            SecondaryRun::AtAffinityInfo(2),
        ),
    ] {
        let o = fixed(Scenario::PurgatoryOnly, regime, 1, at);
        let res = mutation_campaign(&plan, configs, seeds.clone(), &o, name, &killed)
            .unwrap_or_else(|v| panic!("the unmutated code fails:\n{v}"));
        for r in res {
            if r.killed_by.is_some_and(|(_, _, rule)| rule != Rule::Fault) {
                killed.insert(r.key());
            }
            all.push(r);
        }
    }
    all
}

#[test]
fn every_smp_mutant_is_caught_or_justified() {
    let configs: Vec<CacheConfig> = [
        "a53-vipt",
        "a57-like",
        "tx2-slc",
        "n1-idc-dic",
        "falkor-e1041",
    ]
    .iter()
    .filter_map(|n| CacheConfig::named(n))
    .collect();
    assert_eq!(configs.len(), 5);
    let outcomes = campaign(&configs, 0..60);
    let mut by_key: BTreeMap<String, Vec<&MutantOutcome>> = BTreeMap::new();
    for o in &outcomes {
        by_key.entry(o.key()).or_default().push(o);
    }
    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let fault_only: BTreeMap<&str, &str> = KILLED_ONLY_BY_FAULT.iter().copied().collect();
    let mut errors = Vec::new();
    let (mut survivors, mut by_fault) = (BTreeSet::new(), BTreeSet::new());
    for (key, os) in &by_key {
        let kill = os
            .iter()
            .find(|o| o.killed_by.is_some_and(|(_, _, r)| r != Rule::Fault))
            .or_else(|| os.iter().find(|o| o.killed_by.is_some()));
        match kill {
            Some(o) if o.killed_by.is_some_and(|(_, _, r)| r == Rule::Fault) => {
                println!("by fault  {o}");
                by_fault.insert(key.as_str());
                if !fault_only.contains_key(key.as_str()) {
                    errors.push(format!("killed only by Fault, not listed: {key}"));
                }
            }
            Some(o) => println!("killed    {o}"),
            None => {
                println!("SURVIVOR  {}", os[0]);
                survivors.insert(key.as_str());
                if !allowed.contains_key(key.as_str()) {
                    errors.push(format!("unexplained survivor: {key}"));
                }
            }
        }
    }
    for k in allowed.keys().filter(|k| !survivors.contains(*k)) {
        errors.push(format!("allow-listed but killed (or gone): {k}"));
    }
    for k in fault_only.keys().filter(|k| !by_fault.contains(*k)) {
        errors.push(format!("listed as killed only by Fault, but not: {k}"));
    }
    println!(
        "{} mutants, {} survivors, {} only by a fault",
        by_key.len(),
        survivors.len(),
        by_fault.len()
    );
    assert_eq!(by_key.len(), MUTANTS, "mutants run");
    assert!(errors.is_empty(), "{errors:#?}");
}

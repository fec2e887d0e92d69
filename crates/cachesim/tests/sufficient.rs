//! Sufficiency: the unmodified relocation + handoff passes every rule on
//! every named configuration, under many adversary seeds, in every
//! scenario.

use cachesim::relocate::RelocStyle;
use cachesim::{simulate, simulate_with, CacheConfig, Scenario, SimOptions, SimPlan};
use handoff::Flags;

/// Seeds per configuration for the whole kexec_load path: 200 with
/// `CACHESIM_SEEDS=200` (run that in `--release`); a debug-friendly default.
fn seeds(default: u64) -> u64 {
    std::env::var("CACHESIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn check(opts: &SimOptions, plan: &SimPlan, seeds: u64) {
    for cfg in CacheConfig::all_named() {
        for seed in 0..seeds {
            if let Err(v) = simulate_with(plan, &cfg, seed, opts) {
                panic!("{v}");
            }
        }
    }
}

#[test]
fn kexec_load_whole_path() {
    check(&SimOptions::default(), &SimPlan::tiny(), seeds(40));
}

#[test]
fn kexec_load_small_plan_report() {
    let plan = SimPlan::small();
    for cfg in CacheConfig::all_named() {
        for seed in 0..3 {
            match simulate(&plan, &cfg, seed) {
                Ok(r) => {
                    if seed == 0 {
                        println!("{r}");
                    }
                }
                Err(v) => panic!("{v}"),
            }
        }
    }
}

#[test]
fn kexec_load_no_verify() {
    let o = SimOptions {
        flags: Flags::NO_VERIFY,
        ..SimOptions::default()
    };
    check(&o, &SimPlan::tiny(), seeds(6));
}

#[test]
fn kexec_load_pre_5_16_relocation() {
    let o = SimOptions {
        scenario: Scenario::KexecLoad(RelocStyle::MmuOffInvalidate),
        ..SimOptions::default()
    };
    check(&o, &SimPlan::tiny(), seeds(6));
}

#[test]
fn purgatory_alone_from_hostile_entry() {
    let o = SimOptions {
        scenario: Scenario::PurgatoryOnly,
        ..SimOptions::default()
    };
    check(&o, &SimPlan::small(), seeds(12));
    let nv = SimOptions {
        flags: Flags::NO_VERIFY,
        ..o
    };
    check(&nv, &SimPlan::small(), seeds(12));
}

#[test]
fn hashing_with_caches_off_is_also_correct() {
    let o = SimOptions {
        flags: Flags::NO_CACHES,
        ..SimOptions::default()
    };
    check(&o, &SimPlan::tiny(), seeds(3));
}

#[test]
fn kexec_file_relocation_alone() {
    let o = SimOptions {
        scenario: Scenario::KexecFile,
        ..SimOptions::default()
    };
    check(&o, &SimPlan::tiny(), seeds(20));
}

#[test]
fn same_seed_same_outcome() {
    let plan = SimPlan::tiny();
    let cfg = CacheConfig::named("tx2-slc").expect("named config");
    let a = simulate(&plan, &cfg, 42);
    let b = simulate(&plan, &cfg, 42);
    assert_eq!(a, b);
    let sweep = cachesim::simulate_seeds(&plan, &cfg, 0..3, &SimOptions::default());
    assert_eq!(sweep.map(|s| s.runs), Ok(3));
}

/// Every translation regime the purgatory can be entered in (EL1, EL2, EL2
/// with HCR_EL2.E2H) and both SHA-256 engines, named explicitly (the
/// campaigns vary them by seed: `regime_for_seed`, `sha2_for_seed`).
#[test]
fn every_regime_and_engine() {
    use handoff::Regime;
    for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
        for sha2 in [false, true] {
            for scenario in [
                Scenario::PurgatoryOnly,
                Scenario::KexecLoad(RelocStyle::MmuOn),
            ] {
                let o = SimOptions {
                    scenario,
                    regime: Some(regime),
                    sha2_instructions: Some(sha2),
                    ..SimOptions::default()
                };
                check(&o, &SimPlan::tiny(), seeds(4));
            }
        }
    }
}

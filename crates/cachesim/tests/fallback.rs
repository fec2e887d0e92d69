//! The purgatory's fallback when its page tables do not fit the pool: it
//! hashes with its caches off. Its entry state is the same as on the
//! caches-on path (the crash entry: nothing relocated the segments, and the
//! purgatory promises to maintain the ranges its header names), so it must
//! clean and invalidate the segments and the digest table to the PoC before
//! it reads them with non-cacheable accesses: a dirty line holds the newest
//! bytes, which such a read does not see.

use std::collections::BTreeSet;

use cachesim::campaign::mutation_campaign;
use cachesim::mutant::{Mutation, OpKind};
use cachesim::{simulate_with, CacheConfig, Scenario, SimOptions, SimPlan, SimSegment};
use handoff::Regime;

/// The tiny plan and three segments in three other 512 GiB regions: a
/// level 1, 2 and 3 table apiece, more than the model's pool holds.
fn tables_do_not_fit() -> SimPlan {
    let mut plan = SimPlan::tiny();
    for i in 1..4u64 {
        plan.segments.push(SimSegment::generated(i << 39, 256, i));
    }
    plan
}

fn crash_entry(regime: Regime) -> SimOptions {
    SimOptions {
        scenario: Scenario::PurgatoryOnly,
        regime: Some(regime),
        ..SimOptions::default()
    }
}

#[test]
fn the_caches_off_fallback_passes_from_the_hostile_entry_state() {
    let plan = tables_do_not_fit();
    for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
        for cfg in CacheConfig::all_named() {
            for seed in 0..6 {
                if let Err(v) = simulate_with(&plan, &cfg, seed, &crash_entry(regime)) {
                    panic!("{} {regime:?} seed {seed}:\n{v}", cfg.name);
                }
            }
        }
    }
}

/// Each range the fallback cleans, and the DSB that completes them, is
/// needed: without it some seed hashes a stale byte or leaves a stale line
/// over the kernel. (Weakened to a clean without the invalidation, the
/// digest table's is not caught, and need not be: it is read with the
/// caches off, and the kernel never reads it.)
#[test]
fn every_clean_of_the_fallback_is_needed() {
    let plan = tables_do_not_fit();
    let opts = crash_entry(Regime::El1);
    let outcomes = mutation_campaign(
        &plan,
        &CacheConfig::all_named(),
        0..40,
        &opts,
        "fallback",
        &BTreeSet::new(),
    )
    .unwrap_or_else(|v| panic!("the unmutated run fails:\n{v}"));
    // The purgatory's only DC CIVAC ranges on this path: one per segment,
    // then the digest table's.
    let cleans: Vec<_> = outcomes
        .iter()
        .filter(|o| o.site.phase == "purgatory" && o.site.kind == OpKind::DcCivac)
        .filter(|o| o.mutation == Mutation::Remove)
        .collect();
    let starts: Vec<u64> = cleans.iter().map(|o| o.site.first_va).collect();
    let segments: Vec<u64> = plan.segments.iter().map(|s| s.addr).collect();
    assert_eq!(starts.len(), segments.len() + 1, "{starts:#x?}");
    assert_eq!(starts[..segments.len()], segments[..]);
    for o in &cleans {
        assert!(o.killed_by.is_some(), "removing {} is not caught", o.site);
    }
    let last = cleans.iter().map(|o| o.site.index).max().unwrap_or(0);
    let dsb = outcomes
        .iter()
        .find(|o| {
            o.site.kind == OpKind::DsbSy && o.site.index > last && o.mutation == Mutation::Remove
        })
        .expect("a DSB after the cleans");
    assert!(
        dsb.killed_by.is_some(),
        "removing {} is not caught",
        dsb.site
    );
}

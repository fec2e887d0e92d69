//! Necessity: every maintenance operation and barrier of the real
//! relocation and handoff, removed, weakened or shortened, must be caught on
//! some configuration and seed. A change to the handoff that moves, adds or
//! removes a site changes this list: re-justify it.
//!
//! The allow-list is empty. How the 44 survivors of the first campaign went
//! (details in crates/cachesim/README.md):
//! - removed from `handoff` as unneeded on every ARMv8 system: the second
//!   DC CIVAC pass over the segments and the DC CIVAC over the purgatory's
//!   own memory before MMU off (nothing is written through the caches while
//!   they are on: lines left are clean and equal to memory), the DSB before
//!   MMU off (nothing left to complete), the TLBI (+DSB, ISB) after MMU off
//!   (booting.rst has no TLB rule), the final IC IALLU; DSB; ISB when the
//!   caches were on (the IC IALLU before they came on covers it), and the
//!   extra DSB SY; ISB pairs around the first IC IALLU (one DSB after the
//!   TLBI completes everything; SCTLR.I is 0 there);
//! - killed by a better model: the relocation's per-page DC CIVAC of the
//!   purgatory's pool and stack pages (the kernel's loop is one instruction:
//!   mutation units, `cachesim::mutant::units`); the relocation's ISB before
//!   MMU off and a new ISB in the purgatory's MMU-off path (Falkor erratum
//!   E1041, configuration `falkor-e1041`); the purgatory's clean of its own
//!   image (stale clean lines over it at a crash entry, fetched as code once
//!   SCTLR.I is set); the last line of its stack invalidation (a stack frame
//!   read through the Normal-NC mapping may hit a stale line: mismatched
//!   attributes); the ISB after enabling the caches (hashing before the
//!   SCTLR write takes effect is reported);
//! - split out of one trait call so that each is mutated: `set_translation`
//!   is now the three MSRs only, and the handoff issues TLBI (killed: the
//!   old kernel's TLB entries map the stack write-back), DSB and ISB (killed:
//!   translation registers must be synchronised before SCTLR.M takes
//!   effect) itself.

use cachesim::campaign::{mutation_campaign, MutantOutcome};
use cachesim::{CacheConfig, Scenario, SimOptions, SimPlan};
use handoff::Flags;
use std::collections::{BTreeMap, BTreeSet};

/// Survivors and why they survive: none.
const ALLOWED: &[(&str, &str)] = &[];

fn scenarios() -> Vec<(&'static str, SimOptions)> {
    let po = SimOptions {
        scenario: Scenario::PurgatoryOnly,
        ..SimOptions::default()
    };
    vec![
        ("purgatory-only", po),
        (
            "purgatory-only NO_VERIFY",
            SimOptions {
                flags: Flags::NO_VERIFY,
                ..po
            },
        ),
        ("kexec_load", SimOptions::default()),
        (
            "kexec_load NO_VERIFY",
            SimOptions {
                flags: Flags::NO_VERIFY,
                ..SimOptions::default()
            },
        ),
        (
            "kexec_file",
            SimOptions {
                scenario: Scenario::KexecFile,
                ..SimOptions::default()
            },
        ),
    ]
}

/// Run all scenarios; a mutant killed in one is not re-run in the next.
fn campaign(
    configs: &[CacheConfig],
    seeds: std::ops::Range<u64>,
) -> BTreeMap<String, Vec<MutantOutcome>> {
    let plan = SimPlan::tiny();
    let mut killed = BTreeSet::new();
    let mut by_key: BTreeMap<String, Vec<MutantOutcome>> = BTreeMap::new();
    for (name, o) in scenarios() {
        let t = std::time::Instant::now();
        let res = mutation_campaign(&plan, configs, seeds.clone(), &o, name, &killed)
            .unwrap_or_else(|v| panic!("the unmutated code fails:\n{v}"));
        println!("{name}: {} mutants run, {:?}", res.len(), t.elapsed());
        for r in res {
            if r.killed_by.is_some() {
                killed.insert(r.key());
            }
            by_key.entry(r.key()).or_default().push(r);
        }
    }
    by_key
}

#[test]
fn every_mutant_is_caught_or_justified() {
    let configs: Vec<CacheConfig> = [
        "a53-vipt",
        "a57-like",
        "tx2-slc",
        "split-lines",
        "n1-idc-dic",
        "falkor-e1041",
    ]
    .iter()
    .filter_map(|n| CacheConfig::named(n))
    .collect();
    let by_key = campaign(&configs, 0..30);
    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let mut survivors = BTreeSet::new();
    println!(
        "\n== mutation results ({} distinct mutants) ==",
        by_key.len()
    );
    for (key, outcomes) in &by_key {
        let kill = outcomes.iter().find(|o| o.killed_by.is_some());
        match kill {
            Some(o) => println!("killed    {o}"),
            None => {
                survivors.insert(key.clone());
                println!("SURVIVOR  {}", outcomes[0]);
                match allowed.get(key.as_str()) {
                    Some(why) => println!("          allowed: {why}"),
                    None => println!("          NOT ALLOWED"),
                }
            }
        }
    }
    let unexplained: Vec<&String> = survivors
        .iter()
        .filter(|k| !allowed.contains_key(k.as_str()))
        .collect();
    let stale: Vec<&&str> = allowed
        .keys()
        .filter(|k| !survivors.contains(**k))
        .collect();
    println!(
        "{} mutants, {} killed, {} survivors ({} allow-listed)",
        by_key.len(),
        by_key.len() - survivors.len(),
        survivors.len(),
        survivors.len() - unexplained.len()
    );
    assert!(
        unexplained.is_empty(),
        "unexplained survivors: {unexplained:#?}"
    );
    assert!(
        stale.is_empty(),
        "allow-listed mutants that are now killed (or gone): {stale:#?}"
    );
}

/// The same campaign on every named configuration with more seeds (run in
/// release: `cargo test --release -p cachesim --test mutation -- --ignored`).
/// Killing an allow-listed mutant here is fine; a new survivor is not.
#[test]
#[ignore = "slow in debug; run in release"]
fn every_mutant_is_caught_or_justified_extended() {
    let by_key = campaign(&CacheConfig::all_named(), 0..45);
    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let mut unexplained = Vec::new();
    let mut survivors = 0;
    for (key, outcomes) in &by_key {
        if outcomes.iter().all(|o| o.killed_by.is_none()) {
            survivors += 1;
            println!("SURVIVOR  {}", outcomes[0]);
            if !allowed.contains_key(key.as_str()) {
                unexplained.push(key.clone());
            }
        } else if allowed.contains_key(key.as_str()) {
            let o = outcomes.iter().find(|o| o.killed_by.is_some());
            println!(
                "allow-listed but killed with more seeds: {}",
                o.map(|o| o.to_string()).unwrap_or_default()
            );
        }
    }
    println!("{} mutants, {survivors} survivors", by_key.len());
    assert!(
        unexplained.is_empty(),
        "unexplained survivors: {unexplained:#?}"
    );
}

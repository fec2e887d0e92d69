//! Necessity: every maintenance operation, barrier and system-register
//! write of the real relocation and handoff, removed, weakened, shortened,
//! swapped with the next one, or (the purgatory's MSRs) written with a wrong
//! value, must be caught on some configuration and seed, by a rule other
//! than `Fault` unless listed in `KILLED_ONLY_BY_FAULT`, or be in `ALLOWED`
//! with the reason it changes nothing that matters. A change to the handoff
//! that moves, adds or removes a site changes these lists and `MUTANTS`:
//! re-justify them.
//!
//! How the 44 survivors of the first campaign went (details, and the later
//! campaigns, in crates/cachesim/README.md):
//! - removed from `handoff` as unneeded on every ARMv8 system: the second
//!   DC CIVAC pass over the segments and the DC CIVAC over the purgatory's
//!   own memory before MMU off (nothing is written through the caches while
//!   they are on: lines left are clean and equal to memory), the DSB before
//!   MMU off (nothing left to complete), the TLBI (+DSB, ISB) after MMU off
//!   (booting.rst has no TLB rule), the final IC IALLU; DSB; ISB when the
//!   caches were on (the IC IALLU before they came on covers it), and the
//!   extra DSB SY; ISB pairs around the first IC IALLU (one DSB after the
//!   TLBI completes everything); the DSB between the cleans and the first
//!   IC IALLU was removed too, on the assumption that an I-cache is idle
//!   while SCTLR.I is 0, and is back since the model's I-cache may be used
//!   then (`Adversary::icache_while_disabled`), which kills its removal;
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
use cachesim::{CacheConfig, Rule, Scenario, SimOptions, SimPlan};
use handoff::Flags;
use std::collections::{BTreeMap, BTreeSet};

/// How many distinct mutants the scenarios below generate (42 of the
/// verifying purgatory: 25 of its maintenance and barriers, the 4 of the
/// digest table's DC CIVAC included, 2 removals and
/// 6 wrong values of its SCTLR writes, 1 removal and 6 wrong values of its
/// MAIR/TCR/TTBR0 writes; 3 of the NO_VERIFY one; 15 of the relocation: 9
/// of its `kexec_load` path, 6 of its `kexec_file` path). A change to the
/// handoff or the relocation that adds or removes a site changes it:
/// re-justify. An empty or truncated run fails here.
const MUTANTS: usize = 87;

/// Survivors and why they survive.
const ALLOWED: &[(&str, &str)] = &[
    (
        "verify purgatory.16 MSR SCTLR / keep SCTLR.I",
        "the MMU-off write leaving SCTLR.I set: booting.rst allows the next kernel to be \
         entered with the instruction cache on (\"The instruction cache may be on or off\"); \
         nothing of the kernel's image can be in it (IC IALLU before SCTLR.I was set, the \
         kernel mapped execute-never since)",
    ),
    (
        "verify purgatory.9 MSR MAIR/TCR/TTBR0 / MAIR device as write-back",
        "the console's mapping is used only while the MMU is on, and the handoff prints only \
         with it off (before enabling, after disabling); the exception path, which may print \
         with the MMU on, is not run by the model. The model reports a console write through \
         a non-Device mapping as a fault (SimCpu::putc)",
    ),
    (
        "verify purgatory.9 MSR MAIR/TCR/TTBR0 / TCR walks non-cacheable",
        "non-cacheable table walks read the PoC, which holds the tables (written with the MMU \
         off, their lines invalidated): slower walks, the same translations",
    ),
    // Order-free pairs: neither operation's effect depends on the other's.
    (
        "verify purgatory.1 DC IVAC / swap with next",
        "order-free: the invalidation of the pool and stack and the clean+invalidate of the \
         image touch different lines, and both are only complete at the same later DSB",
    ),
    (
        "verify purgatory.2 DC CIVAC / swap with next",
        "order-free: the image's and the first segment's cleans, different lines, both \
         completed by the DSB before IC IALLU",
    ),
    (
        "verify purgatory.3 DC CIVAC / swap with next",
        "order-free: two segments' cleans, different lines, both before the same DSB",
    ),
    (
        "verify purgatory.4 DC CIVAC / swap with next",
        "order-free: two segments' cleans, different lines, both before the same DSB",
    ),
    (
        "verify purgatory.5 DC CIVAC / swap with next",
        "order-free: the last segment's clean and the digest table's, different lines, both \
         before the same DSB",
    ),
    (
        "verify purgatory.6 DC CIVAC / swap with next",
        "the digest table's clean moved after the DSB that precedes IC IALLU: it completes at \
         the next DSB (after the TLBI), before the caches come on and the table is read; the \
         DSB before IC IALLU is for code, and the image's and the kernel's cleans come first \
         (the table is data, never executed)",
    ),
    (
        "verify purgatory.8 IC IALLU / swap with next",
        "order-free: the translation registers take effect at the ISB, the I-cache \
         invalidation completes at the DSB; neither reads what the other changes",
    ),
    (
        "verify purgatory.9 MSR MAIR/TCR/TTBR0 / swap with next",
        "order-free: with SCTLR.M = 0 nothing walks or fills the TLB, so invalidating it \
         before or after writing the (not yet synchronised) translation registers is the same",
    ),
    (
        "verify purgatory.11 DSB SY / swap with next",
        "ISB; DSB; MSR SCTLR; ISB instead of DSB; ISB; MSR; ISB: the ISB still synchronises \
         MAIR/TCR/TTBR0 before the MSR, the DSB still completes the TLBI and IC IALLU before \
         it (a DSB holds back every later instruction), and the ISB after the MSR is the \
         context synchronisation that makes both visible to the fetches and walks after it \
         (on the CPU the ISB is inside the MSR's asm block, so this order cannot be written \
         without editing it)",
    ),
];

/// Mutants that only [`Rule::Fault`] kills, and why that is the right
/// verdict. Every other mutant must be killed by a rule of the handoff.
const KILLED_ONLY_BY_FAULT: &[(&str, &str)] = &[
    (
        "verify purgatory.12 ISB / remove",
        "the ISB between the MAIR/TCR/TTBR0 writes and the MSR that sets SCTLR.M: the model \
         reports SCTLR.M taking effect before those writes are synchronised as a fault, which \
         is the bug itself. Before the digest table, some seeds also ended in StackCorrupted \
         (a frame written through the old regime's write-back mapping); the table's reads \
         between the hashes change the adversary's draws, and no seed of the campaigns \
         reaches that later symptom before the fault is reported",
    ),
    (
        "verify purgatory.12 ISB / swap with next",
        "the MSR that sets SCTLR.M moved before that ISB: the same unsynchronised MAIR/TCR/ \
         TTBR0 as its removal",
    ),
    (
        "verify purgatory.0 DMB SY / remove",
        "the DMB between the page-table stores made with the MMU off (Device accesses) and \
         the DC IVAC of their lines: DC by VA is ordered only after Normal cacheable accesses \
         (Arm ARM; Linux head.S: \"needed before dc ivac with MMU off\"); the model reports \
         the unordered pair as a fault rather than simulating the reordering",
    ),
    (
        "verify purgatory.15 ISB / remove",
        "Falkor E1041's ISB before the MSR that turns the MMU off: the model does not simulate \
         the bad speculative fetch, it reports the missing ISB as a fault (README)",
    ),
    (
        "any relocate.17 ISB / remove",
        "Falkor E1041's ISB in the pre-5.16 relocation (kexec_load), as above",
    ),
    (
        "any relocate.6 ISB / remove",
        "Falkor E1041's ISB in the relocation (kexec_file), as above",
    ),
    (
        "verify purgatory.0 DMB SY / swap with next",
        "the DMB after the DC IVAC it must order: the same unordered pair as its removal",
    ),
    (
        "verify purgatory.15 ISB / swap with next",
        "Falkor E1041: the MSR that clears SCTLR.M moved before its ISB",
    ),
    (
        "any relocate.16 DSB ISH / swap with next",
        "the kernel's DSB moved between Falkor E1041's ISB and the MSR (kexec_load): the \
         ISB is no longer immediately before it",
    ),
    (
        "any relocate.17 ISB / swap with next",
        "Falkor E1041 (kexec_load): the MSR that clears SCTLR.M moved before its ISB",
    ),
    (
        "any relocate.5 DSB ISH / swap with next",
        "as relocate.16 DSB ISH, in the kexec_file relocation",
    ),
    (
        "any relocate.6 ISB / swap with next",
        "as relocate.17 ISB, in the kexec_file relocation",
    ),
];

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

/// Run all scenarios; a mutant killed (by a rule other than `Fault`) in one
/// is not re-run in the next.
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
            if r.killed_by.is_some_and(|(_, _, rule)| rule != Rule::Fault) {
                killed.insert(r.key());
            }
            by_key.entry(r.key()).or_default().push(r);
        }
    }
    by_key
}

/// The verdict on a mutant: its kill by a rule other than `Fault` in any
/// scenario, else its kill by `Fault`, else none (a survivor).
fn kill(outcomes: &[MutantOutcome]) -> Option<&MutantOutcome> {
    let killed = || outcomes.iter().filter(|o| o.killed_by.is_some());
    killed()
        .find(|o| o.killed_by.is_some_and(|(_, _, r)| r != Rule::Fault))
        .or_else(|| killed().next())
}

/// Check a campaign's results: exactly [`MUTANTS`] mutants, no survivor
/// outside [`ALLOWED`], no kill by `Fault` alone outside
/// [`KILLED_ONLY_BY_FAULT`]. With `exact_lists`, every entry of the two
/// lists must still be what it says (a bigger campaign may kill an
/// allow-listed mutant, or by another rule than `Fault`: it says so).
fn verdict(by_key: &BTreeMap<String, Vec<MutantOutcome>>, exact_lists: bool) {
    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let fault_only: BTreeMap<&str, &str> = KILLED_ONLY_BY_FAULT.iter().copied().collect();
    let mut survivors = BTreeSet::new();
    let mut by_fault = BTreeSet::new();
    let mut errors = Vec::new();
    for (key, outcomes) in by_key {
        match kill(outcomes) {
            Some(o) => {
                println!("killed    {o}");
                if o.killed_by.is_some_and(|(_, _, r)| r == Rule::Fault) {
                    by_fault.insert(key.as_str());
                    match fault_only.get(key.as_str()) {
                        Some(why) => println!("          only by a fault: {why}"),
                        None => errors.push(format!("killed only by Fault, not listed: {key}")),
                    }
                }
            }
            None => {
                survivors.insert(key.as_str());
                println!("SURVIVOR  {}", outcomes[0]);
                match allowed.get(key.as_str()) {
                    Some(why) => println!("          allowed: {why}"),
                    None => errors.push(format!("unexplained survivor: {key}")),
                }
            }
        }
    }
    for (list, holds, what) in [
        (&allowed, &survivors, "allow-listed but killed (or gone)"),
        (
            &fault_only,
            &by_fault,
            "listed as killed only by Fault, but",
        ),
    ] {
        for key in list.keys().filter(|k| !holds.contains(*k)) {
            let o = by_key.get(*key).and_then(|o| kill(o));
            let now = o.map_or("gone".to_owned(), ToString::to_string);
            if exact_lists {
                errors.push(format!("{what}: {key}: {now}"));
            } else {
                println!("{what}: {now}");
            }
        }
    }
    println!(
        "{} mutants, {} killed ({} only by a fault), {} survivors ({} allow-listed)",
        by_key.len(),
        by_key.len() - survivors.len(),
        by_fault.len(),
        survivors.len(),
        survivors
            .iter()
            .filter(|k| allowed.contains_key(**k))
            .count()
    );
    assert_eq!(by_key.len(), MUTANTS, "mutants run");
    assert!(errors.is_empty(), "{errors:#?}");
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
    assert_eq!(configs.len(), 6);
    verdict(&campaign(&configs, 0..30), true);
}

/// The same campaign on every named configuration with more seeds: in the
/// normal test suite (measured: 14 s in a debug build, alone on 2 cores).
#[test]
fn every_mutant_is_caught_or_justified_extended() {
    verdict(&campaign(&CacheConfig::all_named(), 0..45), false);
}

/// The extended campaign with ten times the seeds (run in release:
/// `cargo test --release -p cachesim --test mutation -- --ignored`).
#[test]
#[ignore = "slow in debug; run in release"]
fn every_mutant_is_caught_or_justified_deep() {
    verdict(&campaign(&CacheConfig::all_named(), 0..450), false);
}

//! The link from the cache model to the machine code (issue 11): the
//! system instructions the model's runs execute are the ones the built
//! purgatory executes, in the same order.
//!
//! - The binary: [`Paths`] is the control flow of the purgatory that
//!   `kexec` embeds ([`kexec::PURGATORY_ELF`]) from `_start` to its one
//!   `br` into the kernel, calls followed; [`Automaton`] is the language of
//!   system-instruction sequences along those paths (loops as loops).
//! - The model: `cachesim` runs the handoff in every configuration the
//!   campaigns cover (EL1, EL2, EL2 with E2H; the SHA2 instructions present
//!   or not; the normal `kexec_load` entry and the crash entry; every
//!   combination of `-i` (`NO_VERIFY`), `NO_CACHES`, `FORCE_SOFT_SHA256`;
//!   plans with empty segments and with page tables that do not fit the
//!   pool) and records each run's system instructions (`SysTrace`).
//! - The check: every model run is a sequence of the binary's language;
//!   and every transition of the language (two system instructions joined
//!   by a path with none between) is taken by some model run, or listed in
//!   [`INFEASIBLE`] with the reason no run can take it. So the binary has
//!   no system instruction, and no order of two, that the model never
//!   executes.
//!
//! What it cannot see: register values (the SCTLR, TCR, MAIR values the
//! model checks are not compared), the addresses of by-VA operations and
//! how many a loop issues (a `DC CIVAC` loop is a loop whatever its range),
//! which branches are taken together (a path may mix EL1 and EL2 code: the
//! language is larger than what runs), memory accesses (except where
//! `purgatory_image::sequences` rules them out), and the exception vectors.
//! `the_models_mutants_are_rejected_unless_only_counts_addresses_or_values_change`
//! states the first two as the model's mutants the check accepts.

use std::collections::{BTreeMap, BTreeSet};

use cachesim::mutant::{Mutation, OpKind, Site};
use cachesim::sim::{real_handoff, real_relocate, run_with};
use cachesim::{CacheConfig, SimOptions, SimPlan, SysTrace};
use handoff::{Flags, Regime};
use purgatory_image::lang::Automaton;
use purgatory_image::paths::{Code, Ending, Paths};

mod model_link_support;
use model_link_support::{configurations, INFEASIBLE, INFEASIBLE_SECONDARY};

fn config() -> CacheConfig {
    CacheConfig::named("a57-like").expect("a named configuration")
}

/// The model's run of `plan` with `opts` (and `mutation`): its result and
/// the system instructions of its purgatory.
fn model_run(
    plan: &SimPlan,
    opts: &SimOptions,
    mutation: Option<(&[Site], Mutation)>,
) -> cachesim::sim::RunResult {
    run_with(
        plan,
        &config(),
        0,
        opts,
        mutation,
        &mut real_relocate,
        &mut real_handoff,
    )
}

/// The unmutated model's system instructions (the run must pass): the
/// boot CPU's, and each secondary's.
fn model_trace(plan: &SimPlan, opts: &SimOptions) -> (SysTrace, Vec<SysTrace>) {
    let r = model_run(plan, opts, None);
    if let Err(v) = r.result {
        panic!("the unmutated model fails:\n{v}");
    }
    let secondaries = r.secondary_traces.into_iter().map(|(_, t)| t).collect();
    (r.purgatory_trace, secondaries)
}

fn binary() -> (Paths, Automaton) {
    let paths = Paths::from_elf(kexec::PURGATORY_ELF).unwrap_or_else(|e| panic!("{e}"));
    let lang = Automaton::new(&paths);
    (paths, lang)
}

/// The secondary CPUs' paths, from `purgatory_secondary_entry` to a `wfe`.
fn secondary_binary() -> (Paths, Automaton) {
    let paths = Paths::secondary_from_elf(kexec::PURGATORY_ELF).unwrap_or_else(|e| panic!("{e}"));
    let lang = Automaton::new(&paths);
    (paths, lang)
}

/// `from -> to` of a transition, with the addresses.
fn describe(paths: &Paths, lang: &Automaton, (s, t): (usize, usize)) -> String {
    let at = |s: usize| {
        if s == 0 {
            "entry".to_owned()
        } else {
            format!(
                "`{}` at {}",
                lang.letter(s),
                paths.describe(lang.states[s].node)
            )
        }
    };
    format!("{} -> {}", at(s), at(t))
}

/// How [`INFEASIBLE`] names a state: its letter, `@`, and the function its
/// instruction is in (`handoff::` left out; the purgatory's `Cpu` methods
/// as `Cpu::`), e.g. `dsb sy@smp::verify_all`.
fn key(paths: &Paths, lang: &Automaton, s: usize) -> String {
    if s == 0 {
        return "entry".to_owned();
    }
    let described = paths.code.describe(paths.nodes[lang.states[s].node].addr);
    let name = described
        .split_once(" (")
        .and_then(|(_, r)| r.rsplit_once('+'))
        .map_or("", |(n, _)| n);
    let name = name
        .strip_prefix("handoff::")
        .unwrap_or(name)
        .replace("<purgatory::cpu::Cpu as handoff::Machine>::", "Cpu::");
    format!("{}@{name}", lang.letter(s))
}

/// What the model's runs say about a binary: the runs it cannot produce,
/// and its transitions no run takes beyond [`INFEASIBLE`] (or listed there
/// but not found as listed).
fn verdict(paths: &Paths, lang: &Automaton, traces: &[(String, SysTrace)]) -> Vec<String> {
    verdict_with(paths, lang, traces, INFEASIBLE)
}

/// [`verdict`] with another list of infeasible transitions.
fn verdict_with(
    paths: &Paths,
    lang: &Automaton,
    traces: &[(String, SysTrace)],
    infeasible: &[(&str, &str, usize, &str)],
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    for (name, trace) in traces {
        match lang.accept(trace.runs()) {
            Ok(run) => used.extend(run.transitions),
            Err(r) => errors.push(format!(
                "the binary cannot produce the model's run {name}: {r}\n    model: {trace}"
            )),
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    let mut untaken: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
    for tr in lang.transitions().into_iter().filter(|t| !used.contains(t)) {
        untaken
            .entry((key(paths, lang, tr.0), key(paths, lang, tr.1)))
            .or_default()
            .push(tr);
    }
    let listed: BTreeMap<(String, String), usize> = infeasible
        .iter()
        .map(|&(a, b, n, _)| ((a.to_owned(), b.to_owned()), n))
        .collect();
    for (k, trs) in &untaken {
        if listed.get(k) != Some(&trs.len()) {
            for &tr in trs {
                errors.push(format!(
                    "no model run takes {} ({:?} -> {:?}: {} such, {} listed as infeasible)",
                    describe(paths, lang, tr),
                    k.0,
                    k.1,
                    trs.len(),
                    listed.get(k).unwrap_or(&0)
                ));
            }
        }
    }
    for (key, n) in &listed {
        if !untaken.contains_key(key) {
            errors.push(format!(
                "listed in INFEASIBLE ({n}) but every such transition is taken, or gone: {key:?}"
            ));
        }
    }
    errors
}

/// `f` of each of `items`, spread over the host's CPUs.
fn on_every_cpu(items: &[u64], f: impl Fn(u64) + Sync) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for part in items.chunks(items.len().div_ceil(n).max(1)) {
            let f = &f;
            s.spawn(move || part.iter().for_each(|&a| f(a)));
        }
    });
}

/// The first reason the model's runs do not fit a binary: a run it cannot
/// produce (tried first, run by run), else the first of [`verdict_with`].
fn first_error(
    paths: &Paths,
    lang: &Automaton,
    traces: &[(String, SysTrace)],
    infeasible: &[(&str, &str, usize, &str)],
) -> Option<String> {
    for (name, trace) in traces {
        if let Err(r) = lang.accept(trace.runs()) {
            return Some(format!(
                "the binary cannot produce the model's run {name}: {r}"
            ));
        }
    }
    verdict_with(paths, lang, traces, infeasible)
        .into_iter()
        .next()
}

/// The boot CPU's run in every configuration, each distinct sequence once
/// (named by the first configuration that runs it).
fn all_traces() -> Vec<(String, SysTrace)> {
    distinct(
        configurations()
            .into_iter()
            .map(|(name, plan, opts)| {
                let (t, _) = model_trace(&plan, &opts);
                (name, t)
            })
            .collect(),
    )
}

/// `traces` without repeats of a sequence: the verdict depends only on the
/// set of sequences.
fn distinct(traces: Vec<(String, SysTrace)>) -> Vec<(String, SysTrace)> {
    let mut seen = BTreeSet::new();
    traces
        .into_iter()
        .filter(|(_, t)| seen.insert(t.to_string()))
        .collect()
}

/// Each secondary's run in every configuration with secondaries.
fn all_secondary_traces() -> Vec<(String, SysTrace)> {
    let all = configurations()
        .into_iter()
        .filter(|(_, _, opts)| opts.smp.is_some())
        .flat_map(|(name, plan, opts)| {
            let (_, ts) = model_trace(&plan, &opts);
            ts.into_iter()
                .enumerate()
                .map(move |(i, t)| (format!("{name}, secondary {}", i + 1), t))
        })
        .collect::<Vec<_>>();
    distinct(all)
}

#[test]
fn every_secondary_run_is_a_path_from_the_secondary_entry_and_covers_them() {
    let (paths, lang) = secondary_binary();
    println!(
        "secondary entry: {} instructions reached, {} system instructions on paths to a wfe",
        paths.insns.len(),
        lang.states.len() - 1
    );
    println!("language:\n{}\n", lang.regex());
    let traces = all_secondary_traces();
    assert!(
        traces.len() >= 20,
        "{} distinct secondary runs",
        traces.len()
    );
    for (name, t) in traces.iter().take(2) {
        println!("{name}: {t}");
    }
    let errors = verdict_with(&paths, &lang, &traces, INFEASIBLE_SECONDARY);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn every_model_run_is_a_path_of_the_binary_and_covers_it() {
    let t0 = std::time::Instant::now();
    let (paths, lang) = binary();
    println!(
        "binary: {} instructions reached, {} copies in {} calling contexts, {} system \
         instructions on paths to the br ({:?})",
        paths.insns.len(),
        paths.nodes.len(),
        paths.contexts.len(),
        lang.states.len() - 1,
        t0.elapsed()
    );
    println!("language of the binary:\n{}\n", lang.regex());
    let traces = all_traces();
    println!("{} model runs ({:?})", traces.len(), t0.elapsed());
    for (name, trace) in traces
        .iter()
        .filter(|(n, _)| n.contains("tiny, kexec_load") && n.ends_with("flags 0x0"))
    {
        let keep = trace.letters();
        println!(
            "{name}:\n  model:  {trace}\n  binary: {}",
            lang.restricted(&keep).regex()
        );
    }
    let errors = verdict(&paths, &lang, &traces);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Whether a site's operation is by VA (a loop over a range in the code).
fn by_va(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::DcCvac | OpKind::DcCivac | OpKind::DcIvac | OpKind::DcCvau | OpKind::IcIvau
    )
}

/// The check against the model's own mutants: what it must reject, and
/// what it cannot see (stated, so that a change in either shows).
#[test]
fn the_models_mutants_are_rejected_unless_only_counts_addresses_or_values_change() {
    let (_, lang) = binary();
    let plan = SimPlan::tiny();
    let mut errors = Vec::new();
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (flags, regime, sha2) in [
        (0, Regime::El2, true),
        (0, Regime::El1, false),
        (Flags::NO_VERIFY, Regime::El2Host, false),
        (Flags::NO_CACHES, Regime::El2, true),
    ] {
        let opts = SimOptions {
            flags,
            regime: Some(regime),
            sha2_instructions: Some(sha2),
            ..SimOptions::default()
        };
        let sites = model_run(&plan, &opts, None).sites;
        for site in sites.iter().filter(|s| s.phase == "purgatory") {
            for m in Mutation::all().into_iter().filter(|m| m.applies(site)) {
                let r = model_run(&plan, &opts, Some((std::slice::from_ref(site), m)));
                let verdict = lang.accept(r.purgatory_trace.runs());
                // A run that parked never reached the br: its sequence is
                // incomplete, whatever the mutation.
                if verdict.as_ref().is_err_and(|r| r.found.is_none()) {
                    tally
                        .entry("(run stopped before the br)".into())
                        .or_default()
                        .0 += 1;
                    continue;
                }
                let next_same = sites
                    .get(site.index + 1)
                    .is_some_and(|n| n.kind == site.kind);
                let (seen, why) = match m {
                    Mutation::Remove if by_va(site.kind) => {
                        (false, "a loop's count (an empty range) is data")
                    }
                    Mutation::Remove => (true, "an instruction is missing"),
                    Mutation::Weaken => (true, "another instruction"),
                    Mutation::Shorten => (false, "a loop's count is data"),
                    Mutation::Value(_) => (false, "register values are not compared"),
                    Mutation::SwapWithNext if next_same => {
                        (false, "the same instruction over other addresses")
                    }
                    Mutation::SwapWithNext => (true, "another order"),
                };
                let name = match m {
                    Mutation::Value(_) => "wrong value".to_owned(),
                    other => other.to_string(),
                };
                let key = format!("{name}: {why}");
                let e = tally.entry(key).or_default();
                if verdict.is_err() {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
                if verdict.is_err() != seen {
                    errors.push(format!(
                        "flags {flags:#x} {regime:?}: {site} / {m}: expected {}, got {}",
                        if seen { "rejected" } else { "accepted" },
                        match &verdict {
                            Ok(_) => "accepted".to_owned(),
                            Err(r) => format!("rejected: {r}"),
                        }
                    ));
                }
            }
        }
    }
    for (k, (rejected, accepted)) in &tally {
        println!("{k}: {rejected} rejected, {accepted} accepted");
    }
    assert!(tally.len() >= 6, "{tally:?}");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// `NOP`, `DSB SY` and `STR x1, [sp]` (GNU as encodings).
const NOP: u32 = 0xd503_201f;
const DSB_SY: u32 = 0xd503_3f9f;
const STR_X1_SP: u32 = 0xf900_03e1;

/// The check against changed binaries: every system instruction on a path
/// to the br dropped (a NOP in its place), a DSB added at the end and
/// inside a DC loop; each is found by some model run. And the model must
/// run every path: without the runs over empty segments, or without the
/// SHA2 instructions, the check fails on what those runs alone take.
#[test]
fn changed_binaries_and_missing_model_runs_fail_the_check() {
    let (paths, lang) = binary();
    let traces = all_traces();
    assert!(verdict(&paths, &lang, &traces).is_empty());
    let code = Code::from_elf(kexec::PURGATORY_ELF).unwrap_or_else(|e| panic!("{e}"));
    let check_patched = |what: &str, patches: &[(u64, u32)]| {
        let mut c = code.clone();
        for &(addr, word) in patches {
            assert!(c.patch(addr, word), "{addr:#x} is not code");
        }
        let p = Paths::from_code(c).unwrap_or_else(|e| panic!("{what}: {e}"));
        let l = Automaton::new(&p);
        let error = first_error(&p, &l, &traces, INFEASIBLE);
        println!(
            "{what}: {}",
            first_line(&error.unwrap_or_else(|| panic!("{what}: the check passed")))
        );
    };
    let addr = |s: usize| paths.nodes[lang.states[s].node].addr;
    let system: BTreeSet<u64> = (1..lang.states.len()).map(addr).collect();
    let system_list: Vec<u64> = system.iter().copied().collect();
    on_every_cpu(&system_list, |a| {
        check_patched(
            &format!(
                "no {} at {a:#x}",
                paths.insns[&a].letter.clone().unwrap_or_default()
            ),
            &[(a, NOP)],
        );
    });
    // And each system instruction on a secondary CPU's paths (those not on
    // the boot CPU's already done): the secondaries' check fails.
    let secondary_traces = all_secondary_traces();
    let (spaths, slang) = secondary_binary();
    let saddr = |s: usize| spaths.nodes[slang.states[s].node].addr;
    let secondary_only: BTreeSet<u64> = (1..slang.states.len())
        .map(saddr)
        .filter(|a| !system.contains(a))
        .collect();
    assert!(!secondary_only.is_empty());
    let secondary_list: Vec<u64> = secondary_only.iter().copied().collect();
    on_every_cpu(&secondary_list, |a| {
        let what = format!(
            "no {} at {a:#x} (a secondary's)",
            spaths.insns[&a].letter.clone().unwrap_or_default()
        );
        let mut c = code.clone();
        assert!(c.patch(a, NOP), "{a:#x} is not code");
        let start = c
            .symbol("purgatory_secondary_entry")
            .expect("the secondary entry");
        let p =
            Paths::build_ending(c, start, Ending::Park).unwrap_or_else(|e| panic!("{what}: {e}"));
        let l = Automaton::new(&p);
        let error = first_error(&p, &l, &secondary_traces, INFEASIBLE_SECONDARY);
        println!(
            "{what}: {}",
            first_line(&error.unwrap_or_else(|| panic!("{what}: the check passed")))
        );
    });

    let br = paths.nodes[paths.exits[0]].addr;
    check_patched("DSB SY before the br", &[(br - 4, DSB_SY)]);
    let dc_loop = (1..lang.states.len())
        .find(|&s| lang.letter(s) == "dc civac" && lang.next[s].contains(&s))
        .expect("a DC CIVAC loop");
    check_patched("DSB SY in a DC CIVAC loop", &[(addr(dc_loop) + 4, DSB_SY)]);

    // The model side: runs left out.
    for (what, leave_out) in [
        ("without the empty segments", "empty segments"),
        ("without the SHA2 instructions", ", sha2,"),
    ] {
        let some: Vec<(String, SysTrace)> = traces
            .iter()
            .filter(|(n, _)| !n.contains(leave_out))
            .cloned()
            .collect();
        let errors = verdict(&paths, &lang, &some);
        assert!(
            errors.iter().any(|e| e.starts_with("no model run takes")),
            "{what}: {errors:?}"
        );
        println!("{what}: {}", first_line(&errors[0]));
    }

    // The sequence rules on the real binary: a store right after the DMB
    // (before the DC IVACs it orders), a NOP between ISB and MSR SCTLR.
    let dmb = (1..lang.states.len())
        .find(|&s| lang.letter(s) == "dmb sy")
        .expect("the DMB");
    let msr = (1..lang.states.len())
        .find(|&s| lang.letter(s).starts_with("msr sctlr_el"))
        .expect("an SCTLR write");
    for (what, at, word, want) in [
        (
            "a store after the DMB",
            addr(dmb) + 4,
            STR_X1_SP,
            "a store after `dmb sy`",
        ),
        (
            "a NOP before MSR SCTLR",
            addr(msr) - 4,
            NOP,
            "immediately before it",
        ),
    ] {
        let mut c = code.clone();
        assert!(c.patch(at, word));
        let v = purgatory_image::sequences::violations(&Paths::from_code(c).unwrap());
        assert!(v.iter().any(|e| e.contains(want)), "{what}: {v:#?}");
        println!("{what}: {}", v[0]);
    }
}

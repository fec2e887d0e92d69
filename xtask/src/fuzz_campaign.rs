//! `cargo xtask fuzz --campaign MINUTES`: a long fuzzing campaign that gives
//! each target the time it needs to reach a number of executions.
//!
//! Targets differ by two orders of magnitude in speed (a decompressor
//! expanding a bomb runs thousands of inputs a second, the `/proc/cmdline`
//! parser hundreds of thousands), so equal slices would waste most of the
//! campaign on targets that reached the goal in a minute. Steps:
//! 1. seed and build as `cargo xtask fuzz` does;
//! 2. probe: every target runs [`PROBE_SECS`] to measure its rate;
//! 3. [`allocate`] the rest of the wall-clock budget but a reserve of
//!    [`RESERVE_PERCENT`], times the number of CPUs, so that each target
//!    reaches `goal` executions at its measured rate, the time left over
//!    spread in proportion;
//! 4. run the targets on every CPU at once, slowest first;
//! 5. top up: a target still short of the goal (its main run slower than
//!    its probe: in the 2026-11-30 campaign `decompress_xz` ran at 12 k/s
//!    against 31 k/s in the probe while the machine also ran other work)
//!    runs again for what it lacks at the rate of its main run
//!    ([`top_ups`]), in the wall clock the reserve left;
//! 6. print the table of `cargo xtask fuzz` (probe, campaign and top-up
//!    runs added) with whether each reached the goal.
//!
//! A crash stops the campaign like `cargo xtask fuzz` (naming the input); a
//! target short of the goal is reported, and the command fails.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::fuzz::{build, corpora, fuzz_one, seed, stats_table, targets, RunStats};
use crate::util::announce;

/// Seconds each target runs to measure its rate.
pub const PROBE_SECS: u64 = 20;

/// Share of the budget kept for topping up targets whose rate fell below
/// their probe's.
pub const RESERVE_PERCENT: u64 = 10;

/// Seconds of a second run for each target short of `goal` after its main
/// run: what it lacks at `rate` (its main run's executions per second),
/// and a fifth more, at most `wall_left` (one target runs on one CPU), at
/// least one. `(index, executions so far, rate)` in; `(index, seconds)` out,
/// only for those short.
pub fn top_ups(runs: &[(usize, u64, u64)], goal: u64, wall_left: u64) -> Vec<(usize, u64)> {
    runs.iter()
        .filter(|&&(_, done, _)| done < goal)
        .map(|&(i, done, rate)| {
            let lacking = u128::from(goal - done) * 6 / 5;
            let secs = lacking.div_ceil(u128::from(rate.max(1)));
            (
                i,
                u64::try_from(secs)
                    .unwrap_or(u64::MAX)
                    .clamp(1, wall_left.max(1)),
            )
        })
        .collect()
}

/// Seconds per target for a campaign of `budget_secs` core-seconds (wall
/// seconds times CPUs), given each target's rate (executions per second,
/// from the probe) and executions so far: enough for each to reach `goal`,
/// and what is left over shared in proportion to those needs. When the
/// budget cannot cover every need, every target gets the same fraction of
/// its need (so the slow ones are the ones that fall short). One target
/// runs on one CPU, so none gets more than `cap_secs` (the wall clock
/// left): what a capped target cannot use goes to the others, again in
/// proportion. Every target gets at least one second.
pub fn allocate(rates: &[(u64, u64)], goal: u64, budget_secs: u64, cap_secs: u64) -> Vec<u64> {
    // Needs in milliseconds, in u128 so that no product overflows.
    let needs: Vec<u128> = rates
        .iter()
        .map(|&(rate, done)| u128::from(goal.saturating_sub(done)) * 1000 / u128::from(rate.max(1)))
        .collect();
    let cap = cap_secs.max(1);
    let mut capped = vec![false; needs.len()];
    loop {
        // Share what the capped targets leave among the others.
        let left = budget_secs.saturating_sub(cap * capped.iter().filter(|&&c| c).count() as u64);
        let open: Vec<usize> = (0..needs.len()).filter(|&i| !capped[i]).collect();
        let total: u128 = open.iter().map(|&i| needs[i]).sum();
        let even = left / (open.len().max(1) as u64);
        let secs: Vec<u64> = (0..needs.len())
            .map(|i| {
                if capped[i] {
                    return cap;
                }
                let secs = (needs[i] * u128::from(left))
                    .checked_div(total)
                    .map_or(even, |s| u64::try_from(s).unwrap_or(u64::MAX));
                secs.max(1)
            })
            .collect();
        let over: Vec<usize> = open.into_iter().filter(|&i| secs[i] > cap).collect();
        if over.is_empty() {
            return secs;
        }
        for i in over {
            capped[i] = true;
        }
    }
}

/// The targets (by index) that will fall short of `goal` at their probe
/// rates with the seconds [`allocate`] gave them: said before the main run,
/// so a campaign that cannot succeed is known at once, not hours later.
pub fn shortfalls(rates: &[(u64, u64)], goal: u64, seconds: &[u64]) -> Vec<usize> {
    rates
        .iter()
        .zip(seconds)
        .enumerate()
        .filter(|(_, (&(rate, done), &secs))| done.saturating_add(rate.saturating_mul(secs)) < goal)
        .map(|(i, _)| i)
        .collect()
}

/// One target's campaign: the probe and the main run.
#[derive(Debug, Clone, Default)]
struct Row {
    probe: RunStats,
    main: RunStats,
    seconds: u64,
    /// A second run when the main one fell short: its seconds and stats.
    top_up: Option<(u64, RunStats)>,
}

impl Row {
    fn total(&self) -> RunStats {
        let (extra_secs, extra) = self
            .top_up
            .as_ref()
            .map_or((0, None), |(s, r)| (*s, Some(r)));
        let extra_execs = extra.map_or(0, |r| r.execs);
        let last = extra.unwrap_or(&self.main);
        let execs = self.probe.execs + self.main.execs + extra_execs;
        RunStats {
            execs,
            execs_per_sec: execs / (PROBE_SECS + self.seconds + extra_secs).max(1),
            cov: (
                self.probe.cov.0,
                last.cov.1.max(self.main.cov.1).max(self.probe.cov.1),
            ),
            ft: (
                self.probe.ft.0,
                last.ft.1.max(self.main.ft.1).max(self.probe.ft.1),
            ),
            corpus: last.corpus.clone(),
            new_units: self.probe.new_units
                + self.main.new_units
                + extra.map_or(0, |r| r.new_units),
        }
    }
}

/// Runs the campaign for `minutes` of wall clock on every CPU, aiming at
/// `goal` executions per target.
pub fn run(minutes: u64, goal: u64) -> Result<()> {
    let started = Instant::now();
    crate::fuzz::ensure_cargo_fuzz()?;
    let targets = targets()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    announce("seed corpora (crates/kexec-core/fuzz/seed-corpus.sh)");
    seed(&crate::fuzz::fuzz_dir().join("corpus"), true)?;
    let logs = build()?;

    let n = targets.len();
    let mut rows: Vec<Row> = vec![Row::default(); n];
    announce(&format!(
        "probe: every target for {PROBE_SECS} s, {cpus} at a time"
    ));
    let probes = parallel(&targets, cpus, |target| {
        fuzz_one(target, PROBE_SECS, &corpora(target)?, &logs)
    })?;
    for (row, probe) in rows.iter_mut().zip(probes) {
        row.probe = probe;
    }
    let spent = started.elapsed().as_secs();
    let budget = (minutes * 60).saturating_sub(spent) * cpus * (100 - RESERVE_PERCENT) / 100;
    let rates: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| (r.probe.execs_per_sec, r.probe.execs))
        .collect();
    let seconds = allocate(&rates, goal, budget, budget / cpus.max(1));
    for ((target, row), secs) in targets.iter().zip(&mut rows).zip(&seconds) {
        row.seconds = *secs;
        println!(
            "    {target:<16} {:>7}/s in the probe: {secs} s more",
            row.probe.execs_per_sec
        );
    }
    for i in shortfalls(&rates, goal, &seconds) {
        let (rate, done) = rates[i];
        println!(
            "    warning: {} will fall short at its probe rate: {} executions of {goal} \
             ({rate}/s for {} s; one target runs on one CPU)",
            targets[i],
            done.saturating_add(rate.saturating_mul(seconds[i])),
            seconds[i]
        );
    }
    // Slowest (longest) first, so the CPUs finish together.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seconds[i]));
    let ordered: Vec<String> = order.iter().map(|&i| targets[i].clone()).collect();
    announce(&format!(
        "campaign: {} core-seconds over {n} targets, {cpus} at a time",
        budget
    ));
    let mains = fuzz_each(
        &order.iter().map(|&i| seconds[i]).collect::<Vec<_>>(),
        &ordered,
        cpus,
        &logs,
        "",
    )?;
    for (&i, main) in order.iter().zip(mains) {
        rows[i].main = main;
    }
    let wall_left = (minutes * 60).saturating_sub(started.elapsed().as_secs());
    let runs: Vec<(usize, u64, u64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.total().execs, r.main.execs_per_sec))
        .collect();
    let extra = top_ups(&runs, goal, wall_left);
    if !extra.is_empty() {
        announce(&format!(
            "top-up: {} target(s) short of {goal} at their campaign rate, {wall_left} s left",
            extra.len()
        ));
        let names: Vec<String> = extra.iter().map(|&(i, _)| targets[i].clone()).collect();
        let secs: Vec<u64> = extra.iter().map(|&(_, s)| s).collect();
        let more = fuzz_each(&secs, &names, cpus, &logs, " (top-up)")?;
        for (&(i, secs), stats) in extra.iter().zip(more) {
            rows[i].top_up = Some((secs, stats));
        }
    }
    let table: Vec<(String, RunStats)> = targets
        .iter()
        .zip(&rows)
        .map(|(t, r)| (t.clone(), r.total()))
        .collect();
    print!("{}", stats_table(&table));
    let short: Vec<String> = table
        .iter()
        .filter(|(_, s)| s.execs < goal)
        .map(|(t, s)| format!("{t} ({})", s.execs))
        .collect();
    println!(
        "campaign of {minutes} min on {cpus} CPUs: {n} targets, no crash, {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    if !short.is_empty() {
        bail!("short of {goal} executions: {}", short.join(", "));
    }
    println!("every target reached {goal} executions");
    Ok(())
}

/// Fuzzes `names[i]` for `secs[i]` seconds, `cpus` at a time, printing a
/// line per target as it ends (its name followed by `label`).
fn fuzz_each(
    secs: &[u64],
    names: &[String],
    cpus: u64,
    logs: &std::path::Path,
    label: &str,
) -> Result<Vec<RunStats>> {
    parallel(names, cpus, |target| {
        let i = names.iter().position(|t| t == target).unwrap_or(0);
        let seconds = secs.get(i).copied().unwrap_or(1);
        let stats = fuzz_one(target, seconds, &corpora(target)?, logs)?;
        println!(
            "    {target}{label}: {} runs, {}/s, cov {} ft {}",
            stats.execs, stats.execs_per_sec, stats.cov.1, stats.ft.1
        );
        Ok(stats)
    })
}

/// Runs `job` on every item, `workers` at a time, keeping the items' order
/// in the results; the first error stops the remaining items from starting.
fn parallel<T: Send>(
    items: &[String],
    workers: u64,
    job: impl Fn(&str) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<T>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let i = {
                    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                    let i = *next;
                    *next += 1;
                    i
                };
                let Some(item) = items.get(i) else { return };
                let result = job(item);
                if result.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for (item, result) in items
        .iter()
        .zip(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    {
        match result {
            Some(r) => out.push(r?),
            None => bail!("{item} did not run: an earlier target failed"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_meets_every_need_when_the_budget_allows() {
        // 1e7 at 10 k/s needs 1000 s; at 100 k/s 100 s; one has reached it.
        let rates = [(10_000, 0), (100_000, 0), (500_000, 20_000_000)];
        let secs = allocate(&rates, 10_000_000, 2200, 2200);
        assert_eq!(secs, vec![2000, 200, 1]);
        for (&(rate, done), &s) in rates.iter().zip(&secs) {
            assert!(done + rate * s >= 10_000_000, "{rate} {s}");
        }
    }

    #[test]
    fn a_short_budget_is_shared_in_proportion() {
        let secs = allocate(&[(10_000, 0), (100_000, 0)], 10_000_000, 550, 550);
        assert_eq!(secs, vec![500, 50]);
        // Half of each need: both fall short alike.
        assert!(10_000 * secs[0] < 10_000_000);
    }

    #[test]
    fn every_target_runs_at_least_a_second() {
        assert_eq!(
            allocate(&[(1, 0), (1_000_000, 0)], 1_000_000, 10, 10),
            vec![9, 1]
        );
        assert_eq!(allocate(&[(5, 100), (5, 100)], 10, 0, 0), vec![1, 1]);
        assert_eq!(allocate(&[(0, 0)], 10, 100, 100), vec![100]);
    }

    #[test]
    fn no_target_gets_more_than_the_wall_clock() {
        // Two CPUs, 1000 s of wall clock: the slow target needs 1500 s of
        // the 2000 and would be given more than it can run on one CPU; it
        // gets 1000, and the other two share the remaining 1000 by need.
        let rates = [(1_000, 0), (10_000, 0), (10_000, 0)];
        let secs = allocate(&rates, 1_500_000, 2000, 1000);
        assert_eq!(secs, vec![1000, 500, 500]);
        assert_eq!(secs.iter().sum::<u64>(), 2000);
        // Nothing over the cap even when every target would exceed it.
        let secs = allocate(&[(1, 0), (1, 0)], 1_000_000, 4000, 1000);
        assert_eq!(secs, vec![1000, 1000]);
    }

    #[test]
    fn top_ups_give_what_is_lacking_at_the_campaign_rate() {
        // 7.8e6 of 1e7 at 12 k/s: 2.2e6 lacking, a fifth more = 2.64e6, 220 s.
        let runs = [(0, 7_800_000, 12_000), (1, 10_000_000, 5), (2, 0, 0)];
        assert_eq!(top_ups(&runs, 10_000_000, 1000), [(0, 220), (2, 1000)]);
        // At most the wall clock left, at least a second.
        assert_eq!(top_ups(&runs[..1], 10_000_000, 100), [(0, 100)]);
        assert_eq!(
            top_ups(&[(3, 9_999_999, 1_000_000)], 10_000_000, 0),
            [(3, 1)]
        );
    }

    #[test]
    fn a_top_up_counts_in_the_total() {
        let run = |execs: u64, cov: u64| RunStats {
            execs,
            cov: (0, cov),
            new_units: 1,
            corpus: format!("{execs}"),
            ..RunStats::default()
        };
        let mut row = Row {
            probe: run(100, 5),
            main: run(1000, 7),
            seconds: 80,
            top_up: None,
        };
        assert_eq!((row.total().execs, row.total().execs_per_sec), (1100, 11));
        row.top_up = Some((100, run(2000, 9)));
        let t = row.total();
        assert_eq!((t.execs, t.execs_per_sec, t.cov.1), (3100, 15, 9));
        assert_eq!((t.corpus.as_str(), t.new_units), ("2000", 3));
    }

    #[test]
    fn shortfalls_are_known_before_the_main_run() {
        // 1000/s for 1000 s and 500 done: 1_000_500, enough for 1e6; 999/s
        // is not; a target already past the goal never is.
        let rates = [(1000, 500), (999, 0), (1, 2_000_000)];
        assert_eq!(shortfalls(&rates, 1_000_000, &[1000, 1000, 1]), [1]);
        assert_eq!(shortfalls(&rates, 1_000_500, &[1000, 1002, 1]), [0; 0]);
    }

    #[test]
    fn parallel_keeps_order_and_stops_on_error() {
        let items: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let out = parallel(&items, 3, |s| Ok(s.parse::<u32>()? * 2)).unwrap();
        assert_eq!(out, vec![0, 2, 4, 6, 8, 10, 12]);
        let err = parallel(&items, 1, |s| {
            if s == "2" {
                bail!("target 2 crashed")
            }
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("target 2 crashed"), "{err}");
    }
}

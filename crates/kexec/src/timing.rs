//! Where a load's time goes, for `--verbose` (and `cargo xtask bench`, which
//! reads the line): the wall-clock time of each phase of `kexec -l`/`-p`,
//! summed per phase, in the order first seen.
//!
//! Phases: `read` (the kernel, initrd and device-tree files), `decompress`
//! (recognising and decoding the kernel), `plan` (placing the segments,
//! editing the device tree, patching the purgatory; with verification it
//! includes the SHA-256 digests of every segment, as the plan carries them),
//! `syscall` (`kexec_load` or `kexec_file_load`, which copies the segments
//! into the kernel).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The phases timed so far, in the order first seen.
static PHASES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

/// Runs `f`, adding its wall-clock time to `phase`.
pub(crate) fn time<T>(phase: &'static str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    add(phase, start.elapsed());
    out
}

fn add(phase: &'static str, took: Duration) {
    // A poisoned lock only means a panic elsewhere: timings are best effort.
    let mut phases = PHASES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match phases.iter_mut().find(|(name, _)| *name == phase) {
        Some((_, total)) => *total += took,
        None => phases.push((phase, took)),
    }
}

/// The phases' times (`timings: read 0.1200 s, …`), with `other`: what of
/// `total` (the whole load) no phase took (reading the system state, the
/// device tree's hand-over, the checks, …); `None` when nothing was timed
/// (a dry run, an unload).
pub(crate) fn summary_within(total: Duration) -> Option<String> {
    let mut phases = PHASES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let timed: Duration = phases.iter().map(|(_, d)| *d).sum();
    (!phases.is_empty()).then(|| {
        phases.push(("other", total.saturating_sub(timed)));
        format_summary(&phases)
    })
}

fn format_summary(phases: &[(&str, Duration)]) -> String {
    let parts: Vec<String> = phases
        .iter()
        .map(|(name, took)| format!("{name} {:.4} s", took.as_secs_f64()))
        .collect();
    format!("timings: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_sum_in_first_seen_order() {
        let phases = [
            ("read", Duration::from_millis(120)),
            ("decompress", Duration::ZERO),
            ("plan", Duration::from_micros(4500)),
        ];
        assert_eq!(
            format_summary(&phases),
            "timings: read 0.1200 s, decompress 0.0000 s, plan 0.0045 s"
        );
    }

    #[test]
    fn other_is_what_no_phase_took() {
        time("other-test", || {
            std::thread::sleep(Duration::from_millis(3))
        });
        let text = summary_within(Duration::from_secs(3600)).unwrap();
        let other: f64 = text
            .rsplit_once("other ")
            .and_then(|(_, v)| v.trim_end_matches(" s").parse().ok())
            .unwrap();
        // An hour less what the phases (this one's 3 ms, and any other
        // test's) took.
        assert!((3590.0..3600.0).contains(&other), "{text}");
        assert!(text.contains("other-test 0.00"), "{text}");
    }

    #[test]
    fn time_adds_to_the_phase_and_returns_the_value() {
        assert_eq!(time("test-phase", || 7), 7);
        time("test-phase", || {
            std::thread::sleep(Duration::from_millis(2))
        });
        let text = summary_within(Duration::ZERO).expect("timed");
        let took: f64 = text
            .split("test-phase ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the phase is in the summary once");
        assert!(took >= 0.002, "{text}");
        assert_eq!(text.matches("test-phase").count(), 1, "{text}");
    }
}

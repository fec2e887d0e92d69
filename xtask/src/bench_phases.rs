//! `cargo xtask bench`'s phase breakdown: where `kexec -e` → kernel B's
//! first line, and a load, spend their time.
//!
//! Three clocks are related through the host's console timestamps (the time
//! each line's newline reached the host, [`crate::qemu::Timeline`]):
//! - the **host** timestamps of console lines (marker lines, kernel A's
//!   `Bye!`, kernel B's first line);
//! - the guest's **generic timer** (`CNTVCT_EL0`), which our purgatory prints
//!   at its entry and exit (`purgatory: entry at counter S s`, in seconds);
//!   under QEMU TCG it follows the host's clock, so `host = counter + c`
//!   for a constant `c`, estimated as the smallest `host − counter` over
//!   the purgatory's lines (each line reaches the host after it was
//!   printed, never before);
//! - kernel A's **printk clock** (`[   12.345678]`), which on arm64 is
//!   `sched_clock`, the same counter minus its value when `sched_clock`
//!   was registered; `host − printk` is estimated the same way over kernel
//!   A's lines after `kexec -e`. Their difference, `printk = counter − z`,
//!   is reported as `z` (kernel A's counter origin), a cross-check that the
//!   two estimates agree with the boot (z is about kernel A's boot time).
//!
//! The `-e` → B phases: **shutdown** (`exec` marker → `Bye!`, host),
//! **relocation** (`Bye!` → purgatory entry: the old kernel's
//! `arm64_relocate_new_kernel` copying every page, on the host's timeline),
//! **purgatory** (entry → exit on the counter, verification included),
//! **B start** (purgatory exit → B's first line); for kexec-tools, whose
//! purgatory prints no counter, **Bye → B** (relocation, purgatory and B's
//! start in one). The load phases are what our `kexec --verbose` prints
//! (`kexec: timings: read … s, decompress … s, plan … s, syscall … s`, see
//! crates/kexec/src/timing.rs); kexec-tools has none.

use std::fmt::Write as _;
use std::time::Duration;

use crate::qemu::{ConsoleLine, Timeline};

/// The first line of kexec-tools' purgatory when it has a console.
pub const KEXEC_TOOLS_PURGATORY_LINE: &str = "I'm in purgatory";

/// Where one `kexec -e` (and load) spent its time, seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    /// `exec` marker → kernel A's `Bye!`.
    pub shutdown_s: Option<f64>,
    /// `Bye!` → kernel B's first line.
    pub bye_to_b_s: Option<f64>,
    /// `Bye!` → the purgatory's entry (ours; kexec-tools' with `--serial`).
    pub relocation_s: Option<f64>,
    /// The purgatory's entry → exit (ours only).
    pub purgatory_s: Option<f64>,
    /// The purgatory's exit → kernel B's first line (ours); kexec-tools'
    /// purgatory entry → B's first line, its purgatory included (with
    /// `--serial`).
    pub b_start_s: Option<f64>,
    /// Kernel A's printk clock origin on the counter, seconds (ours only).
    pub printk_origin_s: Option<f64>,
    /// The load's phases from `kexec --verbose` (ours only), in order.
    pub load: Vec<(String, f64)>,
}

/// `[   12.345678] rest` → 12.345678.
pub fn printk_time(text: &str) -> Option<f64> {
    let rest = text.trim_start().strip_prefix('[')?;
    let (number, _) = rest.split_once(']')?;
    number.trim().parse().ok()
}

/// `purgatory: WHAT at counter S s` → S.
pub fn purgatory_counter(text: &str, what: &str) -> Option<f64> {
    let rest = text
        .split_once(&format!("purgatory: {what} at counter "))?
        .1;
    rest.strip_suffix(" s").unwrap_or(rest).trim().parse().ok()
}

/// `timings: read 0.1 s, plan 0.2 s` (after any prefix) → the pairs.
pub fn load_timings(text: &str) -> Vec<(String, f64)> {
    let Some((_, list)) = text.split_once("timings: ") else {
        return Vec::new();
    };
    list.split(", ")
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let name = words.next()?;
            let secs = words.next()?.parse().ok()?;
            Some((name.to_owned(), secs))
        })
        .collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The smallest `host − guest` over `lines` whose guest time `guest` gives.
fn min_offset(lines: &[&ConsoleLine], guest: impl Fn(&str) -> Option<f64>) -> Option<f64> {
    lines
        .iter()
        .filter_map(|l| guest(&l.text).map(|g| secs(l.at) - g))
        .min_by(f64::total_cmp)
}

/// The phases of a timeline from `exec` (the `exec` marker's time) to `first_b`
/// (kernel B's first line), and the load's `timings` marker if any.
pub fn phases_from(t: &Timeline, exec: Duration, first_b: Duration) -> Phases {
    let after: Vec<&ConsoleLine> = t
        .lines
        .iter()
        .filter(|l| l.at >= exec && l.at <= first_b)
        .collect();
    let bye = after
        .iter()
        .find(|l| l.text.contains("] Bye!"))
        .map(|l| l.at);
    let entry = after
        .iter()
        .find_map(|l| purgatory_counter(&l.text, "entry"));
    let exit = after
        .iter()
        .find_map(|l| purgatory_counter(&l.text, "exit"));
    // host = counter + c, from the purgatory's own lines.
    let c = min_offset(&after, |text| {
        purgatory_counter(text, "entry").or_else(|| purgatory_counter(text, "exit"))
    });
    // kexec-tools' purgatory, given a console (`--serial`), prints this
    // first thing (purgatory/purgatory.c): its entry on the host's clock.
    let kexec_tools_entry = after
        .iter()
        .find(|l| l.text.contains(KEXEC_TOOLS_PURGATORY_LINE))
        .map(|l| l.at);
    let bye_lines: Vec<&ConsoleLine> = after
        .iter()
        .copied()
        .filter(|l| bye.is_some_and(|b| l.at <= b))
        .collect();
    let printk_c = min_offset(&bye_lines, printk_time);
    let load = t
        .marker("a", "timings")
        .map(|m| load_timings(&m.value))
        .unwrap_or_default();
    Phases {
        shutdown_s: bye.map(|b| secs(b - exec)),
        bye_to_b_s: bye.map(|b| secs(first_b - b)),
        relocation_s: bye
            .zip(entry)
            .zip(c)
            .map(|((b, e), c)| e + c - secs(b))
            .or_else(|| bye.zip(kexec_tools_entry).map(|(b, e)| secs(e - b))),
        purgatory_s: entry.zip(exit).map(|(e, x)| x - e),
        b_start_s: exit
            .zip(c)
            .map(|(x, c)| secs(first_b) - (x + c))
            .or_else(|| kexec_tools_entry.map(|e| secs(first_b - e))),
        printk_origin_s: c.zip(printk_c).map(|(c, p)| p - c),
        load,
    }
}

/// The median of a non-empty list.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The median of `f` over `samples` where it is known.
fn median_of(samples: &[Phases], f: impl Fn(&Phases) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(f).collect();
    (!v.is_empty()).then(|| median(&mut v))
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
}

/// One row of the phase table: a label and every repetition's phases.
#[derive(Debug, Clone)]
pub struct PhaseRow {
    /// Row label (initrd and loader).
    pub label: String,
    /// The repetitions.
    pub samples: Vec<Phases>,
}

/// The names of the load phases in `rows`, in first-seen order.
fn load_names(rows: &[PhaseRow]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in rows.iter().flat_map(|r| &r.samples).flat_map(|p| &p.load) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The phase tables (medians), as Markdown.
pub fn markdown(rows: &[PhaseRow]) -> String {
    let mut out = String::from(
        "\n### Phases of `kexec -e` → B's first line (medians, s)\n\n\
         | case | shutdown (-e → Bye!) | Bye! → B | relocation (Bye! → purgatory) | purgatory | purgatory exit → B | A's printk origin (counter, s) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let m = |f: &dyn Fn(&Phases) -> Option<f64>| cell(median_of(&row.samples, f));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            m(&|p| p.shutdown_s),
            m(&|p| p.bye_to_b_s),
            m(&|p| p.relocation_s),
            m(&|p| p.purgatory_s),
            m(&|p| p.b_start_s),
            m(&|p| p.printk_origin_s),
        );
    }
    let names = load_names(rows);
    if names.is_empty() {
        return out;
    }
    let _ = write!(
        out,
        "\n### Phases of our load (`kexec --verbose`, medians, s)\n\n| case | {} |\n| --- |{}\n",
        names.join(" | "),
        " ---: |".repeat(names.len())
    );
    for row in rows
        .iter()
        .filter(|r| r.samples.iter().any(|p| !p.load.is_empty()))
    {
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                cell(median_of(&row.samples, |p| {
                    p.load.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
                }))
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", row.label, cells.join(" | "));
    }
    out
}

/// One sample's phases as a JSON object (`null` where unknown).
pub fn json(p: &Phases) -> String {
    let n = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.4}"));
    let load: Vec<String> = p
        .load
        .iter()
        .map(|(name, s)| format!("\"{name}\":{s:.4}"))
        .collect();
    format!(
        "{{\"shutdown_s\":{},\"bye_to_b_s\":{},\"relocation_s\":{},\"purgatory_s\":{},\"b_start_s\":{},\"printk_origin_s\":{},\"load\":{{{}}}}}",
        n(p.shutdown_s),
        n(p.bye_to_b_s),
        n(p.relocation_s),
        n(p.purgatory_s),
        n(p.b_start_s),
        n(p.printk_origin_s),
        load.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, text: &str) -> ConsoleLine {
        ConsoleLine {
            at: Duration::from_millis(ms),
            text: text.into(),
        }
    }

    #[test]
    fn parses_the_three_line_forms() {
        assert_eq!(printk_time("[   12.345678] Bye!"), Some(12.345678));
        assert_eq!(printk_time("purgatory: x"), None);
        assert_eq!(
            purgatory_counter("purgatory: entry at counter 40.000100000 s", "entry"),
            Some(40.0001)
        );
        assert_eq!(
            purgatory_counter("purgatory: exit at counter 1.5 s", "entry"),
            None
        );
        assert_eq!(
            load_timings("kexec: timings: read 0.1200 s, plan 0.0045 s"),
            vec![("read".to_owned(), 0.12), ("plan".to_owned(), 0.0045)]
        );
    }

    /// Host clock = counter + 2.0 s; kernel A's printk = counter − 1.5 s;
    /// every line reaches the host 1 ms after it was printed except the
    /// purgatory's exit line and the line before `Bye!` (no delay).
    #[test]
    fn phases_on_one_timeline() {
        let lines = vec![
            at(10_000, "@@kxt a step exec"),
            at(10_300, "[    6.800000] kexec_core: Starting new kernel"),
            at(10_401, "[    6.900000] Bye!"),
            at(10_681, "purgatory: entry at counter 8.680000000 s"),
            at(10_682, "purgatory: verification skipped"),
            at(10_690, "purgatory: exit at counter 8.690000000 s"),
            at(11_000, "[    0.000000] Booting Linux on physical CPU 0x0"),
        ];
        let t = Timeline::from_lines(lines);
        let p = phases_from(&t, Duration::from_secs(10), Duration::from_secs(11));
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-6;
        assert!(close(p.shutdown_s, 0.401), "{p:?}");
        assert!(close(p.bye_to_b_s, 0.599), "{p:?}");
        assert!(close(p.relocation_s, 10.680 - 10.401), "{p:?}");
        assert!(close(p.purgatory_s, 0.010), "{p:?}");
        assert!(close(p.b_start_s, 0.310), "{p:?}");
        assert!(close(p.printk_origin_s, 1.5), "{p:?}");
        assert!(p.load.is_empty());
    }

    #[test]
    fn kexec_tools_purgatory_line_splits_bye_to_b() {
        let lines = vec![
            at(10_000, "@@kxt a step exec"),
            at(10_400, "[    9.900000] Bye!"),
            at(10_600, "I'm in purgatory"),
            at(10_650, "[    0.000000] Booting Linux on physical CPU 0x0"),
        ];
        let t = Timeline::from_lines(lines);
        let p = phases_from(&t, Duration::from_secs(10), Duration::from_millis(10_650));
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(p.relocation_s, 0.2), "{p:?}");
        assert!(close(p.b_start_s, 0.05), "{p:?}");
        assert_eq!(p.purgatory_s, None);
    }

    #[test]
    fn kexec_tools_has_only_shutdown_and_bye_to_b() {
        let lines = vec![
            at(10_000, "@@kxt a step exec"),
            at(10_400, "[   9.900000] Bye!"),
            at(10_650, "[    0.000000] Booting Linux on physical CPU 0x0"),
        ];
        let t = Timeline::from_lines(lines);
        let p = phases_from(&t, Duration::from_secs(10), Duration::from_millis(10_650));
        assert!(p.bye_to_b_s.is_some_and(|s| (s - 0.25).abs() < 1e-9));
        assert_eq!(
            (p.relocation_s, p.purgatory_s, p.b_start_s),
            (None, None, None)
        );
        let table = markdown(&[PhaseRow {
            label: "small kexec-tools -i".into(),
            samples: vec![p],
        }]);
        assert!(
            table.contains("| small kexec-tools -i | 0.400 | 0.250 | – | – | – | – |"),
            "{table}"
        );
        assert!(!table.contains("Phases of our load"), "{table}");
    }
}

//! `cargo xtask bench`'s first and warm loads: after the measured load,
//! the same load [`WARM_LOADS`] more times in the same boot, each with its
//! user and system CPU time from busybox `time -v`, and the section of
//! `target/bench.md` that sets them side by side.
//!
//! Why both: the first load of a boot runs code QEMU's TCG has not
//! translated yet (it translates each guest code block the first time it
//! runs; a warm load reuses the translations of the same binary's pages).
//! That costs a larger binary more and has no counterpart on real
//! hardware, so the warm loads compare the loaders' own work.

use std::fmt::Write as _;

use crate::bench_phases::median;
use crate::qemu::Timeline;

/// User and system CPU time of one process, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpu {
    /// User time.
    pub user_s: f64,
    /// System time.
    pub sys_s: f64,
}

impl Cpu {
    /// `USER SYS` (the script's `cpu_of`: busybox `time -v`'s two figures).
    pub fn parse(text: &str) -> Option<Cpu> {
        let mut it = text.split_whitespace().map(str::parse::<f64>);
        match (it.next(), it.next(), it.next()) {
            (Some(Ok(user_s)), Some(Ok(sys_s)), None) => Some(Cpu { user_s, sys_s }),
            _ => None,
        }
    }
}

/// Loads repeated after the measured one, in the same boot.
pub const WARM_LOADS: usize = 3;

/// The warm loads of a timeline: each `a:step warm` up to the next
/// `a:warm-done` (whose value is the CPU time, `USER SYS`).
pub fn warm_from(t: &Timeline) -> Vec<(f64, Option<Cpu>)> {
    let mut warm = Vec::new();
    let mut started = None;
    for m in t.markers.iter().filter(|m| m.stage == "a") {
        match (m.key.as_str(), m.value.as_str(), started) {
            ("step", "warm", _) => started = Some(m.at),
            ("warm-done", cpu, Some(at)) => {
                warm.push(((m.at - at).as_secs_f64(), Cpu::parse(cpu)));
                started = None;
            }
            _ => {}
        }
    }
    warm
}

/// What one bench run measured of its loads: the first one's wall-clock
/// and CPU time, then each warm repeat's.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSample {
    /// The first load of the boot, seconds.
    pub first_s: f64,
    /// Its CPU time.
    pub first_cpu: Option<Cpu>,
    /// The warm loads: each one's wall-clock time and CPU time.
    pub warm: Vec<(f64, Option<Cpu>)>,
}

impl LoadSample {
    /// The warm load: the median of the warm repeats.
    pub fn warm_s(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.warm.iter().map(|(t, _)| *t).collect();
        (!v.is_empty()).then(|| median(&mut v))
    }

    /// The warm repeats' CPU time: the medians of user and of system time.
    pub fn warm_cpu(&self) -> Option<Cpu> {
        let (mut u, mut k): (Vec<f64>, Vec<f64>) = self
            .warm
            .iter()
            .filter_map(|(_, c)| *c)
            .map(|c| (c.user_s, c.sys_s))
            .unzip();
        (!u.is_empty()).then(|| Cpu {
            user_s: median(&mut u),
            sys_s: median(&mut k),
        })
    }
}

/// One case's loads over its repetitions, for [`markdown`].
#[derive(Debug, Clone)]
pub struct LoadRow {
    /// Row label (initrd, CPUs and loader).
    pub label: String,
    /// Every repetition.
    pub samples: Vec<LoadSample>,
    /// The row warm ratios are taken to (kexec-tools verified, same initrd
    /// and CPUs), by index.
    pub reference: Option<usize>,
}

/// The median over `samples` of what `f` gives, where it gives something.
fn median_some(samples: &[LoadSample], f: impl Fn(&LoadSample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(f).collect();
    (!v.is_empty()).then(|| median(&mut v))
}

/// The loads, first and warm, with their CPU time, as a Markdown section
/// (empty when no sample has warm loads).
pub fn markdown(rows: &[LoadRow]) -> String {
    if rows
        .iter()
        .all(|r| r.samples.iter().all(|s| s.warm.is_empty()))
    {
        return String::new();
    }
    let mut out = format!(
        "\n### The first load of a boot and {WARM_LOADS} warm repeats (medians, s)\n\n\
         The first load runs code QEMU (TCG) has not translated yet; the warm loads repeat it \
         in the same boot. CPU: user + system time of the first load, then of a warm one.\n\n\
         | case | first load | warm load | first: user + sys | warm: user + sys | warm load ratio |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"));
    let cpu_cell = |samples: &[LoadSample], f: &dyn Fn(&LoadSample) -> Option<Cpu>| match (
        median_some(samples, |s| f(s).map(|c| c.user_s)),
        median_some(samples, |s| f(s).map(|c| c.sys_s)),
    ) {
        (Some(u), Some(k)) => format!("{u:.2} + {k:.2}"),
        _ => "–".to_owned(),
    };
    for row in rows {
        let warm = median_some(&row.samples, LoadSample::warm_s);
        let reference = row
            .reference
            .and_then(|i| rows.get(i))
            .and_then(|r| median_some(&r.samples, LoadSample::warm_s));
        let ratio = match (warm, reference) {
            (Some(w), Some(r)) if r > 0.0 => format!("{:.2}", w / r),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {ratio} |",
            row.label,
            cell(median_some(&row.samples, |s| Some(s.first_s))),
            cell(warm),
            cpu_cell(&row.samples, &|s| s.first_cpu),
            cpu_cell(&row.samples, &LoadSample::warm_cpu),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_figures_are_two_numbers() {
        assert_eq!(
            Cpu::parse(" 0.07 0.33 "),
            Some(Cpu {
                user_s: 0.07,
                sys_s: 0.33
            })
        );
        assert_eq!(Cpu::parse("0.07"), None);
        assert_eq!(Cpu::parse("0.07 0.33 1"), None);
        assert_eq!(Cpu::parse("x 0.33"), None);
    }

    fn sample(first_s: f64, warm: &[f64], user_s: f64) -> LoadSample {
        let cpu = Some(Cpu { user_s, sys_s: 0.3 });
        LoadSample {
            first_s,
            first_cpu: cpu,
            warm: warm.iter().map(|&w| (w, cpu)).collect(),
        }
    }

    fn row(label: &str, samples: Vec<LoadSample>) -> LoadRow {
        LoadRow {
            label: label.to_owned(),
            samples,
            reference: Some(0),
        }
    }

    #[test]
    fn the_warm_ratio_is_to_the_reference_rows_warm_load() {
        let rows = [
            row(
                "small 2 CPUs kexec-tools",
                vec![sample(1.3, &[1.0, 1.2, 1.1], 0.8)],
            ),
            row(
                "small 2 CPUs kexec-rs",
                vec![sample(1.0, &[0.6, 0.5, 0.7], 0.6)],
            ),
        ];
        let table = markdown(&rows);
        assert!(
            table.contains(
                "| small 2 CPUs kexec-tools | 1.300 | 1.100 | 0.80 + 0.30 | 0.80 + 0.30 | 1.00 |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| small 2 CPUs kexec-rs | 1.000 | 0.600 | 0.60 + 0.30 | 0.60 + 0.30 | 0.55 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn warm_medians_and_missing_figures() {
        let s = LoadSample {
            first_s: 1.0,
            first_cpu: None,
            warm: vec![
                (
                    0.4,
                    Some(Cpu {
                        user_s: 0.1,
                        sys_s: 0.2,
                    }),
                ),
                (0.2, None),
                (
                    0.3,
                    Some(Cpu {
                        user_s: 0.3,
                        sys_s: 0.4,
                    }),
                ),
            ],
        };
        assert_eq!(s.warm_s(), Some(0.3));
        let cpu = s.warm_cpu().unwrap();
        assert!(
            (cpu.user_s - 0.2).abs() < 1e-9 && (cpu.sys_s - 0.3).abs() < 1e-9,
            "{cpu:?}: the medians of the two with figures"
        );
    }

    #[test]
    fn no_warm_loads_no_section() {
        let rows = [row("small 2 CPUs kexec-rs -i", vec![sample(1.0, &[], 0.1)])];
        assert_eq!(markdown(&rows), "");
    }
}

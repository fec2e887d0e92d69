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

use crate::bench::{initrd_label, median, Row, Sample};
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

/// The warm load of a sample: the median of its warm repeats.
pub fn warm_load(s: &Sample) -> Option<f64> {
    let mut v: Vec<f64> = s.warm.iter().map(|(t, _)| *t).collect();
    (!v.is_empty()).then(|| median(&mut v))
}

/// The median over `samples` of what `f` gives, where it gives something.
fn median_some(samples: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(f).collect();
    (!v.is_empty()).then(|| median(&mut v))
}

/// The loads, first and warm, with their CPU time, as a Markdown section
/// (empty when no sample has warm loads): the warm ratio is to kexec-tools'
/// verified warm load of the same initrd and CPUs.
pub fn loads_markdown(rows: &[Row]) -> String {
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
    let cpu_cell = |samples: &[Sample], f: &dyn Fn(&Sample) -> Option<Cpu>| match (
        median_some(samples, |s| f(s).map(|c| c.user_s)),
        median_some(samples, |s| f(s).map(|c| c.sys_s)),
    ) {
        (Some(u), Some(k)) => format!("{u:.2} + {k:.2}"),
        _ => "–".to_owned(),
    };
    let warm_cpu = |s: &Sample| -> Option<Cpu> {
        let (mut u, mut k): (Vec<f64>, Vec<f64>) = s
            .warm
            .iter()
            .filter_map(|(_, c)| *c)
            .map(|c| (c.user_s, c.sys_s))
            .unzip();
        (!u.is_empty()).then(|| Cpu {
            user_s: median(&mut u),
            sys_s: median(&mut k),
        })
    };
    for row in rows {
        let reference = row.reference_in(rows);
        let warm = median_some(&row.samples, warm_load);
        let ratio = match (
            warm,
            reference.and_then(|r| median_some(&r.samples, warm_load)),
        ) {
            (Some(w), Some(r)) if r > 0.0 => format!("{:.2}", w / r),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} {} CPUs {} | {:.3} | {} | {} | {} | {ratio} |",
            initrd_label(row.case.initrd_extra_mib),
            row.case.cpus,
            row.case.label(),
            row.med(|s| s.load_s),
            cell(warm),
            cpu_cell(&row.samples, &|s| s.cpu),
            cpu_cell(&row.samples, &warm_cpu),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Loader;

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

    fn sample(load_s: f64, warm: &[f64], user_s: f64) -> Sample {
        let cpu = Some(Cpu { user_s, sys_s: 0.3 });
        Sample {
            load_s,
            exec_s: 1.0,
            rss_kib: 1,
            floor_s: 1.0,
            phases: crate::bench_phases::Phases::default(),
            cpu,
            warm: warm.iter().map(|&w| (w, cpu)).collect(),
        }
    }

    fn row(loader: Loader, verify: bool, samples: Vec<Sample>) -> Row {
        Row {
            case: crate::bench::Case {
                loader,
                verify,
                initrd_extra_mib: 0,
                cpus: 2,
                one_cpu: false,
            },
            samples,
        }
    }

    #[test]
    fn the_warm_ratio_is_to_kexec_tools_verified_warm() {
        let rows = [
            row(
                Loader::KexecTools,
                true,
                vec![sample(1.3, &[1.0, 1.2, 1.1], 0.8)],
            ),
            row(Loader::Ours, true, vec![sample(1.0, &[0.6, 0.5, 0.7], 0.6)]),
        ];
        let table = loads_markdown(&rows);
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
    fn no_warm_loads_no_section() {
        let rows = [row(Loader::Ours, false, vec![sample(1.0, &[], 0.1)])];
        assert_eq!(loads_markdown(&rows), "");
    }
}

//! `cargo xtask bench`: our loader against kexec-tools, in the same QEMU
//! settings, reported as medians and ratios (never as pass/fail).
//!
//! For each case (loader × verification × initrd size) and repetition, kernel
//! A boots, loads kernel B under busybox `time -v`, and executes it. Measured
//! from the host's timestamps of the guest's console lines:
//! - **load**: from the `load` step marker to the `loaded` marker, the
//!   first load of the boot; then [`WARM_LOADS`] more of the same load in
//!   the same boot (**warm load**, their median), and the user and system
//!   CPU time of each (`time -v`). The first run of a program's code in a
//!   guest costs more than its work: QEMU's TCG translates each guest code
//!   block the first time it runs, and a warm load reuses the translations
//!   (the same pages of the same binary). Real hardware has no such cost,
//!   so the warm load is the one that compares the loaders' work;
//! - **exec**: from the `exec` step marker to kernel B's first console line
//!   (`Booting Linux …`): the old kernel's shutdown, the purgatory
//!   (verification) and the new kernel's first instructions;
//! - **peak RSS** of the loader, from `time -v` (busybox reports ru_maxrss
//!   multiplied by 4 on 4 KiB pages: divided back here);
//! - the **SHA-256 floor**: `kxt-probe sha256` over the same bytes (the `sha2`
//!   crate with the SHA2 instructions), on the same guest CPU model.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::bench_loads::{warm_from, Cpu, LoadRow, LoadSample, WARM_LOADS};
pub use crate::bench_phases::median;
use crate::bench_phases::{PhaseRow, Phases};
use crate::guest::{stage_initramfs, FileSource, Stage};
use crate::qemu::{Boot, Console, MachineShape, Timeline};
use crate::scenario::{build_our_kexec, Loader, WorkDir, STEP_TIMEOUT};
use crate::setup::Assets;
use crate::util::announce;

/// One benchmark configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The loader.
    pub loader: Loader,
    /// Whether the purgatory verifies digests (`false`: `-i`).
    pub verify: bool,
    /// Extra initrd payload, MiB (0: the small base initramfs).
    pub initrd_extra_mib: u32,
    /// The guest's CPUs (`-smp`).
    pub cpus: u32,
    /// Ours only: the purgatory hashes on the boot CPU alone
    /// (`--purgatory-one-cpu`), for comparison with hashing on every CPU.
    pub one_cpu: bool,
}

impl Case {
    /// Row label.
    pub fn label(&self) -> String {
        format!(
            "{}{}{}",
            self.loader,
            if self.verify { "" } else { " -i" },
            if self.one_cpu {
                " (purgatory on 1 CPU)"
            } else {
                ""
            }
        )
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The first load of the boot and the warm ones after it.
    pub loads: LoadSample,
    /// `kexec -e` to the new kernel's first line, seconds.
    pub exec_s: f64,
    /// Loader peak RSS, KiB.
    pub rss_kib: u64,
    /// SHA-256 of the same bytes in the guest, seconds.
    pub floor_s: f64,
    /// Where `-e` → B and the load spent their time (bench_phases.rs).
    pub phases: Phases,
}

/// When the marker `stage:key` (with `value`, if given) was printed.
pub fn marker_time(t: &Timeline, stage: &str, key: &str, value: Option<&str>) -> Result<Duration> {
    t.markers
        .iter()
        .find(|m| m.stage == stage && m.key == key && value.is_none_or(|v| m.value == v))
        .map(|m| m.at)
        .with_context(|| format!("no `{stage}:{key}` marker"))
}

/// Extract a sample from a timeline.
pub fn sample_from(t: &Timeline) -> Result<Sample> {
    let load = marker_time(t, "a", "step", Some("load"))?;
    let loaded = marker_time(t, "a", "loaded", None)?;
    let floor_start = marker_time(t, "a", "step", Some("floor"))?;
    let floor_end = marker_time(t, "a", "floor-done", None)?;
    let exec = marker_time(t, "a", "step", Some("exec"))?;
    let first_b = t
        .lines
        .iter()
        .find(|l| l.at >= exec && l.text.contains("Booting Linux on physical CPU"))
        .map(|l| l.at)
        .context("kernel B printed no `Booting Linux` line")?;
    let rss_reported: u64 = t
        .marker("a", "rss")
        .and_then(|m| m.value.trim().parse().ok())
        .context("no `a:rss` marker with a number")?;
    Ok(Sample {
        loads: LoadSample {
            first_s: (loaded - load).as_secs_f64(),
            first_cpu: t.marker("a", "cpu").and_then(|m| Cpu::parse(&m.value)),
            warm: warm_from(t),
        },
        exec_s: (first_b - exec).as_secs_f64(),
        rss_kib: rss_reported / 4,
        floor_s: (floor_end - floor_start).as_secs_f64(),
        phases: crate::bench_phases::phases_from(t, exec, first_b),
    })
}

fn run_case(
    assets: &Assets,
    (case, select): (Case, &Selection<'_>),
    ours: &std::path::Path,
    work: &WorkDir,
) -> Result<Sample> {
    let initrd_b = work.0.join(format!("initrd-b-{}", case.initrd_extra_mib));
    if !initrd_b.exists() {
        let mut stage = Stage {
            name: "b".into(),
            ..Stage::default()
        };
        if case.initrd_extra_mib > 0 {
            let pad = vec![0x5a_u8; case.initrd_extra_mib as usize * (1 << 20)];
            stage
                .files
                .push(("/payload/padding".into(), FileSource::Bytes(pad)));
        }
        stage_initramfs(assets, &stage, &initrd_b)?;
    }
    let checks = match (case.verify, case.one_cpu) {
        (false, _) => "-i",
        (true, true) => "--purgatory-one-cpu",
        (true, false) => "",
    };
    // Ours prints where the load's time went (crates/kexec/src/timing.rs).
    // `--show-layout`: both loaders' `-d` (kexec-tools: the segments it
    // passes to kexec_load; ours: the plan), copied to the console.
    let show_layout = select.show_layout;
    let extra = match case.loader {
        Loader::KexecTools => select.extra_args.0,
        Loader::Ours => select.extra_args.1,
    };
    let verbose = match (case.loader, show_layout) {
        (_, true) => "-d",
        (Loader::Ours, false) => "--verbose",
        (Loader::KexecTools, false) => "",
    };
    let layout = if show_layout {
        "sed 's/^/layout: /' /tmp/time.out | grep -v 'Command being timed' | head -150\n"
    } else {
        ""
    };
    // `earlycon`: B's first line is printed as soon as B parses its command
    // line, not once its console driver is up.
    let load = format!(
        "{loader} -l /payload/Image --initrd=/payload/initrd \
         --command-line='console=ttyAMA0 earlycon kxt.stage=b' {checks} {verbose} {extra}",
        loader = case.loader.guest_path(),
    );
    let warm = (1..=WARM_LOADS)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "cpu_of() {{ echo $(sed -n 's/.*User time (seconds): //p' $1) \
           $(sed -n 's/.*System time (seconds): //p' $1); }}\n\
         say step load\n\
         time -v {load} 2>/tmp/time.out || fail \"load failed: $(tail -c 300 /tmp/time.out)\"\n\
         say loaded\n\
         say cpu \"$(cpu_of /tmp/time.out)\"\n\
         say timings \"$(grep -m1 'timings: ' /tmp/time.out)\"\n\
         {layout}\
         say rss \"$(sed -n 's/.*Maximum resident set size (kbytes): //p' /tmp/time.out)\"\n\
         for i in {warm}; do\n\
           say step warm\n\
           time -v {load} >/dev/null 2>/tmp/warm.out \
             || fail \"warm load failed: $(tail -c 300 /tmp/warm.out)\"\n\
           say warm-done \"$(cpu_of /tmp/warm.out)\"\n\
         done\n\
         say step floor\n\
         kxt-probe sha256 /payload/Image /payload/initrd >/dev/null\n\
         say floor-done\n\
         sync\n\
         say step exec\n\
         {loader} -e\n\
         fail 'exec returned'\n",
        loader = case.loader.guest_path(),
    );
    let timeline = run_kernel_a(
        assets,
        &KernelA {
            script,
            next_initrd: &initrd_b,
            ours,
            work,
            cmdline: "console=ttyAMA0 kxt.stage=a",
            next_stage: "b",
            cpus: case.cpus,
        },
    )?;
    save_console(&case, &timeline)?;
    sample_from(&timeline)
}

/// Writes the run's console, with host timestamps, to
/// `target/bench-console/CASE.log` (the last repetition of each case), for
/// reading the phases by hand.
fn save_console(case: &Case, timeline: &Timeline) -> Result<()> {
    let dir = crate::util::target_dir().join("bench-console");
    std::fs::create_dir_all(&dir)?;
    let name = format!(
        "{}{}-{}.log",
        case.loader,
        if case.verify { "" } else { "-i" },
        initrd_label(case.initrd_extra_mib).replace(' ', "")
    );
    std::fs::write(dir.join(name), timeline.tail(timeline.lines.len()))?;
    Ok(())
}

/// A benchmark boot of kernel A (2 CPUs, 2 GiB) running `script` as its
/// stage `a`, with the Debian Image at `/payload/Image`, `next_initrd` at
/// `/payload/initrd` and our static `kexec` in the guest.
#[derive(Debug)]
pub struct KernelA<'a> {
    /// Stage `a`'s script.
    pub script: String,
    /// The next kernel's initramfs.
    pub next_initrd: &'a Path,
    /// Our static `kexec`.
    pub ours: &'a Path,
    /// Scratch directory.
    pub work: &'a WorkDir,
    /// Kernel A's command line.
    pub cmdline: &'a str,
    /// The stage name of the next kernel, whose `boot` marker ends the wait.
    pub next_stage: &'a str,
    /// The guest's CPUs.
    pub cpus: u32,
}

/// Boots `a` until `a:loaded` and the next kernel's `boot` marker, then
/// until QEMU exits; the console's timeline.
pub fn run_kernel_a(assets: &Assets, a: &KernelA<'_>) -> Result<Timeline> {
    let stage_a = Stage {
        name: "a".into(),
        script: a.script.clone(),
        files: vec![
            (
                "/payload/Image".into(),
                FileSource::Host(assets.kernel.image.clone()),
            ),
            (
                "/payload/initrd".into(),
                FileSource::Host(a.next_initrd.to_path_buf()),
            ),
            (
                Loader::Ours.guest_path().into(),
                FileSource::Host(a.ours.to_path_buf()),
            ),
        ],
    };
    let initrd_a = a.work.0.join(format!("initrd-a-{}", a.next_stage));
    stage_initramfs(assets, &stage_a, &initrd_a)?;
    let shape = MachineShape {
        cpus: a.cpus,
        memory_mib: 2048,
        ..MachineShape::default()
    };
    let boot = Boot::new(shape, &assets.kernel.image, &initrd_a, a.cmdline);
    let mut console = Console::start(&boot)?;
    console.expect("a", "loaded", STEP_TIMEOUT)?;
    console.expect(a.next_stage, "boot", STEP_TIMEOUT)?;
    console.finish(Duration::from_secs(300))
}

/// The benchmark's result: one row per case.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case.
    pub case: Case,
    /// Every repetition.
    pub samples: Vec<Sample>,
}

impl Row {
    /// The row ratios are taken to: kexec-tools verified, with the same
    /// initrd and CPUs.
    pub fn reference_in(&self, rows: &[Row]) -> Option<usize> {
        rows.iter().position(|r| {
            r.case.loader == Loader::KexecTools
                && r.case.verify
                && r.case.initrd_extra_mib == self.case.initrd_extra_mib
                && r.case.cpus == self.case.cpus
        })
    }

    /// The row's label in the phase and load tables: initrd, CPUs, loader.
    pub fn label(&self) -> String {
        format!(
            "{} {} CPUs {}",
            initrd_label(self.case.initrd_extra_mib),
            self.case.cpus,
            self.case.label()
        )
    }

    /// The median of `f` over the samples.
    pub fn med(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        median_by(&self.samples, f)
    }
}

/// The median of `f` over `samples`.
pub fn median_by<T>(samples: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    median(&mut v)
}

/// Render rows as a Markdown table with ratios to kexec-tools (verified) of the same initrd size.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| initrd | CPUs | loader | load (s) | exec → B (s) | peak RSS (MiB) | SHA-256 floor (s) | load ratio | exec ratio | RSS ratio |\n\
         | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let reference = row.reference_in(rows).map(|i| &rows[i]);
        let ratio = |f: &dyn Fn(&Sample) -> f64| match reference {
            Some(r) => format!("{:.2}", row.med(f) / r.med(f)),
            None => "–".into(),
        };
        let initrd = initrd_label(row.case.initrd_extra_mib);
        let _ = writeln!(
            out,
            "| {initrd} | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {} | {} | {} |",
            row.case.cpus,
            row.case.label(),
            row.med(|s| s.loads.first_s),
            row.med(|s| s.exec_s),
            row.med(|s| s.rss_kib as f64) / 1024.0,
            row.med(|s| s.floor_s),
            ratio(&|s| s.loads.first_s),
            ratio(&|s| s.exec_s),
            ratio(&|s| s.rss_kib as f64),
        );
    }
    out
}

/// JSON array of the rows (hand-written: plain numbers and strings).
pub fn json(rows: &[Row]) -> String {
    let mut items = Vec::new();
    for row in rows {
        let samples: Vec<String> = row
            .samples
            .iter()
            .map(|s| {
                let cpu = |c: &Option<Cpu>| {
                    c.map_or_else(
                        || "null".to_owned(),
                        |c| format!("{{\"user_s\":{:.2},\"sys_s\":{:.2}}}", c.user_s, c.sys_s),
                    )
                };
                let warm: Vec<String> = s
                    .loads
                    .warm
                    .iter()
                    .map(|(t, c)| format!("{{\"load_s\":{t:.4},\"cpu\":{}}}", cpu(c)))
                    .collect();
                format!(
                    "{{\"load_s\":{:.4},\"exec_s\":{:.4},\"rss_kib\":{},\"floor_s\":{:.4},\"cpu\":{},\"warm\":[{}],\"phases\":{}}}",
                    s.loads.first_s,
                    s.exec_s,
                    s.rss_kib,
                    s.floor_s,
                    cpu(&s.loads.first_cpu),
                    warm.join(","),
                    crate::bench_phases::json(&s.phases)
                )
            })
            .collect();
        items.push(format!(
            "{{\"loader\":\"{}\",\"verify\":{},\"initrd_extra_mib\":{},\"cpus\":{},\"one_cpu\":{},\"samples\":[{}]}}",
            row.case.loader,
            row.case.verify,
            row.case.initrd_extra_mib,
            row.case.cpus,
            row.case.one_cpu,
            samples.join(",")
        ));
    }
    format!("[{}]", items.join(","))
}

/// The load table's rows (bench_loads.rs): one per case.
pub fn load_rows(rows: &[Row]) -> Vec<LoadRow> {
    rows.iter()
        .map(|r| LoadRow {
            label: r.label(),
            samples: r.samples.iter().map(|s| s.loads.clone()).collect(),
            reference: r.reference_in(rows),
        })
        .collect()
}

/// The phase table's rows: one per case, labelled with its initrd.
pub fn phase_rows(rows: &[Row]) -> Vec<PhaseRow> {
    rows.iter()
        .map(|r| PhaseRow {
            label: r.label(),
            samples: r.samples.iter().map(|s| s.phases.clone()).collect(),
        })
        .collect()
}

fn initrd_label(extra_mib: u32) -> String {
    if extra_mib == 0 {
        "small".to_owned()
    } else {
        format!("+{extra_mib} MiB")
    }
}

/// Which cases [`run`] measures.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// The loaders that take part.
    pub loaders: &'a [Loader],
    /// The large initrd's extra MiB (0: no large-initrd rows).
    pub large_mib: u32,
    /// Only the `-i` rows.
    pub unverified_only: bool,
    /// Load with `-d` and print what the loaders print to the console.
    pub show_layout: bool,
    /// Extra arguments for kexec-tools' and our `-l` (experiments, e.g.
    /// kexec-tools' `--serial=ttyAMA0`, our `--mem-min`).
    pub extra_args: (&'a str, &'a str),
    /// The guests' CPU counts: every case runs on each; with more than
    /// one CPU, ours verified runs a second time hashing on one CPU.
    pub cpus: &'a [u32],
}

/// Run every selected case `reps` times.
pub fn run(assets: &Assets, select: Selection<'_>, reps: usize) -> Result<Vec<Row>> {
    if reps == 0 {
        bail!("at least one repetition is needed");
    }
    let ours: PathBuf = build_our_kexec()?;
    let work = WorkDir::new("bench")?;
    let sizes: &[u32] = if select.large_mib == 0 {
        &[0]
    } else {
        &[0, select.large_mib]
    };
    let verifies: &[bool] = if select.unverified_only {
        &[false]
    } else {
        &[true, false]
    };
    let mut rows: Vec<Row> = Vec::new();
    for &cpus in select.cpus {
        for &initrd_extra_mib in sizes {
            for &loader in select.loaders {
                for &verify in verifies {
                    let one_cpu_too = loader == Loader::Ours && verify && cpus > 1;
                    for one_cpu in [false, true].into_iter().take(1 + usize::from(one_cpu_too)) {
                        let case = Case {
                            loader,
                            verify,
                            initrd_extra_mib,
                            cpus,
                            one_cpu,
                        };
                        rows.push(Row {
                            case,
                            samples: Vec::new(),
                        });
                    }
                }
            }
        }
    }
    // Repetitions outermost: on a shared machine, a slow minute then slows
    // one run of every case rather than every run of one case.
    for rep in 1..=reps {
        for row in &mut rows {
            let case = row.case;
            announce(&format!(
                "bench: {} initrd+{} MiB, {} CPUs, run {rep}/{reps}",
                case.label(),
                case.initrd_extra_mib,
                case.cpus
            ));
            let sample = run_case(assets, (case, &select), &ours, &work)?;
            println!(
                "    load {:.2} s (warm {}), exec {:.2} s, rss {} KiB, floor {:.2} s\n    phases {}",
                sample.loads.first_s,
                sample.loads.warm_s().map_or_else(|| "–".to_owned(), |w| format!("{w:.2} s")),
                sample.exec_s,
                sample.rss_kib,
                sample.floor_s,
                crate::bench_phases::json(&sample.phases)
            );
            row.samples.push(sample);
        }
    }
    Ok(rows)
}

/// The cache-maintenance cost model of `kexec sim` (crates/cachesim) for the
/// same kernel on the captured 1 GiB machine, every byte simulated: the ops
/// and bytes per cache level and the estimated cycles, as a Markdown section.
pub fn cost_model_section(assets: &Assets) -> Result<String> {
    announce("cachesim cost model: kexec sim --full on fixtures/sysroots/virt-1g");
    crate::util::run(crate::util::cargo().args(["build", "--quiet", "--release", "-p", "kexec"]))?;
    let kexec = crate::util::target_dir().join("release").join("kexec");
    let sysroot = crate::util::workspace_root().join("fixtures/sysroots/virt-1g");
    let out = std::process::Command::new(&kexec)
        .arg("sim")
        .arg(&assets.kernel.image)
        .arg("--sysroot")
        .arg(&sysroot)
        .args(["--config", "a57-like", "--seeds", "1", "--full"])
        .output()
        .with_context(|| format!("running {}", kexec.display()))?;
    if !out.status.success() {
        bail!("kexec sim failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(format!(
        "\n### Cache maintenance at the handoff (cachesim cost model)\n\n```text\n{}```\n",
        String::from_utf8_lossy(&out.stdout)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::ConsoleLine;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn sample_from_console_times() {
        let at = |ms: u64, text: &str| ConsoleLine {
            at: Duration::from_millis(ms),
            text: text.into(),
        };
        let lines = vec![
            at(1000, "@@kxt a step load"),
            at(1800, "@@kxt a loaded"),
            at(1805, "@@kxt a cpu 0.20 0.53"),
            at(1810, "@@kxt a rss 40000"),
            at(1811, "@@kxt a step warm"),
            at(1815, "@@kxt a warm-done 0.04 0.30"),
            at(1816, "@@kxt a step warm"),
            at(1819, "@@kxt a warm-done"),
            at(1820, "@@kxt a step floor"),
            at(2020, "@@kxt a floor-done"),
            at(2100, "@@kxt a step exec"),
            at(2200, "[    1.0] kexec_core: Starting new kernel"),
            at(5100, "[    0.000000] Booting Linux on physical CPU 0x0"),
        ];
        let s = sample_from(&Timeline::from_lines(lines)).unwrap();
        assert!((s.loads.first_s - 0.8).abs() < 1e-9);
        assert!((s.exec_s - 3.0).abs() < 1e-9);
        assert!((s.floor_s - 0.2).abs() < 1e-9);
        assert_eq!(s.rss_kib, 10000);
        assert_eq!(
            s.loads.first_cpu,
            Some(Cpu {
                user_s: 0.2,
                sys_s: 0.53
            })
        );
        assert_eq!(s.loads.warm.len(), 2);
        assert!(
            (s.loads.warm[0].0 - 0.004).abs() < 1e-9 && (s.loads.warm[1].0 - 0.003).abs() < 1e-9
        );
        assert_eq!(
            s.loads.warm[0].1,
            Some(Cpu {
                user_s: 0.04,
                sys_s: 0.3
            })
        );
        assert_eq!(s.loads.warm[1].1, None, "a warm-done without figures");
        assert!(
            (s.loads.warm_s().unwrap() - 0.0035).abs() < 1e-9,
            "the median of two"
        );
    }

    #[test]
    fn load_rows_point_at_kexec_tools_verified_of_the_same_shape() {
        let row = |loader, verify, initrd_extra_mib| Row {
            case: Case {
                loader,
                verify,
                initrd_extra_mib,
                cpus: 2,
                one_cpu: false,
            },
            samples: Vec::new(),
        };
        let rows = [
            row(Loader::Ours, false, 0),
            row(Loader::KexecTools, true, 192),
            row(Loader::KexecTools, true, 0),
            row(Loader::Ours, true, 192),
        ];
        let refs: Vec<Option<usize>> = load_rows(&rows).iter().map(|r| r.reference).collect();
        assert_eq!(refs, [Some(2), Some(1), Some(2), Some(1)]);
        assert_eq!(load_rows(&rows)[3].label, "+192 MiB 2 CPUs kexec-rs");
    }
}

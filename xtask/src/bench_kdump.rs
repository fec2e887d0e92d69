//! `cargo xtask bench`'s kdump rows: our loader and kexec-tools in the same
//! QEMU settings, each loading a crash kernel with `-p` and then panicking.
//!
//! For each case (loader × verification) and repetition, kernel A boots with
//! `crashkernel=256M`, loads the crash kernel (the same Image, the guest's
//! small initramfs, `maxcpus=1 reset_devices earlycon`: what kdump-tools
//! adds, and `earlycon` so the crash kernel's first line is printed at
//! once), then `echo c > /proc/sysrq-trigger`. Measured from the host's
//! timestamps of the guest's console lines:
//! - **load**: from the `load` step marker to the `loaded` marker;
//! - **panic → crash kernel**: from the `panic` step marker to the crash
//!   kernel's first line (`Booting Linux …`): the panic path, the purgatory
//!   (kexec-tools': its SHA-256 check unless `-i`; ours: verification with
//!   the caches on) and the crash kernel's first instructions.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::bench::{marker_time, median_by, run_kernel_a, KernelA};
use crate::guest::{stage_initramfs, Stage};
use crate::qemu::Timeline;
use crate::scenario::{Loader, WorkDir};
use crate::setup::Assets;
use crate::util::announce;

/// The crash kernel's command line (after kdump-tools' defaults).
const CRASH_CMDLINE: &str = "console=ttyAMA0 earlycon kxt.stage=c maxcpus=1 reset_devices";

/// One kdump measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdumpSample {
    /// `-p` load time, seconds.
    pub load_s: f64,
    /// Panic to the crash kernel's first line, seconds.
    pub panic_s: f64,
}

/// Every repetition of one case.
#[derive(Debug, Clone)]
pub struct KdumpRow {
    /// The loader.
    pub loader: Loader,
    /// Whether the purgatory verifies (`false`: `-i`).
    pub verify: bool,
    /// The samples.
    pub samples: Vec<KdumpSample>,
}

impl KdumpRow {
    fn med(&self, f: impl Fn(&KdumpSample) -> f64) -> f64 {
        median_by(&self.samples, f)
    }

    fn label(&self) -> String {
        format!("{}{}", self.loader, if self.verify { "" } else { " -i" })
    }
}

/// A sample from a timeline: the `a` stage's `load`/`loaded`/`panic`
/// markers and the crash kernel's first line after the panic.
pub fn kdump_sample_from(t: &Timeline) -> Result<KdumpSample> {
    let load = marker_time(t, "a", "step", Some("load"))?;
    let loaded = marker_time(t, "a", "loaded", None)?;
    let panic = marker_time(t, "a", "step", Some("panic"))?;
    let first = t
        .lines
        .iter()
        .find(|l| l.at >= panic && l.text.contains("Booting Linux on physical CPU"))
        .map(|l| l.at)
        .context("the crash kernel printed no `Booting Linux` line")?;
    Ok(KdumpSample {
        load_s: (loaded - load).as_secs_f64(),
        panic_s: (first - panic).as_secs_f64(),
    })
}

fn run_kdump_case(
    assets: &Assets,
    loader: Loader,
    verify: bool,
    ours: &Path,
    work: &WorkDir,
) -> Result<KdumpSample> {
    let initrd_c = work.0.join("initrd-c");
    if !initrd_c.exists() {
        let stage = Stage {
            name: "c".into(),
            ..Stage::default()
        };
        stage_initramfs(assets, &stage, &initrd_c)?;
    }
    let checks = if verify { "" } else { "-i" };
    let script = format!(
        "say step load\n\
         {loader} -p /payload/Image --initrd=/payload/initrd \
           --command-line='{CRASH_CMDLINE}' {checks} 2>/tmp/load.err \
           || fail \"load failed: $(tail -c 300 /tmp/load.err)\"\n\
         say loaded\n\
         sync\n\
         say step panic\n\
         echo c > /proc/sysrq-trigger\n\
         fail 'the panic returned'\n",
        loader = loader.guest_path(),
    );
    let timeline = run_kernel_a(
        assets,
        &KernelA {
            script,
            next_initrd: &initrd_c,
            ours,
            work,
            cmdline: "console=ttyAMA0 kxt.stage=a crashkernel=256M",
            next_stage: "c",
            cpus: 2,
        },
    )?;
    kdump_sample_from(&timeline)
}

/// Every kdump case `reps` times.
pub fn run(
    assets: &Assets,
    loaders: &[Loader],
    reps: usize,
    ours: &Path,
    work: &WorkDir,
) -> Result<Vec<KdumpRow>> {
    let mut rows = Vec::new();
    for &loader in loaders {
        for verify in [true, false] {
            let mut row = KdumpRow {
                loader,
                verify,
                samples: Vec::new(),
            };
            for rep in 1..=reps {
                announce(&format!("bench: kdump {}, run {rep}/{reps}", row.label()));
                let s = run_kdump_case(assets, loader, verify, ours, work)?;
                println!(
                    "    -p load {:.2} s, panic -> crash kernel {:.2} s",
                    s.load_s, s.panic_s
                );
                row.samples.push(s);
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The kdump rows as a Markdown section, with ratios to kexec-tools
/// verifying.
pub fn markdown(rows: &[KdumpRow]) -> String {
    let mut out = String::from(
        "\n### kdump: `-p`, then `echo c > /proc/sysrq-trigger`\n\n\
         | loader | `-p` load (s) | panic → crash kernel's first line (s) | load ratio | panic ratio |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
    );
    let reference = rows
        .iter()
        .find(|r| r.loader == Loader::KexecTools && r.verify);
    for row in rows {
        let ratio = |f: &dyn Fn(&KdumpSample) -> f64| match reference {
            Some(r) => format!("{:.2}", row.med(f) / r.med(f)),
            None => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} | {} | {} |",
            row.label(),
            row.med(|s| s.load_s),
            row.med(|s| s.panic_s),
            ratio(&|s| s.load_s),
            ratio(&|s| s.panic_s),
        );
    }
    out
}

/// JSON of the rows (hand-written: plain numbers and strings).
pub fn json(rows: &[KdumpRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let samples: Vec<String> = row
                .samples
                .iter()
                .map(|s| {
                    format!(
                        "{{\"load_s\":{:.4},\"panic_s\":{:.4}}}",
                        s.load_s, s.panic_s
                    )
                })
                .collect();
            format!(
                "{{\"loader\":\"{}\",\"verify\":{},\"samples\":[{}]}}",
                row.loader,
                row.verify,
                samples.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::ConsoleLine;
    use std::time::Duration;

    #[test]
    fn sample_from_console_times() {
        let at = |ms: u64, text: &str| ConsoleLine {
            at: Duration::from_millis(ms),
            text: text.into(),
        };
        let lines = vec![
            at(100, "[    0.000000] Booting Linux on physical CPU 0x0"),
            at(1000, "@@kxt a step load"),
            at(1500, "@@kxt a loaded"),
            at(2000, "@@kxt a step panic"),
            at(
                2100,
                "[   25.1] Kernel panic - not syncing: sysrq triggered crash",
            ),
            at(3250, "[    0.000000] Booting Linux on physical CPU 0x1"),
        ];
        let t = Timeline::from_lines(lines.clone());
        let s = kdump_sample_from(&t).unwrap();
        assert!((s.load_s - 0.5).abs() < 1e-9, "{s:?}");
        // Kernel A's own first line is not the crash kernel's.
        assert!((s.panic_s - 1.25).abs() < 1e-9, "{s:?}");
        let t = Timeline::from_lines(lines[..5].to_vec());
        assert!(kdump_sample_from(&t).is_err());
    }
}

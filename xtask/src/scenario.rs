//! End-to-end kexec scenarios: kernel A boots under QEMU, a loader inside the
//! guest loads kernel B with an initrd and a command line carrying a random
//! marker, `kexec -e` runs, and kernel B reports what it received.
//!
//! A scenario passes only if B's `/proc/cmdline` holds the marker, the SHA-256
//! of the initrd B received (`/sys/firmware/initrd`, kept by `retain_initrd`)
//! equals the host file's, and B sees every CPU of the machine.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::guest::{stage_initramfs, FileSource, Stage};
use crate::qemu::{Boot, Console, MachineShape, Timeline};
use crate::setup::Assets;

/// Generous per-step limit: TCG on a slow, shared 2-core machine.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Which program loads kernel B inside kernel A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// Debian's kexec-tools, the reference.
    KexecTools,
}

impl Loader {
    /// The guest command that loads `/payload/Image` (as a shell snippet).
    fn load_command(self, extra: &str) -> String {
        match self {
            Loader::KexecTools => format!(
                "/sbin/kexec -l /payload/Image --initrd=/payload/initrd \
                 --command-line=\"$(cat /payload/cmdline)\" {extra}"
            ),
        }
    }

    /// The guest command that executes the loaded kernel.
    fn exec_command(self) -> &'static str {
        match self {
            Loader::KexecTools => "/sbin/kexec -e",
        }
    }
}

impl fmt::Display for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loader::KexecTools => "kexec-tools",
        })
    }
}

/// An A → B kexec on one machine.
#[derive(Debug, Clone)]
pub struct KexecScenario {
    /// The machine.
    pub shape: MachineShape,
    /// Kernel release booted first (`None`: the default downloaded kernel).
    pub kernel_a: Option<String>,
    /// Kernel release kexec'd into (`None`: the default downloaded kernel).
    pub kernel_b: Option<String>,
    /// Who loads B.
    pub loader: Loader,
    /// Extra loader arguments (e.g. `-i`).
    pub loader_args: String,
}

impl Default for KexecScenario {
    fn default() -> Self {
        Self {
            shape: MachineShape::default(),
            kernel_a: None,
            kernel_b: None,
            loader: Loader::KexecTools,
            loader_args: String::new(),
        }
    }
}

/// What kernel B must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// A token that must appear in B's `/proc/cmdline`.
    pub marker: String,
    /// SHA-256 (hex) of the initrd given to B.
    pub initrd_sha256: String,
    /// CPUs B must see online.
    pub cpus: u32,
    /// B's kernel release.
    pub release: String,
}

/// The result of a scenario run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Everything QEMU printed.
    pub timeline: Timeline,
    /// What was expected of kernel B.
    pub expected: Expectations,
}

/// A fresh random hex token, from the OS RNG.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 8];
    use std::io::Read;
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Number of CPUs in a sysfs CPU list such as `0-3,5`.
pub fn count_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<u32>().ok()?.checked_sub(a.parse::<u32>().ok()?)? + 1,
            None => {
                part.parse::<u32>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// Check what kernel B reported against what was expected.
pub fn check_kernel_b(timeline: &Timeline, expected: &Expectations) -> Result<()> {
    let get = |key: &str| {
        timeline
            .marker("b", key)
            .map(|m| m.value.as_str())
            .with_context(|| format!("kernel B never reported `{key}`"))
    };
    let release = get("boot")?;
    if release != expected.release {
        bail!("kernel B is {release}, expected {}", expected.release);
    }
    let cmdline = get("cmdline")?;
    if !cmdline.split_whitespace().any(|w| w == expected.marker) {
        bail!(
            "kernel B's /proc/cmdline lacks the marker {}: {cmdline}",
            expected.marker
        );
    }
    let sha = get("initrd-sha256")?;
    if sha != expected.initrd_sha256 {
        bail!(
            "kernel B's initrd SHA-256 is {sha}, the host file's is {}",
            expected.initrd_sha256
        );
    }
    let cpus = get("cpus")?;
    match count_cpu_list(cpus) {
        Some(n) if n == expected.cpus => Ok(()),
        _ => bail!(
            "kernel B has CPUs {cpus} online, expected {}",
            expected.cpus
        ),
    }
}

/// A scratch directory for one run, removed when dropped.
#[derive(Debug)]
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    /// A new, empty directory under the system temp dir.
    pub fn new(label: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("kexec-rs-{label}-{}", random_token()?));
        fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(bytes)))
}

impl KexecScenario {
    /// Boot kernel A, kexec into B, and check what B reports.
    pub fn run(&self, assets: &Assets) -> Result<Outcome> {
        let work = WorkDir::new("scenario")?;
        let kernel_a = match &self.kernel_a {
            Some(v) => assets.kernel_named(v)?,
            None => assets.kernel.clone(),
        };
        let kernel_b = match &self.kernel_b {
            Some(v) => assets.kernel_named(v)?,
            None => assets.kernel.clone(),
        };
        let marker = format!("kxt.marker={}", random_token()?);

        // Kernel B's initramfs: the base alone (its /init reports and powers off).
        let initrd_b = work.0.join("initrd-b");
        stage_initramfs(
            assets,
            &Stage {
                name: "b".into(),
                ..Stage::default()
            },
            &initrd_b,
        )?;
        let cmdline_b = format!("console=ttyAMA0 retain_initrd kxt.stage=b {marker}");

        let script = format!(
            "say step load\n\
             {load} || fail \"{loader} load failed ($?)\"\n\
             say loaded\n\
             say step exec\n\
             sync\n\
             {exec}\n\
             fail \"{loader} exec returned ($?)\"\n",
            load = self.loader.load_command(&self.loader_args),
            exec = self.loader.exec_command(),
            loader = self.loader,
        );
        let stage_a = Stage {
            name: "a".into(),
            script,
            files: vec![
                (
                    "/payload/Image".into(),
                    FileSource::Host(kernel_b.image.clone()),
                ),
                ("/payload/initrd".into(), FileSource::Host(initrd_b.clone())),
                (
                    "/payload/cmdline".into(),
                    FileSource::Bytes(cmdline_b.into_bytes()),
                ),
            ],
        };
        let initrd_a = work.0.join("initrd-a");
        stage_initramfs(assets, &stage_a, &initrd_a)?;

        let expected = Expectations {
            marker,
            initrd_sha256: sha256_file(&initrd_b)?,
            cpus: self.shape.cpus,
            release: kernel_b.version.clone(),
        };
        let boot = Boot::new(
            self.shape.clone(),
            &kernel_a.image,
            &initrd_a,
            "console=ttyAMA0 kxt.stage=a",
        );
        let mut console = Console::start(&boot)?;
        for (stage, key) in [
            ("a", "boot"),
            ("a", "loaded"),
            ("a", "step"),
            ("b", "boot"),
            ("b", "end"),
        ] {
            console.expect(stage, key, STEP_TIMEOUT)?;
        }
        let timeline = console.finish(Duration::from_secs(120))?;
        check_kernel_b(&timeline, &expected).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n--- console tail ---\n{}",
                timeline.tail(crate::qemu::TAIL_LINES)
            )
        })?;
        Ok(Outcome { timeline, expected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{ConsoleLine, Marker};

    fn timeline(lines: &[&str]) -> Timeline {
        let lines: Vec<ConsoleLine> = lines
            .iter()
            .map(|t| ConsoleLine {
                at: Duration::ZERO,
                text: (*t).into(),
            })
            .collect();
        let markers = lines.iter().filter_map(Marker::parse).collect();
        Timeline { lines, markers }
    }

    fn good() -> (Timeline, Expectations) {
        let t = timeline(&[
            "@@kxt b boot 6.1.0-56-arm64",
            "@@kxt b cmdline console=ttyAMA0 retain_initrd kxt.stage=b kxt.marker=00ff",
            "@@kxt b cpus 0-1",
            "@@kxt b initrd-sha256 abcd",
            "@@kxt b end",
        ]);
        let e = Expectations {
            marker: "kxt.marker=00ff".into(),
            initrd_sha256: "abcd".into(),
            cpus: 2,
            release: "6.1.0-56-arm64".into(),
        };
        (t, e)
    }

    #[test]
    fn matching_report_passes() {
        let (t, e) = good();
        check_kernel_b(&t, &e).unwrap();
    }

    #[test]
    fn wrong_marker_fails() {
        let (t, mut e) = good();
        e.marker = "kxt.marker=00fe".into();
        let err = check_kernel_b(&t, &e).unwrap_err().to_string();
        assert!(
            err.starts_with("kernel B's /proc/cmdline lacks the marker kxt.marker=00fe"),
            "{err}"
        );
        // A prefix of the real marker is not the marker.
        e.marker = "kxt.marker=00".into();
        assert!(check_kernel_b(&t, &e).is_err());
    }

    #[test]
    fn wrong_initrd_cpus_or_release_fail() {
        let (t, e) = good();
        let err = check_kernel_b(
            &t,
            &Expectations {
                initrd_sha256: "abce".into(),
                ..e.clone()
            },
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("initrd SHA-256 is abcd"));
        let err = check_kernel_b(
            &t,
            &Expectations {
                cpus: 4,
                ..e.clone()
            },
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("CPUs 0-1 online, expected 4"));
        let err = check_kernel_b(
            &t,
            &Expectations {
                release: "6.12".into(),
                ..e
            },
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("kernel B is 6.1.0-56-arm64"));
    }

    #[test]
    fn missing_report_fails() {
        let (_, e) = good();
        let t = timeline(&["@@kxt b boot 6.1.0-56-arm64"]);
        let err = check_kernel_b(&t, &e).unwrap_err().to_string();
        assert_eq!(err, "kernel B never reported `cmdline`");
    }

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }
}

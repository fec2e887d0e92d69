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

/// Which program loads the next kernel inside the running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// Debian's kexec-tools, the reference (`/sbin/kexec` in the guest).
    KexecTools,
    /// Ours: the static `kexec` from crates/kexec (`/bin/kexec-rs` in the guest).
    Ours,
}

impl Loader {
    /// The program's path inside the guest.
    pub fn guest_path(self) -> &'static str {
        match self {
            Loader::KexecTools => "/sbin/kexec",
            Loader::Ours => "/bin/kexec-rs",
        }
    }
}

impl fmt::Display for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loader::KexecTools => "kexec-tools",
            Loader::Ours => "kexec-rs",
        })
    }
}

/// How the next kernel's command line is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineMode {
    /// `--command-line=…` with a fresh line.
    Explicit,
    /// `--reuse-cmdline --append=…`: the running kernel's line plus the new marker.
    Reuse,
}

/// How the next kernel's image is stored in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The uncompressed `Image`.
    Image,
    /// `Image.gz`.
    Gzip,
}

/// One kexec: the running kernel loads and executes the next one.
#[derive(Debug, Clone)]
pub struct Hop {
    /// Who loads the next kernel.
    pub loader: Loader,
    /// Extra loader arguments (e.g. `-i`).
    pub loader_args: String,
    /// The options that boot what was loaded (`-e`; e.g. petitboot's `-e -f`).
    pub exec_args: String,
    /// How the command line is passed.
    pub cmdline: CmdlineMode,
    /// How the image is stored.
    pub format: PayloadFormat,
    /// Kernel release to boot (`None`: the default downloaded kernel).
    pub kernel: Option<String>,
    /// Shell snippet run before the final load (may use `check NAME RC CMD…`).
    pub before_load: String,
    /// The file given to the loader instead of the kernel's `Image` (e.g. a
    /// signed copy); with [`PayloadFormat::Gzip`] it is gzip'd.
    pub payload: Option<PathBuf>,
    /// More host files placed in the guest for `before_load` (guest path, host path).
    pub extra_files: Vec<(String, PathBuf)>,
    /// Load a crash kernel (`-p`, with `maxcpus=1 reset_devices`) and boot it
    /// by panicking (`echo c > /proc/sysrq-trigger`) instead of `-e`; the
    /// machine needs `crashkernel=` on kernel A's command line.
    pub crash: bool,
    /// With `crash`: the crash kernel reads all of `/proc/vmcore` (through
    /// mappings, ~180 MB/s under TCG) and reports it (`vmcore-read`).
    pub read_vmcore: bool,
    /// Shell snippet that the kernel this hop boots runs as its stage script
    /// (with `say`, `fail` and `check`); our `kexec` is in its initramfs as
    /// `/bin/kexec-rs` when any hop uses it.
    pub next_script: String,
    /// Install the next kernel as a Boot Loader Specification entry
    /// ([`crate::boot_entry`]); the load step only lists the entries (set
    /// `exec_args` to `boot --exec`).
    pub boot_entry: bool,
}

impl Hop {
    /// A hop loading an uncompressed Image with `loader` and a fresh command line.
    pub fn new(loader: Loader) -> Self {
        Self {
            loader,
            loader_args: String::new(),
            exec_args: "-e".to_owned(),
            cmdline: CmdlineMode::Explicit,
            format: PayloadFormat::Image,
            kernel: None,
            before_load: String::new(),
            payload: None,
            extra_files: Vec::new(),
            crash: false,
            read_vmcore: true,
            next_script: String::new(),
            boot_entry: false,
        }
    }

    fn load_command(&self) -> String {
        if self.boot_entry {
            return format!("{} boot --list", self.loader.guest_path());
        }
        let cmdline = match self.cmdline {
            CmdlineMode::Explicit => "--command-line=\"$(cat /payload/cmdline)\"",
            CmdlineMode::Reuse => "--reuse-cmdline --append=\"$(cat /payload/cmdline)\"",
        };
        format!(
            "{} {} {} --initrd=/payload/initrd {cmdline} {}",
            self.loader.guest_path(),
            if self.crash { "-p" } else { "-l" },
            self.image_path(),
            self.loader_args
        )
    }

    /// The guest command that boots what was loaded.
    fn exec_command(&self) -> String {
        if self.crash {
            "echo c > /proc/sysrq-trigger".to_owned()
        } else {
            format!("{} {}", self.loader.guest_path(), self.exec_args)
        }
    }

    fn image_path(&self) -> &'static str {
        match self.format {
            PayloadFormat::Image => "/payload/Image",
            PayloadFormat::Gzip => "/payload/Image.gz",
        }
    }
}

/// The kernel a scenario names: the default downloaded one (`None`), a
/// Debian release, or [`crate::kbuild::TEST_KERNEL`] (the kernel we build).
pub fn resolve_kernel(assets: &Assets, name: Option<&str>) -> Result<test_assets::DebianKernel> {
    match name {
        None => Ok(assets.kernel.clone()),
        Some(crate::kbuild::TEST_KERNEL) => crate::kbuild::cached()?.as_kernel(),
        Some(v) => assets.kernel_named(v),
    }
}

/// Stage names: `a` boots first, then `b`, `c`, …
pub fn stage_name(index: usize) -> String {
    let letter = b"abcdefgh".get(index).copied().unwrap_or(b'z');
    char::from(letter).to_string()
}

/// A chain of kexecs starting from kernel A on one machine.
#[derive(Debug, Clone)]
pub struct KexecScenario {
    /// The machine.
    pub shape: MachineShape,
    /// Kernel release booted first (`None`: the default downloaded kernel).
    pub kernel_a: Option<String>,
    /// The kexecs, in order.
    pub hops: Vec<Hop>,
    /// Our `kexec` for the guests (`None`: [`build_our_kexec`]; the package
    /// scenario gives the one extracted from the `.deb`).
    pub our_kexec: Option<PathBuf>,
}

impl Default for KexecScenario {
    fn default() -> Self {
        Self {
            shape: MachineShape::default(),
            kernel_a: None,
            hops: vec![Hop::new(Loader::KexecTools)],
            our_kexec: None,
        }
    }
}

/// What a kexec'd kernel must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The stage name (`b`, `c`, …).
    pub stage: String,
    /// Tokens that must all appear in its `/proc/cmdline`.
    pub markers: Vec<String>,
    /// SHA-256 (hex) of the initrd it was given.
    pub initrd_sha256: String,
    /// CPUs it must see online.
    pub cpus: u32,
    /// Its kernel release.
    pub release: String,
}

/// The result of a scenario run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Everything QEMU printed.
    pub timeline: Timeline,
    /// What was expected of each kexec'd kernel, in boot order.
    pub expected: Vec<Expectations>,
}

impl Outcome {
    /// The `_stext` address each kernel reported (KASLR moves it), in boot order (`a` first).
    pub fn kernel_text_addresses(&self) -> Vec<String> {
        self.timeline
            .markers
            .iter()
            .filter(|m| m.key == "ktext")
            .map(|m| m.value.clone())
            .collect()
    }
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

/// Check what a kexec'd kernel reported against what was expected.
pub fn check_kernel(timeline: &Timeline, expected: &Expectations) -> Result<()> {
    let stage = expected.stage.as_str();
    let get = |key: &str| {
        timeline
            .marker(stage, key)
            .map(|m| m.value.as_str())
            .with_context(|| format!("kernel {stage} never reported `{key}`"))
    };
    let release = get("boot")?;
    if release != expected.release {
        bail!("kernel {stage} is {release}, expected {}", expected.release);
    }
    let cmdline = get("cmdline")?;
    for marker in &expected.markers {
        if !cmdline.split_whitespace().any(|w| w == marker) {
            bail!("kernel {stage}'s /proc/cmdline lacks the marker {marker}: {cmdline}");
        }
    }
    let sha = get("initrd-sha256")?;
    if sha != expected.initrd_sha256 {
        bail!(
            "kernel {stage}'s initrd SHA-256 is {sha}, the host file's is {}",
            expected.initrd_sha256
        );
    }
    let cpus = get("cpus")?;
    match count_cpu_list(cpus) {
        Some(n) if n == expected.cpus => Ok(()),
        _ => bail!(
            "kernel {stage} has CPUs {cpus} online, expected {}",
            expected.cpus
        ),
    }
}

/// Every guest `check` must have passed: returns how many did.
pub fn check_guest_checks(timeline: &Timeline) -> Result<usize> {
    let failed: Vec<String> = timeline
        .markers
        .iter()
        .filter(|m| m.key == "check-fail")
        .map(|m| format!("{}: {}", m.stage, m.value))
        .collect();
    if !failed.is_empty() {
        bail!("guest checks failed:\n  {}", failed.join("\n  "));
    }
    Ok(timeline
        .markers
        .iter()
        .filter(|m| m.key == "check-ok")
        .count())
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

/// Shell helper for guest checks: `check NAME WANT_RC CMD…` runs CMD and
/// reports `check-ok NAME` or `check-fail NAME rc=… want=…: output`.
const CHECK_HELPER: &str = r#"check() {
  name=$1; want=$2; shift 2
  "$@" >/tmp/check.out 2>&1; rc=$?
  if [ "$rc" = "$want" ]; then say check-ok "$name"
  else say check-fail "$name rc=$rc want=$want: $(head -c 400 /tmp/check.out | tr '\n' ' ')"; fi
}
"#;

/// Run by a crash kernel: reads all of `/proc/vmcore` through mappings
/// (`kxt-probe vmcore-read`, crates/guest-probe; `vmcore-read`: the reader's
/// exit status, the bytes read, how many were not zero, and the time; a dump
/// that is present but unreadable past some offset fails here) and reports its ELF header
/// (`vmcore-header`: the number of program headers, the PT_LOAD bytes and the
/// merged notes' bytes, as fs/proc/vmcore.c rewrote them) and the page size
/// (`AT_PAGESZ`: auxiliary vector entry 6, each entry two u64s), from which
/// the file's size follows.
const VMCORE_READER: &str = r#"if [ -e /proc/vmcore ]; then
  kxt-probe vmcore-read >/tmp/vmcore.out 2>/tmp/vmcore.err; rc=$?
  say vmcore-read "rc=$rc $(cat /tmp/vmcore.out) err=$(head -c 200 /tmp/vmcore.err | tr '\n' ' ')"
fi
"#;

/// Run by a crash kernel: reports `vmcore-header` (see [`VMCORE_READER`]).
const VMCORE_HEADER: &str = r#"if [ -e /proc/vmcore ]; then
  u() { od -An -tu$1 -j$2 -N$1 /proc/vmcore | tr -d ' '; }
  phoff=$(u 8 32); phnum=$(u 2 56); loads=0; notes=0; i=0
  while [ "$i" -lt "$phnum" ]; do
    at=$((phoff + i * 56)); type=$(u 4 $at); filesz=$(u 8 $((at + 32)))
    case $type in 1) loads=$((loads + filesz));; 4) notes=$((notes + filesz));; esac
    i=$((i + 1))
  done
  say vmcore-header "phnum=$phnum loads=$loads notes=$notes page=$(od -An -v -tu8 /proc/self/auxv | awk '$1 == 6 { print $2; exit }')"
fi
"#;

/// The static arm64 `kexec` binary of crates/kexec, built for the guest.
pub fn build_our_kexec() -> Result<PathBuf> {
    crate::util::build_static_arm64("kexec", "kexec")
}

impl KexecScenario {
    /// A single A → B kexec by `loader` on `cpus` CPUs.
    pub fn single(loader: Loader, cpus: u32) -> Self {
        Self {
            shape: MachineShape {
                cpus,
                ..MachineShape::default()
            },
            kernel_a: None,
            hops: vec![Hop::new(loader)],
            our_kexec: None,
        }
    }

    /// Boot kernel A, run every hop, and check what each kexec'd kernel reports.
    pub fn run(&self, assets: &Assets) -> Result<Outcome> {
        if self.hops.is_empty() {
            bail!("a scenario needs at least one kexec");
        }
        let work = WorkDir::new("scenario")?;
        let our_kexec = match &self.our_kexec {
            _ if self.hops.iter().all(|h| h.loader != Loader::Ours) => None,
            Some(given) => Some(given.clone()),
            None => Some(build_our_kexec()?),
        };
        let kernel_a = resolve_kernel(assets, self.kernel_a.as_deref())?;
        let origin = format!("kxt.origin={}", random_token()?);
        let cmdline_a = format!("console=ttyAMA0 kxt.stage=a {origin}");
        let mut cmdline_prev = cmdline_a.clone();
        let mut markers_prev = vec![origin.clone()];
        let mut plan = Vec::new();
        for (i, hop) in self.hops.iter().enumerate() {
            let stage = stage_name(i + 1);
            let marker = format!("kxt.marker={}", random_token()?);
            let crash_args = if hop.crash {
                "maxcpus=1 reset_devices "
            } else {
                ""
            };
            let own = format!("{crash_args}retain_initrd kxt.stage={stage} {marker}");
            let (payload_cmdline, cmdline, mut markers) = match hop.cmdline {
                CmdlineMode::Explicit => (
                    format!("console=ttyAMA0 {own}"),
                    format!("console=ttyAMA0 {own}"),
                    vec![],
                ),
                CmdlineMode::Reuse => (
                    own.clone(),
                    format!("{cmdline_prev} {own}"),
                    markers_prev.clone(),
                ),
            };
            markers.push(marker);
            let kernel = resolve_kernel(assets, hop.kernel.as_deref())?;
            plan.push((stage, payload_cmdline, markers.clone(), kernel));
            cmdline_prev = cmdline;
            markers_prev = markers;
        }

        // Build the initramfs images from the last stage back to the first:
        // stage i carries kernel i+1 and its initramfs as payload.
        let mut expected = Vec::new();
        let mut next: Option<(PathBuf, usize)> = None;
        for i in (0..=self.hops.len()).rev() {
            let name = stage_name(i);
            let mut stage = Stage {
                name: name.clone(),
                ..Stage::default()
            };
            if let Some(hop) = self.hops.get(i) {
                let (_, payload_cmdline, _, kernel) = &plan[i];
                let (initrd_next, _) = next.clone().context("next stage initramfs")?;
                let source = hop.payload.clone().unwrap_or_else(|| kernel.image.clone());
                let image = match hop.format {
                    PayloadFormat::Image => source,
                    PayloadFormat::Gzip => {
                        let gz = work.0.join(format!("Image-{name}.gz"));
                        crate::util::gzip_file(&source, &gz, 6)?;
                        gz
                    }
                };
                for (guest, host) in &hop.extra_files {
                    stage
                        .files
                        .push((guest.clone(), FileSource::Host(host.clone())));
                }
                if hop.boot_entry {
                    let base = fs::metadata(crate::guest::base_initramfs(assets))?.len();
                    let split = work.0.join(format!("split-{name}"));
                    let (image, initrd) = (&image, &initrd_next);
                    let files =
                        crate::boot_entry::files(image, initrd, base, payload_cmdline, &split);
                    stage.files.extend(files?);
                } else {
                    stage
                        .files
                        .push((hop.image_path().into(), FileSource::Host(image)));
                    stage
                        .files
                        .push(("/payload/initrd".into(), FileSource::Host(initrd_next)));
                }
                stage.files.push((
                    "/payload/cmdline".into(),
                    FileSource::Bytes(payload_cmdline.clone().into_bytes()),
                ));
                if let (Loader::Ours, Some(bin)) = (hop.loader, &our_kexec) {
                    stage.files.push((
                        Loader::Ours.guest_path().into(),
                        FileSource::Host(bin.clone()),
                    ));
                }
                stage.script = format!(
                    "{CHECK_HELPER}{before}\n\
                     say step load\n\
                     {load} || fail \"{loader} load failed ($?)\"\n\
                     say loaded\n\
                     sync\n\
                     say step exec\n\
                     {exec}\n\
                     fail \"{loader} exec returned ($?)\"\n",
                    before = hop.before_load,
                    load = hop.load_command(),
                    loader = hop.loader,
                    exec = hop.exec_command(),
                );
            }
            if i > 0 && self.hops[i - 1].crash {
                if self.hops[i - 1].read_vmcore {
                    stage.script.push_str(VMCORE_READER);
                }
                stage.script.push_str(VMCORE_HEADER);
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &self.hops[p]) {
                if !prev.next_script.is_empty() {
                    // Before this stage's own load and exec, if it has them.
                    stage.script = format!("{CHECK_HELPER}{}\n{}", prev.next_script, stage.script);
                    let has_ours = stage
                        .files
                        .iter()
                        .any(|(p, _)| p == Loader::Ours.guest_path());
                    if let (Some(bin), false) = (&our_kexec, has_ours) {
                        stage.files.push((
                            Loader::Ours.guest_path().into(),
                            FileSource::Host(bin.clone()),
                        ));
                    }
                }
            }
            let initrd = work.0.join(format!("initrd-{name}"));
            stage_initramfs(assets, &stage, &initrd)?;
            if i > 0 {
                let (_, _, markers, kernel) = &plan[i - 1];
                expected.push(Expectations {
                    stage: name.clone(),
                    markers: markers.clone(),
                    initrd_sha256: sha256_file(&initrd)?,
                    cpus: if self.hops[i - 1].crash {
                        1
                    } else {
                        self.shape.cpus
                    },
                    release: kernel.version.clone(),
                });
            }
            next = Some((initrd, i));
        }
        expected.reverse();
        let (initrd_a, _) = next.context("stage a initramfs")?;

        let boot = Boot::new(self.shape.clone(), &kernel_a.image, &initrd_a, &cmdline_a);
        let mut console = Console::start(&boot)?;
        console.expect("a", "boot", STEP_TIMEOUT)?;
        for i in 0..self.hops.len() {
            console.expect(&stage_name(i), "loaded", STEP_TIMEOUT)?;
            console.expect(&stage_name(i + 1), "boot", STEP_TIMEOUT)?;
        }
        console.expect(&stage_name(self.hops.len()), "end", STEP_TIMEOUT)?;
        let timeline = console.finish(Duration::from_secs(120))?;
        let checked = (|| {
            for e in &expected {
                check_kernel(&timeline, e)?;
            }
            check_guest_checks(&timeline).map(|_| ())
        })();
        checked.map_err(|e| {
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

    fn good() -> (Timeline, Expectations) {
        let t = Timeline::from_text(&[
            "@@kxt b boot 6.1.0-56-arm64",
            "@@kxt b cmdline console=ttyAMA0 retain_initrd kxt.stage=b kxt.marker=00ff",
            "@@kxt b cpus 0-1",
            "@@kxt b initrd-sha256 abcd",
            "@@kxt b end",
        ]);
        let e = Expectations {
            stage: "b".into(),
            markers: vec!["kxt.marker=00ff".into()],
            initrd_sha256: "abcd".into(),
            cpus: 2,
            release: "6.1.0-56-arm64".into(),
        };
        (t, e)
    }

    #[test]
    fn matching_report_passes() {
        let (t, e) = good();
        check_kernel(&t, &e).unwrap();
    }

    #[test]
    fn wrong_marker_fails() {
        let (t, mut e) = good();
        e.markers = vec!["kxt.marker=00fe".into()];
        let err = check_kernel(&t, &e).unwrap_err().to_string();
        assert!(
            err.starts_with("kernel b's /proc/cmdline lacks the marker kxt.marker=00fe"),
            "{err}"
        );
        // A prefix of the real marker is not the marker.
        e.markers = vec!["kxt.marker=00".into()];
        assert!(check_kernel(&t, &e).is_err());
    }

    #[test]
    fn wrong_initrd_cpus_or_release_fail() {
        let (t, e) = good();
        let err = check_kernel(
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
        let err = check_kernel(
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
        let err = check_kernel(
            &t,
            &Expectations {
                release: "6.12".into(),
                ..e
            },
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("kernel b is 6.1.0-56-arm64"));
    }

    #[test]
    fn missing_report_fails() {
        let (_, e) = good();
        let t = Timeline::from_text(&["@@kxt b boot 6.1.0-56-arm64"]);
        let err = check_kernel(&t, &e).unwrap_err().to_string();
        assert_eq!(err, "kernel b never reported `cmdline`");
    }

    #[test]
    fn failed_guest_checks_are_reported() {
        let t = Timeline::from_text(&[
            "@@kxt a check-ok status-before",
            "@@kxt a check-fail bad-image rc=0 want=2: ",
        ]);
        let err = check_guest_checks(&t).unwrap_err().to_string();
        assert!(err.contains("a: bad-image rc=0 want=2"), "{err}");
        let t = Timeline::from_text(&["@@kxt a check-ok status-before", "@@kxt a check-ok unload"]);
        assert_eq!(check_guest_checks(&t).unwrap(), 2);
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

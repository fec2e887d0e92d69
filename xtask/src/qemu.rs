//! The QEMU harness: boot an arm64 kernel under `qemu-system-aarch64 -M virt`,
//! read its serial console line by line with host timestamps, and wait for the
//! guest's marker lines (see [`crate::guest`]) step by step.
//!
//! It never hangs: every wait has a timeout, QEMU is killed when the
//! [`Console`] is dropped, and a failure reports the step that was expected,
//! the last step seen and the last [`TAIL_LINES`] console lines.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Prefix of the marker lines the guest's `/init` ([`crate::guest`]) prints.
pub const MARKER_PREFIX: &str = "@@kxt ";

/// How many console lines a failure report shows.
pub const TAIL_LINES: usize = 60;

/// The shape of the emulated machine: data, so each scenario is a few lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineShape {
    /// QEMU CPU model (`-cpu`).
    pub cpu: String,
    /// Number of CPUs (`-smp`).
    pub cpus: u32,
    /// Memory in MiB (`-m`).
    pub memory_mib: u32,
    /// Extra `-M virt,…` options, e.g. `virtualization=on`.
    pub machine_options: Vec<String>,
    /// Extra QEMU arguments (firmware, devices, …).
    pub extra_qemu_args: Vec<String>,
    /// Arguments appended to kernel A's command line.
    pub kernel_args: Vec<String>,
}

impl Default for MachineShape {
    fn default() -> Self {
        Self {
            cpu: "cortex-a57".into(),
            cpus: 2,
            memory_mib: 1024,
            machine_options: Vec::new(),
            extra_qemu_args: Vec::new(),
            kernel_args: Vec::new(),
        }
    }
}

/// One boot of QEMU.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The machine.
    pub shape: MachineShape,
    /// Kernel image given to `-kernel`.
    pub kernel: PathBuf,
    /// Initramfs given to `-initrd`.
    pub initrd: PathBuf,
    /// Kernel command line (the shape's `kernel_args` are appended).
    pub append: String,
    /// The QEMU binary (normally `qemu-system-aarch64` from `PATH`).
    pub qemu: PathBuf,
}

impl Boot {
    /// A boot of `kernel` with `initrd` on a machine of `shape`.
    pub fn new(shape: MachineShape, kernel: &Path, initrd: &Path, append: &str) -> Self {
        Self {
            shape,
            kernel: kernel.to_path_buf(),
            initrd: initrd.to_path_buf(),
            append: append.to_owned(),
            qemu: PathBuf::from(QEMU),
        }
    }

    /// The full QEMU command line.
    pub fn command(&self) -> Command {
        let s = &self.shape;
        let mut append = self.append.clone();
        for arg in &s.kernel_args {
            append.push(' ');
            append.push_str(arg);
        }
        let mut cmd = virt_command(&self.qemu, &s.machine_options, &s.cpu, s.memory_mib.into());
        cmd.args(["-smp", &s.cpus.to_string(), "-no-reboot"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args(["-append", &append])
            .args(&s.extra_qemu_args);
        cmd
    }
}

/// The QEMU program every invocation runs, found on `PATH`.
pub const QEMU: &str = "qemu-system-aarch64";

/// Debian's EDK II firmware for QEMU `virt` (package `qemu-efi-aarch64`),
/// given as `-bios` to the UEFI machines of [`crate::uefi`].
pub const UEFI_FIRMWARE: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

/// Arguments every QEMU invocation starts with after `-M`, `-cpu` and `-m`.
///
/// - `-nic none`: `-M virt` otherwise adds a virtio-net card, and QEMU then
///   refuses to start without its option ROM `efi-virtio.rom`, which Debian
///   ships in `ipxe-qemu`, a Recommends of `qemu-system-arm` that setup does
///   not install (`--no-install-recommends`). No guest here needs a network.
/// - `-nographic`: the serial console on stdio, no display.
pub const COMMON_ARGS: [&str; 3] = ["-nic", "none", "-nographic"];

/// A `qemu` command for the `virt` machine with `machine_options`
/// (`virtualization=on`, `dumpdtb=FILE`, …), CPU model `cpu` and
/// `memory_mib` of RAM, followed by [`COMMON_ARGS`]. Every QEMU the project
/// starts (scenarios, bench, capture, the bare-metal suite, setup's smoke
/// boot) is built here; a test checks that no other file spells `-M`.
pub fn virt_command(
    qemu: &Path,
    machine_options: &[String],
    cpu: &str,
    memory_mib: u64,
) -> Command {
    let mut machine = String::from("virt");
    for opt in machine_options {
        machine.push(',');
        machine.push_str(opt);
    }
    let mut cmd = Command::new(qemu);
    cmd.args(["-M", &machine, "-cpu", cpu, "-m", &memory_mib.to_string()])
        .args(COMMON_ARGS);
    cmd
}

/// One console line with the host time since QEMU started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// Time since start.
    pub at: Duration,
    /// The line, without line ending.
    pub text: String,
}

/// A marker line the guest printed: `@@kxt <stage> <key> <value…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Time since start.
    pub at: Duration,
    /// Stage that printed it (`a`, `b`, …).
    pub stage: String,
    /// What it reports (`boot`, `cmdline`, `end`, …).
    pub key: String,
    /// The rest of the line.
    pub value: String,
}

impl Marker {
    /// Parse a marker from a console line (it may be preceded by other output).
    pub fn parse(line: &ConsoleLine) -> Option<Self> {
        let rest = &line.text[line.text.find(MARKER_PREFIX)? + MARKER_PREFIX.len()..];
        let mut parts = rest.splitn(3, ' ');
        let stage = parts.next()?.to_owned();
        let key = parts.next()?.to_owned();
        let value = parts.next().unwrap_or("").trim_end().to_owned();
        Some(Self {
            at: line.at,
            stage,
            key,
            value,
        })
    }

    /// `stage:key`, how steps are named in reports.
    pub fn step(&self) -> String {
        format!("{}:{}", self.stage, self.key)
    }
}

/// Everything a boot printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Every console line.
    pub lines: Vec<ConsoleLine>,
    /// The marker lines among them.
    pub markers: Vec<Marker>,
}

impl Timeline {
    /// A timeline of these console lines, with their markers parsed.
    pub fn from_lines(lines: Vec<ConsoleLine>) -> Self {
        let markers = lines.iter().filter_map(Marker::parse).collect();
        Self { lines, markers }
    }

    /// A timeline of text lines all printed at time zero (for tests).
    pub fn from_text(lines: &[&str]) -> Self {
        Self::from_lines(
            lines
                .iter()
                .map(|t| ConsoleLine {
                    at: Duration::ZERO,
                    text: (*t).into(),
                })
                .collect(),
        )
    }

    /// The first marker of `stage` with `key`.
    pub fn marker(&self, stage: &str, key: &str) -> Option<&Marker> {
        self.markers
            .iter()
            .find(|m| m.stage == stage && m.key == key)
    }

    /// The last `n` console lines, numbered by time.
    pub fn tail(&self, n: usize) -> String {
        let mut out = String::new();
        for line in &self.lines[self.lines.len().saturating_sub(n)..] {
            let _ = writeln!(out, "[{:8.3}] {}", line.at.as_secs_f64(), line.text);
        }
        out
    }

    /// A short human summary: one line per marker.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for m in &self.markers {
            let value: String = m.value.chars().take(100).collect();
            let _ = writeln!(
                out,
                "  {:8.2}s  {:<16} {}",
                m.at.as_secs_f64(),
                m.step(),
                value
            );
        }
        out
    }
}

enum Event {
    Line(ConsoleLine),
    Eof,
}

/// A running QEMU and what it printed so far.
#[derive(Debug)]
pub struct Console {
    child: Child,
    rx: Receiver<EventBox>,
    start: Instant,
    timeline: Timeline,
    consumed: usize,
    exited: bool,
    echo: bool,
}

/// Wrapper so `Console` can derive `Debug`.
struct EventBox(Event);

impl std::fmt::Debug for EventBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Event")
    }
}

impl Console {
    /// Start QEMU for `boot`.
    pub fn start(boot: &Boot) -> Result<Self> {
        for (file, what) in [(&boot.kernel, "kernel"), (&boot.initrd, "initrd")] {
            if !file.is_file() {
                bail!(
                    "{what} {} does not exist (run `cargo xtask setup`)",
                    file.display()
                );
            }
        }
        Self::start_command(boot.command())
    }

    /// Start an arbitrary command as the "machine" (QEMU, or a stand-in in tests).
    pub fn start_command(mut cmd: Command) -> Result<Self> {
        let program = PathBuf::from(cmd.get_program());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "{} not found: install qemu-system-arm (run `cargo xtask setup`)",
                    program.display()
                ),
                _ => anyhow::Error::new(e).context(format!("cannot start {}", program.display())),
            })?;
        let start = Instant::now();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().context("QEMU stdout")?;
        let stderr = child.stderr.take().context("QEMU stderr")?;
        spawn_reader(stdout, tx.clone(), start, "");
        spawn_reader(stderr, tx, start, "qemu: ");
        Ok(Self {
            child,
            rx,
            start,
            timeline: Timeline::default(),
            consumed: 0,
            exited: false,
            echo: std::env::var_os("KEXEC_RS_ECHO_CONSOLE").is_some(),
        })
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// What was printed so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    fn record(&mut self, line: ConsoleLine) {
        if self.echo {
            println!("    | {}", line.text);
        }
        if let Some(marker) = Marker::parse(&line) {
            self.timeline.markers.push(marker);
        }
        self.timeline.lines.push(line);
    }

    /// Wait up to `timeout` for the next marker `stage:key`, skipping others.
    ///
    /// A guest `error` marker, QEMU exiting or the timeout fail the wait with
    /// a report of what was expected and the console tail.
    pub fn expect(&mut self, stage: &str, key: &str, timeout: Duration) -> Result<Marker> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.consumed < self.timeline.markers.len() {
                let m = self.timeline.markers[self.consumed].clone();
                self.consumed += 1;
                if m.key == "error" {
                    return Err(self.failure(
                        stage,
                        key,
                        &format!("guest reported error: {}", m.value),
                    ));
                }
                if m.stage == stage && m.key == key {
                    return Ok(m);
                }
            }
            if let Err(why) = self.pump(deadline, timeout) {
                return Err(self.failure(stage, key, &why));
            }
        }
    }

    /// Wait up to `timeout` for a console line containing `needle`; QEMU
    /// exiting or the timeout fail the wait with the console tail.
    pub fn expect_line(&mut self, needle: &str, timeout: Duration) -> Result<ConsoleLine> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(line) = self.timeline.lines[checked..]
                .iter()
                .find(|l| l.text.contains(needle))
            {
                return Ok(line.clone());
            }
            checked = self.timeline.lines.len();
            if let Err(why) = self.pump(deadline, timeout) {
                let step = format!("a console line with `{needle}`");
                return Err(self.line_failure(&step, &why));
            }
        }
    }

    /// One step of a wait: take the next console event, or say why waiting
    /// is over (QEMU exited, or `deadline`, `timeout` after the start, passed).
    fn pump(&mut self, deadline: Instant, timeout: Duration) -> std::result::Result<(), String> {
        if self.exited {
            let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(format!("QEMU exited ({status})"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("timed out after {:.0} s", timeout.as_secs_f64()));
        }
        match self.rx.recv_timeout(deadline - now) {
            Ok(EventBox(Event::Line(line))) => self.record(line),
            Ok(EventBox(Event::Eof)) | Err(RecvTimeoutError::Disconnected) => {
                self.drain_after_exit();
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        Ok(())
    }

    fn line_failure(&self, what: &str, why: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{why} while waiting for {what} ({:.1} s since start)\n\
             --- last {TAIL_LINES} console lines ---\n{}",
            self.elapsed().as_secs_f64(),
            self.timeline.tail(TAIL_LINES)
        )
    }

    fn drain_after_exit(&mut self) {
        let _ = self.child.wait();
        while let Ok(EventBox(event)) = self.rx.recv_timeout(Duration::from_millis(200)) {
            if let Event::Line(line) = event {
                self.record(line);
            }
        }
        self.exited = true;
    }

    /// Wait up to `timeout` for QEMU to exit (the guest powers off) and return the timeline.
    pub fn finish(mut self, timeout: Duration) -> Result<Timeline> {
        let deadline = Instant::now() + timeout;
        while !self.exited {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.failure("qemu", "exit", "QEMU did not exit"));
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(EventBox(Event::Line(line))) => self.record(line),
                Ok(EventBox(Event::Eof)) | Err(RecvTimeoutError::Disconnected) => {
                    self.drain_after_exit();
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        Ok(std::mem::take(&mut self.timeline))
    }

    fn failure(&self, stage: &str, key: &str, why: &str) -> anyhow::Error {
        let last = self
            .timeline
            .markers
            .last()
            .map(|m| format!("{} at {:.1} s", m.step(), m.at.as_secs_f64()))
            .unwrap_or_else(|| "none".into());
        anyhow::anyhow!(
            "{why} while waiting for step `{stage}:{key}` (last step seen: {last}, {:.1} s since start)\n\
             --- last {TAIL_LINES} console lines ---\n{}",
            self.elapsed().as_secs_f64(),
            self.timeline.tail(TAIL_LINES)
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    stream: R,
    tx: mpsc::Sender<EventBox>,
    start: Instant,
    prefix: &'static str,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_end_matches(['\n', '\r']).replace('\r', "");
                    let line = ConsoleLine {
                        at: start.elapsed(),
                        text: format!("{prefix}{text}"),
                    };
                    if tx.send(EventBox(Event::Line(line))).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(EventBox(Event::Eof));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> ConsoleLine {
        ConsoleLine {
            at: Duration::from_millis(1500),
            text: text.into(),
        }
    }

    #[test]
    fn marker_parses_stage_key_and_value() {
        let m = Marker::parse(&line("@@kxt b cmdline console=ttyAMA0 kxt.marker=abc")).unwrap();
        assert_eq!((m.stage.as_str(), m.key.as_str()), ("b", "cmdline"));
        assert_eq!(m.value, "console=ttyAMA0 kxt.marker=abc");
        assert_eq!(m.step(), "b:cmdline");
    }

    #[test]
    fn marker_found_after_interleaved_kernel_output() {
        let m = Marker::parse(&line("[    3.1] random: crng init done@@kxt a end")).unwrap();
        assert_eq!(
            (m.stage.as_str(), m.key.as_str(), m.value.as_str()),
            ("a", "end", "")
        );
        assert!(Marker::parse(&line("[    0.000000] Booting Linux")).is_none());
    }

    #[test]
    fn command_carries_the_machine_shape() {
        let shape = MachineShape {
            cpus: 4,
            memory_mib: 2048,
            machine_options: vec!["virtualization=on".into()],
            kernel_args: vec!["crashkernel=256M".into()],
            ..MachineShape::default()
        };
        let boot = Boot::new(shape, Path::new("/k"), Path::new("/i"), "console=ttyAMA0");
        let cmd = boot.command();
        let args = crate::util::args_of(&cmd);
        let joined = args.join(" ");
        assert!(
            joined.starts_with(
                "-M virt,virtualization=on -cpu cortex-a57 -m 2048 -nic none -nographic -smp 4"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("-no-reboot -kernel /k -initrd /i"),
            "{joined}"
        );
        assert!(
            joined.ends_with("-append console=ttyAMA0 crashkernel=256M"),
            "{joined}"
        );
    }

    #[test]
    fn every_qemu_command_is_built_by_virt_command() {
        // A QEMU started anywhere else could miss `-nic none` (and fail on a
        // host without ipxe-qemu): no other source file may spell `-M`.
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut offenders = Vec::new();
        let mut dirs = vec![src.join("src"), src.join("tests")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if path.file_name().unwrap() != "qemu.rs" && text.contains("\"-M\"") {
                    offenders.push(path);
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "QEMU started outside virt_command: {offenders:?}"
        );
        let cmd = virt_command(Path::new("q"), &[], "max", 256);
        let args = crate::util::args_of(&cmd);
        assert_eq!(
            args.join(" "),
            "-M virt -cpu max -m 256 -nic none -nographic"
        );
    }

    #[test]
    fn missing_qemu_is_a_clear_error() {
        let dir = std::env::temp_dir();
        let file = dir.join("kxt-harness-empty-file");
        std::fs::write(&file, b"x").unwrap();
        let mut boot = Boot::new(MachineShape::default(), &file, &file, "");
        boot.qemu = PathBuf::from("/nonexistent/qemu-system-aarch64");
        let err = Console::start(&boot).unwrap_err().to_string();
        assert!(err.contains("not found: install qemu-system-arm"), "{err}");
    }

    #[test]
    fn missing_kernel_is_a_clear_error() {
        let boot = Boot::new(
            MachineShape::default(),
            Path::new("/nonexistent/Image"),
            Path::new("/x"),
            "",
        );
        let err = Console::start(&boot).unwrap_err().to_string();
        assert!(
            err.contains("kernel /nonexistent/Image does not exist"),
            "{err}"
        );
    }

    #[test]
    fn a_silent_guest_times_out_with_the_expected_step() {
        // `sh -c` stands in for QEMU: it prints one marker and then hangs.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo '@@kxt a boot 6.1'; sleep 30"]);
        let mut console = Console::start_command(cmd).unwrap();
        let boot_marker = console
            .expect("a", "boot", Duration::from_secs(20))
            .unwrap();
        assert_eq!(boot_marker.value, "6.1");
        let started = Instant::now();
        let err = console
            .expect("b", "boot", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.starts_with(
                "timed out after 0 s while waiting for step `b:boot` (last step seen: a:boot"
            ),
            "{err}"
        );
        assert!(err.contains("@@kxt a boot 6.1"), "{err}");
    }

    #[test]
    fn a_guest_error_marker_fails_at_once() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo '@@kxt a error kexec load failed'; sleep 30"]);
        let mut console = Console::start_command(cmd).unwrap();
        let err = console
            .expect("a", "loaded", Duration::from_secs(20))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("guest reported error: kexec load failed"),
            "{err}"
        );
    }

    #[test]
    fn expect_line_finds_a_line_or_reports_the_exit() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            "echo 'qemu: starting'; echo '[0.0] Booting Linux on CPU 0'; exit 1",
        ]);
        let mut console = Console::start_command(cmd).unwrap();
        let line = console
            .expect_line("Booting Linux", Duration::from_secs(20))
            .unwrap();
        assert_eq!(line.text, "[0.0] Booting Linux on CPU 0");
        let err = console
            .expect_line("never printed", Duration::from_secs(20))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "QEMU exited (exit status: 1) while waiting for a console line with `never printed`"
            ),
            "{err}"
        );
        assert!(err.contains("Booting Linux on CPU 0"), "{err}");
    }

    #[test]
    fn an_early_exit_is_reported() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo 'Kernel panic - not syncing'; exit 3"]);
        let mut console = Console::start_command(cmd).unwrap();
        let err = console
            .expect("a", "boot", Duration::from_secs(20))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("QEMU exited (exit status: 3)"), "{err}");
        assert!(err.contains("Kernel panic"), "{err}");
    }
}

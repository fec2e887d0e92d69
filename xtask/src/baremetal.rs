//! Bare-metal QEMU tests of the purgatory on its own.
//!
//! [`build_purgatory`] builds `crates/purgatory` for `aarch64-unknown-none`
//! (stable toolchain, no `-Z` flags: the linker script comes from the crate's
//! `build.rs`), checks that the ELF is position independent, and writes the
//! flat binary the loader embeds. [`BareMetalRun`] then boots QEMU `virt`
//! with no firmware and no kernel: the purgatory, a test payload (a stand-in
//! kernel that prints its registers and powers off through PSCI) and data
//! segments are placed with `-device loader`, and the PC is set to the
//! purgatory's entry, reproducing the state `kexec_load` leaves (MMU and
//! caches off, x0 = 0, interrupts masked, EL1 or EL2).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use handoff::{Conduit, Flags, HandoffParams, SegmentRange};
use object::read::elf::ElfFile64;
use object::{Object, ObjectSymbol};
use sha2::{Digest, Sha256};

use crate::{qemu, util};

pub use purgatory_image::{
    check_position_independent, elf_to_flat, PurgatoryImage, PURGATORY_ALIGN, TARGET,
};

/// PL011 on QEMU `virt`.
pub const VIRT_UART: u64 = 0x0900_0000;
/// Base of RAM on QEMU `virt`.
pub const VIRT_RAM: u64 = 0x4000_0000;

/// Builds both bare-metal binaries of the purgatory crate and returns the
/// directory holding the ELF files.
pub fn cargo_build_baremetal() -> Result<PathBuf> {
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    Ok(purgatory_image::cargo_build(
        &cargo,
        &util::workspace_root(),
        &util::target_dir(),
    )?)
}

/// Builds the purgatory, checks it, writes `purgatory.bin` next to the ELF
/// and returns its path. The entry point is at offset 0 (see
/// [`build_purgatory_image`] for the entry offset and `mem_size`).
pub fn build_purgatory() -> Result<PathBuf> {
    let image = build_purgatory_image()?;
    let dir = util::target_dir().join(TARGET).join("release");
    let out = dir.join("purgatory.bin");
    std::fs::write(&out, &image.bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Builds the purgatory and returns its flat image.
pub fn build_purgatory_image() -> Result<PurgatoryImage> {
    let dir = cargo_build_baremetal()?;
    let elf_path = dir.join("purgatory");
    let elf =
        std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    purgatory_image_from_elf(&elf)
}

/// Flattens and checks a linked purgatory ELF, padded with its zeroed bss,
/// page-table pool and stack (QEMU's `-device loader` places exactly the
/// file's bytes).
pub fn purgatory_image_from_elf(elf: &[u8]) -> Result<PurgatoryImage> {
    let mut image = purgatory_image::from_elf(elf)?;
    image.bytes.resize(usize::try_from(image.mem_size)?, 0);
    Ok(image)
}

/// The test payload (stand-in kernel) as a flat binary, and the offsets of
/// its `entry_shim` and of the shim's slots.
#[derive(Debug, Clone)]
pub struct TestPayload {
    /// Flat bytes, entry at offset 0.
    pub bytes: Vec<u8>,
    /// Offset of `entry_shim`.
    pub entry_shim: u64,
    /// Offset of the u64 the shim jumps to.
    pub shim_target: u64,
    /// Offset of the u64 PL011 base whose UARTCR the shim writes (0: none).
    pub shim_uart: u64,
    /// Offset of the u64 whose low 32 bits the shim writes to UARTCR.
    pub shim_uartcr: u64,
    /// Offset of the u64 flag: set HCR_EL2.E2H and TGE.
    pub shim_vhe: u64,
}

/// Where the harness loads the copy of the test payload that provides the
/// entry shim.
pub const SHIM_ADDR: u64 = 0x4600_0000;

/// PL011 `UARTCR` with the UART, its transmitter and receiver enabled (as a
/// running kernel leaves its console; QEMU resets it to TXE | RXE only).
pub const UARTCR_ENABLED: u32 = 0x301;

/// Builds the test payload (after [`build_purgatory_image`] or on its own).
pub fn build_test_payload() -> Result<TestPayload> {
    let dir = cargo_build_baremetal()?;
    let path = dir.join("test-payload");
    let elf = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_position_independent(&elf)?;
    let (bytes, entry, _) = elf_to_flat(&elf)?;
    ensure!(entry == 0, "test payload entry at {entry:#x}");
    let file = ElfFile64::<object::Endianness>::parse(&*elf)?;
    let sym = |name: &str| -> Result<u64> {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .with_context(|| format!("symbol {name} not found in the test payload"))
    };
    Ok(TestPayload {
        bytes,
        entry_shim: sym("entry_shim")?,
        shim_target: sym("shim_target")?,
        shim_uart: sym("shim_uart")?,
        shim_uartcr: sym("shim_uartcr")?,
        shim_vhe: sym("shim_vhe")?,
    })
}

/// Deterministic test data (xorshift64*).
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One blob placed in guest memory and (normally) listed in the header.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Guest physical address.
    pub addr: u64,
    /// Contents.
    pub bytes: Vec<u8>,
    /// List it in the purgatory header with its digest.
    pub verify: bool,
}

/// How QEMU is configured.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// `-cpu` model.
    pub cpu: String,
    /// `virtualization=on`: the CPU starts at EL2.
    pub el2: bool,
    /// Have the entry shim set `HCR_EL2.E2H` and `TGE` before the
    /// purgatory (needs `el2` and a VHE CPU).
    pub vhe: bool,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// CPUs (`-smp`); QEMU's own PSCI keeps all but CPU 0 off until a
    /// `CPU_ON`.
    pub cpus: u32,
}

impl MachineConfig {
    /// The QEMU command for this machine with extra `-M virt,…` options:
    /// [`qemu::virt_command`] (no NIC), no monitor.
    pub fn command(&self, qemu: &Path, extra_machine_options: &[String]) -> Command {
        let mut options = Vec::new();
        if self.el2 {
            options.push("virtualization=on".to_owned());
        }
        options.extend_from_slice(extra_machine_options);
        let mut cmd = qemu::virt_command(qemu, &options, &self.cpu, self.memory_mib);
        cmd.args(["-monitor", "none"]);
        if self.cpus > 1 {
            cmd.args(["-smp", &self.cpus.to_string()]);
        }
        cmd
    }
}

/// `qemu-system-aarch64` on `PATH`.
fn qemu_path() -> Result<PathBuf> {
    util::which(qemu::QEMU).with_context(|| {
        format!(
            "{} not on PATH: install qemu-system-arm (run `cargo xtask setup`)",
            qemu::QEMU
        )
    })
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            cpu: "cortex-a57".into(),
            el2: false,
            vhe: false,
            memory_mib: 512,
            cpus: 1,
        }
    }
}

/// One bare-metal boot: the purgatory, the payload as segment 0 (the
/// kernel), further blobs, and the header flags.
#[derive(Debug, Clone)]
pub struct BareMetalRun {
    /// Machine.
    pub machine: MachineConfig,
    /// Where the purgatory goes (4 KiB aligned).
    pub purgatory_addr: u64,
    /// Where the payload goes; also the kernel entry.
    pub payload_addr: u64,
    /// The DTB address passed in x0 (the payload prints it).
    pub dtb: u64,
    /// Extra segments (the payload is always segment 0).
    pub blobs: Vec<Blob>,
    /// Header flags.
    pub flags: u64,
    /// After computing digests, flip the byte at this (blob index, offset)
    /// in what is loaded: a corrupted segment.
    pub corrupt: Option<(usize, usize)>,
    /// Console address in the header (0 = none).
    pub uart: u64,
    /// Segments (address, length) listed in the header with digests of
    /// zeros but not loaded: for fault tests.
    pub unloaded_segments: Vec<(u64, u64)>,
    /// Digest chunks are `1 << chunk_shift` bytes (default: the loader's).
    pub chunk_shift: u32,
    /// Give up (kill QEMU) after this long.
    pub timeout: Duration,
    /// Console text that ends the run successfully (QEMU is killed), besides
    /// the purgatory's "CPU parked": e.g. a real kernel's first line.
    pub stop_on: Vec<String>,
    /// What the entry shim leaves in the console PL011's `UARTCR`.
    pub uart_control: u32,
    /// Load these bytes (a real kernel `Image`) at `payload_addr` instead of
    /// the test payload.
    pub kernel: Option<Vec<u8>>,
    /// The header's PSCI conduit and secondary CPUs (MPIDRs).
    pub psci: Conduit,
    /// Secondary CPUs the purgatory may start.
    pub secondaries: Vec<u64>,
}

impl Default for BareMetalRun {
    fn default() -> Self {
        Self {
            machine: MachineConfig::default(),
            purgatory_addr: 0x4700_0000,
            payload_addr: 0x4020_0000,
            dtb: 0x4300_0000,
            blobs: vec![
                Blob {
                    addr: 0x4300_0000,
                    bytes: test_data(0x1000, 3),
                    verify: true,
                },
                Blob {
                    addr: 0x4400_0000,
                    bytes: test_data(1 << 20, 1),
                    verify: true,
                },
            ],
            flags: 0,
            corrupt: None,
            uart: VIRT_UART,
            unloaded_segments: Vec::new(),
            chunk_shift: handoff::params::LOADER_CHUNK_SHIFT,
            timeout: Duration::from_secs(60),
            stop_on: Vec::new(),
            uart_control: UARTCR_ENABLED,
            kernel: None,
            psci: Conduit::None,
            secondaries: Vec::new(),
        }
    }
}

/// What a run printed and how it ended.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Everything QEMU wrote to the serial console.
    pub console: String,
    /// QEMU exited by itself (PSCI SYSTEM_OFF) rather than being killed.
    pub exited: bool,
    /// Wall-clock time from spawning QEMU to its exit or the stop pattern.
    pub elapsed: Duration,
}

impl RunResult {
    /// The payload's line, if it ran.
    pub fn payload_line(&self) -> Option<&str> {
        self.console.lines().find(|l| l.starts_with("PAYLOAD "))
    }

    /// A value `key=0x...` from the payload's line.
    pub fn payload_value(&self, key: &str) -> Option<u64> {
        let line = self.payload_line()?;
        let tok = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))?;
        let tok = tok.trim_end_matches('\r');
        match tok.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => tok.parse().ok(),
        }
    }
}

/// Text after which a run is over even though QEMU keeps running.
const PARKED: &str = "CPU parked";

impl BareMetalRun {
    /// Builds everything, boots QEMU, returns the console. `work` is a
    /// scratch directory for the files handed to `-device loader`.
    pub fn run(
        &self,
        purgatory: &PurgatoryImage,
        payload: &TestPayload,
        work: &Path,
    ) -> Result<RunResult> {
        ensure!(
            self.purgatory_addr & (PURGATORY_ALIGN - 1) == 0,
            "purgatory address {:#x} is not 4 KiB aligned",
            self.purgatory_addr
        );
        std::fs::create_dir_all(work)?;
        let mut params = HandoffParams {
            entry: self.payload_addr,
            dtb: self.dtb,
            uart: self.uart,
            flags: Flags(self.flags),
            psci: self.psci,
            ..HandoffParams::default()
        };
        for &cpu in &self.secondaries {
            params
                .push_secondary(cpu)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let entry = self.purgatory_addr + purgatory.entry_offset;
        ensure!(
            !self.machine.vhe || self.machine.el2,
            "the VHE shim needs EL2"
        );
        // The entry shim: a copy of the test payload with its slots patched
        // (a `-device loader,data=` write there would keep QEMU 7.2 from
        // setting the PC).
        let mut shim = payload.bytes.clone();
        for (slot, value) in [
            (payload.shim_target, entry),
            (payload.shim_uart, VIRT_UART),
            (payload.shim_uartcr, u64::from(self.uart_control)),
            (payload.shim_vhe, u64::from(self.machine.vhe)),
        ] {
            let at = usize::try_from(slot)?;
            shim[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let payload_bytes = self.kernel.clone().unwrap_or_else(|| payload.bytes.clone());
        let mut loaded: Vec<(u64, Vec<u8>)> = vec![(self.payload_addr, payload_bytes.clone())];
        // What each header segment's digests are computed from (None: the
        // unloaded ones, digests of zeros).
        let mut digested: Vec<Option<&[u8]>> = vec![Some(&payload_bytes)];
        let push = |params: &mut HandoffParams, addr: u64, len: usize| -> Result<()> {
            params
                .push_segment(SegmentRange {
                    addr,
                    len: len as u64,
                })
                .map_err(|e| anyhow::anyhow!("{e}"))
        };
        push(&mut params, self.payload_addr, payload_bytes.len())?;
        for blob in &self.blobs {
            if blob.verify {
                push(&mut params, blob.addr, blob.bytes.len())?;
                digested.push(Some(&blob.bytes));
            }
            loaded.push((blob.addr, blob.bytes.clone()));
        }
        for &(addr, len) in &self.unloaded_segments {
            push(&mut params, addr, usize::try_from(len)?)?;
            digested.push(None);
        }
        // The table right after the purgatory's memory, as the loader puts it.
        params
            .set_digest_table(self.chunk_shift, purgatory.mem_size.next_multiple_of(8))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let table: Vec<[u8; 32]> =
            if params.nr_digests == 0 {
                Vec::new()
            } else {
                params
                    .chunks()
                    .map(|c| {
                        let from = usize::try_from(c.addr - params.segments[c.segment].addr)?;
                        let to = from + usize::try_from(c.len)?;
                        Ok(digested[c.segment]
                            .map_or([0; 32], |b| Sha256::digest(&b[from..to]).into()))
                    })
                    .collect::<Result<_>>()?
            };
        if let Some((blob, offset)) = self.corrupt {
            let (_, bytes) = loaded.get_mut(blob + 1).context("corrupt: no such blob")?;
            bytes[offset] ^= 0x01;
        }
        let purg = purgatory.segment_bytes(&params, &table)?;
        let purg_path = work.join("purgatory.bin");
        std::fs::write(&purg_path, &purg)?;

        let mut cmd = self.machine.command(&qemu_path()?, &[]);
        cmd.arg("-no-reboot");
        let mut loader = |path: &Path, addr: u64| {
            cmd.arg("-device").arg(format!(
                "loader,file={},addr={addr:#x},force-raw=on",
                path.display()
            ));
        };
        loader(&purg_path, self.purgatory_addr);
        let shim_path = work.join("shim.bin");
        std::fs::write(&shim_path, &shim)?;
        loader(&shim_path, SHIM_ADDR);
        for (i, (addr, bytes)) in loaded.iter().enumerate() {
            let path = work.join(format!("segment{i}.bin"));
            std::fs::write(&path, bytes)?;
            loader(&path, *addr);
        }
        let pc = SHIM_ADDR + payload.entry_shim;
        cmd.arg("-device")
            .arg(format!("loader,addr={pc:#x},cpu-num=0"));
        let mut stop: Vec<&str> = vec![PARKED];
        stop.extend(self.stop_on.iter().map(String::as_str));
        run_qemu(cmd, self.timeout, &stop)
    }
}

/// The device tree QEMU generates for `machine` (`-M virt,dumpdtb=`), with
/// `/chosen/stdout-path` on the PL011: what a real kernel gets as its DTB in
/// the bare-metal tests.
pub fn dump_virt_dtb(machine: &MachineConfig, out: &Path) -> Result<Vec<u8>> {
    let mut cmd = machine.command(&qemu_path()?, &[format!("dumpdtb={}", out.display())]);
    util::capture(&mut cmd)?;
    std::fs::read(out).with_context(|| format!("reading {}", out.display()))
}

/// Runs QEMU with its serial console on stdout, until it exits, one of
/// `stop` appears in the output (then QEMU is killed), or `timeout` passes
/// (then it is killed and the console is returned in the error).
pub fn run_qemu(mut cmd: Command, timeout: Duration, stop: &[&str]) -> Result<RunResult> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-aarch64")?;
    let console = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let sink = Arc::clone(&console);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut c) = sink.lock() {
                c.extend_from_slice(&buf[..n]);
            }
        }
    });
    let text = |c: &Arc<Mutex<Vec<u8>>>| {
        c.lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    };
    let (exited, elapsed) = loop {
        if let Some(status) = child.try_wait()? {
            let elapsed = start.elapsed();
            let _ = reader.join();
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                bail!(
                    "qemu failed ({status}): {}\nconsole:\n{}",
                    err.trim(),
                    text(&console)
                );
            }
            break (true, elapsed);
        }
        let now = text(&console);
        if stop.iter().any(|s| now.contains(s)) {
            let elapsed = start.elapsed();
            // Our own child, by handle.
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            break (false, elapsed);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            bail!(
                "qemu timed out after {timeout:?}; console:\n{}",
                text(&console)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(RunResult {
        console: text(&console),
        exited,
        elapsed,
    })
}

/// One line of [`measure_hash_32m`].
#[derive(Debug, Clone)]
pub struct HashTiming {
    /// Which configuration.
    pub label: String,
    /// Wall time of the whole QEMU run (includes QEMU start-up and loading).
    pub wall: Duration,
    /// What the purgatory itself reported ("verification took N us",
    /// generic-timer based), if it verified.
    pub in_guest: Option<Duration>,
}

/// Rough timing of hashing one 32 MiB segment in QEMU TCG, for caches on
/// and off, SHA2 instructions and software, and verification skipped.
pub fn measure_hash_32m(work: &Path) -> Result<Vec<HashTiming>> {
    let purgatory = build_purgatory_image()?;
    let payload = build_test_payload()?;
    let big = Blob {
        addr: 0x4400_0000,
        bytes: test_data(32 << 20, 9),
        verify: true,
    };
    let mut out = Vec::new();
    for (label, flags) in [
        ("sha2 instructions, caches on", 0),
        ("software sha256, caches on", Flags::FORCE_SOFT_SHA256),
        ("sha2 instructions, caches off", Flags::NO_CACHES),
        (
            "software sha256, caches off",
            Flags::NO_CACHES | Flags::FORCE_SOFT_SHA256,
        ),
        ("no verification (-i)", Flags::NO_VERIFY),
    ] {
        let run = BareMetalRun {
            blobs: vec![big.clone()],
            flags,
            timeout: Duration::from_secs(600),
            ..BareMetalRun::default()
        };
        let r = run.run(&purgatory, &payload, &work.join(format!("measure-{flags}")))?;
        ensure!(
            r.payload_line().is_some(),
            "{label}: payload did not run; console:\n{}",
            r.console
        );
        let in_guest = r
            .console
            .lines()
            .find_map(|l| l.strip_prefix("purgatory: verification took "))
            .and_then(|t| t.trim_end().strip_suffix(" us")?.parse().ok())
            .map(Duration::from_micros);
        out.push(HashTiming {
            label: label.to_owned(),
            wall: r.elapsed,
            in_guest,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_data_is_deterministic_and_sized() {
        assert_eq!(test_data(13, 7), test_data(13, 7));
        assert_eq!(test_data(13, 7).len(), 13);
        assert_ne!(test_data(64, 1), test_data(64, 2));
        assert_eq!(&test_data(100, 3)[..40], &test_data(40, 3)[..]);
    }

    #[test]
    fn payload_line_parsing() {
        let r = RunResult {
            console: "purgatory: 3 segments verified in 3 chunks of 2048 KiB (sha2 instructions, \
                      caches on) at EL1\r\n\
                      PAYLOAD x0=0x0000000043000000 x1=0x0000000000000000 x2=0x0000000000000000 \
                      x3=0x0000000000000000 el=2 sctlr=0x0000000030c50838\r\n"
                .into(),
            exited: true,
            elapsed: Duration::ZERO,
        };
        assert_eq!(r.payload_value("x0"), Some(0x4300_0000));
        assert_eq!(r.payload_value("x3"), Some(0));
        assert_eq!(r.payload_value("el"), Some(2));
        assert_eq!(r.payload_value("sctlr"), Some(0x30c5_0838));
        assert_eq!(r.payload_value("x9"), None);
        let none = RunResult {
            console: "purgatory: segment 2 ...\r\n".into(),
            ..r
        };
        assert_eq!(none.payload_line(), None);
    }

    #[test]
    fn bare_metal_qemu_has_no_nic_and_the_machine_options() {
        let machine = MachineConfig {
            el2: true,
            ..MachineConfig::default()
        };
        let cmd = machine.command(Path::new("qemu"), &["dumpdtb=/x.dtb".into()]);
        let args = crate::util::args_of(&cmd);
        assert_eq!(
            args.join(" "),
            "-M virt,virtualization=on,dumpdtb=/x.dtb -cpu cortex-a57 -m 512 \
             -nic none -nographic -monitor none"
        );
    }

    #[test]
    fn flat_image_rejects_non_elf() {
        assert!(elf_to_flat(b"not an elf").is_err());
        assert!(check_position_independent(b"\x7fELF").is_err());
    }
}

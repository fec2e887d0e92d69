//! What a simulation runs: the plan (segments, entry, DTB) and the
//! options (scenario, purgatory flags, adversary, purgatory address).

use super::smp::SmpOptions;
use crate::memory::{Adversary, PAGE_SIZE};
use crate::relocate::RelocStyle;
use crate::rng::Rng;
use handoff::Regime;

/// One range the next kernel needs: physical address and intended bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSegment {
    /// Physical address (page aligned).
    pub addr: u64,
    /// Intended contents (padded with zeros to whole pages when loaded).
    pub bytes: Vec<u8>,
}

impl SimSegment {
    /// A segment of `len` pseudo-random bytes derived from `gen_seed`.
    pub fn generated(addr: u64, len: usize, gen_seed: u64) -> Self {
        let mut r = Rng::new(gen_seed ^ addr);
        Self {
            addr,
            bytes: (0..len).map(|_| r.byte()).collect(),
        }
    }

    /// The bytes padded to whole pages (the segment's `memsz`).
    pub fn padded(&self) -> Vec<u8> {
        let mut v = self.bytes.clone();
        let page = usize::try_from(PAGE_SIZE).unwrap_or(4096);
        v.resize(v.len().div_ceil(page).max(1) * page, 0);
        v
    }
}

/// What to boot: segments, the kernel entry point, the DTB address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPlan {
    /// Kernel, DTB, initrd... (not the purgatory: the simulation adds it).
    pub segments: Vec<SimSegment>,
    /// Kernel entry (inside one segment).
    pub entry: u64,
    /// DTB address (inside one segment).
    pub dtb: u64,
}

impl SimPlan {
    /// A small plan for tests: kernel 6 KiB, DTB 1 KiB, initrd 3000 bytes.
    pub fn small() -> Self {
        let kernel = 0x4020_0000;
        let dtb = 0x4800_0000;
        Self {
            segments: vec![
                SimSegment::generated(kernel, 6 * 1024, 1),
                SimSegment::generated(dtb, 1024, 2),
                SimSegment::generated(0x4810_0000, 3000, 3),
            ],
            entry: kernel,
            dtb,
        }
    }

    /// A smaller plan (for many-mutant runs): kernel 4 KiB, DTB 512 bytes,
    /// initrd 700 bytes (partial lines at the end).
    pub fn tiny() -> Self {
        let kernel = 0x4020_0000;
        let dtb = 0x4800_0000;
        Self {
            segments: vec![
                SimSegment::generated(kernel, 4096, 1),
                SimSegment::generated(dtb, 512, 2),
                SimSegment::generated(0x4810_0000, 700, 3),
            ],
            entry: kernel,
            dtb,
        }
    }

    pub(super) fn kernel(&self) -> Option<&SimSegment> {
        self.segments
            .iter()
            .find(|s| self.entry >= s.addr && self.entry - s.addr < s.bytes.len() as u64)
    }
}

/// Where the simulated run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `kexec_load` + `kexec -e`: the old kernel (caches on, stale lines
    /// everywhere) relocates the segments and enters the purgatory.
    KexecLoad(RelocStyle),
    /// `kexec_file_load` + `kexec -e` on arm64: the old kernel relocates the
    /// segments and enters the kernel directly (x0 = DTB), no purgatory.
    KexecFile,
    /// The purgatory alone, entered in the weakest state its contract
    /// allows: MMU and caches off; stale clean lines over its tables and
    /// stack; stale I-cache lines (any tag) for the kernel and for its own
    /// image (SCTLR.I is off), stale fetch-buffer lines for the kernel; and,
    /// when it verifies with its caches on (it then cleans the segments
    /// itself), each segment line's newest bytes either in DRAM, in a dirty
    /// line (DRAM stale), or in DRAM shadowed by a stale clean line.
    PurgatoryOnly,
}

/// Options of one simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    /// Where the run starts.
    pub scenario: Scenario,
    /// Purgatory flags ([`handoff::Flags`] bits).
    pub flags: u64,
    /// Adversary probabilities (`None`: [`Adversary::for_seed`]).
    pub adversary: Option<Adversary>,
    /// Where the modelled purgatory's memory (image page, page-table pool,
    /// stack) starts: the address a real plan reserved for the purgatory.
    /// `None`: 2 MiB above the highest segment.
    pub purgatory_base: Option<u64>,
    /// The translation regime the purgatory runs in (EL1, EL2, or EL2 with
    /// `HCR_EL2.E2H`). `None`: chosen by the seed ([`regime_for_seed`]),
    /// so every campaign runs all three.
    pub regime: Option<Regime>,
    /// Whether `ID_AA64ISAR0_EL1` advertises the SHA2 instructions (the
    /// handoff then chooses that engine, unless `FORCE_SOFT_SHA256`).
    /// `None`: chosen by the seed ([`sha2_for_seed`]).
    pub sha2_instructions: Option<bool>,
    /// Secondary CPUs in the header and PSCI to start them (`None`: the
    /// header names none and the machine has no PSCI).
    pub smp: Option<SmpOptions>,
    /// The generic timer: each read of the counter advances it by this many
    /// nanoseconds. `None`: `CNTFRQ_EL0` reads 0, the purgatory has no
    /// clock and counts polls where it waits.
    pub clock_step_ns: Option<u64>,
}

/// The regime of a run with `seed` when [`SimOptions::regime`] is `None`:
/// EL2, EL1 and EL2 with E2H in turn, every third seed changing (so that
/// the adversary's seed-dependent eagerness, `seed % 3`, meets each).
pub const fn regime_for_seed(seed: u64) -> Regime {
    match (seed / 3) % 3 {
        0 => Regime::El2,
        1 => Regime::El1,
        _ => Regime::El2Host,
    }
}

/// Whether a run with `seed` advertises the SHA2 instructions when
/// [`SimOptions::sha2_instructions`] is `None`.
pub const fn sha2_for_seed(seed: u64) -> bool {
    (seed / 9) % 2 == 1
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::KexecLoad(RelocStyle::MmuOn),
            flags: 0,
            adversary: None,
            purgatory_base: None,
            regime: None,
            sha2_instructions: None,
            smp: None,
            clock_step_ns: None,
        }
    }
}

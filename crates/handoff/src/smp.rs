//! Hashing on several CPUs.
//!
//! With a PSCI conduit and CPUs in the header, and the caches on, the boot
//! CPU writes its translation settings to the mailbox and starts each CPU
//! the header names besides itself (the loader names every CPU: it cannot
//! know which one will run `kexec -e`) with PSCI `CPU_ON` at the
//! purgatory's secondary entry (context id = its slot: the `s`th CPU
//! started, from 0, hashes share `s + 1`). A secondary ([`secondary`]) reads the header and
//! the mailbox with its MMU off, turns its MMU and caches on over the boot
//! CPU's page tables, hashes its share of the chunks (`crate::verify`),
//! turns its MMU and caches off, writes what it found and calls `CPU_OFF`.
//! The boot CPU hashes share 0, takes each secondary's result (or hashes
//! that share itself when the CPU did not start or declined), and enters
//! the kernel only once PSCI `AFFINITY_INFO` reports every CPU it started
//! OFF: the kernel starts its secondaries itself with `CPU_ON`, which fails
//! for a CPU that is still on (`ALREADY_ON`).
//!
//! Why nothing a secondary does can reach the kernel: before any `CPU_ON`
//! the boot CPU cleaned and invalidated the image, the digest table and
//! every segment to the PoC by VA (broadcast to every cache of the inner
//! shareable domain) and completed it with a DSB; a secondary only reads
//! them with its caches on (clean lines equal to memory), walks tables the
//! boot CPU wrote with its MMU off and invalidated, and writes nothing but
//! its stack and the mailbox, both Normal non-cacheable (and invalidated
//! before the boot CPU's caches came on). So, as on the boot CPU, no line
//! any cache holds when the kernel starts is dirty or differs from memory.
//!
//! The mailbox (in the purgatory's own memory, [`crate::PurgatoryMemory`]
//! `mailbox`, u64 words, little endian):
//!
//! | offset | field |
//! | --- | --- |
//! | 0x00 | `MAIR_ELx` |
//! | 0x08 | `TCR_ELx` |
//! | 0x10 | `TTBR0_ELx` |
//! | 0x18 | the boot CPU's regime (0 EL1, 1 EL2, 2 EL2 with E2H) |
//! | 0x20 | shares: 1 + the number of CPUs the header names besides the boot CPU |
//! | 0x40 + 0x80·s | slot `s`: state ([`SlotState`]) |
//! | +0x08 | chunks hashed so far (progress) |
//! | +0x10 | failing chunks |
//! | +0x18 | failing segments (bit mask) |
//! | +0x20 | the first [`REPORTED_MISMATCHES`] failing digest indices (`u64::MAX`: none) |

use crate::pagetable::{MmuConfig, Regime};
use crate::params::{Conduit, HandoffParams, MAX_SECONDARIES, MPIDR_AFFINITY_MASK};
use crate::verify::{verify_share, Mismatches, REPORTED_MISMATCHES};
use crate::{
    choose_engine, digest_table, disable_caches, Machine, MemRange, PurgatoryMemory, Sha256Engine,
    SCTLR_A, SCTLR_C, SCTLR_I, SCTLR_M, SCTLR_WXN,
};

/// PSCI `CPU_OFF` (SMC32 function ID). The PSCI numbers here are Linux's
/// (`include/uapi/linux/psci.h`: `PSCI_0_2_FN_*`, `PSCI_RET_*`,
/// `PSCI_0_2_AFFINITY_LEVEL_OFF`).
pub const PSCI_CPU_OFF: u32 = 0x8400_0002;
/// PSCI `CPU_ON`, SMC64.
pub const PSCI_CPU_ON_64: u32 = 0xc400_0003;
/// PSCI `AFFINITY_INFO`, SMC64.
pub const PSCI_AFFINITY_INFO_64: u32 = 0xc400_0004;
/// PSCI `PSCI_VERSION`: major in bits 31:16, minor in 15:0.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// PSCI return code `SUCCESS`.
pub const PSCI_SUCCESS: i64 = 0;
/// PSCI return code `NOT_SUPPORTED` (what a machine without PSCI returns).
pub const PSCI_NOT_SUPPORTED: i64 = -1;
/// `AFFINITY_INFO` result: the CPU is OFF.
pub const AFFINITY_OFF: i64 = 1;

/// Bytes of the mailbox.
pub const MAILBOX_SIZE: u64 = 0x40 + SLOT_SIZE * MAX_SECONDARIES as u64;
const SLOT_SIZE: u64 = 0x80;
const MB_MAIR: u64 = 0x00;
const MB_TCR: u64 = 0x08;
const MB_TTBR0: u64 = 0x10;
const MB_REGIME: u64 = 0x18;
const MB_SHARES: u64 = 0x20;
const SL_STATE: u64 = 0x00;
const SL_PROGRESS: u64 = 0x08;
const SL_COUNT: u64 = 0x10;
const SL_SEGMENTS: u64 = 0x18;
const SL_FIRST: u64 = 0x20;

/// Chunks the boot CPU waits for a started secondary without its progress
/// moving (on the generic timer; polls when there is no clock) before it
/// gives up on it: [`SECONDARY_STALL_NS`].
pub const SECONDARY_STALL_NS: u64 = 10_000_000_000;
/// Polls of the mailbox and `AFFINITY_INFO` that stand for
/// [`SECONDARY_STALL_NS`] on a machine without a clock (a model).
pub const SECONDARY_STALL_POLLS: u64 = 1 << 20;

/// A secondary's state in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Not started, or started and not yet running.
    Idle = 0,
    /// Caches on, hashing.
    Running = 1,
    /// Its result is in the mailbox; its caches are off.
    Done = 2,
    /// It did not hash (another translation regime than the boot CPU, or
    /// a header it could not use); the boot CPU hashes its share.
    Declined = 3,
}

impl SlotState {
    fn from_word(w: u64) -> Option<Self> {
        Some(match w {
            0 => Self::Idle,
            1 => Self::Running,
            2 => Self::Done,
            3 => Self::Declined,
            _ => return None,
        })
    }
}

/// Why the boot CPU may not enter the kernel after hashing on secondaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpFailure {
    /// A CPU it started is still on (`AFFINITY_INFO`): entering the kernel
    /// would leave a CPU running the purgatory in memory the kernel owns.
    StillOn(u64),
}

const fn regime_code(r: Regime) -> u64 {
    match r {
        Regime::El1 => 0,
        Regime::El2 => 1,
        Regime::El2Host => 2,
    }
}

fn regime_from(code: u64) -> Option<Regime> {
    Some(match code {
        0 => Regime::El1,
        1 => Regime::El2,
        2 => Regime::El2Host,
        _ => return None,
    })
}

/// The mailbox at a physical address.
#[derive(Debug, Clone, Copy)]
struct Mailbox(u64);

impl Mailbox {
    /// The address of a word of the shared part.
    fn word(self, offset: u64) -> u64 {
        self.0 + offset
    }

    fn slot(self, slot: usize, field: u64) -> u64 {
        self.0 + 0x40 + SLOT_SIZE * slot as u64 + field
    }

    fn state<M: Machine + ?Sized>(self, m: &mut M, slot: usize) -> Option<SlotState> {
        SlotState::from_word(m.read_u64(self.slot(slot, SL_STATE)))
    }

    fn set_state<M: Machine + ?Sized>(self, m: &mut M, slot: usize, s: SlotState) {
        m.write_u64(self.slot(slot, SL_STATE), s as u64);
    }

    fn write_result<M: Machine + ?Sized>(self, m: &mut M, slot: usize, f: &Mismatches) {
        m.write_u64(self.slot(slot, SL_COUNT), f.count);
        m.write_u64(self.slot(slot, SL_SEGMENTS), u64::from(f.segments));
        for (i, c) in f.first.iter().enumerate() {
            let d = c.map_or(u64::MAX, |c| c.digest);
            m.write_u64(self.slot(slot, SL_FIRST + 8 * i as u64), d);
        }
    }

    /// A secondary's result; its chunks found again from their digest
    /// indices (an index the header does not have is counted, not named).
    fn read_result<M: Machine + ?Sized>(
        self,
        m: &mut M,
        slot: usize,
        p: &HandoffParams,
    ) -> Mismatches {
        let mut f = Mismatches::none();
        let count = m.read_u64(self.slot(slot, SL_COUNT));
        let segments = m.read_u64(self.slot(slot, SL_SEGMENTS));
        for i in 0..REPORTED_MISMATCHES as u64 {
            let d = m.read_u64(self.slot(slot, SL_FIRST + 8 * i));
            if let Some(c) = p.chunks().find(|c| c.digest == d) {
                f.note(c);
            }
        }
        // The count and segments as the secondary found them (at least
        // what was named: a torn mailbox must not hide a mismatch).
        f.count = f.count.max(count);
        f.segments |= u32::try_from(segments).unwrap_or(u32::MAX);
        f
    }
}

/// What [`verify_all`] found, and whether the kernel may be entered.
pub(crate) struct Verified {
    pub found: Mismatches,
    /// CPUs that hashed, the boot CPU included.
    pub cpus: usize,
    pub failure: Option<SmpFailure>,
}

/// Step 3 on the boot CPU alone (the caches off).
pub(crate) fn verify_alone<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    table: MemRange,
    engine: Sha256Engine,
) -> Verified {
    Verified {
        found: verify_share(m, p, table.start, engine, (0, 1), |_, _| {}),
        cpus: 1,
        failure: None,
    }
}

/// Step 3 with the caches on (translation `cfg`), on every CPU the header
/// names (the boot CPU alone without a usable conduit or other CPUs).
pub(crate) fn verify_all<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    own: &PurgatoryMemory,
    table: MemRange,
    engine: Sha256Engine,
    cfg: &MmuConfig,
) -> Verified {
    // The loader names every CPU of the machine: it cannot know which one
    // runs `kexec -e`. The others get a share each (slot s: share s + 1).
    let mut others = [0u64; MAX_SECONDARIES];
    let mut n = 0;
    let usable = !p.secondaries().is_empty()
        && reaches_firmware(p.psci, m.regime())
        && own.mailbox.len >= MAILBOX_SIZE;
    if usable {
        let me = m.mpidr() & MPIDR_AFFINITY_MASK;
        let listed = p.secondaries().iter();
        // Zipped, not indexed: no panic path (and its relocations) in the
        // purgatory.
        for (o, &t) in others.iter_mut().zip(listed.filter(|&&t| t != me)) {
            *o = t;
            n += 1;
        }
    }
    let others = others.get(..n).unwrap_or_default();
    if others.is_empty() || !psci_0_2(m, p.psci) {
        return verify_alone(m, p, table, engine);
    }
    let shares = n as u64 + 1;
    let mb = Mailbox(own.mailbox.start);
    m.write_u64(mb.word(MB_MAIR), cfg.mair);
    m.write_u64(mb.word(MB_TCR), cfg.tcr);
    m.write_u64(mb.word(MB_TTBR0), cfg.ttbr0);
    m.write_u64(mb.word(MB_REGIME), regime_code(cfg.regime));
    m.write_u64(mb.word(MB_SHARES), shares);
    for slot in 0..n {
        mb.set_state(m, slot, SlotState::Idle);
        m.write_u64(mb.slot(slot, SL_PROGRESS), 0);
    }
    // The mailbox is written before any secondary may read it.
    m.dsb_sy();
    let entry = m.secondary_entry();
    let mut started = [false; MAX_SECONDARIES];
    for ((slot, &target), on) in others.iter().enumerate().zip(&mut started) {
        let r = m.psci(p.psci, PSCI_CPU_ON_64, [target, entry, slot as u64]);
        *on = r == PSCI_SUCCESS;
    }
    let mut found = verify_share(m, p, table.start, engine, (0, shares), |_, _| {});
    let mut cpus = 1;
    for ((slot, &target), &on) in others.iter().enumerate().zip(&started) {
        let state = if on {
            wait_until_finished(m, p.psci, mb, slot, target)
        } else {
            SlotState::Idle
        };
        if state == SlotState::Done {
            // The state was read before the result (a DSB: the DMB of the
            // handoff is the one that orders the page-table stores before
            // their invalidation, and the image check keeps it so).
            m.dsb_sy();
            found.merge(&mb.read_result(m, slot, p));
            cpus += 1;
        } else {
            let share = (slot as u64 + 1, shares);
            found.merge(&verify_share(m, p, table.start, engine, share, |_, _| {}));
        }
    }
    let mut failure = None;
    for (&target, &on) in others.iter().zip(&started) {
        if on && !wait_until_off(m, p.psci, target) {
            failure = Some(SmpFailure::StillOn(target));
        }
    }
    Verified {
        found,
        cpus,
        failure,
    }
}

/// Whether a PSCI call through `conduit` reaches the firmware from
/// `regime`: `SMC` is taken to EL3 from EL1 and EL2; `HVC` is taken to EL2,
/// so from EL2 it would reach the purgatory's own vectors, not a
/// hypervisor (Arm ARM, "HVC": "Hypervisor Call causes an exception to
/// EL2"). [`Machine::psci`] is called only through a conduit this allows.
pub fn reaches_firmware(conduit: Conduit, regime: Regime) -> bool {
    match conduit {
        Conduit::None => false,
        Conduit::Hvc => regime == Regime::El1,
        Conduit::Smc => true,
    }
}

/// PSCI 0.2 or later answers (`CPU_ON` and `AFFINITY_INFO` by the standard
/// function IDs; PSCI 0.1 took its IDs from the device tree).
fn psci_0_2<M: Machine + ?Sized>(m: &mut M, conduit: Conduit) -> bool {
    let v = m.psci(conduit, PSCI_VERSION, [0; 3]);
    let (major, minor) = (v >> 16, v & 0xffff);
    v >= 0 && (major >= 1 || minor >= 2)
}

/// Waits until the secondary in `slot` is done or declined, or is found
/// OFF, or its progress has not moved for [`SECONDARY_STALL_NS`].
fn wait_until_finished<M: Machine + ?Sized>(
    m: &mut M,
    conduit: Conduit,
    mb: Mailbox,
    slot: usize,
    target: u64,
) -> SlotState {
    let mut last = u64::MAX;
    let mut since = m.now_ns();
    let mut polls = 0u64;
    loop {
        match mb.state(m, slot) {
            Some(s @ (SlotState::Done | SlotState::Declined)) => return s,
            Some(SlotState::Idle | SlotState::Running) => {}
            None => return SlotState::Declined,
        }
        if m.psci(conduit, PSCI_AFFINITY_INFO_64, [target, 0, 0]) == AFFINITY_OFF {
            // It wrote its state (and completed the write) before CPU_OFF.
            return mb.state(m, slot).unwrap_or(SlotState::Declined);
        }
        let progress = m.read_u64(mb.slot(slot, SL_PROGRESS));
        if progress != last {
            last = progress;
            since = m.now_ns();
            polls = 0;
        }
        polls += 1;
        if stalled(m, since, polls) {
            return SlotState::Idle;
        }
    }
}

/// Whether a wait that last saw progress at `since` (after `polls` polls)
/// has gone on for too long.
fn stalled<M: Machine + ?Sized>(m: &mut M, since: Option<u64>, polls: u64) -> bool {
    match (since, m.now_ns()) {
        (Some(t0), Some(t1)) => t1.saturating_sub(t0) > SECONDARY_STALL_NS,
        _ => polls > SECONDARY_STALL_POLLS,
    }
}

/// Waits until `AFFINITY_INFO` reports `target` OFF; `false` if it did not
/// within [`SECONDARY_STALL_NS`].
fn wait_until_off<M: Machine + ?Sized>(m: &mut M, conduit: Conduit, target: u64) -> bool {
    let since = m.now_ns();
    let mut polls = 0u64;
    loop {
        if m.psci(conduit, PSCI_AFFINITY_INFO_64, [target, 0, 0]) == AFFINITY_OFF {
            return true;
        }
        polls += 1;
        if stalled(m, since, polls) {
            return false;
        }
    }
}

/// A secondary CPU, from the purgatory's secondary entry (MMU and caches
/// off, its own stack) with `slot` its PSCI context id: hashes its share
/// and turns itself off. Never returns on the CPU.
pub fn secondary<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    own: &PurgatoryMemory,
    slot: usize,
) -> M::Exit {
    let mb = Mailbox(own.mailbox.start);
    let n = p.secondaries().len();
    let table = crate::params::validate(p).and_then(|()| digest_table(p, own));
    let shares = m.read_u64(mb.word(MB_SHARES));
    let cfg = MmuConfig {
        regime: regime_from(m.read_u64(mb.word(MB_REGIME))).unwrap_or(Regime::El1),
        mair: m.read_u64(mb.word(MB_MAIR)),
        tcr: m.read_u64(mb.word(MB_TCR)),
        ttbr0: m.read_u64(mb.word(MB_TTBR0)),
    };
    // Shares: the boot CPU's and one per CPU it started (at most one per
    // CPU the header names besides itself).
    let usable = (2..=n as u64 + 1).contains(&shares)
        && (slot as u64) < shares.saturating_sub(1)
        && own.mailbox.len >= MAILBOX_SIZE
        && regime_from(m.read_u64(mb.word(MB_REGIME))) == Some(m.regime());
    let Ok(table) = table
        .map_err(|_| ())
        .and_then(|t| if usable { Ok(t) } else { Err(()) })
    else {
        if slot < MAX_SECONDARIES && own.mailbox.len >= MAILBOX_SIZE {
            mb.set_state(m, slot, SlotState::Declined);
            m.dsb_sy();
        }
        return cpu_off(m, p.psci);
    };
    let engine = choose_engine(m, p.flags);
    // Its own I-cache and TLB hold whatever power-up left: nothing the
    // architecture promises (the TLB's reset state is IMPLEMENTATION
    // DEFINED); the shared memory it reads was cleaned to
    // the PoC by the boot CPU before CPU_ON.
    m.ic_iallu();
    m.set_translation(&cfg);
    m.tlb_invalidate_all();
    m.dsb_sy();
    let sctlr = m.sctlr();
    m.set_sctlr_synchronized((sctlr | SCTLR_M | SCTLR_C | SCTLR_I) & !(SCTLR_A | SCTLR_WXN));
    mb.set_state(m, slot, SlotState::Running);
    let progress = mb.slot(slot, SL_PROGRESS);
    let found = verify_share(
        m,
        p,
        table.start,
        engine,
        (slot as u64 + 1, shares),
        |m, done| m.write_u64(progress, done),
    );
    disable_caches(m);
    mb.write_result(m, slot, &found);
    // The result is in memory before the state says so.
    m.dsb_sy();
    mb.set_state(m, slot, SlotState::Done);
    // ...and the state before the CPU is reported OFF.
    m.dsb_sy();
    cpu_off(m, p.psci)
}

/// PSCI `CPU_OFF`; parks if it returns (it does only on failure), or at
/// once when `conduit` cannot reach the firmware from this CPU's regime.
fn cpu_off<M: Machine + ?Sized>(m: &mut M, conduit: Conduit) -> M::Exit {
    if reaches_firmware(conduit, m.regime()) {
        m.psci(conduit, PSCI_CPU_OFF, [0; 3]);
    }
    m.park()
}

/// [`Mailbox::read_result`] of slot 0, for the tests.
#[cfg(test)]
pub(crate) fn tests_read_result<M: Machine + ?Sized>(
    m: &mut M,
    own: &PurgatoryMemory,
    p: &HandoffParams,
) -> Mismatches {
    Mailbox(own.mailbox.start).read_result(m, 0, p)
}

//! Secondary CPUs in the model (issue 15): the PSCI firmware the
//! purgatory's [`handoff::smp`] calls, and each secondary's run.
//!
//! A secondary the boot CPU started runs (when: below) from the
//! purgatory's secondary entry to its `CPU_OFF` (or its park), through
//! the same [`Mutant`](crate::mutant::Mutant) as the boot CPU (its
//! maintenance are sites of the run, phase "secondary"), on its own PE
//! state ([`PeState`]) over the shared DRAM and data caches. It starts as
//! PSCI leaves a CPU: MMU and D-cache off, its I-cache on or off (the
//! seed's choice), and what power-up does not promise to clear: a TLB with
//! write-back entries for the purgatory's pages (the old kernel's linear
//! map) and, while its I-cache is off and idle, stale I-cache lines over
//! the purgatory's image (which its `IC IALLU` must drop before SCTLR.I is
//! set).
//!
//! Checks, beyond those of every run (stack frame, stale fetches of its
//! code, hashing without its caches, faults):
//! - at `CPU_ON`: the boot CPU's stores and maintenance are complete (a
//!   DSB since the last): the new CPU reads the mailbox, the tables and
//!   the segments from memory ([`Rule::Fault`]);
//! - at `CPU_OFF`: the secondary's own stores are complete ([`Rule::Fault`]),
//!   and no line it made dirty is still dirty: the boot CPU reads its
//!   result non-cacheably ([`Rule::SecondaryDirtyLine`], reported as soon
//!   as the purgatory's run ends, before the checks of its stack and
//!   fetches, which a dirty frame of the secondary also breaks);
//! - at the branch to the kernel: every CPU the purgatory started is off
//!   ([`Rule::SecondaryStillOn`]). Its I-cache and TLB are not checked:
//!   `CPU_OFF` powers the CPU down, and the kernel's own `CPU_ON` starts it
//!   in PSCI's entry state.
//!
//! When a secondary runs, the seed decides: inside its `CPU_ON` (before
//! the boot CPU hashes its own share), or inside the boot CPU's first,
//! second or third `AFFINITY_INFO` call about it (after the boot CPU hashed
//! its share and looked at the mailbox that many times). It then runs to
//! its end, and that call returns what PSCI says afterwards.
//!
//! What the model does not show: finer interleavings (a secondary's steps
//! between two of the boot CPU's; the two share no written location: the
//! secondary writes only its stack and its mailbox slot, which the boot
//! CPU reads once the slot says Done or PSCI says OFF), so the order of a
//! secondary's result before its Done (the DSB between them) is pinned by
//! the host tests of `handoff::smp` and the path check, not by this model;
//! and the firmware's own work (`CPU_OFF`'s cache maintenance is not
//! modelled: the shared hierarchy keeps every line).

use super::cpu::SimCpu;
use super::setup::icache_tags;
use super::trace::SysTrace;
use crate::check::{Location, Rule, Violation};
use crate::cost::{counters_add, counters_delta};
use crate::memory::{Counters, PeState, PAGE_SIZE};
use crate::mutant::{Cpus, SecondaryStart};
use handoff::params::MPIDR_AFFINITY_MASK;
use handoff::smp::{
    AFFINITY_OFF, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_64, PSCI_NOT_SUPPORTED,
    PSCI_SUCCESS, PSCI_VERSION,
};
use handoff::SCTLR_I;
use handoff::{Conduit, HandoffParams, PurgatoryMemory, Regime, MAX_SECONDARIES};
use std::collections::BTreeSet;

/// PSCI `INVALID_PARAMETERS` (Linux's `PSCI_RET_INVALID_PARAMS`).
const PSCI_INVALID_PARAMETERS: i64 = -2;
/// PSCI `DENIED`.
const PSCI_DENIED: i64 = -3;
/// PSCI `ALREADY_ON`.
const PSCI_ALREADY_ON: i64 = -4;
/// PSCI `INVALID_ADDRESS`.
const PSCI_INVALID_ADDRESS: i64 = -9;
/// `AFFINITY_INFO`: ON.
const AFFINITY_ON: i64 = 0;
/// The model's PSCI version: 1.0.
pub const MODEL_PSCI_VERSION: i64 = 0x1_0000;

/// Secondary CPUs for the purgatory to hash on: the header names them and
/// a conduit, and the model's PSCI firmware starts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmpOptions {
    /// How many secondaries the header names (1 to
    /// [`MAX_SECONDARIES`]); their MPIDRs are [`secondary_mpidr`] 1..=n,
    /// the boot CPU's 0.
    pub secondaries: usize,
    /// The conduit the header names; the firmware answers on it.
    pub conduit: Conduit,
    /// The regime the secondaries start in; `None`: the boot CPU's.
    pub secondary_regime: Option<Regime>,
    /// When a started secondary runs.
    pub run: SecondaryRun,
    /// What the firmware answers to `PSCI_VERSION` (major in bits 31:16):
    /// [`MODEL_PSCI_VERSION`], or an older one the purgatory must not use.
    pub psci_version: i64,
    /// The header names the boot CPU (MPIDR 0) too, first, as the loader
    /// does (it names every CPU: it cannot know which one runs
    /// `kexec -e`); the secondaries follow, up to [`MAX_SECONDARIES`] in
    /// all.
    pub boot_listed: bool,
    /// The header then names this many CPUs the machine does not have
    /// (the firmware answers their `CPU_ON` with `INVALID_PARAMETERS`).
    pub missing: usize,
    /// The missing CPUs come first in the header (before the secondaries).
    pub missing_first: bool,
}

/// When a secondary the boot CPU started runs (to its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondaryRun {
    /// The seed decides: [`SecondaryRun::AtCpuOn`], or
    /// [`SecondaryRun::AtAffinityInfo`] 1 to 3.
    SeedDecides,
    /// Inside its `CPU_ON`, before the boot CPU hashes its own share.
    AtCpuOn,
    /// Inside the boot CPU's `n`th `AFFINITY_INFO` call about it (the
    /// earlier ones answer ON; that one answers OFF).
    AtAffinityInfo(u32),
    /// Just after the firmware answered the boot CPU's `n`th
    /// `AFFINITY_INFO` call about it ON: the boot CPU finds it done (or
    /// off) only at its next look at the mailbox.
    AfterAffinityInfo(u32),
    /// Never: `CPU_ON` succeeds, but the CPU does not come up (it stays
    /// OFF), as a broken CPU or firmware would.
    Never,
}

impl SmpOptions {
    /// `n` secondaries on the conduit a kernel at `regime` would use (HVC
    /// at EL1, SMC at EL2), starting in the boot CPU's regime.
    pub fn for_regime(n: usize, regime: Regime) -> Self {
        Self {
            secondaries: n,
            conduit: match regime {
                Regime::El1 => Conduit::Hvc,
                Regime::El2 | Regime::El2Host => Conduit::Smc,
            },
            secondary_regime: None,
            run: SecondaryRun::SeedDecides,
            psci_version: MODEL_PSCI_VERSION,
            boot_listed: true,
            missing: 0,
            missing_first: false,
        }
    }
}

/// The MPIDR affinity of the model's secondary number `i` (from 1): four
/// CPUs per cluster, so that Aff1 is used too.
pub const fn secondary_mpidr(i: usize) -> u64 {
    (((i / 4) as u64) << 8) | (i % 4) as u64
}

/// Whether a CPU is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Off,
    /// Started; not (yet) turned off.
    On,
    /// Turned itself off with `CPU_OFF`.
    OffAgain,
}

/// One secondary CPU of the model.
#[derive(Debug, Clone)]
struct Secondary {
    mpidr: u64,
    power: Power,
    /// Its own state once it stopped running.
    pe: Option<PeState>,
    /// Its system instructions.
    trace: SysTrace,
    /// Whether it parked (returned from `CPU_OFF`, or was never run).
    parked: bool,
    /// Started but not yet run: it runs inside the boot CPU's
    /// `AFFINITY_INFO` call about it that brings this count to 0.
    deferred: Option<Deferred>,
}

/// A started secondary whose run the model put off.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    /// `AFFINITY_INFO` calls about it still to answer ON.
    polls: u32,
    regime: Regime,
    slot: usize,
    /// The call it runs in answers ON (as before the run).
    answered_on: bool,
}

/// The PSCI call a secondary runs inside: what it returns afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// `CPU_ON`: SUCCESS.
    CpuOn,
    /// `AFFINITY_INFO` of this MPIDR: its state after the run.
    Affinity(u64),
    /// `AFFINITY_INFO`, answered ON before the CPU ran.
    AnsweredOn,
}

/// What the boot CPU had of its own while a secondary runs.
#[derive(Debug, Clone)]
struct Suspended {
    pe: PeState,
    sctlr: u64,
    regime: Regime,
    trace: Option<SysTrace>,
    stack_frame: Option<(u64, Vec<u8>)>,
    /// Every line dirty somewhere when the secondary started (an eviction
    /// may move it to another level while the secondary runs).
    dirty_before: BTreeSet<u64>,
    /// The operation counters when the secondary started.
    counters: Counters,
}

/// The model's PSCI firmware and its secondary CPUs.
#[derive(Debug, Clone)]
pub struct Smp {
    conduit: Conduit,
    entry: u64,
    regime: Option<Regime>,
    run: SecondaryRun,
    version: i64,
    cpus: Vec<Secondary>,
    params: HandoffParams,
    own: PurgatoryMemory,
    seed: u64,
    running: Option<(usize, Suspended, Resume)>,
    violation: Option<Violation>,
    /// What the secondaries did, in all.
    spent: Counters,
}

impl Smp {
    /// The firmware for `opts` and the purgatory's header and memory;
    /// secondaries start at `entry`.
    pub(super) fn new(
        opts: &SmpOptions,
        params: &HandoffParams,
        own: PurgatoryMemory,
        entry: u64,
        seed: u64,
    ) -> Self {
        let cpus = (1..=opts.secondaries.min(MAX_SECONDARIES))
            .map(|i| Secondary {
                mpidr: secondary_mpidr(i),
                power: Power::Off,
                pe: None,
                trace: SysTrace::default(),
                parked: false,
                deferred: None,
            })
            .collect();
        Self {
            conduit: opts.conduit,
            entry,
            regime: opts.secondary_regime,
            run: opts.run,
            version: opts.psci_version,
            cpus,
            params: params.clone(),
            own,
            seed,
            running: None,
            violation: None,
            spent: Counters::default(),
        }
    }

    /// The operations the secondaries performed, in all (the cost model's
    /// "secondaries" phase).
    pub fn spent(&self) -> Counters {
        self.spent
    }

    /// The first rule a secondary broke when it turned off
    /// ([`Rule::SecondaryDirtyLine`]).
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Where secondaries start.
    pub(super) fn entry(&self) -> u64 {
        self.entry
    }

    /// The system instructions of each secondary that ran, by MPIDR.
    pub fn traces(&self) -> Vec<(u64, SysTrace)> {
        self.cpus
            .iter()
            .filter(|c| !c.trace.is_empty())
            .map(|c| (c.mpidr, c.trace.clone()))
            .collect()
    }

    /// How many secondaries turned themselves off after running.
    pub fn turned_off(&self) -> usize {
        self.cpus
            .iter()
            .filter(|c| c.power == Power::OffAgain)
            .count()
    }

    fn affinity(&self, target: u64) -> i64 {
        match self.cpus.iter().find(|c| c.mpidr == target) {
            Some(c) if c.power == Power::On => AFFINITY_ON,
            Some(_) => AFFINITY_OFF,
            None => PSCI_INVALID_PARAMETERS,
        }
    }
}

impl SimCpu {
    /// The CPU the code runs on now: `None` the boot CPU, else the index
    /// of the running secondary.
    fn running_secondary(&self) -> Option<usize> {
        self.smp.as_ref()?.running.as_ref().map(|(i, _, _)| *i)
    }

    /// `MPIDR_EL1` affinity of the CPU running now.
    pub(super) fn current_mpidr(&self) -> u64 {
        match (&self.smp, self.running_secondary()) {
            (Some(s), Some(i)) => s.cpus.get(i).map_or(0, |c| c.mpidr),
            _ => 0,
        }
    }

    /// A secondary parks (after a `CPU_OFF` that returned, or refusing to
    /// run): `true` if one is running (the boot CPU did not park).
    pub(super) fn park_secondary(&mut self) -> bool {
        let Some(i) = self.running_secondary() else {
            return false;
        };
        if let Some(c) = self.smp.as_mut().and_then(|s| s.cpus.get_mut(i)) {
            c.parked = true;
        }
        true
    }

    /// `CPU_ON` of `target` at `entry` with context id `slot`: runs it now
    /// (`Err`), or later ([`Self::affinity_info`]).
    fn cpu_on(&mut self, [target, entry, slot]: [u64; 3]) -> Result<i64, Box<SecondaryStart>> {
        let target = target & MPIDR_AFFINITY_MASK;
        let Some(smp) = self.smp.as_deref() else {
            return Ok(PSCI_NOT_SUPPORTED);
        };
        if smp.running.is_some() {
            // Only the boot CPU starts CPUs in the purgatory.
            return Ok(PSCI_DENIED);
        }
        if target == 0 {
            return Ok(PSCI_ALREADY_ON);
        }
        let Some(i) = smp.cpus.iter().position(|c| c.mpidr == target) else {
            return Ok(PSCI_INVALID_PARAMETERS);
        };
        if smp.cpus[i].power == Power::On {
            return Ok(PSCI_ALREADY_ON);
        }
        if entry != smp.entry {
            return Ok(PSCI_INVALID_ADDRESS);
        }
        if self.memory.stores_not_completed() {
            self.memory.report_fault(
                "PSCI CPU_ON with stores not completed by a DSB: the new CPU may read the \
                 mailbox before they reach memory"
                    .into(),
                target,
            );
        }
        if self.memory.maintenance_pending() {
            self.memory.report_fault(
                "PSCI CPU_ON with cache maintenance not completed by a DSB: the new CPU may \
                 read lines it has not reached yet"
                    .into(),
                target,
            );
        }
        let (regime, run) = (smp.regime.unwrap_or(self.regime), smp.run);
        if let Some(c) = self.smp.as_deref_mut().and_then(|s| s.cpus.get_mut(i)) {
            c.power = Power::On;
        }
        let slot = usize::try_from(slot).unwrap_or(usize::MAX);
        if slot >= MAX_SECONDARIES {
            // The entry code parks a CPU with a slot it has no stack for.
            if let Some(c) = self.smp.as_deref_mut().and_then(|s| s.cpus.get_mut(i)) {
                c.parked = true;
            }
            return Ok(PSCI_SUCCESS);
        }
        let r = self.memory.random();
        let polls = match run {
            SecondaryRun::SeedDecides if r.is_multiple_of(2) => 0,
            SecondaryRun::SeedDecides => 1 + u32::try_from((r >> 8) % 3).unwrap_or(0),
            SecondaryRun::AtCpuOn => 0,
            SecondaryRun::AtAffinityInfo(n) | SecondaryRun::AfterAffinityInfo(n) => n.max(1),
            SecondaryRun::Never => {
                if let Some(c) = self.smp.as_deref_mut().and_then(|s| s.cpus.get_mut(i)) {
                    c.power = Power::Off;
                }
                return Ok(PSCI_SUCCESS);
            }
        };
        if polls > 0 {
            if let Some(c) = self.smp.as_deref_mut().and_then(|s| s.cpus.get_mut(i)) {
                c.deferred = Some(Deferred {
                    polls,
                    regime,
                    slot,
                    answered_on: matches!(run, SecondaryRun::AfterAffinityInfo(_)),
                });
            }
            return Ok(PSCI_SUCCESS);
        }
        Err(Box::new(self.switch_to_secondary(
            i,
            regime,
            slot,
            Resume::CpuOn,
        )))
    }

    /// `AFFINITY_INFO` of `target`: a secondary whose run was put off runs
    /// now if this is the call it waits for.
    fn affinity_info(&mut self, target: u64) -> Result<i64, Box<SecondaryStart>> {
        let Some(smp) = self.smp.as_deref_mut() else {
            return Ok(PSCI_NOT_SUPPORTED);
        };
        let Some(i) = smp.cpus.iter().position(|c| c.mpidr == target) else {
            return Ok(smp.affinity(target));
        };
        let due = match &mut smp.cpus[i].deferred {
            Some(d) if smp.running.is_none() => {
                d.polls = d.polls.saturating_sub(1);
                (d.polls == 0).then_some(*d)
            }
            _ => None,
        };
        match due {
            Some(d) => {
                smp.cpus[i].deferred = None;
                Err(Box::new(self.switch_to_secondary(
                    i,
                    d.regime,
                    d.slot,
                    if d.answered_on {
                        Resume::AnsweredOn
                    } else {
                        Resume::Affinity(target)
                    },
                )))
            }
            None => Ok(smp.affinity(target)),
        }
    }

    /// The running CPU becomes secondary `i`, just powered on, in `regime`
    /// with context id `slot`; what it is to run.
    fn switch_to_secondary(
        &mut self,
        i: usize,
        regime: Regime,
        slot: usize,
        resume: Resume,
    ) -> SecondaryStart {
        let Some(smp) = self.smp.as_deref() else {
            unreachable!("only a machine with secondaries starts one");
        };
        let (params, own) = (smp.params.clone(), smp.own);
        let dirty_before = self
            .memory
            .all_dirty_lines()
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        let counters = self.memory.counters();
        let icache_on = self.memory.random().is_multiple_of(2);
        let mut pe = PeState::powered_on(icache_on);
        self.memory.swap_pe(&mut pe);
        let suspended = Suspended {
            pe,
            sctlr: std::mem::replace(&mut self.sctlr, if icache_on { SCTLR_I } else { 0 }),
            regime: self.regime,
            trace: self.trace.take(),
            stack_frame: self.stack_frame.take(),
            dirty_before,
            counters,
        };
        self.regime = regime;
        if let Some(s) = self.smp.as_deref_mut() {
            s.running = Some((i, suspended, resume));
        }
        self.memory.phase("secondary CPU");
        // What power-up leaves: the old kernel's TLB entries for the
        // purgatory's pages; and, with its I-cache off and not used while
        // off, stale lines over the purgatory's image. An I-cache that is
        // on, or used while off, holds no stale line of the code the CPU
        // starts at (PSCI's entry state, as for the kernel's own
        // secondaries): no code could run correctly otherwise.
        for r in [own.image, own.tables, own.stack, own.mailbox] {
            for page in
                (r.start..r.start + r.len).step_by(usize::try_from(PAGE_SIZE).unwrap_or(4096))
            {
                self.memory.seed_tlb(page, handoff::MemAttr::NormalWb);
            }
        }
        let cfg = self.memory.config().clone();
        if !icache_on && !cfg.dic && !self.memory.icache_used_while_disabled() {
            let mut line = own.image.start & !(cfg.i_line - 1);
            while line < own.image.start + own.image.len {
                if self.memory.random().is_multiple_of(4) {
                    let tag = self.memory.random() % icache_tags(&cfg);
                    let junk: Vec<u8> = (0..cfg.i_line)
                        .map(|_| self.memory.random().to_le_bytes()[0])
                        .collect();
                    self.memory.seed_iline(line, tag, &junk);
                }
                line += cfg.i_line;
            }
        }
        // Its entry code (cpu_setup's ISB included), then its frames at
        // the top of its stack: slot s has the page below s + 1.
        let mut t = SysTrace::default();
        t.entry_code(regime);
        self.trace = Some(t);
        self.memory.isb();
        self.fetch_code();
        let top = own.stack.start + (slot as u64 + 1) * PAGE_SIZE;
        let frame = super::plan::SimSegment::generated(
            top - super::setup::STACK_FRAME,
            usize::try_from(super::setup::STACK_FRAME).unwrap_or(128),
            0x5ec0 + slot as u64,
        );
        self.set_stack_frame(frame.addr, frame.bytes);
        SecondaryStart { params, own, slot }
    }

    /// Back to the boot CPU after the running secondary stopped; its
    /// checks at `CPU_OFF`. Returns x0 of the boot CPU's call it ran in.
    fn switch_back(&mut self) -> i64 {
        let Some((i, mut s, resume)) = self.smp.as_deref_mut().and_then(|x| x.running.take())
        else {
            return PSCI_DENIED;
        };
        let off = self
            .smp
            .as_deref()
            .and_then(|x| x.cpus.get(i))
            .is_some_and(|c| c.power == Power::OffAgain);
        if off {
            self.check_at_cpu_off(i, &s.dirty_before);
        }
        self.check_stack();
        let done = counters_delta(&self.memory.counters(), &s.counters);
        self.memory.swap_pe(&mut s.pe);
        self.sctlr = s.sctlr;
        self.regime = s.regime;
        let trace = std::mem::replace(&mut self.trace, s.trace);
        self.stack_frame = s.stack_frame;
        self.memory.phase("boot CPU");
        let Some(smp) = self.smp.as_deref_mut() else {
            return PSCI_DENIED;
        };
        if let Some(c) = smp.cpus.get_mut(i) {
            c.pe = Some(s.pe);
            c.trace = trace.unwrap_or_default();
        }
        smp.spent = counters_add(&smp.spent, &done);
        match resume {
            Resume::CpuOn => PSCI_SUCCESS,
            Resume::Affinity(target) => smp.affinity(target),
            Resume::AnsweredOn => AFFINITY_ON,
        }
    }

    /// What a secondary leaves when it calls `CPU_OFF`: its stores
    /// complete, nothing it wrote still dirty in a cache.
    fn check_at_cpu_off(&mut self, i: usize, dirty_before: &BTreeSet<u64>) {
        let mpidr = self
            .smp
            .as_deref()
            .and_then(|s| s.cpus.get(i))
            .map_or(0, |c| c.mpidr);
        if self.memory.stores_not_completed() {
            self.memory.report_fault(
                "PSCI CPU_OFF with stores not completed by a DSB: the boot CPU reads the \
                 result once the CPU is reported off"
                    .into(),
                mpidr,
            );
        }
        let now = self.memory.all_dirty_lines();
        let Some(&(level, line)) = now.iter().find(|(_, l)| !dirty_before.contains(l)) else {
            return;
        };
        let Some(smp) = self.smp.as_deref() else {
            return;
        };
        let v = Violation::new(
            &self.memory,
            smp.seed,
            Rule::SecondaryDirtyLine,
            Some(line),
            Location::Data(level),
            format!(
                "secondary CPU {mpidr:#x} (#{}) turned off with line {line:#x} it wrote still \
                 dirty in {level}: the boot CPU reads its result from memory",
                i + 1
            ),
        );
        if let Some(s) = self.smp.as_deref_mut() {
            s.violation.get_or_insert(v);
        }
    }

    /// The check of the secondaries at the branch to the kernel: every CPU
    /// started is off.
    pub(super) fn check_secondaries(&self, seed: u64) -> Result<(), Violation> {
        let Some(smp) = self.smp.as_deref() else {
            return Ok(());
        };
        match smp.cpus.iter().find(|c| c.power == Power::On) {
            Some(c) => Err(Violation::new(
                &self.memory,
                seed,
                Rule::SecondaryStillOn,
                None,
                Location::Register,
                format!(
                    "secondary CPU {:#x} is still on (it {}) at the branch to the kernel",
                    c.mpidr,
                    if c.parked { "parked" } else { "never stopped" }
                ),
            )),
            None => Ok(()),
        }
    }

    /// The secondaries' firmware state, if the run has one.
    pub fn smp(&self) -> Option<&Smp> {
        self.smp.as_deref()
    }
}

impl Cpus for SimCpu {
    fn psci_call(
        &mut self,
        conduit: Conduit,
        function: u32,
        args: [u64; 3],
    ) -> Result<i64, Box<SecondaryStart>> {
        // As the purgatory's Cpu: HVC only at EL1 (at EL2 it would trap to
        // its own vectors), SMC at either; the handoff makes no other call
        // (handoff::smp::reaches_firmware), the CPU would stop on UDF.
        let name = match (conduit, self.regime) {
            (Conduit::Hvc, Regime::El1) => "hvc #0",
            (Conduit::Smc, _) => "smc #0",
            _ => {
                self.memory.report_fault(
                    format!(
                        "a PSCI call through {conduit:?} at {:?}: it cannot reach the \
                         firmware (HVC at EL2 is taken by the purgatory's own vectors)",
                        self.regime
                    ),
                    u64::from(function),
                );
                return Ok(PSCI_NOT_SUPPORTED);
            }
        };
        self.sys(name);
        self.tick();
        match self.smp.as_deref() {
            Some(s) if s.conduit == conduit => {}
            _ => return Ok(PSCI_NOT_SUPPORTED),
        }
        match function {
            PSCI_VERSION => Ok(self
                .smp
                .as_deref()
                .map_or(PSCI_NOT_SUPPORTED, |s| s.version)),
            PSCI_AFFINITY_INFO_64 => self.affinity_info(args[0] & MPIDR_AFFINITY_MASK),
            PSCI_CPU_ON_64 => self.cpu_on(args),
            PSCI_CPU_OFF => {
                let Some(i) = self.running_secondary() else {
                    // The last CPU on may not turn off.
                    return Ok(PSCI_DENIED);
                };
                if let Some(c) = self.smp.as_deref_mut().and_then(|s| s.cpus.get_mut(i)) {
                    c.power = Power::OffAgain;
                }
                Ok(PSCI_SUCCESS)
            }
            _ => Ok(PSCI_NOT_SUPPORTED),
        }
    }

    fn secondary_finished(&mut self) -> i64 {
        self.switch_back()
    }
}

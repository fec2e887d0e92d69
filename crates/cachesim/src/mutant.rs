//! The mutants of the code under test: a wrapper around any
//! [`handoff::Machine`] that removes, weakens or shortens one maintenance
//! "site", so a test can show that each operation is necessary.
//!
//! A *site* is a maximal run of consecutive calls of one operation with no
//! other call in between (e.g. the `DC CIVAC` loop over one range, or one
//! `DSB`). Sites are enumerated by a recording run of the unmutated code;
//! the code under test is straight-line up to its first data-dependent
//! branch, so site `n` denotes the same call site in a mutated run.
//!
//! A *unit* is what one mutant changes: one site, except in the phases of
//! [`LOOP_PHASES`] (the old kernel's relocation, one loop over the entry
//! list), where every by-VA site of one operation is an iteration of the
//! same instruction (`dc civac` over each destination page) and all of them
//! form one unit: there is no source change that drops the clean of one
//! page and not the others. "Skip last line" then skips the last line of
//! every iteration (the loop-bound bug).
//!
//! The simulation (`crate::sim`) runs the code under test through a
//! [`Mutant`]; the campaign that tries every mutant is `crate::campaign`
//! (both above this module).

pub use crate::cpus::{Cpus, SecondaryStart};
use handoff::pagetable::{MemAttr, MAIR_VALUE};
use handoff::{Conduit, Machine, MmuConfig, Regime, Sha256Engine, SCTLR_C, SCTLR_I, SCTLR_M};
use std::fmt;

/// The phases whose MSR values are the purgatory's own (the relocation's
/// are the kernel's): the boot CPU's run and a secondary's.
pub const PURGATORY_PHASES: &[&str] = &["purgatory", "secondary"];

/// A maintenance or barrier operation of the handoff trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// `DC CVAC`.
    DcCvac,
    /// `DC CIVAC`.
    DcCivac,
    /// `DC IVAC`.
    DcIvac,
    /// `DC CVAU`.
    DcCvau,
    /// `IC IVAU`.
    IcIvau,
    /// `IC IALLU`.
    IcIallu,
    /// `DMB SY`.
    DmbSy,
    /// `DSB SY`.
    DsbSy,
    /// `DSB ISH`.
    DsbIsh,
    /// `ISB`.
    Isb,
    /// `TLBI` all (+DSB+ISB).
    TlbiAll,
    /// `MSR SCTLR_ELx` (its value is mutated by [`ValueMutation`]).
    MsrSctlr,
    /// `MSR MAIR_ELx`, `TCR_ELx`, `TTBR0_ELx` (values mutated by
    /// [`ValueMutation`]).
    MsrTranslation,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::DcCvac => "DC CVAC",
            OpKind::DcCivac => "DC CIVAC",
            OpKind::DcIvac => "DC IVAC",
            OpKind::DcCvau => "DC CVAU",
            OpKind::IcIvau => "IC IVAU",
            OpKind::IcIallu => "IC IALLU",
            OpKind::DmbSy => "DMB SY",
            OpKind::DsbSy => "DSB SY",
            OpKind::DsbIsh => "DSB ISH",
            OpKind::Isb => "ISB",
            OpKind::TlbiAll => "TLBI ALL",
            OpKind::MsrSctlr => "MSR SCTLR",
            OpKind::MsrTranslation => "MSR MAIR/TCR/TTBR0",
        })
    }
}

/// One site (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// Run index in program order.
    pub index: usize,
    /// The operation.
    pub kind: OpKind,
    /// Calls in the run.
    pub len: usize,
    /// First address (by-VA operations; 0 otherwise).
    pub first_va: u64,
    /// Last address (by-VA operations; 0 otherwise).
    pub last_va: u64,
    /// Phase label active when the run started.
    pub phase: &'static str,
    /// Whether the next site follows this one directly: same phase, no
    /// other call of the trait (memory access, hash, branch) in between.
    /// Only such pairs are swapped ([`Mutation::SwapWithNext`]).
    pub adjacent_next: bool,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} [{}] {}", self.index, self.phase, self.kind)?;
        if self.len > 1 || self.first_va != 0 {
            write!(
                f,
                " x{} ({:#x}..={:#x})",
                self.len, self.first_va, self.last_va
            )?;
        }
        Ok(())
    }
}

/// How a site is mutated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    /// Every call of the run is dropped.
    Remove,
    /// Every call is weakened: CIVAC→CVAC, CVAC→IVAC, IALLU→nothing.
    Weaken,
    /// The last call of the run (the last line of a range) is dropped.
    Shorten,
    /// The value an MSR writes is wrong (only the purgatory's own writes:
    /// the relocation's are the kernel's).
    Value(ValueMutation),
    /// The site and the next one are issued in the other order (only for a
    /// pair with nothing else in between, [`Site::adjacent_next`]).
    SwapWithNext,
}

/// A wrong value written to SCTLR, TCR or MAIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueMutation {
    /// The SCTLR write leaves M as it was (does not set or clear it).
    SctlrKeepM,
    /// The SCTLR write leaves C as it was.
    SctlrKeepC,
    /// The SCTLR write leaves I as it was.
    SctlrKeepI,
    /// TCR.IRGN0/ORGN0 = Non-cacheable walks.
    TcrWalksNonCacheable,
    /// TCR.T0SZ = 25 (a 39-bit space: the walk starts at level 1).
    TcrT0sz39Bit,
    /// TCR.TG0 = 64 KiB granule.
    TcrGranule64K,
    /// The MAIR attribute of the Normal write-back index is Normal
    /// Non-cacheable (a wrong cacheability).
    MairWriteBackAsNonCacheable,
    /// The MAIR attribute of the Normal Non-cacheable index (the stack) is
    /// Normal write-back.
    MairNonCacheableAsWriteBack,
    /// The MAIR attribute of the Device index (the console) is Normal
    /// write-back.
    MairDeviceAsWriteBack,
}

impl ValueMutation {
    /// Every value mutation.
    pub const ALL: [ValueMutation; 9] = [
        ValueMutation::SctlrKeepM,
        ValueMutation::SctlrKeepC,
        ValueMutation::SctlrKeepI,
        ValueMutation::TcrWalksNonCacheable,
        ValueMutation::TcrT0sz39Bit,
        ValueMutation::TcrGranule64K,
        ValueMutation::MairWriteBackAsNonCacheable,
        ValueMutation::MairNonCacheableAsWriteBack,
        ValueMutation::MairDeviceAsWriteBack,
    ];

    /// The operation whose value it changes.
    pub const fn kind(self) -> OpKind {
        match self {
            Self::SctlrKeepM | Self::SctlrKeepC | Self::SctlrKeepI => OpKind::MsrSctlr,
            _ => OpKind::MsrTranslation,
        }
    }

    /// The SCTLR value written instead of `value`, over `old`.
    pub fn sctlr(self, old: u64, value: u64) -> u64 {
        let bit = match self {
            Self::SctlrKeepM => SCTLR_M,
            Self::SctlrKeepC => SCTLR_C,
            Self::SctlrKeepI => SCTLR_I,
            _ => return value,
        };
        (value & !bit) | (old & bit)
    }

    /// The translation registers written instead of `cfg`.
    pub fn translation(self, cfg: &MmuConfig) -> MmuConfig {
        // Byte `i` of MAIR is the attribute of index `i` (MemAttr's value).
        let set_attr = |mair: u64, idx: MemAttr, attr: u64| {
            let shift = 8 * (idx as u64);
            (mair & !(0xff << shift)) | (attr << shift)
        };
        let byte = |idx: MemAttr| (MAIR_VALUE >> (8 * (idx as u64))) & 0xff;
        let mut c = *cfg;
        match self {
            Self::TcrWalksNonCacheable => c.tcr &= !(0xf << 8),
            Self::TcrT0sz39Bit => c.tcr = (c.tcr & !0x3f) | 25,
            Self::TcrGranule64K => c.tcr = (c.tcr & !(3 << 14)) | (1 << 14),
            Self::MairWriteBackAsNonCacheable => {
                c.mair = set_attr(c.mair, MemAttr::NormalWb, byte(MemAttr::NormalNc));
            }
            Self::MairNonCacheableAsWriteBack => {
                c.mair = set_attr(c.mair, MemAttr::NormalNc, byte(MemAttr::NormalWb));
            }
            Self::MairDeviceAsWriteBack => {
                c.mair = set_attr(c.mair, MemAttr::DeviceNgnre, byte(MemAttr::NormalWb));
            }
            Self::SctlrKeepM | Self::SctlrKeepC | Self::SctlrKeepI => {}
        }
        c
    }
}

impl fmt::Display for ValueMutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SctlrKeepM => "keep SCTLR.M",
            Self::SctlrKeepC => "keep SCTLR.C",
            Self::SctlrKeepI => "keep SCTLR.I",
            Self::TcrWalksNonCacheable => "TCR walks non-cacheable",
            Self::TcrT0sz39Bit => "TCR.T0SZ 39-bit",
            Self::TcrGranule64K => "TCR.TG0 64K",
            Self::MairWriteBackAsNonCacheable => "MAIR write-back as non-cacheable",
            Self::MairNonCacheableAsWriteBack => "MAIR non-cacheable as write-back",
            Self::MairDeviceAsWriteBack => "MAIR device as write-back",
        })
    }
}

impl Mutation {
    /// Every mutation.
    pub fn all() -> Vec<Mutation> {
        let mut v = vec![Mutation::Remove, Mutation::Weaken, Mutation::Shorten];
        v.extend(ValueMutation::ALL.map(Mutation::Value));
        v.push(Mutation::SwapWithNext);
        v
    }

    /// Whether this mutation is meaningful for `site` and not a duplicate of
    /// another one (IALLU→nothing is `Remove`; a single call has no "last
    /// line" distinct from itself; values only of the purgatory's writes).
    pub fn applies(self, site: &Site) -> bool {
        match self {
            Mutation::Remove => true,
            Mutation::Weaken => matches!(site.kind, OpKind::DcCivac | OpKind::DcCvac),
            Mutation::Shorten => site.len > 1,
            Mutation::Value(v) => v.kind() == site.kind && PURGATORY_PHASES.contains(&site.phase),
            // A loop phase's by-VA unit is every iteration of one
            // instruction: "swap with the next site" has no source form.
            Mutation::SwapWithNext => site.adjacent_next && !in_loop_unit(site),
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::Remove => f.write_str("remove"),
            Mutation::Weaken => f.write_str("weaken"),
            Mutation::Shorten => f.write_str("skip last line"),
            Mutation::Value(v) => write!(f, "{v}"),
            Mutation::SwapWithNext => f.write_str("swap with next"),
        }
    }
}

/// Phases whose code is one loop over the pages (see the module
/// documentation).
pub const LOOP_PHASES: &[&str] = &["relocate"];

/// Whether `s` is a by-VA site of a [`LOOP_PHASES`] phase (one iteration
/// of the loop's instruction).
fn in_loop_unit(s: &Site) -> bool {
    let by_va = matches!(
        s.kind,
        OpKind::DcCvac | OpKind::DcCivac | OpKind::DcIvac | OpKind::DcCvau | OpKind::IcIvau
    );
    by_va && LOOP_PHASES.contains(&s.phase)
}

/// The sites one mutant changes: `unit` groups the by-VA sites of one
/// operation in a [`LOOP_PHASES`] phase; otherwise one site per unit.
pub fn units(sites: &[Site]) -> Vec<Vec<Site>> {
    let mut out: Vec<Vec<Site>> = Vec::new();
    for s in sites {
        if in_loop_unit(s) {
            if let Some(u) = out
                .iter_mut()
                .find(|u| u[0].phase == s.phase && u[0].kind == s.kind)
            {
                u.push(*s);
                continue;
            }
        }
        out.push(vec![*s]);
    }
    out
}

/// A recorder/mutator around any [`handoff::Machine`].
#[derive(Debug)]
pub struct Mutant<M> {
    inner: M,
    /// (site index, run length) of every site of the unit, and the mutation.
    target: Option<(Vec<(usize, usize)>, Mutation)>,
    sites: Vec<Site>,
    last: Option<OpKind>,
    in_run: usize,
    phase: &'static str,
    /// The value mutation of the site just accounted, if it is targeted.
    value: Option<ValueMutation>,
    /// Whether a call other than a site came since the last site.
    other_since_site: bool,
    /// Calls of the site being swapped with the next one, held back until
    /// that one is done.
    deferred: Vec<Deferred>,
    /// The MSR just accounted is the swapped site: hold its write back.
    defer_current: bool,
    /// The SCTLR value last read through [`Machine::sctlr`] (what a value
    /// mutation keeps bits of, without a read of its own).
    sctlr_read: Option<u64>,
}

/// A call held back by [`Mutation::SwapWithNext`].
#[derive(Debug, Clone, Copy)]
enum Deferred {
    Op(OpKind, u64),
    Sctlr(u64),
    Translation(MmuConfig),
}

impl<M: Machine> Mutant<M> {
    /// Record sites, mutate nothing.
    pub fn recorder(inner: M) -> Self {
        Self {
            inner,
            target: None,
            sites: Vec::new(),
            last: None,
            in_run: 0,
            phase: "",
            value: None,
            other_since_site: false,
            deferred: Vec::new(),
            defer_current: false,
            sctlr_read: None,
        }
    }

    /// Apply `m` to `site` (taken from a recording run of the same code).
    pub fn new(inner: M, site: &Site, m: Mutation) -> Self {
        Self::new_unit(inner, std::slice::from_ref(site), m)
    }

    /// Apply `m` to every site of a unit (see [`units`]).
    pub fn new_unit(inner: M, sites: &[Site], m: Mutation) -> Self {
        Self {
            target: Some((sites.iter().map(|s| (s.index, s.len)).collect(), m)),
            ..Self::recorder(inner)
        }
    }

    /// The sites seen so far.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The wrapped machine.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The wrapped machine, mutably.
    pub fn inner_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> M {
        self.inner
    }

    /// Label the following sites (e.g. "relocate", "purgatory").
    pub fn set_phase(&mut self, p: &'static str) {
        self.phase = p;
        self.last = None;
    }

    /// Account one call; return the operation to perform instead (`None`:
    /// drop it).
    fn site(&mut self, kind: OpKind, va: u64) -> Option<OpKind> {
        // A by-VA run continues only while it walks forward line by line
        // (architectural lines are at most 2 KiB).
        let contiguous = self
            .sites
            .last()
            .is_some_and(|s| va == 0 || (va > s.last_va && va - s.last_va <= 2048));
        if self.last == Some(kind) && contiguous {
            self.in_run += 1;
            if let Some(s) = self.sites.last_mut() {
                s.len += 1;
                s.last_va = va;
            }
        } else {
            self.in_run = 0;
            let (other, phase) = (self.other_since_site, self.phase);
            if let Some(prev) = self.sites.last_mut() {
                prev.adjacent_next = !other && prev.phase == phase;
            }
            self.sites.push(Site {
                index: self.sites.len(),
                kind,
                len: 1,
                first_va: va,
                last_va: va,
                phase,
                adjacent_next: false,
            });
            self.last = Some(kind);
        }
        self.other_since_site = false;
        let idx = self.sites.len() - 1;
        // A swapped site's calls are issued once the next site is done.
        if self.swapped_site().is_some_and(|i| idx > i + 1) {
            self.flush_deferred();
        }
        let hit = self.target.as_ref().and_then(|(sites, m)| {
            sites
                .iter()
                .find(|(t, _)| *t == idx)
                .map(|&(_, len)| (*m, len))
        });
        self.value = match hit {
            Some((Mutation::Value(v), _)) => Some(v),
            _ => None,
        };
        match hit {
            Some((m, len)) => match m {
                Mutation::SwapWithNext => {
                    match kind {
                        OpKind::MsrSctlr | OpKind::MsrTranslation => self.defer_current = true,
                        _ => self.deferred.push(Deferred::Op(kind, va)),
                    }
                    None
                }
                Mutation::Value(_) => Some(kind),
                Mutation::Remove => None,
                Mutation::Shorten if self.in_run + 1 == len => None,
                Mutation::Shorten => Some(kind),
                Mutation::Weaken => match kind {
                    OpKind::DcCivac => Some(OpKind::DcCvac),
                    OpKind::DcCvac => Some(OpKind::DcIvac),
                    _ => None,
                },
            },
            None => Some(kind),
        }
    }

    fn other(&mut self) {
        self.last = None;
        self.other_since_site = true;
        if self
            .swapped_site()
            .is_some_and(|i| self.sites.len() > i + 1)
        {
            self.flush_deferred();
        }
    }

    /// The index of the site swapped with its next one, if that is the
    /// mutation.
    fn swapped_site(&self) -> Option<usize> {
        match &self.target {
            Some((sites, Mutation::SwapWithNext)) => sites.first().map(|&(i, _)| i),
            _ => None,
        }
    }

    /// Issues the held-back calls of a swapped site.
    fn flush_deferred(&mut self) {
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Op(kind, va) => self.perform(kind, va),
                Deferred::Sctlr(v) => self.inner.set_sctlr(v),
                Deferred::Translation(cfg) => self.inner.set_translation(&cfg),
            }
        }
    }

    /// Issues `kind` (at `va` for by-VA operations) on the wrapped machine.
    fn perform(&mut self, kind: OpKind, va: u64) {
        match kind {
            OpKind::DcCvac => self.inner.dc_cvac(va),
            OpKind::DcCivac => self.inner.dc_civac(va),
            OpKind::DcIvac => self.inner.dc_ivac(va),
            OpKind::DcCvau => self.inner.dc_cvau(va),
            OpKind::IcIvau => self.inner.ic_ivau(va),
            OpKind::IcIallu => self.inner.ic_iallu(),
            OpKind::DmbSy => self.inner.dmb_sy(),
            OpKind::DsbSy => self.inner.dsb_sy(),
            OpKind::DsbIsh => self.inner.dsb_ish(),
            OpKind::Isb => self.inner.isb(),
            OpKind::TlbiAll => self.inner.tlb_invalidate_all(),
            // Held back with their values (Deferred::Sctlr/Translation).
            OpKind::MsrSctlr | OpKind::MsrTranslation => {}
        }
    }

    fn dc(&mut self, kind: OpKind, va: u64) {
        match self.site(kind, va) {
            Some(OpKind::DcCvac) => self.inner.dc_cvac(va),
            Some(OpKind::DcCivac) => self.inner.dc_civac(va),
            Some(OpKind::DcIvac) => self.inner.dc_ivac(va),
            Some(OpKind::DcCvau) => self.inner.dc_cvau(va),
            Some(OpKind::IcIvau) => self.inner.ic_ivau(va),
            _ => {}
        }
    }
}

impl<M: Cpus> Machine for Mutant<M> {
    type Exit = M::Exit;
    fn read_u64(&mut self, pa: u64) -> u64 {
        self.other();
        self.inner.read_u64(pa)
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        self.other();
        self.inner.write_u64(pa, value);
    }
    fn ctr_el0(&mut self) -> u64 {
        self.inner.ctr_el0()
    }
    fn id_aa64isar0_el1(&mut self) -> u64 {
        self.inner.id_aa64isar0_el1()
    }
    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        self.inner.id_aa64mmfr0_el1()
    }
    fn current_el(&mut self) -> u8 {
        self.inner.current_el()
    }
    fn regime(&mut self) -> Regime {
        self.inner.regime()
    }
    fn sctlr(&mut self) -> u64 {
        let v = self.inner.sctlr();
        self.sctlr_read = Some(v);
        v
    }
    fn set_sctlr(&mut self, value: u64) {
        if self.site(OpKind::MsrSctlr, 0).is_none() {
            if std::mem::take(&mut self.defer_current) {
                self.deferred.push(Deferred::Sctlr(value));
            }
            return;
        }
        let value = match self.value.take() {
            Some(v) => {
                let old = match self.sctlr_read {
                    Some(old) => old,
                    None => self.inner.sctlr(),
                };
                v.sctlr(old, value)
            }
            None => value,
        };
        self.inner.set_sctlr(value);
    }
    fn set_translation(&mut self, cfg: &MmuConfig) {
        if self.site(OpKind::MsrTranslation, 0).is_none() {
            if std::mem::take(&mut self.defer_current) {
                self.deferred.push(Deferred::Translation(*cfg));
            }
            return;
        }
        match self.value.take() {
            Some(v) => self.inner.set_translation(&v.translation(cfg)),
            None => self.inner.set_translation(cfg),
        }
    }
    fn tlb_invalidate_all(&mut self) {
        if self.site(OpKind::TlbiAll, 0).is_some() {
            self.inner.tlb_invalidate_all();
        }
    }
    fn dc_cvac(&mut self, va: u64) {
        self.dc(OpKind::DcCvac, va);
    }
    fn dc_civac(&mut self, va: u64) {
        self.dc(OpKind::DcCivac, va);
    }
    fn dc_ivac(&mut self, va: u64) {
        self.dc(OpKind::DcIvac, va);
    }
    fn dc_cvau(&mut self, va: u64) {
        self.dc(OpKind::DcCvau, va);
    }
    fn ic_ivau(&mut self, va: u64) {
        self.dc(OpKind::IcIvau, va);
    }
    fn ic_iallu(&mut self) {
        if self.site(OpKind::IcIallu, 0).is_some() {
            self.inner.ic_iallu();
        }
    }
    fn dmb_sy(&mut self) {
        if self.site(OpKind::DmbSy, 0).is_some() {
            self.inner.dmb_sy();
        }
    }
    fn dsb_sy(&mut self) {
        if self.site(OpKind::DsbSy, 0).is_some() {
            self.inner.dsb_sy();
        }
    }
    fn dsb_ish(&mut self) {
        if self.site(OpKind::DsbIsh, 0).is_some() {
            self.inner.dsb_ish();
        }
    }
    fn isb(&mut self) {
        if self.site(OpKind::Isb, 0).is_some() {
            self.inner.isb();
        }
    }
    fn sha256(&mut self, addr: u64, len: u64, engine: Sha256Engine) -> [u8; 32] {
        self.other();
        self.inner.sha256(addr, len, engine)
    }
    fn putc(&mut self, uart: u64, byte: u8) {
        self.inner.putc(uart, byte);
    }
    fn now_ns(&mut self) -> Option<u64> {
        self.inner.now_ns()
    }
    fn mpidr(&mut self) -> u64 {
        self.inner.mpidr()
    }
    fn secondary_entry(&mut self) -> u64 {
        self.inner.secondary_entry()
    }
    fn psci(&mut self, conduit: Conduit, function: u32, args: [u64; 3]) -> i64 {
        self.other();
        match self.inner.psci_call(conduit, function, args) {
            Ok(x0) => x0,
            Err(start) => {
                let phase = std::mem::replace(&mut self.phase, "secondary");
                self.last = None;
                start.run(self);
                self.phase = phase;
                self.other();
                self.inner.secondary_finished()
            }
        }
    }
    fn enter_kernel(&mut self, entry: u64, dtb: u64) -> Self::Exit {
        self.other();
        self.inner.enter_kernel(entry, dtb)
    }
    fn park(&mut self) -> Self::Exit {
        self.other();
        self.inner.park()
    }
}

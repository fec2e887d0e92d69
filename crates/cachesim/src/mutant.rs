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

use handoff::{Machine, MmuConfig, Regime, Sha256Engine};
use std::fmt;

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
}

impl Mutation {
    /// All mutations.
    pub const ALL: [Mutation; 3] = [Mutation::Remove, Mutation::Weaken, Mutation::Shorten];

    /// Whether this mutation is meaningful for `site` and not a duplicate of
    /// another one (IALLU→nothing is `Remove`; a single call has no "last
    /// line" distinct from itself).
    pub fn applies(self, site: &Site) -> bool {
        match self {
            Mutation::Remove => true,
            Mutation::Weaken => matches!(site.kind, OpKind::DcCivac | OpKind::DcCvac),
            Mutation::Shorten => site.len > 1,
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mutation::Remove => "remove",
            Mutation::Weaken => "weaken",
            Mutation::Shorten => "skip last line",
        })
    }
}

/// Phases whose code is one loop over the pages (see the module
/// documentation).
pub const LOOP_PHASES: &[&str] = &["relocate"];

/// The sites one mutant changes: `unit` groups the by-VA sites of one
/// operation in a [`LOOP_PHASES`] phase; otherwise one site per unit.
pub fn units(sites: &[Site]) -> Vec<Vec<Site>> {
    let mut out: Vec<Vec<Site>> = Vec::new();
    for s in sites {
        let by_va = matches!(
            s.kind,
            OpKind::DcCvac | OpKind::DcCivac | OpKind::DcIvac | OpKind::DcCvau | OpKind::IcIvau
        );
        if by_va && LOOP_PHASES.contains(&s.phase) {
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
            self.sites.push(Site {
                index: self.sites.len(),
                kind,
                len: 1,
                first_va: va,
                last_va: va,
                phase: self.phase,
            });
            self.last = Some(kind);
        }
        let idx = self.sites.len() - 1;
        let hit = self.target.as_ref().and_then(|(sites, m)| {
            sites
                .iter()
                .find(|(t, _)| *t == idx)
                .map(|&(_, len)| (*m, len))
        });
        match hit {
            Some((m, len)) => match m {
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

impl<M: Machine> Machine for Mutant<M> {
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
        self.inner.sctlr()
    }
    fn set_sctlr(&mut self, value: u64) {
        self.other();
        self.inner.set_sctlr(value);
    }
    fn set_translation(&mut self, cfg: &MmuConfig) {
        self.other();
        self.inner.set_translation(cfg);
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
    fn enter_kernel(&mut self, entry: u64, dtb: u64) -> Self::Exit {
        self.other();
        self.inner.enter_kernel(entry, dtb)
    }
    fn park(&mut self) -> Self::Exit {
        self.inner.park()
    }
}

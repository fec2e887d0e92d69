//! The instruction-level interface the code under test drives, and a
//! mutating wrapper that removes, weakens or shortens one maintenance
//! "site" to show each operation is necessary.

use crate::machine::{DcOp, IcOp, Machine, Sctlr, SetWayOp};
use std::fmt;

/// Memory, system registers and maintenance instructions, as the code under
/// test (kernel relocation, purgatory handoff) sees them.
pub trait Ops {
    /// Data load.
    fn read(&mut self, addr: u64, out: &mut [u8]);
    /// Data store.
    fn write(&mut self, addr: u64, data: &[u8]);
    /// DC by VA.
    fn dc(&mut self, op: DcOp, va: u64);
    /// DC by set/way over all local levels.
    fn dc_set_way_all(&mut self, op: SetWayOp);
    /// IC.
    fn ic(&mut self, op: IcOp, va: u64);
    /// DSB SY.
    fn dsb(&mut self);
    /// ISB.
    fn isb(&mut self);
    /// MSR SCTLR_ELx.
    fn write_sctlr(&mut self, s: Sctlr);
    /// MRS SCTLR_ELx (the last value written).
    fn read_sctlr(&self) -> Sctlr;
    /// MRS CTR_EL0.
    fn ctr_el0(&self) -> u64;
    /// Set x0..x3 for the branch.
    fn set_reg(&mut self, r: u8, v: u64);
    /// Branch to the next image.
    fn enter(&mut self, entry: u64);
}

impl Ops for Machine {
    fn read(&mut self, addr: u64, out: &mut [u8]) {
        Machine::read(self, addr, out);
    }
    fn write(&mut self, addr: u64, data: &[u8]) {
        Machine::write(self, addr, data);
    }
    fn dc(&mut self, op: DcOp, va: u64) {
        Machine::dc(self, op, va);
    }
    fn dc_set_way_all(&mut self, op: SetWayOp) {
        Machine::dc_set_way_all(self, op);
    }
    fn ic(&mut self, op: IcOp, va: u64) {
        Machine::ic(self, op, va);
    }
    fn dsb(&mut self) {
        Machine::dsb(self);
    }
    fn isb(&mut self) {
        Machine::isb(self);
    }
    fn write_sctlr(&mut self, s: Sctlr) {
        Machine::write_sctlr(self, s);
    }
    fn read_sctlr(&self) -> Sctlr {
        self.pending_sctlr().unwrap_or_else(|| self.sctlr())
    }
    fn ctr_el0(&self) -> u64 {
        self.config().ctr_el0()
    }
    fn set_reg(&mut self, r: u8, v: u64) {
        Machine::set_reg(self, r, v);
    }
    fn enter(&mut self, entry: u64) {
        Machine::enter(self, entry);
    }
}

/// The kind of a maintenance call, the unit sites are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// DC by VA.
    Dc(DcOp),
    /// DC by set/way.
    SetWay(SetWayOp),
    /// IC.
    Ic(IcOp),
    /// DSB.
    Dsb,
    /// ISB.
    Isb,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpKind::Dc(o) => write!(f, "DC {}", format!("{o:?}").to_uppercase()),
            OpKind::SetWay(o) => write!(f, "DC {}", format!("{o:?}").to_uppercase()),
            OpKind::Ic(o) => write!(f, "IC {}", format!("{o:?}").to_uppercase()),
            OpKind::Dsb => f.write_str("DSB"),
            OpKind::Isb => f.write_str("ISB"),
        }
    }
}

/// One site: a maximal run of consecutive calls of one kind (e.g. the
/// `DC CIVAC` loop over one page), the `n`-th run in program order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// Run index in program order.
    pub index: usize,
    /// The operation.
    pub kind: OpKind,
    /// Calls in the run.
    pub len: usize,
    /// First address (by-VA operations).
    pub first_va: u64,
    /// Phase label active when the run started.
    pub phase: &'static str,
}

/// How a site is mutated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    /// Every call of the run is dropped.
    Remove,
    /// Every call is weakened: CIVAC→CVAC, CVAC→IVAC, CISW→CSW, IALLU→nothing.
    Weaken,
    /// The last call of the run (the last line of a range) is dropped.
    Shorten,
}

impl Mutation {
    /// Whether this mutation means something for `site` (not a duplicate of
    /// another mutation).
    pub fn applies(self, site: &Site) -> bool {
        match self {
            Mutation::Remove => true,
            Mutation::Weaken => matches!(
                site.kind,
                OpKind::Dc(DcOp::Civac | DcOp::Cvac) | OpKind::SetWay(SetWayOp::Cisw)
            ),
            Mutation::Shorten => site.len > 1,
        }
    }
}

/// A recorder/mutator around any [`Ops`].
#[derive(Debug)]
pub struct Mutant<O> {
    inner: O,
    target: Option<(usize, Mutation, usize)>,
    sites: Vec<Site>,
    last: Option<OpKind>,
    in_run: usize,
    phase: &'static str,
}

impl<O: Ops> Mutant<O> {
    /// Record sites, mutate nothing.
    pub fn recorder(inner: O) -> Self {
        Self {
            inner,
            target: None,
            sites: Vec::new(),
            last: None,
            in_run: 0,
            phase: "",
        }
    }

    /// Apply `m` to `site` (from a recording run of the same code).
    pub fn new(inner: O, site: &Site, m: Mutation) -> Self {
        Self {
            target: Some((site.index, m, site.len)),
            ..Self::recorder(inner)
        }
    }

    /// The sites seen so far.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The wrapped implementation.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The wrapped implementation, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> O {
        self.inner
    }

    /// Label the following sites (e.g. "relocate", "purgatory").
    pub fn set_phase(&mut self, p: &'static str) {
        self.phase = p;
        self.last = None;
    }

    /// Account one call of `kind`; return what to do instead (None = drop).
    fn site(&mut self, kind: OpKind, va: u64) -> Option<OpKind> {
        if self.last == Some(kind) {
            self.in_run += 1;
            if let Some(s) = self.sites.last_mut() {
                s.len += 1;
            }
        } else {
            self.in_run = 0;
            self.sites.push(Site {
                index: self.sites.len(),
                kind,
                len: 1,
                first_va: va,
                phase: self.phase,
            });
            self.last = Some(kind);
        }
        let idx = self.sites.len() - 1;
        match self.target {
            Some((t, m, len)) if t == idx => match m {
                Mutation::Remove => None,
                Mutation::Shorten if self.in_run + 1 == len => None,
                Mutation::Shorten => Some(kind),
                Mutation::Weaken => match kind {
                    OpKind::Dc(DcOp::Civac) => Some(OpKind::Dc(DcOp::Cvac)),
                    OpKind::Dc(DcOp::Cvac) => Some(OpKind::Dc(DcOp::Ivac)),
                    OpKind::SetWay(SetWayOp::Cisw) => Some(OpKind::SetWay(SetWayOp::Csw)),
                    _ => None,
                },
            },
            _ => Some(kind),
        }
    }

    fn data_access(&mut self) {
        self.last = None;
    }
}

impl<O: Ops> Ops for Mutant<O> {
    fn read(&mut self, addr: u64, out: &mut [u8]) {
        self.data_access();
        self.inner.read(addr, out);
    }
    fn write(&mut self, addr: u64, data: &[u8]) {
        self.data_access();
        self.inner.write(addr, data);
    }
    fn dc(&mut self, op: DcOp, va: u64) {
        if let Some(OpKind::Dc(o)) = self.site(OpKind::Dc(op), va) {
            self.inner.dc(o, va);
        }
    }
    fn dc_set_way_all(&mut self, op: SetWayOp) {
        if let Some(OpKind::SetWay(o)) = self.site(OpKind::SetWay(op), 0) {
            self.inner.dc_set_way_all(o);
        }
    }
    fn ic(&mut self, op: IcOp, va: u64) {
        if let Some(OpKind::Ic(o)) = self.site(OpKind::Ic(op), va) {
            self.inner.ic(o, va);
        }
    }
    fn dsb(&mut self) {
        if self.site(OpKind::Dsb, 0).is_some() {
            self.inner.dsb();
        }
    }
    fn isb(&mut self) {
        if self.site(OpKind::Isb, 0).is_some() {
            self.inner.isb();
        }
    }
    fn write_sctlr(&mut self, s: Sctlr) {
        self.last = None;
        self.inner.write_sctlr(s);
    }
    fn read_sctlr(&self) -> Sctlr {
        self.inner.read_sctlr()
    }
    fn ctr_el0(&self) -> u64 {
        self.inner.ctr_el0()
    }
    fn set_reg(&mut self, r: u8, v: u64) {
        self.inner.set_reg(r, v);
    }
    fn enter(&mut self, entry: u64) {
        self.last = None;
        self.inner.enter(entry);
    }
}

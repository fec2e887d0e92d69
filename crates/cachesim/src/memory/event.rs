//! What the model records: the event timeline (for violations) and the
//! operation counters (for the cost model).

use super::{DcOp, IcOp, Level, Sctlr, SetWayOp};
use std::fmt;

/// One entry of the event timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A named phase boundary (e.g. "purgatory").
    Phase(&'static str),
    /// A data read.
    Read {
        /// First byte.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// Whether it went through the caches.
        cacheable: bool,
    },
    /// A data write.
    Write {
        /// First byte.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// Whether it went through the caches.
        cacheable: bool,
    },
    /// DC by VA issued.
    Dc(DcOp, u64),
    /// DC by set/way issued.
    SetWay(SetWayOp),
    /// IC issued (address for IVAU).
    Ic(IcOp, u64),
    /// DMB: earlier Device stores ordered before later DC by VA.
    Dmb,
    /// DSB: all queued maintenance completes.
    Dsb,
    /// ISB: fetch buffer discarded, SCTLR writes take effect.
    Isb,
    /// MSR SCTLR_ELx issued.
    SctlrWrite(Sctlr),
    /// The SCTLR write took effect.
    SctlrEffective(Sctlr),
    /// A queued maintenance operation completed (operation, line).
    Completed(&'static str, Option<u64>),
    /// Adversary: a line was evicted (written back if dirty).
    Evict {
        /// Level evicted from.
        level: Level,
        /// Line address.
        line: u64,
        /// Whether it was dirty (written back).
        dirty: bool,
    },
    /// Adversary: speculative clean allocation.
    SpecAlloc {
        /// Level allocated into.
        level: Level,
        /// Line address.
        line: u64,
    },
    /// Adversary or fetch: an I-cache line filled.
    IFill {
        /// Line address.
        line: u64,
        /// Tag (colour/ASID).
        tag: u64,
    },
    /// Adversary: instructions fetched ahead into the fetch buffer.
    Prefetch(u64),
    /// Instructions executed from this address.
    Execute(u64),
    /// A general-purpose register set for the handoff.
    SetReg(u8, u64),
    /// Branch to the next image.
    Enter(u64),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Phase(p) => write!(f, "== {p} =="),
            Event::Read {
                addr,
                len,
                cacheable,
            } => write!(
                f,
                "read {addr:#x}+{len:#x} {}",
                if *cacheable {
                    "cacheable"
                } else {
                    "non-cacheable"
                }
            ),
            Event::Write {
                addr,
                len,
                cacheable,
            } => write!(
                f,
                "write {addr:#x}+{len:#x} {}",
                if *cacheable {
                    "cacheable"
                } else {
                    "non-cacheable"
                }
            ),
            Event::Dc(op, a) => write!(f, "DC {op:?} {a:#x}"),
            Event::SetWay(op) => write!(f, "DC {op:?} (all sets/ways, local levels)"),
            Event::Ic(IcOp::Ivau, a) => write!(f, "IC IVAU {a:#x}"),
            Event::Ic(op, _) => write!(f, "IC {op:?}"),
            Event::Dmb => f.write_str("DMB"),
            Event::Dsb => f.write_str("DSB"),
            Event::Isb => f.write_str("ISB"),
            Event::SctlrWrite(s) => write!(f, "MSR SCTLR {s}"),
            Event::SctlrEffective(s) => write!(f, "SCTLR {s} takes effect"),
            Event::Completed(s, Some(l)) => write!(f, "completes: {s} {l:#x}"),
            Event::Completed(s, None) => write!(f, "completes: {s}"),
            Event::Evict { level, line, dirty } => write!(
                f,
                "adversary evicts {line:#x} from {level}{}",
                if *dirty { " (dirty: written back)" } else { "" }
            ),
            Event::SpecAlloc { level, line } => {
                write!(f, "adversary allocates clean {line:#x} into {level}")
            }
            Event::IFill { line, tag } => write!(f, "I-cache fill {line:#x} tag {tag}"),
            Event::Prefetch(a) => write!(f, "adversary fetches ahead {a:#x}"),
            Event::Execute(a) => write!(f, "execute {a:#x}"),
            Event::SetReg(r, v) => write!(f, "x{r} = {v:#x}"),
            Event::Enter(a) => write!(f, "branch to {a:#x}"),
        }
    }
}

impl Event {
    /// The address this event is about, if it is about one line/range.
    pub(super) fn address(&self) -> Option<(u64, u64)> {
        match *self {
            Event::Read { addr, len, .. } | Event::Write { addr, len, .. } => Some((addr, len)),
            Event::Dc(_, a) | Event::Ic(IcOp::Ivau, a) | Event::Prefetch(a) | Event::Execute(a) => {
                Some((a, 1))
            }
            Event::Evict { line, .. }
            | Event::SpecAlloc { line, .. }
            | Event::IFill { line, .. }
            | Event::Completed(_, Some(line)) => Some((line, 1)),
            _ => None,
        }
    }
}

/// Operation counts for the cost model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// DC by VA (CVAC, CIVAC, IVAC, CVAU, ZVA), in that order.
    pub dc: [u64; 5],
    /// DC by set/way (CSW, CISW).
    pub set_way: [u64; 2],
    /// IC IVAU, IALLU, IALLUIS.
    pub ic: [u64; 3],
    /// DMB count.
    pub dmb: u64,
    /// DSB count.
    pub dsb: u64,
    /// ISB count.
    pub isb: u64,
    /// SCTLR writes.
    pub sctlr_writes: u64,
    /// Bytes read/written through the caches.
    pub cacheable_bytes: u64,
    /// Bytes read/written non-cacheable (straight to DRAM).
    pub noncacheable_bytes: u64,
    /// Lines filled into L1 from below (demand misses).
    pub line_fills: u64,
    /// Dirty lines written back by maintenance, per level (L1, L2, system).
    pub writebacks: [u64; 3],
    /// Bytes of instructions executed.
    pub fetched_bytes: u64,
}

impl Counters {
    /// DC by VA of kind `op`.
    pub fn dc_count(&self, op: DcOp) -> u64 {
        self.dc[op.counter_index()]
    }

    /// DC by set/way of kind `op`.
    pub fn set_way_count(&self, op: SetWayOp) -> u64 {
        self.set_way[op.counter_index()]
    }

    /// DC by set/way of either kind.
    pub fn set_way_total(&self) -> u64 {
        self.set_way_count(SetWayOp::Csw) + self.set_way_count(SetWayOp::Cisw)
    }

    /// IC of kind `op`.
    pub fn ic_count(&self, op: IcOp) -> u64 {
        self.ic[op.counter_index()]
    }

    /// IC IALLU and IC IALLUIS together (one cost: the whole I-cache).
    pub fn ic_all_count(&self) -> u64 {
        self.ic_count(IcOp::Iallu) + self.ic_count(IcOp::Ialluis)
    }

    /// Dirty lines written back from `level` by maintenance.
    pub fn writebacks_from(&self, level: Level) -> u64 {
        self.writebacks[level.index()]
    }
}

//! The memory-system model: DRAM (the PoC), a data-cache hierarchy, an
//! instruction cache, SCTLR_ELx, queued maintenance, and a seeded adversary.
//!
//! Semantics, in short (each is a deliberate, documented simplification):
//! - Addresses are physical; translation is the identity (VA == PA). Only the
//!   I-cache tag (colour or ASID) depends on "which VA" and is modelled
//!   explicitly.
//! - Data accesses are cacheable iff the committed SCTLR has M and C set;
//!   otherwise they are Device/non-cacheable: they read and write DRAM only and
//!   leave cache lines as they are (so lines can go stale). A system cache is
//!   *not* looked up by non-cacheable accesses.
//! - Instruction fetches go through a per-CPU fetch buffer (instructions
//!   fetched ahead; discarded only by ISB), then the I-cache if SCTLR.I is set
//!   (filled from the PoU), otherwise DRAM. With CTR_EL0.DIC the I-cache is
//!   coherent and never stale; with CTR_EL0.IDC the PoU view includes L1D.
//! - Maintenance instructions are queued and complete at any time the
//!   adversary chooses, and at the latest at the next DSB.
//! - A write to SCTLR takes effect at any time the adversary chooses, and at
//!   the latest at the next ISB.
//! - At every step the adversary may evict (write back) any line, allocate a
//!   clean line for any cacheable-mapped address while M+C are on, fill the
//!   I-cache or the fetch buffer from any executable address.

use crate::config::{CacheConfig, ICachePolicy, SystemCache};
use crate::rng::Rng;
use handoff::pagetable::{translate, MemAttr, MmuConfig};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// The translation granule the model uses for DRAM pages and I-cache colours.
pub const PAGE_SIZE: u64 = 4096;

/// The adversary acts before one data access in this many.
const DATA_STEP_STRIDE: u64 = 4;

/// How many events the bounded log keeps.
const LOG_CAPACITY: usize = 4096;

/// A data-cache level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// L1 D-cache, inside the PoU.
    L1,
    /// L2, the PoU (where instruction and data paths meet).
    L2,
    /// System cache beyond the PoU, before the PoC.
    System,
}

impl Level {
    const ALL: [Level; 3] = [Level::L1, Level::L2, Level::System];
    fn index(self) -> usize {
        match self {
            Level::L1 => 0,
            Level::L2 => 1,
            Level::System => 2,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::L1 => "L1D",
            Level::L2 => "L2",
            Level::System => "system cache",
        })
    }
}

/// The SCTLR_ELx bits the model honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sctlr {
    /// M: stage 1 translation (the MMU) enabled.
    pub m: bool,
    /// C: data accesses cacheable (only with M).
    pub c: bool,
    /// I: instruction fetches cacheable.
    pub i: bool,
}

impl fmt::Display for Sctlr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |on: bool, c: char| if on { c } else { '-' };
        write!(f, "{}{}{}", b(self.m, 'M'), b(self.c, 'C'), b(self.i, 'I'))
    }
}

/// Data-cache maintenance by VA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DcOp {
    /// Clean to the PoC.
    Cvac,
    /// Clean and invalidate to the PoC.
    Civac,
    /// Invalidate to the PoC (may discard dirty data).
    Ivac,
    /// Clean to the PoU.
    Cvau,
    /// Zero a block (a store; faults on Device memory).
    Zva,
}

/// Data-cache maintenance by set/way, modelled as "every set and way of every
/// local level" (L1 then L2). It never reaches a system cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetWayOp {
    /// DC CSW over all local levels.
    Csw,
    /// DC CISW over all local levels.
    Cisw,
}

/// Instruction-cache maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IcOp {
    /// IC IVAU: invalidate by VA to the PoU (this VA's alias/tag only).
    Ivau,
    /// IC IALLU: invalidate all, local.
    Iallu,
    /// IC IALLUIS: invalidate all, Inner Shareable (same as IALLU on one CPU).
    Ialluis,
}

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
    fn address(&self) -> Option<(u64, u64)> {
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

/// Per-mille probabilities of adversarial actions at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adversary {
    /// Evict (write back) a line.
    pub evict: u32,
    /// Speculatively allocate a clean line (M+C on).
    pub spec_alloc: u32,
    /// Speculatively fill the I-cache (I on).
    pub ifill: u32,
    /// Fetch instructions ahead into the fetch buffer.
    pub prefetch: u32,
    /// Complete one queued maintenance operation early.
    pub complete: u32,
    /// Let a pending SCTLR write take effect early.
    pub sctlr_early: u32,
    /// Perform a DC IVAC as a clean+invalidate. Both outcomes are real:
    /// some cores always clean dirty data first (Cortex-A53 TRM: "if the
    /// data is dirty within the cluster then a clean is performed before
    /// the invalidate"; Cortex-A76 TRM A6.2.4: DC IVAC "treated as DC
    /// CIVAC"; the Arm ARM upgrades it at EL1 when HCR_EL2.VM is set),
    /// others discard it, which is how an IVAC-for-CIVAC bug stays latent on
    /// one board and hangs another.
    pub ivac_cleans: u32,
    /// Let a non-cacheable read through a Normal-NC or Device *mapping*
    /// (MMU on) hit a line a cache still holds for the location. Arm ARM:
    /// mismatched memory attributes (the old kernel mapped everything
    /// write-back) can lose coherency until the location is cleaned and
    /// invalidated; Cortex-A53/A35 TRMs call such a hit "unexpected",
    /// "architecturally UNPREDICTABLE", and ignore it, which other cores
    /// need not do.
    pub nc_hit: u32,
}

impl Adversary {
    /// The default probabilities, with the early-completion rate varied by
    /// seed (lazy, moderate, eager), so that some runs keep every
    /// maintenance operation queued until a DSB and others complete them at
    /// once.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            complete: [0, 50, 300][usize::try_from(seed % 3).unwrap_or(0)],
            ..Self::default()
        }
    }
}

impl Default for Adversary {
    fn default() -> Self {
        Self {
            evict: 150,
            spec_alloc: 150,
            ifill: 100,
            prefetch: 100,
            complete: 300,
            sctlr_early: 100,
            ivac_cleans: 300,
            nc_hit: 300,
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

#[derive(Debug, Clone)]
struct Line {
    dirty: bool,
    data: Box<[u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Dc(DcOp, u64),
    SetWay(SetWayOp),
    IcLine { line: u64, tag: Option<u64> },
    IcAll,
    Tlbi,
}

impl Pending {
    fn name(&self) -> &'static str {
        match self {
            Pending::Dc(DcOp::Cvac, _) => "DC CVAC",
            Pending::Dc(DcOp::Civac, _) => "DC CIVAC",
            Pending::Dc(DcOp::Ivac, _) => "DC IVAC",
            Pending::Dc(DcOp::Cvau, _) => "DC CVAU",
            Pending::Dc(DcOp::Zva, _) => "DC ZVA",
            Pending::SetWay(SetWayOp::Csw) => "DC CSW (all)",
            Pending::SetWay(SetWayOp::Cisw) => "DC CISW (all)",
            Pending::IcLine { .. } => "IC IVAU",
            Pending::IcAll => "IC IALLU",
            Pending::Tlbi => "TLBI ALL",
        }
    }
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pending::Dc(op, l) => write!(f, "DC {op:?} {l:#x}"),
            Pending::SetWay(op) => write!(f, "DC {op:?}"),
            Pending::IcLine { line, .. } => write!(f, "IC IVAU {line:#x}"),
            Pending::IcAll => f.write_str("IC IALLU"),
            Pending::Tlbi => f.write_str("TLBI ALL"),
        }
    }
}

/// A fault raised by the model (e.g. DC ZVA on Device memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What went wrong.
    pub what: String,
    /// Where.
    pub addr: u64,
}

/// The whole modelled machine (one CPU, its caches, DRAM).
#[derive(Debug, Clone)]
pub struct Machine {
    cfg: CacheConfig,
    rng: Rng,
    adv: Adversary,
    dram: BTreeMap<u64, Box<[u8]>>,
    levels: [BTreeMap<u64, Line>; 3],
    icache: BTreeMap<(u64, u64), Box<[u8]>>,
    fetch_buf: BTreeMap<u64, Box<[u8]>>,
    sctlr: Sctlr,
    pending_sctlr: Option<Sctlr>,
    /// MAIR/TCR/TTBR0 written, not yet synchronised by an ISB.
    pending_translation: Option<Option<MmuConfig>>,
    pending: Vec<Pending>,
    regs: [u64; 4],
    asid: u64,
    log: VecDeque<(u64, Event)>,
    step: u64,
    counters: Counters,
    data_ranges: Vec<(u64, u64)>,
    exec_ranges: Vec<(u64, u64)>,
    fault: Option<Fault>,
    translation: Option<MmuConfig>,
    tlb: BTreeMap<u64, Option<MemAttr>>,
    data_accesses: u64,
    /// Whether the last instruction executed was an ISB (Falkor E1041).
    last_was_isb: bool,
}

fn align_down(a: u64, size: u64) -> u64 {
    a & !(size - 1)
}

fn in_ranges(ranges: &[(u64, u64)], a: u64) -> bool {
    ranges.iter().any(|&(s, l)| a >= s && a - s < l)
}

impl Machine {
    /// A machine in reset state: MMU and caches off, empty caches, DRAM
    /// holding address-dependent garbage.
    pub fn new(cfg: CacheConfig, seed: u64) -> Self {
        Self {
            cfg,
            rng: Rng::new(seed),
            adv: Adversary::for_seed(seed),
            dram: BTreeMap::new(),
            levels: [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()],
            icache: BTreeMap::new(),
            fetch_buf: BTreeMap::new(),
            sctlr: Sctlr::default(),
            pending_sctlr: None,
            pending_translation: None,
            pending: Vec::new(),
            regs: [0; 4],
            asid: 0,
            log: VecDeque::new(),
            step: 0,
            counters: Counters::default(),
            data_ranges: Vec::new(),
            exec_ranges: Vec::new(),
            fault: None,
            translation: None,
            tlb: BTreeMap::new(),
            data_accesses: 0,
            last_was_isb: false,
        }
    }

    /// The configuration this machine models.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// Replace the adversary's probabilities.
    pub fn set_adversary(&mut self, adv: Adversary) {
        self.adv = adv;
    }

    /// Ranges that are mapped cacheable while the MMU is on: the adversary
    /// speculatively allocates and evicts lines here.
    pub fn add_data_range(&mut self, start: u64, len: u64) {
        if len > 0 {
            self.data_ranges.push((start, len));
        }
    }

    /// Ranges the CPU may fetch instructions from (speculatively).
    pub fn add_exec_range(&mut self, start: u64, len: u64) {
        if len > 0 {
            self.exec_ranges.push((start, len));
        }
    }

    /// Set the current ASID (the tag of an ASID-tagged I-cache).
    pub fn set_asid(&mut self, asid: u64) {
        self.asid = asid;
    }

    /// Counters for the cost model.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The first fault raised, if any.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// Committed SCTLR.
    pub fn sctlr(&self) -> Sctlr {
        self.sctlr
    }

    /// A pending (issued, not yet synchronised) SCTLR write.
    pub fn pending_sctlr(&self) -> Option<Sctlr> {
        self.pending_sctlr
    }

    /// Whether queued maintenance has not yet completed.
    pub fn maintenance_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// x0..x3 as set by the code under test.
    pub fn regs(&self) -> [u64; 4] {
        self.regs
    }

    /// Set x0..x3 (the boot-protocol registers).
    pub fn set_reg(&mut self, r: u8, v: u64) {
        if let Some(slot) = self.regs.get_mut(usize::from(r)) {
            *slot = v;
        }
        self.record(Event::SetReg(r, v));
    }

    fn record(&mut self, e: Event) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back((self.step, e));
    }

    /// Log a phase boundary.
    pub fn phase(&mut self, name: &'static str) {
        self.record(Event::Phase(name));
    }

    /// The last `max` events touching `[addr, addr+len)` plus all global
    /// events (barriers, SCTLR, IALLU, phases), oldest first.
    pub fn timeline(&self, addr: u64, len: u64, max: usize) -> Vec<(u64, Event)> {
        let mut out: Vec<(u64, Event)> = self
            .log
            .iter()
            .rev()
            .filter(|(_, e)| match e.address() {
                Some((a, l)) => {
                    let lo = align_down(a, self.cfg.d_line.max(self.cfg.i_line));
                    lo < addr.saturating_add(len.max(1))
                        && addr < a.saturating_add(l.max(self.cfg.d_line))
                }
                None => !matches!(e, Event::SetReg(..)),
            })
            .take(max)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    // ----- DRAM -----

    /// Deterministic garbage for never-written DRAM.
    fn garbage(addr: u64) -> u8 {
        let z = addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
        (z >> 56).to_le_bytes()[0]
    }

    /// Read DRAM directly (the PoC), without stepping the adversary.
    pub fn dram_read(&self, addr: u64, out: &mut [u8]) {
        for (a, b) in (addr..).zip(out.iter_mut()) {
            let page = align_down(a, PAGE_SIZE);
            *b = match self.dram.get(&page) {
                Some(p) => p[usize::try_from(a - page).unwrap_or(0)],
                None => Self::garbage(a),
            };
        }
    }

    /// Write DRAM directly (test setup: "the old kernel put this here").
    pub fn dram_write(&mut self, addr: u64, data: &[u8]) {
        for (a, &b) in (addr..).zip(data.iter()) {
            let page = align_down(a, PAGE_SIZE);
            let p = self
                .dram
                .entry(page)
                .or_insert_with(|| (0..PAGE_SIZE).map(|i| Self::garbage(page + i)).collect());
            p[usize::try_from(a - page).unwrap_or(0)] = b;
        }
    }

    // ----- cache internals -----

    fn has_system(&self) -> bool {
        self.cfg.system_cache.is_some()
    }

    fn levels_present(&self) -> &'static [Level] {
        if self.has_system() {
            &Level::ALL
        } else {
            &Level::ALL[..2]
        }
    }

    /// The newest copy of `line` at or below `from` (cache or DRAM).
    fn view_line(&self, line: u64, from: Level) -> Box<[u8]> {
        for &lv in self.levels_present() {
            if lv < from {
                continue;
            }
            if let Some(l) = self.levels[lv.index()].get(&line) {
                return l.data.clone();
            }
        }
        let mut v = vec![0; self.dline_usize()];
        self.dram_read(line, &mut v);
        v.into_boxed_slice()
    }

    fn dline_usize(&self) -> usize {
        usize::try_from(self.cfg.d_line).unwrap_or(64)
    }

    /// Bytes as the instruction side sees them at the PoU.
    fn pou_bytes(&self, addr: u64, len: u64) -> Vec<u8> {
        let from = if self.cfg.idc { Level::L1 } else { Level::L2 };
        self.view_bytes(addr, len, from)
    }

    fn view_bytes(&self, addr: u64, len: u64, from: Level) -> Vec<u8> {
        let dl = self.cfg.d_line;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut a = addr;
        while a < addr + len {
            let line = align_down(a, dl);
            let data = self.view_line(line, from);
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            out.extend_from_slice(&data[s..e]);
            a = end;
        }
        out
    }

    /// Write a line back one level down (or to DRAM).
    fn write_down(&mut self, from: Level, line: u64, data: Box<[u8]>) {
        let next = match from {
            Level::L1 => Some(Level::L2),
            Level::L2 if self.has_system() => Some(Level::System),
            _ => None,
        };
        match next {
            Some(lv) => {
                self.levels[lv.index()].insert(line, Line { dirty: true, data });
            }
            None => self.dram_write(line, &data),
        }
    }

    fn evict(&mut self, level: Level, line: u64) {
        if let Some(l) = self.levels[level.index()].remove(&line) {
            self.record(Event::Evict {
                level,
                line,
                dirty: l.dirty,
            });
            if l.dirty {
                self.write_down(level, line, l.data);
            }
        }
    }

    /// Clean `line` out of the levels in `scope` to the level below them.
    fn clean_line(&mut self, line: u64, scope: &[Level]) {
        let newest_dirty = scope.iter().find_map(|lv| {
            self.levels[lv.index()]
                .get(&line)
                .filter(|l| l.dirty)
                .map(|l| (*lv, l.data.clone()))
        });
        if let Some((lv, data)) = newest_dirty {
            self.counters.writebacks[lv.index()] += 1;
            for l in scope {
                if let Some(x) = self.levels[l.index()].get_mut(&line) {
                    x.dirty = false;
                }
            }
            let bottom = scope.last().copied().unwrap_or(Level::L1);
            self.write_down(bottom, line, data);
        }
    }

    /// The levels maintenance by VA to the PoC reaches.
    fn poc_scope(&self) -> &'static [Level] {
        match self.cfg.system_cache {
            Some(SystemCache::HonoursVa) => &Level::ALL,
            Some(SystemCache::IgnoresVa) | None => &Level::ALL[..2],
        }
    }

    fn perform(&mut self, p: Pending) {
        match p {
            Pending::Dc(op, line) => {
                let scope = self.poc_scope();
                match op {
                    DcOp::Cvac => self.clean_line(line, scope),
                    DcOp::Civac => {
                        self.clean_line(line, scope);
                        for l in scope {
                            self.levels[l.index()].remove(&line);
                        }
                    }
                    DcOp::Ivac => {
                        if self.rng.chance(self.adv.ivac_cleans) {
                            self.clean_line(line, scope);
                        }
                        for l in scope {
                            self.levels[l.index()].remove(&line);
                        }
                    }
                    DcOp::Cvau => self.clean_line(line, &Level::ALL[..1]),
                    DcOp::Zva => {}
                }
            }
            Pending::SetWay(op) => {
                for lv in [Level::L1, Level::L2] {
                    let lines: Vec<u64> = self.levels[lv.index()].keys().copied().collect();
                    for line in lines {
                        self.clean_line(line, &[lv]);
                        if op == SetWayOp::Cisw {
                            self.levels[lv.index()].remove(&line);
                        }
                    }
                }
            }
            Pending::IcLine { line, tag } => {
                let il = self.cfg.i_line;
                let hit: Vec<(u64, u64)> = self
                    .icache
                    .range((line, 0)..(line + il, 0))
                    .map(|(k, _)| *k)
                    .filter(|(_, t)| tag.is_none_or(|want| *t == want))
                    .collect();
                for k in hit {
                    self.icache.remove(&k);
                }
            }
            Pending::IcAll => self.icache.clear(),
            Pending::Tlbi => self.tlb.clear(),
        }
        let line = match p {
            Pending::Dc(_, l) | Pending::IcLine { line: l, .. } => Some(l),
            Pending::SetWay(_) | Pending::IcAll | Pending::Tlbi => None,
        };
        self.record(Event::Completed(p.name(), line));
    }

    /// Complete every queued operation, in an adversarial order, with
    /// speculative fills allowed between completions (a DSB waits for all of
    /// them, but they finish in no architected order).
    fn complete_all(&mut self) {
        let mut ops = std::mem::take(&mut self.pending);
        while !ops.is_empty() {
            let i = usize::try_from(self.rng.below(ops.len() as u64)).unwrap_or(0);
            let p = ops.swap_remove(i);
            self.perform(p);
            if !ops.is_empty() {
                self.speculate();
            }
        }
    }

    fn commit_sctlr(&mut self) {
        if let Some(s) = self.pending_sctlr.take() {
            if s.m && !self.sctlr.m && self.pending_translation.is_some() && self.fault.is_none() {
                self.fault = Some(Fault {
                    what: "SCTLR.M took effect before the MAIR/TCR/TTBR0 writes were \
                           synchronised (no ISB between them)"
                        .into(),
                    addr: 0,
                });
            }
            self.sctlr = s;
            self.record(Event::SctlrEffective(s));
        }
    }

    fn random_line_in(&mut self, ranges_exec: bool, size: u64) -> Option<u64> {
        let n = if ranges_exec {
            self.exec_ranges.len()
        } else {
            self.data_ranges.len()
        };
        if n == 0 {
            return None;
        }
        let i = usize::try_from(self.rng.below(n as u64)).unwrap_or(0);
        let (s, l) = if ranges_exec {
            self.exec_ranges[i]
        } else {
            self.data_ranges[i]
        };
        let off = self.rng.below(l);
        Some(align_down(s + off, size))
    }

    /// Whether speculative data allocation is possible at all.
    fn data_cacheable(&self) -> bool {
        self.sctlr.m && self.sctlr.c
    }

    /// MSR MAIR/TCR/TTBR0: program (or, with `None`, forget) the
    /// translation tables used while SCTLR.M is set. Without tables the
    /// MMU-on regime is the old kernel's linear map: everything Normal
    /// write-back. Takes effect at the next ISB; the TLB keeps what it holds
    /// (see [`Machine::seed_tlb`]). SCTLR.M taking effect before that ISB is
    /// a fault (the walk would use unsynchronised registers).
    pub fn set_translation(&mut self, cfg: Option<MmuConfig>) {
        self.last_was_isb = false;
        self.step();
        self.pending_translation = Some(cfg);
    }

    /// TLBI ALL for the current regime: queued like cache maintenance,
    /// complete at the latest at the next DSB.
    pub fn tlb_invalidate_all(&mut self) {
        self.last_was_isb = false;
        self.step();
        self.pending.push(Pending::Tlbi);
    }

    /// A TLB entry left by the old kernel (its regime mapped `page`
    /// with `attr`), used once SCTLR.M is set unless invalidated.
    pub fn seed_tlb(&mut self, page: u64, attr: MemAttr) {
        self.tlb.insert(align_down(page, PAGE_SIZE), Some(attr));
    }

    /// Whether a data access to `va` is cacheable now; `None` on a
    /// translation fault (recorded as the machine's fault).
    fn access_cacheable(&mut self, va: u64) -> Option<bool> {
        if !(self.sctlr.m) {
            return Some(false);
        }
        let Some(cfg) = self.translation else {
            return Some(self.sctlr.c);
        };
        let page = align_down(va, PAGE_SIZE);
        let attr = match self.tlb.get(&page) {
            Some(a) => *a,
            None => {
                // Walks are cacheable (TCR IRGN/ORGN = WBWA) iff SCTLR.C.
                let walk_cached = self.sctlr.c;
                let a = translate(&cfg, va, |pa| {
                    let mut b = [0u8; 8];
                    if walk_cached {
                        b.copy_from_slice(&self.view_bytes(pa, 8, Level::L1));
                    } else {
                        self.dram_read(pa, &mut b);
                    }
                    u64::from_le_bytes(b)
                })
                .map(|leaf| leaf.attr);
                self.tlb.insert(page, a);
                a
            }
        };
        match attr {
            Some(a) => Some(self.sctlr.c && a == MemAttr::NormalWb),
            None => {
                if self.fault.is_none() {
                    self.fault = Some(Fault {
                        what: "translation fault (table walk found no valid descriptor)".into(),
                        addr: va,
                    });
                }
                None
            }
        }
    }

    /// Whether the current regime maps `va` Normal write-back (what
    /// speculative allocation needs: nothing is allocated for a
    /// non-cacheable or unmapped location). No fault, no TLB fill.
    fn maps_write_back(&self, va: u64) -> bool {
        let Some(cfg) = self.translation else {
            return true;
        };
        let page = align_down(va, PAGE_SIZE);
        let attr = match self.tlb.get(&page) {
            Some(a) => *a,
            None => {
                let walk_cached = self.sctlr.c;
                translate(&cfg, va, |pa| {
                    let mut b = [0u8; 8];
                    if walk_cached {
                        b.copy_from_slice(&self.view_bytes(pa, 8, Level::L1));
                    } else {
                        self.dram_read(pa, &mut b);
                    }
                    u64::from_le_bytes(b)
                })
                .map(|leaf| leaf.attr)
            }
        };
        attr == Some(MemAttr::NormalWb)
    }

    fn icache_tag(&self, va: u64) -> u64 {
        match self.cfg.icache {
            ICachePolicy::Pipt => 0,
            ICachePolicy::Vipt { colours } => (va / PAGE_SIZE) % colours,
            ICachePolicy::AsidTagged => self.asid,
        }
    }

    /// The adversary's turn before a data access: it acts before one data
    /// access in [`DATA_STEP_STRIDE`] (with the same per-step
    /// probabilities), which keeps page copies cheap to model while every
    /// maintenance instruction and barrier still gets its own turn.
    fn data_step(&mut self) {
        self.data_accesses += 1;
        if self.data_accesses.is_multiple_of(DATA_STEP_STRIDE) {
            self.step();
        } else {
            self.step += 1;
        }
    }

    /// One adversarial step, taken before every modelled instruction.
    fn step(&mut self) {
        self.step += 1;
        let adv = self.adv;
        if self.rng.chance(adv.evict) {
            let all = self.data_ranges.len() + self.exec_ranges.len();
            if all > 0 {
                let pick_exec = self.rng.below(all as u64) >= self.data_ranges.len() as u64;
                if let Some(line) = self.random_line_in(pick_exec, self.cfg.d_line) {
                    let lv = self.levels_present();
                    let level = lv[usize::try_from(self.rng.below(lv.len() as u64)).unwrap_or(0)];
                    self.evict(level, line);
                }
            }
        }
        self.speculate();
        if self.rng.chance(adv.prefetch) {
            if let Some(line) = self.random_line_in(true, self.cfg.i_line) {
                let data = self.ifetch_line(line);
                self.fetch_buf.insert(line, data);
                self.record(Event::Prefetch(line));
            }
        }
        if !self.pending.is_empty() && self.rng.chance(adv.complete) {
            let i = usize::try_from(self.rng.below(self.pending.len() as u64)).unwrap_or(0);
            let p = self.pending.remove(i);
            self.perform(p);
        }
        if self.pending_sctlr.is_some() && self.rng.chance(adv.sctlr_early) {
            self.commit_sctlr();
        }
    }

    /// Speculative data allocation and I-cache fill.
    fn speculate(&mut self) {
        let adv = self.adv;
        if self.data_cacheable() && self.rng.chance(adv.spec_alloc) {
            if let Some(line) = self
                .random_line_in(false, self.cfg.d_line)
                .filter(|&l| self.maps_write_back(l))
            {
                let level = if self.rng.chance(500) {
                    Level::L1
                } else {
                    Level::L2
                };
                if !self.levels[level.index()].contains_key(&line) {
                    let data = self.view_line(line, level);
                    self.levels[level.index()].insert(line, Line { dirty: false, data });
                    self.record(Event::SpecAlloc { level, line });
                }
            }
        }
        if self.sctlr.i && !self.cfg.dic && self.rng.chance(adv.ifill) {
            if let Some(line) = self.random_line_in(true, self.cfg.i_line) {
                let tag = self.icache_tag(line);
                let data = self.pou_bytes(line, self.cfg.i_line).into_boxed_slice();
                self.icache.insert((line, tag), data);
                self.record(Event::IFill { line, tag });
            }
        }
    }

    /// Instruction fetch of one I-line, below the fetch buffer.
    fn ifetch_line(&mut self, line: u64) -> Box<[u8]> {
        let il = self.cfg.i_line;
        if self.sctlr.i && self.cfg.dic {
            return self.pou_bytes(line, il).into_boxed_slice();
        }
        if self.sctlr.i {
            let tag = self.icache_tag(line);
            if let Some(d) = self.icache.get(&(line, tag)) {
                return d.clone();
            }
            let d = self.pou_bytes(line, il).into_boxed_slice();
            self.icache.insert((line, tag), d.clone());
            self.record(Event::IFill { line, tag });
            return d;
        }
        let mut v = vec![0; usize::try_from(il).unwrap_or(64)];
        self.dram_read(line, &mut v);
        v.into_boxed_slice()
    }

    // ----- the instructions -----

    /// A data load of `out.len()` bytes at `addr`.
    pub fn read(&mut self, addr: u64, out: &mut [u8]) {
        self.last_was_isb = false;
        self.data_step();
        let len = out.len() as u64;
        let Some(cacheable) = self.access_cacheable(addr) else {
            out.fill(0xff);
            return;
        };
        self.record(Event::Read {
            addr,
            len,
            cacheable,
        });
        if !cacheable {
            self.counters.noncacheable_bytes += len;
            self.dram_read(addr, out);
            // A non-cacheable *mapping* over a line still cached: the read
            // may hit it (mismatched attributes; see Adversary::nc_hit).
            if self.sctlr.m && self.translation.is_some() && self.rng.chance(self.adv.nc_hit) {
                let dl = self.cfg.d_line;
                let mut a = addr;
                while a < addr + len {
                    let line = align_down(a, dl);
                    let end = (line + dl).min(addr + len);
                    let cached = self
                        .levels_present()
                        .iter()
                        .find_map(|lv| self.levels[lv.index()].get(&line))
                        .map(|l| l.data.clone());
                    if let Some(data) = cached {
                        let s = usize::try_from(a - line).unwrap_or(0);
                        let e = usize::try_from(end - line).unwrap_or(0);
                        let o = usize::try_from(a - addr).unwrap_or(0);
                        out[o..o + (e - s)].copy_from_slice(&data[s..e]);
                    }
                    a = end;
                }
            }
            return;
        }
        self.counters.cacheable_bytes += len;
        let dl = self.cfg.d_line;
        let mut a = addr;
        let mut o = 0usize;
        while a < addr + len {
            let line = align_down(a, dl);
            if !self.levels[0].contains_key(&line) {
                let data = self.view_line(line, Level::L1);
                self.counters.line_fills += 1;
                self.levels[0].insert(line, Line { dirty: false, data });
            }
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            if let Some(l) = self.levels[0].get(&line) {
                out[o..o + (e - s)].copy_from_slice(&l.data[s..e]);
            }
            o += e - s;
            a = end;
        }
    }

    /// A data store of `data` at `addr`.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        self.last_was_isb = false;
        self.data_step();
        let len = data.len() as u64;
        let Some(cacheable) = self.access_cacheable(addr) else {
            return;
        };
        self.record(Event::Write {
            addr,
            len,
            cacheable,
        });
        if !cacheable {
            self.counters.noncacheable_bytes += len;
            self.dram_write(addr, data);
            return;
        }
        self.counters.cacheable_bytes += len;
        self.cacheable_store(addr, data);
    }

    fn cacheable_store(&mut self, addr: u64, data: &[u8]) {
        let dl = self.cfg.d_line;
        let len = data.len() as u64;
        let mut a = addr;
        let mut o = 0usize;
        while a < addr + len {
            let line = align_down(a, dl);
            if !self.levels[0].contains_key(&line) {
                let d = self.view_line(line, Level::L1);
                self.counters.line_fills += 1;
                self.levels[0].insert(
                    line,
                    Line {
                        dirty: false,
                        data: d,
                    },
                );
            }
            let end = (line + dl).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            if let Some(l) = self.levels[0].get_mut(&line) {
                l.data[s..e].copy_from_slice(&data[o..o + (e - s)]);
                l.dirty = true;
            }
            o += e - s;
            a = end;
        }
    }

    /// DC `op` by VA (the line containing `va`).
    pub fn dc(&mut self, op: DcOp, va: u64) {
        self.last_was_isb = false;
        self.step();
        let idx = match op {
            DcOp::Cvac => 0,
            DcOp::Civac => 1,
            DcOp::Ivac => 2,
            DcOp::Cvau => 3,
            DcOp::Zva => 4,
        };
        self.counters.dc[idx] += 1;
        self.record(Event::Dc(op, va));
        let line = align_down(va, self.cfg.d_line);
        if op == DcOp::Zva {
            if self.access_cacheable(va) != Some(true) {
                if self.fault.is_none() {
                    self.fault = Some(Fault {
                        what: "DC ZVA to Device memory (MMU off): alignment fault".into(),
                        addr: va,
                    });
                }
                return;
            }
            let zeros = vec![0; self.dline_usize()];
            self.cacheable_store(line, &zeros);
            return;
        }
        self.pending.push(Pending::Dc(op, line));
    }

    /// DC `op` by set/way over every set and way of the local levels.
    pub fn dc_set_way_all(&mut self, op: SetWayOp) {
        self.last_was_isb = false;
        self.step();
        self.counters.set_way[usize::from(op == SetWayOp::Cisw)] += 1;
        self.record(Event::SetWay(op));
        self.pending.push(Pending::SetWay(op));
    }

    /// IC `op` (`va` only matters for IVAU).
    pub fn ic(&mut self, op: IcOp, va: u64) {
        self.last_was_isb = false;
        self.step();
        self.record(Event::Ic(op, va));
        match op {
            IcOp::Ivau => {
                self.counters.ic[0] += 1;
                let line = align_down(va, self.cfg.i_line);
                let tag = match self.cfg.icache {
                    ICachePolicy::Pipt => None,
                    _ => Some(self.icache_tag(va)),
                };
                self.pending.push(Pending::IcLine { line, tag });
            }
            IcOp::Iallu | IcOp::Ialluis => {
                self.counters.ic[if op == IcOp::Iallu { 1 } else { 2 }] += 1;
                self.pending.push(Pending::IcAll);
            }
        }
    }

    /// DSB (full system): every queued maintenance operation completes.
    pub fn dsb(&mut self) {
        self.last_was_isb = false;
        self.step();
        self.counters.dsb += 1;
        self.record(Event::Dsb);
        self.complete_all();
    }

    /// ISB: instructions fetched ahead are discarded; SCTLR writes take
    /// effect. Does not complete maintenance.
    pub fn isb(&mut self) {
        self.last_was_isb = true;
        self.step();
        self.counters.isb += 1;
        self.record(Event::Isb);
        self.fetch_buf.clear();
        if let Some(t) = self.pending_translation.take() {
            self.translation = t;
        }
        self.commit_sctlr();
    }

    /// MSR SCTLR_ELx: takes effect by the next ISB.
    pub fn write_sctlr(&mut self, s: Sctlr) {
        let mmu_on = self.pending_sctlr.unwrap_or(self.sctlr).m;
        if self.cfg.falkor_e1041 && mmu_on && !s.m && !self.last_was_isb && self.fault.is_none() {
            self.fault = Some(Fault {
                what: "Falkor erratum E1041: the MSR clearing SCTLR.M is not immediately \
                       preceded by an ISB (a speculative instruction fetch may use an \
                       incorrect translation)"
                    .into(),
                addr: 0,
            });
        }
        self.last_was_isb = false;
        self.step();
        self.counters.sctlr_writes += 1;
        self.record(Event::SctlrWrite(s));
        self.pending_sctlr = Some(s);
    }

    /// Execute (fetch) `len` bytes of instructions at `addr`.
    pub fn execute(&mut self, addr: u64, len: u64) -> Vec<u8> {
        self.step();
        self.record(Event::Execute(addr));
        self.counters.fetched_bytes += len;
        let il = self.cfg.i_line;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut a = addr;
        while a < addr + len {
            let line = align_down(a, il);
            let data = match self.fetch_buf.get(&line) {
                Some(d) => d.clone(),
                None => {
                    let d = self.ifetch_line(line);
                    self.fetch_buf.insert(line, d.clone());
                    d
                }
            };
            let end = (line + il).min(addr + len);
            let s = usize::try_from(a - line).unwrap_or(0);
            let e = usize::try_from(end - line).unwrap_or(0);
            out.extend_from_slice(&data[s..e]);
            a = end;
        }
        out
    }

    /// Record the branch to the next image.
    pub fn enter(&mut self, entry: u64) {
        self.last_was_isb = false;
        self.step();
        self.record(Event::Enter(entry));
    }

    // ----- old-kernel state seeding -----

    /// Put a line into `level` with `data` (test setup: what the old kernel
    /// left behind).
    pub fn seed_dline(&mut self, level: Level, addr: u64, dirty: bool, data: &[u8]) {
        let line = align_down(addr, self.cfg.d_line);
        let mut d = self.view_line(line, level);
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        if level == Level::System && !self.has_system() {
            return;
        }
        self.levels[level.index()].insert(line, Line { dirty, data: d });
    }

    /// Put a stale I-cache line (with `tag`) holding `data`.
    pub fn seed_iline(&mut self, addr: u64, tag: u64, data: &[u8]) {
        let line = align_down(addr, self.cfg.i_line);
        let mut d = vec![0; usize::try_from(self.cfg.i_line).unwrap_or(64)];
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        self.icache.insert((line, tag), d.into_boxed_slice());
    }

    /// Put a line into the fetch buffer (instructions fetched ahead).
    pub fn seed_fetch_buffer(&mut self, addr: u64, data: &[u8]) {
        let line = align_down(addr, self.cfg.i_line);
        let mut d = vec![0; usize::try_from(self.cfg.i_line).unwrap_or(64)];
        let n = d.len().min(data.len());
        d[..n].copy_from_slice(&data[..n]);
        self.fetch_buf.insert(line, d.into_boxed_slice());
    }

    /// A random number from the adversary's stream (for seeding).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    // ----- inspection for the checker -----

    /// Every cached data line overlapping `[addr, addr+len)`:
    /// (level, line address, dirty, data).
    pub fn cached_lines(&self, addr: u64, len: u64) -> Vec<(Level, u64, bool, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.d_line);
        let mut v = Vec::new();
        for &lv in self.levels_present() {
            for (k, l) in self.levels[lv.index()].range(lo..addr + len) {
                v.push((lv, *k, l.dirty, l.data.to_vec()));
            }
        }
        v
    }

    /// Every I-cache line overlapping the range: (line, tag, data).
    pub fn icache_lines(&self, addr: u64, len: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.i_line);
        self.icache
            .range((lo, 0)..(addr + len, 0))
            .map(|((l, t), d)| (*l, *t, d.to_vec()))
            .collect()
    }

    /// Every fetch-buffer line overlapping the range: (line, data).
    pub fn fetch_buffer_lines(&self, addr: u64, len: u64) -> Vec<(u64, Vec<u8>)> {
        let lo = align_down(addr, self.cfg.i_line);
        self.fetch_buf
            .range(lo..addr + len)
            .map(|(l, d)| (*l, d.to_vec()))
            .collect()
    }

    /// Whether `a` is inside a data or exec range registered with the model.
    pub fn is_tracked(&self, a: u64) -> bool {
        in_ranges(&self.data_ranges, a) || in_ranges(&self.exec_ranges, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Adversary {
        Adversary {
            evict: 0,
            spec_alloc: 0,
            ifill: 0,
            prefetch: 0,
            complete: 0,
            sctlr_early: 0,
            ivac_cleans: 0,
            nc_hit: 0,
        }
    }

    fn machine(name: &str) -> Machine {
        let mut m = Machine::new(CacheConfig::named(name).expect("config"), 1);
        m.set_adversary(quiet());
        m
    }

    const ON: Sctlr = Sctlr {
        m: true,
        c: true,
        i: true,
    };
    const A: u64 = 0x8000_0000;

    fn caches_on(m: &mut Machine) {
        m.write_sctlr(ON);
        m.isb();
    }

    #[test]
    fn mmu_off_reads_dram_and_leaves_lines_stale() {
        let mut m = machine("a57-like");
        caches_on(&mut m);
        m.write(A, &[1, 2, 3, 4]);
        m.write_sctlr(Sctlr::default());
        m.isb();
        let mut b = [0u8; 4];
        m.read(A, &mut b);
        assert_ne!(
            b,
            [1, 2, 3, 4],
            "non-cacheable read bypasses the dirty line"
        );
        assert!(m.cached_lines(A, 4).iter().any(|l| l.2), "line still dirty");
        m.dc(DcOp::Civac, A);
        m.dsb();
        m.read(A, &mut b);
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(m.cached_lines(A, 4).is_empty());
    }

    #[test]
    fn maintenance_completes_at_dsb_not_before() {
        let mut m = machine("a57-like");
        caches_on(&mut m);
        m.write(A, &[9; 8]);
        m.dc(DcOp::Cvac, A);
        let mut b = [0u8; 8];
        m.dram_read(A, &mut b);
        assert_ne!(b, [9; 8], "queued, not performed (quiet adversary)");
        assert!(m.maintenance_pending());
        m.isb();
        assert!(m.maintenance_pending(), "ISB does not complete maintenance");
        m.dsb();
        m.dram_read(A, &mut b);
        assert_eq!(b, [9; 8]);
    }

    #[test]
    fn ivac_discards_dirty_data() {
        let mut m = machine("a57-like");
        caches_on(&mut m);
        m.write(A, &[7; 8]);
        m.dc(DcOp::Ivac, A);
        m.dsb();
        let mut b = [0u8; 8];
        m.dram_read(A, &mut b);
        assert_ne!(b, [7; 8]);
    }

    #[test]
    fn set_way_stops_at_the_system_cache() {
        let mut m = machine("tx2-slc");
        caches_on(&mut m);
        m.write(A, &[5; 8]);
        m.dc_set_way_all(SetWayOp::Cisw);
        m.dsb();
        let lines = m.cached_lines(A, 8);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].0, lines[0].2), (Level::System, true));
        m.dc(DcOp::Civac, A);
        m.dsb();
        let mut b = [0u8; 8];
        m.dram_read(A, &mut b);
        assert_eq!(
            b, [5; 8],
            "by-VA maintenance reaches an honouring system cache"
        );
    }

    #[test]
    fn system_cache_ignoring_va_keeps_dirty_data() {
        let mut m = machine("slc-ignores-va");
        caches_on(&mut m);
        m.write(A, &[5; 8]);
        m.dc(DcOp::Civac, A);
        m.dsb();
        let lines = m.cached_lines(A, 8);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].0, lines[0].2), (Level::System, true));
    }

    #[test]
    fn eviction_writes_back_dirty_lines() {
        let mut m = machine("a57-like");
        caches_on(&mut m);
        m.write(A, &[3; 8]);
        m.evict(Level::L1, A);
        m.evict(Level::L2, A);
        let mut b = [0u8; 8];
        m.dram_read(A, &mut b);
        assert_eq!(b, [3; 8]);
    }

    #[test]
    fn sctlr_write_takes_effect_at_isb() {
        let mut m = machine("a57-like");
        m.write_sctlr(ON);
        assert_eq!(m.sctlr(), Sctlr::default());
        assert_eq!(m.pending_sctlr(), Some(ON));
        m.isb();
        assert_eq!(m.sctlr(), ON);
    }

    #[test]
    fn fetch_buffer_survives_until_isb() {
        let mut m = machine("a57-like");
        m.dram_write(A, &[1; 4]);
        assert_eq!(m.execute(A, 4), vec![1; 4]);
        m.dram_write(A, &[2; 4]);
        assert_eq!(m.execute(A, 4), vec![1; 4], "fetched ahead");
        m.isb();
        assert_eq!(m.execute(A, 4), vec![2; 4]);
    }

    #[test]
    fn dc_zva_with_mmu_off_faults() {
        let mut m = machine("a57-like");
        m.dc(DcOp::Zva, A);
        assert!(m.fault().is_some());
        let mut m = machine("a57-like");
        caches_on(&mut m);
        m.dc(DcOp::Zva, A);
        assert!(m.fault().is_none());
        let mut b = [1u8; 8];
        m.read(A, &mut b);
        assert_eq!(b, [0; 8]);
    }

    #[test]
    fn ialluis_clears_every_alias_and_csw_keeps_lines() {
        let mut m = machine("a53-vipt");
        m.seed_iline(A, 1, &[1; 4]);
        m.seed_iline(A, 2, &[2; 4]);
        m.ic(IcOp::Ialluis, 0);
        m.dsb();
        assert!(m.icache_lines(A, 4).is_empty());
        caches_on(&mut m);
        m.write(A, &[4; 8]);
        m.dc_set_way_all(SetWayOp::Csw);
        m.dsb();
        let lines = m.cached_lines(A, 8);
        assert!(
            !lines.is_empty() && lines.iter().all(|l| !l.2),
            "clean, still cached"
        );
        let mut b = [0u8; 8];
        m.dram_read(A, &mut b);
        assert_eq!(b, [4; 8]);
    }

    #[test]
    fn gib_address_space_is_cheap() {
        let mut m = machine("a57-like");
        let top = 0xff_ffff_f000;
        m.dram_write(top, &[1]);
        m.dram_write(0x1000, &[1]);
        let mut b = [0u8; 1];
        m.dram_read(top, &mut b);
        assert_eq!(b, [1]);
        assert_eq!(m.dram.len(), 2, "two pages allocated for a 1 TiB span");
    }
}

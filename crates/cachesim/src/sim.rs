//! Running the whole path in the model: the old kernel's state, the
//! kernel's relocation, the purgatory's [`handoff::handoff`], and the checks
//! at kernel entry.

use crate::check::{
    check_code, check_cpu, check_data, check_mmu_off, execute_and_compare, Expected, Location,
    Rule, Violation,
};
use crate::config::CacheConfig;
use crate::cost::{counters_delta, CostModel, PhaseCost, Report};
use crate::machine::{Adversary, Counters, DcOp, IcOp, Level, Machine, Sctlr, SetWayOp, PAGE_SIZE};
use crate::mutate::{Mutant, Mutation, Site};
use crate::relocate::{build_entry_list, list_pages_needed, relocate_new_kernel, RelocStyle};
use crate::rng::Rng;
use handoff::pagetable::MemAttr;
use handoff::sha256::sha256_soft;
use handoff::{
    Flags, HandoffParams, MemRange, MmuConfig, Outcome, PurgatoryMemory, Regime, SegmentDigest,
    Sha256Engine, SCTLR_C, SCTLR_I, SCTLR_M,
};

/// The model as a [`handoff::Machine`]: what the purgatory and the kernel's
/// relocation run on.
#[derive(Debug, Clone)]
pub struct SimCpu {
    /// The memory system.
    pub machine: Machine,
    sctlr: u64,
    /// Bytes the code printed on the UART.
    pub console: Vec<u8>,
    /// Entry points branched to, in order.
    pub entered: Vec<u64>,
    /// Whether the CPU parked.
    pub parked: bool,
    /// Segments whose digest did not match (bit i = segment i), if parked
    /// for that reason.
    pub failed_segments: u32,
    code: Option<(u64, Vec<u8>)>,
    pc: u64,
    /// First stale instruction fetched while running `code`.
    pub stale_fetch: Option<u64>,
    /// First segment hashed while SCTLR.{M,C} were written but not in effect.
    pub hashed_uncached: Option<u64>,
    stack_frame: Option<(u64, Vec<u8>)>,
    /// First byte of the stack frame read back wrong.
    pub stack_corrupt: Option<u64>,
}

impl SimCpu {
    /// Wrap a machine; SCTLR as the machine has it committed.
    pub fn new(machine: Machine) -> Self {
        let s = machine.sctlr();
        let sctlr = (if s.m { SCTLR_M } else { 0 })
            | (if s.c { SCTLR_C } else { 0 })
            | (if s.i { SCTLR_I } else { 0 });
        Self {
            machine,
            sctlr,
            console: Vec::new(),
            entered: Vec::new(),
            parked: false,
            failed_segments: 0,
            code: None,
            pc: 0,
            stale_fetch: None,
            hashed_uncached: None,
            stack_frame: None,
            stack_corrupt: None,
        }
    }

    /// The code the CPU is running (the purgatory image): every barrier,
    /// SCTLR write and I-cache operation fetches its next line through the
    /// modelled instruction side and compares it with `bytes`.
    pub fn set_running_code(&mut self, start: u64, bytes: Vec<u8>) {
        self.code = Some((start, bytes));
        self.pc = 0;
    }

    /// The stack frame the running code keeps at `addr` (the top of its
    /// stack): written now, with the current SCTLR and mapping, and read
    /// back at every barrier, SCTLR write, I-cache operation and hash.
    pub fn set_stack_frame(&mut self, addr: u64, bytes: Vec<u8>) {
        self.machine.write(addr, &bytes);
        self.stack_frame = Some((addr, bytes));
    }

    fn check_stack(&mut self) {
        let Some((addr, want)) = &self.stack_frame else {
            return;
        };
        let (addr, want) = (*addr, want.clone());
        let mut got = vec![0u8; want.len()];
        self.machine.read(addr, &mut got);
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            self.stack_corrupt.get_or_insert(addr + i as u64);
        }
    }

    fn tick(&mut self) {
        self.check_stack();
        self.fetch_code();
    }

    /// Instruction fetches of the running code (no data access).
    fn fetch_code(&mut self) {
        let Some((start, bytes)) = &self.code else {
            return;
        };
        let il = self.machine.config().i_line;
        let len = bytes.len() as u64;
        if len < il {
            return;
        }
        let lines = len / il;
        // The next line in program order, and one the adversary picks (the
        // code running now may be anywhere in the image; its first and last
        // lines, where range maintenance goes wrong, more often).
        let next = (self.pc * il) % len;
        self.pc += 1;
        let r = self.machine.random();
        let pick = match r % 4 {
            0 => 0,
            1 => (lines - 1) * il,
            _ => (r >> 8) % lines * il,
        };
        let (start, bytes) = (*start, bytes.clone());
        for off in [next, pick] {
            let want =
                &bytes[usize::try_from(off).unwrap_or(0)..usize::try_from(off + il).unwrap_or(0)];
            let addr = start + off;
            let got = self.machine.execute(addr, il);
            if got != want && self.stale_fetch.is_none() {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                self.stale_fetch = Some(addr + i as u64);
            }
        }
    }

    /// `DC CSW`/`DC CISW` over every set and way of the local levels (not in
    /// the handoff trait; for replays of set/way-based sequences).
    pub fn dc_set_way_all(&mut self, op: SetWayOp) {
        self.machine.dc_set_way_all(op);
    }

    /// `DC ZVA` (not in the handoff trait).
    pub fn dc_zva(&mut self, va: u64) {
        self.machine.dc(DcOp::Zva, va);
    }
}

impl handoff::Machine for SimCpu {
    type Exit = ();
    fn read_u64(&mut self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.machine.read(pa, &mut b);
        u64::from_le_bytes(b)
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        self.machine.write(pa, &value.to_le_bytes());
    }
    fn ctr_el0(&mut self) -> u64 {
        self.machine.config().ctr_el0()
    }
    fn id_aa64isar0_el1(&mut self) -> u64 {
        0
    }
    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        // PARange = 0b0101 (48 bits), TGran4 = 0 (supported).
        0x5
    }
    fn current_el(&mut self) -> u8 {
        2
    }
    fn regime(&mut self) -> Regime {
        Regime::El2
    }
    fn sctlr(&mut self) -> u64 {
        self.sctlr
    }
    fn set_sctlr(&mut self, value: u64) {
        // No stack access between a preceding ISB and the MSR (what the
        // Falkor E1041 workaround needs): the frame is checked after it.
        self.fetch_code();
        self.sctlr = value;
        self.machine.write_sctlr(Sctlr {
            m: value & SCTLR_M != 0,
            c: value & SCTLR_C != 0,
            i: value & SCTLR_I != 0,
        });
        self.check_stack();
    }
    fn set_translation(&mut self, cfg: &MmuConfig) {
        self.machine.set_translation(Some(*cfg));
    }
    fn tlb_invalidate_all(&mut self) {
        self.machine.tlb_invalidate_all();
        self.tick();
    }
    fn dc_cvac(&mut self, va: u64) {
        self.machine.dc(DcOp::Cvac, va);
    }
    fn dc_civac(&mut self, va: u64) {
        self.machine.dc(DcOp::Civac, va);
    }
    fn dc_ivac(&mut self, va: u64) {
        self.machine.dc(DcOp::Ivac, va);
    }
    fn dc_cvau(&mut self, va: u64) {
        self.machine.dc(DcOp::Cvau, va);
    }
    fn ic_ivau(&mut self, va: u64) {
        self.machine.ic(IcOp::Ivau, va);
        self.tick();
    }
    fn ic_iallu(&mut self) {
        self.machine.ic(IcOp::Iallu, 0);
        self.tick();
    }
    fn dsb_sy(&mut self) {
        self.machine.dsb();
        self.tick();
    }
    fn dsb_ish(&mut self) {
        // One PE: inner-shareable completion is all there is to wait for.
        self.machine.dsb();
        self.tick();
    }
    fn isb(&mut self) {
        // Stack accesses before the ISB, none between it and what follows
        // (it may precede the MSR that turns the MMU off).
        self.check_stack();
        self.machine.isb();
        self.fetch_code();
    }
    fn sha256(&mut self, addr: u64, len: u64, _engine: Sha256Engine) -> [u8; 32] {
        self.tick();
        let on = SCTLR_M | SCTLR_C;
        let effective = self.machine.sctlr();
        if self.sctlr & on == on && !(effective.m && effective.c) {
            self.hashed_uncached.get_or_insert(addr);
        }
        // The hash runs in a function call: a new frame on the stack,
        // written with whatever SCTLR and mapping are in effect now.
        if let Some((a, old)) = self.stack_frame.take() {
            let frame = SimSegment::generated(a, old.len(), addr).bytes;
            self.set_stack_frame(a, frame);
        }
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
        for (i, chunk) in data.chunks_mut(64).enumerate() {
            self.machine.read(addr + 64 * i as u64, chunk);
        }
        sha256_soft(&data)
    }
    fn putc(&mut self, _uart: u64, byte: u8) {
        self.console.push(byte);
    }
    fn enter_kernel(&mut self, entry: u64, dtb: u64) {
        // The code got here by returning through its frames (MMU off now).
        self.check_stack();
        self.machine.set_reg(0, dtb);
        for r in 1..4 {
            self.machine.set_reg(r, 0);
        }
        self.machine.enter(entry);
        self.entered.push(entry);
    }
    fn park(&mut self) {
        self.parked = true;
    }
}

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

    fn kernel(&self) -> Option<&SimSegment> {
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
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::KexecLoad(RelocStyle::MmuOn),
            flags: 0,
            adversary: None,
            purgatory_base: None,
        }
    }
}

/// The purgatory's memory layout in the model.
const PURG_IMAGE_PAGES: u64 = 1;
const PURG_TABLE_PAGES: u64 = 6;
const PURG_STACK_PAGES: u64 = 1;
/// Bytes of stack frame the modelled purgatory keeps at its stack top.
const STACK_FRAME: u64 = 128;
const SZ_2M: u64 = 0x20_0000;
const SZ_64M: u64 = 0x400_0000;

/// Everything laid out for one run.
#[derive(Debug, Clone)]
struct Layout {
    segs: Vec<(u64, Vec<u8>)>,
    kernel: (u64, Vec<u8>),
    purg_image: (u64, Vec<u8>),
    own: PurgatoryMemory,
    params: HandoffParams,
}

fn layout(plan: &SimPlan, flags: u64, purgatory_base: Option<u64>) -> Result<Layout, String> {
    let segs: Vec<(u64, Vec<u8>)> = plan.segments.iter().map(|s| (s.addr, s.padded())).collect();
    let kernel = plan
        .kernel()
        .map(|k| (k.addr, k.padded()))
        .ok_or("entry is not inside any segment")?;
    let top = segs
        .iter()
        .map(|(a, b)| a + b.len() as u64)
        .max()
        .unwrap_or(0);
    let base = purgatory_base.unwrap_or(top.div_ceil(SZ_2M) * SZ_2M + SZ_2M);
    let image = MemRange::new(base, PURG_IMAGE_PAGES * PAGE_SIZE);
    let tables = MemRange::new(image.start + image.len, PURG_TABLE_PAGES * PAGE_SIZE);
    let stack = MemRange::new(tables.start + tables.len, PURG_STACK_PAGES * PAGE_SIZE);
    let own = PurgatoryMemory {
        image,
        tables,
        stack,
    };
    let purg_end = stack.start + stack.len;
    if !base.is_multiple_of(PAGE_SIZE)
        || segs
            .iter()
            .any(|(a, b)| *a < purg_end && base < a + b.len() as u64)
    {
        return Err(format!(
            "the purgatory's memory {base:#x}..{purg_end:#x} is not page aligned or overlaps a segment"
        ));
    }
    let purg = SimSegment::generated(base, usize::try_from(image.len).unwrap_or(4096), 0x9097);
    let mut params = HandoffParams {
        entry: plan.entry,
        dtb: plan.dtb,
        flags: Flags(flags),
        ..HandoffParams::default()
    };
    for (a, b) in &segs {
        params
            .push_segment(SegmentDigest {
                addr: *a,
                len: b.len() as u64,
                sha256: sha256_soft(b),
            })
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(Layout {
        segs,
        kernel,
        purg_image: (purg.addr, purg.bytes),
        own,
        params,
    })
}

fn lines(start: u64, len: u64, line: u64) -> impl Iterator<Item = u64> {
    let first = start / line * line;
    (first..start + len).step_by(usize::try_from(line).unwrap_or(64))
}

fn random_level(rng: &mut Rng, cfg: &CacheConfig) -> Level {
    let n = if cfg.system_cache.is_some() { 3 } else { 2 };
    match rng.below(n) {
        0 => Level::L1,
        1 => Level::L2,
        _ => Level::System,
    }
}

fn garbage(rng: &mut Rng, n: u64) -> Vec<u8> {
    (0..n).map(|_| rng.byte()).collect()
}

fn icache_tags(cfg: &CacheConfig) -> u64 {
    match cfg.icache {
        crate::config::ICachePolicy::Pipt => 1,
        crate::config::ICachePolicy::Vipt { colours } => colours,
        crate::config::ICachePolicy::AsidTagged => 4,
    }
}

/// Stale I-cache and fetch-buffer lines over `code` (left by the old kernel).
fn seed_stale_code(m: &mut Machine, rng: &mut Rng, start: u64, len: u64) {
    let cfg = m.config().clone();
    for l in lines(start, len, cfg.i_line) {
        if !cfg.dic && rng.chance(400) {
            let tag = rng.below(icache_tags(&cfg));
            let g = garbage(rng, cfg.i_line);
            m.seed_iline(l, tag, &g);
        }
        if rng.chance(200) {
            let g = garbage(rng, cfg.i_line);
            m.seed_fetch_buffer(l, &g);
        }
    }
}

/// The old kernel's state and the relocation; returns the CPU at purgatory
/// entry.
fn old_kernel<P>(
    lay: &Layout,
    cfg: &CacheConfig,
    seed: u64,
    adv: Option<Adversary>,
    scenario: Scenario,
    cpu: &mut Mutant<SimCpu>,
    relocate: &mut P,
) -> Counters
where
    P: FnMut(&mut Mutant<SimCpu>, u64, u64, u64, RelocStyle) + ?Sized,
{
    let (style, kexec_file) = match scenario {
        Scenario::KexecLoad(style) => (style, false),
        Scenario::KexecFile | Scenario::PurgatoryOnly => (RelocStyle::MmuOn, true),
    };
    let mut rng = Rng::new(seed ^ 0x01d_4e7e1);
    let m = &mut cpu.inner_mut().machine;
    if let Some(a) = adv {
        m.set_adversary(a);
    }
    m.phase("old kernel");
    m.write_sctlr(Sctlr {
        m: true,
        c: true,
        i: true,
    });
    m.isb();
    // Destinations: the segments and the purgatory's whole memory.
    let purg_len = lay.own.image.len + lay.own.tables.len + lay.own.stack.len;
    let mut dests: Vec<(u64, Vec<u8>)> = lay.segs.clone();
    let mut purg_bytes = lay.purg_image.1.clone();
    purg_bytes.resize(usize::try_from(purg_len).unwrap_or(0), 0);
    if !kexec_file {
        dests.push((lay.purg_image.0, purg_bytes));
    }
    // Sources and the entry list, far above.
    let top = dests
        .iter()
        .map(|(a, b)| a + b.len() as u64)
        .max()
        .unwrap_or(0);
    let src_base = (top + SZ_64M) / SZ_64M * SZ_64M + SZ_64M;
    let mut next = src_base;
    let mut pairs = Vec::new();
    let mut sources = Vec::new();
    for (dest, bytes) in &dests {
        let mut srcs = Vec::new();
        for page in bytes.chunks(usize::try_from(PAGE_SIZE).unwrap_or(4096)) {
            srcs.push(next);
            sources.push((next, page.to_vec()));
            // Scatter the sources (the kernel allocates them anywhere).
            next += PAGE_SIZE * (1 + rng.below(3));
        }
        pairs.push((*dest, srcs));
    }
    let n_list = list_pages_needed(&pairs) as u64;
    let list_pages: Vec<u64> = (0..n_list).map(|i| next + (i + 1) * PAGE_SIZE).collect();
    let (list, head) = build_entry_list(&pairs, &list_pages);
    for (d, b) in &dests {
        m.add_data_range(*d, b.len() as u64);
    }
    for (s, b) in &sources {
        m.add_data_range(*s, b.len() as u64);
    }
    for p in &list_pages {
        m.add_data_range(*p, PAGE_SIZE);
    }
    m.add_exec_range(lay.kernel.0, lay.kernel.1.len() as u64);
    if !kexec_file {
        m.add_exec_range(lay.own.image.start, lay.own.image.len);
    }
    // Stale lines over the destinations.
    for (d, b) in &dests {
        let last = (d + b.len() as u64 - 1) / cfg.d_line * cfg.d_line;
        for l in lines(*d, b.len() as u64, cfg.d_line) {
            let edge = l == *d || l == last;
            let r = if edge { rng.below(40) } else { rng.below(100) };
            if r < 35 {
                let g = garbage(&mut rng, cfg.d_line);
                m.seed_dline(random_level(&mut rng, cfg), l, r < 20, &g);
            }
        }
    }
    seed_stale_code(m, &mut rng, lay.kernel.0, lay.kernel.1.len() as u64);
    seed_stale_code(m, &mut rng, lay.own.image.start, lay.own.image.len);
    // The old kernel wrote the sources and the list with its caches on.
    for (s, b) in &sources {
        for (i, w) in b.chunks(64).enumerate() {
            m.write(s + 64 * i as u64, w);
        }
    }
    for (p, words) in list_pages.iter().zip(&list) {
        for (i, w) in words.iter().enumerate() {
            m.write(p + 8 * i as u64, &w.to_le_bytes());
        }
    }
    if style != RelocStyle::MmuOn {
        // Before 5.16 the kernel cleaned the list and the sources to the PoC
        // (kexec_list_flush) so the MMU-off relocation could read them.
        for (s, b) in &sources {
            for l in lines(*s, b.len() as u64, cfg.d_line) {
                m.dc(DcOp::Civac, l);
            }
        }
        for p in &list_pages {
            for l in lines(*p, PAGE_SIZE, cfg.d_line) {
                m.dc(DcOp::Civac, l);
            }
        }
        m.dsb();
    }
    m.phase("relocate");
    cpu.set_phase("relocate");
    let before = cpu.inner().machine.counters();
    if kexec_file {
        relocate(cpu, head, lay.params.entry, lay.params.dtb, style);
    } else {
        relocate(cpu, head, lay.own.image.start, 0, style);
    }
    before
}

/// The purgatory's hostile-but-legal entry state (see
/// [`Scenario::PurgatoryOnly`]).
fn purgatory_entry_state(
    lay: &Layout,
    cfg: &CacheConfig,
    seed: u64,
    adv: Option<Adversary>,
    flags: u64,
    m: &mut Machine,
) {
    let mut rng = Rng::new(seed ^ 0x9_0e57);
    // Only a purgatory that verifies with its caches on cleans the segments
    // itself; with NO_VERIFY or NO_CACHES it relies on the images being at
    // the PoC with no line cached (what the kernel's relocation provides).
    let hostile_data = flags & (Flags::NO_VERIFY | Flags::NO_CACHES) == 0;
    if let Some(a) = adv {
        m.set_adversary(a);
    }
    m.phase("purgatory entry state");
    m.dram_write(lay.purg_image.0, &lay.purg_image.1);
    for (a, b) in &lay.segs {
        m.dram_write(*a, b);
        m.add_data_range(*a, b.len() as u64);
        let last = (a + b.len() as u64 - 1) / cfg.d_line * cfg.d_line;
        for l in lines(*a, b.len() as u64, cfg.d_line) {
            if !hostile_data {
                break;
            }
            // Range edges are where maintenance loops go wrong: be hostile
            // there more often.
            let edge = l == *a || l == last;
            // Every other seed, the edges are always stale clean lines.
            let r = if edge && seed.is_multiple_of(2) {
                60
            } else {
                rng.below(100)
            };
            let (dirty, clean, stale) = if edge { (30, 40, 80) } else { (25, 35, 45) };
            let off = usize::try_from(l - a).unwrap_or(0);
            let n = usize::try_from(cfg.d_line).unwrap_or(64).min(b.len() - off);
            if r < dirty {
                // Newest data only in a dirty line; DRAM stale.
                m.seed_dline(random_level(&mut rng, cfg), l, true, &b[off..off + n]);
                let g = garbage(&mut rng, n as u64);
                m.dram_write(l, &g);
            } else if r < clean {
                m.seed_dline(random_level(&mut rng, cfg), l, false, &b[off..off + n]);
            } else if r < stale {
                // A stale clean line (what a copy with the caches off
                // leaves behind): DRAM right, the cache wrong.
                let g = garbage(&mut rng, n as u64);
                m.seed_dline(random_level(&mut rng, cfg), l, false, &g);
            }
        }
    }
    // Stale clean lines over the purgatory's whole memory (its image too: it
    // was loaded like its tables and stack, and one that is fetched as code
    // once SCTLR.I is set runs garbage).
    for r in [lay.own.image, lay.own.tables, lay.own.stack] {
        let last = (r.start + r.len - 1) / cfg.d_line * cfg.d_line;
        for l in lines(r.start, r.len, cfg.d_line) {
            let edge = l == r.start || l == last;
            if rng.chance(if edge { 500 } else { 300 }) {
                let g = garbage(&mut rng, cfg.d_line);
                m.seed_dline(random_level(&mut rng, cfg), l, false, &g);
            }
        }
    }
    m.add_data_range(lay.own.image.start, lay.own.image.len);
    m.add_data_range(lay.own.tables.start, lay.own.tables.len);
    m.add_exec_range(lay.kernel.0, lay.kernel.1.len() as u64);
    m.add_exec_range(lay.own.image.start, lay.own.image.len);
    seed_stale_code(m, &mut rng, lay.kernel.0, lay.kernel.1.len() as u64);
    // SCTLR.I is off: the I-cache may hold anything for the purgatory too.
    if !cfg.dic {
        for l in lines(lay.own.image.start, lay.own.image.len, cfg.i_line) {
            if rng.chance(400) {
                let tag = rng.below(icache_tags(cfg));
                let g = garbage(&mut rng, cfg.i_line);
                m.seed_iline(l, tag, &g);
            }
        }
    }
}

/// The result of one run: the verdict and the sites the code went through.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Report or the first violation.
    pub result: Result<Report, Violation>,
    /// Maintenance sites, in program order.
    pub sites: Vec<Site>,
}

fn phase_cost(name: &'static str, c: Counters) -> PhaseCost {
    PhaseCost {
        name,
        counters: c,
        cycles: CostModel::default().cycles(&c),
    }
}

/// The purgatory code under test: by default [`handoff::handoff`].
pub type PurgatoryFn<'a> = dyn FnMut(&mut Mutant<SimCpu>, &HandoffParams, &PurgatoryMemory) + 'a;
/// The relocation code under test: by default [`relocate_new_kernel`].
pub type RelocateFn<'a> = dyn FnMut(&mut Mutant<SimCpu>, u64, u64, u64, RelocStyle) + 'a;

/// The default purgatory: the real [`handoff::handoff`].
pub fn real_handoff(cpu: &mut Mutant<SimCpu>, p: &HandoffParams, own: &PurgatoryMemory) {
    if let Outcome::Parked((), handoff::Failure::DigestMismatch { failed }) =
        handoff::handoff(cpu, p, own)
    {
        cpu.inner_mut().failed_segments = failed;
    }
}

/// The default relocation: [`relocate_new_kernel`].
pub fn real_relocate(cpu: &mut Mutant<SimCpu>, head: u64, entry: u64, x0: u64, style: RelocStyle) {
    relocate_new_kernel(cpu, head, entry, x0, style);
}

/// Run everything with explicit code under test and an optional mutation.
pub fn run_with(
    plan: &SimPlan,
    cfg: &CacheConfig,
    seed: u64,
    opts: &SimOptions,
    mutation: Option<(&[Site], Mutation)>,
    relocate: &mut RelocateFn<'_>,
    purgatory: &mut PurgatoryFn<'_>,
) -> RunResult {
    let lay = match layout(plan, opts.flags, opts.purgatory_base) {
        Ok(l) => l,
        Err(e) => {
            let m = Machine::new(cfg.clone(), seed);
            return RunResult {
                result: Err(Violation::new(
                    &m,
                    seed,
                    Rule::NoEntry,
                    None,
                    Location::Register,
                    e,
                )),
                sites: Vec::new(),
            };
        }
    };
    let machine = Machine::new(cfg.clone(), seed);
    let sim = SimCpu::new(machine);
    let mut cpu = match mutation {
        Some((sites, mu)) => Mutant::new_unit(sim, sites, mu),
        None => Mutant::recorder(sim),
    };
    let mut phases = Vec::new();
    let result = (|| {
        match opts.scenario {
            Scenario::KexecFile => {
                let before = old_kernel(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    Scenario::KexecFile,
                    &mut cpu,
                    relocate,
                );
                let c = counters_delta(&cpu.inner().machine.counters(), &before);
                phases.push(phase_cost("relocate", c));
            }
            Scenario::KexecLoad(style) => {
                let before = old_kernel(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    Scenario::KexecLoad(style),
                    &mut cpu,
                    relocate,
                );
                let c = counters_delta(&cpu.inner().machine.counters(), &before);
                phases.push(phase_cost("relocate", c));
                if cpu.inner().entered.last() != Some(&lay.own.image.start) {
                    let m = &cpu.inner().machine;
                    return Err(Violation::new(
                        m,
                        seed,
                        Rule::NoEntry,
                        None,
                        Location::Register,
                        "the relocation did not branch to the purgatory".into(),
                    ));
                }
                let m = &mut cpu.inner_mut().machine;
                if let Some(f) = m.fault().cloned() {
                    return Err(Violation::new(
                        m,
                        seed,
                        Rule::Fault,
                        Some(f.addr),
                        Location::Register,
                        f.what,
                    ));
                }
                // The purgatory's entry contract (ARM64-KEXEC.md §3): MMU
                // and caches off, its code what the I-side fetches.
                let code = Expected {
                    addr: lay.purg_image.0,
                    bytes: &lay.purg_image.1,
                };
                check_mmu_off(m, seed, "to the purgatory")?;
                check_code(m, seed, code)?;
                execute_and_compare(m, seed, code, lay.purg_image.1.len())?;
            }
            Scenario::PurgatoryOnly => {
                purgatory_entry_state(
                    &lay,
                    cfg,
                    seed,
                    opts.adversary,
                    opts.flags,
                    &mut cpu.inner_mut().machine,
                );
            }
        }
        if opts.scenario != Scenario::KexecFile {
            run_purgatory(&mut cpu, &lay, seed, purgatory, &mut phases)?;
        }
        let m = &cpu.inner().machine;
        if let Some(f) = m.fault() {
            return Err(Violation::new(
                m,
                seed,
                Rule::Fault,
                Some(f.addr),
                Location::Register,
                f.what.clone(),
            ));
        }
        if cpu.inner().entered.last() != Some(&plan.entry) {
            return Err(Violation::new(
                m,
                seed,
                Rule::NoEntry,
                None,
                Location::Register,
                "the kernel was not entered".into(),
            ));
        }
        check_cpu(m, seed, lay.params.dtb)?;
        let images: Vec<Expected<'_>> = lay
            .segs
            .iter()
            .map(|(a, b)| Expected { addr: *a, bytes: b })
            .collect();
        check_data(m, seed, &images)?;
        let kernel = Expected {
            addr: lay.kernel.0,
            bytes: &lay.kernel.1,
        };
        check_code(m, seed, kernel)?;
        let il = usize::try_from(cfg.i_line).unwrap_or(64);
        let m = &mut cpu.inner_mut().machine;
        let entry = Expected {
            addr: plan.entry,
            bytes: &lay.kernel.1[usize::try_from(plan.entry - lay.kernel.0).unwrap_or(0)..],
        };
        execute_and_compare(m, seed, entry, 2 * il)?;
        Ok(())
    })();
    let sites = cpu.sites().to_vec();
    let checked: u64 = lay.segs.iter().map(|(_, b)| b.len() as u64).sum();
    RunResult {
        result: result.map(|()| Report {
            config: cfg.name,
            ctr_el0: cfg.ctr_el0(),
            seed,
            checked_bytes: checked,
            phases,
        }),
        sites,
    }
}

/// The purgatory phase: run `purgatory` from its entry state, record its
/// cost, and report what it got wrong on the way.
fn run_purgatory(
    cpu: &mut Mutant<SimCpu>,
    lay: &Layout,
    seed: u64,
    purgatory: &mut PurgatoryFn<'_>,
    phases: &mut Vec<PhaseCost>,
) -> Result<(), Violation> {
    let start = cpu.inner().machine.counters();
    cpu.inner_mut().machine.phase("purgatory");
    cpu.set_phase("purgatory");
    let entered_before = cpu.inner().entered.len();
    cpu.inner_mut()
        .set_running_code(lay.purg_image.0, lay.purg_image.1.clone());
    // The old kernel's regime (everything Normal write-back) may have left
    // TLB entries for the purgatory's own pages.
    for r in [lay.own.image, lay.own.tables, lay.own.stack] {
        for page in (r.start..r.start + r.len).step_by(usize::try_from(PAGE_SIZE).unwrap_or(4096)) {
            cpu.inner_mut().machine.seed_tlb(page, MemAttr::NormalWb);
        }
    }
    // The entry code's and purgatory_main's frames at the top of the stack.
    let top = lay.own.stack.start + lay.own.stack.len;
    let frame = SimSegment::generated(
        top - STACK_FRAME,
        usize::try_from(STACK_FRAME).unwrap_or(128),
        0x57ac,
    )
    .bytes;
    cpu.inner_mut().set_stack_frame(top - STACK_FRAME, frame);
    purgatory(cpu, &lay.params, &lay.own);
    cpu.inner_mut().code = None;
    cpu.inner_mut().stack_frame = None;
    let m = &cpu.inner().machine;
    if let Some(a) = cpu.inner().stack_corrupt {
        return Err(Violation::new(
            m,
            seed,
            Rule::StackCorrupted,
            Some(a),
            Location::Dram,
            "the purgatory read back its stack frame wrong".into(),
        ));
    }
    if let Some(a) = cpu.inner().stale_fetch {
        return Err(Violation::new(
            m,
            seed,
            Rule::StaleCodeExecuted,
            Some(a),
            Location::ICache(0),
            "the purgatory fetched stale instructions of its own image".into(),
        ));
    }
    phases.push(phase_cost(
        "purgatory",
        counters_delta(&m.counters(), &start),
    ));
    if let Some(f) = m.fault() {
        return Err(Violation::new(
            m,
            seed,
            Rule::Fault,
            Some(f.addr),
            Location::Register,
            f.what.clone(),
        ));
    }
    if let Some(a) = cpu.inner().hashed_uncached {
        return Err(Violation::new(
            m,
            seed,
            Rule::CachesNotOn,
            Some(a),
            Location::Register,
            "the purgatory set SCTLR.{M,C,I} but hashed before the write took effect".into(),
        ));
    }
    if cpu.inner().parked {
        let failed = cpu.inner().failed_segments;
        let seg = lay
            .segs
            .iter()
            .enumerate()
            .find(|(i, _)| failed & (1 << i) != 0)
            .map(|(_, (a, _))| *a);
        return Err(Violation::new(
            m,
            seed,
            Rule::VerificationFailed,
            seg,
            Location::Dram,
            format!(
                "purgatory parked: digest mismatch, failed-segment mask {failed:#x} \
                     (it hashed bytes other than the image)"
            ),
        ));
    }
    if cpu.inner().entered.len() == entered_before {
        return Err(Violation::new(
            m,
            seed,
            Rule::NoEntry,
            None,
            Location::Register,
            "the purgatory returned without entering the kernel".into(),
        ));
    }
    Ok(())
}

/// Run the whole `kexec_load` path (Linux >= 5.16 relocation, the real
/// purgatory handoff) for `plan` on `config` with adversary `seed`.
pub fn simulate(plan: &SimPlan, config: &CacheConfig, seed: u64) -> Result<Report, Violation> {
    simulate_with(plan, config, seed, &SimOptions::default())
}

/// [`simulate`] with options.
pub fn simulate_with(
    plan: &SimPlan,
    config: &CacheConfig,
    seed: u64,
    opts: &SimOptions,
) -> Result<Report, Violation> {
    run_with(
        plan,
        config,
        seed,
        opts,
        None,
        &mut real_relocate,
        &mut real_handoff,
    )
    .result
}

/// The outcome of many seeds on one configuration (for `kexec sim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSweep {
    /// Seeds that passed (all of them, on success).
    pub runs: u64,
    /// The report of the first seed.
    pub first: Report,
}

/// Run `seeds` adversary seeds of [`simulate_with`]; stop at the first
/// violation.
pub fn simulate_seeds(
    plan: &SimPlan,
    config: &CacheConfig,
    seeds: std::ops::Range<u64>,
    opts: &SimOptions,
) -> Result<SeedSweep, Violation> {
    let mut first = None;
    let mut runs = 0;
    for seed in seeds {
        let r = simulate_with(plan, config, seed, opts)?;
        first.get_or_insert(r);
        runs += 1;
    }
    match first {
        Some(first) => Ok(SeedSweep { runs, first }),
        None => {
            let m = Machine::new(config.clone(), 0);
            Err(Violation::new(
                &m,
                0,
                Rule::NoEntry,
                None,
                Location::Register,
                "no seeds to run".into(),
            ))
        }
    }
}

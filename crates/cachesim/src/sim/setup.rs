//! The state a run starts from: the layout of the segments and the
//! purgatory's memory, the old kernel's caches and the relocation it
//! runs ([`Scenario::KexecLoad`], [`Scenario::KexecFile`]), or the
//! purgatory's hostile-but-legal entry state ([`Scenario::PurgatoryOnly`]).

use super::cpu::SimCpu;
use super::plan::{Scenario, SimPlan, SimSegment};
use super::smp::{secondary_mpidr, SmpOptions};
use crate::config::{CacheConfig, ICachePolicy};
use crate::memory::{Adversary, Counters, DcOp, Level, MemorySystem, Sctlr, PAGE_SIZE};
use crate::mutant::Mutant;
use crate::relocate::{build_entry_list, list_pages_needed, RelocStyle};
use crate::rng::Rng;
use handoff::sha256::sha256_soft;
use handoff::{Flags, HandoffParams, MemRange, PurgatoryMemory, SegmentRange, MAX_SECONDARIES};

/// The purgatory's memory layout in the model.
const PURG_IMAGE_PAGES: u64 = 1;
const PURG_TABLE_PAGES: u64 = 8;
const PURG_STACK_PAGES: u64 = 1;
/// The model's digest chunks: 4 KiB (the smallest the header allows), so
/// that the sampled windows of a real plan, and the small segments of the
/// campaigns, span several chunks and their boundaries are exercised (the
/// loader's 2 MiB chunks would make every modelled segment one chunk).
pub const MODEL_CHUNK_SHIFT: u32 = handoff::params::MIN_CHUNK_SHIFT;
/// The modelled console's address (QEMU `virt`'s PL011).
const MODEL_UART: u64 = 0x0900_0000;
/// Bytes of stack frame the modelled purgatory keeps at its stack top.
pub(super) const STACK_FRAME: u64 = 128;
const SZ_2M: u64 = 0x20_0000;
const SZ_64M: u64 = 0x400_0000;

/// Everything laid out for one run.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// Each segment's bytes (`bufsz`): the range the loader's header
    /// carries, which the purgatory hashes and maintains, and which the
    /// checks at the branch cover.
    pub(super) segs: Vec<(u64, Vec<u8>)>,
    /// Each segment as it sits in memory: the bytes zero-padded to whole
    /// pages (`memsz`), what the kernel loads and relocates.
    pub(super) memory: Vec<(u64, Vec<u8>)>,
    pub(super) kernel: (u64, Vec<u8>),
    pub(super) purg_image: (u64, Vec<u8>),
    pub(super) own: PurgatoryMemory,
    /// The digest table, where the loader puts it: right after the
    /// purgatory's memory, in its segment (empty with `NO_VERIFY`).
    pub(super) table: (u64, Vec<u8>),
    pub(super) params: HandoffParams,
}

impl Layout {
    /// The purgatory's segment as the kernel loads it: its image, zeros up
    /// to the end of its memory (tables, stack), then the digest table.
    pub(super) fn purgatory_segment(&self) -> Vec<u8> {
        let own = &self.own;
        let mut bytes = self.purg_image.1.clone();
        let len = own.image.len + own.tables.len + own.stack.len + own.mailbox.len;
        bytes.resize(usize::try_from(len).unwrap_or(0), 0);
        bytes.extend_from_slice(&self.table.1);
        bytes
    }
}

pub(super) fn layout(
    plan: &SimPlan,
    flags: u64,
    purgatory_base: Option<u64>,
    smp: Option<&SmpOptions>,
) -> Result<Layout, String> {
    let segs: Vec<(u64, Vec<u8>)> = plan
        .segments
        .iter()
        .map(|s| (s.addr, s.bytes.clone()))
        .collect();
    let memory: Vec<(u64, Vec<u8>)> = plan.segments.iter().map(|s| (s.addr, s.padded())).collect();
    let kernel = plan
        .kernel()
        .map(|k| (k.addr, k.bytes.clone()))
        .ok_or("entry is not inside any segment")?;
    let top = memory
        .iter()
        .map(|(a, b)| a + b.len() as u64)
        .max()
        .unwrap_or(0);
    let base = purgatory_base.unwrap_or(top.div_ceil(SZ_2M) * SZ_2M + SZ_2M);
    let image = MemRange::new(base, PURG_IMAGE_PAGES * PAGE_SIZE);
    let tables = MemRange::new(image.start + image.len, PURG_TABLE_PAGES * PAGE_SIZE);
    // With secondaries: a page of stack for each (slot s: the page below
    // s + 1), the boot CPU's above them, and a page of mailbox.
    let stack_pages = PURG_STACK_PAGES
        + if smp.is_some() {
            MAX_SECONDARIES as u64
        } else {
            0
        };
    let stack = MemRange::new(tables.start + tables.len, stack_pages * PAGE_SIZE);
    let mailbox_len = if smp.is_some() { PAGE_SIZE } else { 0 };
    let own = PurgatoryMemory {
        image,
        tables,
        stack,
        mailbox: MemRange::new(stack.start + stack.len, mailbox_len),
    };
    let mut params = HandoffParams {
        entry: plan.entry,
        dtb: plan.dtb,
        // A console (mapped Device while the MMU is on), so what the
        // purgatory reports can be checked against what it did.
        uart: MODEL_UART,
        flags: Flags(flags),
        ..HandoffParams::default()
    };
    if let Some(s) = smp {
        params.psci = s.conduit;
        let boot = s.boot_listed.then_some(0);
        let present = (1..=s.secondaries).map(secondary_mpidr);
        let missing = (s.secondaries + 1..=s.secondaries + s.missing).map(secondary_mpidr);
        let others: Vec<u64> = if s.missing_first {
            missing.chain(present).collect()
        } else {
            present.chain(missing).collect()
        };
        for mpidr in boot.into_iter().chain(others).take(MAX_SECONDARIES) {
            params.push_secondary(mpidr).map_err(|e| format!("{e:?}"))?;
        }
    }
    for (a, b) in &segs {
        params
            .push_segment(SegmentRange {
                addr: *a,
                len: b.len() as u64,
            })
            .map_err(|e| format!("{e:?}"))?;
    }
    let table_start = own.mailbox.start + own.mailbox.len;
    params
        .set_digest_table(MODEL_CHUNK_SHIFT, table_start - base)
        .map_err(|e| format!("{e:?}"))?;
    let mut table = Vec::new();
    for c in params.chunks() {
        let (a, b) = &segs[c.segment];
        let from = usize::try_from(c.addr - a).unwrap_or(0);
        let to = from + usize::try_from(c.len).unwrap_or(0);
        table.extend_from_slice(&sha256_soft(&b[from..to]));
    }
    let purg_end = table_start + table.len() as u64;
    if !base.is_multiple_of(PAGE_SIZE)
        || memory
            .iter()
            .any(|(a, b)| *a < purg_end && base < a + b.len() as u64)
    {
        return Err(format!(
            "the purgatory's memory {base:#x}..{purg_end:#x} is not page aligned or overlaps a segment"
        ));
    }
    let purg = SimSegment::generated(base, usize::try_from(image.len).unwrap_or(4096), 0x9097);
    Ok(Layout {
        segs,
        memory,
        kernel,
        purg_image: (purg.addr, purg.bytes),
        own,
        table: (table_start, table),
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

pub(super) fn icache_tags(cfg: &CacheConfig) -> u64 {
    match cfg.icache {
        ICachePolicy::Pipt => 1,
        ICachePolicy::Vipt { colours } => colours,
        ICachePolicy::AsidTagged => 4,
    }
}

/// Stale I-cache and fetch-buffer lines over `code` (left by the old kernel).
fn seed_stale_code(m: &mut MemorySystem, rng: &mut Rng, start: u64, len: u64) {
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
pub(super) fn old_kernel<P>(
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
    let m = &mut cpu.inner_mut().memory;
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
    // Destinations: the segments and the purgatory's whole segment (its
    // memory and the digest table after it).
    let mut dests: Vec<(u64, Vec<u8>)> = lay.memory.clone();
    if !kexec_file {
        dests.push((lay.purg_image.0, lay.purgatory_segment()));
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
    let before = cpu.inner().memory.counters();
    if kexec_file {
        relocate(cpu, head, lay.params.entry, lay.params.dtb, style);
    } else {
        relocate(cpu, head, lay.own.image.start, 0, style);
    }
    before
}

/// The purgatory's hostile-but-legal entry state (see
/// [`Scenario::PurgatoryOnly`]).
pub(super) fn purgatory_entry_state(
    lay: &Layout,
    cfg: &CacheConfig,
    seed: u64,
    adv: Option<Adversary>,
    flags: u64,
    m: &mut MemorySystem,
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
    // The digest table is not a data range of the adversary: it picks a
    // range, then a line in it, so the few lines of a table would be
    // evicted far more often than a segment's and its stale lines (below)
    // would be gone before the purgatory reads them. Speculative fills it
    // would miss read DRAM, which is right.
    m.dram_write(lay.table.0, &lay.table.1);
    for (a, b) in &lay.memory {
        m.dram_write(*a, b);
        m.add_data_range(*a, b.len() as u64);
    }
    // Hostile lines only over what the loader's header carries (the
    // purgatory's contract: it maintains those ranges, the segments and the
    // digest table; the rest of each page was zeroed and flushed by the
    // kernel at load time, and is not checked at the branch). A partial
    // last line is seeded whole.
    let table = (!lay.table.1.is_empty()).then_some(&lay.table);
    for (a, b) in lay.segs.iter().chain(table) {
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
    for r in [
        lay.own.image,
        lay.own.tables,
        lay.own.stack,
        lay.own.mailbox,
    ] {
        if r.len == 0 {
            continue;
        }
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
    // SCTLR.I is off. In the permissive model the I-cache is not used
    // while it is off, so it may hold anything for the purgatory too (only
    // its IC IALLU before SCTLR.I is set matters). In the conservative one
    // (lookups and fills while SCTLR.I = 0), stale lines over the code the
    // CPU is running would be fetched at its first instruction, whatever it
    // does: at a crash entry (cpu_soft_restart, no IC IALLU since 5.16)
    // there are none, because Linux emptied the I-cache when it enabled its
    // MMU at boot (set_sctlr_el1's IC IALLU, arch/arm64/include/asm/
    // assembler.h) and the crash region is never mapped executable since
    // (reserved at boot; the linear map is execute-never), so no fetch,
    // speculative or not, could allocate a line of it; and the load-time
    // flush (kexec_segment_flush, arch/arm64/kernel/machine_kexec.c) left
    // the PoC right, which is where fills come from while SCTLR.I = 0.
    if !cfg.dic && !m.icache_used_while_disabled() {
        for l in lines(lay.own.image.start, lay.own.image.len, cfg.i_line) {
            if rng.chance(400) {
                let tag = rng.below(icache_tags(cfg));
                let g = garbage(&mut rng, cfg.i_line);
                m.seed_iline(l, tag, &g);
            }
        }
    }
}

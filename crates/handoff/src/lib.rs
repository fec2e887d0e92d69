//! The kexec handoff sequence for arm64, written once.
//!
//! The purgatory's steps (enable caches, hash, clean to the PoC, disable,
//! invalidate the I-cache, enter the kernel) are generic over a small trait
//! for "memory + system registers + maintenance instructions", [`Machine`].
//! On aarch64 the purgatory implements it with the real instructions;
//! `cachesim` implements it with a model of the ARMv8 memory system and checks
//! the result.
//!
//! The sequence ([`handoff`]), in order:
//! 1. validate the parameters;
//! 2. unless `NO_VERIFY`/`NO_CACHES`: build identity page tables in the
//!    purgatory's own pool (MMU still off), DMB SY (orders those Device
//!    stores before the maintenance), invalidate by VA the purgatory's
//!    tables and stack (written with the MMU off: no stale line may shadow
//!    them), clean+invalidate its image (no stale line may be fetched as
//!    code once SCTLR.I is set), every segment and the digest table (so
//!    what is hashed and compared is what is in memory), DSB SY (the cleans complete before the I-cache is
//!    invalidated), IC IALLU, program MAIR/TCR/TTBR0, TLBI (the old
//!    kernel's entries for this regime), DSB SY (completes the IC IALLU and
//!    the TLBI), then ISB; set SCTLR.{M,C,I}; ISB as one group;
//!    When the tables do not fit their pool, the caches stay off and only
//!    every segment and the digest table are cleaned+invalidated to the
//!    PoC, then DSB SY ([`clean_for_caches_off`]);
//! 3. hash every segment chunk by chunk and compare each chunk's digest with
//!    its entry in the digest table (`SHA2` instructions when
//!    `ID_AA64ISAR0_EL1.SHA2` says so and `FORCE_SOFT_SHA256` is clear);
//!    with the caches on, a PSCI conduit and secondary CPUs in the header,
//!    on those CPUs too ([`smp`]: started with `CPU_ON`, each hashes its
//!    share with its own MMU and caches on and turns itself off; the kernel
//!    is entered only once PSCI reports every one of them OFF);
//! 4. if the caches were on: ISB immediately before the write that clears
//!    SCTLR.{M,C,I} (Falkor erratum E1041), the write, ISB;
//! 5. on a mismatch: print the failing chunks' address ranges and park;
//! 6. if the caches were never on: IC IALLU, DSB SY, ISB; then enter the
//!    kernel with x0 = DTB, x1-x3 = 0.
//!
//! What the caches-on path leaves behind is only clean lines equal to
//! memory: the segments are cleaned+invalidated before the caches come on
//! and only read afterwards; the page tables are written only with the MMU
//! off; the stack is mapped Normal non-cacheable; the image has no writable
//! data (no `.data`, empty `.bss`) and is never written. So no second clean
//! is needed before the MMU goes off (booting.rst asks for the kernel image
//! "cleaned to the PoC", which clean lines equal to memory satisfy), and no
//! I-cache line filled after the IC IALLU of step 2 can be stale (fills come
//! from the PoU, which holds the cleaned bytes; the kernel is mapped
//! execute-never). The TLB is not invalidated after the MMU goes off:
//! booting.rst makes no TLB requirement and a kernel invalidates its TLB
//! before enabling its MMU (Linux's own kexec relocation does not either).
//!
//! The loader side (host, no `unsafe`) fills the purgatory's header:
//!
//! ```
//! use handoff::{Flags, HandoffParams, PurgatoryHeader, SegmentRange, HEADER_OFFSET, HEADER_SIZE};
//!
//! // A purgatory image as linked (only its header matters here).
//! let mut image = vec![0u8; 0x1000];
//! let linked = PurgatoryHeader { mem_size: 0x3_6000, params: HandoffParams::default() };
//! image[HEADER_OFFSET..HEADER_OFFSET + HEADER_SIZE].copy_from_slice(&linked.encode().unwrap());
//!
//! let mut params = HandoffParams {
//!     entry: 0x4020_0000,
//!     dtb: 0x4300_0000,
//!     uart: 0x0900_0000,
//!     flags: Flags(0),
//!     ..HandoffParams::default()
//! };
//! params.push_segment(SegmentRange { addr: 0x4020_0000, len: 0x50_0000 }).unwrap();
//! // 4 MiB chunks; the table follows the purgatory's own memory.
//! params.set_digest_table(22, 0x3_6000).unwrap();
//! assert_eq!(params.nr_digests, 2);
//! let chunks: Vec<_> = params.chunks().map(|c| (c.addr, c.len)).collect();
//! assert_eq!(chunks, [(0x4020_0000, 0x40_0000), (0x4060_0000, 0x10_0000)]);
//! PurgatoryHeader::patch_image(&mut image, &params).unwrap();
//!
//! let back = PurgatoryHeader::decode(&image[HEADER_OFFSET..]).unwrap();
//! assert_eq!(back.mem_size, 0x3_6000);
//! assert_eq!(back.params, params);
//! ```
//!
//! The sequence against a recording mock machine: see `src/tests.rs`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod console;
pub mod maint;
pub mod pagetable;
pub mod params;
pub mod pl011;
pub mod sha256;
pub mod smp;
mod verify;

#[cfg(test)]
mod counter_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_header;
#[cfg(test)]
mod tests_smp;
#[cfg(test)]
mod tests_smp_secondary;

pub use maint::{
    clean_invalidate_range_to_poc, clean_range_to_poc, dcache_line_size, invalidate_range_to_poc,
};
pub use pagetable::{MemAttr, MmuConfig, Regime};
pub use params::{
    Chunk, Conduit, Flags, HandoffParams, HeaderError, PurgatoryHeader, SegmentRange, DIGEST_SIZE,
    HEADER_OFFSET, HEADER_SIZE, MAX_SECONDARIES, MAX_SEGMENTS,
};
pub use sha256::Sha256Engine;
pub use verify::REPORTED_MISMATCHES;

/// `SCTLR_ELx.M`: stage 1 MMU enable.
pub const SCTLR_M: u64 = 1 << 0;
/// `SCTLR_ELx.A`: alignment checking.
pub const SCTLR_A: u64 = 1 << 1;
/// `SCTLR_ELx.C`: data and unified caches enable.
pub const SCTLR_C: u64 = 1 << 2;
/// `SCTLR_ELx.I`: instruction cache enable.
pub const SCTLR_I: u64 = 1 << 12;
/// `SCTLR_ELx.WXN`: writable implies execute-never.
pub const SCTLR_WXN: u64 = 1 << 19;

/// `ID_AA64ISAR0_EL1.SHA2`, bits 15:12: 1 = SHA256H/H2/SU0/SU1, 2 = also SHA512.
pub const fn has_sha2_instructions(isar0: u64) -> bool {
    (isar0 >> 12) & 0xf != 0
}

/// The CPU (or a model of it) as the handoff sequence sees it.
///
/// Addresses are physical; while the purgatory's MMU is on they are also
/// virtual (identity map), so the by-VA maintenance operations take them too.
/// Every method is one architectural operation (or a fixed, documented
/// group), so a model can check the rules of the Arm ARM between them.
pub trait Machine {
    /// What [`Machine::enter_kernel`] and [`Machine::park`] return:
    /// [`core::convert::Infallible`] on the CPU (they never return), the
    /// final state in a model.
    type Exit;

    /// Data read of the aligned u64 at `pa`.
    fn read_u64(&mut self, pa: u64) -> u64;
    /// Data write of the aligned u64 at `pa`.
    fn write_u64(&mut self, pa: u64, value: u64);

    /// `CTR_EL0` (cache line sizes, IDC/DIC).
    fn ctr_el0(&mut self) -> u64;
    /// `ID_AA64ISAR0_EL1` (the SHA2 field).
    fn id_aa64isar0_el1(&mut self) -> u64;
    /// `ID_AA64MMFR0_EL1` (PARange, TGran4).
    fn id_aa64mmfr0_el1(&mut self) -> u64;
    /// `CurrentEL.EL` (1 or 2).
    fn current_el(&mut self) -> u8;
    /// The translation regime of the current EL (EL2 looks at `HCR_EL2.E2H`).
    fn regime(&mut self) -> Regime;
    /// `SCTLR_ELx` of the current EL.
    fn sctlr(&mut self) -> u64;
    /// Writes `SCTLR_ELx` of the current EL (no barrier). The handoff only
    /// writes SCTLR through [`Machine::set_sctlr_synchronized`].
    fn set_sctlr(&mut self, value: u64);
    /// `ISB; MSR SCTLR_ELx, value; ISB`, with no other instruction between
    /// them: Qualcomm Falkor erratum E1041 needs the ISB *immediately*
    /// before an MSR that clears SCTLR_ELx.M (Linux:
    /// `pre_disable_mmu_workaround`, arch/arm64/include/asm/assembler.h),
    /// and the ISB after makes the write take effect before the next
    /// instruction. The default is the three calls (what a model mutates);
    /// the CPU emits the three instructions as one `asm!` block, and a check
    /// on the built purgatory (`purgatory_image::check_system_instructions`)
    /// finds an `isb` right before and after every `msr sctlr_el*`.
    fn set_sctlr_synchronized(&mut self, value: u64) {
        self.isb();
        self.set_sctlr(value);
        self.isb();
    }
    /// With the MMU off: writes `MAIR_ELx`, `TCR_ELx`, `TTBR0_ELx` of
    /// `cfg.regime`. No barrier (follow with [`Machine::isb`] before
    /// setting SCTLR.M); does not touch SCTLR or the TLB.
    fn set_translation(&mut self, cfg: &MmuConfig);
    /// Invalidates all TLB entries of the current regime on this PE (TLBI
    /// VMALLE1 or ALLE2). No barrier: complete it with a DSB.
    fn tlb_invalidate_all(&mut self);

    /// `DC CVAC`: clean the line holding `va` to the PoC.
    fn dc_cvac(&mut self, va: u64);
    /// `DC CIVAC`: clean and invalidate the line holding `va` to the PoC.
    fn dc_civac(&mut self, va: u64);
    /// `DC IVAC`: invalidate the line holding `va` to the PoC.
    fn dc_ivac(&mut self, va: u64);
    /// `DC CVAU`: clean the line holding `va` to the PoU.
    fn dc_cvau(&mut self, va: u64);
    /// `IC IVAU`: invalidate the I-cache line holding `va` to the PoU.
    fn ic_ivau(&mut self, va: u64);
    /// `IC IALLU`: invalidate all I-caches of this PE to the PoU.
    fn ic_iallu(&mut self);
    /// `DMB SY`.
    fn dmb_sy(&mut self);
    /// `DSB SY`.
    fn dsb_sy(&mut self);
    /// `DSB ISH`.
    fn dsb_ish(&mut self);
    /// `ISB`.
    fn isb(&mut self);

    /// SHA-256 of the `len` bytes at `addr`, read with data accesses under
    /// the current translation (the CPU uses `engine`; a model may ignore it).
    fn sha256(&mut self, addr: u64, len: u64, engine: Sha256Engine) -> [u8; 32];
    /// Writes one byte to the PL011 whose registers start at `uart`, or
    /// drops it: the console never decides whether the next kernel boots
    /// (the CPU's rules are in [`pl011::transmit`]).
    fn putc(&mut self, uart: u64, byte: u8);

    /// Monotonic time in nanoseconds, if the machine has a clock (the CPU
    /// reads the generic timer's virtual counter: `MRS CNTVCT_EL0`,
    /// `MRS CNTFRQ_EL0`, no barrier: `CNTVCT_EL0 * 10^9 / CNTFRQ_EL0`).
    /// Only used for console reports: how long verification took, and the
    /// counter at the purgatory's entry and exit (`cargo xtask bench` places
    /// them on the console's timeline); models may keep the default.
    fn now_ns(&mut self) -> Option<u64> {
        None
    }

    /// `MPIDR_EL1`: its affinity fields name this PE to PSCI. A machine of
    /// one CPU may keep the default.
    fn mpidr(&mut self) -> u64 {
        0
    }
    /// Physical address secondary CPUs start at (the purgatory's secondary
    /// entry, which calls [`smp::secondary`]).
    fn secondary_entry(&mut self) -> u64 {
        0
    }
    /// A PSCI call through `conduit` (`HVC #0` or `SMC #0`, SMC Calling
    /// Convention): w0/x0 = `function`, x1–x3 = `args`; returns x0 (its low
    /// 32 bits sign-extended). On a machine without PSCI (the default),
    /// `NOT_SUPPORTED` and nothing is called. Callers use only a conduit
    /// that [`smp::reaches_firmware`] from the current regime: the
    /// purgatory's CPU stops on an undefined instruction for any other (so
    /// every path through a call makes one), and the model reports a fault.
    fn psci(&mut self, conduit: Conduit, function: u32, args: [u64; 3]) -> i64 {
        let _ = (conduit, function, args);
        smp::PSCI_NOT_SUPPORTED
    }

    /// Enters the kernel at `entry` with x0 = `dtb`, x1 = x2 = x3 = 0.
    fn enter_kernel(&mut self, entry: u64, dtb: u64) -> Self::Exit;
    /// Stops for good (WFE loop) without entering anything.
    fn park(&mut self) -> Self::Exit;
}

/// A range of physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemRange {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl MemRange {
    /// `[start, start + len)`.
    pub const fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }
}

/// The purgatory's own memory, all inside its segment and page aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgatoryMemory {
    /// Code, read-only data, the header, data and bss (mapped Normal WB,
    /// executable).
    pub image: MemRange,
    /// Page-table pool (Normal WB; written only with the MMU off).
    pub tables: MemRange,
    /// Stacks, the boot CPU's and each secondary's (Normal non-cacheable
    /// while the MMU is on).
    pub stack: MemRange,
    /// The mailbox the boot CPU and the secondaries share ([`smp`]; Normal
    /// non-cacheable while the MMU is on); empty: no secondaries.
    pub mailbox: MemRange,
}

/// Why the handoff stopped instead of entering the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The parameters are inconsistent.
    BadParams(HeaderError),
    /// A secondary CPU the purgatory started (by its MPIDR) did not turn
    /// off.
    SecondaryStillOn(u64),
    /// At least one chunk's digest did not match.
    DigestMismatch {
        /// Bit mask of segments with a failing chunk (bit `i` = segment `i`).
        failed: u32,
        /// How many chunks failed.
        chunks: u64,
    },
}

/// How the sequence ended.
#[derive(Debug)]
pub enum Outcome<E> {
    /// The kernel was entered (never observed on the CPU).
    Entered(E),
    /// The CPU was parked.
    Parked(E, Failure),
}

/// How verification went (what was printed on success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Hashed with the MMU, D-cache and I-cache on.
    On,
    /// Hashed with the MMU and caches off (by request or because the tables
    /// could not be built).
    Off,
}

/// Picks the SHA-256 implementation from `ID_AA64ISAR0_EL1` and the flags.
pub fn choose_engine<M: Machine + ?Sized>(m: &mut M, flags: Flags) -> Sha256Engine {
    if !flags.contains(Flags::FORCE_SOFT_SHA256) && has_sha2_instructions(m.id_aa64isar0_el1()) {
        Sha256Engine::Instructions
    } else {
        Sha256Engine::Software
    }
}

/// Builds the identity map: segments and the digest table (`table`) Normal
/// WB non-executable, the purgatory's image executable, its tables Normal WB, its stack Normal NC,
/// the UART's page Device-nGnRE (in that order; later wins on overlap).
pub fn build_page_tables<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    own: &PurgatoryMemory,
    table: MemRange,
) -> Result<MmuConfig, pagetable::MapError> {
    let regime = m.regime();
    let mut b = pagetable::TableBuilder::new(m, regime, own.tables.start, own.tables.len)?;
    for s in p.segments() {
        b.map(m, s.addr, s.len, MemAttr::NormalWb, false)?;
    }
    b.map(m, table.start, table.len, MemAttr::NormalWb, false)?;
    b.map(m, own.image.start, own.image.len, MemAttr::NormalWb, true)?;
    b.map(
        m,
        own.tables.start,
        own.tables.len,
        MemAttr::NormalWb,
        false,
    )?;
    b.map(m, own.stack.start, own.stack.len, MemAttr::NormalNc, false)?;
    if own.mailbox.len != 0 {
        b.map(
            m,
            own.mailbox.start,
            own.mailbox.len,
            MemAttr::NormalNc,
            false,
        )?;
    }
    if p.uart != 0 {
        b.map(m, p.uart, pagetable::PAGE_SIZE, MemAttr::DeviceNgnre, false)?;
    }
    let mmfr0 = m.id_aa64mmfr0_el1();
    Ok(b.config(mmfr0))
}

/// Step 2: page tables, maintenance, MMU and caches on. Returns the
/// translation it programmed, or `None` (caches still off, nothing changed
/// that matters) when the tables cannot be built.
pub fn enable_caches<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    own: &PurgatoryMemory,
    table: MemRange,
) -> Option<MmuConfig> {
    if !pagetable::granule_4k_supported(m.id_aa64mmfr0_el1()) {
        return None;
    }
    let cfg = build_page_tables(m, p, own, table).ok()?;
    // Written with the MMU off: drop any stale line that could shadow them
    // once the walks and the stack become cacheable. With the MMU off the
    // stores are Device accesses, which DC by VA is not ordered after
    // (Arm ARM: cache maintenance by VA is ordered only with accesses to
    // Normal cacheable memory); the DMB orders them before the invalidation
    // (Linux: "needed before dc ivac with MMU off", preserve_boot_args in
    // arch/arm64/kernel/head.S).
    m.dmb_sy();
    invalidate_range_to_poc(m, own.tables.start, own.tables.len);
    invalidate_range_to_poc(m, own.stack.start, own.stack.len);
    invalidate_range_to_poc(m, own.mailbox.start, own.mailbox.len);
    // Not written by us; clean+invalidate so that what runs and what is
    // hashed is what is in memory (a dirty line would be written back first,
    // and would then also be what the kernel reads; a stale clean line over
    // the image would be fetched as code once SCTLR.I is set).
    clean_invalidate_range_to_poc(m, own.image.start, own.image.len);
    for s in p.segments() {
        clean_invalidate_range_to_poc(m, s.addr, s.len);
    }
    // Written by the kernel's relocation like the segments: what is
    // compared is what is in memory.
    clean_invalidate_range_to_poc(m, table.start, table.len);
    // The architected I/D coherence sequence: clean, DSB, IC, DSB, ISB.
    // SCTLR.I is 0 here, but the architecture does not promise that an
    // I-cache does not allocate while SCTLR.I is 0 (Linux's set_sctlr
    // invalidates the I-cache right after enabling the MMU for fetches
    // "speculatively from the PoC"): the cleans must complete before the
    // invalidation, or a line filled in between from the not yet cleaned
    // PoU outlives it.
    m.dsb_sy();
    m.ic_iallu();
    m.set_translation(&cfg);
    // The old kernel's TLB entries for this regime would be used as soon
    // as SCTLR.M is set.
    m.tlb_invalidate_all();
    m.dsb_sy();
    // The first ISB of the group synchronises MAIR/TCR/TTBR0 before SCTLR.M
    // may take effect and discards anything fetched ahead.
    let sctlr = m.sctlr();
    m.set_sctlr_synchronized((sctlr | SCTLR_M | SCTLR_C | SCTLR_I) & !(SCTLR_A | SCTLR_WXN));
    Some(cfg)
}

/// Step 2 when there are no page tables (no 4 KiB granule, or they do not
/// fit their pool): the caches stay off,
/// and what step 3 reads, every segment and the digest table, is cleaned
/// and invalidated to the PoC first, then completed with a DSB. The
/// purgatory maintains the ranges its header names itself (on the crash
/// entry nothing relocated them); a dirty line over one holds bytes that a
/// read with the caches off (Non-cacheable) does not see.
pub fn clean_for_caches_off<M: Machine + ?Sized>(m: &mut M, p: &HandoffParams, table: MemRange) {
    for s in p.segments() {
        clean_invalidate_range_to_poc(m, s.addr, s.len);
    }
    clean_invalidate_range_to_poc(m, table.start, table.len);
    m.dsb_sy();
}

/// Step 4: MMU and caches off. No maintenance: with the caches on nothing
/// was written through them (see the crate documentation), so every line
/// they hold is clean and equal to memory.
pub fn disable_caches<M: Machine + ?Sized>(m: &mut M) {
    let sctlr = m.sctlr();
    // Qualcomm Falkor erratum E1041: an ISB immediately before the MSR that
    // clears SCTLR_ELx.M (see `Machine::set_sctlr_synchronized`).
    m.set_sctlr_synchronized(sctlr & !(SCTLR_M | SCTLR_C | SCTLR_I));
}

/// Where the digest table is: `digests_offset` from the purgatory's load
/// address (`own.image.start`), `nr_digests` entries; it must not wrap nor
/// overlap the purgatory's page-table pool, stacks or mailbox, which it
/// writes.
pub fn digest_table(p: &HandoffParams, own: &PurgatoryMemory) -> Result<MemRange, HeaderError> {
    let bad = HeaderError::BadDigestTable(p.digests_offset);
    let start = own.image.start.checked_add(p.digests_offset).ok_or(bad)?;
    let len = p.digest_table_len();
    let end = start.checked_add(len).ok_or(bad)?;
    let overlaps = |r: MemRange| len != 0 && start < r.start.saturating_add(r.len) && r.start < end;
    if overlaps(own.tables) || overlaps(own.stack) || overlaps(own.mailbox) {
        return Err(bad);
    }
    Ok(MemRange::new(start, len))
}

/// The whole handoff. On the CPU it never returns (`M::Exit` is
/// uninhabited); in a model it returns the final state.
pub fn handoff<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    own: &PurgatoryMemory,
) -> Outcome<M::Exit> {
    // First thing: when the purgatory was entered, on the generic timer
    // (printed once the console is known to be valid).
    let entered = m.now_ns();
    let con = console::Console::new(p.uart);
    let table = match params::validate(p).and_then(|()| digest_table(p, own)) {
        Ok(t) => t,
        Err(e) => {
            con.puts(m, "purgatory: invalid parameters, not booting\r\n");
            return Outcome::Parked(m.park(), Failure::BadParams(e));
        }
    };
    con.report_counter(m, "entry", entered);

    let mut found = None;
    let mut caches_were_on = false;
    if p.flags.contains(Flags::NO_VERIFY) {
        con.puts(m, "purgatory: verification skipped\r\n");
    } else {
        let engine = choose_engine(m, p.flags);
        let started = m.now_ns();
        let cfg = if p.flags.contains(Flags::NO_CACHES) {
            None
        } else {
            let cfg = enable_caches(m, p, own, table);
            if cfg.is_none() {
                // No tables (no 4 KiB granule, or the pool too small):
                // hashed with the caches off, from the same entry state as
                // the caches-on path.
                clean_for_caches_off(m, p, table);
            }
            cfg
        };
        // Step 4 (MMU and caches off) right after the hashing done with
        // them on, in the same arm: the caches are turned off exactly when
        // they were turned on (so the binary's paths say so too).
        let (verified, caches) = match cfg {
            Some(cfg) => {
                let v = smp::verify_all(m, p, own, table, engine, &cfg);
                disable_caches(m);
                (v, CacheState::On)
            }
            None => (smp::verify_alone(m, p, table, engine), CacheState::Off),
        };
        caches_were_on = caches == CacheState::On;
        let result = verified.found;
        if let Some(smp::SmpFailure::StillOn(cpu)) = verified.failure {
            con.puts(m, "purgatory: CPU ");
            con.put_hex(m, cpu);
            con.puts(
                m,
                " did not turn off; not booting with it running, CPU parked\r\n",
            );
            return Outcome::Parked(m.park(), Failure::SecondaryStillOn(cpu));
        }
        if verified.cpus > 1 {
            con.puts(m, "purgatory: hashed on ");
            con.put_dec(m, verified.cpus);
            con.puts(m, " CPUs\r\n");
        }
        if result.count == 0 {
            let regime = m.regime();
            con.report_ok(m, p, engine, caches, regime);
            if let (Some(t0), Some(t1)) = (started, m.now_ns()) {
                con.puts(m, "purgatory: verification took ");
                con.put_dec(
                    m,
                    usize::try_from(t1.saturating_sub(t0) / 1000).unwrap_or(usize::MAX),
                );
                con.puts(m, " us\r\n");
            }
        } else {
            found = Some(result);
        }
    }

    if let Some(found) = found {
        for c in found.first.iter().flatten() {
            con.report_mismatch(m, c);
        }
        let named = found.first.iter().flatten().count() as u64;
        if found.count > named {
            con.puts(m, "purgatory: ");
            con.put_dec(
                m,
                usize::try_from(found.count - named).unwrap_or(usize::MAX),
            );
            con.puts(m, " more chunks mismatch\r\n");
        }
        con.puts(
            m,
            "purgatory: not booting a corrupted image; CPU parked\r\n",
        );
        return Outcome::Parked(
            m.park(),
            Failure::DigestMismatch {
                failed: found.segments,
                chunks: found.count,
            },
        );
    }

    // Nothing stale for the kernel's text in the I-cache (booting.rst). With
    // the caches on, the IC IALLU of `enable_caches` already did it: no line
    // filled since can be stale.
    if !caches_were_on {
        m.ic_iallu();
        m.dsb_sy();
        m.isb();
    }
    let leaving = m.now_ns();
    con.report_counter(m, "exit", leaving);
    Outcome::Entered(m.enter_kernel(p.entry, p.dtb))
}

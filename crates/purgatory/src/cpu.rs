//! [`handoff::Machine`] on the real CPU: system registers, maintenance
//! instructions and barriers through inline assembly.

use core::arch::asm;
use core::convert::Infallible;

use handoff::console::Console;
use handoff::pagetable::Regime;
use handoff::pl011::{self, Pl011Registers, Transmit};
use handoff::sha256::{Compress, Sha256, SoftCompress};
use handoff::{
    handoff, Conduit, MemRange, MmuConfig, Outcome, PurgatoryHeader, PurgatoryMemory, Sha256Engine,
    HEADER_OFFSET, HEADER_SIZE,
};

use crate::sha2_hw::Sha2Instructions;

/// `HCR_EL2.E2H`.
const HCR_EL2_E2H: u64 = 1 << 34;

/// The CPU the purgatory runs on, at EL1 or EL2.
///
/// Its [`handoff::Machine`] methods are safe to call but read and write any
/// physical address they are given, rewrite SCTLR and the translation
/// registers, and branch to any address: the promise that makes this sound
/// is made once, by the caller of [`Cpu::new`].
#[derive(Debug)]
pub struct Cpu {
    el: u8,
    regime: Regime,
    /// Set once the console's FIFO stayed full for a whole bounded wait:
    /// the rest of the output is dropped rather than waited for again.
    console_stuck: bool,
}

impl Cpu {
    /// Reads `CurrentEL` (and `HCR_EL2.E2H` at EL2).
    ///
    /// # Safety
    /// Call only in the purgatory (its entry points `purgatory_main`,
    /// `purgatory_secondary` and `purgatory_exception`), interrupts masked,
    /// on the one CPU left running after the old kernel let go or on a
    /// secondary CPU that one started with PSCI `CPU_ON`: from then on all
    /// physical memory and devices belong to the purgatory, one `Cpu` per
    /// CPU, and the returned `Cpu` accesses any physical address it is
    /// given with the MMU off or through the handoff's identity map. The
    /// CPUs share nothing they write but the mailbox, whose words each
    /// writes only in its own slot (`handoff::smp`). The addresses it is given are the image, its
    /// page-table pool and stack (from link.ld), and the segments and PL011
    /// named in the loader's header; the caller vouches that the loader
    /// placed every segment in RAM (`addr + len` not wrapping is checked by
    /// `handoff::params::validate`) and that `uart`, if not 0, is a PL011.
    pub unsafe fn new() -> Self {
        let current: u64;
        // SAFETY: reading CurrentEL has no side effects.
        unsafe { asm!("mrs {}, CurrentEL", out(reg) current, options(nomem, nostack)) };
        let el = if (current >> 2) & 3 == 2 { 2 } else { 1 };
        let regime = if el == 2 {
            let hcr: u64;
            // SAFETY: at EL2, HCR_EL2 is readable and reading it has no side effects.
            unsafe { asm!("mrs {}, hcr_el2", out(reg) hcr, options(nomem, nostack)) };
            if hcr & HCR_EL2_E2H != 0 {
                Regime::El2Host
            } else {
                Regime::El2
            }
        } else {
            Regime::El1
        };
        Self {
            el,
            regime,
            console_stuck: false,
        }
    }
}

macro_rules! sysreg_read {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an ID/cache-type register has no side effects and
        // is permitted at EL1 and EL2.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

impl handoff::Machine for Cpu {
    type Exit = Infallible;

    fn read_u64(&mut self, pa: u64) -> u64 {
        // SAFETY: physical memory is ours, as promised by the caller of
        // `Cpu::new`; the handoff only reads 8-byte aligned addresses in the
        // purgatory's own page-table pool, which is identity mapped (or
        // accessed with the MMU off).
        unsafe { core::ptr::read_volatile(pa as *const u64) }
    }

    fn write_u64(&mut self, pa: u64, value: u64) {
        // SAFETY: as for `read_u64` (the promise of `Cpu::new`): aligned, in
        // our own page-table pool.
        unsafe { core::ptr::write_volatile(pa as *mut u64, value) }
    }

    fn ctr_el0(&mut self) -> u64 {
        sysreg_read!("ctr_el0")
    }

    fn id_aa64isar0_el1(&mut self) -> u64 {
        sysreg_read!("id_aa64isar0_el1")
    }

    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        sysreg_read!("id_aa64mmfr0_el1")
    }

    fn current_el(&mut self) -> u8 {
        self.el
    }

    fn regime(&mut self) -> Regime {
        self.regime
    }

    fn sctlr(&mut self) -> u64 {
        let v: u64;
        if self.el == 2 {
            // SAFETY: reading SCTLR_EL2 at EL2 has no side effects.
            unsafe { asm!("mrs {}, sctlr_el2", out(reg) v, options(nomem, nostack)) };
        } else {
            // SAFETY: reading SCTLR_EL1 at EL1 has no side effects.
            unsafe { asm!("mrs {}, sctlr_el1", out(reg) v, options(nomem, nostack)) };
        }
        v
    }

    fn set_sctlr(&mut self, value: u64) {
        // SAFETY: the machine is ours, as promised by the caller of
        // `Cpu::new`. The handoff only flips M/C/I (and clears A/WXN) after
        // programming an identity map covering all code, data and stack in
        // use, or when turning translation off (identity map: same PAs). Not
        // `nomem`: memory accesses must not be moved across it.
        unsafe {
            if self.el == 2 {
                asm!("msr sctlr_el2, {}", in(reg) value, options(nostack));
            } else {
                asm!("msr sctlr_el1, {}", in(reg) value, options(nostack));
            }
        }
    }

    fn set_sctlr_synchronized(&mut self, value: u64) {
        // SAFETY: as `set_sctlr`. One asm block per EL, so that nothing (no
        // branch on the EL, no reload from the stack) comes between the ISB
        // and the MSR (Falkor E1041); purgatory_image checks the built
        // binary for it.
        unsafe {
            if self.el == 2 {
                asm!("isb", "msr sctlr_el2, {}", "isb", in(reg) value, options(nostack));
            } else {
                asm!("isb", "msr sctlr_el1, {}", "isb", in(reg) value, options(nostack));
            }
        }
    }

    fn set_translation(&mut self, cfg: &MmuConfig) {
        // SAFETY: the machine is ours (the promise of `Cpu::new`); called
        // with the MMU off (SCTLR.M = 0), so the new MAIR, TCR and TTBR0 have
        // no effect until the handoff sets SCTLR.M (after an ISB).
        unsafe {
            match cfg.regime {
                Regime::El1 => asm!(
                    "msr mair_el1, {mair}",
                    "msr tcr_el1, {tcr}",
                    "msr ttbr0_el1, {ttbr}",
                    mair = in(reg) cfg.mair,
                    tcr = in(reg) cfg.tcr,
                    ttbr = in(reg) cfg.ttbr0,
                    options(nostack)
                ),
                Regime::El2 | Regime::El2Host => asm!(
                    "msr mair_el2, {mair}",
                    "msr tcr_el2, {tcr}",
                    "msr ttbr0_el2, {ttbr}",
                    mair = in(reg) cfg.mair,
                    tcr = in(reg) cfg.tcr,
                    ttbr = in(reg) cfg.ttbr0,
                    options(nostack)
                ),
            }
        }
    }

    fn tlb_invalidate_all(&mut self) {
        // SAFETY: invalidating TLB entries of the current regime only
        // discards cached translations (the handoff completes it with a DSB).
        unsafe {
            if self.el == 2 {
                asm!("tlbi alle2", options(nostack));
            } else {
                asm!("tlbi vmalle1", options(nostack));
            }
        }
    }

    fn dc_cvac(&mut self, va: u64) {
        // SAFETY: a clean writes back data already held for `va`; it never
        // changes the value any observer sees.
        unsafe { asm!("dc cvac, {}", in(reg) va, options(nostack)) };
    }

    fn dc_civac(&mut self, va: u64) {
        // SAFETY: clean+invalidate preserves the memory contents seen by all
        // observers (dirty data is written back first).
        unsafe { asm!("dc civac, {}", in(reg) va, options(nostack)) };
    }

    fn dc_ivac(&mut self, va: u64) {
        // SAFETY: memory is ours (the promise of `Cpu::new`); the handoff
        // only invalidates the purgatory's own page-table pool and stack,
        // whole pages written with the MMU off: memory holds the live data,
        // any cached copy is stale.
        unsafe { asm!("dc ivac, {}", in(reg) va, options(nostack)) };
    }

    fn dc_cvau(&mut self, va: u64) {
        // SAFETY: as `dc_cvac`, to the PoU.
        unsafe { asm!("dc cvau, {}", in(reg) va, options(nostack)) };
    }

    fn ic_ivau(&mut self, va: u64) {
        // SAFETY: invalidating instruction cache lines only forces refetches.
        unsafe { asm!("ic ivau, {}", in(reg) va, options(nostack)) };
    }

    fn ic_iallu(&mut self) {
        // SAFETY: as `ic_ivau`, for the whole I-cache of this PE.
        unsafe { asm!("ic iallu", options(nostack)) };
    }

    fn dmb_sy(&mut self) {
        // SAFETY: a barrier.
        unsafe { asm!("dmb sy", options(nostack)) };
    }

    fn dsb_sy(&mut self) {
        // SAFETY: a barrier.
        unsafe { asm!("dsb sy", options(nostack)) };
    }

    fn dsb_ish(&mut self) {
        // SAFETY: a barrier.
        unsafe { asm!("dsb ish", options(nostack)) };
    }

    fn isb(&mut self) {
        // SAFETY: a barrier.
        unsafe { asm!("isb", options(nostack)) };
    }

    fn sha256(&mut self, addr: u64, len: u64, engine: Sha256Engine) -> [u8; 32] {
        let (Ok(a), Ok(n)) = (usize::try_from(addr), usize::try_from(len)) else {
            return [0; 32];
        };
        let hw = match engine {
            Sha256Engine::Instructions => Sha2Instructions::detect(),
            Sha256Engine::Software => None,
        };
        // SAFETY: `a..a + n` is RAM that nothing else writes while the
        // purgatory runs, identity mapped (or the MMU is off), as promised by
        // the caller of `Cpu::new` for the segments of the loader's header
        // (the only ranges the handoff hashes), whose `addr + len` does not
        // wrap (`handoff::params::validate`).
        unsafe {
            match hw {
                Some(hw) => hash_segment(hw, a, n),
                None => hash_segment(SoftCompress, a, n),
            }
        }
    }

    fn putc(&mut self, uart: u64, byte: u8) {
        if self.console_stuck {
            return;
        }
        if pl011::transmit(&mut Pl011At(uart), byte) == Transmit::TimedOut {
            self.console_stuck = true;
        }
    }

    fn now_ns(&mut self) -> Option<u64> {
        let (count, freq): (u64, u64);
        // No ISB before the read (the usual way to keep it from being taken
        // early): a timing line does not need it, and an ISB here would be
        // one the cache model does not execute (the path check in
        // crates/kexec/tests/model_link.rs finds every system instruction).
        // SAFETY: reading the generic timer's virtual count and frequency has
        // no side effects (CNTVCT_EL0 is not trapped at EL1/EL2 by default).
        unsafe {
            asm!(
                "mrs {c}, cntvct_el0",
                "mrs {f}, cntfrq_el0",
                c = out(reg) count,
                f = out(reg) freq,
                options(nomem, nostack)
            )
        };
        if freq == 0 {
            return None;
        }
        u64::try_from(u128::from(count) * 1_000_000_000 / u128::from(freq)).ok()
    }

    fn mpidr(&mut self) -> u64 {
        sysreg_read!("mpidr_el1")
    }

    fn secondary_entry(&mut self) -> u64 {
        let at: u64;
        // SAFETY: computes an address (PC-relative); no memory access.
        unsafe {
            asm!(
                "adr {}, purgatory_secondary_entry",
                out(reg) at,
                options(nomem, nostack, preserves_flags)
            )
        };
        at
    }

    fn psci(&mut self, conduit: Conduit, function: u32, args: [u64; 3]) -> i64 {
        let x0: u64;
        // One SMC Calling Convention call through `$insn` (`hvc` or `smc`):
        // function in w0, arguments in x1-x3, result in x0; the callee may
        // change x0-x17, which are declared clobbered.
        macro_rules! smccc {
            ($insn:literal) => {
                asm!(
                    concat!($insn, " #0"),
                    inout("x0") u64::from(function) => x0,
                    inout("x1") args[0] => _, inout("x2") args[1] => _,
                    inout("x3") args[2] => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack)
                )
            };
        }
        // SAFETY: a call to the PSCI firmware the loader named (the promise
        // of `Cpu::new` covers the header), under the SMC Calling
        // Convention (`smccc!` declares what it may change). HVC at EL2
        // would trap to our own vectors, not reach firmware: the handoff
        // makes no such call (`smp::reaches_firmware`), and one made anyway
        // stops on UDF, whose exception our vectors report before they park.
        unsafe {
            match (conduit, self.el) {
                (Conduit::Hvc, 1) => smccc!("hvc"),
                (Conduit::Smc, _) => smccc!("smc"),
                _ => asm!("udf #0", options(noreturn, nomem, nostack)),
            }
        }
        // PSCI return values are 32-bit signed in w0.
        let low = u32::try_from(x0 & 0xffff_ffff).unwrap_or(u32::MAX);
        i64::from(i32::from_ne_bytes(low.to_ne_bytes()))
    }

    fn enter_kernel(&mut self, entry: u64, dtb: u64) -> Infallible {
        // SAFETY: the machine is ours to hand over (the promise of
        // `Cpu::new`). The handoff has verified the image, cleaned it to the
        // PoC, turned the MMU and caches off and invalidated the I-cache: the
        // state booting.rst requires. Nothing of ours is used afterwards.
        unsafe {
            asm!(
                "br {entry}",
                entry = in(reg) entry,
                in("x0") dtb,
                in("x1") 0u64,
                in("x2") 0u64,
                in("x3") 0u64,
                options(noreturn, nostack)
            )
        }
    }

    fn park(&mut self) -> Infallible {
        loop {
            // SAFETY: WFE only waits for an event.
            unsafe { asm!("wfe", options(nomem, nostack)) };
        }
    }
}

/// The PL011 whose registers start at this physical address: the one the
/// loader named, as promised by the caller of [`Cpu::new`].
struct Pl011At(u64);

impl Pl011Registers for Pl011At {
    fn read(&mut self, offset: u64) -> u32 {
        // SAFETY: `self.0` is the loader's PL011 (the promise of
        // `Cpu::new`); `offset` is one of its 32-bit registers (UARTFR,
        // UARTCR), aligned, mapped Device (or MMU off); reading them has no
        // side effect.
        unsafe { core::ptr::read_volatile((self.0 + offset) as *const u32) }
    }

    fn write(&mut self, offset: u64, value: u32) {
        // SAFETY: as `read`; `offset` is UARTDR, and writing it queues one
        // character.
        unsafe { core::ptr::write_volatile((self.0 + offset) as *mut u32, value) }
    }
}

/// One byte at physical address `pa`, read with an `LDRB` the compiler does
/// not see as a pointer dereference (valid for address 0, where RAM starts on
/// some SoCs but a Rust pointer may not point).
///
/// # Safety
/// `pa` is readable RAM, identity mapped or with the MMU off.
unsafe fn load_byte(pa: usize) -> u8 {
    let v: u64;
    // SAFETY: `pa` is readable RAM, identity mapped (or the MMU is off), as
    // promised by our caller; a byte load has no alignment requirement.
    unsafe {
        asm!(
            "ldrb {v:w}, [{p}]",
            v = out(reg) v,
            p = in(reg) pa,
            options(readonly, nostack, preserves_flags)
        )
    };
    v.to_le_bytes()[0]
}

/// SHA-256 of the `n` bytes at physical address `a`, hashed in place (no
/// copy through the non-cacheable stack) except for a first block at
/// address 0, which cannot be a Rust slice.
///
/// # Safety
/// `a..a + n` is readable RAM, identity mapped or with the MMU off, that
/// nothing writes while it is hashed, and `a + n` does not wrap.
unsafe fn hash_segment<C: Compress>(c: C, mut a: usize, mut n: usize) -> [u8; 32] {
    let mut h = Sha256::new(c);
    if a == 0 && n > 0 {
        let first = n.min(64);
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate().take(first) {
            // SAFETY: `i < n` and `a == 0`: inside the range our caller
            // promised is readable RAM.
            *b = unsafe { load_byte(i) };
        }
        h.update(block.get(..first).unwrap_or_default());
        a += first;
        n -= first;
    }
    if n == 0 {
        return h.finalize();
    }
    let whole = n / 64;
    // SAFETY: `a..a + n` (what is left of the range) is readable RAM that
    // nothing writes while we hash it and does not wrap, as promised by our
    // caller; `a` is not 0 here. `[u8; 64]` has alignment 1, so any address
    // is a valid start.
    let (blocks, tail) = unsafe {
        (
            core::slice::from_raw_parts(a as *const [u8; 64], whole),
            core::slice::from_raw_parts((a + whole * 64) as *const u8, n % 64),
        )
    };
    h.update_blocks(blocks);
    h.update(tail);
    h.finalize()
}

/// Reads and decodes the header of the image loaded at `base`.
///
/// # Safety
/// `base` is the load address of this image, identity mapped or with the
/// MMU off.
unsafe fn read_header(base: u64) -> Option<PurgatoryHeader> {
    let mut raw = [0u8; HEADER_SIZE];
    let hdr = base + HEADER_OFFSET as u64;
    for (i, b) in (0u64..).zip(raw.iter_mut()) {
        // SAFETY: the header lies inside this image, at a fixed offset, and
        // `base` is the image's load address, identity mapped (or the MMU is
        // off), as promised by our caller.
        *b = unsafe { core::ptr::read_volatile((hdr + i) as *const u8) };
    }
    PurgatoryHeader::decode(&raw).ok()
}

/// Called from the exception vectors (src/main.rs) on a fresh stack: prints
/// the syndrome on the console named in the header, then parks.
///
/// # Safety
/// Only the vectors may call it, with `base` the load address of the image.
#[no_mangle]
pub unsafe extern "C" fn purgatory_exception(base: u64, esr: u64, elr: u64, far: u64) -> ! {
    // SAFETY: called by the vectors, on the one CPU the purgatory runs on,
    // after the old kernel let go (the contract of this function, which only
    // the purgatory's own vectors call).
    let mut cpu = unsafe { Cpu::new() };
    // SAFETY: `base` is the load address of this image (our contract).
    if let Some(header) = unsafe { read_header(base) } {
        let con = Console::new(header.params.uart);
        con.puts(&mut cpu, "\r\npurgatory: unexpected exception ESR=");
        con.put_hex(&mut cpu, esr);
        con.puts(&mut cpu, " ELR=");
        con.put_hex(&mut cpu, elr);
        con.puts(&mut cpu, " FAR=");
        con.put_hex(&mut cpu, far);
        con.puts(&mut cpu, "; CPU parked\r\n");
    }
    match handoff::Machine::park(&mut cpu) {}
}

/// Rust entry, called by `_start` (src/main.rs) with the stack set up and
/// FP/SIMD enabled. The arguments are the PC-relative addresses of the image
/// and its regions (see link.ld).
///
/// # Safety
/// Only `_start` may call it, once, on the CPU the old kernel left running,
/// with `base` the load address of this image.
#[no_mangle]
pub unsafe extern "C" fn purgatory_main(
    base: u64,
    image_end: u64,
    tables_start: u64,
    tables_end: u64,
    stack_start: u64,
    stack_top: u64,
    mailbox_end: u64,
) -> ! {
    // SAFETY: `_start` calls us once, on the CPU the old kernel left
    // running with interrupts masked: the purgatory owns the machine (our
    // contract); the loader that wrote the header is trusted for its
    // segments and UART.
    let mut cpu = unsafe { Cpu::new() };
    // SAFETY: `base` is the load address of this image (our contract).
    let Some(header) = (unsafe { read_header(base) }) else {
        // No trustworthy console address: nothing to print to.
        match handoff::Machine::park(&mut cpu) {}
    };
    let own = own_memory(
        base,
        image_end,
        (tables_start, tables_end),
        (stack_start, stack_top),
        mailbox_end,
    );
    match handoff(&mut cpu, &header.params, &own) {
        Outcome::Entered(never) | Outcome::Parked(never, _) => match never {},
    }
}

/// The purgatory's regions (link.ld): the mailbox follows the stacks.
fn own_memory(
    base: u64,
    image_end: u64,
    tables: (u64, u64),
    stack: (u64, u64),
    mailbox_end: u64,
) -> PurgatoryMemory {
    PurgatoryMemory {
        image: MemRange::new(base, image_end - base),
        tables: MemRange::new(tables.0, tables.1 - tables.0),
        stack: MemRange::new(stack.0, stack.1 - stack.0),
        mailbox: MemRange::new(stack.1, mailbox_end - stack.1),
    }
}

/// Rust entry of a secondary CPU, called by `purgatory_secondary_entry`
/// (src/main.rs) on its own stack with FP/SIMD enabled; `slot` is its PSCI
/// context id, below `handoff::MAX_SECONDARIES`.
///
/// # Safety
/// Only `purgatory_secondary_entry` may call it, on a CPU the boot CPU
/// started with PSCI `CPU_ON` from `handoff`, with the addresses of
/// `purgatory_main`'s arguments.
#[no_mangle]
pub unsafe extern "C" fn purgatory_secondary(
    base: u64,
    image_end: u64,
    tables_start: u64,
    tables_end: u64,
    stack_start: u64,
    stack_top: u64,
    mailbox_end: u64,
    slot: u64,
) -> ! {
    // SAFETY: a secondary CPU the boot CPU started, interrupts masked (our
    // contract): it writes only its own mailbox slot (`handoff::smp`).
    let mut cpu = unsafe { Cpu::new() };
    // SAFETY: `base` is the load address of this image (our contract).
    let header = unsafe { read_header(base) };
    let (Some(header), Ok(slot)) = (header, usize::try_from(slot)) else {
        match handoff::Machine::park(&mut cpu) {}
    };
    let own = own_memory(
        base,
        image_end,
        (tables_start, tables_end),
        (stack_start, stack_top),
        mailbox_end,
    );
    match handoff::smp::secondary(&mut cpu, &header.params, &own, slot) {}
}

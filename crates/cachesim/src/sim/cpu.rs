//! [`SimCpu`]: the model as a [`handoff::Machine`], with the purgatory's
//! instruction fetches and stack frame modelled around the trait calls.

use super::plan::SimSegment;
use super::smp::Smp;
use super::trace::SysTrace;
use crate::memory::{DcOp, IcOp, MemorySystem, Sctlr, SetWayOp};
use crate::mutant::Cpus;
use handoff::pagetable::MemAttr;
use handoff::sha256::sha256_soft;
use handoff::{Conduit, MmuConfig, Regime, Sha256Engine, SCTLR_C, SCTLR_I, SCTLR_M};

/// The model as a [`handoff::Machine`]: what the purgatory and the kernel's
/// relocation run on.
#[derive(Debug, Clone)]
pub struct SimCpu {
    /// The memory system.
    pub memory: MemorySystem,
    /// SCTLR as the running CPU last wrote it.
    pub(super) sctlr: u64,
    /// Bytes the code printed on the UART.
    pub console: Vec<u8>,
    /// Entry points branched to, in order.
    pub entered: Vec<u64>,
    /// Whether the CPU parked.
    pub parked: bool,
    /// Segments whose digest did not match (bit i = segment i), if parked
    /// for that reason.
    pub failed_segments: u32,
    pub(super) code: Option<(u64, Vec<u8>)>,
    pc: u64,
    /// First stale instruction fetched while running `code`.
    pub stale_fetch: Option<u64>,
    /// First segment hashed while SCTLR.{M,C} were written but not in effect.
    pub hashed_uncached: Option<u64>,
    /// First segment hashed with its reads not going through the caches
    /// or with SCTLR.I not in effect (for any reason: the handoff claiming
    /// "caches on" for it is a violation).
    pub uncached_hash: Option<u64>,
    pub(super) stack_frame: Option<(u64, Vec<u8>)>,
    /// First byte of the stack frame read back wrong.
    pub stack_corrupt: Option<u64>,
    pub(super) regime: Regime,
    sha2_instructions: bool,
    /// The generic timer: nanoseconds added at each read, and the time
    /// (`None`: no clock).
    clock: Option<(u64, u64)>,
    /// The system instructions of the purgatory run, once it started.
    pub(super) trace: Option<SysTrace>,
    /// The PSCI firmware and the secondary CPUs (`None`: no PSCI).
    pub(super) smp: Option<Box<Smp>>,
}

impl SimCpu {
    /// Wrap a memory system; SCTLR as it has it committed.
    pub fn new(memory: MemorySystem) -> Self {
        let s = memory.sctlr();
        let sctlr = (if s.m { SCTLR_M } else { 0 })
            | (if s.c { SCTLR_C } else { 0 })
            | (if s.i { SCTLR_I } else { 0 });
        Self {
            memory,
            sctlr,
            console: Vec::new(),
            entered: Vec::new(),
            parked: false,
            failed_segments: 0,
            code: None,
            pc: 0,
            stale_fetch: None,
            hashed_uncached: None,
            uncached_hash: None,
            stack_frame: None,
            stack_corrupt: None,
            regime: Regime::El2,
            sha2_instructions: false,
            clock: None,
            trace: None,
            smp: None,
        }
    }

    /// The machine has PSCI and the secondaries of `smp`.
    pub(super) fn set_smp(&mut self, smp: Smp) {
        self.smp = Some(Box::new(smp));
    }

    /// The purgatory starts: its entry code runs (recorded, and its ISB
    /// performed: nothing else in it touches memory or the caches) and the
    /// system instructions of what follows are recorded
    /// ([`SimCpu::system_instructions`]).
    pub fn enter_purgatory(&mut self) {
        let mut t = SysTrace::default();
        t.entry_code(self.regime);
        self.trace = Some(t);
        self.memory.isb();
        self.fetch_code();
    }

    /// The system instructions the purgatory executed so far, entry code
    /// included (`None` before it started).
    pub fn system_instructions(&self) -> Option<&SysTrace> {
        self.trace.as_ref()
    }

    /// Records one system instruction of the running purgatory.
    pub(super) fn sys(&mut self, name: &'static str) {
        if let Some(t) = &mut self.trace {
            t.push(name);
        }
    }

    /// The EL1 or the EL2 name of a register, by the CPU's EL.
    fn at_el(&self, el1: &'static str, el2: &'static str) -> &'static str {
        if self.regime == Regime::El1 {
            el1
        } else {
            el2
        }
    }

    /// The CPU runs in `regime` (CurrentEL 1 for [`Regime::El1`], else 2)
    /// and advertises the SHA2 instructions or not.
    pub fn set_cpu(&mut self, regime: Regime, sha2_instructions: bool) {
        self.regime = regime;
        self.sha2_instructions = sha2_instructions;
    }

    /// The CPU has a generic timer that advances by `step_ns` at each read
    /// (`None`: none).
    pub fn set_clock(&mut self, step_ns: Option<u64>) {
        self.clock = step_ns.map(|s| (s, 0));
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
        self.memory.write(addr, &bytes);
        self.stack_frame = Some((addr, bytes));
    }

    pub(super) fn check_stack(&mut self) {
        let Some((addr, want)) = &self.stack_frame else {
            return;
        };
        let (addr, want) = (*addr, want.clone());
        let mut got = vec![0u8; want.len()];
        self.memory.read(addr, &mut got);
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            self.stack_corrupt.get_or_insert(addr + i as u64);
        }
    }

    pub(super) fn tick(&mut self) {
        self.check_stack();
        self.fetch_code();
    }

    /// Instruction fetches of the running code (no data access).
    pub(super) fn fetch_code(&mut self) {
        let Some((start, bytes)) = &self.code else {
            return;
        };
        let il = self.memory.config().i_line;
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
        let r = self.memory.random();
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
            let got = self.memory.execute(addr, il);
            if got != want && self.stale_fetch.is_none() {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                self.stale_fetch = Some(addr + i as u64);
            }
        }
    }

    /// `DC CSW`/`DC CISW` over every set and way of the local levels (not in
    /// the handoff trait; for replays of set/way-based sequences).
    pub fn dc_set_way_all(&mut self, op: SetWayOp) {
        self.memory.dc_set_way_all(op);
    }

    /// `DC ZVA` (not in the handoff trait).
    pub fn dc_zva(&mut self, va: u64) {
        self.memory.dc(DcOp::Zva, va);
    }
}

impl handoff::Machine for SimCpu {
    type Exit = ();
    fn read_u64(&mut self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.memory.read(pa, &mut b);
        u64::from_le_bytes(b)
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        self.memory.write(pa, &value.to_le_bytes());
    }
    fn ctr_el0(&mut self) -> u64 {
        self.sys("mrs ctr_el0");
        self.memory.config().ctr_el0()
    }
    fn id_aa64isar0_el1(&mut self) -> u64 {
        self.sys("mrs id_aa64isar0_el1");
        // ID_AA64ISAR0_EL1.SHA2, bits 15:12.
        if self.sha2_instructions {
            1 << 12
        } else {
            0
        }
    }
    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        self.sys("mrs id_aa64mmfr0_el1");
        // PARange = 0b0101 (48 bits), TGran4 = 0 (supported).
        0x5
    }
    fn current_el(&mut self) -> u8 {
        match self.regime {
            Regime::El1 => 1,
            Regime::El2 | Regime::El2Host => 2,
        }
    }
    fn regime(&mut self) -> Regime {
        self.regime
    }
    fn sctlr(&mut self) -> u64 {
        self.sys(self.at_el("mrs sctlr_el1", "mrs sctlr_el2"));
        self.sctlr
    }
    fn set_sctlr(&mut self, value: u64) {
        // No stack access between a preceding ISB and the MSR (what the
        // Falkor E1041 workaround needs): the frame is checked after it.
        self.sys(self.at_el("msr sctlr_el1", "msr sctlr_el2"));
        self.fetch_code();
        self.sctlr = value;
        self.memory.write_sctlr(Sctlr {
            m: value & SCTLR_M != 0,
            c: value & SCTLR_C != 0,
            i: value & SCTLR_I != 0,
        });
        self.check_stack();
    }
    fn set_translation(&mut self, cfg: &MmuConfig) {
        // The CPU picks the registers by the configuration's regime.
        let el1 = cfg.regime == Regime::El1;
        for (r1, r2) in [
            ("msr mair_el1", "msr mair_el2"),
            ("msr tcr_el1", "msr tcr_el2"),
            ("msr ttbr0_el1", "msr ttbr0_el2"),
        ] {
            self.sys(if el1 { r1 } else { r2 });
        }
        self.memory.set_translation(Some(*cfg));
    }
    fn tlb_invalidate_all(&mut self) {
        self.sys(self.at_el("tlbi vmalle1", "tlbi alle2"));
        self.memory.tlb_invalidate_all();
        self.tick();
    }
    fn dc_cvac(&mut self, va: u64) {
        self.sys("dc cvac");
        self.memory.dc(DcOp::Cvac, va);
    }
    fn dc_civac(&mut self, va: u64) {
        self.sys("dc civac");
        self.memory.dc(DcOp::Civac, va);
    }
    fn dc_ivac(&mut self, va: u64) {
        self.sys("dc ivac");
        self.memory.dc(DcOp::Ivac, va);
    }
    fn dc_cvau(&mut self, va: u64) {
        self.sys("dc cvau");
        self.memory.dc(DcOp::Cvau, va);
    }
    fn ic_ivau(&mut self, va: u64) {
        self.sys("ic ivau");
        self.memory.ic(IcOp::Ivau, va);
        self.tick();
    }
    fn ic_iallu(&mut self) {
        self.sys("ic iallu");
        self.memory.ic(IcOp::Iallu, 0);
        self.tick();
    }
    fn dmb_sy(&mut self) {
        self.sys("dmb sy");
        self.memory.dmb();
        self.tick();
    }
    fn dsb_sy(&mut self) {
        self.sys("dsb sy");
        self.memory.dsb();
        self.tick();
    }
    fn dsb_ish(&mut self) {
        // One PE: inner-shareable completion is all there is to wait for.
        self.sys("dsb ish");
        self.memory.dsb();
        self.tick();
    }
    fn isb(&mut self) {
        // Stack accesses before the ISB, none between it and what follows
        // (it may precede the MSR that turns the MMU off).
        self.sys("isb");
        self.check_stack();
        self.memory.isb();
        self.fetch_code();
    }
    fn sha256(&mut self, addr: u64, len: u64, engine: Sha256Engine) -> [u8; 32] {
        // The CPU's SHA2 engine checks ID_AA64ISAR0_EL1 itself before each
        // segment (purgatory::sha2_hw::Sha2Instructions::detect).
        if engine == Sha256Engine::Instructions {
            self.sys("mrs id_aa64isar0_el1");
        }
        self.tick();
        let on = SCTLR_M | SCTLR_C;
        let effective = self.memory.sctlr();
        if self.sctlr & on == on && !(effective.m && effective.c) {
            self.hashed_uncached.get_or_insert(addr);
        }
        // An empty segment reads nothing (and is not mapped): nothing to
        // hash with or without the caches.
        if len > 0 && !(effective.i && self.memory.data_access_cached(addr)) {
            self.uncached_hash.get_or_insert(addr);
        }
        // The hash runs in a function call: a new frame on the stack,
        // written with whatever SCTLR and mapping are in effect now.
        if let Some((a, old)) = self.stack_frame.take() {
            let frame = SimSegment::generated(a, old.len(), addr).bytes;
            self.set_stack_frame(a, frame);
        }
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
        for (i, chunk) in data.chunks_mut(64).enumerate() {
            self.memory.read(addr + 64 * i as u64, chunk);
        }
        sha256_soft(&data)
    }
    fn putc(&mut self, uart: u64, byte: u8) {
        // With the MMU on, the console must be mapped Device: a write
        // through a cacheable mapping may sit in a cache and never reach
        // the UART (and a UART's registers are not memory).
        if let Some(attr) = self.memory.mapped_attr(uart) {
            if attr != MemAttr::DeviceNgnre {
                self.memory.report_fault(
                    format!("console UART written through a {attr:?} mapping, not Device"),
                    uart,
                );
            }
        }
        self.console.push(byte);
    }
    fn now_ns(&mut self) -> Option<u64> {
        // The CPU reads the generic timer (no memory effect).
        self.sys("mrs cntvct_el0");
        self.sys("mrs cntfrq_el0");
        let (step, now) = self.clock.as_mut()?;
        *now += *step;
        Some(*now)
    }
    fn mpidr(&mut self) -> u64 {
        self.sys("mrs mpidr_el1");
        self.current_mpidr()
    }
    fn secondary_entry(&mut self) -> u64 {
        self.smp.as_ref().map_or(0, |s| s.entry())
    }
    fn psci(&mut self, conduit: Conduit, function: u32, args: [u64; 3]) -> i64 {
        // Without a Mutant around it: the secondary runs on this machine.
        match self.psci_call(conduit, function, args) {
            Ok(x0) => x0,
            Err(start) => {
                start.run(self);
                self.secondary_finished()
            }
        }
    }
    fn enter_kernel(&mut self, entry: u64, dtb: u64) {
        // The code got here by returning through its frames (MMU off now).
        self.check_stack();
        self.memory.set_reg(0, dtb);
        for r in 1..4 {
            self.memory.set_reg(r, 0);
        }
        self.memory.enter(entry);
        self.entered.push(entry);
    }
    fn park(&mut self) {
        if self.park_secondary() {
            return;
        }
        self.parked = true;
    }
}

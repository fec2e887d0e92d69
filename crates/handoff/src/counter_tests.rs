//! The counter lines at the purgatory's entry and exit, which
//! `cargo xtask bench` places on the console's timeline (a mock with a
//! clock; the recording mock of `tests.rs` has none).

extern crate std;

use std::string::String;
use std::vec::Vec;

use crate::*;

const UART: u64 = 0x0900_0000;

/// A machine whose clock reads `clock` in turn (then `None`) and that
/// records what it printed and whether it entered the kernel.
struct Clocked {
    clock: Vec<u64>,
    reads: usize,
    out: String,
    entered: bool,
}

impl Machine for Clocked {
    type Exit = ();
    fn read_u64(&mut self, _pa: u64) -> u64 {
        0
    }
    fn write_u64(&mut self, _pa: u64, _value: u64) {}
    fn ctr_el0(&mut self) -> u64 {
        0x8444_c004
    }
    fn id_aa64isar0_el1(&mut self) -> u64 {
        0
    }
    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        0
    }
    fn current_el(&mut self) -> u8 {
        1
    }
    fn regime(&mut self) -> Regime {
        Regime::El1
    }
    fn sctlr(&mut self) -> u64 {
        0
    }
    fn set_sctlr(&mut self, _value: u64) {}
    fn set_translation(&mut self, _cfg: &MmuConfig) {}
    fn tlb_invalidate_all(&mut self) {}
    fn dc_cvac(&mut self, _va: u64) {}
    fn dc_civac(&mut self, _va: u64) {}
    fn dc_ivac(&mut self, _va: u64) {}
    fn dc_cvau(&mut self, _va: u64) {}
    fn ic_ivau(&mut self, _va: u64) {}
    fn ic_iallu(&mut self) {}
    fn dmb_sy(&mut self) {}
    fn dsb_sy(&mut self) {}
    fn dsb_ish(&mut self) {}
    fn isb(&mut self) {}
    fn sha256(&mut self, _addr: u64, _len: u64, _engine: Sha256Engine) -> [u8; 32] {
        [0; 32]
    }
    fn putc(&mut self, uart: u64, byte: u8) {
        assert_eq!(uart, UART);
        self.out.push(char::from(byte));
    }
    fn now_ns(&mut self) -> Option<u64> {
        let t = self.clock.get(self.reads).copied();
        self.reads += 1;
        t
    }
    fn enter_kernel(&mut self, _entry: u64, _dtb: u64) {
        self.entered = true;
    }
    fn park(&mut self) {}
}

fn run(clock: &[u64]) -> Clocked {
    let mut m = Clocked {
        clock: clock.to_vec(),
        reads: 0,
        out: String::new(),
        entered: false,
    };
    let p = HandoffParams {
        entry: 0x4020_0000,
        dtb: 0x4400_0000,
        uart: UART,
        flags: Flags(Flags::NO_VERIFY),
        ..Default::default()
    };
    let _ = handoff(&mut m, &p, &PurgatoryMemory::default());
    m
}

#[test]
fn entry_and_exit_counters_are_printed_first_and_last() {
    let m = run(&[12_000_000_345, 12_250_000_000]);
    assert!(m.entered);
    let lines: Vec<&str> = m.out.lines().collect();
    assert_eq!(
        lines,
        [
            "purgatory: entry at counter 12.000000345 s",
            "purgatory: verification skipped",
            "purgatory: exit at counter 12.250000000 s",
        ]
    );
}

#[test]
fn no_clock_no_counter_lines() {
    let m = run(&[]);
    assert!(m.entered);
    assert_eq!(m.out, "purgatory: verification skipped\r\n");
}

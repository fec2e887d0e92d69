//! Minimal console output through [`Machine::putc`], without `core::fmt`
//! (whose tables of pointers would need relocations in the purgatory).

use crate::{CacheState, Chunk, HandoffParams, Machine, Regime, Sha256Engine};

/// A PL011 at a physical address, or nothing (address 0).
#[derive(Debug, Clone, Copy)]
pub struct Console {
    uart: u64,
}

impl Console {
    /// Console on the PL011 at `uart` (0 = discard output).
    pub const fn new(uart: u64) -> Self {
        Self { uart }
    }

    /// Writes `s`.
    pub fn puts<M: Machine + ?Sized>(&self, m: &mut M, s: &str) {
        if self.uart == 0 {
            return;
        }
        for b in s.bytes() {
            m.putc(self.uart, b);
        }
    }

    /// Writes `v` as `0x` and 16 hex digits.
    pub fn put_hex<M: Machine + ?Sized>(&self, m: &mut M, v: u64) {
        if self.uart == 0 {
            return;
        }
        m.putc(self.uart, b'0');
        m.putc(self.uart, b'x');
        for i in (0..16).rev() {
            let nibble = ((v >> (4 * i)) & 0xf) as u8;
            let c = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            m.putc(self.uart, c);
        }
    }

    /// Writes `v` in decimal.
    pub fn put_dec<M: Machine + ?Sized>(&self, m: &mut M, v: usize) {
        if self.uart == 0 {
            return;
        }
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut v = v;
        loop {
            digits[n] = b"0123456789"[v % 10];
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..n].iter().rev() {
            m.putc(self.uart, *d);
        }
    }

    /// `purgatory: WHAT at counter S.NNNNNNNNN s` (the generic timer's
    /// virtual count in seconds, nanosecond digits), when there is a clock:
    /// the same clock as Linux's arm64 `sched_clock` (the arch timer's
    /// virtual counter, `arch_counter_get_cntvct`), without its offset.
    pub fn report_counter<M: Machine + ?Sized>(&self, m: &mut M, what: &str, ns: Option<u64>) {
        let Some(ns) = ns else { return };
        self.puts(m, "purgatory: ");
        self.puts(m, what);
        self.puts(m, " at counter ");
        self.put_dec(m, usize::try_from(ns / 1_000_000_000).unwrap_or(usize::MAX));
        self.puts(m, ".");
        let frac = ns % 1_000_000_000;
        let mut scale = 100_000_000;
        while scale > 0 {
            self.put_dec(m, usize::try_from(frac / scale % 10).unwrap_or(0));
            scale /= 10;
        }
        self.puts(m, " s\r\n");
    }

    /// `purgatory: segment I chunk J (0x...START..0x...END): SHA-256 mismatch`
    /// (the chunk's bytes, end exclusive).
    pub fn report_mismatch<M: Machine + ?Sized>(&self, m: &mut M, c: &Chunk) {
        self.puts(m, "purgatory: segment ");
        self.put_dec(m, c.segment);
        self.puts(m, " chunk ");
        self.put_dec(m, usize::try_from(c.index).unwrap_or(usize::MAX));
        self.puts(m, " (");
        self.put_hex(m, c.addr);
        self.puts(m, "..");
        self.put_hex(m, c.end());
        self.puts(m, "): SHA-256 mismatch\r\n");
    }

    /// `purgatory: N segments verified in K chunks of S KiB (sha2
    /// instructions, caches on) at EL2`
    pub fn report_ok<M: Machine + ?Sized>(
        &self,
        m: &mut M,
        p: &HandoffParams,
        engine: Sha256Engine,
        caches: CacheState,
        regime: Regime,
    ) {
        self.puts(m, "purgatory: ");
        self.put_dec(m, p.count);
        self.puts(m, " segments verified in ");
        self.put_dec(m, p.nr_digests as usize);
        self.puts(m, " chunks of ");
        self.put_dec(
            m,
            usize::try_from(p.chunk_size() >> 10).unwrap_or(usize::MAX),
        );
        self.puts(m, " KiB (");
        self.puts(
            m,
            match engine {
                Sha256Engine::Instructions => "sha2 instructions",
                Sha256Engine::Software => "software sha256",
            },
        );
        self.puts(
            m,
            match caches {
                CacheState::On => ", caches on)",
                CacheState::Off => ", caches off)",
            },
        );
        // Not a three-way `match` on strings: LLVM would turn it into a table
        // of absolute pointers, which the position-independent purgatory
        // must not contain (xtask checks its relocations).
        self.puts(m, " at EL");
        self.put_dec(m, if regime == Regime::El1 { 1 } else { 2 });
        if regime == Regime::El2Host {
            self.puts(m, " with E2H");
        }
        self.puts(m, "\r\n");
    }
}

//! The purgatory's PL011 output rules: a console that cannot transmit is
//! skipped, and a wait for FIFO room is bounded, so a disabled, clock-gated
//! or flow-controlled UART never stops the handoff.
//!
//! Registers and bits from the Arm PrimeCell UART (PL011) Technical
//! Reference Manual (DDI 0183), section 3.3: `UARTDR` at 0x000, `UARTFR`
//! at 0x018 (`TXFF`, bit 5: transmit FIFO full), `UARTCR` at 0x030
//! (`UARTEN`, bit 0; `TXE`, bit 8). The loader only names a UART whose
//! device-tree node is `compatible = "arm,pl011"` (kexec-core's
//! `fdt::console`), never an SBSA generic UART, which has no `UARTCR`.

/// Data register.
pub const UARTDR: u64 = 0x000;
/// Flag register.
pub const UARTFR: u64 = 0x018;
/// Control register.
pub const UARTCR: u64 = 0x030;
/// `UARTFR.TXFF`: the transmit FIFO (or holding register) is full.
pub const UARTFR_TXFF: u32 = 1 << 5;
/// `UARTCR.UARTEN`: the UART is enabled.
pub const UARTCR_UARTEN: u32 = 1 << 0;
/// `UARTCR.TXE`: transmission is enabled.
pub const UARTCR_TXE: u32 = 1 << 8;

/// How many times [`transmit`] reads `UARTFR` waiting for room before it
/// gives up. A character at 9600 baud takes about 1 ms; a Device read
/// takes tens of nanoseconds or more, so this is over a millisecond on any
/// core and at most a fraction of a second on a slow one.
pub const TX_POLL_LIMIT: u32 = 1 << 16;

/// 32-bit register access to one PL011.
pub trait Pl011Registers {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: u64) -> u32;
    /// Writes the register at `offset`.
    fn write(&mut self, offset: u64, value: u32);
}

/// What [`transmit`] did with a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmit {
    /// Written to `UARTDR`.
    Sent,
    /// Dropped: `UARTCR` says the UART or its transmitter is disabled.
    Disabled,
    /// Dropped: the FIFO stayed full for [`TX_POLL_LIMIT`] reads.
    TimedOut,
}

/// Writes `byte` to the PL011 behind `regs` unless it cannot transmit, and
/// waits for FIFO room at most [`TX_POLL_LIMIT`] reads of `UARTFR`.
pub fn transmit<R: Pl011Registers + ?Sized>(regs: &mut R, byte: u8) -> Transmit {
    let cr = regs.read(UARTCR);
    if cr & (UARTCR_UARTEN | UARTCR_TXE) != UARTCR_UARTEN | UARTCR_TXE {
        return Transmit::Disabled;
    }
    let mut polls = 0;
    while regs.read(UARTFR) & UARTFR_TXFF != 0 {
        polls += 1;
        if polls >= TX_POLL_LIMIT {
            return Transmit::TimedOut;
        }
    }
    regs.write(UARTDR, u32::from(byte));
    Transmit::Sent
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PL011 whose FIFO drains after `busy` reads of UARTFR (never, if
    /// `None`).
    struct Fake {
        cr: u32,
        busy: Option<u32>,
        fr_reads: u32,
        written: [u8; 4],
        n: usize,
    }

    impl Fake {
        fn new(cr: u32, busy: Option<u32>) -> Self {
            Self {
                cr,
                busy,
                fr_reads: 0,
                written: [0; 4],
                n: 0,
            }
        }
    }

    impl Pl011Registers for Fake {
        fn read(&mut self, offset: u64) -> u32 {
            match offset {
                UARTCR => self.cr,
                UARTFR => {
                    self.fr_reads += 1;
                    match self.busy {
                        Some(b) if self.fr_reads > b => 0,
                        _ => UARTFR_TXFF,
                    }
                }
                _ => panic!("unexpected read at {offset:#x}"),
            }
        }
        fn write(&mut self, offset: u64, value: u32) {
            assert_eq!(offset, UARTDR);
            self.written[self.n] = value.to_le_bytes()[0];
            self.n += 1;
        }
    }

    const ON: u32 = UARTCR_UARTEN | UARTCR_TXE;

    #[test]
    fn sends_when_enabled_and_room() {
        let mut u = Fake::new(ON, Some(0));
        assert_eq!(transmit(&mut u, b'k'), Transmit::Sent);
        assert_eq!(&u.written[..u.n], b"k");
    }

    #[test]
    fn waits_for_room_within_the_limit() {
        let mut u = Fake::new(ON, Some(TX_POLL_LIMIT - 1));
        assert_eq!(transmit(&mut u, b'x'), Transmit::Sent);
        assert_eq!(u.fr_reads, TX_POLL_LIMIT);
        assert_eq!(u.n, 1);
    }

    #[test]
    fn a_fifo_that_never_drains_is_given_up_after_the_limit() {
        let mut u = Fake::new(ON, None);
        assert_eq!(transmit(&mut u, b'x'), Transmit::TimedOut);
        assert_eq!(u.fr_reads, TX_POLL_LIMIT);
        assert_eq!(u.n, 0, "nothing written to a full FIFO");
    }

    #[test]
    fn disabled_uart_or_transmitter_is_skipped_without_waiting() {
        for cr in [0, UARTCR_UARTEN, UARTCR_TXE, 0x300] {
            let mut u = Fake::new(cr, None);
            assert_eq!(transmit(&mut u, b'x'), Transmit::Disabled, "cr={cr:#x}");
            assert_eq!((u.fr_reads, u.n), (0, 0), "cr={cr:#x}");
        }
    }
}

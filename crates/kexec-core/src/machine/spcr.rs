//! The console UART of the ACPI SPCR (`/sys/firmware/acpi/tables/SPCR`,
//! "Serial Port Console Redirection"): on a machine booted with ACPI the
//! device tree has no `stdout-path`, and this table is where the kernel
//! finds its console.
//!
//! Layout (`struct acpi_table_spcr`, include/acpi/actbl3.h, packed, 80
//! bytes): the 36-byte common header (signature `SPCR` at 0, length u32 at
//! 4, revision at 8), the interface type (u8) at 36, then the UART's
//! registers as a Generic Address Structure at 40 (address space id u8 at
//! 40, address u64 at 44) and the baud rate code (u8) at 58.
//!
//! What the kernel makes of it (`acpi_parse_spcr`, drivers/acpi/spcr.c):
//! interface types `ACPI_DBG2_ARM_PL011` (3), `ACPI_DBG2_ARM_SBSA_32BIT`
//! (0xd), `ACPI_DBG2_ARM_SBSA_GENERIC` (0xe) and `ACPI_DBG2_BCM2835`
//! (0x10) become a `pl011` console, the 16550 types a `uart` one, any other
//! type is no console; so is a baud rate code other than 0 (as the firmware
//! left it), 3, 4, 6 or 7 (9600 to 115200). The purgatory drives only the
//! first kind, a PrimeCell PL011 with its control register (an SBSA generic
//! UART has none, handoff's `pl011` module), in memory space (address
//! space 0, `ACPI_ADR_SPACE_SYSTEM_MEMORY`).

use super::{acpi_table_length, Error, ACPI_LENGTH_OFFSET as LENGTH_OFFSET};

/// The SPCR's signature.
pub const SPCR_SIGNATURE: &[u8; 4] = b"SPCR";
/// `sizeof(struct acpi_table_spcr)`: revisions 1 and 2 are this long.
pub const SPCR_LENGTH: usize = 80;
/// `ACPI_DBG2_ARM_PL011`: an Arm PrimeCell PL011.
pub const INTERFACE_ARM_PL011: u8 = 0x03;
/// `ACPI_ADR_SPACE_SYSTEM_MEMORY`: the registers are memory mapped.
pub const SPACE_SYSTEM_MEMORY: u8 = 0;
/// Offset of `interface_type`.
const INTERFACE_TYPE_OFFSET: usize = 36;
/// Offset of `serial_port.space_id`.
const SPACE_ID_OFFSET: usize = 40;
/// Offset of `serial_port.address`.
const ADDRESS_OFFSET: usize = 44;
/// Offset of `baud_rate`.
const BAUD_RATE_OFFSET: usize = 58;

/// The interface types the kernel drives with its `pl011` driver
/// (`acpi_parse_spcr`).
const KERNEL_PL011_TYPES: [u8; 4] = [INTERFACE_ARM_PL011, 0x0d, 0x0e, 0x10];
/// The 16550 interface types (`ACPI_DBG2_16550_COMPATIBLE`, `_SUBSET`,
/// `_NVIDIA`, `_WITH_GAS`).
const KERNEL_16550_TYPES: [u8; 4] = [0x00, 0x01, 0x05, 0x12];
/// The baud rate codes the kernel accepts.
const KERNEL_BAUD_CODES: [u8; 5] = [0, 3, 4, 6, 7];

/// The fields of an SPCR that say which UART it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spcr {
    /// The DBG2 interface type (the UART's kind).
    pub interface_type: u8,
    /// The address space of the registers.
    pub space_id: u8,
    /// The registers' address.
    pub address: u64,
    /// The baud rate code.
    pub baud_rate: u8,
}

/// The SPCR in `table`, or why it is not one.
pub fn parse(table: &[u8]) -> Result<Spcr, Error> {
    let length = acpi_table_length(table, SPCR_SIGNATURE, "SPCR", SPCR_LENGTH)?;
    if length < SPCR_LENGTH {
        return Err(Error::BadValue {
            what: "SPCR",
            detail: format!("header length {length}, less than the table's {SPCR_LENGTH} bytes"),
        });
    }
    let mut address = [0u8; 8];
    address.copy_from_slice(&table[ADDRESS_OFFSET..ADDRESS_OFFSET + 8]);
    Ok(Spcr {
        interface_type: table[INTERFACE_TYPE_OFFSET],
        space_id: table[SPACE_ID_OFFSET],
        address: u64::from_le_bytes(address),
        baud_rate: table[BAUD_RATE_OFFSET],
    })
}

impl Spcr {
    /// The PL011 the purgatory can print on: the kernel's console from
    /// this table (see the module's rules), a PrimeCell PL011, memory
    /// mapped at a non-zero address. Otherwise why not, for a note.
    pub fn pl011(&self) -> Result<u64, String> {
        let kind = self.interface_type;
        if !KERNEL_PL011_TYPES.contains(&kind) && !KERNEL_16550_TYPES.contains(&kind) {
            return Err(format!(
                "interface type {kind:#x} is no console the kernel knows"
            ));
        }
        if !KERNEL_BAUD_CODES.contains(&self.baud_rate) {
            return Err(format!(
                "baud rate code {} makes the kernel ignore the table",
                self.baud_rate
            ));
        }
        if kind != INTERFACE_ARM_PL011 {
            return Err(format!(
                "interface type {kind:#x} is not a PL011 with a control register"
            ));
        }
        if self.space_id != SPACE_SYSTEM_MEMORY {
            return Err(format!("address space {} is not memory", self.space_id));
        }
        if self.address == 0 {
            return Err("the UART's address is 0".to_owned());
        }
        Ok(self.address)
    }
}

/// An SPCR naming `interface_type` at `address` in memory with baud rate
/// code `baud_rate`, as QEMU's `virt` builds it (for tests and fixtures).
pub fn synthetic(interface_type: u8, address: u64, baud_rate: u8) -> Vec<u8> {
    let mut t = vec![0u8; SPCR_LENGTH];
    t[..4].copy_from_slice(SPCR_SIGNATURE);
    let length = u32::try_from(SPCR_LENGTH).unwrap_or(u32::MAX);
    t[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_le_bytes());
    t[8] = 2;
    t[INTERFACE_TYPE_OFFSET] = interface_type;
    t[SPACE_ID_OFFSET] = SPACE_SYSTEM_MEMORY;
    t[SPACE_ID_OFFSET + 1] = 8;
    t[SPACE_ID_OFFSET + 3] = 1;
    t[ADDRESS_OFFSET..ADDRESS_OFFSET + 8].copy_from_slice(&address.to_le_bytes());
    t[BAUD_RATE_OFFSET] = baud_rate;
    let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemus_pl011_is_the_console() {
        let t = synthetic(INTERFACE_ARM_PL011, 0x0900_0000, 3);
        assert_eq!(parse(&t).unwrap().pl011(), Ok(0x0900_0000));
        // Every byte of a valid table sums to 0.
        assert_eq!(t.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0);
    }

    /// The SPCR QEMU's `virt` machine built for a guest booted with ACPI,
    /// as `kexec capture-sysroot` read it from sysfs.
    const QEMU_SPCR: &[u8] = include_bytes!(
        "../../../../fixtures/sysroots/virt-uefi-acpi/sys/firmware/acpi/tables/SPCR"
    );

    #[test]
    fn qemus_real_table_names_its_pl011_as_synthetic_does() {
        let t = parse(QEMU_SPCR).unwrap();
        assert_eq!(t.pl011(), Ok(0x0900_0000));
        assert_eq!(t.baud_rate, 3, "9600");
        // The synthetic table has the real one's interface type and
        // registers (the GAS: space, bit width, offset, access size,
        // address) and baud rate; it leaves the interrupt out.
        let made = synthetic(INTERFACE_ARM_PL011, 0x0900_0000, 3);
        assert_eq!(made[36..52], QEMU_SPCR[36..52]);
        assert_eq!(made[BAUD_RATE_OFFSET], QEMU_SPCR[BAUD_RATE_OFFSET]);
    }

    #[test]
    fn what_the_kernel_does_not_use_or_the_purgatory_cannot_drive_is_no_console() {
        let pl011 = |t: Vec<u8>| parse(&t).unwrap().pl011();
        for baud in [0, 3, 4, 6, 7] {
            assert!(pl011(synthetic(INTERFACE_ARM_PL011, 0x1000, baud)).is_ok());
        }
        for baud in [1, 2, 5, 8, 0xff] {
            let e = pl011(synthetic(INTERFACE_ARM_PL011, 0x1000, baud)).unwrap_err();
            assert!(e.contains("baud rate code"), "{e}");
        }
        // The kernel's pl011 console, but without UARTCR (SBSA), or a
        // 16550: known consoles the purgatory does not drive.
        for kind in [0x0d, 0x0e, 0x10, 0x00, 0x01, 0x05, 0x12] {
            let e = pl011(synthetic(kind, 0x1000, 7)).unwrap_err();
            assert!(e.contains("not a PL011"), "{kind:#x}: {e}");
        }
        for kind in [0x02, 0x04, 0x0f, 0x11, 0x13, 0xff] {
            let e = pl011(synthetic(kind, 0x1000, 7)).unwrap_err();
            assert!(e.contains("no console the kernel knows"), "{kind:#x}: {e}");
        }
        let mut io = synthetic(INTERFACE_ARM_PL011, 0x3f8, 7);
        io[SPACE_ID_OFFSET] = 1;
        assert!(pl011(io).unwrap_err().contains("address space 1"));
        assert!(pl011(synthetic(INTERFACE_ARM_PL011, 0, 7))
            .unwrap_err()
            .contains("address is 0"));
    }

    #[test]
    fn a_table_that_is_not_an_spcr_is_refused() {
        let good = synthetic(INTERFACE_ARM_PL011, 0x0900_0000, 3);
        for len in [0, 4, SPCR_LENGTH - 1] {
            assert!(matches!(
                parse(&good[..len]),
                Err(Error::TooShort {
                    need: SPCR_LENGTH,
                    ..
                })
            ));
        }
        let mut facp = good.clone();
        facp[..4].copy_from_slice(b"FACP");
        assert!(parse(&facp).unwrap_err().to_string().contains("\"FACP\""));
        for length in [0u32, 79, 81, u32::MAX] {
            let mut t = good.clone();
            t[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_le_bytes());
            let e = parse(&t).unwrap_err().to_string();
            assert!(e.contains(&format!("header length {length}")), "{e}");
        }
        // A longer table (a later revision) that says so is read.
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 8]);
        longer[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&88u32.to_le_bytes());
        assert_eq!(parse(&longer).unwrap(), parse(&good).unwrap());
    }
}

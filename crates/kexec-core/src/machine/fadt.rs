//! The ARM boot flags of the ACPI FADT (`/sys/firmware/acpi/tables/FACP`):
//! whether PSCI starts and stops CPUs, and through which conduit.
//!
//! Layout (ACPI 6.x § 5.2.9 "Fixed ACPI Description Table";
//! `struct acpi_table_fadt`, include/acpi/actbl.h): the 36-byte common
//! header (signature `FACP` at 0, length u32 at 4, revision at 8), then
//! `arm_boot_flags` u16 at offset 129 and the minor revision at 131, both
//! from ACPI 5.1. Flags: `ACPI_FADT_PSCI_COMPLIANT` (bit 0) and
//! `ACPI_FADT_PSCI_USE_HVC` (bit 1). Linux uses PSCI on an ACPI arm64
//! machine only with the first (`psci_acpi_init`,
//! drivers/firmware/psci/psci.c); without it the CPUs use the parking
//! protocol, which cannot turn a CPU off.

use super::{acpi_table_length, Error, ACPI_HEADER_SIZE, ACPI_LENGTH_OFFSET as LENGTH_OFFSET};

/// The FADT's signature.
pub const FADT_SIGNATURE: &[u8; 4] = b"FACP";
/// Offset of `arm_boot_flags`.
pub const ARM_BOOT_FLAGS_OFFSET: usize = 129;
/// Offset of the FADT minor revision.
pub const MINOR_REVISION_OFFSET: usize = 131;
/// `ACPI_FADT_PSCI_COMPLIANT`: PSCI 0.2 or later is implemented.
pub const ACPI_FADT_PSCI_COMPLIANT: u16 = 1;
/// `ACPI_FADT_PSCI_USE_HVC`: HVC, not SMC, is the PSCI conduit.
pub const ACPI_FADT_PSCI_USE_HVC: u16 = 1 << 1;

/// What the FADT says about PSCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmBootFlags {
    /// `ACPI_FADT_PSCI_COMPLIANT`.
    pub psci_compliant: bool,
    /// `ACPI_FADT_PSCI_USE_HVC`.
    pub psci_use_hvc: bool,
    /// FADT major revision (header) and minor revision.
    pub revision: (u8, u8),
}

/// Read the ARM boot flags of a FADT, or say why `table` is not one that
/// has them (before ACPI 5.1 the fields do not exist).
pub fn arm_boot_flags(table: &[u8]) -> Result<ArmBootFlags, Error> {
    let need = MINOR_REVISION_OFFSET + 1;
    let length = acpi_table_length(table, FADT_SIGNATURE, "FADT", ACPI_HEADER_SIZE)?;
    if length < need {
        return Err(Error::TooShort {
            what: "FADT (ARM boot flags are ACPI 5.1 and later)",
            len: length,
            need,
        });
    }
    let flags = u16::from_le_bytes([
        table[ARM_BOOT_FLAGS_OFFSET],
        table[ARM_BOOT_FLAGS_OFFSET + 1],
    ]);
    Ok(ArmBootFlags {
        psci_compliant: flags & ACPI_FADT_PSCI_COMPLIANT != 0,
        psci_use_hvc: flags & ACPI_FADT_PSCI_USE_HVC != 0,
        revision: (table[8], table[MINOR_REVISION_OFFSET]),
    })
}

/// A FADT of `len` bytes with `flags` (for tests and fixtures).
pub fn synthetic(len: usize, flags: u16) -> Vec<u8> {
    let mut t = vec![0u8; len];
    t[..4].copy_from_slice(FADT_SIGNATURE);
    t[LENGTH_OFFSET..LENGTH_OFFSET + 4]
        .copy_from_slice(&u32::try_from(len).expect("a FADT is small").to_le_bytes());
    t[8] = 6;
    if len > MINOR_REVISION_OFFSET {
        t[ARM_BOOT_FLAGS_OFFSET..ARM_BOOT_FLAGS_OFFSET + 2].copy_from_slice(&flags.to_le_bytes());
        t[MINOR_REVISION_OFFSET] = 3;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psci_over_hvc_and_smc() {
        // One byte short of the minor revision: a FADT without the flags.
        assert!(matches!(
            arm_boot_flags(&synthetic(MINOR_REVISION_OFFSET, 0b11)),
            Err(Error::TooShort { .. })
        ));
        let f = arm_boot_flags(&synthetic(276, 0b11)).unwrap();
        assert!(f.psci_compliant && f.psci_use_hvc);
        assert_eq!(f.revision, (6, 3));
        let f = arm_boot_flags(&synthetic(276, 0b01)).unwrap();
        assert!(f.psci_compliant && !f.psci_use_hvc);
        let f = arm_boot_flags(&synthetic(132, 0)).unwrap();
        assert!(!f.psci_compliant);
    }

    #[test]
    fn short_foreign_and_lying_tables() {
        assert!(matches!(
            arm_boot_flags(&synthetic(116, 0)),
            Err(Error::TooShort { need: 132, .. })
        ));
        assert!(matches!(
            arm_boot_flags(&[0u8; 10]),
            Err(Error::TooShort { need: 36, .. })
        ));
        let mut apic = synthetic(276, 1);
        apic[..4].copy_from_slice(b"APIC");
        assert!(arm_boot_flags(&apic)
            .unwrap_err()
            .to_string()
            .contains("\"APIC\""));
        let mut long = synthetic(276, 1);
        long[4] = 0xff;
        long[5] = 0xff;
        assert!(arm_boot_flags(&long)
            .unwrap_err()
            .to_string()
            .contains("exceeds"));
    }
}

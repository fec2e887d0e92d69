//! The CPUs of the ACPI MADT (`/sys/firmware/acpi/tables/APIC`): the MPIDR
//! of each GIC CPU interface (GICC) structure that Linux would use.
//!
//! Layout (ACPI 6.x § 5.2.12 "Multiple APIC Description Table";
//! `struct acpi_table_madt` and `struct acpi_madt_generic_interrupt`,
//! include/acpi/actbl2.h, packed): the 36-byte common header (signature
//! `APIC` at 0, length u32 at 4), then a u32 address and u32 flags: the
//! structures start at 44. Each begins with its type (u8) and length (u8);
//! a GICC is type 11 (`ACPI_MADT_TYPE_GENERIC_INTERRUPT`), with its flags
//! u32 at 12 (`ACPI_MADT_ENABLED`, bit 0) and `arm_mpidr` u64 at 68.
//!
//! The walk is the kernel's (`acpi_parse_entries_array`,
//! drivers/acpi/tables.c): structures are read while their 2-byte header
//! ends before the table's length; a zero length ends the walk with an
//! error, and a GICC shorter than 76 bytes (`ACPI_MADT_GICC_MIN_LENGTH`,
//! arch/arm64/include/asm/acpi.h: up to `efficiency_class`) or running past
//! the table is refused, and no GICC after it is used (`BAD_MADT_GICC_ENTRY`;
//! the walk counts errors and calls no handler after the first). Of the
//! rest, arm64 keeps a CPU that is enabled, whose MPIDR has no bit outside
//! `MPIDR_HWID_BITMASK` and is not `INVALID_HWID`, and is not a duplicate
//! (`acpi_map_gic_cpu_interface`, arch/arm64/kernel/smp.c).

use super::fadt::ArmBootFlags;
use super::{acpi_table_length, Error, ACPI_LENGTH_OFFSET as LENGTH_OFFSET};
use crate::fdt::{PsciCpus, PsciMethod, MPIDR_HWID_BITMASK};

/// The MADT's signature.
pub const MADT_SIGNATURE: &[u8; 4] = b"APIC";
/// Where the structures start: the common header, the local interrupt
/// controller address and the flags.
pub const MADT_STRUCTURES_OFFSET: usize = 44;
/// `ACPI_MADT_TYPE_GENERIC_INTERRUPT`.
pub const GICC_TYPE: u8 = 11;
/// `ACPI_MADT_GICC_MIN_LENGTH`: the GICC up to `efficiency_class` (ACPI 5.1).
pub const GICC_MIN_LENGTH: usize = 76;
/// A GICC's length in ACPI 6.3 and later (with the SPE interrupt).
pub const GICC_LENGTH: usize = 80;
/// Offset of a GICC's flags.
const GICC_FLAGS_OFFSET: usize = 12;
/// Offset of a GICC's `arm_mpidr`.
const GICC_MPIDR_OFFSET: usize = 68;
/// `ACPI_MADT_ENABLED`: the processor is usable.
pub const ACPI_MADT_ENABLED: u32 = 1;
/// Linux's `INVALID_HWID`.
const INVALID_HWID: u64 = u64::MAX;

fn u32_at(t: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&t[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The MPIDR affinities of the CPUs Linux takes from `table`, in table
/// order, or why it is not a MADT the walk can read.
pub fn cpu_mpidrs(table: &[u8]) -> Result<Vec<u64>, Error> {
    let length = acpi_table_length(table, MADT_SIGNATURE, "MADT", MADT_STRUCTURES_OFFSET)?;
    let mut cpus = Vec::new();
    let mut broken = false;
    let mut at = MADT_STRUCTURES_OFFSET;
    while at + 2 < length {
        let (kind, len) = (table[at], usize::from(table[at + 1]));
        if kind == GICC_TYPE && !broken {
            if len < GICC_MIN_LENGTH || at + len > length {
                broken = true;
            } else {
                let flags = u32_at(table, at + GICC_FLAGS_OFFSET);
                let lo = u64::from(u32_at(table, at + GICC_MPIDR_OFFSET));
                let hi = u64::from(u32_at(table, at + GICC_MPIDR_OFFSET + 4));
                let mpidr = (hi << 32) | lo;
                let valid = mpidr & !MPIDR_HWID_BITMASK == 0 && mpidr != INVALID_HWID;
                if flags & ACPI_MADT_ENABLED != 0 && valid && !cpus.contains(&mpidr) {
                    cpus.push(mpidr);
                }
            }
        }
        if len == 0 {
            return Err(Error::BadValue {
                what: "MADT",
                detail: format!("a structure of length 0 at offset {at}"),
            });
        }
        at += len;
    }
    Ok(cpus)
}

/// The CPUs an ACPI machine lets the purgatory start with PSCI, at most
/// `limit` of `mpidrs` (the MADT's, [`cpu_mpidrs`]): with the FADT's
/// `ACPI_FADT_PSCI_COMPLIANT` (PSCI 0.2 or later; without it Linux uses the
/// parking protocol), over HVC with `ACPI_FADT_PSCI_USE_HVC`, else SMC
/// (`psci_acpi_init`, drivers/firmware/psci/psci.c). `None` without PSCI
/// or with one CPU (the one that runs the purgatory).
pub fn psci_cpus(flags: &ArmBootFlags, mpidrs: &[u64], limit: usize) -> Option<PsciCpus> {
    if !flags.psci_compliant || mpidrs.len() < 2 {
        return None;
    }
    let method = if flags.psci_use_hvc {
        PsciMethod::Hvc
    } else {
        PsciMethod::Smc
    };
    let mpidrs: Vec<u64> = mpidrs.iter().copied().take(limit).collect();
    (!mpidrs.is_empty()).then_some(PsciCpus { method, mpidrs })
}

/// A MADT with one GICC (ACPI 6.3 length) per `(flags, mpidr)` (for tests
/// and fixtures).
pub fn synthetic(gicc: &[(u32, u64)]) -> Vec<u8> {
    let mut t = vec![0u8; MADT_STRUCTURES_OFFSET];
    t[..4].copy_from_slice(MADT_SIGNATURE);
    t[8] = 5;
    for &(flags, mpidr) in gicc {
        let mut s = vec![0u8; GICC_LENGTH];
        s[0] = GICC_TYPE;
        s[1] = u8::try_from(GICC_LENGTH).unwrap_or(u8::MAX);
        s[GICC_FLAGS_OFFSET..GICC_FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
        s[GICC_MPIDR_OFFSET..GICC_MPIDR_OFFSET + 8].copy_from_slice(&mpidr.to_le_bytes());
        t.extend_from_slice(&s);
    }
    let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
    t[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_len(t: &mut [u8]) {
        let len = u32::try_from(t.len()).unwrap();
        t[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_le_bytes());
    }

    #[test]
    fn enabled_valid_unique_cpus_in_table_order() {
        let t = synthetic(&[
            (1, 0),
            (1, 0x100),
            (0, 2),             // disabled
            (1, 1 << 31),       // a bit outside the affinity fields
            (1, u64::MAX),      // INVALID_HWID
            (1, 0x100),         // duplicate
            (1, 0x1_0000_0001), // Aff3 and Aff0
            (0b1000, 3),        // online capable but not enabled
        ]);
        assert_eq!(cpu_mpidrs(&t).unwrap(), [0, 0x100, 0x1_0000_0001]);
    }

    #[test]
    fn psci_cpus_need_psci_and_two_cpus() {
        let flags = |psci_compliant, psci_use_hvc| ArmBootFlags {
            psci_compliant,
            psci_use_hvc,
            revision: (6, 3),
        };
        let four = [0, 1, 2, 3];
        let hvc = psci_cpus(&flags(true, true), &four, 7).unwrap();
        assert_eq!((hvc.method, hvc.mpidrs), (PsciMethod::Hvc, four.to_vec()));
        let smc = psci_cpus(&flags(true, false), &four, 2).unwrap();
        assert_eq!((smc.method, smc.mpidrs), (PsciMethod::Smc, vec![0, 1]));
        assert_eq!(
            psci_cpus(&flags(false, true), &four, 7),
            None,
            "parking protocol"
        );
        assert_eq!(psci_cpus(&flags(true, true), &[0], 7), None, "one CPU");
        let two = psci_cpus(&flags(true, true), &[0, 1], 7).unwrap();
        assert_eq!(two.mpidrs, [0, 1], "two CPUs: one to start");
        assert_eq!(psci_cpus(&flags(true, true), &four, 0), None, "no room");
    }

    /// The walk reads a structure only while its 2-byte header ends before
    /// the table's end (`acpi_parse_entries_array`, drivers/acpi/tables.c:
    /// `entry.hdr + subtable_len < table_end`, the length 2 for a MADT):
    /// two bytes left over, even a zero length, are not read.
    #[test]
    fn a_header_that_ends_at_the_tables_end_is_not_read() {
        let mut t = synthetic(&[(1, 0), (1, 1)]);
        t.extend_from_slice(&[0, 0]);
        set_len(&mut t);
        assert_eq!(cpu_mpidrs(&t).unwrap(), [0, 1]);
        t.push(0);
        set_len(&mut t);
        assert!(
            cpu_mpidrs(&t).is_err(),
            "three bytes: a zero length is read"
        );
    }

    #[test]
    fn other_structures_are_walked_over() {
        let mut t = synthetic(&[(1, 0)]);
        // A GIC distributor (type 12, 24 bytes) between two GICCs.
        let mut gicd = vec![0u8; 24];
        gicd[0] = 12;
        gicd[1] = 24;
        t.extend_from_slice(&gicd);
        t.extend_from_slice(&synthetic(&[(1, 1)])[MADT_STRUCTURES_OFFSET..]);
        set_len(&mut t);
        assert_eq!(cpu_mpidrs(&t).unwrap(), [0, 1]);
    }

    /// An ACPI 5.1 GICC (76 bytes) is read; a shorter one, or one past
    /// the table's end, ends the use of GICCs (the CPUs before it stay).
    #[test]
    fn short_gicc_structures_as_the_kernel_treats_them() {
        let mut t = synthetic(&[(1, 0)]);
        let mut old = vec![0u8; GICC_MIN_LENGTH];
        old[0] = GICC_TYPE;
        old[1] = 76;
        old[GICC_FLAGS_OFFSET] = 1;
        old[GICC_MPIDR_OFFSET] = 5;
        t.extend_from_slice(&old);
        set_len(&mut t);
        assert_eq!(cpu_mpidrs(&t).unwrap(), [0, 5]);
        let mut short = t.clone();
        let at = short.len() - GICC_MIN_LENGTH;
        short[at + 1] = 75;
        short.truncate(at + 75);
        short.extend_from_slice(&synthetic(&[(1, 7)])[MADT_STRUCTURES_OFFSET..]);
        set_len(&mut short);
        assert_eq!(
            cpu_mpidrs(&short).unwrap(),
            [0],
            "nothing after the short one"
        );
        // A GICC whose length runs past the table.
        let mut past = synthetic(&[(1, 0), (1, 1)]);
        past.truncate(past.len() - 1);
        set_len(&mut past);
        assert_eq!(cpu_mpidrs(&past).unwrap(), [0]);
    }

    #[test]
    fn zero_length_short_foreign_and_lying_tables() {
        let mut zero = synthetic(&[(1, 0)]);
        zero.extend_from_slice(&[12, 0, 0, 0]);
        set_len(&mut zero);
        assert!(cpu_mpidrs(&zero)
            .unwrap_err()
            .to_string()
            .contains("length 0 at offset 124"));
        assert!(matches!(
            cpu_mpidrs(&[0u8; 10]),
            Err(Error::TooShort { need: 44, .. })
        ));
        let mut facp = synthetic(&[(1, 0)]);
        facp[..4].copy_from_slice(b"FACP");
        assert!(cpu_mpidrs(&facp)
            .unwrap_err()
            .to_string()
            .contains("\"FACP\""));
        let mut long = synthetic(&[(1, 0)]);
        long[LENGTH_OFFSET + 1] = 0xff;
        assert!(cpu_mpidrs(&long)
            .unwrap_err()
            .to_string()
            .contains("exceeds"));
        // A length that stops before the structures: no CPU.
        let mut header_only = synthetic(&[(1, 0)]);
        header_only[LENGTH_OFFSET] = 44;
        header_only[LENGTH_OFFSET + 1] = 0;
        assert_eq!(cpu_mpidrs(&header_only).unwrap(), Vec::<u64>::new());
    }
}

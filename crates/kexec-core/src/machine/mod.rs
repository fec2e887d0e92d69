//! The running machine's state files that `kexec doctor` reads, parsed as
//! bytes: the kernel's build configuration ([`kconfig`]), `CTR_EL0`
//! ([`ctr`]), the ACPI FADT's ARM boot flags ([`fadt`]), the MADT's
//! CPUs ([`madt`]) and the SPCR's console ([`spcr`]), the UEFI
//! `SecureBoot` variable ([`efivar`]) and a process's credentials from
//! `/proc/<pid>/status` ([`status`]). Every one is untrusted input: a file
//! that is not what it should be gives an [`Error`] naming the problem.
//! The device tree's PSCI and CPU nodes are read by
//! [`crate::fdt::cpu_boot`].

pub mod ctr;
pub mod efivar;
pub mod fadt;
pub mod kconfig;
pub mod madt;
pub mod spcr;
pub mod status;

/// Why a machine state file was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `CONFIG_…` line at all.
    #[error("not a kernel configuration: no CONFIG_ line")]
    NotAConfig,
    /// The file is shorter than the structure it must hold.
    #[error("{what}: {len} bytes, at least {need} expected")]
    TooShort {
        /// What was being read.
        what: &'static str,
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("{what}: {detail}")]
    BadValue {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Offset of the `length` (u32) in an ACPI table's common header.
pub(crate) const ACPI_LENGTH_OFFSET: usize = 4;
/// Size of an ACPI table's common header (ACPI 6.x § 5.2.6).
pub(crate) const ACPI_HEADER_SIZE: usize = 36;

/// The header `length` of the ACPI table `what` in `table`, once `table`
/// holds at least `need` bytes (never fewer than the common header),
/// starts with `signature` and its length is within what was read (a sysfs
/// table file is the whole table).
pub(crate) fn acpi_table_length(
    table: &[u8],
    signature: &[u8; 4],
    what: &'static str,
    need: usize,
) -> Result<usize, Error> {
    let need = need.max(ACPI_HEADER_SIZE);
    if table.len() < need {
        return Err(Error::TooShort {
            what,
            len: table.len(),
            need,
        });
    }
    if &table[..4] != signature {
        return Err(Error::BadValue {
            what,
            detail: format!(
                "signature {:?}, expected {:?}",
                String::from_utf8_lossy(&table[..4]),
                String::from_utf8_lossy(signature)
            ),
        });
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&table[ACPI_LENGTH_OFFSET..ACPI_LENGTH_OFFSET + 4]);
    let length = usize::try_from(u32::from_le_bytes(word)).unwrap_or(usize::MAX);
    if length > table.len() {
        return Err(Error::BadValue {
            what,
            detail: format!(
                "header length {length} exceeds the {} bytes read",
                table.len()
            ),
        });
    }
    Ok(length)
}

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

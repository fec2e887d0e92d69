//! The device tree handed to the new kernel: validation and `/chosen` edits.
//!
//! The blob is the running kernel's `/sys/firmware/fdt` (or `--dtb FILE`). We
//! check the header ourselves (Devicetree Specification v0.4 § 5.2, "Header"),
//! parse it with [`dtoolkit`] into an owned tree — which keeps the memory
//! reservation block and every node and property — edit `/chosen`
//! (Documentation/devicetree/bindings/chosen.txt and the dt-schema `chosen`
//! binding) and serialise it back; and find the console UART the purgatory
//! prints on.
//!
//! One file per responsibility, each depending only on those listed before
//! it: reading the blob and the [`Error`] type (`parse.rs`), the `/chosen`
//! edits (`chosen.rs`), what the tree hands over of the running kernel's
//! boot state and what it must not pass on stale (`handover.rs`), the
//! console UART (`console.rs`), and how the CPUs are started and stopped
//! (`cpus.rs`, for `kexec doctor`).

#[cfg(test)]
mod blob_tests;
mod chosen;
mod console;
#[cfg(test)]
mod console_tests;
mod cpus;
mod handover;
mod parse;
#[cfg(test)]
mod tests;

pub(crate) use chosen::edit_chosen_tree;
#[cfg(test)]
pub(crate) use chosen::ELFCOREHDR;
pub use chosen::{
    chosen_initrd, edit_chosen, read_back, reserved_ranges, ChosenEdit, CrashChosen, EditedDtb,
    PropertyChange, ReadBack, BOOTARGS, CHOSEN, RNG_SEED_LEN, UEFI_MMAP_SIZE, UEFI_MMAP_START,
};
pub(crate) use console::stdout_pl011;
pub use cpus::{
    cpu_boot, cpu_boot_of, psci_cpus, CpuBoot, CpuNode, PsciCpus, PsciMethod, PsciNode,
    MPIDR_HWID_BITMASK, PSCI_COMPATIBLE,
};
pub use handover::{
    prepare, Fate, Handover, Input, Removed, Reservation, GIC_V3_ITS_COMPATIBLE, IMA_KEXEC_BUFFER,
    KHO_PREFIX, PAGE_SIZES, UEFI_PREFIX, UEFI_SYSTEM_TABLE,
};
pub use parse::{
    parse, parse_header, parse_lenient, Error, FdtHeader, FDT_MAGIC, MAX_USABLE_RANGES,
};

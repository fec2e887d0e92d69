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
//! edits (`chosen.rs`), the console UART (`console.rs`).

mod chosen;
mod console;
mod parse;
#[cfg(test)]
mod tests;

pub use chosen::{
    chosen_initrd, chosen_node, edit_chosen, render_value, root_cells, ChosenEdit, CrashChosen,
    EditedDtb, PropertyChange, RootCells, BOOTARGS, CHOSEN, DEFAULT_ADDRESS_CELLS,
    DEFAULT_SIZE_CELLS, ELFCOREHDR, INITRD_END, INITRD_START, KASLR_SEED, RNG_SEED, RNG_SEED_LEN,
    USABLE_MEMORY_RANGE,
};
pub use console::{stdout_pl011, PL011_COMPATIBLE};
pub use parse::{
    parse, parse_header, parse_lenient, Error, FdtHeader, BOOT_CPUID_PHYS_OFFSET, DT_STRUCT_ALIGN,
    FDT_HEADER_LEN, FDT_MAGIC, FDT_VERSION, MAX_DEPTH, MAX_USABLE_RANGES, MEM_RSVMAP_ALIGN,
};

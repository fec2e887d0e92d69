//! The `/chosen` edits of a load: [`edit_chosen`] and the read-back
//! [`chosen_initrd`] (Documentation/devicetree/bindings/chosen.txt and the
//! dt-schema `chosen` binding).
//!
//! Edits for a load (kexec-tools `setup_2nd_dtb`, arch/arm64/kernel/machine_kexec*.c):
//! * `bootargs` — the new command line, if one was given;
//! * `linux,initrd-start` / `linux,initrd-end` — the initrd's physical range,
//!   written as u64 like kexec-tools (the kernel reads either size:
//!   drivers/of/fdt.c `early_init_dt_check_for_initrd`); removed without initrd;
//! * `kaslr-seed` (u64) and `rng-seed` (bytes) — fresh randomness from the
//!   caller: the running kernel zeroed/removed the ones it booted with;
//! * `linux,elfcorehdr` and `linux,usable-memory-range` — set for a crash load,
//!   with cells per the root `#address-cells`/`#size-cells`, usable ranges high
//!   first (drivers/of/fdt.c `early_init_dt_check_for_usable_mem_range`);
//!   removed for a normal load, where they would be stale;
//! * everything else, notably `linux,uefi-*` and the memory reservations, is kept
//!   (what must not be passed on stale is taken out before, by
//!   [`super::prepare`]).

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};

use crate::iomem::MemoryRange;
use crate::layout::DTB_MAX_SIZE;

use super::parse::{be32, parse, parse_header, Error, BOOT_CPUID_PHYS_OFFSET, MAX_USABLE_RANGES};

/// Root `#address-cells` when the root has none: what Linux reads then
/// (`OF_ROOT_NODE_ADDR_CELLS_DEFAULT`, 1 on every architecture but SPARC,
/// drivers/of/of_private.h; used by `early_init_dt_scan_root` in
/// drivers/of/fdt.c to parse `linux,elfcorehdr`, `linux,usable-memory-range`
/// and `/memory` `reg`). The DT spec's § 2.3.5 default of 2 is not what the
/// kernel does, and the crash kernel is the reader that matters.
pub(crate) const DEFAULT_ADDRESS_CELLS: u32 = 1;
/// Root `#size-cells` when the root has none (`OF_ROOT_NODE_SIZE_CELLS_DEFAULT`,
/// drivers/of/of_private.h; the DT spec's default is 1 too).
pub(crate) const DEFAULT_SIZE_CELLS: u32 = 1;
/// Length of the `rng-seed` kexec-tools writes, and so do we.
pub const RNG_SEED_LEN: usize = 128;

/// Name of the node the edits go to when the tree has none: `chosen`, a
/// child of the root (DT spec § 3.6). An existing `chosen@N` is edited
/// instead when the kernel would read it: see `chosen_node`.
pub const CHOSEN: &str = "chosen";

/// `/chosen` property: the kernel command line.
pub const BOOTARGS: &str = "bootargs";
/// `/chosen` property: initrd start address.
pub(crate) const INITRD_START: &str = "linux,initrd-start";
/// `/chosen` property: initrd end address (exclusive).
pub(crate) const INITRD_END: &str = "linux,initrd-end";
/// `/chosen` property: KASLR seed, u64.
pub(crate) const KASLR_SEED: &str = "kaslr-seed";
/// `/chosen` property: entropy for the new kernel's RNG.
pub(crate) const RNG_SEED: &str = "rng-seed";
/// `/chosen` property: crash kernel's ELF core header `<addr size>`.
pub(crate) const ELFCOREHDR: &str = "linux,elfcorehdr";
/// `/chosen` property: crash kernel's usable memory `<addr size>…`.
pub(crate) const USABLE_MEMORY_RANGE: &str = "linux,usable-memory-range";
/// `/chosen` property the EFI stub writes: physical address of the EFI
/// memory map, u64 (drivers/firmware/efi/libstub/fdt.c `update_fdt_memmap`).
pub const UEFI_MMAP_START: &str = "linux,uefi-mmap-start";
/// `/chosen` property the EFI stub writes: the EFI memory map's size, u32.
pub const UEFI_MMAP_SIZE: &str = "linux,uefi-mmap-size";
/// The root node's `#address-cells` and `#size-cells`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RootCells {
    /// `#address-cells`: 1 or 2.
    pub address: u32,
    /// `#size-cells`: 1 or 2.
    pub size: u32,
    /// Whether the root declares `#address-cells` (else the kernel's default).
    pub address_declared: bool,
    /// Whether the root declares `#size-cells` (else the kernel's default).
    pub size_declared: bool,
}

fn cells_property(node: &DeviceTreeNode, name: &'static str, default: u32) -> Result<u32, Error> {
    match node.property(name) {
        None => Ok(default),
        Some(p) => {
            let v = p.value();
            if v.len() != 4 {
                return Err(Error::BadCellsProperty(name));
            }
            Ok(be32(v, 0))
        }
    }
}

/// Reads the root cells, accepting only 1 or 2 of each (arm64 addresses fit
/// in two cells; 0 or 3+ cannot describe a memory range we write).
pub(crate) fn root_cells(tree: &DeviceTree) -> Result<RootCells, Error> {
    let address = cells_property(&tree.root, "#address-cells", DEFAULT_ADDRESS_CELLS)?;
    if !(1..=2).contains(&address) {
        return Err(Error::BadAddressCells(address));
    }
    let size = cells_property(&tree.root, "#size-cells", DEFAULT_SIZE_CELLS)?;
    if !(1..=2).contains(&size) {
        return Err(Error::BadSizeCells(size));
    }
    Ok(RootCells {
        address,
        size,
        address_declared: tree.root.property("#address-cells").is_some(),
        size_declared: tree.root.property("#size-cells").is_some(),
    })
}

/// Appends `value` as `cells` big-endian 32-bit cells; `field` is
/// `"#address-cells"` or `"#size-cells"`, `declared` whether the root has it.
fn push_cells(
    out: &mut Vec<u8>,
    property: &'static str,
    (field, declared): (&'static str, bool),
    value: u64,
    cells: u32,
) -> Result<(), Error> {
    if cells == 1 {
        let v = u32::try_from(value).map_err(|_| Error::ValueTooLargeForCells {
            property,
            field,
            value,
            cells,
            declared,
        })?;
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(())
}

/// `<addr size>` pairs encoded with the root cells.
fn encode_ranges(
    property: &'static str,
    ranges: &[MemoryRange],
    cells: RootCells,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for r in ranges {
        let address = ("#address-cells", cells.address_declared);
        push_cells(&mut out, property, address, r.start, cells.address)?;
        let size = ("#size-cells", cells.size_declared);
        push_cells(&mut out, property, size, r.size(), cells.size)?;
    }
    Ok(out)
}

/// What a crash load adds to `/chosen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashChosen {
    /// Where the ELF core header segment lies; `None` leaves
    /// `linux,elfcorehdr` out (no header generated yet).
    pub elfcorehdr: Option<MemoryRange>,
    /// The crash kernel's usable memory, high range first.
    pub usable: Vec<MemoryRange>,
}

/// The `/chosen` edits of one load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChosenEdit {
    /// New `bootargs` (any bytes but NUL); `None` keeps the existing one.
    pub bootargs: Option<Vec<u8>>,
    /// Physical range of the initrd; `None` removes the initrd properties.
    pub initrd: Option<MemoryRange>,
    /// Fresh `kaslr-seed`; `None` leaves the property as it is.
    pub kaslr_seed: Option<u64>,
    /// Fresh `rng-seed`; `None` leaves the property as it is.
    pub rng_seed: Option<Vec<u8>>,
    /// Crash-load properties; `None` (a normal load) removes them.
    pub crash: Option<CrashChosen>,
}

/// One `/chosen` property as it was and as it will be, rendered for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    /// Property name.
    pub name: String,
    /// Rendered old value; `None` if absent.
    pub old: Option<String>,
    /// Rendered new value; `None` if removed.
    pub new: Option<String>,
}

/// The result of [`edit_chosen`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedDtb {
    /// The new blob.
    pub dtb: Vec<u8>,
    /// Whether `/chosen` had to be created.
    pub chosen_created: bool,
    /// The properties that changed, in edit order.
    pub changes: Vec<PropertyChange>,
}

/// Renders a `/chosen` property value for the diff.
pub(crate) fn render_value(name: &str, value: &[u8]) -> String {
    if name == BOOTARGS || name.ends_with("path") {
        let text = value.strip_suffix(&[0]).unwrap_or(value);
        // Any bytes but NUL are valid: show those that are not UTF-8 escaped.
        return match std::str::from_utf8(text) {
            Ok(t) => format!("{t:?}"),
            Err(_) => format!("b\"{}\"", text.escape_ascii()),
        };
    }
    if name == RNG_SEED {
        return format!("<{} bytes>", value.len());
    }
    // The u64 properties: ours, and the EFI stub's system table and memory
    // map addresses (drivers/firmware/efi/libstub/fdt.c).
    let uefi_address = name == UEFI_MMAP_START || name == "linux,uefi-system-table";
    if value.len() == 8
        && (name == KASLR_SEED || name == INITRD_START || name == INITRD_END || uefi_address)
    {
        let mut w = [0u8; 8];
        w.copy_from_slice(value);
        return format!("{:#x}", u64::from_be_bytes(w));
    }
    if value.len().is_multiple_of(4) && !value.is_empty() && value.len() <= 32 {
        let cells: Vec<String> = value
            .chunks(4)
            .map(|c| format!("{:#x}", be32(c, 0)))
            .collect();
        return format!("<{}>", cells.join(" "));
    }
    format!("<{} bytes>", value.len())
}

fn set(
    chosen: &mut DeviceTreeNode,
    changes: &mut Vec<PropertyChange>,
    name: &'static str,
    new: Option<Vec<u8>>,
) {
    let old = chosen.property(name).map(|p| p.value().to_vec());
    if old == new {
        return;
    }
    match &new {
        Some(v) => chosen.add_property(DeviceTreeProperty::new_unchecked(name, v.clone())),
        None => {
            chosen.remove_property(name);
        }
    }
    changes.push(PropertyChange {
        name: name.to_owned(),
        old: old.as_deref().map(|v| render_value(name, v)),
        new: new.as_deref().map(|v| render_value(name, v)),
    });
}

fn cstring(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.push(0);
    v
}

/// Applies `edit` to `/chosen` (created if missing) and serialises the tree.
///
/// ```
/// # use kexec_core::fdt::{edit_chosen, ChosenEdit, parse};
/// # use dtoolkit::model::DeviceTree;
/// let blank = DeviceTree::new().to_dtb();
/// let edit = ChosenEdit { bootargs: Some("console=ttyAMA0".into()), kaslr_seed: Some(7), ..Default::default() };
/// let out = edit_chosen(&blank, &edit).unwrap();
/// assert!(out.chosen_created);
/// assert_eq!(out.changes[0].new.as_deref(), Some("\"console=ttyAMA0\""));
/// assert!(parse(&out.dtb).unwrap().find_node("/chosen").is_some());
/// ```
pub fn edit_chosen(dtb: &[u8], edit: &ChosenEdit) -> Result<EditedDtb, Error> {
    edit_chosen_tree(dtb, edit).map(|(edited, _)| edited)
}

/// [`edit_chosen`], also returning the edited tree, so that a caller that
/// reads it further (the console, [`super::stdout_pl011`]) does not parse the
/// blob again.
pub(crate) fn edit_chosen_tree(
    dtb: &[u8],
    edit: &ChosenEdit,
) -> Result<(EditedDtb, DeviceTree), Error> {
    let header = parse_header(dtb)?;
    let mut tree = parse(dtb)?;
    let cells = root_cells(&tree)?;
    let crash = match &edit.crash {
        Some(c) => {
            if c.usable.len() > MAX_USABLE_RANGES {
                return Err(Error::TooManyUsableRanges(c.usable.len()));
            }
            Some((
                match c.elfcorehdr {
                    Some(r) => Some(encode_ranges(ELFCOREHDR, &[r], cells)?),
                    None => None,
                },
                encode_ranges(USABLE_MEMORY_RANGE, &c.usable, cells)?,
            ))
        }
        None => None,
    };
    let chosen_created = chosen_node(&tree).is_none();
    if chosen_created {
        tree.root.add_child(DeviceTreeNode::new_unchecked(CHOSEN));
    }
    let Some(chosen) = tree.root.children_mut().find(|c| is_chosen(c.name())) else {
        unreachable!("/chosen was just ensured");
    };
    let mut changes = Vec::new();
    if let Some(bootargs) = &edit.bootargs {
        set(chosen, &mut changes, BOOTARGS, Some(cstring(bootargs)));
    }
    let initrd = edit
        .initrd
        .map(|r| (r.start.to_be_bytes().to_vec(), r.end.to_be_bytes().to_vec()));
    set(
        chosen,
        &mut changes,
        INITRD_START,
        initrd.as_ref().map(|i| i.0.clone()),
    );
    set(chosen, &mut changes, INITRD_END, initrd.map(|i| i.1));
    if let Some(seed) = edit.kaslr_seed {
        set(
            chosen,
            &mut changes,
            KASLR_SEED,
            Some(seed.to_be_bytes().to_vec()),
        );
    }
    if let Some(seed) = &edit.rng_seed {
        set(chosen, &mut changes, RNG_SEED, Some(seed.clone()));
    }
    let (core, usable) = match crash {
        Some((core, usable)) => (core, Some(usable)),
        None => (None, None),
    };
    set(chosen, &mut changes, ELFCOREHDR, core);
    set(chosen, &mut changes, USABLE_MEMORY_RANGE, usable);
    let mut out = tree.to_dtb();
    // dtoolkit writes boot_cpuid_phys = 0; keep the original (DT spec § 5.2).
    out[BOOT_CPUID_PHYS_OFFSET..BOOT_CPUID_PHYS_OFFSET + 4]
        .copy_from_slice(&header.boot_cpuid_phys.to_be_bytes());
    if out.len() as u64 > DTB_MAX_SIZE {
        return Err(Error::TooLarge { size: out.len() });
    }
    Ok((
        EditedDtb {
            dtb: out,
            chosen_created,
            changes,
        },
        tree,
    ))
}

/// Whether a root child's name matches the path component `chosen` the way
/// libfdt matches it: the name itself, or the name with any unit address
/// (`fdt_nodename_eq_`, scripts/dtc/libfdt/fdt_ro.c).
pub(super) fn is_chosen(name: &str) -> bool {
    name == CHOSEN
        || name
            .strip_prefix(CHOSEN)
            .is_some_and(|rest| rest.starts_with('@'))
}

/// The node the kernel reads as `/chosen`: `early_init_dt_scan_chosen` and
/// `early_init_dt_scan_chosen_stdout` (drivers/of/fdt.c) take
/// `fdt_path_offset(fdt, "/chosen")`, which is the *first* child of the root
/// named `chosen` or `chosen@<anything>` (`fdt_subnode_offset_namelen`
/// walks the children in blob order), and fall back to `/chosen@0` — a
/// node the first lookup would already have matched. So a `chosen@1`
/// before a `chosen` is the one the kernel reads, and the one we edit;
/// adding a second `chosen` after a `chosen@0` would be ignored.
pub(crate) fn chosen_node(tree: &DeviceTree) -> Option<&DeviceTreeNode> {
    tree.root.children().find(|c| is_chosen(c.name()))
}

/// Reads a number property of 1 or 2 cells (4 or 8 bytes), as the kernel does.
pub(super) fn read_number(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => Some(u64::from(be32(value, 0))),
        8 => {
            let mut w = [0u8; 8];
            w.copy_from_slice(value);
            Some(u64::from_be_bytes(w))
        }
        _ => None,
    }
}

/// The initrd range recorded in `/chosen`, if both properties are present and
/// readable (4 or 8 bytes each, drivers/of/fdt.c).
pub fn chosen_initrd(dtb: &[u8]) -> Result<Option<MemoryRange>, Error> {
    Ok(read_back(dtb)?.initrd)
}

/// What the new kernel will read from the `/chosen` of a blob: the ranges
/// the plan's rules compare with the segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadBack {
    /// `linux,initrd-start`/`-end` ([`chosen_initrd`]).
    pub initrd: Option<MemoryRange>,
    /// `linux,elfcorehdr`, one address and one size in the root's cells
    /// (drivers/of/fdt.c `early_init_dt_check_for_elfcorehdr`, with
    /// `dt_root_addr_cells`/`dt_root_size_cells`); absent if shorter, or if
    /// the root's cells are not 1 or 2.
    pub elfcorehdr: Option<MemoryRange>,
    /// The ranges the tree reserves for others ([`reserved_ranges`]).
    pub reserved: Vec<MemoryRange>,
    /// `bootargs`, without its terminating NUL.
    pub bootargs: Option<Vec<u8>>,
}

/// Reads `dtb`'s `/chosen` back as the kernel will (one parse).
pub fn read_back(dtb: &[u8]) -> Result<ReadBack, Error> {
    let tree = parse(dtb)?;
    let Some(chosen) = chosen_node(&tree) else {
        return Ok(ReadBack {
            reserved: reserved_ranges(&tree),
            ..ReadBack::default()
        });
    };
    let read = |name| chosen.property(name).and_then(|p| read_number(p.value()));
    let initrd = match (read(INITRD_START), read(INITRD_END)) {
        (Some(start), Some(end)) => Some(MemoryRange::new(start, end)),
        _ => None,
    };
    // Root cells other than 1 or 2 (which no edit writes) read as none.
    let elfcorehdr = chosen.property(ELFCOREHDR).and_then(|p| {
        let cells = root_cells(&tree).ok()?;
        let (a, s) = (cells.address as usize * 4, cells.size as usize * 4);
        let v = p.value();
        (v.len() >= a + s).then(|| {
            let number = |bytes: &[u8]| read_number(bytes).unwrap_or_default();
            MemoryRange::with_size(number(&v[..a]), number(&v[a..a + s]))
        })
    });
    let bootargs = chosen.property(BOOTARGS).map(|p| {
        let v = p.value();
        v.strip_suffix(&[0]).unwrap_or(v).to_vec()
    });
    Ok(ReadBack {
        initrd,
        elfcorehdr,
        reserved: reserved_ranges(&tree),
        bootargs,
    })
}

/// The ranges a tree reserves for others, which no segment may overwrite:
/// its memory reservations (DT spec § 5.3; the new kernel reserves them,
/// drivers/of/fdt.c `early_init_fdt_scan_reserved_mem`), and the EFI memory
/// map `/chosen` `linux,uefi-mmap-start`/`-size` name (the new kernel reads
/// it there: drivers/firmware/efi/fdtparams.c). Sorted; empty ones left out.
pub fn reserved_ranges(tree: &DeviceTree) -> Vec<MemoryRange> {
    let mut out: Vec<MemoryRange> = tree
        .memory_reservations
        .iter()
        .map(|r| MemoryRange::with_size(r.address(), r.size()))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(chosen) = chosen_node(tree) {
        let read = |n| chosen.property(n).and_then(|p| read_number(p.value()));
        if let (Some(start), Some(size)) = (read(UEFI_MMAP_START), read(UEFI_MMAP_SIZE)) {
            let map = MemoryRange::with_size(start, size);
            if !map.is_empty() {
                out.push(map);
            }
        }
    }
    out.sort();
    out
}

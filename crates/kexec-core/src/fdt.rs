//! The device tree handed to the new kernel: validation and `/chosen` edits.
//!
//! The blob is the running kernel's `/sys/firmware/fdt` (or `--dtb FILE`). We
//! check the header ourselves (Devicetree Specification v0.4 § 5.2, "Header"),
//! parse it with [`dtoolkit`] into an owned tree — which keeps the memory
//! reservation block and every node and property — edit `/chosen`
//! (Documentation/devicetree/bindings/chosen.txt and the dt-schema `chosen`
//! binding) and serialise it back.
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
//! * everything else, notably `linux,uefi-*` and the memory reservations, is kept.

use dtoolkit::error::{FdtErrorKind, FdtParseError};
use dtoolkit::fdt::Fdt;
use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};
use thiserror::Error;

use crate::iomem::MemoryRange;
use crate::layout::DTB_MAX_SIZE;

/// `0xd00dfeed`, the first big-endian word of every FDT (DT spec § 5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the version 17 header.
pub const FDT_HEADER_LEN: usize = 40;
/// The FDT version we read and write.
pub const FDT_VERSION: u32 = 17;
/// Offset of `boot_cpuid_phys` in the header.
pub const BOOT_CPUID_PHYS_OFFSET: usize = 28;
/// Alignment of the memory reservation block (DT spec § 5.3).
pub const MEM_RSVMAP_ALIGN: u32 = 8;
/// Alignment of the structure block (DT spec § 5.4).
pub const DT_STRUCT_ALIGN: u32 = 4;
/// Default root `#address-cells` when absent (DT spec § 2.3.5).
pub const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// Default root `#size-cells` when absent (DT spec § 2.3.5).
pub const DEFAULT_SIZE_CELLS: u32 = 1;
/// At most two usable ranges: high and low (`crashkernel=X,high`).
pub const MAX_USABLE_RANGES: usize = 2;
/// Length of the `rng-seed` kexec-tools writes, and so do we.
pub const RNG_SEED_LEN: usize = 128;

/// Name of the node the edits go to: exactly `chosen`, a child of the root,
/// without unit address (DT spec § 3.6). A `chosen@N` sibling is not it.
pub const CHOSEN: &str = "chosen";

/// `/chosen` property: the kernel command line.
pub const BOOTARGS: &str = "bootargs";
/// `/chosen` property: initrd start address.
pub const INITRD_START: &str = "linux,initrd-start";
/// `/chosen` property: initrd end address (exclusive).
pub const INITRD_END: &str = "linux,initrd-end";
/// `/chosen` property: KASLR seed, u64.
pub const KASLR_SEED: &str = "kaslr-seed";
/// `/chosen` property: entropy for the new kernel's RNG.
pub const RNG_SEED: &str = "rng-seed";
/// `/chosen` property: crash kernel's ELF core header `<addr size>`.
pub const ELFCOREHDR: &str = "linux,elfcorehdr";
/// `/chosen` property: crash kernel's usable memory `<addr size>…`.
pub const USABLE_MEMORY_RANGE: &str = "linux,usable-memory-range";

/// Why a device tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Shorter than a header.
    #[error("{len} bytes is too short for a device tree header ({FDT_HEADER_LEN} bytes)")]
    TooShort {
        /// Buffer length.
        len: usize,
    },
    /// The first word is not `0xd00dfeed`.
    #[error("bad magic {found:#010x}, expected {FDT_MAGIC:#010x}")]
    BadMagic {
        /// The word found.
        found: u32,
    },
    /// `totalsize` claims more bytes than the buffer holds.
    #[error("header totalsize {totalsize} exceeds the {len} bytes available")]
    TotalSizeExceedsBuffer {
        /// `totalsize` from the header.
        totalsize: u32,
        /// Buffer length.
        len: usize,
    },
    /// A block offset without its required alignment.
    #[error("{field} {offset:#x} is not {align}-byte aligned")]
    MisalignedOffset {
        /// Header field name.
        field: &'static str,
        /// Its value.
        offset: u32,
        /// Required alignment.
        align: u32,
    },
    /// A version range that does not include 17.
    #[error("unsupported FDT version {version} (last compatible {last_comp_version}); need 17")]
    UnsupportedVersion {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp_version: u32,
    },
    /// The structure or strings block is malformed.
    #[error("malformed device tree: {0}")]
    Parse(#[from] FdtParseError),
    /// The structure or strings block is malformed (found by the lenient
    /// reader used for trees with over-long or unusual names).
    #[error("malformed device tree at offset {offset:#x}: {what}")]
    Malformed {
        /// Byte offset in the blob.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Root `#address-cells` is not 1 or 2.
    #[error("root #address-cells is {0}; only 1 or 2 are supported")]
    BadAddressCells(u32),
    /// Root `#size-cells` is not 1 or 2.
    #[error("root #size-cells is {0}; only 1 or 2 are supported")]
    BadSizeCells(u32),
    /// A `#…-cells` property that is not one u32.
    #[error("root {0} is not a 4-byte cell")]
    BadCellsProperty(&'static str),
    /// A value that does not fit the root's cells.
    #[error("{property}: {value:#x} does not fit in {cells} cell(s)")]
    ValueTooLargeForCells {
        /// Property being written.
        property: &'static str,
        /// The value.
        value: u64,
        /// Number of 32-bit cells available.
        cells: u32,
    },
    /// More than [`MAX_USABLE_RANGES`] crash usable ranges.
    #[error("{0} usable memory ranges; the kernel reads at most {MAX_USABLE_RANGES}")]
    TooManyUsableRanges(usize),
    /// The edited blob exceeds booting.rst's 2 MiB limit.
    #[error("device tree of {size} bytes exceeds the 2 MiB limit")]
    TooLarge {
        /// Size of the edited blob.
        size: usize,
    },
}

/// The fields of an FDT header (DT spec § 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdtHeader {
    /// Total size of the blob.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Format version.
    pub version: u32,
    /// Oldest version this blob is compatible with.
    pub last_comp_version: u32,
    /// Physical id of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block.
    pub size_dt_struct: u32,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

/// Reads and checks the header: magic, `totalsize` against the buffer, block
/// alignment and version. Structural checks follow in [`parse`].
pub fn parse_header(dtb: &[u8]) -> Result<FdtHeader, Error> {
    if dtb.len() < FDT_HEADER_LEN {
        return Err(Error::TooShort { len: dtb.len() });
    }
    let magic = be32(dtb, 0);
    if magic != FDT_MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let h = FdtHeader {
        totalsize: be32(dtb, 4),
        off_dt_struct: be32(dtb, 8),
        off_dt_strings: be32(dtb, 12),
        off_mem_rsvmap: be32(dtb, 16),
        version: be32(dtb, 20),
        last_comp_version: be32(dtb, 24),
        boot_cpuid_phys: be32(dtb, BOOT_CPUID_PHYS_OFFSET),
        size_dt_strings: be32(dtb, 32),
        size_dt_struct: be32(dtb, 36),
    };
    if usize::try_from(h.totalsize).map_or(true, |t| t > dtb.len()) {
        return Err(Error::TotalSizeExceedsBuffer {
            totalsize: h.totalsize,
            len: dtb.len(),
        });
    }
    if !h.off_mem_rsvmap.is_multiple_of(MEM_RSVMAP_ALIGN) {
        return Err(Error::MisalignedOffset {
            field: "off_mem_rsvmap",
            offset: h.off_mem_rsvmap,
            align: MEM_RSVMAP_ALIGN,
        });
    }
    if !h.off_dt_struct.is_multiple_of(DT_STRUCT_ALIGN) {
        return Err(Error::MisalignedOffset {
            field: "off_dt_struct",
            offset: h.off_dt_struct,
            align: DT_STRUCT_ALIGN,
        });
    }
    if h.version < FDT_VERSION || h.last_comp_version > FDT_VERSION {
        return Err(Error::UnsupportedVersion {
            version: h.version,
            last_comp_version: h.last_comp_version,
        });
    }
    Ok(h)
}

/// Parses a whole blob into an owned tree. Bytes after `totalsize` are
/// ignored (a file may be padded).
///
/// dtoolkit's reader enforces the DT spec's name rules (at most 31
/// characters, a fixed character set). Shipped device trees break them —
/// e.g. the dwc3 property `snps,dis-u2-freeclk-exists-quirk` has 32
/// characters — and the kernel accepts them, so on a name error we read the
/// blob again with [`parse_lenient`], which checks structure only.
pub fn parse(dtb: &[u8]) -> Result<DeviceTree, Error> {
    let header = parse_header(dtb)?;
    // parse_header checked totalsize <= dtb.len().
    let blob = &dtb[..header.totalsize as usize];
    match Fdt::new(blob) {
        Ok(fdt) => Ok(DeviceTree::from_fdt(&fdt)),
        Err(e)
            if matches!(
                e.kind,
                FdtErrorKind::InvalidNodeName | FdtErrorKind::InvalidPropertyName
            ) =>
        {
            parse_lenient(blob, &header)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deepest node nesting the lenient reader accepts (real trees nest < 10).
pub const MAX_DEPTH: usize = 64;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// The NUL-terminated UTF-8 string at `at`, not past `end`.
fn c_str(blob: &[u8], at: usize, end: usize) -> Result<&str, Error> {
    let bytes = blob.get(at..end).ok_or(Error::Malformed {
        offset: at,
        what: "string out of bounds",
    })?;
    let len = bytes.iter().position(|&b| b == 0).ok_or(Error::Malformed {
        offset: at,
        what: "unterminated string",
    })?;
    std::str::from_utf8(&bytes[..len]).map_err(|_| Error::Malformed {
        offset: at,
        what: "string is not UTF-8",
    })
}

fn word_at(blob: &[u8], at: usize, end: usize) -> Result<u32, Error> {
    match at.checked_add(4) {
        Some(stop) if stop <= end => Ok(be32(blob, at)),
        _ => Err(Error::Malformed {
            offset: at,
            what: "truncated structure block",
        }),
    }
}

/// Reads a blob whose header [`parse_header`] accepted, checking every bound
/// and the token grammar (DT spec § 5.4) but not the spelling of names.
pub fn parse_lenient(blob: &[u8], h: &FdtHeader) -> Result<DeviceTree, Error> {
    let to = |v: u32| v as usize;
    let struct_end = to(h.off_dt_struct)
        .checked_add(to(h.size_dt_struct))
        .filter(|&e| e <= blob.len())
        .ok_or(Error::Malformed {
            offset: 0x24,
            what: "structure block out of bounds",
        })?;
    let strings_start = to(h.off_dt_strings);
    let strings_end = strings_start
        .checked_add(to(h.size_dt_strings))
        .filter(|&e| e <= blob.len())
        .ok_or(Error::Malformed {
            offset: 0x20,
            what: "strings block out of bounds",
        })?;

    let mut tree = DeviceTree::new();
    let mut at = to(h.off_mem_rsvmap);
    loop {
        let entry = blob
            .get(at..at.saturating_add(16))
            .ok_or(Error::Malformed {
                offset: at,
                what: "unterminated memory reservation block",
            })?;
        let mut w = [0u8; 8];
        w.copy_from_slice(&entry[..8]);
        let address = u64::from_be_bytes(w);
        w.copy_from_slice(&entry[8..]);
        let size = u64::from_be_bytes(w);
        if address == 0 && size == 0 {
            break;
        }
        tree.memory_reservations
            .push(MemoryReservation::new(address, size));
        at += 16;
    }

    let mut stack: Vec<DeviceTreeNode> = Vec::new();
    let mut root: Option<DeviceTreeNode> = None;
    let mut at = to(h.off_dt_struct);
    loop {
        let token = word_at(blob, at, struct_end)?;
        match token {
            FDT_BEGIN_NODE => {
                if root.is_some() {
                    return Err(Error::Malformed {
                        offset: at,
                        what: "node after the root",
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::Malformed {
                        offset: at,
                        what: "nodes nested too deeply",
                    });
                }
                let name = c_str(blob, at + 4, struct_end)?;
                stack.push(DeviceTreeNode::new_unchecked(name));
                at = (at + 4 + name.len() + 1).next_multiple_of(4);
            }
            FDT_PROP => {
                let len = to(word_at(blob, at + 4, struct_end)?);
                let nameoff = to(word_at(blob, at + 8, struct_end)?);
                let value = blob
                    .get(at + 12..(at + 12).saturating_add(len))
                    .filter(|_| (at + 12).saturating_add(len) <= struct_end)
                    .ok_or(Error::Malformed {
                        offset: at,
                        what: "property value out of bounds",
                    })?;
                let name = c_str(blob, strings_start.saturating_add(nameoff), strings_end)?;
                let node = stack.last_mut().ok_or(Error::Malformed {
                    offset: at,
                    what: "property outside a node",
                })?;
                node.add_property(DeviceTreeProperty::new_unchecked(name, value.to_vec()));
                at = (at + 12 + len).next_multiple_of(4);
            }
            FDT_NOP => at += 4,
            FDT_END_NODE => {
                let node = stack.pop().ok_or(Error::Malformed {
                    offset: at,
                    what: "unbalanced end of node",
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.add_child(node),
                    None => root = Some(node),
                }
                at += 4;
            }
            FDT_END => {
                if !stack.is_empty() {
                    return Err(Error::Malformed {
                        offset: at,
                        what: "end inside a node",
                    });
                }
                break;
            }
            _ => {
                return Err(Error::Malformed {
                    offset: at,
                    what: "bad token",
                })
            }
        }
    }
    tree.root = root.ok_or(Error::Malformed {
        offset: to(h.off_dt_struct),
        what: "no root node",
    })?;
    Ok(tree)
}

/// The root node's `#address-cells` and `#size-cells`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootCells {
    /// `#address-cells`: 1 or 2.
    pub address: u32,
    /// `#size-cells`: 1 or 2.
    pub size: u32,
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
pub fn root_cells(tree: &DeviceTree) -> Result<RootCells, Error> {
    let address = cells_property(&tree.root, "#address-cells", DEFAULT_ADDRESS_CELLS)?;
    if !(1..=2).contains(&address) {
        return Err(Error::BadAddressCells(address));
    }
    let size = cells_property(&tree.root, "#size-cells", DEFAULT_SIZE_CELLS)?;
    if !(1..=2).contains(&size) {
        return Err(Error::BadSizeCells(size));
    }
    Ok(RootCells { address, size })
}

/// Appends `value` as `cells` big-endian 32-bit cells.
fn push_cells(
    out: &mut Vec<u8>,
    property: &'static str,
    value: u64,
    cells: u32,
) -> Result<(), Error> {
    if cells == 1 {
        let v = u32::try_from(value).map_err(|_| Error::ValueTooLargeForCells {
            property,
            value,
            cells,
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
        push_cells(&mut out, property, r.start, cells.address)?;
        push_cells(&mut out, property, r.size(), cells.size)?;
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
    /// New `bootargs`; `None` keeps the existing one.
    pub bootargs: Option<String>,
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
pub fn render_value(name: &str, value: &[u8]) -> String {
    if name == BOOTARGS || name.ends_with("path") {
        let text = value.strip_suffix(&[0]).unwrap_or(value);
        return format!("{:?}", String::from_utf8_lossy(text));
    }
    if name == RNG_SEED {
        return format!("<{} bytes>", value.len());
    }
    if value.len() == 8 && (name == KASLR_SEED || name == INITRD_START || name == INITRD_END) {
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

fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
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
    let Some(chosen) = tree.root.children_mut().find(|c| c.name() == CHOSEN) else {
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
    Ok(EditedDtb {
        dtb: out,
        chosen_created,
        changes,
    })
}

/// The root's `chosen` child, matched by its exact name. (dtoolkit's path
/// lookup also matches `chosen@N`, which is not the chosen node.)
pub fn chosen_node(tree: &DeviceTree) -> Option<&DeviceTreeNode> {
    tree.root.children().find(|c| c.name() == CHOSEN)
}

/// Reads a number property of 1 or 2 cells (4 or 8 bytes), as the kernel does.
fn read_number(value: &[u8]) -> Option<u64> {
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
    let tree = parse(dtb)?;
    let Some(chosen) = chosen_node(&tree) else {
        return Ok(None);
    };
    let read = |name| chosen.property(name).and_then(|p| read_number(p.value()));
    Ok(match (read(INITRD_START), read(INITRD_END)) {
        (Some(start), Some(end)) => Some(MemoryRange::new(start, end)),
        _ => None,
    })
}

/// `compatible` string of the ARM PL011 UART
/// (Documentation/devicetree/bindings/serial/pl011.yaml).
pub const PL011_COMPATIBLE: &str = "arm,pl011";

/// The physical address of the console UART named by `/chosen`
/// `stdout-path` (an absolute path or an `/aliases` name, with optional
/// `:options`; Documentation/devicetree/bindings/chosen.txt), when it is a
/// PL011 reachable without bus address translation. The purgatory prints on
/// it; `None` means "no console", never an error of the load.
pub fn stdout_pl011(dtb: &[u8]) -> Result<Option<u64>, Error> {
    let tree = parse(dtb)?;
    let string = |value: &[u8]| {
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        String::from_utf8_lossy(&value[..end]).into_owned()
    };
    let Some(path) = chosen_node(&tree)
        .and_then(|c| {
            c.property("stdout-path")
                .or_else(|| c.property("linux,stdout-path"))
        })
        .map(|p| string(p.value()))
    else {
        return Ok(None);
    };
    let path = path.split(':').next().unwrap_or_default().to_owned();
    let path = if path.starts_with('/') {
        path
    } else {
        match tree
            .root
            .children()
            .find(|c| c.name() == "aliases")
            .and_then(|a| a.property(&path))
        {
            Some(p) => string(p.value()),
            None => return Ok(None),
        }
    };
    let cells = |node: &DeviceTreeNode, name: &str, default: u32| {
        node.property(name)
            .and_then(|p| (p.value().len() == 4).then(|| be32(p.value(), 0)))
            .unwrap_or(default)
    };
    let mut parent = &tree.root;
    let mut node = &tree.root;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let next = node.children().find(|c| {
            c.name() == component
                || (!component.contains('@') && c.name().split('@').next() == Some(component))
        });
        let Some(next) = next else {
            return Ok(None);
        };
        // Translation through a bus's non-empty `ranges` is not followed.
        if !std::ptr::eq(node, &tree.root)
            && node
                .property("ranges")
                .is_some_and(|r| !r.value().is_empty())
        {
            return Ok(None);
        }
        parent = node;
        node = next;
    }
    let is_pl011 = node.property("compatible").is_some_and(|c| {
        c.value()
            .split(|&b| b == 0)
            .any(|s| s == PL011_COMPATIBLE.as_bytes())
    });
    if !is_pl011 {
        return Ok(None);
    }
    let address_cells = cells(parent, "#address-cells", 2);
    let Some(reg) = node.property("reg") else {
        return Ok(None);
    };
    let reg = reg.value();
    Ok(match address_cells {
        1 if reg.len() >= 4 => Some(u64::from(be32(reg, 0))),
        2 if reg.len() >= 8 => Some((u64::from(be32(reg, 0)) << 32) | u64::from(be32(reg, 4))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal tree: root with `#address-cells = <2>`, `#size-cells = <2>`,
    /// a `/chosen` with stale properties, one memory reservation.
    fn sample(address_cells: u32, size_cells: u32) -> Vec<u8> {
        let mut tree = DeviceTree::new();
        tree.root.add_property(DeviceTreeProperty::new_unchecked(
            "#address-cells",
            address_cells,
        ));
        tree.root
            .add_property(DeviceTreeProperty::new_unchecked("#size-cells", size_cells));
        let mut chosen = DeviceTreeNode::new_unchecked("chosen");
        chosen.add_property(DeviceTreeProperty::new_unchecked(BOOTARGS, "old"));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            INITRD_START,
            0x4800_0000u32,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            INITRD_END,
            0x4810_0000u32,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(KASLR_SEED, 0u64));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            "linux,uefi-mmap-start",
            0x1234u64,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(ELFCOREHDR, vec![0u8; 16]));
        tree.root.add_child(chosen);
        tree.memory_reservations
            .push(MemoryReservation::new(0x4000_0000, 0x1000));
        tree.to_dtb()
    }

    fn set_word(dtb: &mut [u8], at: usize, v: u32) {
        dtb[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn header_errors_are_exact() {
        let good = sample(2, 2);
        assert_eq!(parse_header(&good[..10]), Err(Error::TooShort { len: 10 }));
        let mut bad = good.clone();
        set_word(&mut bad, 0, 0xdead_beef);
        assert_eq!(
            parse_header(&bad),
            Err(Error::BadMagic { found: 0xdead_beef })
        );
        let mut bad = good.clone();
        let len = u32::try_from(good.len()).unwrap();
        set_word(&mut bad, 4, len + 1);
        assert_eq!(
            parse_header(&bad),
            Err(Error::TotalSizeExceedsBuffer {
                totalsize: len + 1,
                len: good.len()
            })
        );
        let mut bad = good.clone();
        set_word(&mut bad, 16, 44);
        assert_eq!(
            parse_header(&bad),
            Err(Error::MisalignedOffset {
                field: "off_mem_rsvmap",
                offset: 44,
                align: 8
            })
        );
        let mut bad = good.clone();
        set_word(&mut bad, 8, 0x42);
        assert_eq!(
            parse_header(&bad),
            Err(Error::MisalignedOffset {
                field: "off_dt_struct",
                offset: 0x42,
                align: 4
            })
        );
        let mut bad = good;
        set_word(&mut bad, 20, 16);
        assert_eq!(
            parse_header(&bad),
            Err(Error::UnsupportedVersion {
                version: 16,
                last_comp_version: 16
            })
        );
    }

    #[test]
    fn header_bytes_read_against_the_spec() {
        #[rustfmt::skip]
        let header: [u8; 40] = [
            0xd0, 0x0d, 0xfe, 0xed, // 0000: magic
            0x00, 0x00, 0x00, 0x28, // 0004: totalsize = 40
            0x00, 0x00, 0x00, 0x38, // 0008: off_dt_struct
            0x00, 0x00, 0x00, 0x48, // 000c: off_dt_strings
            0x00, 0x00, 0x00, 0x28, // 0010: off_mem_rsvmap
            0x00, 0x00, 0x00, 0x11, // 0014: version = 17
            0x00, 0x00, 0x00, 0x10, // 0018: last_comp_version = 16
            0x00, 0x00, 0x00, 0x00, // 001c: boot_cpuid_phys
            0x00, 0x00, 0x00, 0x00, // 0020: size_dt_strings
            0x00, 0x00, 0x00, 0x10, // 0024: size_dt_struct
        ];
        let h = parse_header(&header).unwrap();
        assert_eq!(h.totalsize, 40);
        assert_eq!(h.off_dt_struct, 0x38);
        assert_eq!(h.version, 17);
        // Structure offsets past the buffer: the library's structural check.
        assert!(matches!(parse(&header), Err(Error::Parse(_))));
    }

    #[test]
    fn address_cells_zero_or_three_are_refused() {
        assert_eq!(
            edit_chosen(&sample(0, 2), &ChosenEdit::default()),
            Err(Error::BadAddressCells(0))
        );
        assert_eq!(
            edit_chosen(&sample(3, 2), &ChosenEdit::default()),
            Err(Error::BadAddressCells(3))
        );
        assert_eq!(
            edit_chosen(&sample(2, 0), &ChosenEdit::default()),
            Err(Error::BadSizeCells(0))
        );
    }

    #[test]
    fn normal_load_edit() {
        let edit = ChosenEdit {
            bootargs: Some("console=ttyAMA0".into()),
            initrd: Some(MemoryRange::new(0x4820_0000, 0x4830_0000)),
            kaslr_seed: Some(0x1122_3344_5566_7788),
            rng_seed: Some(vec![0xaa; RNG_SEED_LEN]),
            crash: None,
        };
        let out = edit_chosen(&sample(2, 2), &edit).unwrap();
        assert!(!out.chosen_created);
        let names: Vec<_> = out.changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                BOOTARGS,
                INITRD_START,
                INITRD_END,
                KASLR_SEED,
                RNG_SEED,
                ELFCOREHDR
            ]
        );
        assert_eq!(out.changes[1].old.as_deref(), Some("<0x48000000>"));
        assert_eq!(out.changes[1].new.as_deref(), Some("0x48200000"));
        assert_eq!(out.changes[5].new, None);
        let tree = parse(&out.dtb).unwrap();
        let chosen = tree.find_node("/chosen").unwrap();
        #[rustfmt::skip]
        assert_eq!(chosen.property(INITRD_START).unwrap().value(), &[
            0x00, 0x00, 0x00, 0x00, 0x48, 0x20, 0x00, 0x00, // u64 big endian, like kexec-tools
        ]);
        assert!(chosen.property("linux,uefi-mmap-start").is_some());
        assert_eq!(
            tree.memory_reservations,
            vec![MemoryReservation::new(0x4000_0000, 0x1000)]
        );
        assert_eq!(
            chosen_initrd(&out.dtb).unwrap(),
            Some(MemoryRange::new(0x4820_0000, 0x4830_0000))
        );
    }

    #[test]
    fn no_initrd_removes_stale_properties() {
        let out = edit_chosen(&sample(2, 2), &ChosenEdit::default()).unwrap();
        assert_eq!(chosen_initrd(&out.dtb).unwrap(), None);
        let tree = parse(&out.dtb).unwrap();
        // bootargs untouched when no command line is given.
        assert_eq!(
            tree.find_node("/chosen")
                .unwrap()
                .property(BOOTARGS)
                .unwrap()
                .value(),
            b"old\0"
        );
    }

    #[test]
    fn crash_properties_follow_root_cells() {
        let crash = CrashChosen {
            elfcorehdr: Some(MemoryRange::with_size(0x7f00_0000, 0x1_0000)),
            usable: vec![
                MemoryRange::new(0x7000_0000, 0x8000_0000),
                MemoryRange::new(0x4000_0000, 0x4100_0000),
            ],
        };
        let edit = ChosenEdit {
            crash: Some(crash.clone()),
            ..Default::default()
        };
        let out = edit_chosen(&sample(1, 1), &edit).unwrap();
        let tree = parse(&out.dtb).unwrap();
        let chosen = tree.find_node("/chosen").unwrap();
        #[rustfmt::skip]
        assert_eq!(chosen.property(USABLE_MEMORY_RANGE).unwrap().value(), &[
            0x70, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // high range first: addr, size
            0x40, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // then low
        ]);
        #[rustfmt::skip]
        assert_eq!(chosen.property(ELFCOREHDR).unwrap().value(), &[
            0x7f, 0x00, 0x00, 0x00, // addr, 1 cell
            0x00, 0x01, 0x00, 0x00, // size, 1 cell
        ]);
        let high = CrashChosen {
            elfcorehdr: Some(MemoryRange::with_size(1 << 33, 0x1000)),
            usable: vec![],
        };
        assert_eq!(
            edit_chosen(
                &sample(1, 1),
                &ChosenEdit {
                    crash: Some(high),
                    ..Default::default()
                }
            ),
            Err(Error::ValueTooLargeForCells {
                property: ELFCOREHDR,
                value: 1 << 33,
                cells: 1
            })
        );
        let three = CrashChosen {
            usable: vec![crash.usable[0]; 3],
            ..crash
        };
        assert_eq!(
            edit_chosen(
                &sample(2, 2),
                &ChosenEdit {
                    crash: Some(three),
                    ..Default::default()
                }
            ),
            Err(Error::TooManyUsableRanges(3))
        );
    }

    #[test]
    fn chosen_is_created_when_missing() {
        let mut tree = DeviceTree::new();
        tree.root
            .add_child(DeviceTreeNode::new_unchecked("memory@40000000"));
        let out = edit_chosen(
            &tree.to_dtb(),
            &ChosenEdit {
                kaslr_seed: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(out.chosen_created);
        let tree = parse(&out.dtb).unwrap();
        assert!(tree.find_node("/memory@40000000").is_some());
        assert!(tree
            .find_node("/chosen")
            .unwrap()
            .property(KASLR_SEED)
            .is_some());
    }

    /// Found by the `fdt_chosen` fuzz target: a `chosen@N` node before the
    /// real `chosen` must not be mistaken for it.
    #[test]
    fn chosen_with_unit_address_is_not_chosen() {
        let mut tree = DeviceTree::new();
        tree.root
            .add_child(DeviceTreeNode::new_unchecked("chosen@9019999"));
        tree.root.add_child(DeviceTreeNode::new_unchecked("chosen"));
        let initrd = MemoryRange::new(0x4800_0000, 0x4810_0000);
        let edit = ChosenEdit {
            initrd: Some(initrd),
            ..Default::default()
        };
        let out = edit_chosen(&tree.to_dtb(), &edit).unwrap();
        assert!(!out.chosen_created);
        assert_eq!(chosen_initrd(&out.dtb).unwrap(), Some(initrd));
        let only_addressed = {
            let mut t = DeviceTree::new();
            t.root.add_child(DeviceTreeNode::new_unchecked("chosen@0"));
            t.to_dtb()
        };
        let out = edit_chosen(&only_addressed, &edit).unwrap();
        assert!(out.chosen_created);
        assert_eq!(chosen_initrd(&out.dtb).unwrap(), Some(initrd));
    }

    /// Names longer than the spec's 31 characters occur in shipped trees;
    /// the lenient reader keeps them, and the edit round-trips.
    #[test]
    fn long_names_are_read_leniently() {
        let long = "snps,dis-u2-freeclk-exists-quirk";
        assert_eq!(long.len(), 32);
        let mut tree = DeviceTree::new();
        tree.root
            .add_property(DeviceTreeProperty::new_unchecked("#address-cells", 2u32));
        let mut usb = DeviceTreeNode::new_unchecked("usb@fe800000");
        usb.add_property(DeviceTreeProperty::new_unchecked(long, Vec::<u8>::new()));
        tree.root.add_child(usb);
        tree.root.add_child(DeviceTreeNode::new_unchecked(
            "a-node-name-that-is-longer-than-31@1",
        ));
        tree.memory_reservations
            .push(MemoryReservation::new(0x4000_0000, 0x1000));
        let dtb = tree.to_dtb();
        assert!(Fdt::new(&dtb).is_err(), "dtoolkit alone refuses it");
        assert_eq!(parse(&dtb).unwrap(), tree);
        let out = edit_chosen(
            &dtb,
            &ChosenEdit {
                bootargs: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let back = parse(&out.dtb).unwrap();
        assert!(back
            .find_node("/usb@fe800000")
            .unwrap()
            .property(long)
            .is_some());
        assert_eq!(back.memory_reservations, tree.memory_reservations);
    }

    #[test]
    fn lenient_reader_refuses_broken_structure() {
        let mut tree = DeviceTree::new();
        tree.root.add_property(DeviceTreeProperty::new_unchecked(
            "a-property-name-longer-than-31-chars",
            1u32,
        ));
        let good = tree.to_dtb();
        let h = parse_header(&good).unwrap();
        let s = h.off_dt_struct as usize;
        // Root BEGIN_NODE, "", then the property: make its length run past the block.
        let mut bad = good.clone();
        bad[s + 8 + 4..s + 8 + 8].copy_from_slice(&0x1000u32.to_be_bytes());
        assert_eq!(
            parse_lenient(&bad, &h),
            Err(Error::Malformed {
                offset: s + 8,
                what: "property value out of bounds"
            })
        );
        // A bad token where the property was.
        let mut bad = good.clone();
        bad[s + 8..s + 12].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(
            parse_lenient(&bad, &h),
            Err(Error::Malformed {
                offset: s + 8,
                what: "bad token"
            })
        );
        // A name offset past the strings block.
        let mut bad = good;
        bad[s + 8 + 8..s + 8 + 12].copy_from_slice(&0xffffu32.to_be_bytes());
        assert_eq!(
            parse_lenient(&bad, &h),
            Err(Error::Malformed {
                offset: h.off_dt_strings as usize + 0xffff,
                what: "string out of bounds"
            })
        );
    }

    #[test]
    fn boot_cpuid_phys_is_kept() {
        let mut dtb = sample(2, 2);
        set_word(&mut dtb, BOOT_CPUID_PHYS_OFFSET, 3);
        let out = edit_chosen(&dtb, &ChosenEdit::default()).unwrap();
        assert_eq!(parse_header(&out.dtb).unwrap().boot_cpuid_phys, 3);
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let mut padded = sample(2, 2);
        padded.extend_from_slice(&[0; 64]);
        assert!(parse(&padded).is_ok());
    }
}

//! Reading a device tree blob: the header (Devicetree Specification v0.4
//! § 5.2, "Header"), the whole tree through [`dtoolkit`] into an owned
//! [`DeviceTree`] (memory reservations, every node and property), the
//! lenient reader for trees whose names break the spec's spelling rules, and
//! the [`Error`] every function of [`crate::fdt`] returns.

use dtoolkit::error::{FdtErrorKind, FdtParseError};
use dtoolkit::fdt::Fdt;
use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use thiserror::Error;

/// `0xd00dfeed`, the first big-endian word of every FDT (DT spec § 5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the version 17 header.
pub(crate) const FDT_HEADER_LEN: usize = 40;
/// The FDT version we read and write.
pub(crate) const FDT_VERSION: u32 = 17;
/// Offset of `boot_cpuid_phys` in the header.
pub(crate) const BOOT_CPUID_PHYS_OFFSET: usize = 28;
/// Alignment of the memory reservation block (DT spec § 5.3).
pub(crate) const MEM_RSVMAP_ALIGN: u32 = 8;
/// Alignment of the structure block (DT spec § 5.4).
pub(crate) const DT_STRUCT_ALIGN: u32 = 4;
/// At most two usable ranges: high and low (`crashkernel=X,high`).
pub const MAX_USABLE_RANGES: usize = 2;

/// Why a device tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
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
    #[error(
        "{property}: {value:#x} needs {} bits, but the root's {field} is {cells} ({} bits){}",
        64 - value.leading_zeros(),
        32 * cells,
        if *declared { "" } else { ", the kernel's default when the root does not set it" }
    )]
    ValueTooLargeForCells {
        /// Property being written.
        property: &'static str,
        /// `#address-cells` or `#size-cells`.
        field: &'static str,
        /// The value.
        value: u64,
        /// Number of 32-bit cells available.
        cells: u32,
        /// Whether the root declares `field` (else `cells` is the default).
        declared: bool,
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

/// The big-endian u32 at `at` (the caller checked the bounds).
pub(super) fn be32(bytes: &[u8], at: usize) -> u32 {
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
pub(crate) const MAX_DEPTH: usize = 64;

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

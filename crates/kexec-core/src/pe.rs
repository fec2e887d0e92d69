//! Unified Kernel Images (UKI).
//!
//! A UKI is a PE32+ EFI application (the systemd-stub) that carries the
//! kernel and what it boots with in named sections, as specified by the UAPI
//! Group's "Unified Kernel Image" specification:
//!
//! - `.linux`: the kernel (on arm64 an `Image`, possibly compressed or zboot);
//! - `.initrd`: an optional initramfs;
//! - `.cmdline`: an optional kernel command line (UTF-8, may end in NUL or newline);
//! - `.dtb`: an optional flattened device tree.
//!
//! Section contents are `VirtualSize` bytes long (the raw size is padded to the
//! file alignment). The PE/COFF layout itself is read with the `object` crate
//! (Microsoft PE format, "Section Table").
//!
//! An EFI-stub arm64 `Image` and a zboot image are PE files too; they are told
//! apart by the arm64 magic at offset 56 and "zimg" at offset 4 (see
//! [`crate::kernel`]), and neither has a `.linux` section.

use object::pe::IMAGE_FILE_MACHINE_ARM64;
use object::read::pe::{ImageNtHeaders, PeFile64};
use object::LittleEndian;
use thiserror::Error;

/// Name of the section holding the kernel.
pub(crate) const SECTION_LINUX: &[u8] = b".linux";
/// Name of the section holding the initramfs.
pub(crate) const SECTION_INITRD: &[u8] = b".initrd";
/// Name of the section holding the command line.
pub(crate) const SECTION_CMDLINE: &[u8] = b".cmdline";
/// Name of the section holding the device tree.
pub(crate) const SECTION_DTB: &[u8] = b".dtb";
/// Name of the section holding the os-release(5) text of the OS the UKI boots.
pub(crate) const SECTION_OSREL: &[u8] = b".osrel";
/// Name of the section that starts a profile of a multi-profile UKI.
pub(crate) const SECTION_PROFILE: &[u8] = b".profile";

/// Errors from [`Uki::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The PE/COFF structure is malformed.
    #[error("UKI: malformed PE image: {reason}")]
    Pe {
        /// The PE reader's description.
        reason: String,
    },
    /// The PE image is not for arm64.
    #[error("UKI: PE machine {machine:#06x} is not arm64 (0xaa64)")]
    WrongMachine {
        /// `FileHeader.Machine`.
        machine: u16,
    },
    /// The PE image has no `.linux` section.
    #[error("PE image has no .linux section: not a UKI")]
    MissingLinux,
    /// A section's data lies outside the file.
    #[error("UKI section {section} lies outside the file: {reason}")]
    SectionOutOfBounds {
        /// Section name.
        section: String,
        /// The PE reader's description.
        reason: String,
    },
    /// The `.cmdline` section is not UTF-8.
    #[error("UKI .cmdline is not valid UTF-8 at byte {valid_up_to}")]
    CmdlineNotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
}

/// The sections of a UKI, borrowed from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uki<'a> {
    /// The `.linux` section: the kernel.
    pub linux: &'a [u8],
    /// The `.initrd` section.
    pub initrd: Option<&'a [u8]>,
    /// The `.cmdline` section, without trailing NUL or newline characters.
    pub cmdline: Option<&'a str>,
    /// The `.dtb` section.
    pub dtb: Option<&'a [u8]>,
}

/// Whether a raw, NUL-padded section name is `name`.
fn name_is(raw: &[u8], name: &[u8]) -> bool {
    raw.strip_prefix(name)
        .is_some_and(|rest| rest.iter().all(|&b| b == 0))
}

impl<'a> Uki<'a> {
    /// Parses a UKI, returning its sections (the first of each name).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let file = PeFile64::parse(bytes).map_err(|err| Error::Pe {
            reason: err.to_string(),
        })?;
        let machine = file.nt_headers().file_header().machine.get(LittleEndian);
        if machine != IMAGE_FILE_MACHINE_ARM64 {
            return Err(Error::WrongMachine { machine: machine.0 });
        }
        let section = |name: &[u8]| -> Result<Option<&'a [u8]>, Error> {
            let Some(header) = file
                .section_table()
                .iter()
                .find(|s| name_is(s.raw_name(), name))
            else {
                return Ok(None);
            };
            header
                .pe_data(bytes)
                .map(Some)
                .map_err(|err| Error::SectionOutOfBounds {
                    section: String::from_utf8_lossy(name).into_owned(),
                    reason: err.to_string(),
                })
        };
        let linux = section(SECTION_LINUX)?.ok_or(Error::MissingLinux)?;
        let cmdline = match section(SECTION_CMDLINE)? {
            Some(raw) => {
                let text = std::str::from_utf8(raw).map_err(|err| Error::CmdlineNotUtf8 {
                    valid_up_to: err.valid_up_to(),
                })?;
                Some(text.trim_end_matches(['\0', '\n']))
            }
            None => None,
        };
        Ok(Self {
            linux,
            initrd: section(SECTION_INITRD)?,
            cmdline,
            dtb: section(SECTION_DTB)?,
        })
    }
}

/// Bytes that hold a PE file's headers, for reading only those: the DOS
/// and NT headers, the data directories and the section table. They take
/// under 1 KiB in Debian's arm64 Images (whose `SizeOfHeaders` is 64 KiB,
/// the segment alignment) and a few KiB in a UKI. Enough for
/// [`certificate_table`] and [`UkiLayout::parse`], whose section data may lie
/// beyond.
pub const HEADERS_READ: usize = 64 << 10;

/// The Authenticode certificate table of a PE32+ file (`Some((file offset,
/// size))`), read from the optional header's data directory
/// `IMAGE_DIRECTORY_ENTRY_SECURITY` (Microsoft PE format, "The Attribute
/// Certificate Table"): what `sbsign` adds and what the kernel's
/// `verify_pefile_signature` (crypto/asymmetric_keys/verify_pefile.c) checks
/// under `KEXEC_IMAGE_VERIFY_SIG`. `None` when `bytes` is not a PE32+ file or
/// the entry is empty (unsigned). The headers are enough ([`HEADERS_READ`]):
/// the table itself is not read. Only for explanations: the kernel decides.
pub fn certificate_table(bytes: &[u8]) -> Option<(u32, u32)> {
    let file = PeFile64::parse(bytes).ok()?;
    let dir = file
        .data_directories()
        .get(object::pe::IMAGE_DIRECTORY_ENTRY_SECURITY)?;
    let (offset, size) = (
        dir.virtual_address.get(LittleEndian),
        dir.size.get(LittleEndian),
    );
    (size != 0).then_some((offset, size))
}

/// Where a section's contents lie in the file: `offset..offset + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// File offset (`PointerToRawData`).
    pub offset: u64,
    /// Bytes: `VirtualSize`, capped by `SizeOfRawData` (the rest of the
    /// section is zero fill).
    pub size: u64,
}

/// A UKI's layout read from its headers alone, for listing boot entries
/// without reading the kernel (systemd reads only the section table and the
/// small sections too: `pe_find_uki_sections` in src/shared/bootspec.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiLayout {
    /// The `.osrel` section (os-release(5) of the OS), the first of that name.
    pub osrel: Option<FileRange>,
    /// The `.cmdline` section, the first of that name.
    pub cmdline: Option<FileRange>,
    /// Whether the UKI has `.profile` sections (a multi-profile UKI).
    pub profiles: bool,
    /// The end of the furthest section's data: a file shorter than this is
    /// truncated.
    pub data_end: u64,
}

impl UkiLayout {
    /// Reads the section table of an arm64 UKI from `head`, the file's first
    /// bytes (enough to hold the headers: `SizeOfHeaders`, usually 4 KiB).
    /// Section data is not read and may lie beyond `head`.
    pub fn parse(head: &[u8]) -> Result<Self, Error> {
        let file = PeFile64::parse(head).map_err(|err| Error::Pe {
            reason: err.to_string(),
        })?;
        let machine = file.nt_headers().file_header().machine.get(LittleEndian);
        if machine != IMAGE_FILE_MACHINE_ARM64 {
            return Err(Error::WrongMachine { machine: machine.0 });
        }
        let sections = file.section_table();
        let range = |name: &[u8]| {
            sections
                .iter()
                .find(|s| name_is(s.raw_name(), name))
                .map(|s| {
                    let (offset, size) = s.pe_file_range();
                    FileRange {
                        offset: offset.into(),
                        size: size.into(),
                    }
                })
        };
        if range(SECTION_LINUX).is_none() {
            return Err(Error::MissingLinux);
        }
        let data_end = sections
            .iter()
            .map(|s| {
                let (offset, size) = s.pe_file_range();
                u64::from(offset) + u64::from(size)
            })
            .max()
            .unwrap_or(0);
        Ok(Self {
            osrel: range(SECTION_OSREL),
            cmdline: range(SECTION_CMDLINE),
            profiles: range(SECTION_PROFILE).is_some(),
            data_end,
        })
    }
}

/// Whether `bytes` parses as an arm64 PE32+ file with a `.linux` section.
pub fn is_uki(bytes: &[u8]) -> bool {
    Uki::parse(bytes).is_ok()
}

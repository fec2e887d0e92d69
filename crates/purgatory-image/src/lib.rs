//! The host side of the purgatory: build `crates/purgatory` for
//! `aarch64-unknown-none`, prove the linked ELF position independent, and
//! flatten it into the bytes the loader embeds and patches.
//!
//! Used by the `kexec` crate's build script (which embeds the result) and by
//! `xtask` (bare-metal tests). The header layout itself lives in `handoff`.
//!
//! Its system instructions are read from the machine code: [`sysinsn`]
//! names and checks every one in address order; [`paths`] follows the
//! control flow from `_start` to the `br` into the kernel; [`sequences`]
//! checks what lies between the steps of each maintenance sequence on
//! every path; [`lang`] (with [`regex`]) is the language of
//! system-instruction sequences of those paths, which
//! `crates/kexec/tests/model_link.rs` compares with the cache model's runs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod lang;
pub mod paths;
pub mod regex;
pub mod sequences;
pub mod sysinsn;

use std::path::{Path, PathBuf};
use std::process::Command;

use handoff::{PurgatoryHeader, HEADER_OFFSET, HEADER_SIZE};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{
    Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SymbolSection,
};

/// The bare-metal target the purgatory is built for.
pub const TARGET: &str = "aarch64-unknown-none";
/// The purgatory must be loaded at a multiple of this (its code uses
/// `ADRP`/`ADD :lo12:` pairs, whose low 12 bits are fixed at link time).
pub const PURGATORY_ALIGN: u64 = 0x1000;

/// Why the purgatory could not be built or accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The nested cargo build failed.
    #[error("building the purgatory failed ({0}); is the target installed? `rustup target add aarch64-unknown-none`")]
    Build(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The ELF could not be parsed.
    #[error("purgatory ELF: {0}")]
    Elf(#[from] object::Error),
    /// The ELF is not what the loader can use.
    #[error("purgatory ELF: {0}")]
    Invalid(String),
    /// Absolute relocations: the image would not run at another address.
    #[error("the purgatory is not position independent (absolute relocations):\n  {0}")]
    NotPositionIndependent(String),
    /// The embedded header does not decode.
    #[error("purgatory header: {0}")]
    Header(handoff::HeaderError),
}

/// A flat purgatory image ready to be patched and loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgatoryImage {
    /// The loadable bytes, from the link address (0) on; the header is at
    /// [`HEADER_OFFSET`].
    pub bytes: Vec<u8>,
    /// Offset of the entry point from the load address.
    pub entry_offset: u64,
    /// Bytes the purgatory occupies in memory (`memsz`: code, bss, the
    /// page-table pool and the stack).
    pub mem_size: u64,
}

impl PurgatoryImage {
    /// A copy with the loader fields of the header set to `params`.
    pub fn patched(&self, params: &handoff::HandoffParams) -> Result<Vec<u8>, Error> {
        let mut bytes = self.bytes.clone();
        PurgatoryHeader::patch_image(&mut bytes, params).map_err(Error::Header)?;
        Ok(bytes)
    }

    /// The purgatory's segment: [`PurgatoryImage::patched`], zeros up to
    /// `params.digests_offset`, then the digest table `table` (see
    /// `handoff::params`; empty when `params.nr_digests` is 0).
    pub fn segment_bytes(
        &self,
        params: &handoff::HandoffParams,
        table: &[[u8; handoff::DIGEST_SIZE]],
    ) -> Result<Vec<u8>, Error> {
        let mut bytes = self.patched(params)?;
        if table.len() != params.nr_digests as usize {
            return Err(Error::Header(handoff::HeaderError::DigestCount {
                expected: table.len() as u64,
                found: params.nr_digests,
            }));
        }
        if !table.is_empty() {
            let at = usize::try_from(params.digests_offset).map_err(|_| {
                Error::Header(handoff::HeaderError::BadDigestTable(params.digests_offset))
            })?;
            bytes.resize(at, 0);
            for d in table {
                bytes.extend_from_slice(d);
            }
        }
        Ok(bytes)
    }
}

/// Run `cargo build --release -p purgatory --target aarch64-unknown-none`
/// from `workspace` into `target_dir` and return the directory of the ELFs.
///
/// Environment a parent cargo (or build script) sets for the host is removed
/// so it does not leak into the bare-metal build.
pub fn cargo_build(cargo: &Path, workspace: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "purgatory",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CLIPPY_ARGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| Error::Build(e.to_string()))?;
    if !status.success() {
        return Err(Error::Build(status.to_string()));
    }
    Ok(target_dir.join(TARGET).join("release"))
}

/// Build the purgatory and return its checked flat image.
pub fn build(cargo: &Path, workspace: &Path, target_dir: &Path) -> Result<PurgatoryImage, Error> {
    let dir = cargo_build(cargo, workspace, target_dir)?;
    let path = dir.join("purgatory");
    let elf = std::fs::read(&path).map_err(|source| Error::Io { path, source })?;
    from_elf(&elf)
}

/// Flatten and check a linked purgatory ELF (position independence, no
/// writable data, its system instructions and the sequences along its
/// paths, the boot CPU's and the secondaries').
pub fn from_elf(elf: &[u8]) -> Result<PurgatoryImage, Error> {
    check_position_independent(elf)?;
    check_no_writable_data(elf)?;
    sysinsn::check_system_instructions(elf)?;
    sequences::check(&paths::Paths::from_elf(elf)?)?;
    // Every CPU's path: the secondaries run the same SCTLR sequences.
    sequences::check(&paths::Paths::secondary_from_elf(elf)?)?;
    let (bytes, entry_offset, mem_size) = elf_to_flat(elf)?;
    if bytes.len() < HEADER_OFFSET + HEADER_SIZE {
        return Err(Error::Invalid(format!(
            "image is only {} bytes",
            bytes.len()
        )));
    }
    let header = PurgatoryHeader::decode(&bytes[HEADER_OFFSET..]).map_err(Error::Header)?;
    if header.mem_size != mem_size {
        return Err(Error::Invalid(format!(
            "header mem_size {:#x} != ELF memory size {mem_size:#x}",
            header.mem_size
        )));
    }
    if entry_offset != 0 {
        return Err(Error::Invalid(format!(
            "entry at {entry_offset:#x}, expected 0"
        )));
    }
    Ok(PurgatoryImage {
        bytes,
        entry_offset,
        mem_size,
    })
}

/// The loadable bytes of an ELF linked at 0: `PT_LOAD` file contents at
/// their addresses (gaps zero-filled), the entry offset, and the memory
/// size (end of the last `PT_LOAD` including its bss).
pub fn elf_to_flat(data: &[u8]) -> Result<(Vec<u8>, u64, u64), Error> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data)?;
    let endian = header.endian()?;
    if header.e_machine(endian) != elf::EM_AARCH64 {
        return Err(Error::Invalid("not an AArch64 ELF".into()));
    }
    let mut flat = Vec::new();
    let mut mem_end = 0u64;
    for ph in header.program_headers(endian, data)? {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let vaddr = ph.p_vaddr(endian);
        let seg_end = vaddr
            .checked_add(ph.p_memsz(endian))
            .ok_or_else(|| Error::Invalid(format!("PT_LOAD at {vaddr:#x} overflows")))?;
        mem_end = mem_end.max(seg_end);
        let bytes = ph
            .data(endian, data)
            .map_err(|()| Error::Invalid(format!("PT_LOAD at {vaddr:#x} out of the file")))?;
        if bytes.is_empty() {
            continue;
        }
        let start = usize::try_from(vaddr).map_err(|_| {
            Error::Invalid(format!("PT_LOAD at {vaddr:#x} beyond the address space"))
        })?;
        let end = start + bytes.len();
        if flat.len() < end {
            flat.resize(end, 0);
        }
        flat[start..end].copy_from_slice(bytes);
    }
    if flat.is_empty() {
        return Err(Error::Invalid("no loadable bytes".into()));
    }
    Ok((flat, header.e_entry(endian), mem_end))
}

/// Sections the purgatory writes by design: its page-table pool (only with
/// the MMU off), its stacks and the CPUs' mailbox (both mapped Normal
/// non-cacheable).
const WRITABLE_BY_DESIGN: &[&str] = &[".tables", ".stack", ".mailbox"];

/// Fails if the image has writable data (`.data`, a non-empty `.bss`, ...).
/// `handoff` relies on it: with the caches on the purgatory writes nothing
/// through them, so it needs no clean of its own memory before the MMU goes
/// off (crates/cachesim/README.md). A static written with the caches on
/// would be left dirty and then read stale with the MMU off.
pub fn check_no_writable_data(data: &[u8]) -> Result<(), Error> {
    let file = ElfFile64::<object::Endianness>::parse(data)?;
    let mut bad = Vec::new();
    for section in file.sections() {
        let object::SectionFlags::Elf { sh_flags, .. } = section.flags() else {
            continue;
        };
        let name = section.name().unwrap_or("?");
        if sh_flags.contains(elf::SHF_ALLOC.with(elf::SHF_WRITE))
            && section.size() != 0
            && !WRITABLE_BY_DESIGN.contains(&name)
        {
            bad.push(format!("{name} ({} bytes)", section.size()));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "writable data in the image (the handoff does not clean it before MMU off): {}",
            bad.join(", ")
        )))
    }
}

/// Relocation types that keep code position independent (PC-relative, or
/// the low 12 bits of an address, which survive a 4 KiB aligned move).
const PIC_RELOCS: &[elf::RelocationType] = &[
    elf::R_AARCH64_PREL64,
    elf::R_AARCH64_PREL32,
    elf::R_AARCH64_PREL16,
    elf::R_AARCH64_LD_PREL_LO19,
    elf::R_AARCH64_ADR_PREL_LO21,
    elf::R_AARCH64_ADR_PREL_PG_HI21,
    elf::R_AARCH64_ADR_PREL_PG_HI21_NC,
    elf::R_AARCH64_ADD_ABS_LO12_NC,
    elf::R_AARCH64_LDST8_ABS_LO12_NC,
    elf::R_AARCH64_LDST16_ABS_LO12_NC,
    elf::R_AARCH64_LDST32_ABS_LO12_NC,
    elf::R_AARCH64_LDST64_ABS_LO12_NC,
    elf::R_AARCH64_LDST128_ABS_LO12_NC,
    elf::R_AARCH64_TSTBR14,
    elf::R_AARCH64_CONDBR19,
    elf::R_AARCH64_JUMP26,
    elf::R_AARCH64_CALL26,
];

/// Fails unless every relocation kept by `--emit-relocs` is PC-relative (or
/// an absolute value of an absolute symbol, such as the header's
/// `mem_size`): then the image runs unchanged at any 4 KiB aligned address.
/// Catches, e.g., `core::panic::Location` pointers or `core::fmt` tables
/// creeping into the purgatory.
pub fn check_position_independent(data: &[u8]) -> Result<(), Error> {
    let file = ElfFile64::<object::Endianness>::parse(data)?;
    let mut seen = 0usize;
    let mut bad = Vec::new();
    for section in file.sections() {
        for (offset, reloc) in section.relocations() {
            seen += 1;
            let RelocationFlags::Elf { r_type } = reloc.flags() else {
                bad.push(format!("{offset:#x}: non-ELF relocation"));
                continue;
            };
            if PIC_RELOCS.contains(&r_type) {
                continue;
            }
            let target = match reloc.target() {
                RelocationTarget::Symbol(i) => file.symbol_by_index(i).ok(),
                _ => None,
            };
            let absolute_target = target
                .as_ref()
                .is_some_and(|s| s.section() == SymbolSection::Absolute);
            if (r_type == elf::R_AARCH64_ABS64 || r_type == elf::R_AARCH64_ABS32) && absolute_target
            {
                continue;
            }
            // Section symbols have no name: show the section instead.
            let name = target
                .map(|s| match (s.name(), s.section_index()) {
                    (Ok(n), _) if !n.is_empty() => n.to_owned(),
                    (_, Some(si)) => file
                        .section_by_index(si)
                        .and_then(|sec| sec.name().map(str::to_owned))
                        .unwrap_or_default(),
                    _ => String::new(),
                })
                .unwrap_or_default();
            bad.push(format!(
                "{}+{offset:#x}: relocation type {r_type:?} against `{name}`",
                section.name().unwrap_or("?")
            ));
        }
    }
    if seen == 0 {
        return Err(Error::Invalid(
            "no relocation records: link with --emit-relocs (crates/purgatory/build.rs)".into(),
        ));
    }
    if !bad.is_empty() {
        return Err(Error::NotPositionIndependent(bad.join("\n  ")));
    }
    Ok(())
}

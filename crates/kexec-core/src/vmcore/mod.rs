//! A reader of kdump vmcores: the `/proc/vmcore` a crash kernel presents, or
//! an ELF dump file copied from it (`cp`, `makedumpfile -E`).
//!
//! A vmcore is an ELF64 core file (fs/proc/vmcore.c, `parse_crash_elf64_headers`
//! and `merge_note_headers_elf64`): an ELF header, program headers, one
//! `PT_NOTE` segment holding the merged notes — one `NT_PRSTATUS` per CPU that
//! saved its registers at the crash (`crash_save_cpu`, kernel/kexec_core.c)
//! and the `VMCOREINFO` note (kernel/crash_core.c) — and one `PT_LOAD` per
//! range of the crashed kernel's memory, `p_paddr` its physical address and
//! `p_offset` where its bytes are in the file.
//!
//! Everything is read through [`ReadAt`], so the real `/proc/vmcore` (the
//! whole RAM of the crashed machine) is never read whole: [`Vmcore::parse`]
//! reads the headers and notes (bounded: [`MAX_NOTES_BYTES`]), and the printk
//! reader ([`printk`]) reads one descriptor and one record at a time. Bad
//! input — truncated, hostile or simply not a vmcore — is an [`Error`](enum@Error) naming
//! what is wrong, never a panic.
//!
//! Modules: [`notes`] (ELF notes, `NT_PRSTATUS`), [`vmcoreinfo`] (the
//! `KEY=VALUE` text and the address translation it allows), [`printk`] (the
//! lockless printk ring buffer of Linux 5.10 and later), [`summary`] (what
//! `kexec vmcore info` shows), [`synth`] (small synthetic vmcores for tests
//! and fuzz seeds).

pub mod notes;
pub mod printk;
pub mod summary;
pub mod synth;
pub mod vmcoreinfo;

use thiserror::Error;

use crate::elfcore::{EHDR_SIZE, ELFCLASS64, ELFDATA2LSB, EM_AARCH64, PHDR_SIZE, PT_LOAD, PT_NOTE};

pub use notes::PrStatus;
pub use vmcoreinfo::{AddressMap, VmcoreInfo};

/// `e_type` of a core file (gABI).
pub const ET_CORE: u16 = 4;
/// Most bytes of `PT_NOTE` segments read: 4096 CPUs' `NT_PRSTATUS` notes
/// (about 420 bytes each) and a VMCOREINFO note fit many times over.
pub const MAX_NOTES_BYTES: u64 = 16 << 20;

/// Random access to the bytes of a vmcore: a file (`/proc/vmcore`), or bytes
/// in memory (`[u8]`, for tests and fuzzing).
pub trait ReadAt {
    /// The size in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` with the bytes at `offset`, or fail (a short read is an error).
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?));
        match bytes {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Why a vmcore could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// No ELF magic.
    #[error("not an ELF file (no \\x7fELF magic)")]
    NotElf,
    /// ELF, but not what an arm64 vmcore is.
    #[error("not an arm64 ELF64 little-endian core file: {0}")]
    NotArm64Core(String),
    /// A part of the file lies beyond its end.
    #[error(
        "truncated: {what} at offset {offset:#x} (+{len:#x}) ends past the file's {size:#x} bytes"
    )]
    Truncated {
        /// What was to be read.
        what: String,
        /// Where.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// The file's size.
        size: u64,
    },
    /// Reading failed.
    #[error("reading {what} at offset {offset:#x}: {message}")]
    Io {
        /// What was to be read.
        what: String,
        /// Where.
        offset: u64,
        /// The system's message.
        message: String,
    },
    /// More note bytes than [`MAX_NOTES_BYTES`].
    #[error("PT_NOTE segments hold {0:#x} bytes, more than the {MAX_NOTES_BYTES:#x} a vmcore has")]
    NotesTooLarge(u64),
    /// A malformed ELF note.
    #[error("note at offset {offset:#x} of the notes: {problem}")]
    BadNote {
        /// Offset inside the concatenated `PT_NOTE` contents.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// No VMCOREINFO note.
    #[error(
        "no VMCOREINFO note (the crashed kernel lacked CONFIG_CRASH_CORE, or this is not a vmcore)"
    )]
    NoVmcoreinfo,
    /// A VMCOREINFO entry the reader needs is absent.
    #[error("VMCOREINFO has no {0}")]
    MissingKey(String),
    /// A VMCOREINFO entry is not the number it should be.
    #[error("VMCOREINFO {key}={value:?} is not a valid number")]
    BadNumber {
        /// The key.
        key: String,
        /// Its text.
        value: String,
    },
    /// A kernel virtual address no mapping translates.
    #[error(
        "{what}: virtual address {vaddr:#x} is neither in the linear map nor in the kernel image"
    )]
    Unmapped {
        /// What lives there.
        what: String,
        /// The address.
        vaddr: u64,
    },
    /// A physical address no `PT_LOAD` covers.
    #[error("{what}: physical address {phys:#x} is in no PT_LOAD of the dump")]
    NotInDump {
        /// What lives there.
        what: String,
        /// The address.
        phys: u64,
    },
    /// The printk ring buffer's description is impossible.
    #[error("printk ring buffer: {0}")]
    Ringbuffer(String),
}

/// One `PT_LOAD`: a range of the crashed kernel's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Load {
    /// Where its bytes are in the file.
    pub offset: u64,
    /// Its virtual address (0 when the header's writer did not know it).
    pub vaddr: u64,
    /// Its physical address.
    pub paddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
    /// Bytes in memory.
    pub memsz: u64,
}

/// The parsed headers and notes of a vmcore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmcore {
    /// The `PT_LOAD`s, in file order.
    pub loads: Vec<Load>,
    /// Every `NT_PRSTATUS` note, in note order (the crash kernel keeps the CPU
    /// order of the header and drops the CPUs that saved nothing).
    pub prstatus: Vec<PrStatus>,
    /// The VMCOREINFO note's text, if present.
    pub vmcoreinfo: Option<VmcoreInfo>,
    /// How many program headers the file has.
    pub phnum: u16,
    /// How many notes of other kinds were seen.
    pub other_notes: usize,
}

pub(crate) fn read<R: ReadAt + ?Sized>(
    src: &R,
    offset: u64,
    buf: &mut [u8],
    what: impl Fn() -> String,
) -> Result<(), Error> {
    let len = buf.len() as u64;
    if offset.checked_add(len).is_none_or(|end| end > src.size()) {
        return Err(Error::Truncated {
            what: what(),
            offset,
            len,
            size: src.size(),
        });
    }
    src.read_exact_at(offset, buf).map_err(|e| Error::Io {
        what: what(),
        offset,
        message: e.to_string(),
    })
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

impl Vmcore {
    /// Reads the ELF header, the program headers and the notes, and checks
    /// that every segment lies inside the file.
    pub fn parse<R: ReadAt + ?Sized>(src: &R) -> Result<Self, Error> {
        // Whatever the file holds of the ELF header: a file too short for
        // the magic leaves zeros there, which are not the magic.
        let mut ehdr = [0u8; EHDR_SIZE];
        let head = usize::try_from(src.size()).map_or(EHDR_SIZE, |s| s.min(EHDR_SIZE));
        read(src, 0, &mut ehdr[..head], || "ELF header".into())?;
        if ehdr[..4] != [0x7f, b'E', b'L', b'F'] {
            return Err(Error::NotElf);
        }
        read(src, 0, &mut ehdr, || "ELF header".into())?;
        let bad = |what: String| Err(Error::NotArm64Core(what));
        if ehdr[4] != ELFCLASS64 {
            return bad(format!("EI_CLASS {} (ELF64 is 2)", ehdr[4]));
        }
        if ehdr[5] != ELFDATA2LSB {
            return bad(format!("EI_DATA {} (little endian is 1)", ehdr[5]));
        }
        let e_type = u16_at(&ehdr, 16);
        if e_type != ET_CORE {
            return bad(format!("e_type {e_type} (ET_CORE is 4)"));
        }
        let machine = u16_at(&ehdr, 18);
        if machine != EM_AARCH64 {
            return bad(format!("e_machine {machine} (EM_AARCH64 is 183)"));
        }
        let phoff = u64_at(&ehdr, 32);
        let phentsize = u16_at(&ehdr, 54);
        let phnum = u16_at(&ehdr, 56);
        if usize::from(phentsize) != PHDR_SIZE {
            return bad(format!(
                "e_phentsize {phentsize} (Elf64_Phdr is {PHDR_SIZE})"
            ));
        }
        let mut table = vec![0u8; usize::from(phnum) * PHDR_SIZE];
        read(src, phoff, &mut table, || {
            format!("{phnum} program headers")
        })?;
        let mut loads = Vec::new();
        let mut note_ranges = Vec::new();
        let mut note_bytes = 0u64;
        for (i, p) in table.chunks_exact(PHDR_SIZE).enumerate() {
            let p_type = u32_at(p, 0);
            let (offset, filesz) = (u64_at(p, 8), u64_at(p, 32));
            if p_type != PT_LOAD && p_type != PT_NOTE {
                continue;
            }
            if offset
                .checked_add(filesz)
                .is_none_or(|end| end > src.size())
            {
                return Err(Error::Truncated {
                    what: format!("program header {i}'s segment"),
                    offset,
                    len: filesz,
                    size: src.size(),
                });
            }
            if p_type == PT_NOTE {
                note_bytes = note_bytes.saturating_add(filesz);
                if note_bytes > MAX_NOTES_BYTES {
                    return Err(Error::NotesTooLarge(note_bytes));
                }
                note_ranges.push((offset, filesz));
            } else {
                loads.push(Load {
                    offset,
                    vaddr: u64_at(p, 16),
                    paddr: u64_at(p, 24),
                    filesz,
                    memsz: u64_at(p, 40),
                });
            }
        }
        let mut vmcore = Self {
            loads,
            prstatus: Vec::new(),
            vmcoreinfo: None,
            phnum,
            other_notes: 0,
        };
        for (offset, size) in note_ranges {
            // Bounded by MAX_NOTES_BYTES above.
            let mut bytes = vec![0u8; usize::try_from(size).unwrap_or(0)];
            read(src, offset, &mut bytes, || "PT_NOTE segment".into())?;
            notes::collect(&bytes, &mut vmcore)?;
        }
        Ok(vmcore)
    }

    /// The VMCOREINFO note, or [`Error::NoVmcoreinfo`].
    pub fn info(&self) -> Result<&VmcoreInfo, Error> {
        self.vmcoreinfo.as_ref().ok_or(Error::NoVmcoreinfo)
    }

    /// The file offset of `phys` and how many bytes from there on the same
    /// `PT_LOAD` holds.
    pub fn phys_to_offset(&self, phys: u64) -> Option<(u64, u64)> {
        self.loads.iter().find_map(|l| {
            let delta = phys.checked_sub(l.paddr)?;
            (delta < l.filesz).then(|| (l.offset + delta, l.filesz - delta))
        })
    }

    /// Reads `buf.len()` bytes of physical memory at `phys`, across adjacent
    /// `PT_LOAD`s if need be.
    pub fn read_phys<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        phys: u64,
        buf: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = phys.wrapping_add(done as u64);
            let (offset, avail) = self.phys_to_offset(at).ok_or_else(|| Error::NotInDump {
                what: what(),
                phys: at,
            })?;
            let n = (buf.len() - done).min(usize::try_from(avail).unwrap_or(usize::MAX));
            if n == 0 {
                // phys_to_offset never answers an empty range; refuse rather
                // than loop if it did.
                return Err(Error::NotInDump {
                    what: what(),
                    phys: at,
                });
            }
            read(src, offset, &mut buf[done..done + n], what)?;
            done += n;
        }
        Ok(())
    }

    /// Reads kernel virtual memory at `vaddr`, translated by `map`.
    pub fn read_virt<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        map: &AddressMap,
        vaddr: u64,
        buf: &mut [u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let phys = map
            .to_phys(vaddr, &self.loads)
            .ok_or_else(|| Error::Unmapped {
                what: what(),
                vaddr,
            })?;
        self.read_phys(src, phys, buf, what)
    }
}

#[cfg(test)]
mod tests;

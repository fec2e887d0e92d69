//! The ELF core header of a crash load (`linux,elfcorehdr`).
//!
//! After a panic the crash kernel presents the old kernel's memory as
//! `/proc/vmcore`, an ELF core file whose header we write at load time. The
//! crash kernel finds it through `/chosen/linux,elfcorehdr` and checks it in
//! fs/proc/vmcore.c (`parse_crash_elf64_headers`): ELF64, `ET_CORE`,
//! `EV_CURRENT`, the running architecture (`EM_AARCH64`) and
//! `e_phentsize == sizeof(Elf64_Phdr)`. Then, for every program header:
//!
//! * `PT_NOTE` — one per CPU, at the per-CPU `crash_notes` buffer where the
//!   panicking kernel saves that CPU's registers
//!   (`/sys/devices/system/cpu/cpuN/crash_notes`, a physical address in hex,
//!   and `crash_notes_size`, in decimal; drivers/base/cpu.c), and one for the
//!   VMCOREINFO note (`/sys/kernel/vmcoreinfo`: "ADDR SIZE", both hex;
//!   kernel/ksysfs.c). `p_offset = p_paddr` = the physical address,
//!   `p_filesz = p_memsz` = the buffer size, `p_vaddr = 0`. The crash kernel
//!   reads the notes there and merges them.
//! * `PT_LOAD` — one for the kernel image (physical start of `Kernel code` to
//!   the end of `Kernel data` in /proc/iomem, `p_vaddr` = its kernel-image
//!   virtual address), then one per `System RAM` range minus the crash regions
//!   (`p_offset = p_paddr` = the physical address, `p_vaddr` = its linear-map
//!   address). The crash kernel reads memory through `p_offset`; `p_vaddr` is
//!   for dump tools (makedumpfile, crash), which today take the layout from
//!   VMCOREINFO (`NUMBER(VA_BITS)`, `NUMBER(PHYS_OFFSET)`, `KERNELOFFSET`)
//!   first and fall back to the program headers on old kernels.
//!
//! The same layout is what the kernel's own kexec_file_load(2) path builds
//! (kernel/crash_core.c, `crash_prepare_elf64_headers`). Field values come
//! from the ELF specification (gABI, "ELF Header", "Program Header") and
//! include/uapi/linux/elf.h.
//!
//! What userspace cannot always know, and what [`build`] then does:
//! * the kernel image's virtual address ([`KernelText`]): in the program
//!   headers of `/proc/kcore` ([`parse_kcore`]; root with `CAP_SYS_RAWIO`, no
//!   lockdown), in `/proc/kallsyms` (root, `kptr_restrict` permitting) or in
//!   VMCOREINFO's contents. Without it the kernel `PT_LOAD` is left out: the
//!   RAM `PT_LOAD`s already cover those bytes.
//! * the linear map ([`LinearMap`]): `PHYS_OFFSET` may be randomised by KASLR,
//!   so it cannot be derived from /proc/iomem; `/proc/kcore` shows it. Without
//!   it the RAM `PT_LOAD`s carry `p_vaddr = 0`, which the crash kernel ignores
//!   and dump tools replace by VMCOREINFO's `NUMBER(PHYS_OFFSET)` (exported
//!   since Linux 4.19 on arm64).

use thiserror::Error;

use crate::iomem::{subtract, MemoryMap, MemoryRange};

/// `sizeof(Elf64_Ehdr)`.
pub const EHDR_SIZE: usize = 64;
/// `sizeof(Elf64_Phdr)`.
pub const PHDR_SIZE: usize = 56;
/// `e_type` of a core file.
pub(crate) const ET_CORE: u16 = 4;
/// `e_machine` of arm64 (include/uapi/linux/elf-em.h).
pub const EM_AARCH64: u16 = 183;
/// `e_version` and `e_ident[EI_VERSION]`.
pub const EV_CURRENT: u8 = 1;
/// `e_ident[EI_CLASS]`: 64-bit objects.
pub const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]`: little endian.
pub const ELFDATA2LSB: u8 = 1;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of a note segment.
pub const PT_NOTE: u32 = 4;
/// `p_flags`: execute.
pub(crate) const PF_X: u32 = 1;
/// `p_flags`: write.
pub(crate) const PF_W: u32 = 2;
/// `p_flags`: read.
pub(crate) const PF_R: u32 = 4;
/// `e_phnum` is 16 bits and 0xffff (`PN_XNUM`) means "see section 0", which
/// a header without sections cannot use: at most this many program headers.
pub(crate) const MAX_PHDRS: usize = 0xfffe;
/// Most CPUs a `cpu/possible` list may name: arm64's `NR_CPUS` is at most
/// 4096 (arch/arm64/Kconfig); this bounds the work on hostile input.
pub const MAX_CPUS: usize = 4096;

/// `/proc/iomem` name of the kernel's text resource (arch/arm64/kernel/setup.c).
pub(crate) const KERNEL_CODE: &str = "Kernel code";
/// `/proc/iomem` name of the kernel's data resource, which ends at `_end`.
pub(crate) const KERNEL_DATA: &str = "Kernel data";
/// The `/proc/kallsyms` symbol at which `Kernel code` starts: arm64 publishes
/// `Kernel code` from `_stext`, after the image header and the EFI stub
/// (in the captured guests `Kernel code` starts 64 KiB above the 2 MiB
/// aligned load address).
pub const KERNEL_CODE_SYMBOL: &str = "_stext";

/// Why an ELF core header could not be built, or sysfs text not parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// `crash_notes` or the address in `vmcoreinfo` is not hexadecimal.
    #[error("{what}: bad hex number {text:?}")]
    BadHex {
        /// Which file or field.
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// `crash_notes_size` or a CPU number is not decimal.
    #[error("{what}: bad decimal number {text:?}")]
    BadDecimal {
        /// Which file or field.
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// `vmcoreinfo` is not "ADDR SIZE".
    #[error("vmcoreinfo: expected \"ADDR SIZE\", found {0:?}")]
    BadVmcoreinfo(String),
    /// A CPU list range whose first CPU is after its last (`3-1`).
    #[error("CPU list: range {0:?} runs backwards")]
    BackwardCpuRange(String),
    /// A CPU list naming more than [`MAX_CPUS`] CPUs.
    #[error("CPU list names more than {MAX_CPUS} CPUs")]
    TooManyCpus,
    /// A note of zero bytes, or one whose end overflows 64 bits.
    #[error("{what}: note of {size} bytes at {addr:#x} is empty or overflows")]
    BadNote {
        /// Which note, e.g. `cpu 3 crash_notes`.
        what: String,
        /// Physical address.
        addr: u64,
        /// Size in bytes.
        size: u64,
    },
    /// An empty kernel image range.
    #[error("kernel image range {0} is empty")]
    EmptyKernelText(MemoryRange),
    /// No RAM left once the crash regions are taken out.
    #[error("no System RAM outside the crash regions to describe")]
    NoRam,
    /// `/proc/kcore`'s headers could not be read.
    #[error("/proc/kcore: {0}")]
    BadKcore(String),
    /// More program headers than `e_phnum` can count.
    #[error("{0} program headers, more than {MAX_PHDRS}")]
    TooManyProgramHeaders(usize),
}

/// A note buffer in the running kernel's memory: a CPU's `crash_notes` or
/// the VMCOREINFO note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Note {
    /// Physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The running kernel's image: where it lies physically and virtually.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelText {
    /// Physical range: `Kernel code` start to `Kernel data` end (see
    /// [`kernel_image_range`]).
    pub phys: MemoryRange,
    /// Kernel-image virtual address of `phys.start` (`_stext`, see
    /// [`KERNEL_CODE_SYMBOL`]).
    pub vaddr: u64,
}

/// The running kernel's linear map: `virt = phys - phys_offset + page_offset`.
/// The kernel writes it `(phys - PHYS_OFFSET) | PAGE_OFFSET` (`__phys_to_virt`,
/// arch/arm64/include/asm/memory.h), the same for every address it maps, so
/// any one (virtual, physical) pair of the map serves as well as
/// (`PAGE_OFFSET`, `PHYS_OFFSET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinearMap {
    /// A linear-map virtual address: `PAGE_OFFSET`, or any other.
    pub page_offset: u64,
    /// The physical address mapped there: `PHYS_OFFSET` (`memstart_addr`).
    pub phys_offset: u64,
}

impl LinearMap {
    /// The linear-map address of `phys`.
    pub const fn virt(&self, phys: u64) -> u64 {
        phys.wrapping_sub(self.phys_offset)
            .wrapping_add(self.page_offset)
    }

    /// From the VMCOREINFO note's text (`KEY=VALUE` lines): `NUMBER(VA_BITS)`
    /// (decimal) and `NUMBER(PHYS_OFFSET)` (0x-hex or decimal). `PAGE_OFFSET`
    /// is `-(1 << VA_BITS)`, the layout of Linux 5.4 and later (commit
    /// 14c127c957c1, "arm64: mm: Flip kernel VA space"); for an `OSRELEASE`
    /// before 5.4 it is `-(1 << (VA_BITS - 1))`. `None` if either number is
    /// missing or VA_BITS is outside 36..=52.
    pub fn from_vmcoreinfo(text: &str) -> Option<Self> {
        let va_bits: u32 = vmcoreinfo_value(text, "NUMBER(VA_BITS)")?.parse().ok()?;
        if !(36..=52).contains(&va_bits) {
            return None;
        }
        let phys_offset = parse_number(vmcoreinfo_value(text, "NUMBER(PHYS_OFFSET)")?)?;
        let flipped =
            vmcoreinfo_value(text, "OSRELEASE").and_then(release_before_5_4) != Some(true);
        let bits = if flipped { va_bits } else { va_bits - 1 };
        Some(Self {
            page_offset: u64::MAX << bits,
            phys_offset,
        })
    }
}

/// What the program headers of `/proc/kcore` (fs/proc/kcore.c) say about the
/// running kernel's mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KcoreLayout {
    /// The linear map, from the `KCORE_RAM` headers.
    pub linear: Option<LinearMap>,
    /// The kernel image mapping, from the `KCORE_TEXT` header (`_text` to
    /// `_end`): its physical range and the virtual address of its start.
    pub image: Option<(MemoryRange, u64)>,
}

impl KcoreLayout {
    /// The kernel-image virtual address of `phys`, if the image mapping
    /// covers it.
    pub fn image_virt(&self, phys: u64) -> Option<u64> {
        let (range, vaddr) = self.image?;
        (phys >= range.start && phys < range.end).then(|| vaddr.wrapping_add(phys - range.start))
    }
}

/// Bytes of `/proc/kcore` that hold its ELF and program headers, read from
/// its first [`EHDR_SIZE`] bytes: `e_phoff + e_phnum * e_phentsize`. `None`
/// if they are not an ELF64 little-endian header.
pub fn kcore_header_len(ehdr: &[u8]) -> Option<u64> {
    if ehdr.len() < EHDR_SIZE || ehdr[..4] != [0x7f, b'E', b'L', b'F'] {
        return None;
    }
    if ehdr[4] != ELFCLASS64 || ehdr[5] != ELFDATA2LSB {
        return None;
    }
    let phoff = u64::from_le_bytes(ehdr[32..40].try_into().ok()?);
    let phentsize = u64::from(u16::from_le_bytes([ehdr[54], ehdr[55]]));
    let phnum = u64::from(u16::from_le_bytes([ehdr[56], ehdr[57]]));
    phoff.checked_add(phentsize.checked_mul(phnum)?)
}

/// Reads the mappings from `/proc/kcore`'s headers (at least
/// [`kcore_header_len`] bytes). Its `PT_LOAD`s with a physical address are
/// `KCORE_RAM` (`p_vaddr` = the linear-map address of `p_paddr`) and
/// `KCORE_TEXT` (`p_vaddr = _text`, `p_paddr` its physical address); the
/// others carry `p_paddr = -1`. The linear map is the offset shared by the
/// most bytes; the image mapping is the other one.
pub fn parse_kcore(header: &[u8]) -> Result<KcoreLayout, Error> {
    use object::read::elf::{FileHeader as _, ProgramHeader as _};
    let ehdr = object::elf::FileHeader64::<object::LittleEndian>::parse(header)
        .map_err(|e| Error::BadKcore(e.to_string()))?;
    let e = ehdr.endian().map_err(|e| Error::BadKcore(e.to_string()))?;
    let phdrs = ehdr
        .program_headers(e, header)
        .map_err(|e| Error::BadKcore(e.to_string()))?;
    // (virt - phys, bytes, a (phys, virt) pair, lowest phys range).
    let mut maps: Vec<(u64, u64, MemoryRange, u64)> = Vec::new();
    for p in phdrs {
        if p.p_type(e) != object::elf::PT_LOAD || p.p_paddr(e) == u64::MAX {
            continue;
        }
        let (phys, virt, size) = (p.p_paddr(e), p.p_vaddr(e), p.p_memsz(e));
        let delta = virt.wrapping_sub(phys);
        let range = MemoryRange::with_size(phys, size);
        match maps.iter_mut().find(|m| m.0 == delta) {
            Some(m) => {
                m.1 = m.1.saturating_add(size);
                if phys < m.2.start {
                    (m.2, m.3) = (range, virt);
                }
            }
            None => maps.push((delta, size, range, virt)),
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.1));
    let linear = maps.first().map(|m| LinearMap {
        page_offset: m.3,
        phys_offset: m.2.start,
    });
    let image = maps.get(1).map(|m| (m.2, m.3));
    Ok(KcoreLayout { linear, image })
}

/// `Some(true)` if a `uname -r` style release is older than 5.4.
fn release_before_5_4(release: &str) -> Option<bool> {
    let mut parts = release.split(['.', '-']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor) < (5, 4))
}

/// A decimal or 0x-hex number.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The value of `KEY=VALUE` in VMCOREINFO text (kernel/crash_core.c writes one
/// per line, e.g. `NUMBER(VA_BITS)=48`).
pub(crate) fn vmcoreinfo_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k == key).then_some(v.trim())
    })
}

/// Everything the header describes, gathered by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElfCoreInputs {
    /// Each CPU's `crash_notes` buffer, in CPU order.
    pub cpu_notes: Vec<Note>,
    /// The VMCOREINFO note, if `/sys/kernel/vmcoreinfo` exists.
    pub vmcoreinfo: Option<Note>,
    /// The kernel image; `None` leaves its `PT_LOAD` out.
    pub kernel_text: Option<KernelText>,
    /// `System RAM` ranges (top level of /proc/iomem).
    pub ram: Vec<MemoryRange>,
    /// The crash regions, all of them (high and low): not described.
    pub crash: Vec<MemoryRange>,
    /// The linear map; `None` writes `p_vaddr = 0` for RAM.
    pub linear_map: Option<LinearMap>,
}

impl ElfCoreInputs {
    /// The RAM ranges the header describes: `ram` minus `crash`, sorted.
    pub fn dumped_ram(&self) -> Vec<MemoryRange> {
        let mut ram = subtract(&self.ram, &self.crash);
        ram.retain(|r| !r.is_empty());
        ram
    }

    /// How many program headers [`build`] writes.
    pub fn program_header_count(&self) -> usize {
        self.cpu_notes.len()
            + usize::from(self.vmcoreinfo.is_some())
            + usize::from(self.kernel_text.is_some())
            + self.dumped_ram().len()
    }
}

/// One `Elf64_Phdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProgramHeader {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

impl ProgramHeader {
    fn note(addr: u64, size: u64) -> Self {
        Self {
            p_type: PT_NOTE,
            p_flags: 0,
            p_offset: addr,
            p_vaddr: 0,
            p_paddr: addr,
            p_filesz: size,
            p_memsz: size,
            p_align: 0,
        }
    }

    fn load(phys: MemoryRange, vaddr: u64) -> Self {
        Self {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_W | PF_X,
            p_offset: phys.start,
            p_vaddr: vaddr,
            p_paddr: phys.start,
            p_filesz: phys.size(),
            p_memsz: phys.size(),
            p_align: 0,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.p_type.to_le_bytes());
        out.extend_from_slice(&self.p_flags.to_le_bytes());
        for v in [
            self.p_offset,
            self.p_vaddr,
            self.p_paddr,
            self.p_filesz,
            self.p_memsz,
            self.p_align,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn check_note(what: impl FnOnce() -> String, note: Note) -> Result<(), Error> {
    if note.size == 0 || note.addr.checked_add(note.size).is_none() {
        return Err(Error::BadNote {
            what: what(),
            addr: note.addr,
            size: note.size,
        });
    }
    Ok(())
}

/// Writes the ELF core header: the ELF header, then the program headers in
/// the order CPU notes, VMCOREINFO note, kernel image, RAM (ascending).
///
/// ```
/// use kexec_core::elfcore::{build, ElfCoreInputs, Note, EHDR_SIZE, PHDR_SIZE};
/// use kexec_core::iomem::MemoryRange;
/// let header = build(&ElfCoreInputs {
///     cpu_notes: vec![Note { addr: 0x7fda_6600, size: 424 }],
///     ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
///     crash: vec![MemoryRange::new(0x6ac0_0000, 0x7ac0_0000)],
///     ..Default::default()
/// })
/// .unwrap();
/// // One note and two RAM ranges (below and above the crash region).
/// assert_eq!(header.len(), EHDR_SIZE + 3 * PHDR_SIZE);
/// ```
pub fn build(inputs: &ElfCoreInputs) -> Result<Vec<u8>, Error> {
    let mut phdrs = Vec::new();
    for (cpu, &note) in inputs.cpu_notes.iter().enumerate() {
        check_note(|| format!("cpu {cpu} crash_notes"), note)?;
        phdrs.push(ProgramHeader::note(note.addr, note.size));
    }
    if let Some(note) = inputs.vmcoreinfo {
        check_note(|| "vmcoreinfo".to_owned(), note)?;
        phdrs.push(ProgramHeader::note(note.addr, note.size));
    }
    if let Some(k) = inputs.kernel_text {
        if k.phys.is_empty() {
            return Err(Error::EmptyKernelText(k.phys));
        }
        phdrs.push(ProgramHeader::load(k.phys, k.vaddr));
    }
    let ram = inputs.dumped_ram();
    if ram.is_empty() {
        return Err(Error::NoRam);
    }
    for r in ram {
        let vaddr = inputs.linear_map.map_or(0, |m| m.virt(r.start));
        phdrs.push(ProgramHeader::load(r, vaddr));
    }
    let phnum =
        u16::try_from(phdrs.len()).map_err(|_| Error::TooManyProgramHeaders(phdrs.len()))?;
    if usize::from(phnum) > MAX_PHDRS {
        return Err(Error::TooManyProgramHeaders(phdrs.len()));
    }

    let mut out = Vec::with_capacity(EHDR_SIZE + PHDR_SIZE * phdrs.len());
    // e_ident: magic, class, data, version, OS ABI (SYSV), ABI version, pad.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', ELFCLASS64, ELFDATA2LSB, EV_CURRENT]);
    out.resize(16, 0);
    out.extend_from_slice(&ET_CORE.to_le_bytes()); // e_type
    out.extend_from_slice(&EM_AARCH64.to_le_bytes()); // e_machine
    out.extend_from_slice(&u32::from(EV_CURRENT).to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [EHDR_SIZE, PHDR_SIZE] {
        // e_ehsize, e_phentsize: both fit 16 bits.
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&(half as u16).to_le_bytes());
    }
    out.extend_from_slice(&phnum.to_le_bytes()); // e_phnum
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    debug_assert_eq!(out.len(), EHDR_SIZE);
    for p in &phdrs {
        p.write(&mut out);
    }
    Ok(out)
}

/// The kernel image's physical range from /proc/iomem: the start of
/// `Kernel code` to the end of `Kernel data` (`_end`, BSS included).
pub fn kernel_image_range(map: &MemoryMap) -> Option<MemoryRange> {
    let all = map.all();
    let code = all.iter().find(|r| r.name == KERNEL_CODE)?;
    let data = all.iter().find(|r| r.name == KERNEL_DATA)?;
    let range = MemoryRange::new(code.start, data.end.checked_add(1)?);
    (!range.is_empty()).then_some(range)
}

/// Hex digits, with or without `0x`.
fn hex(what: &'static str, text: &str) -> Result<u64, Error> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadHex {
            what,
            text: text.to_owned(),
        });
    }
    u64::from_str_radix(digits, 16).map_err(|_| Error::BadHex {
        what,
        text: text.to_owned(),
    })
}

fn decimal(what: &'static str, text: &str) -> Result<u64, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadDecimal {
            what,
            text: text.to_owned(),
        });
    }
    text.parse().map_err(|_| Error::BadDecimal {
        what,
        text: text.to_owned(),
    })
}

/// `/sys/devices/system/cpu/cpuN/crash_notes`: the physical address of the
/// CPU's note buffer, in hex without `0x` (`%llx`).
pub fn parse_crash_notes(text: &str) -> Result<u64, Error> {
    hex("crash_notes", text.trim())
}

/// `/sys/devices/system/cpu/cpuN/crash_notes_size`: its size, in decimal.
pub fn parse_crash_notes_size(text: &str) -> Result<u64, Error> {
    decimal("crash_notes_size", text.trim())
}

/// `/sys/kernel/vmcoreinfo`: "ADDR SIZE", both hex (`%pa %x`: the address
/// with `0x`, the size without).
pub fn parse_vmcoreinfo(text: &str) -> Result<Note, Error> {
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(addr), Some(size), None) => Ok(Note {
            addr: hex("vmcoreinfo address", addr)?,
            size: hex("vmcoreinfo size", size)?,
        }),
        _ => Err(Error::BadVmcoreinfo(text.to_owned())),
    }
}

/// A sysfs CPU list such as `/sys/devices/system/cpu/possible`: `0-3,5,7-8`
/// (Documentation/ABI/testing/sysfs-devices-system-cpu). Sorted, deduplicated.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, Error> {
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Ok(cpus);
    }
    let number = |t: &str| -> Result<u32, Error> {
        let n = decimal("CPU list", t)?;
        u32::try_from(n)
            .ok()
            .filter(|&n| (n as usize) < MAX_CPUS)
            .ok_or(Error::TooManyCpus)
    };
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (number(lo)?, number(hi)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(Error::BackwardCpuRange(part.to_owned()));
        }
        if cpus.len() + (hi - lo) as usize >= MAX_CPUS * 2 {
            return Err(Error::TooManyCpus);
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The address of `symbol` in `/proc/kallsyms` text (`ADDR TYPE NAME
/// [MODULE]` per line). `None` if absent or printed as zero (unprivileged
/// readers see zeros: `kptr_restrict`).
pub fn kallsyms_address(text: &str, symbol: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (addr, _ty, name) = (f.next()?, f.next()?, f.next()?);
        if name != symbol {
            return None;
        }
        u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf::{FileHeader64, PT_LOAD as OBJ_PT_LOAD, PT_NOTE as OBJ_PT_NOTE};
    use object::read::elf::{FileHeader, ProgramHeader as _};
    use object::LittleEndian;

    /// The captured `crashkernel=256M` QEMU guest
    /// (fixtures/sysroots/virt-1g-crashkernel).
    fn captured() -> ElfCoreInputs {
        ElfCoreInputs {
            cpu_notes: vec![
                Note {
                    addr: 0x7fda_6600,
                    size: 424,
                },
                Note {
                    addr: 0x7fdc_5600,
                    size: 424,
                },
            ],
            vmcoreinfo: Some(Note {
                addr: 0x4830_0000,
                size: 0x1024,
            }),
            kernel_text: Some(KernelText {
                phys: MemoryRange::new(0x4021_0000, 0x4221_0000),
                vaddr: 0xffff_8000_0801_0000,
            }),
            ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
            crash: vec![MemoryRange::new(0x6ac0_0000, 0x7ac0_0000)],
            linear_map: Some(LinearMap {
                page_offset: 0xffff_0000_0000_0000,
                phys_offset: 0x4000_0000,
            }),
        }
    }

    #[test]
    fn elf_header_and_program_headers_byte_for_byte() {
        let out = build(&captured()).unwrap();
        assert_eq!(out.len(), EHDR_SIZE + 6 * PHDR_SIZE);
        #[rustfmt::skip]
        let ehdr: [u8; EHDR_SIZE] = [
            0x7f, b'E', b'L', b'F',                         // 00: EI_MAG
            0x02,                                           // 04: EI_CLASS = ELFCLASS64
            0x01,                                           // 05: EI_DATA = ELFDATA2LSB
            0x01,                                           // 06: EI_VERSION = EV_CURRENT
            0x00,                                           // 07: EI_OSABI = SYSV
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 08: EI_ABIVERSION, padding
            0x04, 0x00,                                     // 10: e_type = ET_CORE
            0xb7, 0x00,                                     // 12: e_machine = EM_AARCH64 (183)
            0x01, 0x00, 0x00, 0x00,                         // 14: e_version = EV_CURRENT
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 18: e_entry
            0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 20: e_phoff = 64
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 28: e_shoff
            0x00, 0x00, 0x00, 0x00,                         // 30: e_flags
            0x40, 0x00,                                     // 34: e_ehsize = 64
            0x38, 0x00,                                     // 36: e_phentsize = 56
            0x06, 0x00,                                     // 38: e_phnum = 6
            0x00, 0x00,                                     // 3a: e_shentsize
            0x00, 0x00,                                     // 3c: e_shnum
            0x00, 0x00,                                     // 3e: e_shstrndx
        ];
        assert_eq!(out[..EHDR_SIZE], ehdr);
        #[rustfmt::skip]
        let cpu0_note: [u8; PHDR_SIZE] = [
            0x04, 0x00, 0x00, 0x00,                         // 00: p_type = PT_NOTE
            0x00, 0x00, 0x00, 0x00,                         // 04: p_flags
            0x00, 0x66, 0xda, 0x7f, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = crash_notes
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 10: p_vaddr = 0
            0x00, 0x66, 0xda, 0x7f, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = crash_notes
            0xa8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 424
            0xa8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz = 424
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
        ];
        assert_eq!(out[EHDR_SIZE..EHDR_SIZE + PHDR_SIZE], cpu0_note);
        // The fifth header: RAM below the crash region, at the linear map.
        #[rustfmt::skip]
        let low_ram: [u8; PHDR_SIZE] = [
            0x01, 0x00, 0x00, 0x00,                         // 00: p_type = PT_LOAD
            0x07, 0x00, 0x00, 0x00,                         // 04: p_flags = PF_R | PF_W | PF_X
            0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 08: p_offset = 0x40000000
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, // 10: p_vaddr = PAGE_OFFSET + 0
            0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // 18: p_paddr = 0x40000000
            0x00, 0x00, 0xc0, 0x2a, 0x00, 0x00, 0x00, 0x00, // 20: p_filesz = 0x2ac00000
            0x00, 0x00, 0xc0, 0x2a, 0x00, 0x00, 0x00, 0x00, // 28: p_memsz
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 30: p_align
        ];
        let fifth = EHDR_SIZE + 4 * PHDR_SIZE;
        assert_eq!(out[fifth..fifth + PHDR_SIZE], low_ram);
    }

    #[test]
    fn object_reads_it_back() {
        let out = build(&captured()).unwrap();
        let header = FileHeader64::<LittleEndian>::parse(&*out).unwrap();
        let e = header.endian().unwrap();
        assert_eq!(header.e_type.get(e), object::elf::ET_CORE);
        assert_eq!(header.e_machine.get(e), object::elf::EM_AARCH64);
        assert_eq!(header.e_version.get(e), 1, "EV_CURRENT");
        let phdrs = header.program_headers(e, &*out).unwrap();
        let got: Vec<_> = phdrs
            .iter()
            .map(|p| {
                (
                    p.p_type(e),
                    p.p_offset(e),
                    p.p_paddr(e),
                    p.p_vaddr(e),
                    p.p_filesz(e),
                    p.p_memsz(e),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (OBJ_PT_NOTE, 0x7fda_6600, 0x7fda_6600, 0, 424, 424),
                (OBJ_PT_NOTE, 0x7fdc_5600, 0x7fdc_5600, 0, 424, 424),
                (OBJ_PT_NOTE, 0x4830_0000, 0x4830_0000, 0, 0x1024, 0x1024),
                (
                    OBJ_PT_LOAD,
                    0x4021_0000,
                    0x4021_0000,
                    0xffff_8000_0801_0000,
                    0x200_0000,
                    0x200_0000
                ),
                (
                    OBJ_PT_LOAD,
                    0x4000_0000,
                    0x4000_0000,
                    0xffff_0000_0000_0000,
                    0x2ac0_0000,
                    0x2ac0_0000
                ),
                (
                    OBJ_PT_LOAD,
                    0x7ac0_0000,
                    0x7ac0_0000,
                    0xffff_0000_3ac0_0000,
                    0x540_0000,
                    0x540_0000
                ),
            ]
        );
    }

    #[test]
    fn without_kernel_text_or_linear_map() {
        let inputs = ElfCoreInputs {
            kernel_text: None,
            linear_map: None,
            vmcoreinfo: None,
            ..captured()
        };
        assert_eq!(inputs.program_header_count(), 4);
        let out = build(&inputs).unwrap();
        let header = FileHeader64::<LittleEndian>::parse(&*out).unwrap();
        let e = header.endian().unwrap();
        let phdrs = header.program_headers(e, &*out).unwrap();
        assert_eq!(phdrs.len(), 4);
        assert!(phdrs[2..].iter().all(|p| p.p_type(e) == OBJ_PT_LOAD
            && p.p_vaddr(e) == 0
            && p.p_offset(e) == p.p_paddr(e)));
    }

    #[test]
    fn both_crash_regions_are_left_out() {
        let inputs = ElfCoreInputs {
            ram: vec![
                MemoryRange::new(0x4000_0000, 0x8000_0000),
                MemoryRange::new(0x1_0000_0000, 0x2_0000_0000),
            ],
            crash: vec![
                MemoryRange::new(0x1_f000_0000, 0x2_0000_0000),
                MemoryRange::new(0x4000_0000, 0x4800_0000),
            ],
            ..Default::default()
        };
        assert_eq!(
            inputs.dumped_ram(),
            [
                MemoryRange::new(0x4800_0000, 0x8000_0000),
                MemoryRange::new(0x1_0000_0000, 0x1_f000_0000),
            ]
        );
    }

    #[test]
    fn build_errors() {
        let bad_cpu = ElfCoreInputs {
            cpu_notes: vec![Note {
                addr: 0x1000,
                size: 0,
            }],
            ..captured()
        };
        assert_eq!(
            build(&bad_cpu),
            Err(Error::BadNote {
                what: "cpu 0 crash_notes".into(),
                addr: 0x1000,
                size: 0
            })
        );
        let overflow = ElfCoreInputs {
            vmcoreinfo: Some(Note {
                addr: u64::MAX,
                size: 2,
            }),
            ..captured()
        };
        assert!(matches!(build(&overflow), Err(Error::BadNote { .. })));
        let all_crash = ElfCoreInputs {
            crash: vec![MemoryRange::new(0, u64::MAX)],
            ..captured()
        };
        assert_eq!(build(&all_crash), Err(Error::NoRam));
        let empty_text = ElfCoreInputs {
            kernel_text: Some(KernelText {
                phys: MemoryRange::new(5, 5),
                vaddr: 0,
            }),
            ..captured()
        };
        assert_eq!(
            build(&empty_text),
            Err(Error::EmptyKernelText(MemoryRange::new(5, 5)))
        );
        let many = ElfCoreInputs {
            cpu_notes: vec![
                Note {
                    addr: 0x1000,
                    size: 8
                };
                MAX_PHDRS
            ],
            ..captured()
        };
        assert!(matches!(build(&many), Err(Error::TooManyProgramHeaders(_))));
    }

    #[test]
    fn sysfs_text() {
        assert_eq!(parse_crash_notes("7fda6600\n"), Ok(0x7fda_6600));
        assert_eq!(parse_crash_notes_size("424\n"), Ok(424));
        assert_eq!(
            parse_vmcoreinfo("0x0000000048300000 1024\n"),
            Ok(Note {
                addr: 0x4830_0000,
                size: 0x1024
            })
        );
        assert_eq!(
            parse_crash_notes("xyz"),
            Err(Error::BadHex {
                what: "crash_notes",
                text: "xyz".into()
            })
        );
        assert_eq!(
            parse_crash_notes("0x"),
            Err(Error::BadHex {
                what: "crash_notes",
                text: "0x".into()
            })
        );
        assert_eq!(
            parse_crash_notes("1ffffffffffffffff"),
            Err(Error::BadHex {
                what: "crash_notes",
                text: "1ffffffffffffffff".into()
            })
        );
        assert_eq!(
            parse_crash_notes_size("0x10"),
            Err(Error::BadDecimal {
                what: "crash_notes_size",
                text: "0x10".into()
            })
        );
        assert_eq!(
            parse_vmcoreinfo("0x1000"),
            Err(Error::BadVmcoreinfo("0x1000".into()))
        );
        assert_eq!(
            parse_vmcoreinfo("0x1000 10 20"),
            Err(Error::BadVmcoreinfo("0x1000 10 20".into()))
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Ok(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Ok(vec![0, 1, 2, 3, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3,0-1,1"), Ok(vec![0, 1, 3]));
        assert_eq!(parse_cpu_list(""), Ok(vec![]));
        assert_eq!(
            parse_cpu_list("3-1"),
            Err(Error::BackwardCpuRange("3-1".into()))
        );
        assert_eq!(parse_cpu_list("0-4096"), Err(Error::TooManyCpus));
        assert_eq!(
            parse_cpu_list("0-4095,0-4095,0-4095"),
            Err(Error::TooManyCpus)
        );
        assert!(matches!(parse_cpu_list("a"), Err(Error::BadDecimal { .. })));
    }

    #[test]
    fn kallsyms_and_vmcoreinfo_text() {
        let syms = "ffff800008000000 T _text\nffff800008010000 T _stext\n\
                    ffff800008020000 t foo\t[mod]\n";
        assert_eq!(
            kallsyms_address(syms, "_stext"),
            Some(0xffff_8000_0801_0000)
        );
        assert_eq!(kallsyms_address(syms, "_etext"), None);
        assert_eq!(
            kallsyms_address("0000000000000000 T _stext\n", "_stext"),
            None
        );

        let info = "OSRELEASE=6.1.0-13-arm64\nNUMBER(VA_BITS)=48\n\
                    NUMBER(PHYS_OFFSET)=0x40000000\nKERNELOFFSET=0\n";
        assert_eq!(
            LinearMap::from_vmcoreinfo(info),
            Some(LinearMap {
                page_offset: 0xffff_0000_0000_0000,
                phys_offset: 0x4000_0000
            })
        );
        let old = "OSRELEASE=4.19.0\nNUMBER(VA_BITS)=39\nNUMBER(PHYS_OFFSET)=1073741824\n";
        let m = LinearMap::from_vmcoreinfo(old).unwrap();
        assert_eq!(m.page_offset, 0xffff_ffc0_0000_0000);
        assert_eq!(m.virt(0x4000_1000), 0xffff_ffc0_0000_1000);
        assert_eq!(LinearMap::from_vmcoreinfo("NUMBER(VA_BITS)=48\n"), None);
        assert_eq!(
            LinearMap::from_vmcoreinfo("NUMBER(VA_BITS)=64\nNUMBER(PHYS_OFFSET)=0\n"),
            None
        );
    }

    #[test]
    fn kcore_layout_from_program_headers() {
        // A /proc/kcore-like header: RAM at its linear-map addresses, the
        // kernel image at its own, and a vmalloc PT_LOAD without a physical
        // address.
        let mut kcore = build(&captured()).unwrap();
        ProgramHeader {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_W | PF_X,
            p_offset: 0x1000,
            p_vaddr: 0xffff_8000_0000_0000,
            p_paddr: u64::MAX,
            p_filesz: 1 << 40,
            p_memsz: 1 << 40,
            p_align: 0,
        }
        .write(&mut kcore);
        kcore[56] += 1; // e_phnum
        assert_eq!(
            kcore_header_len(&kcore[..EHDR_SIZE]),
            Some(kcore.len() as u64)
        );
        let layout = parse_kcore(&kcore).unwrap();
        let linear = layout.linear.unwrap();
        assert_eq!(linear.virt(0x4000_0000), 0xffff_0000_0000_0000);
        assert_eq!(linear.virt(0x7ac0_0000), 0xffff_0000_3ac0_0000);
        assert_eq!(layout.image_virt(0x4021_0000), Some(0xffff_8000_0801_0000));
        assert_eq!(layout.image_virt(0x4022_0000), Some(0xffff_8000_0802_0000));
        assert_eq!(layout.image_virt(0x4221_0000), None);

        assert!(matches!(parse_kcore(b"not elf"), Err(Error::BadKcore(_))));
        assert_eq!(kcore_header_len(b"short"), None);
        let mut big_endian = kcore[..EHDR_SIZE].to_vec();
        big_endian[5] = 2; // ELFDATA2MSB
        assert_eq!(kcore_header_len(&big_endian), None);
        // Only RAM: no image mapping.
        let ram_only = build(&ElfCoreInputs {
            kernel_text: None,
            ..captured()
        })
        .unwrap();
        assert_eq!(parse_kcore(&ram_only).unwrap().image, None);
    }

    #[test]
    fn kernel_image_from_iomem() {
        let map = crate::iomem::parse(
            "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
             41860000-41eaffff : reserved\n  41eb0000-4220ffff : Kernel data\n",
        )
        .unwrap();
        assert_eq!(
            kernel_image_range(&map),
            Some(MemoryRange::new(0x4021_0000, 0x4221_0000))
        );
        let none = crate::iomem::parse("40000000-7fffffff : System RAM\n").unwrap();
        assert_eq!(kernel_image_range(&none), None);
    }
}

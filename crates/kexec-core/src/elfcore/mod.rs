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
//! (`crash_prepare_elf64_headers`: kernel/kexec_file.c in 6.1, kernel/crash_core.c in later kernels). Field values come
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
//!   since Linux 4.19 on arm64). VMCOREINFO is no fallback for an unreadable
//!   `/proc/kcore`: `/sys/kernel/vmcoreinfo` gives only the note's physical
//!   address and size, and its text is readable only through `/proc/kcore`
//!   (which carries it as a `PT_NOTE` since 4.19) or `/dev/mem` (which refuses
//!   RAM with `CONFIG_STRICT_DEVMEM`, set by Debian; both need
//!   `CAP_SYS_RAWIO`). Nothing else exports `memstart_addr`, which KASLR
//!   randomises (`arm64_memblock_init`, arch/arm64/mm/init.c), and
//!   `/proc/kallsyms` gives the kernel image's addresses, not the linear
//!   map's. [`LinearMap::from_vmcoreinfo`] serves callers that hold the
//!   note's text (a dump, or `/proc/kcore`'s note).

use thiserror::Error;

use crate::iomem::{subtract, MemoryMap, MemoryRange, KERNEL_CODE, KERNEL_DATA};

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
mod boundary_tests;
#[cfg(test)]
mod tests;

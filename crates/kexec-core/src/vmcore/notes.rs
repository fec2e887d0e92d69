//! The ELF notes of a vmcore: `Elf64_Nhdr` (`n_namesz`, `n_descsz`,
//! `n_type`, each 32 bits), the name and the descriptor each padded to 4
//! bytes (gABI "Note Section"). The crash kernel merges every CPU's
//! `crash_notes` buffer and the VMCOREINFO note into one `PT_NOTE`
//! (fs/proc/vmcore.c, `merge_note_headers_elf64`), stopping each buffer at
//! its first note with `n_namesz == 0` (the terminator `final_note` writes).

use super::{u32_at, u64_at, Error, Vmcore, VmcoreInfo};

/// `n_type` of the registers a CPU saved at the crash (include/uapi/linux/elf.h).
pub const NT_PRSTATUS: u32 = 1;
/// Name of the `NT_PRSTATUS` notes (`KEXEC_CORE_NOTE_NAME`, include/linux/kexec.h).
pub const CORE_NOTE_NAME: &[u8] = b"CORE";
/// Name of the VMCOREINFO note (`VMCOREINFO_NOTE_NAME`, include/linux/crash_core.h); its `n_type` is 0.
pub const VMCOREINFO_NOTE_NAME: &[u8] = b"VMCOREINFO";
/// `sizeof(Elf64_Nhdr)`.
pub const NHDR_SIZE: usize = 12;
/// `sizeof(struct elf_prstatus)` on arm64 (include/linux/elfcore.h): the
/// common part (112 bytes), `elf_gregset_t` (34 registers) and `pr_fpvalid`.
pub const PRSTATUS_SIZE: usize = 392;
/// Offset of `pr_pid` in `struct elf_prstatus`: after `pr_info` (12 bytes),
/// `pr_cursig` (padded to 16), `pr_sigpend` and `pr_sighold`.
pub const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg`: after the four `__kernel_old_timeval`s.
pub const PRSTATUS_REGS: usize = 112;
/// Registers in arm64's `elf_gregset_t` (`struct user_pt_regs`: x0-x30, sp, pc, pstate).
pub const PRSTATUS_NREGS: usize = 34;
/// Largest VMCOREINFO text kept: the kernel's is one page (`VMCOREINFO_BYTES`
/// = `PAGE_SIZE`, at most 64 KiB on arm64).
pub const MAX_VMCOREINFO_BYTES: usize = 64 << 10;

/// The registers one CPU saved at the crash (`crash_save_cpu`,
/// kernel/kexec_core.c: `pr_pid = current->pid`, `pr_reg` from `pt_regs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrStatus {
    /// The task that was running on the CPU (0: the idle task).
    pub pid: i32,
    /// x0 … x30, sp, pc, pstate.
    pub regs: [u64; PRSTATUS_NREGS],
}

impl PrStatus {
    /// The program counter.
    pub fn pc(&self) -> u64 {
        self.regs[32]
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.regs[31]
    }

    /// The saved PSTATE.
    pub fn pstate(&self) -> u64 {
        self.regs[33]
    }

    fn parse(desc: &[u8]) -> Option<Self> {
        if desc.len() < PRSTATUS_SIZE {
            return None;
        }
        let mut regs = [0u64; PRSTATUS_NREGS];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = u64_at(desc, PRSTATUS_REGS + 8 * i);
        }
        Some(Self {
            pid: u32_at(desc, PRSTATUS_PID) as i32,
            regs,
        })
    }
}

fn pad4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// Adds the notes of one `PT_NOTE` segment to `vmcore`. A zero `n_namesz`
/// ends the segment, as it ends each buffer for the kernel.
pub(crate) fn collect(bytes: &[u8], vmcore: &mut Vmcore) -> Result<(), Error> {
    let mut at = 0usize;
    while at + NHDR_SIZE <= bytes.len() {
        let namesz = u32_at(bytes, at) as usize;
        let descsz = u32_at(bytes, at + 4) as usize;
        let n_type = u32_at(bytes, at + 8);
        if namesz == 0 {
            break;
        }
        let bad = |problem: String| Error::BadNote {
            offset: at,
            problem,
        };
        let name_at = at + NHDR_SIZE;
        let desc_at = pad4(namesz)
            .and_then(|n| name_at.checked_add(n))
            .filter(|&d| d <= bytes.len())
            .ok_or_else(|| bad(format!("name of {namesz} bytes runs past the notes")))?;
        let next = pad4(descsz)
            .and_then(|n| desc_at.checked_add(n))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad(format!("descriptor of {descsz} bytes runs past the notes")))?;
        let name = &bytes[name_at..name_at + namesz];
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let desc = &bytes[desc_at..desc_at + descsz];
        if name == CORE_NOTE_NAME && n_type == NT_PRSTATUS {
            let p = PrStatus::parse(desc).ok_or_else(|| {
                bad(format!(
                    "NT_PRSTATUS of {descsz} bytes, arm64's elf_prstatus has {PRSTATUS_SIZE}"
                ))
            })?;
            vmcore.prstatus.push(p);
        } else if name == VMCOREINFO_NOTE_NAME && n_type == 0 {
            if vmcore.vmcoreinfo.is_some() {
                return Err(bad("a second VMCOREINFO note".into()));
            }
            if descsz > MAX_VMCOREINFO_BYTES {
                return Err(bad(format!(
                    "VMCOREINFO of {descsz} bytes, more than {MAX_VMCOREINFO_BYTES}"
                )));
            }
            let text = desc.split(|&b| b == 0).next().unwrap_or_default();
            vmcore.vmcoreinfo = Some(VmcoreInfo::new(&String::from_utf8_lossy(text)));
        } else {
            vmcore.other_notes += 1;
        }
        at = next;
    }
    Ok(())
}

//! The ELF core header of a crash load (`-p`): gathers the running kernel's
//! note buffers and memory map from the sysroot and asks
//! [`kexec_core::elfcore::build`] for the header.
//!
//! Files read, relative to the root (all optional except /proc/iomem, which
//! the caller has already parsed):
//!
//! | file                                      | what                                   |
//! |-------------------------------------------|----------------------------------------|
//! | `sys/devices/system/cpu/possible`         | CPU list, e.g. `0-3`                   |
//! | `sys/devices/system/cpu/cpuN/crash_notes` | physical address of CPU N's note, hex  |
//! | `sys/devices/system/cpu/cpuN/crash_notes_size` | its size, decimal                 |
//! | `sys/kernel/vmcoreinfo`                   | VMCOREINFO note: "ADDR SIZE", hex      |
//! | `proc/kcore` (headers only)               | linear map and kernel image mapping    |
//! | `proc/kallsyms`                           | `_stext`, the kernel image's virtual address (without kcore) |
//!
//! What is missing is said in the plan's notes, never silently dropped.

use std::io::Read;

use kexec_core::elfcore::{
    self, ElfCoreInputs, KcoreLayout, KernelText, Note, EHDR_SIZE, KERNEL_CODE_SYMBOL, MAX_CPUS,
};
use kexec_core::iomem::MemoryMap;

use crate::failure::{chain, Failure};
use crate::sysroot::Sysroot;

/// `/sys/devices/system/cpu/possible`, relative to the root.
pub const CPU_POSSIBLE: &str = "sys/devices/system/cpu/possible";
/// `/sys/kernel/vmcoreinfo`, relative to the root.
pub const VMCOREINFO: &str = "sys/kernel/vmcoreinfo";
/// `/proc/kallsyms`, relative to the root.
pub const KALLSYMS: &str = "proc/kallsyms";
/// `/proc/kcore`, relative to the root: only its headers are read.
pub const KCORE: &str = "proc/kcore";
/// Most bytes of `/proc/kcore` headers read: the kernel writes one program
/// header per memory range, a few hundred at most.
const KCORE_HEADER_MAX: u64 = 1 << 20;

/// The ELF and program headers at the start of `/proc/kcore` (at most
/// [`KCORE_HEADER_MAX`] bytes): all a load reads of it, and all
/// `kexec capture-sysroot` keeps. An error if it is absent, unreadable
/// (root with CAP_SYS_RAWIO and no lockdown is needed) or not ELF64.
pub(crate) fn kcore_headers(root: &Sysroot) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(root.path(KCORE))?;
    let mut header = vec![0u8; EHDR_SIZE];
    file.read_exact(&mut header)?;
    let len = elfcore::kcore_header_len(&header)
        .ok_or_else(|| std::io::Error::other("not an ELF64 little-endian header"))?
        .min(KCORE_HEADER_MAX);
    file.take(len.saturating_sub(EHDR_SIZE as u64))
        .read_to_end(&mut header)?;
    Ok(header)
}

/// The mappings in `/proc/kcore`'s headers; `None` if [`kcore_headers`]
/// cannot read them or they are odd.
fn kcore_layout(root: &Sysroot) -> Option<KcoreLayout> {
    elfcore::parse_kcore(&kcore_headers(root).ok()?).ok()
}

/// `sys/devices/system/cpu/cpuN/<file>`.
pub(crate) fn cpu_file(cpu: u32, file: &str) -> String {
    format!("sys/devices/system/cpu/cpu{cpu}/{file}")
}

fn bad_state(root: &Sysroot, rel: &str, e: &elfcore::Error) -> Failure {
    Failure::system(
        root.path(rel).display().to_string(),
        e,
        crate::hints::malformed_state(root.is_live()),
    )
}

/// CPU `cpu`'s `crash_notes` buffer; `None` if the files are absent.
fn cpu_note(root: &Sysroot, cpu: u32) -> Result<Option<Note>, Failure> {
    let addr_rel = cpu_file(cpu, "crash_notes");
    let size_rel = cpu_file(cpu, "crash_notes_size");
    let (Ok(addr), Ok(size)) = (root.read_text(&addr_rel), root.read_text(&size_rel)) else {
        return Ok(None);
    };
    Ok(Some(Note {
        addr: elfcore::parse_crash_notes(&addr).map_err(|e| bad_state(root, &addr_rel, &e))?,
        size: elfcore::parse_crash_notes_size(&size).map_err(|e| bad_state(root, &size_rel, &e))?,
    }))
}

/// The CPUs to look at: `cpu/possible`, or cpu0, cpu1, ... up to the first
/// without `crash_notes` when that file is absent.
fn cpus(root: &Sysroot) -> Result<Vec<(u32, Note)>, Failure> {
    let mut out = Vec::new();
    match root.read_text(CPU_POSSIBLE) {
        Ok(text) => {
            let list =
                elfcore::parse_cpu_list(&text).map_err(|e| bad_state(root, CPU_POSSIBLE, &e))?;
            for cpu in list {
                if let Some(note) = cpu_note(root, cpu)? {
                    out.push((cpu, note));
                }
            }
        }
        Err(_) => {
            for cpu in (0u32..).take(MAX_CPUS) {
                match cpu_note(root, cpu)? {
                    Some(note) => out.push((cpu, note)),
                    None => break,
                }
            }
        }
    }
    Ok(out)
}

/// Builds the ELF core header for a crash load from the state under `root`;
/// pushes a note for everything it had to leave out.
pub fn elf_core_header(
    root: &Sysroot,
    map: &MemoryMap,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>, Failure> {
    let cpus = cpus(root)?;
    if cpus.is_empty() {
        notes.push("no cpuN/crash_notes: the ELF core header has no CPU register notes".to_owned());
    }
    let vmcoreinfo = match root.read_text(VMCOREINFO) {
        Ok(text) => {
            Some(elfcore::parse_vmcoreinfo(&text).map_err(|e| bad_state(root, VMCOREINFO, &e))?)
        }
        Err(_) => {
            notes.push(format!(
                "no /{VMCOREINFO}: the ELF core header has no VMCOREINFO note"
            ));
            None
        }
    };
    let kcore = kcore_layout(root);
    let phys = elfcore::kernel_image_range(map);
    let vaddr = phys.and_then(|p| {
        kcore.and_then(|k| k.image_virt(p.start)).or_else(|| {
            let text = root.read_text(KALLSYMS).ok()?;
            elfcore::kallsyms_address(&text, KERNEL_CODE_SYMBOL)
        })
    });
    let kernel_text = match (phys, vaddr) {
        (Some(phys), Some(vaddr)) => Some(KernelText { phys, vaddr }),
        (phys, _) => {
            notes.push(format!(
                "ELF core header: no kernel image PT_LOAD, {} unknown; the RAM PT_LOADs cover it",
                if phys.is_none() {
                    "\"Kernel code\"/\"Kernel data\" in /proc/iomem"
                } else {
                    "its virtual address (from /proc/kcore or /proc/kallsyms _stext)"
                }
            ));
            None
        }
    };
    let linear_map = kcore.and_then(|k| k.linear);
    if linear_map.is_none() {
        notes.push(
            "ELF core header: RAM PT_LOADs have p_vaddr = 0 (the linear map is only in \
             /proc/kcore, unreadable here; dump tools take it from VMCOREINFO)"
                .to_owned(),
        );
    }
    let inputs = ElfCoreInputs {
        cpu_notes: cpus.iter().map(|&(_, n)| n).collect(),
        vmcoreinfo,
        kernel_text,
        ram: map.system_ram(),
        crash: map.crash_regions(),
        linear_map,
    };
    elfcore::build(&inputs).map_err(|e| {
        Failure::system(
            "ELF core header",
            chain(&e),
            "check /proc/iomem and the cpuN/crash_notes files",
        )
    })
}

#[cfg(test)]
mod tests {
    use test_assets::synthetic::{fixture_sysroot, scratch};

    use super::*;

    #[test]
    fn header_from_the_captured_crashkernel_guest() {
        let dir = fixture_sysroot("virt-1g-crashkernel");
        let root = Sysroot::at(&dir);
        let map = kexec_core::iomem::parse(&root.read_text("proc/iomem").unwrap()).unwrap();
        let mut notes = Vec::new();
        let header = elf_core_header(&root, &map, &mut notes).unwrap();
        // 2 CPU notes, VMCOREINFO, RAM below and above the crash region; no
        // kallsyms in the capture, so no kernel image PT_LOAD.
        assert_eq!(
            header.len(),
            elfcore::EHDR_SIZE + 5 * elfcore::PHDR_SIZE,
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("_stext")), "{notes:?}");
        assert!(
            !notes.iter().any(|n| n.contains("crash_notes")),
            "{notes:?}"
        );
    }

    #[test]
    fn kcore_gives_the_linear_map_and_the_kernel_image() {
        let dir = scratch("crashdump-kcore");
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        let iomem = "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
                     41eb0000-4220ffff : Kernel data\n  6ac00000-7abfffff : Crash kernel\n";
        let map = kexec_core::iomem::parse(iomem).unwrap();
        // A stand-in /proc/kcore: its headers, then (much) more.
        let ram = kexec_core::iomem::MemoryRange::new(0x4000_0000, 0x8000_0000);
        let mut kcore = elfcore::build(&ElfCoreInputs {
            kernel_text: Some(KernelText {
                phys: kexec_core::iomem::MemoryRange::new(0x4020_0000, 0x4221_0000),
                vaddr: 0xffff_8000_0800_0000,
            }),
            ram: vec![ram],
            linear_map: Some(elfcore::LinearMap {
                page_offset: 0xffff_0000_0000_0000,
                phys_offset: 0x4000_0000,
            }),
            ..Default::default()
        })
        .unwrap();
        kcore.resize(kcore.len() + 4096, 0xaa);
        std::fs::write(dir.join(KCORE), &kcore).unwrap();
        let root = Sysroot::at(&dir);
        let mut notes = Vec::new();
        let header = elf_core_header(&root, &map, &mut notes).unwrap();
        let layout = elfcore::parse_kcore(&header).unwrap();
        // Kernel code starts 64 KiB into the image.
        assert_eq!(layout.image_virt(0x4021_0000), Some(0xffff_8000_0801_0000));
        assert_eq!(
            layout.linear.map(|l| l.virt(0x7ac0_0000)),
            Some(0xffff_0000_3ac0_0000)
        );
        assert!(!notes.iter().any(|n| n.contains("PT_LOAD")), "{notes:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_files_are_notes_and_bad_ones_are_errors() {
        let dir = scratch("crashdump-missing");
        std::fs::create_dir_all(dir.join("sys/devices/system/cpu/cpu0")).unwrap();
        let root = Sysroot::at(&dir);
        let map = kexec_core::iomem::parse(
            "40000000-7fffffff : System RAM\n  70000000-77ffffff : Crash kernel\n",
        )
        .unwrap();
        let mut notes = Vec::new();
        let header = elf_core_header(&root, &map, &mut notes).unwrap();
        assert_eq!(header.len(), elfcore::EHDR_SIZE + 2 * elfcore::PHDR_SIZE);
        assert!(notes.iter().any(|n| n.contains("crash_notes")));
        assert!(notes.iter().any(|n| n.contains("VMCOREINFO")));

        std::fs::write(dir.join(cpu_file(0, "crash_notes")), "zz\n").unwrap();
        std::fs::write(dir.join(cpu_file(0, "crash_notes_size")), "424\n").unwrap();
        let err = elf_core_header(&root, &map, &mut notes).unwrap_err();
        assert_eq!(err.code, crate::failure::EXIT_SYSTEM);
        assert!(err.subject.ends_with("cpu0/crash_notes"), "{}", err.subject);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Fuzz target: the kdump sysfs-text parsers and the ELF core header builder
//! never panic. The input is `TEXT \0 BYTES`: TEXT goes to every text parser
//! (`crash_notes`, `crash_notes_size`, `vmcoreinfo`, CPU lists, kallsyms,
//! VMCOREINFO note text), BYTES go to the `/proc/kcore` header reader and
//! drive the builder's inputs. A header that is
//! built has one program header per input and its RAM `PT_LOAD`s stay inside
//! System RAM and outside every crash region.
#![no_main]

use kexec_core::elfcore::{
    build, kallsyms_address, kcore_header_len, parse_cpu_list, parse_crash_notes,
    parse_crash_notes_size, parse_kcore, parse_vmcoreinfo, ElfCoreInputs, KernelText, LinearMap,
    Note, EHDR_SIZE, MAX_CPUS, PHDR_SIZE, PT_LOAD,
};
use kexec_core::iomem::MemoryRange;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn note(u: &mut Unstructured<'_>) -> Result<Note> {
    Ok(Note {
        addr: u.arbitrary()?,
        size: u.int_in_range(0..=0x2000)?,
    })
}

fn range(u: &mut Unstructured<'_>) -> Result<MemoryRange> {
    let start: u64 = u.arbitrary()?;
    let len: u64 = u.int_in_range(0..=1 << 40)?;
    Ok(MemoryRange::with_size(start, len))
}

fn inputs(u: &mut Unstructured<'_>) -> Result<ElfCoreInputs> {
    let mut cpu_notes = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        cpu_notes.push(note(u)?);
    }
    let vmcoreinfo = if u.arbitrary()? { Some(note(u)?) } else { None };
    let kernel_text = if u.arbitrary()? {
        Some(KernelText {
            phys: range(u)?,
            vaddr: u.arbitrary()?,
        })
    } else {
        None
    };
    let mut ram = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        ram.push(range(u)?);
    }
    let mut crash = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        crash.push(range(u)?);
    }
    let linear_map = if u.arbitrary()? {
        Some(LinearMap {
            page_offset: u.arbitrary()?,
            phys_offset: u.arbitrary()?,
        })
    } else {
        None
    };
    Ok(ElfCoreInputs {
        cpu_notes,
        vmcoreinfo,
        kernel_text,
        ram,
        crash,
        linear_map,
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..split]);
    let _ = parse_crash_notes(&text);
    let _ = parse_crash_notes_size(&text);
    let _ = parse_vmcoreinfo(&text);
    if let Ok(cpus) = parse_cpu_list(&text) {
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
        assert!(cpus.iter().all(|&c| (c as usize) < MAX_CPUS));
    }
    let _ = kallsyms_address(&text, "_stext");
    let _ = LinearMap::from_vmcoreinfo(&text);

    let bytes = data.get(split + 1..).unwrap_or(&[]);
    let _ = kcore_header_len(bytes);
    if let Ok(layout) = parse_kcore(bytes) {
        if let Some((range, vaddr)) = layout.image {
            assert_eq!(
                layout.image_virt(range.start),
                Some(vaddr).filter(|_| !range.is_empty())
            );
            let _ = layout.image_virt(range.end.wrapping_sub(1));
        }
        if let Some(linear) = layout.linear {
            let _ = linear.virt(u64::MAX);
        }
    }

    let mut u = Unstructured::new(bytes);
    let Ok(inputs) = inputs(&mut u) else {
        return;
    };
    let Ok(out) = build(&inputs) else {
        return;
    };
    let count = inputs.program_header_count();
    assert_eq!(out.len(), EHDR_SIZE + count * PHDR_SIZE);
    assert_eq!(usize::from(u16::from_le_bytes([out[56], out[57]])), count);
    // The RAM PT_LOADs are the last ones.
    let ram = inputs.dumped_ram();
    for (i, phdr) in out[EHDR_SIZE..]
        .chunks_exact(PHDR_SIZE)
        .skip(count - ram.len())
        .enumerate()
    {
        assert_eq!(u32::from_le_bytes(phdr[..4].try_into().unwrap()), PT_LOAD);
        let (offset, paddr, size) = (u64_at(phdr, 8), u64_at(phdr, 24), u64_at(phdr, 32));
        assert_eq!(offset, paddr);
        let r = MemoryRange::with_size(paddr, size);
        assert_eq!(r, ram[i]);
        assert!(!r.is_empty());
        assert!(inputs.ram.iter().any(|m| m.contains_range(&r)));
        assert!(inputs.crash.iter().all(|c| !c.overlaps(&r)));
    }
});

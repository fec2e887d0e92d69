//! Fuzz target: ELF vmlinux flattening never panics and respects its limit;
//! an accepted kernel starts at its entry and its flat image has an arm64
//! `Image` header.
//!
//! Two kinds of input. One that starts with the ELF magic is flattened as it
//! is (seeds: the ELF-wrapped Debian kernel heads, the synthetic containers).
//! Any other input drives [`Unstructured`] to build an ELF64 file the parser
//! gets past its header with: a valid identification, mostly `EM_AARCH64`
//! and `ET_EXEC`/`ET_DYN`, program headers (mostly `PT_LOAD`, in or out of
//! order, touching, overlapping or with gaps; file sizes within or beyond the
//! memory size and the file) over a body whose first segment usually starts
//! with an arm64 `Image` header whose `image_size` is near the span; one
//! input in eight then has one byte overwritten. Random bytes almost never
//! name a program header table inside the file; this way every check of
//! `flatten` after the header runs.
#![no_main]

use kexec_core::elf::flatten;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap (an input may make the
/// code fill this much: at 16 MiB the slowest targets ran ~5 k inputs/s),
/// larger than any seed's output (the kernel-head seeds are 16 KiB).
const LIMIT: usize = 1 << 20;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const EM_AARCH64: u16 = 183;
const PT_LOAD: u32 = 1;
/// Where Debian's arm64 vmlinux links its text (KIMAGE_VADDR with 48-bit VAs).
const KIMAGE_VADDR: u64 = 0xffff_8000_0800_0000;

struct Phdr {
    p_type: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

/// A small size: mostly page multiples, sometimes odd, sometimes zero.
fn size(u: &mut Unstructured<'_>, body: u64) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => 0,
        1 => u64::from(u.int_in_range(1u16..=4096)?),
        2 => u64::from(u.int_in_range(1u8..=16)?) * 4096,
        3 => body,
        4 => body + u64::from(u.int_in_range(1u16..=8192)?),
        _ => u.arbitrary()?,
    })
}

/// An arm64 Image header (Documentation/arm64/booting.rst) for the start of
/// the first segment: `ARM\x64` at 56, `image_size` at 16.
fn image_header(u: &mut Unstructured<'_>, span: u64) -> Result<Vec<u8>> {
    let mut h = vec![0u8; 64];
    let image_size = match u.int_in_range(0u8..=3)? {
        0 => span,
        1 => span.saturating_sub(4096),
        2 => 0,
        _ => u.arbitrary()?,
    };
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    let flags: u64 = u.int_in_range(0..=15)?;
    h[24..32].copy_from_slice(&flags.to_le_bytes());
    h[56..60].copy_from_slice(b"ARM\x64");
    Ok(h)
}

fn generated(data: &[u8]) -> Result<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let nphdr = u.int_in_range(0usize..=6)?;
    let body_len = u.int_in_range(0usize..=16 * 1024)?;
    let body_start = (EHDR_SIZE + nphdr * PHDR_SIZE) as u64;
    let body = body_len as u64;
    let base = if u.ratio(3, 4)? {
        KIMAGE_VADDR
    } else {
        u.arbitrary()?
    };
    let mut phdrs = Vec::with_capacity(nphdr);
    let mut next_vaddr = base;
    let mut next_offset = body_start;
    for _ in 0..nphdr {
        let p_type = if u.ratio(7, 8)? { PT_LOAD } else { u.arbitrary()? };
        let filesz = size(&mut u, body)?;
        let memsz = if u.ratio(7, 8)? {
            filesz.saturating_add(u64::from(u.int_in_range(0u16..=2)?) * 4096)
        } else {
            size(&mut u, body)?
        };
        let vaddr = match u.int_in_range(0u8..=5)? {
            0 => next_vaddr.wrapping_sub(4096),
            1 => u.arbitrary()?,
            _ => next_vaddr,
        };
        let offset = if u.ratio(7, 8)? {
            next_offset
        } else {
            u.arbitrary()?
        };
        next_vaddr = vaddr
            .wrapping_add(memsz)
            .wrapping_add(u64::from(u.int_in_range(0u8..=2)?) * 4096);
        next_offset = offset.wrapping_add(filesz);
        phdrs.push(Phdr {
            p_type,
            offset,
            vaddr,
            filesz,
            memsz,
        });
    }
    if u.ratio(1, 4)? && phdrs.len() > 1 {
        phdrs.reverse();
    }
    let span = next_vaddr.wrapping_sub(base);

    let mut out = Vec::with_capacity(body_start as usize + body_len);
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, little endian, version 1, System V
    out.extend_from_slice(&[0; 8]);
    let e_type: u16 = match u.int_in_range(0u8..=7)? {
        0 => 1, // ET_REL
        1 => u.arbitrary()?,
        2 | 3 => 3, // ET_DYN
        _ => 2,     // ET_EXEC
    };
    let machine = if u.ratio(15, 16)? {
        EM_AARCH64
    } else {
        u.arbitrary()?
    };
    let entry = if u.ratio(7, 8)? {
        phdrs.iter().map(|p| p.vaddr).min().unwrap_or(base)
    } else {
        u.arbitrary()?
    };
    out.extend_from_slice(&e_type.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(nphdr as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    for p in &phdrs {
        out.extend_from_slice(&p.p_type.to_le_bytes());
        out.extend_from_slice(&7u32.to_le_bytes()); // PF_R | PF_W | PF_X
        out.extend_from_slice(&p.offset.to_le_bytes());
        out.extend_from_slice(&p.vaddr.to_le_bytes());
        out.extend_from_slice(&p.vaddr.to_le_bytes()); // p_paddr
        out.extend_from_slice(&p.filesz.to_le_bytes());
        out.extend_from_slice(&p.memsz.to_le_bytes());
        out.extend_from_slice(&65536u64.to_le_bytes()); // p_align
    }
    if u.ratio(7, 8)? {
        out.extend(image_header(&mut u, span)?);
    }
    let rest = body_len.saturating_sub(out.len() - body_start as usize);
    let filler = u.bytes(rest.min(u.len()))?;
    out.extend_from_slice(filler);
    out.resize(body_start as usize + body_len.max(out.len() - body_start as usize), 0);
    if u.ratio(1, 8)? && !out.is_empty() {
        let at = u.choose_index(out.len())?;
        out[at] = u.arbitrary()?;
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let owned;
    let bytes = if data.starts_with(b"\x7fELF") {
        data
    } else {
        match generated(data) {
            Ok(built) => {
                owned = built;
                &owned
            }
            Err(_) => return,
        }
    };
    if let Ok(kernel) = flatten(bytes, LIMIT) {
        assert!(kernel.image.len() <= LIMIT);
        assert_eq!(kernel.entry, kernel.base_vaddr, "entered at the start");
        assert_eq!(&kernel.image[56..60], b"ARM\x64", "an Image header");
    }
});

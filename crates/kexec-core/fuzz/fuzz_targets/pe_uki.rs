//! Fuzz target: UKI (PE) parsing never panics; sections lie inside the input;
//! the header-only layout agrees with the full parse; reading the
//! certificate table (`pe::certificate_table`) never panics.
//!
//! Two kinds of input. One that starts with `MZ` is parsed as it is (seeds:
//! the UKI and zboot wrappers of the Debian kernel heads, the synthetic
//! containers). Any other input drives [`Unstructured`] to build a PE32+ file
//! that gets past the DOS, NT and optional headers: mostly
//! `IMAGE_FILE_MACHINE_ARM64`, a section table of UKI names (`.linux`,
//! `.initrd`, `.cmdline`, `.dtb`, `.osrel`, `.profile`, …, repeated or
//! missing) whose raw data lies inside, across the end of, or outside the
//! file, a certificate table directory; one input in eight then has one
//! byte overwritten. Random bytes never get past `e_lfanew` and the
//! signatures; this way the section lookups run.
#![no_main]

use kexec_core::pe::{certificate_table, Uki, UkiLayout};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// `IMAGE_FILE_MACHINE_ARM64` (PE format, "Machine Types").
const MACHINE_ARM64: u16 = 0xaa64;
/// Where the NT headers start (`e_lfanew`).
const NT_OFFSET: usize = 0x40;
/// COFF file header size, after the 4-byte `PE\0\0` signature.
const COFF_SIZE: usize = 20;
/// PE32+ optional header with 16 data directories.
const OPTIONAL_SIZE: usize = 112 + 16 * 8;
const SECTION_HEADER_SIZE: usize = 40;
/// Index of the certificate table among the data directories.
const DIRECTORY_SECURITY: usize = 4;

const NAMES: &[&[u8]] = &[
    b".linux", b".initrd", b".cmdline", b".dtb", b".osrel", b".uname", b".profile", b".text",
    b".sbat", b".linux\0x",
];

struct Section {
    name: [u8; 8],
    virtual_size: u32,
    virtual_address: u32,
    raw_size: u32,
    raw_offset: u32,
}

fn put16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn generated(data: &[u8]) -> Result<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let nsections = u.int_in_range(0usize..=8)?;
    let headers_end = NT_OFFSET + 4 + COFF_SIZE + OPTIONAL_SIZE + nsections * SECTION_HEADER_SIZE;
    let headers_size = headers_end.next_multiple_of(512);
    let body_len = u.int_in_range(0usize..=8192)?;
    let file_len = headers_size + body_len;

    let mut sections = Vec::with_capacity(nsections);
    let mut next_raw = headers_size as u32;
    let mut next_va = 0x1000u32;
    for _ in 0..nsections {
        let mut name = [0u8; 8];
        let chosen = NAMES[u.choose_index(NAMES.len())?];
        let n = chosen.len().min(8);
        name[..n].copy_from_slice(&chosen[..n]);
        let raw_size = match u.int_in_range(0u8..=4)? {
            0 => 0,
            1 => u.arbitrary()?,
            _ => u32::from(u.int_in_range(1u16..=2048)?),
        };
        let virtual_size = match u.int_in_range(0u8..=3)? {
            0 => raw_size.saturating_add(u32::from(u.int_in_range(0u8..=255)?)),
            1 => u.arbitrary()?,
            _ => raw_size,
        };
        let raw_offset = match u.int_in_range(0u8..=7)? {
            0 => u.arbitrary()?,
            1 => file_len as u32,
            _ => next_raw,
        };
        next_raw = raw_offset.wrapping_add(raw_size);
        sections.push(Section {
            name,
            virtual_size,
            virtual_address: next_va,
            raw_size,
            raw_offset,
        });
        let span = virtual_size.checked_next_multiple_of(0x1000).unwrap_or(0x1000);
        next_va = next_va.wrapping_add(span.max(0x1000));
    }

    let mut out = vec![0u8; file_len];
    out[0..2].copy_from_slice(b"MZ");
    put32(&mut out, 0x3c, NT_OFFSET as u32);
    out[NT_OFFSET..NT_OFFSET + 4].copy_from_slice(b"PE\0\0");
    let coff = NT_OFFSET + 4;
    let machine = if u.ratio(15, 16)? {
        MACHINE_ARM64
    } else {
        u.arbitrary()?
    };
    put16(&mut out, coff, machine);
    put16(&mut out, coff + 2, nsections as u16);
    put16(&mut out, coff + 16, OPTIONAL_SIZE as u16);
    put16(&mut out, coff + 18, 0x0022); // executable, large address aware
    let opt = coff + COFF_SIZE;
    put16(&mut out, opt, 0x20b); // PE32+
    put32(&mut out, opt + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut out, opt + 32, 0x1000); // SectionAlignment
    put32(&mut out, opt + 36, 0x200); // FileAlignment
    put32(&mut out, opt + 56, next_va); // SizeOfImage
    put32(&mut out, opt + 60, headers_size as u32); // SizeOfHeaders
    put16(&mut out, opt + 68, 10); // Subsystem: EFI application
    put32(&mut out, opt + 108, 16); // NumberOfRvaAndSizes
    if u.ratio(1, 2)? {
        let dir = opt + 112 + DIRECTORY_SECURITY * 8;
        let offset = if u.ratio(3, 4)? {
            file_len.saturating_sub(64) as u32
        } else {
            u.arbitrary()?
        };
        put32(&mut out, dir, offset);
        put32(&mut out, dir + 4, u.arbitrary()?);
    }
    let table = opt + OPTIONAL_SIZE;
    for (i, s) in sections.iter().enumerate() {
        let at = table + i * SECTION_HEADER_SIZE;
        out[at..at + 8].copy_from_slice(&s.name);
        put32(&mut out, at + 8, s.virtual_size);
        put32(&mut out, at + 12, s.virtual_address);
        put32(&mut out, at + 16, s.raw_size);
        put32(&mut out, at + 20, s.raw_offset);
        put32(&mut out, at + 36, 0x6000_0020); // code, execute, read
    }
    let body = u.bytes(body_len.min(u.len()))?;
    out[headers_size..headers_size + body.len()].copy_from_slice(body);
    if u.ratio(1, 8)? {
        let at = u.choose_index(out.len())?;
        out[at] = u.arbitrary()?;
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let owned;
    let bytes = if data.starts_with(b"MZ") {
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
    if let Some((_, size)) = certificate_table(bytes) {
        assert_ne!(size, 0);
    }
    let uki = Uki::parse(bytes);
    if let Ok(uki) = &uki {
        assert!(uki.linux.len() <= bytes.len());
    }
    if let Ok(layout) = UkiLayout::parse(bytes) {
        // What the headers promise lies inside the file whenever the full
        // parse could read every section it looked for (an empty section
        // may name any offset: nothing is read there).
        if uki.is_ok() {
            if let Some(cmdline) = layout.cmdline.filter(|c| c.size > 0) {
                assert!(cmdline.offset + cmdline.size <= bytes.len() as u64);
            }
        }
    } else {
        assert!(
            uki.is_err(),
            "the full parse accepted what the layout refused"
        );
    }
});

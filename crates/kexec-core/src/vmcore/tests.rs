// Test sizes are small.
#![allow(clippy::cast_possible_truncation)]
use super::printk::{Record, Ring, DESC_COMMITTED, DESC_ID_MASK};
use super::summary::{format_utc, summarize};
use super::synth::{Synth, SynthRecord, IMAGE_VADDR, PAGE_OFFSET, PHYS_BASE};
use super::*;
use crate::elfcore;

fn dmesg(bytes: &[u8]) -> Result<Vec<Record>, Error> {
    let v = Vmcore::parse(bytes)?;
    let ring = Ring::locate(&v, bytes)?;
    ring.records(&v, bytes).collect()
}

fn lines(bytes: &[u8]) -> String {
    dmesg(bytes).unwrap().iter().map(Record::to_line).collect()
}

#[test]
fn reads_the_synthetic_log_in_the_kernels_format() {
    let core = Synth::default().build();
    assert_eq!(
        lines(&core),
        "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]\n\
         [    1.234567] line one\n               line two\n\
         [   12.000001] Kernel panic - not syncing: sysrq triggered crash\n"
    );
}

#[test]
fn headers_notes_and_vmcoreinfo() {
    let core = Synth::default().build();
    let v = Vmcore::parse(core.as_slice()).unwrap();
    assert_eq!(v.phnum, 2);
    assert_eq!(v.loads.len(), 1);
    assert_eq!(v.loads[0].paddr, PHYS_BASE);
    assert_eq!(v.prstatus.len(), 2);
    assert_eq!(v.prstatus[1].pid, 321);
    assert_eq!(v.prstatus[1].pc(), IMAGE_VADDR + 0x200);
    let info = v.info().unwrap();
    assert_eq!(info.release(), Some("6.1.0-synth-arm64"));
    assert_eq!(info.page_size(), Some(4096));
    assert_eq!(info.crash_time(), Some(1_700_000_000));
    let map = info.address_map();
    // Kernel image and linear map both translate.
    assert_eq!(map.to_phys(IMAGE_VADDR + 5, &[]), Some(PHYS_BASE + 5));
    assert_eq!(map.to_phys(PAGE_OFFSET + 7, &[]), Some(PHYS_BASE + 7));
    assert_eq!(map.to_phys(0x1000, &[]), None);
    // The linear map ends where the kernel image's region starts
    // (_PAGE_END(48) = 0xffff_8000_0000_0000): that address is the image's.
    let image_base = IMAGE_VADDR - PHYS_BASE;
    assert_eq!(
        map.to_phys(0xffff_8000_0000_0000, &[]),
        Some(0xffff_8000_0000_0000u64.wrapping_sub(image_base))
    );
    assert_eq!(
        map.to_phys(0xffff_7fff_ffff_ffff, &[]),
        Some(0x7fff_ffff_ffff - (PAGE_OFFSET - 0xffff_0000_0000_0000) + PHYS_BASE)
    );
}

#[test]
fn summary_names_the_crashing_cpu_by_the_panic_records_pid() {
    let core = Synth::default().build();
    let v = Vmcore::parse(core.as_slice()).unwrap();
    let s = summarize(&v, core.as_slice());
    assert_eq!(s.log_error, None);
    assert_eq!(s.log_records, 3);
    let p = s.panic.unwrap();
    assert_eq!(p.message, "sysrq triggered crash");
    assert_eq!((p.pid, p.cpu, p.note), (Some(321), None, Some(1)));
    assert_eq!(s.release.as_deref(), Some("6.1.0-synth-arm64"));
    assert!(s
        .highlights
        .iter()
        .any(|(k, v)| k == "NUMBER(VA_BITS)" && v == "48"));

    // Two CPUs running the same PID: ambiguous, no note named.
    let synth = Synth {
        cpus: vec![(321, 0), (321, 0)],
        ..Synth::default()
    };
    let core = synth.build();
    let v = Vmcore::parse(core.as_slice()).unwrap();
    let p = summarize(&v, core.as_slice()).panic.unwrap();
    assert_eq!((p.pid, p.note), (Some(321), None));

    // A panic outside task context names the CPU.
    let mut synth = Synth::default();
    synth.records[2].caller_id = 0x8000_0001;
    let core = synth.build();
    let v = Vmcore::parse(core.as_slice()).unwrap();
    let p = summarize(&v, core.as_slice()).panic.unwrap();
    assert_eq!((p.pid, p.cpu, p.note), (None, Some(1), None));
}

#[test]
fn without_vmcoreinfo_the_log_is_a_named_error_and_info_still_works() {
    let synth = Synth {
        no_vmcoreinfo: true,
        ..Synth::default()
    };
    let core = synth.build();
    assert_eq!(dmesg(&core), Err(Error::NoVmcoreinfo));
    let v = Vmcore::parse(core.as_slice()).unwrap();
    let s = summarize(&v, core.as_slice());
    assert!(s.log_error.unwrap().contains("no VMCOREINFO"));
    assert_eq!(s.cpus.len(), 2);
}

#[test]
fn the_ring_wraps_and_overwrites_old_records() {
    let records: Vec<SynthRecord> = (0..200)
        .map(|i| {
            SynthRecord::new(
                i * 1000,
                1,
                &format!("message number {i} {}", "x".repeat(i as usize % 37)),
            )
        })
        .collect();
    let synth = Synth {
        records,
        count_bits: 5,
        size_bits: 10,
        first_id: DESC_ID_MASK - 40,
        ..Synth::default()
    };
    let got = dmesg(&synth.build()).unwrap();
    // Only the newest survive, in order, and the newest is last.
    assert!(got.len() > 5 && got.len() <= 32, "{}", got.len());
    let last = got.last().unwrap();
    assert!(last.text.starts_with(b"message number 199 "));
    for w in got.windows(2) {
        assert_eq!(w[0].seq + 1, w[1].seq);
    }
    for r in &got {
        let i = r.seq;
        let want = format!("message number {i} {}", "x".repeat(i as usize % 37));
        assert_eq!(r.text, want.as_bytes());
    }
}

#[test]
fn dataless_reserved_and_committed_records() {
    let mut synth = Synth::default();
    synth.records[0].dataless = true;
    synth.records[1].state = 0; // desc_reserved: still being written
    synth.records[2].state = DESC_COMMITTED;
    let got = dmesg(&synth.build()).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].text.starts_with(b"Kernel panic"));
}

#[test]
fn unprintable_bytes_are_escaped_like_makedumpfile() {
    let r = Record {
        seq: 0,
        ts_nsec: 123_456_789_012,
        caller_id: 0,
        text: b"a\x01b\xffc\td".to_vec(),
    };
    assert_eq!(r.to_line(), "[  123.456789] a\\x01b\\xffc\td\n");
}

#[test]
fn blocks_follow_get_data() {
    let ring = Ring::for_tests(8);
    // Regular: same wrap, begin < next.
    assert_eq!(ring.block(0x100 + 16, 0x100 + 48), Some((16 + 8, 24)));
    // Wrapping: begin one wrap behind next; data at index 0.
    assert_eq!(ring.block(0x1f0, 0x220), Some((8, 0x20 - 8)));
    // Data-less.
    assert_eq!(ring.block(3, 3), None);
    assert_eq!(ring.block(1, 1), None);
    // Just the ID: valid, no text.
    assert_eq!(ring.block(0x100, 0x108), Some((8, 0)));
    // Wrapping with no room for the ID.
    assert_eq!(ring.block(0xf8, 0x100), None);
    // Aligned begin, misaligned next.
    assert_eq!(ring.block(0x100, 0x11c), None);
    // Misaligned, too short, or two wraps apart.
    assert_eq!(ring.block(0x104, 0x120), None);
    assert_eq!(ring.block(0x100, 0x104), None);
    assert_eq!(ring.block(0x100, 0x100), None);
    assert_eq!(ring.block(0x100, 0x310), None);
}

#[test]
fn truncated_and_hostile_headers_are_named_errors() {
    let core = Synth::default().build();
    assert_eq!(Vmcore::parse(&core[..3]), Err(Error::NotElf));
    assert_eq!(Vmcore::parse(&b"MZ\0\0\0\0"[..]), Err(Error::NotElf));
    let e = Vmcore::parse(&core[..40]).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    // The PT_LOAD runs past a truncated file.
    let e = Vmcore::parse(&core[..core.len() - 1]).unwrap_err();
    assert!(e.to_string().contains("program header 1's segment"), "{e}");
    let mut bad = core.clone();
    bad[18] = 62; // EM_X86_64
    assert!(
        matches!(Vmcore::parse(bad.as_slice()), Err(Error::NotArm64Core(m)) if m.contains("e_machine 62"))
    );
    let mut bad = core.clone();
    bad[16] = 2; // ET_EXEC
    assert!(matches!(
        Vmcore::parse(bad.as_slice()),
        Err(Error::NotArm64Core(_))
    ));
    let mut bad = core.clone();
    bad[4] = 1;
    assert!(matches!(
        Vmcore::parse(bad.as_slice()),
        Err(Error::NotArm64Core(_))
    ));
    let mut bad = core.clone();
    bad[5] = 2;
    assert!(matches!(
        Vmcore::parse(bad.as_slice()),
        Err(Error::NotArm64Core(_))
    ));
    let mut bad = core.clone();
    bad[54] = 32;
    assert!(matches!(
        Vmcore::parse(bad.as_slice()),
        Err(Error::NotArm64Core(_))
    ));
    // A note whose descriptor runs past the segment.
    let mut bad = core.clone();
    let notes_at = 64 + 2 * 56;
    bad[notes_at + 4..notes_at + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        Vmcore::parse(bad.as_slice()),
        Err(Error::BadNote { offset: 0, .. })
    ));
    // A short NT_PRSTATUS.
    let mut bad = core;
    bad[notes_at + 4..notes_at + 8].copy_from_slice(&8u32.to_le_bytes());
    let e = Vmcore::parse(bad.as_slice()).unwrap_err();
    assert!(e.to_string().contains("NT_PRSTATUS of 8 bytes"), "{e}");
}

#[test]
fn hostile_rings_are_named_errors() {
    let synth = Synth::default();
    let text = synth.vmcoreinfo();
    for (from, to, want) in [
        (
            "SIZE(prb_desc)=24",
            "SIZE(prb_desc)=0",
            "SIZE(prb_desc)=0 is outside",
        ),
        (
            "OFFSET(printk_info.caller_id)=20",
            "OFFSET(printk_info.caller_id)=86",
            "caller_id at offset 86 does not fit SIZE(printk_info)=88",
        ),
        (
            "SYMBOL(prb)=ffff800008000000",
            "SYMBOL(prb)=1000",
            "is neither in the linear map",
        ),
        (
            "SYMBOL(prb)=ffff800008000000",
            "SYMBOL(prb)=ffff8000f8000000",
            "is in no PT_LOAD",
        ),
        (
            "OFFSET(prb_desc_ring.descs)=8\n",
            "",
            "VMCOREINFO has no OFFSET(prb_desc_ring.descs)",
        ),
        (
            "SIZE(printk_info)=88",
            "SIZE(printk_info)=8x",
            "SIZE(printk_info)=\"8x\" is not a valid number",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let core = with_vmcoreinfo(&synth, &text.replacen(from, to, 1));
        let e = dmesg(&core).unwrap_err().to_string();
        assert!(e.contains(want), "{from} -> {to}: {e}");
    }
}

/// `synth` with its VMCOREINFO note replaced by `text` (same length or shorter,
/// padded with NULs: the note's size stays).
fn with_vmcoreinfo(synth: &Synth, text: &str) -> Vec<u8> {
    let mut core = synth.build();
    let old = synth.vmcoreinfo();
    let at = core
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    assert!(text.len() <= old.len());
    let mut new = text.as_bytes().to_vec();
    new.resize(old.len(), 0);
    core[at..at + old.len()].copy_from_slice(&new);
    core
}

/// `synth` with the ring buffer structure's field at `offset` (into
/// `struct printk_ringbuffer`) set to `value`.
fn with_rb_field(synth: &Synth, offset: usize, value: &[u8]) -> Vec<u8> {
    let mut core = synth.build();
    let v = Vmcore::parse(core.as_slice()).unwrap();
    let at = v.loads[0].offset as usize + 0x100 + offset;
    core[at..at + value.len()].copy_from_slice(value);
    core
}

#[test]
fn impossible_ring_sizes_are_refused() {
    let s = Synth::default();
    for (offset, value, want) in [
        (0, 27u32.to_le_bytes().to_vec(), "count_bits 27 > 26"),
        // At the limit: refused only because the file is too small for it.
        (0, 26u32.to_le_bytes().to_vec(), "67108864 descriptors"),
        (0, 20u32.to_le_bytes().to_vec(), "cannot fit"),
        // 256 descriptors of 24 + 88 bytes: more than the file's ~9 KiB.
        (0, 8u32.to_le_bytes().to_vec(), "256 descriptors"),
        (48, 2u32.to_le_bytes().to_vec(), "size_bits 2 outside"),
        (48, 32u32.to_le_bytes().to_vec(), "size_bits 32 outside"),
        (48, 30u32.to_le_bytes().to_vec(), "cannot fit"),
        (32, (1u64 << 40).to_le_bytes().to_vec(), "spans more than"),
    ] {
        let e = dmesg(&with_rb_field(&s, offset, &value))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn pt_load_vaddr_serves_without_vmcoreinfo_numbers() {
    let synth = Synth::default();
    let text = synth
        .vmcoreinfo()
        .replace("NUMBER(VA_BITS)=48\n", "")
        .replace(
            &format!("NUMBER(kimage_voffset)=0x{:x}\n", IMAGE_VADDR - PHYS_BASE),
            "",
        );
    // SYMBOL(prb) is in the image, which the PT_LOAD does not map virtually.
    let core = with_vmcoreinfo(&synth, &text);
    let e = dmesg(&core).unwrap_err();
    assert!(matches!(e, Error::Unmapped { .. }), "{e}");
    let text = text.replace(
        &format!("SYMBOL(prb)={IMAGE_VADDR:x}"),
        &format!("SYMBOL(prb)={PAGE_OFFSET:x}"),
    );
    let core = with_vmcoreinfo(&synth, &text);
    // prb found through the PT_LOAD's linear p_vaddr; it points at the image.
    let e = dmesg(&core).unwrap_err();
    assert!(
        matches!(&e, Error::Unmapped { what, .. } if what.contains("struct printk_ringbuffer")),
        "{e}"
    );
}

#[test]
fn crash_time_is_printed_in_utc() {
    assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
    // Leap days, century and 400-year boundaries (checked with `date -u -d @N`).
    for (secs, want) in [
        (-2_203_891_200, "1900-03-01 00:00:00"),
        (-2_203_891_201, "1900-02-28 23:59:59"),
        (951_868_800, "2000-03-01 00:00:00"),
        (946_684_799, "1999-12-31 23:59:59"),
        (1_709_208_000, "2024-02-29 12:00:00"),
        (4_107_542_400, "2100-03-01 00:00:00"),
        (4_107_456_000, "2100-02-28 00:00:00"),
        (-11_670_912_000, "1600-03-01 00:00:00"),
        (-11_644_473_600, "1601-01-01 00:00:00"),
        (13_574_563_200, "2400-02-29 00:00:00"),
    ] {
        assert_eq!(format_utc(secs), format!("{want} UTC"), "{secs}");
    }
}

#[test]
fn reads_across_adjacent_loads_and_refuses_gaps() {
    let v = Vmcore {
        loads: vec![
            Load {
                offset: 0,
                vaddr: 0,
                paddr: 0x1000,
                filesz: 4,
                memsz: 4,
            },
            Load {
                offset: 8,
                vaddr: 0,
                paddr: 0x1004,
                filesz: 4,
                memsz: 4,
            },
        ],
        prstatus: vec![],
        vmcoreinfo: None,
        phnum: 2,
        other_notes: 0,
    };
    let src: &[u8] = b"abcdXXXXefgh";
    let mut buf = [0u8; 8];
    v.read_phys(src, 0x1000, &mut buf, &|| "x".into()).unwrap();
    assert_eq!(&buf, b"abcdefgh");
    // Starting inside the first PT_LOAD, ending inside the second.
    let mut buf = [0u8; 6];
    v.read_phys(src, 0x1002, &mut buf, &|| "x".into()).unwrap();
    assert_eq!(&buf, b"cdefgh");
    let mut buf = [0u8; 6];
    v.read_phys(src, 0x1000, &mut buf, &|| "x".into()).unwrap();
    assert_eq!(&buf, b"abcdef");
    let mut buf = [0u8; 9];
    let e = v
        .read_phys(src, 0x1000, &mut buf, &|| "x".into())
        .unwrap_err();
    assert_eq!(
        e,
        Error::NotInDump {
            what: "x".into(),
            phys: 0x1008
        }
    );
}

/// An arm64 core file with one `PT_NOTE` of `note_size` zero bytes (a zero
/// `n_namesz` ends the notes at once).
fn core_with_notes(note_size: usize) -> Vec<u8> {
    let mut out = Synth::default().build()[..EHDR_SIZE].to_vec();
    out[56..58].copy_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&elfcore::PT_NOTE.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let offset = (EHDR_SIZE + PHDR_SIZE) as u64;
    for v in [offset, 0, 0, note_size as u64, note_size as u64, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(out.len() + note_size, 0);
    out
}

#[test]
fn notes_are_bounded_at_exactly_max_notes_bytes() {
    let max = MAX_NOTES_BYTES as usize;
    let v = Vmcore::parse(core_with_notes(max).as_slice()).unwrap();
    assert_eq!(
        (v.prstatus.len(), v.vmcoreinfo, v.loads.len()),
        (0, None, 0)
    );
    assert_eq!(
        Vmcore::parse(core_with_notes(max + 1).as_slice()),
        Err(Error::NotesTooLarge(MAX_NOTES_BYTES + 1))
    );
}

#[test]
fn a_file_shorter_than_the_magic_is_not_elf() {
    for short in [&b""[..], b"\x7f", b"\x7fEL"] {
        assert_eq!(Vmcore::parse(short), Err(Error::NotElf));
    }
    // The magic alone is ELF, but truncated.
    assert!(matches!(
        Vmcore::parse(&b"\x7fELF"[..]),
        Err(Error::Truncated { .. })
    ));
}

/// `n_namesz`, `n_descsz`, `n_type`, the name (NUL-terminated, padded) and
/// the descriptor (padded).
fn raw_note(name: &[u8], n_type: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    super::synth::note(&mut out, name, n_type, desc);
    out
}

fn empty_vmcore() -> Vmcore {
    Vmcore {
        loads: vec![],
        prstatus: vec![],
        vmcoreinfo: None,
        phnum: 0,
        other_notes: 0,
    }
}

#[test]
fn notes_are_told_apart_by_name_and_type() {
    let mut prstatus = vec![0u8; notes::PRSTATUS_SIZE];
    let reg = |i: usize| notes::PRSTATUS_REGS + 8 * i;
    prstatus[reg(31)..reg(32)].copy_from_slice(&0x5555u64.to_le_bytes());
    prstatus[reg(33)..reg(34)].copy_from_slice(&0x3c5u64.to_le_bytes());
    let bytes = [
        raw_note(b"CORE", notes::NT_PRSTATUS, &prstatus),
        // NT_PRPSINFO (3) and a VMCOREINFO-named note of type 1: other notes.
        raw_note(b"CORE", 3, &prstatus),
        raw_note(b"VMCOREINFO", 1, b"OSRELEASE=x\n"),
        raw_note(b"LINUX", 0, b"OSRELEASE=y\n"),
        raw_note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n"),
    ]
    .concat();
    let mut v = empty_vmcore();
    notes::collect(&bytes, &mut v).unwrap();
    assert_eq!(v.prstatus.len(), 1);
    assert_eq!(
        (v.prstatus[0].sp(), v.prstatus[0].pstate()),
        (0x5555, 0x3c5)
    );
    assert_eq!(v.other_notes, 3);
    assert_eq!(v.vmcoreinfo.unwrap().release(), Some("6.1"));

    // elf_prstatus is 392 bytes on arm64: one byte less is refused.
    let short = raw_note(
        b"CORE",
        notes::NT_PRSTATUS,
        &prstatus[..notes::PRSTATUS_SIZE - 1],
    );
    let e = notes::collect(&short, &mut empty_vmcore()).unwrap_err();
    assert!(e.to_string().contains("NT_PRSTATUS of 391 bytes"), "{e}");
}

#[test]
fn vmcoreinfo_notes_are_bounded() {
    let max = notes::MAX_VMCOREINFO_BYTES;
    let mut v = empty_vmcore();
    notes::collect(&raw_note(b"VMCOREINFO", 0, &vec![b'a'; max]), &mut v).unwrap();
    assert!(v.vmcoreinfo.is_some());
    let e = notes::collect(
        &raw_note(b"VMCOREINFO", 0, &vec![b'a'; max + 1]),
        &mut empty_vmcore(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 65536"), "{e}");
    // Two are one too many.
    let two = [
        raw_note(b"VMCOREINFO", 0, b"A=1"),
        raw_note(b"VMCOREINFO", 0, b"A=2"),
    ]
    .concat();
    let e = notes::collect(&two, &mut empty_vmcore()).unwrap_err();
    assert!(e.to_string().contains("a second VMCOREINFO note"), "{e}");
}

#[test]
fn a_descriptor_whose_padding_runs_past_the_notes_is_refused() {
    let mut note = raw_note(b"VMCOREINFO", 0, b"A=12345");
    note.truncate(note.len() - 1);
    let e = notes::collect(&note, &mut empty_vmcore()).unwrap_err();
    assert!(
        e.to_string().contains("descriptor of 7 bytes runs past"),
        "{e}"
    );
}

#[test]
fn pt_load_vaddrs_translate_inside_their_range_only() {
    let loads = [
        Load {
            offset: 0,
            vaddr: 0,
            paddr: 0x9000,
            filesz: 0x10,
            memsz: 0x10,
        },
        Load {
            offset: 0x10,
            vaddr: 0xffff_0000_0000_1000,
            paddr: 0x4000,
            filesz: 0x10,
            memsz: 0x10,
        },
    ];
    let map = AddressMap::default();
    assert_eq!(map.to_phys(0xffff_0000_0000_100f, &loads), Some(0x400f));
    assert_eq!(map.to_phys(0xffff_0000_0000_1010, &loads), None);
    assert_eq!(map.to_phys(0xffff_0000_0000_0fff, &loads), None);
    // p_vaddr 0 means "unknown", not address 0.
    assert_eq!(map.to_phys(5, &loads), None);
}

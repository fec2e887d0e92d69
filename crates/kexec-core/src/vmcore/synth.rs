//! Small synthetic vmcores: an arm64 ELF core file with `NT_PRSTATUS`
//! notes, a VMCOREINFO note written in the kernel's formats with the
//! structure layout of Linux 6.1 on arm64, and one `PT_LOAD` holding a printk
//! ring buffer filled the way the kernel's writer fills it (`prb_reserve`,
//! `data_alloc`, `get_next_lpos`: blocks aligned to 8 bytes, a block that
//! does not fit the end of the ring wraps to index 0, old records are
//! overwritten and the tail advances). For tests, fuzz seeds and examples;
//! the real thing is tested in the QEMU kdump scenario.
// Every size here is small by construction (a ring of at most a few MiB).
#![allow(clippy::cast_possible_truncation)]

use std::collections::VecDeque;

use super::notes::{NT_PRSTATUS, PRSTATUS_PID, PRSTATUS_REGS, PRSTATUS_SIZE};
use super::printk::{DESC_COMMITTED, DESC_FINALIZED, DESC_FLAGS_SHIFT, DESC_ID_MASK};
use crate::elfcore::{EHDR_SIZE, EM_AARCH64, PHDR_SIZE, PT_LOAD, PT_NOTE};

/// Physical address of the synthetic memory.
pub const PHYS_BASE: u64 = 0x4000_0000;
/// `NUMBER(VA_BITS)`.
pub const VA_BITS: u32 = 48;
/// `PAGE_OFFSET` for 48-bit VAs.
pub const PAGE_OFFSET: u64 = 0xffff_0000_0000_0000;
/// The kernel image's virtual address of [`PHYS_BASE`].
pub const IMAGE_VADDR: u64 = 0xffff_8000_0800_0000;
/// `sizeof(struct prb_desc)` in 6.1.
pub const PRB_DESC_SIZE: u64 = 24;
/// `sizeof(struct printk_info)` in 6.1.
pub const PRINTK_INFO_SIZE: u64 = 88;
/// Offset of the descriptors in the memory.
const DESCS_AT: u64 = 0x200;
/// `desc_reusable`.
const DESC_REUSABLE: u64 = 3;
/// `NO_LPOS`: the positions of a data-less block.
const NO_LPOS: u64 = 3;

/// One record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthRecord {
    /// `ts_nsec`.
    pub ts_nsec: u64,
    /// `caller_id`.
    pub caller_id: u32,
    /// The text (no trailing newline).
    pub text: Vec<u8>,
    /// Written data-less (`NO_LPOS`), as an empty `printk` is.
    pub dataless: bool,
    /// Descriptor state (`DESC_FINALIZED` usually).
    pub state: u64,
}

impl SynthRecord {
    /// A finalized record.
    pub fn new(ts_nsec: u64, caller_id: u32, text: &str) -> Self {
        Self {
            ts_nsec,
            caller_id,
            text: text.as_bytes().to_vec(),
            dataless: false,
            state: DESC_FINALIZED,
        }
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synth {
    /// `OSRELEASE`.
    pub release: String,
    /// `CRASHTIME`, if any.
    pub crash_time: Option<i64>,
    /// One `NT_PRSTATUS` per entry: (pid, pc).
    pub cpus: Vec<(i32, u64)>,
    /// The log, oldest first.
    pub records: Vec<SynthRecord>,
    /// `1 << count_bits` descriptors.
    pub count_bits: u32,
    /// `1 << size_bits` text bytes.
    pub size_bits: u32,
    /// The first descriptor ID (to make IDs wrap through [`DESC_ID_MASK`]).
    pub first_id: u64,
    /// Write the `PT_LOAD`'s linear-map `p_vaddr` (else 0).
    pub load_vaddr: bool,
    /// Leave the VMCOREINFO note out.
    pub no_vmcoreinfo: bool,
}

impl Default for Synth {
    fn default() -> Self {
        Self {
            release: "6.1.0-synth-arm64".into(),
            crash_time: Some(1_700_000_000),
            cpus: vec![(0, IMAGE_VADDR + 0x100), (321, IMAGE_VADDR + 0x200)],
            records: vec![
                SynthRecord::new(
                    0,
                    0,
                    "Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
                ),
                SynthRecord::new(1_234_567_890, 1, "line one\nline two"),
                SynthRecord::new(
                    12_000_001_000,
                    321,
                    "Kernel panic - not syncing: sysrq triggered crash",
                ),
            ],
            count_bits: 5,
            size_bits: 12,
            first_id: 0,
            load_vaddr: true,
            no_vmcoreinfo: false,
        }
    }
}

fn put(mem: &mut [u8], at: u64, bytes: &[u8]) {
    let at = at as usize;
    mem[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Appends an ELF note: `n_namesz`, `n_descsz`, `n_type`, the name
/// (NUL-terminated, padded to 4) and the descriptor (padded to 4).
pub(crate) fn note(out: &mut Vec<u8>, name: &[u8], n_type: u32, desc: &[u8]) {
    let namesz = name.len() + 1;
    out.extend_from_slice(&(namesz as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

impl Synth {
    /// Size of the text ring.
    fn data_size(&self) -> u64 {
        1 << self.size_bits
    }

    fn count(&self) -> u64 {
        1 << self.count_bits
    }

    /// Offsets in the memory: (infos, data, total).
    fn layout(&self) -> (u64, u64, u64) {
        let infos = DESCS_AT + self.count() * PRB_DESC_SIZE;
        let data = (infos + self.count() * PRINTK_INFO_SIZE).next_multiple_of(8);
        (infos, data, (data + self.data_size()).next_multiple_of(64))
    }

    /// The VMCOREINFO text.
    pub fn vmcoreinfo(&self) -> String {
        let (_, data, _) = self.layout();
        let mut s = format!(
            "OSRELEASE={}\nPAGESIZE=4096\nSYMBOL(prb)={:x}\n",
            self.release, IMAGE_VADDR
        );
        for (k, v) in [
            ("SIZE(printk_ringbuffer)", 88),
            ("OFFSET(printk_ringbuffer.desc_ring)", 0),
            ("OFFSET(printk_ringbuffer.text_data_ring)", 48),
            ("OFFSET(printk_ringbuffer.fail)", 80),
            ("SIZE(prb_desc_ring)", 48),
            ("OFFSET(prb_desc_ring.count_bits)", 0),
            ("OFFSET(prb_desc_ring.descs)", 8),
            ("OFFSET(prb_desc_ring.infos)", 16),
            ("OFFSET(prb_desc_ring.head_id)", 24),
            ("OFFSET(prb_desc_ring.tail_id)", 32),
            ("SIZE(prb_desc)", PRB_DESC_SIZE),
            ("OFFSET(prb_desc.state_var)", 0),
            ("OFFSET(prb_desc.text_blk_lpos)", 8),
            ("SIZE(prb_data_blk_lpos)", 16),
            ("OFFSET(prb_data_blk_lpos.begin)", 0),
            ("OFFSET(prb_data_blk_lpos.next)", 8),
            ("SIZE(printk_info)", PRINTK_INFO_SIZE),
            ("OFFSET(printk_info.seq)", 0),
            ("OFFSET(printk_info.ts_nsec)", 8),
            ("OFFSET(printk_info.text_len)", 16),
            ("OFFSET(printk_info.caller_id)", 20),
            ("OFFSET(printk_info.dev_info)", 24),
            ("SIZE(prb_data_ring)", 32),
            ("OFFSET(prb_data_ring.size_bits)", 0),
            ("OFFSET(prb_data_ring.data)", 8),
            ("OFFSET(prb_data_ring.head_lpos)", 16),
            ("OFFSET(prb_data_ring.tail_lpos)", 24),
            ("SIZE(atomic_long_t)", 8),
            ("OFFSET(atomic_long_t.counter)", 0),
        ] {
            s.push_str(&format!("{k}={v}\n"));
        }
        s.push_str(&format!("SYMBOL(_stext)={:x}\n", IMAGE_VADDR + data));
        s.push_str(&format!("NUMBER(VA_BITS)={VA_BITS}\n"));
        s.push_str(&format!(
            "NUMBER(kimage_voffset)=0x{:x}\nNUMBER(PHYS_OFFSET)=0x{PHYS_BASE:x}\n",
            IMAGE_VADDR - PHYS_BASE
        ));
        s.push_str("KERNELOFFSET=0\n");
        if let Some(t) = self.crash_time {
            s.push_str(&format!("CRASHTIME={t}\n"));
        }
        s
    }

    /// The memory: `prb`, the ring buffer structure, descriptors, infos, text.
    fn memory(&self) -> Vec<u8> {
        let (infos_at, data_at, total) = self.layout();
        let mut mem = vec![0u8; total as usize];
        let size = self.data_size();
        let count = self.count();
        // Live records: (id, begin lpos).
        let mut live: VecDeque<(u64, u64, bool)> = VecDeque::new();
        let mut lpos = 0u64.wrapping_sub(size); // BLK0_LPOS
        let mut id = self.first_id & DESC_ID_MASK;
        let mut head = id;
        for (seq, r) in (0u64..).zip(&self.records) {
            let (begin, next) = if r.dataless {
                (NO_LPOS, NO_LPOS)
            } else {
                let blk = (8 + r.text.len() as u64).next_multiple_of(8);
                let begin = lpos;
                let mut next = begin.wrapping_add(blk);
                let mut index = begin & (size - 1);
                if (begin >> self.size_bits) != (next >> self.size_bits) {
                    // get_next_lpos: a block whose end is in the next wrap
                    // (even exactly at its start) goes to index 0 of it.
                    next = (next & !(size - 1)).wrapping_add(blk);
                    index = 0;
                }
                put(&mut mem, data_at + index, &id.to_le_bytes());
                put(&mut mem, data_at + index + 8, &r.text);
                lpos = next;
                (begin, next)
            };
            // Records whose blocks were overwritten become reusable
            // (`data_make_reusable`); the tail moves past reusable records
            // and past the oldest when every descriptor is taken.
            for entry in live.iter_mut() {
                let (old, old_begin, gone) = entry;
                if *old_begin & 1 == 0 && lpos.wrapping_sub(*old_begin) > size && !*gone {
                    *gone = true;
                    let desc = DESCS_AT + (*old & (count - 1)) * PRB_DESC_SIZE;
                    put(
                        &mut mem,
                        desc,
                        &(*old | DESC_REUSABLE << DESC_FLAGS_SHIFT).to_le_bytes(),
                    );
                }
            }
            while let Some(&(_, _, gone)) = live.front() {
                if !gone && (live.len() as u64) < count {
                    break;
                }
                live.pop_front();
            }
            let index = id & (count - 1);
            let desc = DESCS_AT + index * PRB_DESC_SIZE;
            put(
                &mut mem,
                desc,
                &(id | r.state << DESC_FLAGS_SHIFT).to_le_bytes(),
            );
            put(&mut mem, desc + 8, &begin.to_le_bytes());
            put(&mut mem, desc + 16, &next.to_le_bytes());
            let info = infos_at + index * PRINTK_INFO_SIZE;
            put(&mut mem, info, &seq.to_le_bytes());
            put(&mut mem, info + 8, &r.ts_nsec.to_le_bytes());
            put(&mut mem, info + 16, &(r.text.len() as u16).to_le_bytes());
            put(&mut mem, info + 20, &r.caller_id.to_le_bytes());
            live.push_back((id, begin, false));
            head = id;
            id = id.wrapping_add(1) & DESC_ID_MASK;
        }
        let tail = live.front().map_or(head, |&(id, _, _)| id);
        // prb (image) -> the ringbuffer structure right after it.
        put(&mut mem, 0, &(IMAGE_VADDR + 0x100).to_le_bytes());
        let rb = 0x100;
        put(&mut mem, rb, &self.count_bits.to_le_bytes());
        put(&mut mem, rb + 8, &(PAGE_OFFSET + DESCS_AT).to_le_bytes());
        put(&mut mem, rb + 16, &(PAGE_OFFSET + infos_at).to_le_bytes());
        put(&mut mem, rb + 24, &head.to_le_bytes());
        put(&mut mem, rb + 32, &tail.to_le_bytes());
        put(&mut mem, rb + 48, &self.size_bits.to_le_bytes());
        put(&mut mem, rb + 56, &(IMAGE_VADDR + data_at).to_le_bytes());
        mem
    }

    /// The ELF core file.
    pub fn build(&self) -> Vec<u8> {
        let mut notes = Vec::new();
        for &(pid, pc) in &self.cpus {
            let mut prstatus = vec![0u8; PRSTATUS_SIZE];
            put(&mut prstatus, PRSTATUS_PID as u64, &pid.to_le_bytes());
            put(
                &mut prstatus,
                (PRSTATUS_REGS + 32 * 8) as u64,
                &pc.to_le_bytes(),
            );
            note(&mut notes, b"CORE", NT_PRSTATUS, &prstatus);
        }
        if !self.no_vmcoreinfo {
            note(&mut notes, b"VMCOREINFO", 0, self.vmcoreinfo().as_bytes());
        }
        let mem = self.memory();
        let notes_at = (EHDR_SIZE + 2 * PHDR_SIZE) as u64;
        let load_at = (notes_at + notes.len() as u64).next_multiple_of(64);
        let mut out = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        out.resize(16, 0);
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&EM_AARCH64.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        let vaddr = if self.load_vaddr { PAGE_OFFSET } else { 0 };
        for (p_type, offset, vaddr, paddr, size) in [
            (PT_NOTE, notes_at, 0, 0, notes.len() as u64),
            (PT_LOAD, load_at, vaddr, PHYS_BASE, mem.len() as u64),
        ] {
            out.extend_from_slice(&p_type.to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            for v in [offset, vaddr, paddr, size, size, 0] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&notes);
        out.resize(load_at as usize, 0);
        out.extend_from_slice(&mem);
        out
    }
}

/// States a synthetic record may be written in.
pub const STATES: [u64; 2] = [DESC_COMMITTED, DESC_FINALIZED];

//! Host tests of the sequence against a recording mock machine.
//!
//! Longer than 700 lines: one test per step of the handoff and per flag,
//! each reading as the sequence it asserts; split by step they would share
//! the mock and lose the order they are read in.

extern crate std;

use std::collections::BTreeMap;
use std::string::String;
use std::vec;
use std::vec::Vec;

use crate::maint::for_each_line;
use crate::pagetable::{translate, Leaf, MemAttr, Regime, TableBuilder, MAIR_VALUE};
use crate::params::*;
use crate::sha256::{sha256_soft, Sha256, SoftCompress};
use crate::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Write(u64),
    Cvac(u64),
    Civac(u64),
    Ivac(u64),
    Cvau(u64),
    IcIvau(u64),
    IcIallu,
    DmbSy,
    DsbSy,
    DsbIsh,
    Isb,
    SetSctlr(u64),
    SetTranslation(MmuConfig),
    Tlbi,
    Sha(u64, u64, Sha256Engine),
    Enter(u64, u64),
    Park,
    Psci(u32, [u64; 3]),
}

#[derive(Debug)]
pub(crate) struct Mock {
    pub(crate) mem: BTreeMap<u64, u8>,
    pub(crate) ev: Vec<Ev>,
    pub(crate) out: String,
    ctr: u64,
    isar0: u64,
    mmfr0: u64,
    pub(crate) regime: Regime,
    pub(crate) sctlr: u64,
    /// Ranges the code may write with the MMU on (mapped Normal NC).
    pub(crate) nc: Vec<MemRange>,
    pub(crate) mpidr: u64,
    /// Other CPUs and their PSCI firmware (crate::tests_smp's `World`,
    /// kept as `Any` so that this module does not depend on that one).
    pub(crate) smp: Option<std::boxed::Box<dyn core::any::Any>>,
    /// What a PSCI call does (crate::tests_smp's firmware; `None`: no PSCI).
    pub(crate) firmware: Option<Firmware>,
    /// A clock: `(now, step)` in ns, `now` advancing by `step` at each read.
    pub(crate) clock: Option<(u64, u64)>,
}

impl Mock {
    pub(crate) fn new(dminline_bytes: u64) -> Self {
        let dmin = dminline_bytes.trailing_zeros() as u64 - 2;
        Self {
            mem: BTreeMap::new(),
            ev: Vec::new(),
            out: String::new(),
            ctr: (dmin << 16) | 4, // IminLine 64 bytes
            isar0: 1 << 12,
            mmfr0: 5, // PARange 48 bits, TGran4 supported
            regime: Regime::El2,
            sctlr: 0x30c5_0830,
            nc: Vec::new(),
            mpidr: 0,
            smp: None,
            firmware: None,
            clock: None,
        }
    }
    pub(crate) fn load(&mut self, addr: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.mem.insert(addr + i as u64, *b);
        }
    }
    pub(crate) fn bytes(&self, addr: u64, len: u64) -> Vec<u8> {
        (addr..addr + len)
            .map(|a| *self.mem.get(&a).unwrap_or(&0))
            .collect()
    }
    pub(crate) fn pos(&self, pred: impl Fn(&Ev) -> bool) -> Vec<usize> {
        self.ev
            .iter()
            .enumerate()
            .filter(|(_, e)| pred(e))
            .map(|(i, _)| i)
            .collect()
    }
}

impl Machine for Mock {
    type Exit = ();
    fn read_u64(&mut self, pa: u64) -> u64 {
        assert_eq!(pa % 8, 0);
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.bytes(pa, 8));
        u64::from_le_bytes(w)
    }
    fn write_u64(&mut self, pa: u64, value: u64) {
        assert_eq!(pa % 8, 0);
        let nc = self
            .nc
            .iter()
            .any(|r| (r.start..r.start + r.len).contains(&pa));
        assert!(
            self.sctlr & SCTLR_M == 0 || nc,
            "{pa:#x} written with the MMU on, outside the non-cacheable ranges"
        );
        self.ev.push(Ev::Write(pa));
        self.load(pa, &value.to_le_bytes());
    }
    fn ctr_el0(&mut self) -> u64 {
        self.ctr
    }
    fn id_aa64isar0_el1(&mut self) -> u64 {
        self.isar0
    }
    fn id_aa64mmfr0_el1(&mut self) -> u64 {
        self.mmfr0
    }
    fn current_el(&mut self) -> u8 {
        match self.regime {
            Regime::El1 => 1,
            _ => 2,
        }
    }
    fn regime(&mut self) -> Regime {
        self.regime
    }
    fn sctlr(&mut self) -> u64 {
        self.sctlr
    }
    fn set_sctlr(&mut self, value: u64) {
        self.sctlr = value;
        self.ev.push(Ev::SetSctlr(value));
    }
    fn set_translation(&mut self, cfg: &MmuConfig) {
        assert_eq!(self.sctlr & SCTLR_M, 0);
        self.ev.push(Ev::SetTranslation(*cfg));
    }
    fn tlb_invalidate_all(&mut self) {
        self.ev.push(Ev::Tlbi);
    }
    fn dc_cvac(&mut self, va: u64) {
        self.ev.push(Ev::Cvac(va));
    }
    fn dc_civac(&mut self, va: u64) {
        self.ev.push(Ev::Civac(va));
    }
    fn dc_ivac(&mut self, va: u64) {
        self.ev.push(Ev::Ivac(va));
    }
    fn dc_cvau(&mut self, va: u64) {
        self.ev.push(Ev::Cvau(va));
    }
    fn ic_ivau(&mut self, va: u64) {
        self.ev.push(Ev::IcIvau(va));
    }
    fn ic_iallu(&mut self) {
        self.ev.push(Ev::IcIallu);
    }
    fn dmb_sy(&mut self) {
        self.ev.push(Ev::DmbSy);
    }
    fn dsb_sy(&mut self) {
        self.ev.push(Ev::DsbSy);
    }
    fn dsb_ish(&mut self) {
        self.ev.push(Ev::DsbIsh);
    }
    fn isb(&mut self) {
        self.ev.push(Ev::Isb);
    }
    fn sha256(&mut self, addr: u64, len: u64, engine: Sha256Engine) -> [u8; 32] {
        self.ev.push(Ev::Sha(addr, len, engine));
        sha256_soft(&self.bytes(addr, len))
    }
    fn putc(&mut self, uart: u64, byte: u8) {
        assert_eq!(uart, UART);
        self.out.push(byte as char);
    }
    fn enter_kernel(&mut self, entry: u64, dtb: u64) {
        self.ev.push(Ev::Enter(entry, dtb));
    }
    fn park(&mut self) {
        self.ev.push(Ev::Park);
    }
    fn mpidr(&mut self) -> u64 {
        self.mpidr
    }
    fn now_ns(&mut self) -> Option<u64> {
        let (now, step) = self.clock?;
        self.clock = Some((now + step, step));
        Some(now)
    }
    fn secondary_entry(&mut self) -> u64 {
        SECONDARY_ENTRY
    }
    fn psci(&mut self, conduit: Conduit, function: u32, args: [u64; 3]) -> i64 {
        assert_ne!(conduit, Conduit::None, "PSCI called without a conduit");
        self.ev.push(Ev::Psci(function, args));
        match self.firmware {
            Some(f) => f(self, function, args),
            None => crate::smp::PSCI_NOT_SUPPORTED,
        }
    }
}

/// A PSCI firmware for the mock: `(mock, function, args) -> x0`.
pub(crate) type Firmware = fn(&mut Mock, u32, [u64; 3]) -> i64;

pub(crate) const UART: u64 = 0x0900_0000;
/// Where the mock's secondaries start (the purgatory's secondary entry).
pub(crate) const SECONDARY_ENTRY: u64 = 0x4800_0400;
pub(crate) const OWN: PurgatoryMemory = PurgatoryMemory {
    image: MemRange::new(0x4800_0000, 0x3000),
    tables: MemRange::new(0x4800_3000, 0x10000),
    stack: MemRange::new(0x4801_3000, 0x4000),
    mailbox: MemRange::new(0x4801_7000, 0),
};
/// The digest table right after the purgatory's memory, as the loader puts it.
pub(crate) const TABLE_OFFSET: u64 = 0x1_7000;
/// 4 KiB chunks: segment 0 has three.
pub(crate) const CHUNK_SHIFT: u32 = 12;

pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| i.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Writes the digest table of `p` (each chunk's SHA-256 as the mock's
/// memory holds it) where the purgatory reads it.
pub(crate) fn write_table(m: &mut Mock, p: &HandoffParams) {
    let table = OWN.image.start + p.digests_offset;
    for c in p.chunks() {
        let d = sha256_soft(&m.bytes(c.addr, c.len));
        m.load(table + c.digest * DIGEST_SIZE as u64, &d);
    }
}

/// Flips a bit of table entry `digest`.
pub(crate) fn spoil_digest(m: &mut Mock, p: &HandoffParams, digest: u64) {
    let at = OWN.image.start + p.digests_offset + digest * DIGEST_SIZE as u64 + 3;
    let b = m.mem[&at];
    m.mem.insert(at, b ^ 1);
}

/// Three segments with unaligned starts and ends (five 4 KiB chunks),
/// loaded, and their digest table.
pub(crate) fn setup(line: u64) -> (Mock, HandoffParams) {
    let mut m = Mock::new(line);
    let mut p = HandoffParams {
        entry: 0x4020_0000,
        dtb: 0x4400_0000,
        uart: UART,
        ..Default::default()
    };
    for (addr, len, seed) in [
        (0x4020_0000u64, 0x2345usize, 1u8),
        (0x4400_0008, 0x1f1, 2),
        (0x4500_0071, 0x80, 3),
    ] {
        let d = pattern(len, seed);
        m.load(addr, &d);
        p.push_segment(SegmentRange {
            addr,
            len: len as u64,
        })
        .unwrap();
    }
    p.set_digest_table(CHUNK_SHIFT, TABLE_OFFSET).unwrap();
    assert_eq!(p.nr_digests, 5);
    write_table(&mut m, &p);
    (m, p)
}

fn covered(
    ev: &[Ev],
    range: core::ops::Range<usize>,
    line: u64,
    f: fn(&Ev) -> Option<u64>,
) -> Vec<u64> {
    ev[range]
        .iter()
        .filter_map(f)
        .map(|va| va & !(line - 1))
        .collect()
}

fn civac(e: &Ev) -> Option<u64> {
    match e {
        Ev::Civac(va) => Some(*va),
        _ => None,
    }
}

fn assert_covers(lines: &[u64], start: u64, len: u64, line: u64, what: &str) {
    for a in start..start + len {
        assert!(
            lines.contains(&(a & !(line - 1))),
            "{what}: byte {a:#x} not covered with {line}-byte lines"
        );
    }
}

#[test]
fn good_boot_sequence_for_each_line_size() {
    for line in [32u64, 64, 128] {
        let (mut m, p) = setup(line);
        let out = handoff(&mut m, &p, &OWN);
        assert!(matches!(out, Outcome::Entered(())));

        let mmu_on = m.pos(|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M != 0));
        let mmu_off = m.pos(|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M == 0));
        let shas = m.pos(|e| matches!(e, Ev::Sha(..)));
        let enter = m.pos(|e| matches!(e, Ev::Enter(..)));
        assert_eq!(
            (mmu_on.len(), mmu_off.len(), shas.len(), enter.len()),
            (1, 1, 5, 1)
        );
        // Chunk by chunk, in table order, each at most 4 KiB.
        let hashed: Vec<(u64, u64)> = shas
            .iter()
            .map(|&i| match m.ev[i] {
                Ev::Sha(a, l, _) => (a, l),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            hashed,
            [
                (0x4020_0000, 0x1000),
                (0x4020_1000, 0x1000),
                (0x4020_2000, 0x345),
                (0x4400_0008, 0x1f1),
                (0x4500_0071, 0x80)
            ]
        );
        let (on, off, enter) = (mmu_on[0], mmu_off[0], enter[0]);
        // Hashing happens with caches on, before they are turned off.
        assert!(shas.iter().all(|&s| on < s && s < off));
        let on_val = match m.ev[on] {
            Ev::SetSctlr(v) => v,
            _ => unreachable!(),
        };
        assert_eq!(
            on_val & (SCTLR_M | SCTLR_C | SCTLR_I),
            SCTLR_M | SCTLR_C | SCTLR_I
        );
        let off_val = match m.ev[off] {
            Ev::SetSctlr(v) => v,
            _ => unreachable!(),
        };
        assert_eq!(off_val & (SCTLR_M | SCTLR_C | SCTLR_I), 0);
        // The translation was programmed before the MMU went on.
        let tr = m.pos(|e| matches!(e, Ev::SetTranslation(_)));
        assert!(tr.len() == 1 && tr[0] < on);
        // After the MMU went on: no maintenance at all (nothing was written
        // through the caches), and the MMU-off write sits between two ISBs
        // (the first one: Falkor erratum E1041).
        assert!(
            m.ev[on..enter].iter().all(|e| !matches!(
                e,
                Ev::Cvac(_) | Ev::Civac(_) | Ev::Ivac(_) | Ev::IcIallu | Ev::Tlbi
            )),
            "maintenance after the caches came on"
        );
        assert_eq!(
            &m.ev[off - 1..=off + 1],
            &[Ev::Isb, m.ev[off].clone(), Ev::Isb]
        );
        // Before the MMU went on: segments cleaned+invalidated (what is hashed
        // is memory), own tables and stack invalidated.
        let pre = covered(&m.ev, 0..on, line, civac);
        for s in p.segments() {
            assert_covers(&pre, s.addr, s.len, line, "segment (pre clean)");
        }
        let table = OWN.image.start + TABLE_OFFSET;
        assert_covers(&pre, table, 5 * 32, line, "digest table (pre clean)");
        let ivacs = covered(&m.ev, 0..on, line, |e| match e {
            Ev::Ivac(va) => Some(*va),
            _ => None,
        });
        assert_covers(&ivacs, OWN.tables.start, OWN.tables.len, line, "tables");
        assert_covers(&ivacs, OWN.stack.start, OWN.stack.len, line, "stack");
        // IVAC never touches a byte outside the purgatory's own tables/stack.
        for va in &ivacs {
            assert!(*va >= OWN.tables.start && *va < OWN.stack.start + OWN.stack.len);
        }
        // Page-table writes all happen with the MMU off and before it is enabled.
        let writes = m.pos(|e| matches!(e, Ev::Write(_)));
        assert!(writes.iter().all(|&w| w < on));
        // One DMB SY after the last of those (Device) stores and before the
        // first DC IVAC (head.S: "needed before dc ivac with MMU off").
        let dmb = m.pos(|e| matches!(e, Ev::DmbSy));
        let first_ivac = m.pos(|e| matches!(e, Ev::Ivac(_)))[0];
        assert_eq!(dmb.len(), 1);
        assert!(writes.iter().max().unwrap() < &dmb[0] && dmb[0] + 1 == first_ivac);
        // The I-cache was invalidated before the caches came on, after a DSB
        // that completes the cleans (clean; DSB; IC; DSB; ISB).
        let ic = m.pos(|e| matches!(e, Ev::IcIallu));
        assert_eq!(ic.len(), 1);
        let last_dc = m
            .pos(|e| matches!(e, Ev::Civac(_) | Ev::Ivac(_)))
            .into_iter()
            .max()
            .unwrap();
        assert_eq!(&m.ev[last_dc + 1..=ic[0]], &[Ev::DsbSy, Ev::IcIallu]);
        // Then: tables, the old kernel's TLB entries gone, one DSB completing
        // the IC IALLU and the TLBI, ISB, MMU on, ISB.
        assert_eq!(ic[0] + 1, tr[0]);
        assert_eq!(
            &m.ev[tr[0] + 1..=on + 1],
            &[Ev::Tlbi, Ev::DsbSy, Ev::Isb, m.ev[on].clone(), Ev::Isb]
        );
        // Nothing between the last ISB and the branch.
        assert_eq!(enter, off + 2);
        // x0 = DTB.
        assert_eq!(m.ev[enter], Ev::Enter(0x4020_0000, 0x4400_0000));
        assert!(
            m.out.contains(
                "3 segments verified in 5 chunks of 4 KiB (sha2 instructions, caches on)"
            ),
            "{}",
            m.out
        );
    }
}

#[test]
fn mismatch_parks_and_names_the_chunk() {
    let (mut m, p) = setup(64);
    spoil_digest(&mut m, &p, 3);
    let out = handoff(&mut m, &p, &OWN);
    assert!(matches!(
        out,
        Outcome::Parked(
            (),
            Failure::DigestMismatch {
                failed: 0b010,
                chunks: 1
            }
        )
    ));
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Enter(..))));
    assert_eq!(m.ev.last(), Some(&Ev::Park));
    assert!(
        m.out.contains(
            "purgatory: segment 1 chunk 0 (0x0000000044000008..0x00000000440001f9): \
             SHA-256 mismatch\r\n"
        ),
        "{}",
        m.out
    );
    assert!(!m.out.contains("more chunks"), "{}", m.out);
    // Parked with the MMU off.
    assert_eq!(m.sctlr & SCTLR_M, 0);
}

#[test]
fn corrupted_memory_is_detected_in_its_chunk() {
    let (mut m, p) = setup(64);
    // Segment 0's second chunk, and segment 2.
    for a in [0x4020_1fff, p.segments[2].addr + 5] {
        let b = m.mem[&a];
        m.mem.insert(a, b ^ 0x80);
    }
    assert!(matches!(
        handoff(&mut m, &p, &OWN),
        Outcome::Parked(
            (),
            Failure::DigestMismatch {
                failed: 0b101,
                chunks: 2
            }
        )
    ));
    assert!(
        m.out.contains(
            "purgatory: segment 0 chunk 1 (0x0000000040201000..0x0000000040202000): \
             SHA-256 mismatch\r\npurgatory: segment 2 chunk 0 \
             (0x0000000045000071..0x00000000450000f1): SHA-256 mismatch\r\n"
        ),
        "{}",
        m.out
    );
}

#[test]
fn many_mismatches_are_named_up_to_the_limit_and_counted() {
    let mut m = Mock::new(64);
    let mut p = HandoffParams {
        uart: UART,
        ..Default::default()
    };
    p.push_segment(SegmentRange {
        addr: 0x4000_0000,
        len: 11 << CHUNK_SHIFT,
    })
    .unwrap();
    p.set_digest_table(CHUNK_SHIFT, TABLE_OFFSET).unwrap();
    // Memory all zero, every digest of a non-zero pattern: all 11 fail.
    m.load(0x4000_0000, &pattern(11 << CHUNK_SHIFT, 1));
    let out = handoff(&mut m, &p, &OWN);
    assert!(matches!(
        out,
        Outcome::Parked(
            (),
            Failure::DigestMismatch {
                failed: 1,
                chunks: 11
            }
        )
    ));
    assert_eq!(
        m.out.matches("SHA-256 mismatch").count(),
        REPORTED_MISMATCHES,
        "{}",
        m.out
    );
    assert!(m.out.contains("segment 0 chunk 7 ("), "{}", m.out);
    assert!(!m.out.contains("segment 0 chunk 8 ("), "{}", m.out);
    assert!(
        m.out.contains("purgatory: 3 more chunks mismatch\r\n"),
        "{}",
        m.out
    );
}

#[test]
fn a_digest_table_over_the_purgatorys_own_memory_is_refused() {
    for offset in [0x3000u64, 0x1_2ff8, 0x1_6ff0] {
        let (mut m, mut p) = setup(64);
        p.digests_offset = offset;
        assert!(
            matches!(
                handoff(&mut m, &p, &OWN),
                Outcome::Parked((), Failure::BadParams(HeaderError::BadDigestTable(o))) if o == offset
            ),
            "{offset:#x}"
        );
        assert_eq!(m.ev, vec![Ev::Park]);
    }
    // Right after the stack, and inside the image (read-only), are fine.
    for offset in [0x1_7000u64, 0x1000] {
        let (mut m, mut p) = setup(64);
        p.digests_offset = offset;
        write_table(&mut m, &p);
        assert!(
            matches!(handoff(&mut m, &p, &OWN), Outcome::Entered(())),
            "{offset:#x}"
        );
    }
    let (_, mut p) = setup(64);
    p.digests_offset = u64::MAX - 0x40;
    assert_eq!(
        digest_table(&p, &OWN),
        Err(HeaderError::BadDigestTable(u64::MAX - 0x40))
    );
}

#[test]
fn no_verify_skips_hashing_and_caches() {
    let (mut m, mut p) = setup(64);
    p.flags = Flags(Flags::NO_VERIFY);
    p.set_digest_table(CHUNK_SHIFT, 0).unwrap();
    assert_eq!(p.nr_digests, 0);
    assert!(matches!(handoff(&mut m, &p, &OWN), Outcome::Entered(())));
    assert!(!m
        .ev
        .iter()
        .any(|e| matches!(e, Ev::Sha(..) | Ev::SetSctlr(_))));
    assert_eq!(
        m.ev,
        vec![Ev::IcIallu, Ev::DsbSy, Ev::Isb, Ev::Enter(p.entry, p.dtb)]
    );
}

#[test]
fn engine_choice() {
    let (mut m, mut p) = setup(64);
    p.flags = Flags(Flags::FORCE_SOFT_SHA256);
    handoff(&mut m, &p, &OWN);
    assert!(m
        .ev
        .iter()
        .any(|e| matches!(e, Ev::Sha(_, _, Sha256Engine::Software))));
    assert!(m.out.contains("software sha256, caches on"));

    let (mut m, p) = setup(64);
    m.isar0 = 0;
    handoff(&mut m, &p, &OWN);
    assert!(!m
        .ev
        .iter()
        .any(|e| matches!(e, Ev::Sha(_, _, Sha256Engine::Instructions))));
}

#[test]
fn no_caches_flag_and_pool_exhaustion_hash_with_caches_off() {
    let (mut m, mut p) = setup(64);
    p.flags = Flags(Flags::NO_CACHES);
    assert!(matches!(handoff(&mut m, &p, &OWN), Outcome::Entered(())));
    assert!(!m
        .ev
        .iter()
        .any(|e| matches!(e, Ev::SetSctlr(_) | Ev::Write(_))));
    assert!(m.out.contains("caches off"));

    let (mut m, p) = setup(64);
    let tiny = PurgatoryMemory {
        tables: MemRange::new(OWN.tables.start, 0x2000),
        ..OWN
    };
    assert!(matches!(handoff(&mut m, &p, &tiny), Outcome::Entered(())));
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::SetSctlr(_))));
    assert!(m
        .out
        .contains("3 segments verified in 5 chunks of 4 KiB (sha2 instructions, caches off)"));
}

#[test]
fn page_tables_map_what_the_purgatory_touches() {
    for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
        let (mut m, p) = setup(64);
        m.regime = regime;
        let table = digest_table(&p, &OWN).unwrap();
        let cfg = build_page_tables(&mut m, &p, &OWN, table).unwrap();
        assert_eq!(cfg.mair, MAIR_VALUE);
        let mut look = |va| translate(&cfg, va, |pa| m.read_u64(pa));
        for s in p.segments() {
            for va in [s.addr, s.addr + s.len - 1] {
                assert_eq!(
                    look(va),
                    Some(Leaf {
                        pa: va,
                        attr: MemAttr::NormalWb,
                        exec: false
                    }),
                    "{regime:?} {va:#x}"
                );
            }
        }
        assert_eq!(
            look(OWN.image.start + 0x123).map(|l| (l.attr, l.exec)),
            Some((MemAttr::NormalWb, true))
        );
        assert_eq!(look(OWN.stack.start + 8).unwrap().attr, MemAttr::NormalNc);
        assert_eq!(look(OWN.tables.start).unwrap().attr, MemAttr::NormalWb);
        assert_eq!(
            look(OWN.image.start + TABLE_OFFSET + 5 * 32 - 1),
            Some(Leaf {
                pa: OWN.image.start + TABLE_OFFSET + 5 * 32 - 1,
                attr: MemAttr::NormalWb,
                exec: false
            })
        );
        assert_eq!(look(OWN.image.start + TABLE_OFFSET + 0x1000), None);
        assert_eq!(look(UART + 0x18).unwrap().attr, MemAttr::DeviceNgnre);
        // Nothing else is mapped.
        assert_eq!(look(0x6000_0000), None);
        assert_eq!(look(UART + 0x1000), None);
    }
}

#[test]
fn blocks_split_into_pages_when_overridden() {
    let mut m = Mock::new(64);
    let mut b = TableBuilder::new(&mut m, Regime::El1, 0x1000_0000, 0x10000).unwrap();
    b.map(&mut m, 0x4000_0000, 0x40_0000, MemAttr::NormalWb, false)
        .unwrap();
    let used_blocks = b.pages_used();
    assert_eq!(used_blocks, 3, "L0 + L1 + L2, two 2 MiB blocks");
    b.map(&mut m, 0x4010_0000, 0x1000, MemAttr::NormalNc, false)
        .unwrap();
    assert_eq!(b.pages_used(), 4);
    let cfg = b.config(5);
    let mut look = |va| translate(&cfg, va, |pa| m.read_u64(pa)).map(|l| l.attr);
    assert_eq!(look(0x4010_0000), Some(MemAttr::NormalNc));
    assert_eq!(look(0x4010_1000), Some(MemAttr::NormalWb));
    assert_eq!(look(0x400f_f000), Some(MemAttr::NormalWb));
    assert_eq!(look(0x4030_0000), Some(MemAttr::NormalWb));
    assert_eq!(look(0x4040_0000), None);
}

#[test]
fn tcr_values() {
    // EL2 (E2H = 0): T0SZ 16, WBWA inner/outer, inner shareable, 4K, PS 48 bits, RES1 23 and 31.
    assert_eq!(pagetable::tcr_value(Regime::El2, 5), 0x8085_3510);
    // EL1 layout: + T1SZ 16, EPD1, TG1 4K, IPS 40 bits.
    assert_eq!(
        pagetable::tcr_value(Regime::El1, 2),
        (2 << 32) | (2 << 30) | (1 << 23) | (16 << 16) | 0x3510
    );
    // PARange 52 bits is capped at 48.
    assert_eq!(pagetable::tcr_value(Regime::El2Host, 6) >> 32, 5);
    assert!(pagetable::granule_4k_supported(0));
    assert!(!pagetable::granule_4k_supported(0xf000_0000));
}

#[test]
fn line_iteration_covers_unaligned_ranges() {
    let mut v = Vec::new();
    for_each_line(0x1003, 0x7e, 64, |a| v.push(a));
    assert_eq!(v, vec![0x1000, 0x1040, 0x1080]);
    v.clear();
    for_each_line(0x1000, 0x40, 64, |a| v.push(a));
    assert_eq!(v, vec![0x1000]);
    v.clear();
    for_each_line(0x1000, 0, 64, |a| v.push(a));
    assert!(v.is_empty());
    v.clear();
    for_each_line(u64::MAX - 0x3f, 0x40, 64, |a| v.push(a));
    assert_eq!(v, vec![u64::MAX - 0x3f]);
    assert_eq!(dcache_line_size(0x8444_c004), 64);
}

#[test]
fn sha256_matches_reference_for_all_split_points() {
    use sha2::Digest;
    let data = pattern(1000, 7);
    for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000] {
        let want: [u8; 32] = sha2::Sha256::digest(&data[..len]).into();
        assert_eq!(sha256_soft(&data[..len]), want, "len {len}");
        for split in [0, 1, 63, 64, len / 2] {
            let split = split.min(len);
            let mut h = Sha256::new(SoftCompress);
            h.update(&data[..split]);
            h.update(&data[split..len]);
            assert_eq!(h.finalize(), want, "len {len} split {split}");
        }
        let blocks: Vec<[u8; 64]> = data[..len]
            .chunks_exact(64)
            .map(|c| c.try_into().unwrap())
            .collect();
        for head in [0usize, 3] {
            let mut h = Sha256::new(SoftCompress);
            h.update(&data[..head.min(len)]);
            if head == 0 {
                h.update_blocks(&blocks);
                h.update(&data[blocks.len() * 64..len]);
            } else {
                h.update(&data[head.min(len)..len]);
            }
            assert_eq!(h.finalize(), want, "len {len} blocks, head {head}");
        }
        if len >= 64 + 3 {
            // update_blocks after a partial update falls back to buffering.
            let mut h = Sha256::new(SoftCompress);
            h.update(&data[..3]);
            let b: [u8; 64] = data[3..67].try_into().unwrap();
            h.update_blocks(&[b]);
            h.update(&data[67..len]);
            assert_eq!(h.finalize(), want, "len {len} unaligned blocks");
        }
    }
}

#[test]
fn leaf_attribute_bits_per_regime() {
    use crate::pagetable::leaf_attrs;
    const AF: u64 = 1 << 10;
    const SH_INNER: u64 = 3 << 8;
    const AP1: u64 = 1 << 6;
    const PXN: u64 = 1 << 53;
    const XN_UXN: u64 = 1 << 54;
    // EL2 without E2H: AP[1] RES1, bit 54 is XN, bit 53 RES0.
    assert_eq!(
        leaf_attrs(Regime::El2, MemAttr::NormalWb, true),
        AF | SH_INNER | AP1
    );
    assert_eq!(
        leaf_attrs(Regime::El2, MemAttr::DeviceNgnre, false),
        (1 << 2) | AF | AP1 | XN_UXN
    );
    // Two-privilege regimes: AP = 00 (no EL0 access), never EL0-executable.
    for r in [Regime::El1, Regime::El2Host] {
        assert_eq!(
            leaf_attrs(r, MemAttr::NormalWb, true),
            AF | SH_INNER | XN_UXN
        );
        assert_eq!(
            leaf_attrs(r, MemAttr::NormalNc, false),
            (2 << 2) | AF | SH_INNER | XN_UXN | PXN
        );
    }
}

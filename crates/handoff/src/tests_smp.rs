//! Host tests of hashing on several CPUs ([`crate::smp`]) against the
//! recording mock of `tests.rs`, with PSCI firmware that runs a secondary
//! to its end (on a mock of its own sharing the memory) when the boot CPU
//! calls `CPU_ON`.

extern crate std;

use std::boxed::Box;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

use crate::smp::*;
use crate::tests::{setup, spoil_digest, Ev, Mock, OWN, SECONDARY_ENTRY};
use crate::*;

/// The purgatory's memory with a mailbox (below the digest table).
pub(crate) const OWN_SMP: PurgatoryMemory = PurgatoryMemory {
    stack: MemRange::new(0x4801_3000, 0x3000),
    mailbox: MemRange::new(0x4801_6000, 0x1000),
    ..OWN
};

/// The other CPUs and the PSCI firmware.
#[derive(Debug, Default)]
pub(crate) struct World {
    params: HandoffParams,
    own: PurgatoryMemory,
    /// `PSCI_VERSION`'s answer.
    version: i64,
    /// `CPU_ON` refused with this code, by target.
    refuse: BTreeMap<u64, i64>,
    /// A secondary's regime when not the boot CPU's.
    regime: BTreeMap<u64, Regime>,
    /// Targets whose `CPU_OFF` does not turn them off.
    stuck: BTreeSet<u64>,
    /// Targets that are off after running.
    off: BTreeSet<u64>,
    /// Each secondary run: target, slot, its events.
    runs: Vec<(u64, u64, Vec<Ev>)>,
    /// Secondaries started but not yet run (`slow`): each is seen Idle,
    /// then Running, then runs to its end, at the boot CPU's polls.
    slow: bool,
    waiting: Vec<(u64, u64, u32)>,
    /// Polls during which a slow secondary reports progress before it runs
    /// to its end (0: it runs at the second poll).
    progressing: u64,
    /// A secondary's SCTLR when it starts (default: the mock's).
    sctlr: Option<u64>,
}

/// Runs the secondary `target` in `slot` to its end on a mock of its own
/// sharing `m`'s memory.
fn run_secondary(m: &mut Mock, w: &mut World, target: u64, slot: u64) {
    let mut cpu = Mock::new(64);
    cpu.firmware = Some(psci);
    cpu.mem = core::mem::take(&mut m.mem);
    cpu.regime = w.regime.get(&target).copied().unwrap_or(m.regime);
    cpu.nc = m.nc.clone();
    cpu.mpidr = target;
    if let Some(v) = w.sctlr {
        cpu.sctlr = v;
    }
    crate::smp::secondary(
        &mut cpu,
        &w.params,
        &w.own,
        usize::try_from(slot).unwrap_or(usize::MAX),
    );
    m.mem = core::mem::take(&mut cpu.mem);
    let turned_off = cpu.ev.contains(&Ev::Psci(PSCI_CPU_OFF, [0; 3]));
    if turned_off && !w.stuck.contains(&target) {
        w.off.insert(target);
    }
    w.runs.push((target, slot, cpu.ev));
}

/// The mock's PSCI firmware (called by `Mock::psci` after recording).
pub(crate) fn psci(m: &mut Mock, function: u32, args: [u64; 3]) -> i64 {
    let Some(mut w) = m.smp.take().and_then(|w| w.downcast::<World>().ok()) else {
        // A secondary's own mock: CPU_OFF is all it calls.
        assert_eq!(function, PSCI_CPU_OFF);
        return PSCI_SUCCESS;
    };
    let r = match function {
        PSCI_VERSION => w.version,
        PSCI_CPU_ON_64 => {
            let [target, entry, slot] = args;
            assert_eq!(entry, SECONDARY_ENTRY);
            if let Some(&code) = w.refuse.get(&target) {
                code
            } else if w.slow {
                w.waiting.push((target, slot, 0));
                PSCI_SUCCESS
            } else {
                run_secondary(m, &mut w, target, slot);
                PSCI_SUCCESS
            }
        }
        PSCI_AFFINITY_INFO_64 => {
            let target = args[0];
            if let Some(i) = w.waiting.iter().position(|&(t, _, _)| t == target) {
                let (_, slot, polls) = w.waiting[i];
                if u64::from(polls) <= w.progressing {
                    // Started: it says it is running and has hashed one
                    // more chunk at each poll.
                    let slot_at = OWN_SMP.mailbox.start + 0x40 + 0x80 * slot;
                    m.load(slot_at, &1u64.to_le_bytes());
                    m.load(slot_at + 8, &(u64::from(polls) + 1).to_le_bytes());
                    w.waiting[i].2 = polls.saturating_add(1);
                } else {
                    w.waiting.remove(i);
                    run_secondary(m, &mut w, target, slot);
                }
                0 // ON while asked
            } else {
                i64::from(w.off.contains(&target))
            }
        }
        other => panic!("unexpected PSCI call {other:#x}"),
    };
    m.smp = Some(w);
    r
}

/// The five-chunk setup of tests.rs with `cpus` secondaries (MPIDR 1, 2,
/// …) on PSCI 1.0 over SMC; the boot CPU is MPIDR 0.
pub(crate) fn smp_setup(cpus: u64) -> (Mock, HandoffParams) {
    let (mut m, mut p) = setup(64);
    p.psci = Conduit::Smc;
    for c in 1..=cpus {
        p.push_secondary(c).unwrap();
    }
    // The mock's stack is not memory: the mailbox is all the CPUs write
    // with their MMU on.
    m.nc = std::vec![OWN_SMP.mailbox];
    m.firmware = Some(psci);
    m.smp = Some(Box::new(World {
        params: p.clone(),
        own: OWN_SMP,
        version: 0x1_0000,
        ..World::default()
    }));
    (m, p)
}

fn world(m: &Mock) -> &World {
    m.smp.as_deref().and_then(|w| w.downcast_ref()).unwrap()
}

fn world_mut(m: &mut Mock) -> &mut World {
    m.smp.as_deref_mut().and_then(|w| w.downcast_mut()).unwrap()
}

pub(crate) fn hashed(ev: &[Ev]) -> Vec<(u64, u64)> {
    ev.iter()
        .filter_map(|e| match e {
            Ev::Sha(a, l, _) => Some((*a, *l)),
            _ => None,
        })
        .collect()
}

/// Every chunk of the setup, in table order.
const CHUNKS: [(u64, u64); 5] = [
    (0x4020_0000, 0x1000),
    (0x4020_1000, 0x1000),
    (0x4020_2000, 0x345),
    (0x4400_0008, 0x1f1),
    (0x4500_0071, 0x80),
];

#[test]
fn chunks_are_shared_and_each_hashed_once() {
    let (mut m, p) = smp_setup(2);
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    // Share 0 (digests 0 and 3) on the boot CPU, 1 and 4 on slot 0, 2 on
    // slot 1.
    assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[3]]);
    let w = world(&m);
    let runs: Vec<_> = w
        .runs
        .iter()
        .map(|(t, s, ev)| (*t, *s, hashed(ev)))
        .collect();
    assert_eq!(
        runs,
        [
            (1, 0, std::vec![CHUNKS[1], CHUNKS[4]]),
            (2, 1, std::vec![CHUNKS[2]]),
        ]
    );
    assert!(
        m.out.contains("purgatory: hashed on 3 CPUs\r\n"),
        "{}",
        m.out
    );
    assert!(
        m.out.contains("3 segments verified in 5 chunks"),
        "{}",
        m.out
    );
}

#[test]
fn the_boot_cpu_starts_secondaries_after_its_maintenance_and_enters_once_they_are_off() {
    let (mut m, p) = smp_setup(2);
    handoff(&mut m, &p, &OWN_SMP);
    let at = |m: &Mock, e: &Ev| m.pos(|x| x == e);
    let mmu_on = m.pos(|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M != 0))[0];
    let last_civac = *m.pos(|e| matches!(e, Ev::Civac(_))).last().unwrap();
    let ons = m.pos(|e| matches!(e, Ev::Psci(PSCI_CPU_ON_64, _)));
    assert_eq!(ons.len(), 2);
    assert!(last_civac < mmu_on && mmu_on < ons[0]);
    // The mailbox was written, then a DSB, then the first CPU_ON.
    let writes = m.pos(|e| matches!(e, Ev::Write(a) if OWN_SMP.mailbox.start <= *a && *a < OWN_SMP.mailbox.start + MAILBOX_SIZE));
    let dsb_before = m
        .pos(|e| *e == Ev::DsbSy)
        .into_iter()
        .filter(|&i| i < ons[0])
        .max()
        .unwrap();
    assert!(*writes.last().unwrap() < dsb_before);
    assert!(writes.iter().filter(|&&i| i < ons[0]).count() >= 5);
    // Both reported OFF before the MMU goes off and the kernel is entered.
    let offs: Vec<usize> = [1u64, 2]
        .iter()
        .map(|&t| at(&m, &Ev::Psci(PSCI_AFFINITY_INFO_64, [t, 0, 0]))[0])
        .collect();
    let mmu_off = m.pos(|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M == 0))[0];
    let enter = m.pos(|e| matches!(e, Ev::Enter(..)))[0];
    assert!(offs
        .iter()
        .all(|&i| ons[1] < i && i < mmu_off && mmu_off < enter));
    assert_eq!(
        m.ev[ons[0]],
        Ev::Psci(PSCI_CPU_ON_64, [1, SECONDARY_ENTRY, 0])
    );
}

#[test]
fn a_secondary_turns_its_caches_on_hashes_and_reports_before_cpu_off() {
    let (mut m, p) = smp_setup(1);
    handoff(&mut m, &p, &OWN_SMP);
    let ev = &world(&m).runs[0].2;
    let i = |pred: &dyn Fn(&Ev) -> bool| ev.iter().position(pred).unwrap();
    let ic = i(&|e| *e == Ev::IcIallu);
    let tr = i(&|e| matches!(e, Ev::SetTranslation(_)));
    let tlbi = i(&|e| *e == Ev::Tlbi);
    let on = i(&|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M != 0));
    let first_sha = i(&|e| matches!(e, Ev::Sha(..)));
    let off = i(&|e| matches!(e, Ev::SetSctlr(v) if v & SCTLR_M == 0));
    let cpu_off = i(&|e| *e == Ev::Psci(PSCI_CPU_OFF, [0; 3]));
    assert!(
        ic < tr && tr < tlbi && tlbi < on && on < first_sha && first_sha < off && off < cpu_off
    );
    // ISB right before and after each SCTLR write; a DSB completes the TLBI.
    assert_eq!(ev[on - 1], Ev::Isb);
    assert_eq!(ev[on + 1], Ev::Isb);
    assert_eq!(ev[off - 1], Ev::Isb);
    assert!(ev[tlbi..on].contains(&Ev::DsbSy));
    // Its translation is the boot CPU's.
    let boot_cfg = m.ev.iter().find_map(|e| match e {
        Ev::SetTranslation(c) => Some(*c),
        _ => None,
    });
    assert_eq!(Some(&ev[tr]), boot_cfg.map(Ev::SetTranslation).as_ref());
    // After its caches are off: result, DSB, state, DSB, CPU_OFF.
    let tail: Vec<&Ev> = ev[off + 2..]
        .iter()
        .filter(|e| !matches!(e, Ev::Write(_)))
        .collect();
    assert_eq!(
        tail,
        [
            &Ev::DsbSy,
            &Ev::DsbSy,
            &Ev::Psci(PSCI_CPU_OFF, [0; 3]),
            &Ev::Park
        ]
    );
    let state = OWN_SMP.mailbox.start + 0x40;
    let last_write = ev.iter().rposition(|e| matches!(e, Ev::Write(_))).unwrap();
    assert_eq!(ev[last_write], Ev::Write(state));
    assert_eq!(ev[last_write - 1], Ev::DsbSy);
    assert_eq!(ev[last_write + 1], Ev::DsbSy);
}

#[test]
fn a_mismatch_found_by_a_secondary_is_reported_by_the_boot_cpu() {
    let (mut m, p) = smp_setup(2);
    // Digest 4 (segment 2's chunk) is slot 0's, digest 2 slot 1's.
    spoil_digest(&mut m, &p, 4);
    spoil_digest(&mut m, &p, 2);
    let out = handoff(&mut m, &p, &OWN_SMP);
    assert!(matches!(
        out,
        Outcome::Parked(
            (),
            Failure::DigestMismatch {
                failed: 0b101,
                chunks: 2
            }
        )
    ));
    let first = m.out.find("segment 0 chunk 2").unwrap();
    let second = m.out.find("segment 2 chunk 0").unwrap();
    assert!(first < second, "{}", m.out);
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Enter(..))));
}

#[test]
fn a_cpu_that_does_not_start_has_its_share_hashed_by_the_boot_cpu() {
    for code in [-4, -2, -7] {
        let (mut m, p) = smp_setup(2);
        world_mut(&mut m).refuse.insert(1, code);
        assert!(matches!(
            handoff(&mut m, &p, &OWN_SMP),
            Outcome::Entered(())
        ));
        assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[3], CHUNKS[1], CHUNKS[4]]);
        assert!(m.out.contains("hashed on 2 CPUs"), "{}", m.out);
        assert!(!m.ev.contains(&Ev::Psci(PSCI_AFFINITY_INFO_64, [1, 0, 0])));
    }
}

#[test]
fn a_secondary_in_another_regime_declines_and_the_boot_cpu_hashes_its_share() {
    let (mut m, p) = smp_setup(1);
    world_mut(&mut m).regime.insert(1, Regime::El2Host);
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    let run = &world(&m).runs[0].2;
    assert!(hashed(run).is_empty());
    assert!(!run.iter().any(|e| matches!(e, Ev::SetSctlr(_))));
    assert_eq!(hashed(&m.ev).len(), 5);
    assert!(!m.out.contains("hashed on"), "{}", m.out);
}

#[test]
fn a_cpu_that_stays_on_stops_the_boot() {
    let (mut m, p) = smp_setup(2);
    world_mut(&mut m).stuck.insert(2);
    let out = handoff(&mut m, &p, &OWN_SMP);
    assert!(matches!(
        out,
        Outcome::Parked((), Failure::SecondaryStillOn(2))
    ));
    assert!(m.out.contains("did not turn off"), "{}", m.out);
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Enter(..))));
    // It waited (polled) before giving up, and turned the caches off.
    let polls =
        m.ev.iter()
            .filter(|e| **e == Ev::Psci(PSCI_AFFINITY_INFO_64, [2, 0, 0]))
            .count();
    assert!(polls as u64 > SECONDARY_STALL_POLLS);
    assert_eq!(m.sctlr & SCTLR_M, 0);
}

#[test]
fn no_secondaries_without_psci_0_2_caches_or_a_mailbox() {
    // PSCI 0.1 (no PSCI_VERSION), 0.1 answering, 0.2 and 1.1 for contrast.
    for (version, starts) in [(-1, false), (0x1, false), (0x2, true), (0x1_0001, true)] {
        let (mut m, p) = smp_setup(1);
        world_mut(&mut m).version = version;
        handoff(&mut m, &p, &OWN_SMP);
        assert_eq!(!world(&m).runs.is_empty(), starts, "version {version:#x}");
        assert_eq!(hashed(&m.ev).len(), if starts { 3 } else { 5 });
    }
    let (mut m, mut p) = smp_setup(1);
    p.flags = Flags(Flags::NO_CACHES);
    handoff(&mut m, &p, &OWN_SMP);
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Psci(..))));
    let (mut m, p) = smp_setup(1);
    let no_mailbox = PurgatoryMemory {
        mailbox: MemRange::new(OWN_SMP.mailbox.start, MAILBOX_SIZE - 8),
        ..OWN_SMP
    };
    handoff(&mut m, &p, &no_mailbox);
    assert!(world(&m).runs.is_empty());
    assert_eq!(hashed(&m.ev).len(), 5);
}

#[test]
fn the_boot_cpu_does_not_start_itself() {
    let (mut m, p) = smp_setup(2);
    m.mpidr = 0x8000_0001; // MPIDR_EL1 bit 31 is RES1: not affinity
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    let started: Vec<u64> = world(&m).runs.iter().map(|r| r.0).collect();
    assert_eq!(started, [2]);
    assert!(m.out.contains("hashed on 2 CPUs"), "{}", m.out);
    // Two shares, not three: the boot CPU's own place in the list gets no
    // share of its own (it would hash 2/3 of the chunks).
    assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[2], CHUNKS[4]]);
}

#[test]
fn psci_numbers_are_the_specifications() {
    // Linux's include/uapi/linux/psci.h: PSCI_0_2_FN_PSCI_VERSION,
    // _FN_CPU_OFF, _FN64_CPU_ON, _FN64_AFFINITY_INFO; PSCI_RET_SUCCESS,
    // PSCI_RET_NOT_SUPPORTED; PSCI_0_2_AFFINITY_LEVEL_OFF.
    assert_eq!(
        (
            PSCI_VERSION,
            PSCI_CPU_OFF,
            PSCI_CPU_ON_64,
            PSCI_AFFINITY_INFO_64
        ),
        (0x8400_0000, 0x8400_0002, 0xc400_0003, 0xc400_0004)
    );
    assert_eq!((PSCI_SUCCESS, PSCI_NOT_SUPPORTED, AFFINITY_OFF), (0, -1, 1));
}

#[test]
fn seven_secondaries_fill_the_mailbox_exactly() {
    let (mut m, mut p) = setup(64);
    p.psci = Conduit::Smc;
    for c in 1..=7 {
        p.push_secondary(c).unwrap();
    }
    let own = PurgatoryMemory {
        mailbox: MemRange::new(OWN_SMP.mailbox.start, MAILBOX_SIZE),
        ..OWN_SMP
    };
    // Every word the CPUs write must be inside it (the mock checks).
    m.nc = std::vec![own.mailbox];
    m.firmware = Some(psci);
    m.smp = Some(Box::new(World {
        params: p.clone(),
        own,
        version: 0x1_0000,
        ..World::default()
    }));
    assert!(matches!(handoff(&mut m, &p, &own), Outcome::Entered(())));
    // Five chunks, eight shares: CPUs 1 to 4 hash one each, 5 to 7 none.
    assert!(m.out.contains("hashed on 8 CPUs"), "{}", m.out);
    assert_eq!(hashed(&m.ev), [CHUNKS[0]]);
    const { assert!(MAILBOX_SIZE <= 0x1000, "link.ld gives the mailbox one page") };
}

#[test]
fn the_boot_cpu_waits_through_idle_and_running() {
    let (mut m, p) = smp_setup(2);
    world_mut(&mut m).slow = true;
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    assert!(m.out.contains("hashed on 3 CPUs"), "{}", m.out);
    // Only its own share: it did not take over a CPU it saw idle or running.
    assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[3]]);
    // Asked twice while on, once more to see it off.
    let asked = |t: u64| {
        m.ev.iter()
            .filter(|e| **e == Ev::Psci(PSCI_AFFINITY_INFO_64, [t, 0, 0]))
            .count()
    };
    assert_eq!((asked(1), asked(2)), (3, 3));
}

#[test]
fn every_regime_hands_its_own_to_the_secondaries() {
    for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
        let (mut m, p) = smp_setup(1);
        m.regime = regime;
        assert!(matches!(
            handoff(&mut m, &p, &OWN_SMP),
            Outcome::Entered(())
        ));
        assert!(m.out.contains("hashed on 2 CPUs"), "{regime:?}: {}", m.out);
        // A secondary in any other regime declines.
        for other in [Regime::El1, Regime::El2, Regime::El2Host] {
            if other == regime {
                continue;
            }
            let (mut m, p) = smp_setup(1);
            m.regime = regime;
            world_mut(&mut m).regime.insert(1, other);
            handoff(&mut m, &p, &OWN_SMP);
            assert!(
                !m.out.contains("hashed on"),
                "{regime:?}/{other:?}: {}",
                m.out
            );
            assert_eq!(hashed(&m.ev).len(), 5);
        }
    }
}

#[test]
fn a_secondarys_result_is_read_back_as_written() {
    let (mut m, p) = smp_setup(1);
    // Nine failing chunks in its share would name eight: a result whose
    // count and segments say more than its named chunks is taken whole.
    let slot = OWN_SMP.mailbox.start + 0x40;
    m.load(slot, &2u64.to_le_bytes()); // Done
    m.load(slot + 0x10, &9u64.to_le_bytes()); // count
    m.load(slot + 0x18, &0b110u64.to_le_bytes()); // segments 1 and 2
    for i in 0..8u64 {
        let d = if i == 0 { 4 } else { u64::MAX };
        m.load(slot + 0x20 + 8 * i, &d.to_le_bytes());
    }
    let f = crate::smp::tests_read_result(&mut m, &OWN_SMP, &p);
    assert_eq!((f.count, f.segments), (9, 0b110));
    assert_eq!(f.first[0].map(|c| (c.segment, c.digest)), Some((2, 4)));
    assert!(f.first[1].is_none());
}

#[test]
fn a_secondary_sets_exactly_the_bits_the_boot_cpu_does() {
    // PSCI starts a CPU with its MMU off; the cache enables are taken as
    // they come.
    for extra in [0, SCTLR_I, SCTLR_C, SCTLR_I | SCTLR_C] {
        let (mut m, p) = smp_setup(1);
        let start = 0x30c5_0830 | SCTLR_A | SCTLR_WXN | extra;
        world_mut(&mut m).sctlr = Some(start);
        handoff(&mut m, &p, &OWN_SMP);
        let writes: Vec<u64> = world(&m).runs[0]
            .2
            .iter()
            .filter_map(|e| match e {
                Ev::SetSctlr(v) => Some(*v),
                _ => None,
            })
            .collect();
        let on = (start | SCTLR_M | SCTLR_C | SCTLR_I) & !(SCTLR_A | SCTLR_WXN);
        assert_eq!(
            writes,
            [on, on & !(SCTLR_M | SCTLR_C | SCTLR_I)],
            "{extra:#x}"
        );
    }
}

#[test]
fn with_a_clock_the_boot_cpu_waits_ten_seconds_without_progress() {
    // Every clock read 1 ms later: a CPU that never turns off is given up
    // after 10 s of polls, one clock read each.
    let (mut m, p) = smp_setup(2);
    m.clock = Some((0, 1_000_000));
    world_mut(&mut m).stuck.insert(2);
    let out = handoff(&mut m, &p, &OWN_SMP);
    assert!(matches!(
        out,
        Outcome::Parked((), Failure::SecondaryStillOn(2))
    ));
    let polls =
        m.ev.iter()
            .filter(|e| **e == Ev::Psci(PSCI_AFFINITY_INFO_64, [2, 0, 0]))
            .count();
    assert_eq!(polls, 10_001);

    // A slow CPU whose progress moves is waited for past 10 s.
    let (mut m, p) = smp_setup(2);
    m.clock = Some((0, 1_000_000));
    let w = world_mut(&mut m);
    w.slow = true;
    w.progressing = 15_000;
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    assert!(m.out.contains("hashed on 3 CPUs"), "{}", m.out);
    assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[3]]);
}

#[test]
fn a_cpu_found_off_without_a_result_has_its_share_hashed_by_the_boot_cpu() {
    let (mut m, p) = smp_setup(2);
    // CPU 1 is reported OFF at once and never wrote its state.
    let w = world_mut(&mut m);
    w.refuse.insert(1, PSCI_SUCCESS);
    w.off.insert(1);
    assert!(matches!(
        handoff(&mut m, &p, &OWN_SMP),
        Outcome::Entered(())
    ));
    assert!(m.out.contains("hashed on 2 CPUs"), "{}", m.out);
    assert_eq!(hashed(&m.ev), [CHUNKS[0], CHUNKS[3], CHUNKS[1], CHUNKS[4]]);
}

#[test]
fn a_cpu_that_never_runs_nor_turns_off_is_given_up_on() {
    // CPU_ON succeeds, the CPU never runs and stays on: after the polls
    // without progress the boot CPU hashes its share, then refuses to boot.
    let (mut m, p) = smp_setup(1);
    world_mut(&mut m).refuse.insert(1, PSCI_SUCCESS);
    let out = handoff(&mut m, &p, &OWN_SMP);
    assert!(matches!(
        out,
        Outcome::Parked((), Failure::SecondaryStillOn(1))
    ));
    assert_eq!(hashed(&m.ev).len(), 5);
    let polls =
        m.ev.iter()
            .filter(|e| **e == Ev::Psci(PSCI_AFFINITY_INFO_64, [1, 0, 0]))
            .count();
    assert_eq!(polls as u64, 2 * (SECONDARY_STALL_POLLS + 1));
}

//! Host tests of a secondary CPU's own decisions ([`crate::smp::secondary`]
//! run alone on a mailbox written by hand) and of the PSCI conduit rule.

extern crate std;

use crate::smp::*;
use crate::tests::{Ev, Mock};
use crate::tests_smp::{hashed, psci, smp_setup, OWN_SMP};
use crate::*;

/// Runs the secondary of `slot` directly, on a mailbox written by hand
/// (`regime` code, `shares`), with `mailbox_len` bytes of mailbox.
fn secondary_alone(p: &HandoffParams, slot: usize, shares: u64, mailbox_len: u64) -> Mock {
    let (boot, _) = smp_setup(2);
    let mut cpu = Mock::new(64);
    cpu.firmware = Some(psci);
    cpu.mem = boot.mem;
    cpu.nc = std::vec![OWN_SMP.mailbox];
    let mb = OWN_SMP.mailbox.start;
    cpu.load(mb + 0x18, &1u64.to_le_bytes()); // EL2, the mock's regime
    cpu.load(mb + 0x20, &shares.to_le_bytes());
    let own = PurgatoryMemory {
        mailbox: MemRange::new(mb, mailbox_len),
        ..OWN_SMP
    };
    crate::smp::secondary(&mut cpu, p, &own, slot);
    cpu
}

#[test]
fn a_secondary_declines_what_it_cannot_use() {
    let (_, p) = smp_setup(2);
    let state = |m: &Mock, slot: u64| {
        let b = m.bytes(OWN_SMP.mailbox.start + 0x40 + 0x80 * slot, 8);
        u64::from_le_bytes(b.try_into().unwrap())
    };
    let hashed_any = |m: &Mock| {
        m.ev.iter()
            .any(|e| matches!(e, Ev::Sha(..) | Ev::SetSctlr(_)))
    };
    let ends_off = |m: &Mock| m.ev.ends_with(&[Ev::Psci(PSCI_CPU_OFF, [0; 3]), Ev::Park]);
    // Contrast: slot 1 of 3 shares hashes and is done.
    let ok = secondary_alone(&p, 1, 3, MAILBOX_SIZE);
    assert!(hashed_any(&ok) && ends_off(&ok));
    assert_eq!(state(&ok, 1), 2);
    // A slot past the header's list; shares the header does not make.
    for (slot, shares) in [(2, 3), (1, 2), (1, 4)] {
        let m = secondary_alone(&p, slot, shares, MAILBOX_SIZE);
        assert!(!hashed_any(&m) && ends_off(&m), "{slot} {shares}");
        assert_eq!(state(&m, slot as u64), 3, "{slot} {shares}");
    }
    // A mailbox too short: nothing written at all.
    let m = secondary_alone(&p, 1, 3, MAILBOX_SIZE - 1);
    assert!(!hashed_any(&m) && ends_off(&m));
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Write(_))));
    // A header it cannot use (the digest count is wrong).
    let mut bad = p.clone();
    bad.nr_digests += 1;
    let m = secondary_alone(&bad, 1, 3, MAILBOX_SIZE);
    assert!(!hashed_any(&m) && ends_off(&m));
    assert_eq!(state(&m, 1), 3);
    // A slot past every slot: nothing written.
    let m = secondary_alone(&p, MAX_SECONDARIES, 3, MAILBOX_SIZE);
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Write(_))) && ends_off(&m));
}

#[test]
fn only_a_conduit_that_reaches_the_firmware_is_used() {
    use crate::smp::reaches_firmware;
    // HVC is taken to EL2 (the Arm ARM's HVC): from EL2 it would reach our
    // own vectors; SMC reaches EL3 from both; no conduit reaches nothing.
    for (conduit, regime, want) in [
        (Conduit::Hvc, Regime::El1, true),
        (Conduit::Hvc, Regime::El2, false),
        (Conduit::Hvc, Regime::El2Host, false),
        (Conduit::Smc, Regime::El1, true),
        (Conduit::Smc, Regime::El2, true),
        (Conduit::Smc, Regime::El2Host, true),
        (Conduit::None, Regime::El1, false),
        (Conduit::None, Regime::El2, false),
    ] {
        assert_eq!(
            reaches_firmware(conduit, regime),
            want,
            "{conduit:?} {regime:?}"
        );
    }
    // The boot CPU at EL2 with HVC: no PSCI call at all, every chunk its own.
    for regime in [Regime::El2, Regime::El2Host] {
        let (mut m, mut p) = smp_setup(2);
        p.psci = Conduit::Hvc;
        m.regime = regime;
        assert!(matches!(
            handoff(&mut m, &p, &OWN_SMP),
            Outcome::Entered(())
        ));
        assert!(
            !m.ev.iter().any(|e| matches!(e, Ev::Psci(..))),
            "{regime:?}"
        );
        assert_eq!(hashed(&m.ev).len(), 5);
    }
    // A secondary at EL2 with a header that says HVC: it turns off without
    // a CPU_OFF that would reach its own vectors, parking instead.
    let (_, mut p) = smp_setup(2);
    p.psci = Conduit::Hvc;
    let m = secondary_alone(&p, 0, 1, MAILBOX_SIZE);
    assert!(!m.ev.iter().any(|e| matches!(e, Ev::Psci(..))));
    assert_eq!(m.ev.last(), Some(&Ev::Park));
}

#[test]
fn a_secondary_declines_shares_that_leave_it_none() {
    let (_, p) = smp_setup(2);
    // One share (the boot CPU's alone) or none: no slot has a share.
    for (slot, shares) in [(0, 1), (0, 0)] {
        let m = secondary_alone(&p, slot, shares, MAILBOX_SIZE);
        assert!(
            !m.ev
                .iter()
                .any(|e| matches!(e, Ev::Sha(..) | Ev::SetSctlr(_))),
            "{slot} {shares}"
        );
        assert_eq!(m.ev.last(), Some(&Ev::Park));
    }
    // Two shares (one other CPU): slot 0 hashes.
    let m = secondary_alone(&p, 0, 2, MAILBOX_SIZE);
    assert!(m.ev.iter().any(|e| matches!(e, Ev::Sha(..))));
}

#[test]
fn a_secondarys_progress_counts_the_chunks_it_hashed() {
    // Share 1 of 2 of the five chunks: digests 1 and 3. The boot CPU gives
    // up on a CPU whose progress does not move, so it must count.
    let (_, p) = smp_setup(2);
    let m = secondary_alone(&p, 0, 2, MAILBOX_SIZE);
    let b = m.bytes(OWN_SMP.mailbox.start + 0x40 + 0x08, 8);
    assert_eq!(u64::from_le_bytes(b.try_into().unwrap()), 2);
    assert_eq!(hashed(&m.ev).len(), 2);
}

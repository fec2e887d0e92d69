//! What `model_link.rs` runs and what it accepts untaken: the model's
//! configurations (plans, entries, regimes, flags, CPUs) and the
//! transitions of the binary's languages no run can take, each with why.

use cachesim::relocate::RelocStyle;
use cachesim::sim::{SecondaryRun, SmpOptions};
use cachesim::{Scenario, SimOptions, SimPlan, SimSegment};
use handoff::params::MAX_SECONDARIES;
use handoff::{Conduit, Flags, Regime};

/// Transitions of the secondary CPUs' language (from
/// `purgatory_secondary_entry`) that no model run takes, as [`INFEASIBLE`].
pub const INFEASIBLE_SECONDARY: &[(&str, &str, usize, &str)] = &[
    (
        "msr cptr_el2@purgatory_secondary_entry",
        "msr vbar_el1@purgatory_secondary_entry",
        1,
        "as the boot CPU's entry code: CurrentEL tested twice, at EL2 both tests take the EL2 \
         side",
    ),
    (
        "msr ttbr0_el2@smp::secondary",
        "tlbi vmalle1@smp::secondary",
        1,
        "as on the boot CPU: the translation registers are chosen by the regime, the TLBI by \
         the EL, both read once",
    ),
    (
        "msr ttbr0_el1@smp::secondary",
        "tlbi alle2@smp::secondary",
        1,
        "as the previous entry, at EL1",
    ),
    (
        "isb@smp::secondary",
        "mrs sctlr_el1@smp::secondary",
        1,
        "the caches turned on at EL2, off at EL1 (with no chunk hashed between): one EL per \
         run",
    ),
    (
        "isb@smp::secondary",
        "mrs sctlr_el2@smp::secondary",
        1,
        "as the previous entry, on at EL1, off at EL2",
    ),
    (
        "mrs currentel@purgatory_secondary",
        "smc #0@smp::cpu_off",
        1,
        "declining without writing its state (the compiler merged that CPU_OFF call with the \
         one after Done): only for a context id of 7 or more, which the entry code parks \
         before, or a mailbox shorter than MAILBOX_SIZE, which link.ld rules out",
    ),
    (
        "mrs currentel@purgatory_secondary",
        "hvc #0@smp::cpu_off",
        1,
        "as the previous entry, by HVC",
    ),
    (
        "mrs hcr_el2@purgatory_secondary",
        "smc #0@smp::cpu_off",
        1,
        "as the previous entries, at EL2",
    ),
    (
        "mrs hcr_el2@purgatory_secondary",
        "hvc #0@smp::cpu_off",
        1,
        "as the previous entries, at EL2 by HVC",
    ),
    (
        "dsb sy@smp::secondary",
        "hvc #0@smp::cpu_off",
        1,
        "a CPU that declined turns off by HVC: with HVC the boot CPU is at EL1 \
         (smp::reaches_firmware), and a CPU declines only in another regime than the boot \
         CPU's (the header and mailbox it checks are the boot CPU's, validated and written \
         before CPU_ON), so at EL2, where it makes no HVC and parks",
    ),
];

/// Transitions of the binary's language that no model run takes:
/// `(from, to, how many, why no run can)`, each end named by model_link.rs's
/// `key` (`letter@function`). Exact: a different count of untaken transitions
/// between those two fails the test.
pub const INFEASIBLE: &[(&str, &str, usize, &str)] = &[
    (
        "msr cptr_el2@_start",
        "msr vbar_el1@_start",
        1,
        "the entry code tests CurrentEL twice (FP enable, then VBAR): at EL2 both tests \
         take the EL2 side",
    ),
    (
        "msr ttbr0_el2@handoff",
        "tlbi vmalle1@handoff",
        1,
        "the translation registers are chosen by the regime, the TLBI by the EL, both read \
         once by Cpu::new: EL2 registers come with the EL2 TLBI",
    ),
    (
        "msr ttbr0_el1@handoff",
        "tlbi alle2@handoff",
        1,
        "as the previous entry, at EL1",
    ),
    (
        "isb@handoff",
        "mrs sctlr_el1@handoff",
        1,
        "the caches turned on at EL2, off at EL1 (with no segment hashed between): one EL \
         per run",
    ),
    (
        "isb@handoff",
        "mrs sctlr_el2@handoff",
        1,
        "as the previous entry, on at EL1, off at EL2",
    ),
    (
        "mrs ctr_el0@handoff",
        "mrs ctr_el0@handoff",
        4,
        "an empty page-table pool, stack or image range (each DC loop is skipped when its \
         range is empty), the image's to the first segment's or, with no segments, to the \
         digest table's: link.ld gives all three a fixed, non-zero size",
    ),
    (
        "mrs ctr_el0@handoff",
        "dsb sy@handoff",
        2,
        "an empty digest table (its DC loop skipped), on the caches-on path and on the \
         fallback's (clean_for_caches_off): with verification on, the table has a digest per \
         chunk, so it is empty only when no segment has a byte; no loader writes that (a plan \
         always has the kernel) and the model cannot run one (it enters the kernel)",
    ),
    (
        "mrs id_aa64mmfr0_el1@handoff",
        "mrs ctr_el0@handoff",
        1,
        "the tables did not fit and no segment has a byte: clean_for_caches_off straight to \
         the digest table's loop; no loader writes such a header (as above)",
    ),
    (
        "dc civac@handoff",
        "mrs ctr_el0@handoff",
        1,
        "the image cleaned, then no segments: straight to the digest table's loop; the \
         purgatory accepts a header with none, but no loader writes one (as above)",
    ),
    (
        "hvc #0@smp::verify_all",
        "mrs sctlr_el2@handoff",
        11,
        "a PSCI call by HVC, then the caches turned off at EL2: HVC is made only at EL1 \
         (smp::reaches_firmware), and the EL is read once (Cpu::new)",
    ),
    (
        "mrs cntfrq_el0@smp::verify_all",
        "mrs sctlr_el1@handoff",
        6,
        "a clock read in verify_all, then it returns: the clock is read only while waiting \
         for a CPU the boot CPU started, and wait_until_off then asks AFFINITY_INFO about \
         that CPU (an HVC or SMC) before verify_all returns, unless that wait gave up (its \
         last clock read), after which the handoff parks (SecondaryStillOn), never reaching \
         the branch",
    ),
    (
        "mrs cntfrq_el0@smp::verify_all",
        "mrs sctlr_el2@handoff",
        6,
        "as the previous entry, at EL2",
    ),
    (
        "dsb sy@smp::verify_all",
        "mrs sctlr_el1@handoff",
        1,
        "the DSB after a slot was found Done, then verify_all returns: that CPU was started, \
         so wait_until_off asks AFFINITY_INFO about it first",
    ),
    (
        "dsb sy@smp::verify_all",
        "mrs sctlr_el2@handoff",
        1,
        "as the previous entry, at EL2",
    ),
    (
        "smc #0@smp::verify_all",
        "mrs cntvct_el0@smp::verify_all",
        5,
        "a CPU_ON (the unrolled calls for the 3rd to 7th CPU), then wait_until_off's first \
         clock read with nothing between: wait_until_off waits only for a CPU that was \
         started, and the loop over the slots before it waited for that CPU first \
         (wait_until_finished reads the clock)",
    ),
    (
        "hvc #0@smp::verify_all",
        "mrs cntvct_el0@smp::verify_all",
        5,
        "as the previous entry, by HVC",
    ),
    (
        "mrs id_aa64isar0_el1@Cpu::sha256",
        "mrs cntvct_el0@smp::verify_all",
        1,
        "the boot CPU's own share hashed, then wait_until_off's first clock read: as the \
         previous entries, the loop over the slots waited for that CPU first",
    ),
    (
        "mrs cntfrq_el0@handoff",
        "mrs id_aa64isar0_el1@Cpu::sha256",
        1,
        "the clock read that follows choosing the software engine (FORCE_SOFT_SHA256; the \
         compiler keeps a copy of that read for it), then a hash with the SHA2 instructions: \
         the engine is chosen once",
    ),
];

/// The plans the model runs: the campaigns' `tiny` plan; one with empty
/// segments (an empty segment's DC loop is skipped); one whose page tables
/// do not fit the purgatory's pool (enable_caches gives up and the
/// segments are hashed with the caches off).
fn plans() -> Vec<(&'static str, SimPlan)> {
    let empty = |addr| SimSegment {
        addr,
        bytes: Vec::new(),
    };
    let mut with_empty = SimPlan::tiny();
    with_empty.segments.insert(1, empty(0x4900_0000));
    with_empty.segments.push(empty(0x4a00_0000));
    let mut scattered = SimPlan::tiny();
    // Each in its own 512 GiB: a level 1, 2 and 3 table apiece.
    for i in 1..4u64 {
        scattered
            .segments
            .push(SimSegment::generated(i << 39, 256, i));
    }
    // Both: the fallback's segment loop skips an empty segment too.
    let mut both = scattered.clone();
    both.segments.insert(1, empty(0x4900_0000));
    both.segments.push(empty(0x4a00_0000));
    vec![
        ("tiny", SimPlan::tiny()),
        ("empty segments", with_empty),
        ("tables do not fit", scattered),
        ("empty segments, tables do not fit", both),
    ]
}

/// The plan of the runs with secondaries: the tiny plan and four more
/// pages, 7 chunks in all (two or three per share with three CPUs, fewer
/// than the shares with eight).
fn smp_plan() -> SimPlan {
    let mut plan = SimPlan::tiny();
    plan.segments
        .push(SimSegment::generated(0x4810_1000, 4 * 4096, 4));
    plan
}

/// Every configuration of the purgatory the model runs: plan, entry,
/// regime, SHA2 instructions, flags (every combination of the three).
pub fn configurations() -> Vec<(String, SimPlan, SimOptions)> {
    let mut out = Vec::new();
    for (pname, plan) in plans() {
        for (entry, scenario) in [
            ("kexec_load", Scenario::KexecLoad(RelocStyle::MmuOn)),
            ("crash", Scenario::PurgatoryOnly),
        ] {
            for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
                for sha2 in [false, true] {
                    for flags in 0..=Flags::ALL {
                        if pname != "tiny" && (flags != 0 || entry != "kexec_load") {
                            continue;
                        }
                        let name = format!(
                            "{pname}, {entry}, {regime:?}, {}, flags {flags:#x}",
                            if sha2 { "sha2" } else { "no sha2" }
                        );
                        let opts = SimOptions {
                            scenario,
                            flags,
                            regime: Some(regime),
                            sha2_instructions: Some(sha2),
                            ..SimOptions::default()
                        };
                        out.push((name, plan.clone(), opts));
                    }
                }
            }
        }
    }
    // Hashing on secondaries ([`smp_plan`]; SHA2 instructions or not, and
    // the software engine forced): every conduit that reaches the firmware
    // from the regime (HVC at EL1, SMC at either); the header naming the
    // boot CPU too (as the loader does) or not; secondaries run at their
    // CPU_ON or while the boot CPU waits, one that never comes up, one that
    // comes up only after the boot CPU gave up waiting for it, one that
    // declines (another regime), PSCI 0.1, 1 to 7 others up or missing,
    // and a header that names the boot CPU alone.
    // With a clock of a second a read, the boot CPU gives up waiting after
    // about ten polls: the late CPU comes up at the 20th AFFINITY_INFO.
    let late = 20;
    for (entry, scenario) in [
        ("kexec_load", Scenario::KexecLoad(RelocStyle::MmuOn)),
        ("crash", Scenario::PurgatoryOnly),
    ] {
        for regime in [Regime::El1, Regime::El2, Regime::El2Host] {
            let conduits: &[Conduit] = match regime {
                Regime::El1 => &[Conduit::Hvc, Conduit::Smc],
                Regime::El2 | Regime::El2Host => &[Conduit::Smc],
            };
            // A secondary in another regime: EL2 at EL1 (with SMC: with
            // HVC it could not turn off); EL1, or E2H set or not, at EL2.
            let others: &[Regime] = match regime {
                Regime::El1 => &[Regime::El2],
                Regime::El2 => &[Regime::El2Host, Regime::El1],
                Regime::El2Host => &[Regime::El2, Regime::El1],
            };
            for &conduit in conduits {
                for (sha2, flags) in [(false, 0), (true, 0), (true, Flags::FORCE_SOFT_SHA256)] {
                    let base = SmpOptions {
                        conduit,
                        run: SecondaryRun::AtCpuOn,
                        ..SmpOptions::for_regime(2, regime)
                    };
                    let cases = vec![
                        ("2 at CPU_ON", base),
                        (
                            "boot CPU not listed",
                            SmpOptions {
                                boot_listed: false,
                                ..base
                            },
                        ),
                        (
                            "2 waited for",
                            SmpOptions {
                                run: SecondaryRun::AtAffinityInfo(3),
                                ..base
                            },
                        ),
                        (
                            "2 done after the wait's answer",
                            SmpOptions {
                                run: SecondaryRun::AfterAffinityInfo(2),
                                ..base
                            },
                        ),
                        (
                            "never up",
                            SmpOptions {
                                run: SecondaryRun::Never,
                                ..base
                            },
                        ),
                        (
                            "1 and a missing CPU",
                            SmpOptions {
                                secondaries: 1,
                                missing: 1,
                                ..base
                            },
                        ),
                        (
                            "up after the wait",
                            SmpOptions {
                                secondaries: 1,
                                run: SecondaryRun::AtAffinityInfo(late),
                                ..base
                            },
                        ),
                        (
                            "PSCI 0.1",
                            SmpOptions {
                                psci_version: 0x1,
                                ..base
                            },
                        ),
                        (
                            "the boot CPU alone",
                            SmpOptions {
                                secondaries: 0,
                                ..base
                            },
                        ),
                    ];
                    let mut cases: Vec<(String, SmpOptions)> =
                        cases.into_iter().map(|(w, o)| (w.to_owned(), o)).collect();
                    // 1 to 7 others, the header naming only them: each
                    // number of CPU_ON calls, with every CPU up, and with
                    // none there (every share the boot CPU's; with 7 more
                    // shares than the plan has chunks).
                    for k in 1..=MAX_SECONDARIES {
                        let only = SmpOptions {
                            boot_listed: false,
                            ..base
                        };
                        cases.push((
                            format!("{k} at CPU_ON, the boot CPU not listed"),
                            SmpOptions {
                                secondaries: k,
                                ..only
                            },
                        ));
                        cases.push((
                            format!("{k} missing"),
                            SmpOptions {
                                secondaries: 0,
                                missing: k,
                                ..only
                            },
                        ));
                        if k > 1 {
                            cases.push((
                                format!("{k}, the first missing"),
                                SmpOptions {
                                    secondaries: k - 1,
                                    missing: 1,
                                    missing_first: true,
                                    ..only
                                },
                            ));
                        }
                    }
                    if conduit == Conduit::Smc {
                        for &other in others {
                            cases.push((
                                format!("declining ({other:?})"),
                                SmpOptions {
                                    secondary_regime: Some(other),
                                    ..base
                                },
                            ));
                        }
                    }
                    for (what, smp) in cases {
                        let name = format!(
                            "tiny, {entry}, {regime:?}, {}, flags {flags:#x}, smp {conduit:?} \
                             {what}",
                            if sha2 { "sha2" } else { "no sha2" }
                        );
                        let opts = SimOptions {
                            scenario,
                            flags,
                            regime: Some(regime),
                            sha2_instructions: Some(sha2),
                            smp: Some(smp),
                            clock_step_ns: (what == "up after the wait").then_some(1_000_000_000),
                            ..SimOptions::default()
                        };
                        out.push((name, smp_plan(), opts));
                    }
                }
            }
        }
    }
    out
}

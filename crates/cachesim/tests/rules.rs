//! Every rule of `cachesim::check` can fail: for each [`Rule`] a replay (a
//! wrong purgatory, a mutant of the real handoff, or a machine state
//! tampered with after a correct handoff) that the checks report as exactly
//! that rule at exactly that place, and a control (the correct code on the
//! same configuration, options and seeds) that passes.
//!
//! The plan is [`SimPlan::small`]: kernel at 0x4020_0000 (8 KiB once
//! padded), DTB at 0x4800_0000, initrd at 0x4810_0000; the purgatory's image
//! page at 0x4840_0000, its tables after it, its stack page at 0x4840_9000
//! (the modelled frame is its top 128 bytes, from 0x4840_9f80).

use cachesim::check::Location;
use cachesim::mutant::{Mutant, Mutation, OpKind};
use cachesim::sim::{
    real_handoff, real_relocate, run_with, secondary_mpidr, SecondaryRun, SimCpu, SmpOptions,
};
use cachesim::{CacheConfig, Level, Rule, Scenario, SimOptions, SimPlan, Violation};
use handoff::maint::{
    clean_invalidate_range_to_poc, clean_range_to_poc, invalidate_icache_range,
    invalidate_range_to_poc,
};
use handoff::smp::PSCI_CPU_ON_64;
use handoff::{HandoffParams, Machine, PurgatoryMemory, Regime};

const KERNEL: u64 = 0x4020_0000;
const DTB: u64 = 0x4800_0000;
const PURGATORY_IMAGE: u64 = 0x4840_0000;
const STACK_FRAME: u64 = 0x4840_9f80;
/// With a secondary: its frame's first line. Slot 0's stack is the page
/// after the pool (0x4840_9000; the boot CPU's is above the seven
/// secondaries'), its frame the top 128 bytes of it.
const SECONDARY_FRAME_LINE: u64 = 0x4840_9f80;

/// Seeds each replay and its control run (the replay reports its first
/// violation).
const SEEDS: std::ops::Range<u64> = 0..12;

type Purgatory = fn(&mut Mutant<SimCpu>, &HandoffParams, &PurgatoryMemory);

/// The code a replay runs.
#[derive(Clone, Copy)]
enum Code {
    /// This purgatory instead of the real handoff.
    Purgatory(Purgatory),
    /// The real handoff with its `n`th site of the purgatory phase (which
    /// must be a `kind`) mutated.
    Mutant(usize, OpKind, Mutation),
    /// The real handoff with the `n`th site of its secondary CPU's run
    /// (phase "secondary", which must be a `kind`) mutated.
    Secondary(usize, OpKind, Mutation),
}

/// One rule shown failing.
struct Replay {
    /// What is wrong.
    what: &'static str,
    config: &'static str,
    opts: SimOptions,
    bad: Code,
    /// The correct version of `bad`.
    good: Purgatory,
    /// The first offending address of the first failing seed (the runs
    /// are deterministic: splitmix64 seeds).
    addr: Option<u64>,
    location: Location,
}

fn purgatory_only() -> SimOptions {
    SimOptions {
        scenario: Scenario::PurgatoryOnly,
        ..SimOptions::default()
    }
}

/// [`purgatory_only`] at EL1 with one secondary CPU (MPIDR 1) on the HVC
/// conduit, run inside its `CPU_ON` (every seed: a mutant's site is found
/// by its place in the run).
fn with_a_secondary() -> SimOptions {
    SimOptions {
        regime: Some(Regime::El1),
        smp: Some(SmpOptions {
            run: SecondaryRun::AtCpuOn,
            ..SmpOptions::for_regime(1, Regime::El1)
        }),
        ..purgatory_only()
    }
}

/// A minimal correct purgatory without verification: clean+invalidate the
/// segments to the PoC, invalidate the I-cache, enter.
fn minimal(cpu: &mut Mutant<SimCpu>, p: &HandoffParams, _own: &PurgatoryMemory) {
    for s in p.segments() {
        clean_invalidate_range_to_poc(cpu, s.addr, s.len);
    }
    cpu.dsb_sy();
    cpu.ic_iallu();
    cpu.dsb_sy();
    cpu.isb();
    cpu.enter_kernel(p.entry, p.dtb);
}

/// The replay of `rule`. No wildcard: a new rule does not compile until it
/// has one.
fn replay(rule: Rule) -> Replay {
    let po = purgatory_only();
    match rule {
        Rule::NotAtPoc => Replay {
            what: "DC IVAC where DC CIVAC was needed: the newest data, in a dirty line, is \
                   discarded (the ThunderX2 hang)",
            config: "tx2-slc",
            opts: po,
            bad: Code::Purgatory(|cpu, p, _| {
                for s in p.segments() {
                    invalidate_range_to_poc(cpu, s.addr, s.len);
                }
                cpu.dsb_sy();
                cpu.ic_iallu();
                cpu.dsb_sy();
                cpu.isb();
                cpu.enter_kernel(p.entry, p.dtb);
            }),
            good: minimal,
            // The kernel's second line (seed 0).
            addr: Some(KERNEL + 0x40),
            location: Location::Dram,
        },
        Rule::DirtyLine => Replay {
            what: "tampered: after a correct handoff, L2 holds a dirty line over the DTB (with \
                   the intended bytes, so DRAM is right too)",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, own| {
                real_handoff(cpu, p, own);
                let m = &mut cpu.inner_mut().memory;
                let mut line = [0u8; 64];
                m.dram_read(DTB + 0x40, &mut line);
                m.seed_dline(Level::L2, DTB + 0x40, true, &line);
            }),
            good: real_handoff,
            addr: Some(DTB + 0x40),
            location: Location::Data(Level::L2),
        },
        Rule::StaleCleanLine => Replay {
            what: "DC CVAC where DC CIVAC was needed: the stale clean lines a copy with the \
                   caches off left behind stay",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, _| {
                for s in p.segments() {
                    clean_range_to_poc(cpu, s.addr, s.len);
                }
                cpu.dsb_sy();
                cpu.ic_iallu();
                cpu.dsb_sy();
                cpu.isb();
                cpu.enter_kernel(p.entry, p.dtb);
            }),
            good: minimal,
            // A line in the kernel's first page (seed 0).
            addr: Some(KERNEL + 0x4c0),
            location: Location::Data(Level::L1),
        },
        Rule::StaleICache => Replay {
            what: "the I-cache invalidated over the wrong range (the kernel's first page only; \
                   the bug class of Linux d51c214541c5)",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, _| {
                for s in p.segments() {
                    clean_invalidate_range_to_poc(cpu, s.addr, s.len);
                }
                cpu.dsb_sy();
                invalidate_icache_range(cpu, p.entry, 0x1000);
                cpu.dsb_sy();
                cpu.isb();
                cpu.enter_kernel(p.entry, p.dtb);
            }),
            good: minimal,
            // The first line past the invalidated page.
            addr: Some(KERNEL + 0x1000),
            location: Location::ICache(0),
        },
        Rule::StaleFetchBuffer => Replay {
            what: "no ISB after the I-cache invalidation: instructions fetched ahead before it \
                   are used",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, _| {
                for s in p.segments() {
                    clean_invalidate_range_to_poc(cpu, s.addr, s.len);
                }
                cpu.dsb_sy();
                cpu.ic_iallu();
                cpu.dsb_sy();
                cpu.enter_kernel(p.entry, p.dtb);
            }),
            good: minimal,
            // A line of the kernel's first page fetched ahead (seed 0).
            addr: Some(KERNEL),
            location: Location::FetchBuffer,
        },
        Rule::StaleCodeExecuted => Replay {
            what: "the handoff without its DC CIVAC of its own image: a stale clean line over \
                   it is fetched as code once SCTLR.I is set",
            config: "a53-vipt",
            opts: po,
            bad: Code::Mutant(2, OpKind::DcCivac, Mutation::Remove),
            good: real_handoff,
            // A line of the purgatory's image (seed 4; the adversary's draws
            // moved when the model's purgatory gained its digest table).
            addr: Some(PURGATORY_IMAGE + 0x4c0),
            location: Location::ICache(0),
        },
        Rule::MmuOn => Replay {
            what: "the handoff without `disable_caches`: the kernel is entered with the MMU \
                   and caches on",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, own| {
                let table = handoff::digest_table(p, own).expect("table");
                assert!(handoff::enable_caches(cpu, p, own, table).is_some());
                cpu.enter_kernel(p.entry, p.dtb);
            }),
            good: real_handoff,
            addr: None,
            location: Location::Register,
        },
        Rule::SctlrNotSynchronised => Replay {
            what: "the handoff without the ISB after the MSR that turns the MMU off",
            config: "a57-like",
            opts: po,
            bad: Code::Mutant(17, OpKind::Isb, Mutation::Remove),
            good: real_handoff,
            addr: None,
            location: Location::Register,
        },
        Rule::BootRegisters => Replay {
            what: "the DTB address not passed: x0 = 0",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, own| {
                let mut q = p.clone();
                q.dtb = 0;
                minimal(cpu, &q, own);
            }),
            good: minimal,
            addr: None,
            location: Location::Register,
        },
        Rule::VerificationFailed => Replay {
            what: "the handoff without its clean+invalidate of the DTB before hashing it: it \
                   hashes stale bytes and parks",
            config: "a57-like",
            opts: po,
            bad: Code::Mutant(4, OpKind::DcCivac, Mutation::Remove),
            good: real_handoff,
            addr: Some(DTB),
            location: Location::Dram,
        },
        Rule::CachesNotOn => Replay {
            what: "the handoff without the ISB after the MSR that turns the caches on: it \
                   hashes the kernel before the write takes effect",
            config: "a57-like",
            opts: po,
            bad: Code::Mutant(14, OpKind::Isb, Mutation::Remove),
            good: real_handoff,
            addr: Some(KERNEL),
            location: Location::Register,
        },
        Rule::StackCorrupted => Replay {
            what: "the handoff without its TLBI: the old kernel's TLB entries map the stack \
                   write-back, and a frame written through them is lost once the MMU is off",
            config: "a57-like",
            opts: po,
            bad: Code::Mutant(10, OpKind::TlbiAll, Mutation::Remove),
            good: real_handoff,
            // The frame's first byte.
            addr: Some(STACK_FRAME),
            location: Location::Dram,
        },
        Rule::SecondaryDirtyLine => Replay {
            what: "the secondary CPU's run without its TLBI: the old kernel's TLB entries map \
                   its stack and mailbox write-back, and what it writes there stays dirty",
            config: "a57-like",
            opts: with_a_secondary(),
            bad: Code::Secondary(2, OpKind::TlbiAll, Mutation::Remove),
            good: real_handoff,
            addr: Some(SECONDARY_FRAME_LINE),
            location: Location::Data(Level::L1),
        },
        Rule::SecondaryStillOn => Replay {
            what: "a secondary started (with a slot its entry code parks for: no stack) and the \
                   kernel entered without waiting for it to turn off",
            config: "a57-like",
            opts: with_a_secondary(),
            bad: Code::Purgatory(|cpu, p, own| {
                let entry = cpu.secondary_entry();
                // CPU_ON hands memory over: the entry state's stores first.
                cpu.dsb_sy();
                cpu.psci(p.psci, PSCI_CPU_ON_64, [secondary_mpidr(1), entry, 9]);
                minimal(cpu, p, own);
            }),
            good: real_handoff,
            addr: None,
            location: Location::Register,
        },
        Rule::Fault => Replay {
            what: "DC ZVA with the MMU off (zeroing the kernel's first line)",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, own| {
                cpu.inner_mut().dc_zva(p.entry);
                minimal(cpu, p, own);
            }),
            good: minimal,
            addr: Some(KERNEL),
            location: Location::Register,
        },
        Rule::NoEntry => Replay {
            what: "a branch to the wrong entry point (one page past it)",
            config: "a57-like",
            opts: po,
            bad: Code::Purgatory(|cpu, p, own| {
                let mut q = p.clone();
                q.entry += 0x1000;
                minimal(cpu, &q, own);
            }),
            good: minimal,
            addr: None,
            location: Location::Register,
        },
    }
}

fn cfg(name: &str) -> CacheConfig {
    CacheConfig::named(name).expect("named config")
}

/// The first violation of `code` over [`SEEDS`].
fn first_violation(config: &CacheConfig, opts: &SimOptions, code: Code) -> Option<Violation> {
    let plan = SimPlan::small();
    let (mut purgatory, mutation): (Purgatory, _) = match code {
        Code::Purgatory(f) => (f, None),
        Code::Mutant(n, kind, mu) | Code::Secondary(n, kind, mu) => {
            let phase = if matches!(code, Code::Mutant(..)) {
                "purgatory"
            } else {
                "secondary"
            };
            let sites = run_with(
                &plan,
                config,
                0,
                opts,
                None,
                &mut real_relocate,
                &mut real_handoff,
            )
            .sites;
            let site = *sites
                .iter()
                .filter(|s| s.phase == phase)
                .nth(n)
                .expect("the site exists");
            assert_eq!(site.kind, kind, "site {site} is not a {kind}");
            (real_handoff as Purgatory, Some((site, mu)))
        }
    };
    SEEDS.clone().find_map(|seed| {
        let m = mutation
            .as_ref()
            .map(|(s, mu)| (std::slice::from_ref(s), *mu));
        run_with(
            &plan,
            config,
            seed,
            opts,
            m,
            &mut real_relocate,
            &mut purgatory,
        )
        .result
        .err()
    })
}

/// Run the replay of `rule` and its control.
fn check(rule: Rule) -> Result<(), String> {
    let r = replay(rule);
    let config = cfg(r.config);
    if let Some(v) = first_violation(&config, &r.opts, Code::Purgatory(r.good)) {
        return Err(format!("{rule:?}: the control (correct code) fails:\n{v}"));
    }
    let Some(v) = first_violation(&config, &r.opts, r.bad) else {
        return Err(format!("{rule:?}: not caught: {}", r.what));
    };
    if (v.rule, v.addr, v.location) != (rule, r.addr, r.location) {
        return Err(format!(
            "{rule:?} ({}): want {rule:?} at {:x?} in {}, got:\n{v}",
            r.what, r.addr, r.location
        ));
    }
    Ok(())
}

#[test]
fn every_rule_has_a_replay_and_a_control() {
    let failed: Vec<String> = Rule::ALL
        .into_iter()
        .filter_map(|rule| check(rule).err())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

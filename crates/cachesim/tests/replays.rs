//! Replays of real bug classes: each buggy variant must be caught on some
//! configuration and seed, while the correct sequence passes the same runs.

use cachesim::check::Location;
use cachesim::mutant::Mutant;
use cachesim::relocate::RelocStyle;
use cachesim::sim::{real_handoff, real_relocate, run_with, PurgatoryFn, SimCpu};
use cachesim::{CacheConfig, Level, Rule, Scenario, SetWayOp, SimOptions, SimPlan, Violation};
use handoff::maint::{
    clean_invalidate_range_to_poc, invalidate_icache_range, invalidate_range_to_poc,
};
use handoff::{HandoffParams, Machine, PurgatoryMemory};

const SEEDS: u64 = 12;

/// [`SimPlan::small`]'s kernel, and the purgatory's image page the model
/// places 2 MiB above the highest segment.
const KERNEL: u64 = 0x4020_0000;
const PURGATORY_IMAGE: u64 = 0x4840_0000;

fn purgatory_only() -> SimOptions {
    SimOptions {
        scenario: Scenario::PurgatoryOnly,
        ..SimOptions::default()
    }
}

fn cfg(name: &str) -> CacheConfig {
    CacheConfig::named(name).expect("named config")
}

/// First violation of `purg` over seeds on `config`.
fn first_violation(
    config: &CacheConfig,
    opts: &SimOptions,
    purg: &mut PurgatoryFn<'_>,
) -> Option<Violation> {
    let plan = SimPlan::small();
    (0..SEEDS).find_map(|seed| {
        run_with(&plan, config, seed, opts, None, &mut real_relocate, purg)
            .result
            .err()
    })
}

/// `v` is exactly `rule` at `addr` in `location` (the first violation of
/// the first failing seed: runs are deterministic).
fn assert_violation(v: &Violation, rule: Rule, addr: Option<u64>, location: Location) {
    assert_eq!(
        (v.rule, v.addr, v.location),
        (rule, addr, location),
        "want {rule:?} at {addr:x?} in {location}, got:\n{v}"
    );
}

fn assert_correct_passes(config: &CacheConfig, opts: &SimOptions) {
    if let Some(v) = first_violation(config, opts, &mut real_handoff) {
        panic!("the correct handoff failed:\n{v}");
    }
}

/// A minimal purgatory without verification: clean+invalidate the segments
/// to the PoC by VA, then invalidate the I-cache with `ic`, then enter.
fn minimal(
    cpu: &mut Mutant<SimCpu>,
    p: &HandoffParams,
    ic: &mut dyn FnMut(&mut Mutant<SimCpu>, &HandoffParams),
    isb: bool,
) {
    for s in p.segments() {
        clean_invalidate_range_to_poc(cpu, s.addr, s.len);
    }
    cpu.dsb_sy();
    ic(cpu, p);
    cpu.dsb_sy();
    if isb {
        cpu.isb();
    }
    cpu.enter_kernel(p.entry, p.dtb);
}

#[test]
fn minimal_purgatory_is_correct() {
    for c in CacheConfig::all_named() {
        let v = first_violation(&c, &purgatory_only(), &mut |cpu, p, _own| {
            minimal(cpu, p, &mut |cpu, _| cpu.ic_iallu(), true);
        });
        assert!(
            v.is_none(),
            "{}",
            v.map(|v| v.to_string()).unwrap_or_default()
        );
    }
}

/// Bug class of Linux commit d51c214541c5 (as cited in our brief): the
/// I-cache invalidated over the wrong range. Here: only the first page of
/// the kernel (IC IVAU), not all of it.
#[test]
fn wrong_icache_range() {
    let c = cfg("a57-like");
    let v = first_violation(&c, &purgatory_only(), &mut |cpu, p, _own| {
        minimal(
            cpu,
            p,
            &mut |cpu, p| invalidate_icache_range(cpu, p.entry, 0x1000),
            true,
        );
    })
    .expect("a wrong I-cache range must be caught");
    // A line just past the invalidated page (the control, the same code
    // with IC IALLU, is `minimal_purgatory_is_correct`).
    assert_violation(
        &v,
        Rule::StaleICache,
        Some(KERNEL + 0x1000),
        Location::ICache(0),
    );
}

/// IC IVAU over the whole kernel is still not enough with a VIPT
/// (aliasing) or ASID-tagged I-cache: lines fetched through the old
/// kernel's VAs survive; only IC IALLU removes them.
#[test]
fn icache_by_va_misses_aliases() {
    let full = |cpu: &mut Mutant<SimCpu>, p: &HandoffParams, _own: &PurgatoryMemory| {
        let k = p.segments()[0];
        minimal(
            cpu,
            p,
            &mut |cpu, _| invalidate_icache_range(cpu, k.addr, k.len),
            true,
        );
    };
    assert!(first_violation(&cfg("a57-like"), &purgatory_only(), &mut { full }).is_none());
    for (name, tag) in [("a53-vipt", 1), ("asid-tagged", 1)] {
        let v = first_violation(&cfg(name), &purgatory_only(), &mut { full })
            .expect("aliases must be caught");
        // A line of another colour / ASID (not tag 0, the one IC IVAU
        // reaches) at the kernel's entry.
        assert_violation(&v, Rule::StaleICache, Some(KERNEL), Location::ICache(tag));
    }
}

/// DC IVAC where DC CIVAC was needed (the ThunderX2 hang): the newest data
/// sits in a dirty line and is discarded. Latent on cores whose IVAC cleans
/// first (Cortex-A53/A76 TRMs); the model discards on some seeds.
#[test]
fn ivac_instead_of_civac() {
    let c = cfg("tx2-slc");
    assert_correct_passes(&c, &purgatory_only());
    let v = first_violation(&c, &purgatory_only(), &mut |cpu, p, _own| {
        for s in p.segments() {
            invalidate_range_to_poc(cpu, s.addr, s.len);
        }
        cpu.dsb_sy();
        cpu.ic_iallu();
        cpu.dsb_sy();
        cpu.isb();
        cpu.enter_kernel(p.entry, p.dtb);
    })
    .expect("IVAC instead of CIVAC must be caught");
    assert_violation(&v, Rule::NotAtPoc, Some(KERNEL + 0x40), Location::Dram);
}

/// Set/way-only cleaning: enough for the CPU's own caches, not with a
/// system cache (set/way never reaches it).
#[test]
fn set_way_only_with_system_cache() {
    let set_way = |cpu: &mut Mutant<SimCpu>, p: &HandoffParams, _own: &PurgatoryMemory| {
        cpu.inner_mut().dc_set_way_all(SetWayOp::Cisw);
        cpu.dsb_sy();
        cpu.ic_iallu();
        cpu.dsb_sy();
        cpu.isb();
        cpu.enter_kernel(p.entry, p.dtb);
    };
    // No stale clean lines in this entry state would matter for a57-like
    // only if set/way also removed them: it does (CISW), so it passes there.
    let plain = first_violation(&cfg("a57-like"), &purgatory_only(), &mut { set_way });
    assert!(
        plain.is_none(),
        "{}",
        plain.map(|v| v.to_string()).unwrap_or_default()
    );
    let v = first_violation(&cfg("tx2-slc"), &purgatory_only(), &mut { set_way })
        .expect("set/way with a system cache must be caught");
    // The newest data is left only in the system cache.
    assert_violation(
        &v,
        Rule::NotAtPoc,
        Some(KERNEL + 0x40),
        Location::Data(Level::System),
    );
}

/// Copying with the caches off without invalidating the destination first
/// (pre-5.16 relocation minus its DC IVAC): stale dirty lines of the old
/// kernel are written back over the copy.
#[test]
fn copy_with_caches_off_without_invalidate() {
    let c = cfg("a57-like");
    let pre516 = SimOptions {
        scenario: Scenario::KexecLoad(RelocStyle::MmuOffInvalidate),
        ..SimOptions::default()
    };
    assert_correct_passes(&c, &pre516);
    let buggy = SimOptions {
        scenario: Scenario::KexecLoad(RelocStyle::MmuOffNoInvalidate),
        ..SimOptions::default()
    };
    let v = first_violation(&c, &buggy, &mut real_handoff).expect("must be caught");
    // The old kernel's stale clean line over the purgatory's code, left in
    // the unified L2 (the PoU) by the copy made with the caches off: the
    // relocation's IC IALLU refills the I-cache from it and the purgatory
    // runs stale code. (With one-digest-per-segment headers the first seed
    // caught it at the kernel's first line instead, a dirty line written
    // back over the copy and hashed: VerificationFailed; the purgatory's
    // segment grew by its digest table, which moves the adversary's draws.)
    assert_violation(
        &v,
        Rule::StaleCodeExecuted,
        Some(PURGATORY_IMAGE + 0xb40),
        Location::ICache(0),
    );
}

/// No ISB after the I-cache invalidation: instructions fetched ahead
/// before it are still used.
#[test]
fn missing_isb_after_ic() {
    let c = cfg("a57-like");
    let v = first_violation(&c, &purgatory_only(), &mut |cpu, p, _own| {
        minimal(cpu, p, &mut |cpu, _| cpu.ic_iallu(), false);
    })
    .expect("a missing ISB must be caught");
    // The control, the same code with the ISB, is
    // `minimal_purgatory_is_correct`.
    assert_violation(
        &v,
        Rule::StaleFetchBuffer,
        Some(KERNEL),
        Location::FetchBuffer,
    );
}

/// A system cache that ignores maintenance by VA is a platform bug no
/// handoff can fix; the model must say so rather than pass. The control:
/// the same handoff on `tx2-slc`, the same machine with a system cache
/// that honours maintenance by VA, passes.
#[test]
fn system_cache_ignoring_va_is_detected() {
    assert_correct_passes(&cfg("tx2-slc"), &SimOptions::default());
    let c = cfg("slc-ignores-va");
    let v = first_violation(&c, &SimOptions::default(), &mut real_handoff)
        .expect("a system cache ignoring VA maintenance must be caught");
    // The relocation's DC CIVAC never pushes the purgatory's code out of
    // the system cache: at purgatory entry DRAM still holds garbage there.
    assert_violation(
        &v,
        Rule::StaleCodeExecuted,
        Some(PURGATORY_IMAGE),
        Location::ICache(0),
    );
}

//! Unit tests of the memory-system model.

use super::*;

fn quiet() -> Adversary {
    Adversary {
        evict: 0,
        spec_alloc: 0,
        ifill: 0,
        prefetch: 0,
        complete: 0,
        sctlr_early: 0,
        ivac_cleans: 0,
        nc_hit: 0,
        icache_while_disabled: 0,
    }
}

fn machine(name: &str) -> MemorySystem {
    let mut m = MemorySystem::new(CacheConfig::named(name).expect("config"), 1);
    m.set_adversary(quiet());
    m
}

const ON: Sctlr = Sctlr {
    m: true,
    c: true,
    i: true,
};
const A: u64 = 0x8000_0000;

fn caches_on(m: &mut MemorySystem) {
    m.write_sctlr(ON);
    m.isb();
}

#[test]
fn mmu_off_reads_dram_and_leaves_lines_stale() {
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.write(A, &[1, 2, 3, 4]);
    m.write_sctlr(Sctlr::default());
    m.isb();
    let mut b = [0u8; 4];
    m.read(A, &mut b);
    assert_ne!(
        b,
        [1, 2, 3, 4],
        "non-cacheable read bypasses the dirty line"
    );
    assert!(m.cached_lines(A, 4).iter().any(|l| l.2), "line still dirty");
    m.dc(DcOp::Civac, A);
    m.dsb();
    m.read(A, &mut b);
    assert_eq!(b, [1, 2, 3, 4]);
    assert!(m.cached_lines(A, 4).is_empty());
}

#[test]
fn maintenance_completes_at_dsb_not_before() {
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.write(A, &[9; 8]);
    m.dc(DcOp::Cvac, A);
    let mut b = [0u8; 8];
    m.dram_read(A, &mut b);
    assert_ne!(b, [9; 8], "queued, not performed (quiet adversary)");
    assert!(m.maintenance_pending());
    m.isb();
    assert!(m.maintenance_pending(), "ISB does not complete maintenance");
    m.dsb();
    m.dram_read(A, &mut b);
    assert_eq!(b, [9; 8]);
}

#[test]
fn ivac_discards_dirty_data() {
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.write(A, &[7; 8]);
    m.dc(DcOp::Ivac, A);
    m.dsb();
    let mut b = [0u8; 8];
    m.dram_read(A, &mut b);
    assert_ne!(b, [7; 8]);
}

#[test]
fn set_way_stops_at_the_system_cache() {
    let mut m = machine("tx2-slc");
    caches_on(&mut m);
    m.write(A, &[5; 8]);
    m.dc_set_way_all(SetWayOp::Cisw);
    m.dsb();
    let lines = m.cached_lines(A, 8);
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0].0, lines[0].2), (Level::System, true));
    m.dc(DcOp::Civac, A);
    m.dsb();
    let mut b = [0u8; 8];
    m.dram_read(A, &mut b);
    assert_eq!(
        b, [5; 8],
        "by-VA maintenance reaches an honouring system cache"
    );
}

#[test]
fn system_cache_ignoring_va_keeps_dirty_data() {
    let mut m = machine("slc-ignores-va");
    caches_on(&mut m);
    m.write(A, &[5; 8]);
    m.dc(DcOp::Civac, A);
    m.dsb();
    let lines = m.cached_lines(A, 8);
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0].0, lines[0].2), (Level::System, true));
}

#[test]
fn eviction_writes_back_dirty_lines() {
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.write(A, &[3; 8]);
    m.evict(Level::L1, A);
    m.evict(Level::L2, A);
    let mut b = [0u8; 8];
    m.dram_read(A, &mut b);
    assert_eq!(b, [3; 8]);
}

#[test]
fn sctlr_write_takes_effect_at_isb() {
    let mut m = machine("a57-like");
    m.write_sctlr(ON);
    assert_eq!(m.sctlr(), Sctlr::default());
    assert_eq!(m.pending_sctlr(), Some(ON));
    m.isb();
    assert_eq!(m.sctlr(), ON);
}

#[test]
fn fetch_buffer_survives_until_isb() {
    let mut m = machine("a57-like");
    m.dram_write(A, &[1; 4]);
    assert_eq!(m.execute(A, 4), vec![1; 4]);
    m.dram_write(A, &[2; 4]);
    assert_eq!(m.execute(A, 4), vec![1; 4], "fetched ahead");
    m.isb();
    assert_eq!(m.execute(A, 4), vec![2; 4]);
}

#[test]
fn dc_zva_with_mmu_off_faults() {
    let mut m = machine("a57-like");
    m.dc(DcOp::Zva, A);
    assert!(m.fault().is_some());
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.dc(DcOp::Zva, A);
    assert!(m.fault().is_none());
    let mut b = [1u8; 8];
    m.read(A, &mut b);
    assert_eq!(b, [0; 8]);
}

#[test]
fn ialluis_clears_every_alias_and_csw_keeps_lines() {
    let mut m = machine("a53-vipt");
    m.seed_iline(A, 1, &[1; 4]);
    m.seed_iline(A, 2, &[2; 4]);
    m.ic(IcOp::Ialluis, 0);
    m.dsb();
    assert!(m.icache_lines(A, 4).is_empty());
    caches_on(&mut m);
    m.write(A, &[4; 8]);
    m.dc_set_way_all(SetWayOp::Csw);
    m.dsb();
    let lines = m.cached_lines(A, 8);
    assert!(
        !lines.is_empty() && lines.iter().all(|l| !l.2),
        "clean, still cached"
    );
    let mut b = [0u8; 8];
    m.dram_read(A, &mut b);
    assert_eq!(b, [4; 8]);
}

#[test]
fn gib_address_space_is_cheap() {
    let mut m = machine("a57-like");
    let top = 0xff_ffff_f000;
    m.dram_write(top, &[1]);
    m.dram_write(0x1000, &[1]);
    let mut b = [0u8; 1];
    m.dram_read(top, &mut b);
    assert_eq!(b, [1]);
    assert_eq!(m.dram.len(), 2, "two pages allocated for a 1 TiB span");
}

#[test]
fn dc_by_va_after_a_non_cacheable_store_needs_a_dmb() {
    // MMU off: the store is a Device access; DC IVAC of its line with no
    // barrier in between is reported.
    let mut m = machine("a57-like");
    m.write(A, &[1; 8]);
    m.dc(DcOp::Ivac, A + 32);
    assert!(
        m.fault()
            .is_some_and(|f| f.what.contains("DMB") && f.addr == A + 32),
        "{:?}",
        m.fault()
    );
    // A DMB (or a DSB) in between orders them.
    for barrier in [
        MemorySystem::dmb as fn(&mut MemorySystem),
        MemorySystem::dsb,
    ] {
        let mut m = machine("a57-like");
        m.write(A, &[1; 8]);
        barrier(&mut m);
        m.dc(DcOp::Ivac, A);
        assert_eq!(m.fault(), None);
    }
    // Another line is not affected.
    let mut m = machine("a57-like");
    m.write(A, &[1; 8]);
    m.dc(DcOp::Ivac, A + 64);
    assert_eq!(m.fault(), None);
    // Nor are cacheable stores (DC by VA is ordered after those).
    let mut m = machine("a57-like");
    caches_on(&mut m);
    m.write(A, &[1; 8]);
    m.dc(DcOp::Civac, A);
    assert_eq!(m.fault(), None);
}

#[test]
fn conservative_icache_is_used_while_sctlr_i_is_clear() {
    let il = CacheConfig::named("a57-like").expect("config").i_line;
    let stale = vec![0xaa; usize::try_from(il).unwrap_or(64)];
    // Permissive: with SCTLR.I = 0 a held line is not looked up.
    let mut m = machine("a57-like");
    m.dram_write(A, &vec![0x11; stale.len()]);
    m.seed_iline(A, 0, &stale);
    assert_eq!(m.execute(A, il), vec![0x11; stale.len()]);
    // Conservative: it is hit.
    let mut m = machine("a57-like");
    m.set_adversary(Adversary {
        icache_while_disabled: 1000,
        ..quiet()
    });
    m.dram_write(A, &vec![0x11; stale.len()]);
    m.seed_iline(A, 0, &stale);
    assert_eq!(m.execute(A, il), stale);
    // And a miss allocates from the PoC, not from a dirty D-cache line.
    m.write_sctlr(Sctlr {
        m: true,
        c: true,
        i: false,
    });
    m.isb();
    m.write(A + il, &vec![0x22; stale.len()]);
    m.write_sctlr(Sctlr::default());
    m.isb();
    let fetched = m.execute(A + il, il);
    let mut poc = vec![0u8; stale.len()];
    m.dram_read(A + il, &mut poc);
    assert_eq!(fetched, poc);
    assert_ne!(
        poc,
        vec![0x22; stale.len()],
        "the store is still only in the D-cache"
    );
    assert_eq!(
        m.icache_lines(A + il, il)[0].2,
        poc,
        "allocated from the PoC"
    );
}

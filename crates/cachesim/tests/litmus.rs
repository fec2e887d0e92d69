//! Instruction-fetch litmus cases, single PE, after
//! B. Simner, S. Flur, C. Pulte, A. Armstrong, J. Pichon-Pharabod,
//! L. Maranget, P. Sewell, "ARMv8-A system semantics: instruction fetch in
//! relaxed architectures", ESOP 2020 (LNCS 12075), doi:10.1007/978-3-030-44914-8_23.
//!
//! The facts used (the architecture as that paper models it):
//! - after a store over code, the sequence `DC CVAU; DSB; IC IVAU; DSB;
//!   ISB` makes a later fetch of that location see the new instruction;
//! - each step is needed on a CPU without CTR_EL0.IDC/DIC: without the
//!   clean the I-cache can refill from a PoU that still holds the old data;
//!   without the first DSB the invalidate can complete (and the line be
//!   refetched) before the clean; without the IC the old line stays; without
//!   the second DSB the invalidate may not have completed; without the ISB
//!   instructions fetched before it may still be used;
//! - CTR_EL0.IDC = 1 removes the need for the clean (a DSB still orders the
//!   store before the IC); CTR_EL0.DIC = 1 removes the need for the IC (the
//!   ISB is still needed).

use cachesim::{CacheConfig, DcOp, IcOp, MemorySystem, Sctlr};

const X: u64 = 0x1000_0000;
const OLD: [u8; 4] = [0x1f, 0x20, 0x03, 0xd5]; // NOP
const NEW: [u8; 4] = [0xc0, 0x03, 0x5f, 0xd6]; // RET

#[derive(Clone, Copy, Debug)]
struct Steps {
    cvau: bool,
    dsb1: bool,
    ivau: bool,
    dsb2: bool,
    isb: bool,
}

const ALL: Steps = Steps {
    cvau: true,
    dsb1: true,
    ivau: true,
    dsb2: true,
    isb: true,
};

/// Run the self-modifying-code sequence; return what the fetch saw.
fn run(cfg: &CacheConfig, seed: u64, s: Steps) -> [u8; 4] {
    let mut m = MemorySystem::new(cfg.clone(), seed);
    m.add_data_range(X, cfg.d_line);
    m.add_exec_range(X, cfg.i_line);
    m.dram_write(X, &OLD);
    m.write_sctlr(Sctlr {
        m: true,
        c: true,
        i: true,
    });
    m.isb();
    // The old instruction has been executed: it is in the I-cache (if any)
    // and in the fetch buffer.
    let _ = m.execute(X, 4);
    m.write(X, &NEW);
    if s.cvau {
        m.dc(DcOp::Cvau, X);
    }
    if s.dsb1 {
        m.dsb();
    }
    if s.ivau {
        m.ic(IcOp::Ivau, X);
    }
    if s.dsb2 {
        m.dsb();
    }
    if s.isb {
        m.isb();
    }
    let got = m.execute(X, 4);
    let mut out = [0; 4];
    out.copy_from_slice(&got);
    out
}

const SEEDS: u64 = 300;

fn plain() -> CacheConfig {
    CacheConfig::named("a57-like").expect("named config")
}

fn some_seed_sees_old(cfg: &CacheConfig, s: Steps) -> bool {
    (0..SEEDS).any(|seed| run(cfg, seed, s) == OLD)
}

fn all_seeds_see_new(cfg: &CacheConfig, s: Steps) -> bool {
    (0..SEEDS).all(|seed| run(cfg, seed, s) == NEW)
}

#[test]
fn full_sequence_sees_new_code_everywhere() {
    for cfg in CacheConfig::all_named() {
        assert!(all_seeds_see_new(&cfg, ALL), "{}", cfg.name);
    }
}

#[test]
fn without_clean_may_see_old() {
    assert!(some_seed_sees_old(&plain(), Steps { cvau: false, ..ALL }));
}

#[test]
fn without_first_dsb_may_see_old() {
    assert!(some_seed_sees_old(&plain(), Steps { dsb1: false, ..ALL }));
}

#[test]
fn without_ic_may_see_old() {
    assert!(some_seed_sees_old(&plain(), Steps { ivau: false, ..ALL }));
}

#[test]
fn without_second_dsb_may_see_old() {
    assert!(some_seed_sees_old(&plain(), Steps { dsb2: false, ..ALL }));
}

#[test]
fn without_isb_may_see_old() {
    assert!(some_seed_sees_old(&plain(), Steps { isb: false, ..ALL }));
}

#[test]
fn idc_makes_the_clean_unnecessary() {
    let cfg = CacheConfig::named("idc-only-32").expect("named config");
    assert!(all_seeds_see_new(&cfg, Steps { cvau: false, ..ALL }));
    // ...but not the invalidate.
    assert!(some_seed_sees_old(&cfg, Steps { ivau: false, ..ALL }));
}

#[test]
fn dic_makes_the_invalidate_unnecessary_but_not_the_isb() {
    let cfg = CacheConfig::named("n1-idc-dic").expect("named config");
    assert!(all_seeds_see_new(
        &cfg,
        Steps {
            cvau: false,
            ivau: false,
            dsb2: false,
            ..ALL
        }
    ));
    assert!(some_seed_sees_old(&cfg, Steps { isb: false, ..ALL }));
}

#[test]
fn vipt_alias_survives_ivau_but_not_iallu() {
    // The old kernel ran this code through another VA (another colour).
    let cfg = CacheConfig::named("a53-vipt").expect("named config");
    let mut m = MemorySystem::new(cfg.clone(), 1);
    m.seed_iline(X, 3, &OLD);
    m.write_sctlr(Sctlr {
        m: false,
        c: false,
        i: true,
    });
    m.isb();
    m.dram_write(X, &NEW);
    m.ic(IcOp::Ivau, X);
    m.dsb();
    m.isb();
    assert_eq!(m.icache_lines(X, 4).len(), 1, "the alias survives IVAU");
    m.ic(IcOp::Iallu, 0);
    m.dsb();
    assert!(m.icache_lines(X, 4).is_empty());
}

//! An executable model of the ARMv8 memory system that runs our kexec
//! handoff code and checks its cache maintenance.
//!
//! The real code runs on the model unchanged: the purgatory's
//! [`handoff::handoff`] through the [`handoff::Machine`] trait ([`SimCpu`]
//! implements it), preceded by a model of the old kernel's relocation of
//! the entry list ([`relocate::relocate_new_kernel`], generic over the same
//! trait). At the branch to the next kernel the rules of
//! Documentation/arch/arm64/booting.rst are checked ([`check`]); a broken
//! rule is a [`Violation`] carrying the rule, the address, the cache level
//! and the event timeline that led there.
//!
//! ```
//! use cachesim::{simulate, CacheConfig, SimPlan};
//! let cfg = CacheConfig::named("a53-vipt").expect("a named configuration");
//! let report = simulate(&SimPlan::tiny(), &cfg, 7).expect("the handoff is correct");
//! assert!(report.total_cycles() > 0);
//! println!("{report}");
//! ```
//!
//! A loader's plan (the patched purgatory image and the other segments)
//! becomes the model's input through [`SimInput::from_segments`], which
//! reads the purgatory header back and samples long segments; `kexec sim`
//! runs it with [`simulate_seeds`] and prints the [`Report`] and the
//! [`cost::CostModel`].
//!
//! # The model
//! - **Memory**: sparse DRAM (pages allocated on first write, never-written
//!   bytes are address-derived garbage), which is the PoC.
//! - **Data caches**: L1D (inside the PoU), L2 (the PoU), and optionally a
//!   system cache beyond the PoU ([`SystemCache`]) that honours maintenance
//!   by VA or, as a misconfiguration, ignores it. Lines are invalid, clean or
//!   dirty with their own data; capacity is unbounded and eviction is chosen
//!   by the adversary, not by LRU. Line size comes from the modelled
//!   `CTR_EL0` (DminLine/IminLine, IDC, DIC).
//! - **Instruction side**: a fetch buffer (instructions fetched ahead,
//!   discarded only by ISB) in front of a PIPT, VIPT-aliasing (lines tagged
//!   by page colour; `IC IVAU` by one VA misses other colours) or
//!   ASID-tagged I-cache, filled from the PoU (from L1D too with IDC; always
//!   coherent with DIC). Stale lines from the old kernel are pre-seeded.
//! - **SCTLR_ELx M/C/I**: with M or C clear, data accesses are non-cacheable:
//!   they read and write DRAM and leave cache lines as they are. With M and
//!   C set, accesses to Normal-WB pages allocate. While the purgatory's MMU
//!   is on, its own page tables are walked (through the caches when C is
//!   set), so a stale line over a table is a translation fault. Instruction
//!   fetches are cacheable iff I is set; on three seeds in four the I-cache
//!   is still hit, and filled from the PoC, while I is clear
//!   (`Adversary::icache_while_disabled`: the architecture does not promise
//!   an idle I-cache then). A SCTLR write takes effect at any
//!   moment up to the next ISB; MAIR/TCR/TTBR0 writes at the next ISB
//!   (SCTLR.M taking effect first is a fault). The TLB keeps the old
//!   kernel's entries for the purgatory's pages (write-back) until a TLBI
//!   completes (queued like maintenance, done by a DSB). A read through a
//!   non-cacheable mapping may hit a line still cached (mismatched
//!   attributes); nothing is speculatively allocated for such a mapping.
//! - **The purgatory's stack**: a frame at its top, written at entry and by
//!   each hash call, read back at every barrier and before the branch.
//! - **The purgatory's system instructions**: its entry code (`_start`)
//!   runs as what it is to the memory system, one ISB; from then on every
//!   instruction the CPU issues for the operations performed is recorded
//!   ([`SysTrace`], [`SimCpu::system_instructions`]), for the path check
//!   against the built binary (`crates/kexec/tests/model_link.rs`).
//! - **Maintenance**: DC CVAC/CIVAC/IVAC/CVAU/ZVA, DC CSW/CISW (all sets and
//!   ways of L1+L2; never the system cache), IC IVAU/IALLU/IALLUIS. Every
//!   operation is queued and completes whenever the adversary likes, at the
//!   latest at the next DSB, which completes them in an adversarial order
//!   with speculative fills in between. `DC IVAC` may also clean (allowed by
//!   the architecture) or discard dirty data. `DC ZVA` with the MMU off is a
//!   fault, and so is a DC by VA of a line stored to non-cacheably since the
//!   last DMB or DSB (DC by VA is ordered only after Normal cacheable
//!   accesses).
//! - **Adversary** (a seed): before every maintenance instruction, barrier
//!   and SCTLR write, and before one data access in four, it may evict (write
//!   back) any line, allocate clean lines for any cacheable-mapped address
//!   while M+C are on, fill the I-cache or the fetch buffer from any
//!   executable address, complete queued maintenance, or let a pending
//!   SCTLR write take effect. Its eagerness to complete maintenance early
//!   varies with the seed (never, sometimes, often). Range edges get hostile
//!   initial states more often.
//!
//! # Checks at "enter kernel"
//! Every byte of every segment, read non-cacheably, equals the image
//! ([`Rule::NotAtPoc`]); no level holds a dirty line ([`Rule::DirtyLine`]) or
//! a clean line that differs from the image ([`Rule::StaleCleanLine`]) in
//! those ranges; neither the I-cache (any tag) nor the fetch buffer holds a
//! stale line of the kernel segment; fetching the entry sees the kernel;
//! SCTLR.M/C clear and synchronised; x0 = DTB, x1-x3 = 0. At purgatory entry
//! (kexec_load path): MMU off, and the purgatory's code is what the I-side
//! fetches; while it runs, each barrier fetches its next code line.
//!
//! # Several CPUs
//! With [`SimOptions::smp`], the purgatory's header names secondary CPUs and
//! the machine has PSCI: the boot CPU's `CPU_ON` starts each one, which
//! runs the real `handoff::smp::secondary` to its `CPU_OFF` on its own PE
//! state (SCTLR, translation and TLB, I-cache and fetch buffer, queued
//! maintenance) over the shared DRAM and data caches (coherent caches are
//! one view of a line), inside that `CPU_ON` or inside a later
//! `AFFINITY_INFO` call of the boot CPU ([`SecondaryRun`]). It starts with
//! the old kernel's TLB entries for the purgatory's pages and, while its
//! I-cache is off and idle, stale I-cache lines over the purgatory's
//! image. Rules: the boot CPU's stores and maintenance complete before
//! `CPU_ON`, the secondary's before `CPU_OFF` (faults); no line a
//! secondary dirtied still dirty when it turns off
//! ([`Rule::SecondaryDirtyLine`]); every CPU started is off at the branch
//! ([`Rule::SecondaryStillOn`]); and every rule of a run (its stack frame,
//! the code it fetches, hashing with its caches on). See
//! crates/cachesim/src/sim/smp.rs for what it does not show.
//!
//! # Limits (what the model does not show)
//! One PE runs at a time (a secondary between two of the boot CPU's calls,
//! never step by step beside it; no other masters; DSB ISH = DSB SY); identity
//! translation apart from the purgatory's own tables (the old kernel's
//! regime is "everything Normal-WB"); one line size for every level; no
//! store buffer or load reordering (only maintenance and SCTLR writes are
//! delayed; the missing order between a non-cacheable store and a DC by VA
//! is reported, not simulated); speculation is not limited to "reachable" addresses (more
//! adversarial than hardware, never less; but nothing is allocated for a
//! non-cacheable mapping); of the purgatory's stack only one frame at its
//! top is modelled, and its reads of its own header (copied with the MMU
//! off) are not (Rust runs natively); the cost
//! model is a set of assumptions ([`cost`]), not a measurement. For an
//! ASID-tagged I-cache, `IC IVAU` is assumed to reach only the current
//! ASID's lines (the conservative reading).
//!
//! # Configurations
//! [`CacheConfig::named`] / [`CacheConfig::all_named`]: `a57-like`,
//! `a53-vipt`, `asid-tagged`, `tx2-slc`, `n1-idc-dic`, `idc-only-32`,
//! `dic-only-128`, `split-lines`, `slc-128`, `falkor-e1041` (a CPU erratum:
//! ISB required right before the MSR that turns the MMU off), plus the misconfigured
//! `slc-ignores-va` (no software can be correct on it).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Layers, each depending only on the ones before it: `rng`, `config`;
// `memory` (the model); `check`, `cost`, `cpus`, `mutant`, `relocate`; `sim` (a run
// of the real code on the model); `campaign` (every mutant through `sim`).
pub mod campaign;
pub mod check;
pub mod config;
pub mod cost;
pub mod cpus;
pub mod memory;
pub mod mutant;
pub mod relocate;
pub mod rng;
pub mod sim;

pub use check::{Rule, Violation};
pub use config::{CacheConfig, ConfigError, ICachePolicy, SystemCache};
pub use cost::Report;
pub use memory::{DcOp, Event, IcOp, Level, MemorySystem, Sctlr, SetWayOp};
pub use sim::{
    simulate, simulate_seeds, simulate_with, LoaderPlanError, LoaderSegment, SampledSegment,
    Sampling, Scenario, SecondaryRun, SeedSweep, SimCpu, SimInput, SimOptions, SimPlan, SimSegment,
    SmpOptions, SysTrace, Window,
};

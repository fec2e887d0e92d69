//! An executable model of the ARMv8 memory system at the kexec handoff.
//!
//! It will model DRAM (the PoC), a hierarchy of quasi-PIPT data caches with an
//! optional system cache, a PIPT/VIPT/ASID-tagged instruction cache, SCTLR_ELx
//! M/C/I, adversarial evictions and speculative allocation, and the maintenance
//! instructions (DC CVAC/CIVAC/IVAC/CVAU/ZVA, IC IVAU/IALLU, DSB, ISB). The
//! purgatory's handoff sequence runs against it unchanged, and the model checks
//! the rules of the Arm ARM (D7, "Caches and memory hierarchy") at kernel entry.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod config;
pub mod cost;
pub mod machine;
pub mod mutate;
pub mod relocate;
pub mod rng;
pub mod sim;

pub use check::{Rule, Violation};
pub use config::{CacheConfig, ICachePolicy, SystemCache};
pub use cost::Report;
pub use machine::{DcOp, Event, IcOp, Level, Machine, Sctlr, SetWayOp};
pub use sim::{simulate, simulate_with, Scenario, SimCpu, SimOptions, SimPlan, SimSegment};

//! The load plan: which bytes go to which physical address, and why that is
//! allowed.
//!
//! [`Planner`] places segments one at a time, lowest address first, so the same
//! inputs always give the same plan. The order matters: the kernel first (its
//! position fixes the 32 GiB window), then the initrd (its address goes into
//! the device tree's `/chosen`), then the edited device tree, then the
//! purgatory and any other blob. [`Planner::finish`] yields a [`LoadPlan`];
//! [`LoadPlan::check`] re-validates every [`Rule`] on its own, without trusting
//! the placer, and says which passed.
//!
//! The rules come from Documentation/arch/arm64/booting.rst (§ 2 "Setup the
//! device tree", § 4 "Call the kernel image") and include/uapi/linux/kexec.h /
//! kernel/kexec_core.c (`sanity_check_segment_list`); each is named once in
//! [`Rule`] with its source, and its numbers live in [`crate::layout`].
//!
//! One file per responsibility, each depending only on those listed before
//! it: the plan's data (`model.rs`), the rules and their checker
//! (`rules.rs`), the placer (`place.rs`), the builder (`builder.rs`). The
//! checker never imports the placer.

mod builder;
mod model;
mod place;
mod rules;
#[cfg(test)]
mod tests;

pub use builder::{build, memory_for, Blob, BuildError, Built, LoadRequest, Uart, UartSource};
pub use model::{KernelFacts, LoadMode, LoadPlan, Segment, SegmentKind};
pub use place::{Error, Planner};
pub use rules::{Rule, RuleCheck};

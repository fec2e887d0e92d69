//! Project automation behind `cargo xtask`: installing test assets, the QEMU
//! end-to-end harness and its scenarios, demo and benchmarks.
#![forbid(unsafe_code)]

pub mod baremetal;

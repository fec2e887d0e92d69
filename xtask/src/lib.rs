//! Project automation behind `cargo xtask`: installing test assets, the QEMU
//! end-to-end harness and its scenarios, demo and benchmarks.
#![forbid(unsafe_code)]

pub mod baremetal;
pub mod bench;
pub mod bench_kdump;
pub mod bench_loads;
pub mod bench_phases;
pub mod boot_entry;
pub mod capture;
pub mod fresh;
pub mod fuzz;
pub mod fuzz_campaign;
pub mod guest;
pub mod host;
pub mod kbuild;
pub mod kdump;
pub mod mutants;
pub mod package;
pub mod qemu;
pub mod scenario;
pub mod setup;
pub mod structure;
pub mod uefi;
pub mod uefi_initrd;
pub mod util;
pub mod vmcore_size;

/// Run setup (idempotent) and build the guest base initramfs.
pub fn prepare() -> anyhow::Result<setup::Assets> {
    let assets = setup::setup()?;
    guest::build_base(&assets)?;
    Ok(assets)
}

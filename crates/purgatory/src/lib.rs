//! The purgatory: `no_std` code for `aarch64-unknown-none` that runs after the
//! old kernel has let go and before the new one starts.
//!
//! It owns the handoff: build identity page tables, clean+invalidate every
//! segment to the PoC by VA and invalidate the I-cache, enable the caches,
//! verify the SHA-256 of every segment (ARMv8 SHA2 instructions when
//! `ID_AA64ISAR0_EL1` reports them), turn the MMU and caches off, and enter
//! the kernel with x0 = DTB, x1–x3 = 0 as Documentation/arch/arm64/booting.rst
//! requires. The sequence itself is [`handoff::handoff`]; this crate only
//! provides the CPU's implementation of [`handoff::Machine`] (`cpu::Cpu`),
//! the SHA2-instruction compression function (`sha2_hw`) and, in
//! `src/main.rs`, the entry code.
//!
//! # Binary layout and loading
//! The flat binary (`cargo xtask`'s `baremetal::build_purgatory`) starts with
//! a branch over the parameter header at [`handoff::HEADER_OFFSET`]; the entry
//! point is offset 0. It is linked at 0 and position independent (PC-relative
//! code only, checked from the `--emit-relocs` records), so the loader may put
//! it at any **4 KiB aligned** address, with `memsz` = the header's
//! `mem_size` (code + bss + page-table pool + stack).
//!
//! On any host target the crate builds as an empty library (and stub
//! binaries) so the workspace can be tested and linted on x86.
#![no_std]
#![deny(missing_docs)]

#[cfg(target_arch = "aarch64")]
pub mod sha2_hw;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod cpu;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use cpu::purgatory_main;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // No formatting machinery here: park quietly; the loader's console line
    // never came, which is the failure signal.
    loop {
        // SAFETY: WFE only waits for an event; no memory or register effects.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}

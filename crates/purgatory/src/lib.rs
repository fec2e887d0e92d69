//! The purgatory: `no_std` code for `aarch64-unknown-none` that runs after the
//! old kernel has let go and before the new one starts.
//!
//! It will own the handoff: build identity page tables and enable the caches,
//! verify the SHA-256 of every segment (ARMv8 SHA2 instructions when
//! `ID_AA64ISAR0_EL1` reports them), clean everything the next kernel reads to
//! the PoC by VA, turn the MMU and caches off, invalidate the I-cache, and
//! enter the kernel with x0 = DTB, x1–x3 = 0 as Documentation/arch/arm64/booting.rst
//! requires. The loader embeds it and patches its parameter header.
#![no_std]
#![deny(missing_docs)]

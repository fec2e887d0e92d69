//! The kexec handoff sequence for arm64, written once.
//!
//! The purgatory's steps (enable caches, hash, clean to the PoC, disable,
//! invalidate the I-cache, enter the kernel) are generic over a small trait
//! for "memory + system registers + maintenance instructions". On aarch64 the
//! purgatory implements it with the real instructions; `cachesim` implements
//! it with a model of the ARMv8 memory system and checks the result.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

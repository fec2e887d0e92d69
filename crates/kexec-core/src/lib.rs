//! Pure logic of the arm64 kexec loader.
//!
//! `kexec-core` decides *what* goes *where*: it recognises every arm64 kernel
//! format (Image, Image.gz/zst/xz/lz4, EFI zboot, ELF `vmlinux`, UKI), edits the
//! device tree's `/chosen` node, parses `/proc/iomem`, places segments in usable
//! RAM and checks the resulting load plan against the rules of the arm64 boot
//! protocol (Documentation/arch/arm64/booting.rst) and the kexec ABI
//! (include/uapi/linux/kexec.h). It performs no I/O and contains no `unsafe`:
//! every function takes bytes in memory, so it is tested and fuzzed on the host.
//! It also reads Boot Loader Specification entries and picks the one
//! systemd-boot would boot ([`bootentry`]).
//! The one reader of files too large for memory, the kdump vmcore reader
//! ([`vmcore`]), reads through a trait its caller implements.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bootentry;
pub mod cmdline;
pub mod decompress;
pub mod digest;
pub mod elf;
pub mod elfcore;
pub mod fdt;
pub mod image;
pub mod initramfs;
pub mod iomem;
pub mod kernel;
pub mod layout;
pub mod machine;
pub mod pe;
pub mod plan;
pub mod purgatory;
pub mod vmcore;
pub mod zboot;

//! `kexec`: the command-line loader, a drop-in for kexec-tools on arm64.
//!
//! A thin layer: parse arguments, gather the system state (live, or replayed
//! from `--sysroot`), ask `kexec-core` for a load plan, then print it
//! (`--dry-run`, `--json`) or hand it to `kexec-sys`.
#![forbid(unsafe_code)]

use clap::Parser;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "kexec",
    version,
    about = "Load and boot a new Linux kernel (arm64)"
)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("the loader is not implemented yet; see README.md")
}

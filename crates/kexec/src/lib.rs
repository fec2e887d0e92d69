//! `kexec`: the command-line loader, a drop-in for kexec-tools on arm64.
//!
//! A thin layer: parse arguments with kexec-tools' meaning and decide what
//! they ask for (`cli/`: the options replayed in order as kexec-tools does,
//! docs/compat.md), gather the system state (live, or replayed from
//! `--sysroot`) and ask `kexec-core` for a load plan (`pipeline.rs`, from
//! the options in `plan_input.rs`), then print it (`--dry-run`, `--json`:
//! `report.rs`) or hand it to `kexec-sys` (`syscalls.rs`); `run.rs` carries
//! out the decision.
//!
//! ```text
//! kexec -l|-p KERNEL [--initrd F] [--append S | --command-line S] [--reuse-cmdline]
//!       [--dtb F] [-i] [--mem-min A] [--mem-max A] [-t TYPE] [--serial TTY]
//!       [--dry-run [--json] [--svg FILE]] [--sysroot DIR]
//! kexec -e [-x] [-y]            kexec -u [-p]          kexec -S [-l|-p] (exit 1: loaded)
//! kexec -f KERNEL ...           (load, then boot at once)
//! kexec KERNEL ...              (load, then `shutdown -r now`)
//! kexec -s -l KERNEL ...        (kexec_file_load only: the kernel verifies and places)
//! kexec -c -l KERNEL ...        (kexec_load only; the default -a tries kexec_file_load
//!                                first and falls back where it cannot work: kfile.rs)
//! kexec -h | -v | --print-ckr-size
//! kexec capture-sysroot DIR     (capture.rs)
//! kexec sim KERNEL [-p] [--sysroot DIR] [--config NAME|all] [--seeds N] [--json]
//!                               (the plan's handoff in the cachesim model: sim.rs)
//! kexec boot [ENTRY] [--list | --dry-run] [--json] [-e] [--esp DIR] [--boot DIR] [--sysroot DIR]
//!                               (load the Boot Loader Specification entry systemd-boot would
//!                                boot: boot.rs)
//! kexec vmcore info [--json] [FILE]   kexec vmcore dmesg [FILE]
//!                               (read a kdump vmcore, default /proc/vmcore: vmcore.rs)
//! kexec doctor [--json] [--sysroot DIR]
//!                               (what will work here, and why: doctor/)
//! ```
//!
//! Exit codes: 0 success, 1 other failure, 2 bad input, 3 system state;
//! `-S` exits 1 when the kernel is loaded and 0 when not (kexec-tools).
//!
//! [`command`] is the whole command-line definition: `cargo xtask package`
//! generates the man pages and shell completions from it
//! (`examples/ship-docs.rs`); `--version` says what `version.rs` computes.
//!
//! Modules depend only downward: `cli` → `boot` → `kfile` → `sim` → `pipeline` →
//! `plan_input` → (`crashdump`, `syscalls`, `mode`) → `hints` → `sysroot` →
//! `failure`; `run` sits on top, `capture` beside `pipeline` (it captures
//! what `doctor` reads), `doctor` beside `kfile`; `vmcore` depends only on
//! `hints` and `failure`; `version` only on `pipeline` (the embedded
//! purgatory); `memmap` (the `--dry-run` memory map and its `--svg`
//! picture) on no other module, and `report` and `run` on it. `hints`
//! chooses every failure's hint from the observed state.
#![forbid(unsafe_code)]

mod boot;
mod capture;
mod cli;
mod crashdump;
mod doctor;
mod failure;
mod firmware;
mod hashed_read;
mod hints;
mod kfile;
mod memmap;
mod mode;
mod pipeline;
mod plan_input;
mod report;
mod run;
mod sim;
mod syscalls;
mod sysroot;
mod timing;
mod version;
mod vmcore;

use std::process::ExitCode;

pub use crate::pipeline::{PURGATORY, PURGATORY_ELF, TEST_SEED_ENV};
pub use crate::version::{version_body, version_text, PURGATORY_SHA256};

/// The command line as clap defines it (every option, subcommand and help
/// text): what the binary parses, and what the man pages and shell
/// completions are generated from. `-v`/`--version` prints [`version_text`].
pub fn command() -> clap::Command {
    cli::command().long_version(version_body())
}

/// The whole program: parse the arguments, decide, carry it out, print the
/// outcome and return the exit code.
pub fn main() -> ExitCode {
    let parsed = cli::parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    failure::finish(parsed.action().and_then(run::run))
}

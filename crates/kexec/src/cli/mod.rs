//! The command line: kexec-tools' options with kexec-tools' meaning
//! ([`Args`], docs/compat.md), and the one decision of what they ask for
//! ([`Parsed::action`]), a pure function (no I/O) tested here without
//! spawning the binary.
//!
//! clap defines the options (so help, man page and completions follow the
//! definition); the options whose meaning depends on their position are then
//! replayed in command-line order as kexec-tools does (`order.rs`).

mod order;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use kexec_core::plan::LoadMode;
use kexec_core::purgatory::PurgatoryOptions;

use crate::boot::BootArgs;
use crate::doctor::DoctorArgs;
use crate::failure::Failure;
use crate::kfile::Call;
use crate::plan_input::{PlanInput, PlanOptions};
use crate::sim::SimArgs;
use crate::sysroot::Sysroot;
use crate::vmcore::{Report, PROC_VMCORE};

pub(crate) use order::Immediate;
use order::{Outcome, Switch};

/// Command-line arguments, spelled as kexec-tools spells them. Options
/// repeat freely (the last value wins, as with kexec-tools' getopt loop) and
/// long options may be abbreviated to any unambiguous prefix (getopt_long).
#[derive(Debug, Parser)]
#[command(
    name = "kexec",
    version,
    about = "Load and boot a new Linux kernel (arm64); a drop-in for kexec-tools",
    after_help = "Options act in the order given, as in kexec-tools: `-l -e` boots the loaded \
                  kernel, `-p -u` unloads the crash kernel. See docs/compat.md.",
    args_conflicts_with_subcommands = true,
    args_override_self = true,
    infer_long_args = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print this help and exit.
    #[arg(short = 'h', long = "help", short_alias = '?', action = ArgAction::SetTrue)]
    help: bool,
    /// Print the version, the purgatory's digest and the built-in features, and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    version: bool,
    /// Load KERNEL for a later `kexec -e`.
    #[arg(short = 'l', long = "load", action = ArgAction::SetTrue)]
    load: bool,
    /// Load KERNEL as the crash (panic) kernel, into the crash region; with
    /// -u or -S, act on the crash kernel.
    #[arg(short = 'p', long = "load-panic", action = ArgAction::SetTrue)]
    load_panic: bool,
    /// Unload the loaded kernel (with -p: the crash kernel).
    #[arg(short = 'u', long = "unload", action = ArgAction::SetTrue)]
    unload: bool,
    /// Boot the loaded kernel now (after sync, interfaces down).
    #[arg(short = 'e', long = "exec", action = ArgAction::SetTrue)]
    exec: bool,
    /// Load KERNEL and boot it at once, without calling shutdown.
    #[arg(short = 'f', long = "force", action = ArgAction::SetTrue)]
    force: bool,
    /// Exit 1 if the crash kernel (with -l: the normal kernel) is loaded, 0 if not.
    #[arg(short = 'S', long = "status", action = ArgAction::SetTrue)]
    status: bool,
    /// Use kexec_file_load only: the kernel reads, verifies and places the
    /// image (needed under lockdown; the kernel must have CONFIG_KEXEC_FILE).
    #[arg(short = 's', long = "kexec-file-syscall", action = ArgAction::SetTrue)]
    kexec_file_syscall: bool,
    /// Use kexec_load only: we place the segments and verify them in our purgatory.
    #[arg(short = 'c', long = "kexec-syscall", action = ArgAction::SetTrue)]
    kexec_syscall: bool,
    /// The default: kexec_file_load, falling back to kexec_load where the
    /// file path cannot work (the kernel lacks it); never after a signature
    /// or lockdown refusal. --dtb and -i choose kexec_load.
    #[arg(short = 'a', long = "kexec-syscall-auto", action = ArgAction::SetTrue)]
    kexec_syscall_auto: bool,
    /// Print the crash region's size in bytes (0 if none) and exit.
    #[arg(long = "print-ckr-size", action = ArgAction::SetTrue)]
    print_ckr_size: bool,
    /// Debug output on stderr: the decisions, then the segments, the entry
    /// and the purgatory.
    #[arg(short = 'd', long = "debug", action = ArgAction::SetTrue)]
    debug: bool,
    /// Say which system call is used and why (on stderr).
    #[arg(long = "verbose", action = ArgAction::SetTrue)]
    verbose: bool,
    /// With -e or -f: do not sync file systems first.
    #[arg(short = 'y', long = "no-sync", action = ArgAction::SetTrue)]
    no_sync: bool,
    /// With -e or -f: do not take network interfaces down first.
    #[arg(short = 'x', long = "no-ifdown", action = ArgAction::SetTrue)]
    no_ifdown: bool,
    /// Testing: make the purgatory hash in software even with SHA2 instructions.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    purgatory_soft_sha256: bool,
    /// Testing: make the purgatory hash with the MMU and caches off.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    purgatory_no_caches: bool,
    /// Testing: make the purgatory hash on the boot CPU alone (no PSCI CPU_ON).
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    purgatory_one_cpu: bool,
    #[command(flatten)]
    refused: Refused,
    /// The kernel: Image, Image.gz/.zst/.xz/.lz4, EFI zboot, ELF vmlinux or UKI.
    kernel: Option<PathBuf>,
    /// Anything after the kernel (refused: kexec-tools ignores it silently).
    #[arg(hide = true, trailing_var_arg = false)]
    extra: Vec<OsString>,
    #[command(flatten)]
    plan: PlanOptions,
    /// Print the plan; make no system call.
    #[arg(long, action = ArgAction::SetTrue)]
    dry_run: bool,
    /// With --dry-run: print the plan as JSON (docs/plan-json.md).
    #[arg(long, requires = "dry_run", action = ArgAction::SetTrue)]
    json: bool,
    /// With --dry-run: also draw the plan's physical memory map as an SVG
    /// picture in FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Read the system state from DIR instead of / (see `capture-sysroot`).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
}

/// kexec-tools options that have no meaning on arm64 or that we do not
/// carry out; each is accepted by the parser so that the refusal can say
/// why and what to use instead (docs/compat.md).
#[derive(Debug, clap::Args)]
struct Refused {
    /// Refused: the entry point is the purgatory's, which enters the kernel.
    #[arg(long, hide = true, value_name = "ADDR")]
    entry: Option<String>,
    /// Refused: arm64 has no KEXEC_JUMP.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    load_preserve_context: bool,
    /// Refused: arm64 has no KEXEC_JUMP.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    load_jump_back_helper: bool,
    /// Refused: reusing the old initrd in place.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    reuseinitrd: bool,
    /// Refused: Xen live update.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    load_live_update: bool,
    /// Refused: Xen live update.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    exec_live_update: bool,
    /// Refused: the arm64 kernel has no crash hotplug.
    #[arg(long, hide = true, action = ArgAction::SetTrue)]
    hotplug: bool,
}

impl Refused {
    /// The first refused option given, with why and what to use.
    fn check(&self) -> Result<(), Failure> {
        let (option, why, hint) = if self.entry.is_some() {
            (
                "--entry",
                "the entry of a kexec_load on arm64 is our purgatory, which verifies the \
                 segments and enters the kernel at its Image entry",
                "drop --entry; the kernel's entry comes from its Image header",
            )
        } else if self.load_preserve_context || self.load_jump_back_helper {
            (
                if self.load_preserve_context {
                    "--load-preserve-context"
                } else {
                    "--load-jump-back-helper"
                },
                "jumping back to the old kernel needs KEXEC_JUMP, which arm64 does not \
                 have (the kernel refuses KEXEC_PRESERVE_CONTEXT)",
                "use -l and -e",
            )
        } else if self.reuseinitrd {
            (
                "--reuseinitrd",
                "reusing the running kernel's initrd in place needs retain_initrd and \
                 memory the new kernel does not reclaim; arm64 does not keep it",
                "pass the initrd file again with --initrd",
            )
        } else if self.load_live_update || self.exec_live_update {
            (
                if self.load_live_update {
                    "--load-live-update"
                } else {
                    "--exec-live-update"
                },
                "Xen live update exists only under Xen on x86",
                "use -l and -e",
            )
        } else if self.hotplug {
            (
                "--hotplug",
                "the arm64 kernel has no crash hotplug (no /sys/kernel/crash_elfcorehdr_size: \
                 CONFIG_CRASH_HOTPLUG is x86, powerpc and loongarch only)",
                "reload the crash kernel after CPU or memory hotplug (kexec -p ...)",
            )
        } else {
            return Ok(());
        };
        Err(Failure::input(
            "arguments",
            format!("{option} is not supported: {why}"),
            hint,
        ))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy /proc/iomem, /proc/cmdline, /sys/firmware/fdt and the kexec state
    /// files of the running system into DIR, for `--sysroot DIR`.
    CaptureSysroot {
        /// Destination directory.
        dir: PathBuf,
        /// Testing: capture from DIR (a sysroot) instead of the running system.
        #[arg(long, hide = true, value_name = "DIR")]
        from: Option<PathBuf>,
    },
    /// Make the plan `kexec -l` would load and run its handoff in the ARMv8
    /// memory-system model (cachesim); exit 1 on any violation.
    Sim(Box<SimArgs>),
    /// Load (with -e: and boot) the Boot Loader Specification entry
    /// systemd-boot would boot, or the one named: `systemctl kexec`
    /// without systemd.
    Boot(Box<BootArgs>),
    /// Read a kdump vmcore (default /proc/vmcore, in the crash kernel).
    Vmcore {
        #[command(subcommand)]
        what: VmcoreCommand,
    },
    /// Check whether kexec can work here (or on a capture) and say what
    /// will happen; exit 1 when a check fails.
    Doctor(DoctorArgs),
}

#[derive(Debug, Subcommand)]
enum VmcoreCommand {
    /// Kernel release, page size, crash time, CPUs and which crashed,
    /// memory ranges, VMCOREINFO highlights.
    Info {
        /// The vmcore: /proc/vmcore or an ELF dump file.
        file: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The crashed kernel's log (as `makedumpfile --dump-dmesg` prints it).
    Dmesg {
        /// The vmcore: /proc/vmcore or an ELF dump file.
        file: Option<PathBuf>,
    },
}

/// How a load or an unload reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// `--dry-run`: none; print the plan and the call that would be made
    /// instead (`--json`: as JSON).
    DryRun {
        /// `--json`.
        json: bool,
        /// The call a real run would make.
        call: Call,
    },
    /// Make the call: `-c`, `-s`, or `-a` (the default).
    Run(Call),
}

/// What follows a load (or stands alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Nothing (`-l`, `-p`, `-u`).
    Nothing,
    /// Run `shutdown -r now`, as a bare `kexec KERNEL` does: the init
    /// system stops the services, then reboots into the loaded kernel.
    Shutdown,
    /// Boot the loaded kernel now (`-e`, `-f`).
    Exec {
        /// Sync file systems first (not with `-y`/`--no-sync`).
        sync: bool,
        /// Take network interfaces down first (not with `-x`/`--no-ifdown`).
        ifdown: bool,
    },
}

/// What to load: the kernel and what shapes its plan.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadArgs<'a> {
    /// The kernel file.
    pub kernel: &'a Path,
    /// What else shapes the plan.
    pub input: PlanInput<'a>,
    /// `--svg FILE` (dry runs only): where to draw the memory map.
    pub svg: Option<&'a Path>,
}

/// The classic kexec operation: any of unload, load and then shut down or
/// boot, in kexec-tools' order; or only the status.
#[derive(Debug, PartialEq, Eq)]
pub struct Kexec<'a> {
    /// `-l` (normal) or `-p` (crash): the kernel that unload, load and
    /// status act on.
    pub mode: LoadMode,
    /// `-S`: only say whether a kernel of `mode` is loaded (exit 1 if so).
    pub status: bool,
    /// `-u`: unload first.
    pub unload: bool,
    /// Then load.
    pub load: Option<LoadArgs<'a>>,
    /// Then shut down or boot.
    pub after: After,
    /// Where the system state is read.
    pub root: Sysroot,
    /// How the kernel is reached (or a dry run).
    pub syscall: Syscall,
    /// `--verbose` (or `-d`): say which system call is used and why.
    pub verbose: bool,
    /// `-d`: also print the segments, the entry and the purgatory.
    pub debug: bool,
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// `-h`, `-v` or `--print-ckr-size`: print and exit 0.
    Immediate {
        /// Which one.
        what: Immediate,
        /// Where `--print-ckr-size` reads `/proc/iomem`.
        root: Sysroot,
    },
    /// Load, unload, boot, status (`kexec -l/-p/-u/-e/-f/-S`, a bare `kexec KERNEL`).
    Kexec(Kexec<'a>),
    /// `capture-sysroot DIR`.
    Capture {
        /// Where the state is read: the running system (or, for tests,
        /// `--from DIR`).
        from: Sysroot,
        /// Destination directory.
        dir: &'a Path,
    },
    /// `sim ...`.
    Sim(&'a SimArgs),
    /// `doctor ...`.
    Doctor(&'a DoctorArgs),
    /// `boot ...`.
    Boot(&'a BootArgs),
    /// `vmcore info|dmesg [FILE]`.
    Vmcore {
        /// The vmcore (default [`PROC_VMCORE`]).
        file: &'a Path,
        /// What to print.
        report: Report,
    },
}

/// The arguments and the order of the options whose meaning depends on it.
#[derive(Debug)]
pub struct Parsed {
    args: Args,
    switches: Vec<Switch>,
}

/// The clap definition of the command line (for help, the man page and
/// shell completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Parse `argv` (with the program name first).
pub fn parse_from<I, T>(argv: I) -> Result<Parsed, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Args::command().try_get_matches_from(argv)?;
    let args = Args::from_arg_matches(&matches)?;
    Ok(Parsed {
        switches: switches(&matches),
        args,
    })
}

/// The positional options, in command-line order.
fn switches(m: &ArgMatches) -> Vec<Switch> {
    let ids = [
        ("help", Switch::Help),
        ("version", Switch::Version),
        ("print_ckr_size", Switch::PrintCkrSize),
        ("load", Switch::Load),
        ("load_panic", Switch::Panic),
        ("unload", Switch::Unload),
        ("exec", Switch::Exec),
        ("force", Switch::Force),
        ("status", Switch::Status),
        ("kexec_file_syscall", Switch::FileSyscall),
        ("kexec_syscall", Switch::Syscall),
        ("kexec_syscall_auto", Switch::SyscallAuto),
    ];
    let mut at: Vec<(usize, Switch)> = ids
        .iter()
        // A count of 0 is a default, not an occurrence.
        .filter(|&&(id, _)| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .flat_map(|&(id, s)| m.indices_of(id).into_iter().flatten().map(move |i| (i, s)))
        .collect();
    at.sort_by_key(|&(i, _)| i);
    at.into_iter().map(|(_, s)| s).collect()
}

impl Parsed {
    /// What the arguments ask for, or why they make no sense together
    /// (beyond what clap already refused).
    pub fn action(&self) -> Result<Action<'_>, Failure> {
        let a = &self.args;
        match &a.command {
            Some(Command::Sim(args)) => return Ok(Action::Sim(args.as_ref())),
            Some(Command::Doctor(args)) => return Ok(Action::Doctor(args)),
            Some(Command::Boot(args)) => return Ok(Action::Boot(args.as_ref())),
            Some(Command::Vmcore { what }) => {
                let (file, report) = match what {
                    VmcoreCommand::Info { file, json } => (file, Report::Info { json: *json }),
                    VmcoreCommand::Dmesg { file } => (file, Report::Dmesg),
                };
                return Ok(Action::Vmcore {
                    file: file.as_deref().unwrap_or(Path::new(PROC_VMCORE)),
                    report,
                });
            }
            Some(Command::CaptureSysroot { dir, from }) => {
                return Ok(Action::Capture {
                    from: from.as_deref().map_or_else(Sysroot::live, Sysroot::at),
                    dir,
                })
            }
            None => {}
        }
        let root = a.sysroot.as_deref().map_or_else(Sysroot::live, Sysroot::at);
        let o = order::replay(&self.switches, a.no_sync, a.no_ifdown);
        if let Some(what) = o.immediate {
            return Ok(Action::Immediate { what, root });
        }
        a.refused.check()?;
        let dry_run = a.dry_run;
        if a.sysroot.is_some() && !dry_run && !o.status {
            return Err(Failure::input(
                "arguments",
                "--sysroot describes another machine: only --dry-run, --status and \
                 --print-ckr-size may use it",
                "add --dry-run to see the plan for that machine",
            ));
        }
        if let Some(extra) = a.extra.first() {
            return Err(Failure::input(
                "arguments",
                format!(
                    "unexpected argument {:?} after the kernel",
                    extra.to_string_lossy()
                ),
                "give one kernel; options such as --initrd=FILE name their files",
            ));
        }
        let mode = if (o.status && o.status_is_crash()) || (!o.status && o.crash) {
            LoadMode::Crash
        } else {
            LoadMode::Normal
        };
        let syscall = if dry_run {
            Syscall::DryRun {
                json: a.json,
                call: o.call,
            }
        } else {
            Syscall::Run(o.call)
        };
        let load = match (&a.kernel, o.load) {
            (Some(kernel), true) => Some(LoadArgs {
                kernel,
                input: a.plan.input(PurgatoryOptions {
                    force_soft_sha256: a.purgatory_soft_sha256,
                    no_caches: a.purgatory_no_caches,
                    one_cpu: a.purgatory_one_cpu,
                    ..PurgatoryOptions::default()
                })?,
                svg: a.svg.as_deref(),
            }),
            // `-f` (or `-e -f`, petitboot's last resort) without a kernel:
            // kexec-tools fails ("No kernel specified"); we boot the kernel
            // already loaded, which is what the caller asks for.
            (None, true) if o.exec => None,
            (None, true) => {
                return Err(Failure::input(
                    "arguments",
                    "no kernel given",
                    "kexec -l KERNEL [--initrd F] [--append S], then kexec -e; see --help",
                ))
            }
            (Some(kernel), false) => return Err(ignored_kernel(kernel, &o)),
            (None, false) => None,
        };
        if a.svg.is_some() && (!dry_run || load.is_none()) {
            return Err(Failure::input(
                "--svg",
                "--svg draws the memory map of a planned load: it needs --dry-run and a kernel",
                "kexec -l KERNEL … --dry-run --svg FILE",
            ));
        }
        let after = if o.exec {
            After::Exec {
                sync: o.sync,
                ifdown: o.ifdown,
            }
        } else if o.shutdown {
            After::Shutdown
        } else {
            After::Nothing
        };
        if load.is_some() && mode == LoadMode::Crash && after != After::Nothing {
            return Err(Failure::input(
                "arguments",
                "-p loads a crash kernel, which only a panic boots",
                "drop -f/-e, or use -l",
            ));
        }
        Ok(Action::Kexec(Kexec {
            mode,
            status: o.status,
            unload: o.unload,
            load,
            after,
            root,
            syscall,
            verbose: a.verbose || a.debug,
            debug: a.debug,
        }))
    }
}

/// A kernel named where the options load nothing: kexec-tools ignores it
/// (`kexec -e KERNEL` boots whatever was loaded before); we refuse, since
/// the user may believe KERNEL is the one that boots.
fn ignored_kernel(kernel: &Path, o: &Outcome) -> Failure {
    let (what, hint) = if o.status {
        (
            "-S/--status only reports",
            "kexec -S (crash) or kexec -l -S",
        )
    } else if o.exec {
        (
            "-e boots the kernel loaded before and would ignore it",
            "kexec -f KERNEL loads it and boots it at once; kexec -e alone boots the loaded one",
        )
    } else {
        (
            "-u only unloads",
            "kexec -u (or -p -u) without a kernel; to replace a kernel, just load the new one",
        )
    };
    Failure::input(
        kernel.display().to_string(),
        format!("a kernel is given but nothing loads it: {what}"),
        hint,
    )
}

//! The command line: the arguments, spelled as kexec-tools spells them
//! ([`Args`]), and the one decision of what they ask for ([`Args::action`]),
//! a pure function (no I/O) tested here without spawning the binary.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use kexec_core::plan::LoadMode;
use kexec_core::purgatory::PurgatoryOptions;

use crate::failure::Failure;
use crate::kfile::Call;
use crate::pipeline::{PlanInput, PlanOptions};
use crate::sim::SimArgs;
use crate::sysroot::Sysroot;
use crate::vmcore::{Report, PROC_VMCORE};

/// Command-line arguments, spelled as kexec-tools spells them.
#[derive(Debug, Parser)]
#[command(
    name = "kexec",
    version,
    about = "Load and boot a new Linux kernel (arm64)",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Load KERNEL for a later `kexec -e`.
    #[arg(short = 'l', long = "load", conflicts_with_all = ["load_panic", "unload", "exec"])]
    load: bool,
    /// Load KERNEL as the crash (panic) kernel, into the crash region
    /// (with -u or --status: act on the crash kernel).
    #[arg(short = 'p', long = "load-panic", conflicts_with_all = ["exec"])]
    load_panic: bool,
    /// Unload the loaded kernel (with -p: the crash kernel).
    #[arg(short = 'u', long = "unload", conflicts_with_all = ["exec", "status"])]
    unload: bool,
    /// Boot the loaded kernel now (after sync).
    #[arg(short = 'e', long = "exec", conflicts_with_all = ["status"])]
    exec: bool,
    /// Load KERNEL and boot it at once (as `kexec KERNEL` without -l/-e does).
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Exit 0 if a kernel is loaded (with -p: a crash kernel), 1 if not.
    #[arg(short = 'S', long = "status", conflicts_with_all = ["load", "dry_run"])]
    status: bool,
    /// Use kexec_file_load only: the kernel reads, verifies and places the
    /// image (needed under lockdown; the kernel must have CONFIG_KEXEC_FILE).
    #[arg(
        short = 's',
        long = "kexec-file-syscall",
        conflicts_with_all = ["kexec_syscall", "kexec_syscall_auto"]
    )]
    kexec_file_syscall: bool,
    /// Use kexec_load only: we place the segments and verify them in our purgatory.
    #[arg(
        short = 'c',
        long = "kexec-syscall",
        conflicts_with = "kexec_syscall_auto"
    )]
    kexec_syscall: bool,
    /// The default: kexec_file_load, falling back to kexec_load only where the
    /// file path cannot work (the kernel lacks it); never after a signature
    /// or lockdown refusal. --dtb and -i choose kexec_load.
    #[arg(short = 'a', long = "kexec-syscall-auto")]
    kexec_syscall_auto: bool,
    /// Say which system call is used and why (on stderr); `-d`/`--debug`,
    /// kexec-tools' spelling, are accepted too.
    #[arg(short = 'v', long = "verbose", short_alias = 'd', alias = "debug")]
    verbose: bool,
    /// With -e: do not sync file systems first.
    #[arg(long = "no-sync")]
    no_sync: bool,
    /// Accepted for kexec-tools compatibility: interfaces are not taken down.
    #[arg(short = 'x', long = "no-ifdown")]
    no_ifdown: bool,
    /// Testing: make the purgatory hash in software even with SHA2 instructions.
    #[arg(long, hide = true)]
    purgatory_soft_sha256: bool,
    /// Testing: make the purgatory hash with the MMU and caches off.
    #[arg(long, hide = true)]
    purgatory_no_caches: bool,
    /// The kernel: Image, Image.gz/.zst/.xz/.lz4, EFI zboot, ELF vmlinux or UKI.
    kernel: Option<PathBuf>,
    #[command(flatten)]
    plan: PlanOptions,
    /// Print the plan; make no system call.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print the plan as JSON (docs/plan-json.md).
    #[arg(long, requires = "dry_run")]
    json: bool,
    /// With --dry-run: also draw the plan's physical memory map as an SVG
    /// picture in FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Read the system state from DIR instead of / (see `capture-sysroot`).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
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
    Sim(SimArgs),
    /// Read a kdump vmcore (default /proc/vmcore, in the crash kernel).
    Vmcore {
        #[command(subcommand)]
        what: VmcoreCommand,
    },
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

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// `-l`/`-p KERNEL`, `-f KERNEL`, `-e KERNEL` or a bare `kexec KERNEL`:
    /// plan a load of `kernel`, print it or hand it to the kernel, then (if
    /// `exec_after`) boot it.
    Load {
        /// `-l` (normal) or `-p` (crash).
        mode: LoadMode,
        /// The kernel file.
        kernel: &'a Path,
        /// What else shapes the plan.
        input: PlanInput<'a>,
        /// Where the system state is read.
        root: Sysroot,
        /// How the plan reaches the kernel.
        syscall: Syscall,
        /// Boot the new kernel once it is loaded (never in a dry run).
        exec_after: bool,
        /// With `exec_after`: do not sync file systems first.
        no_sync: bool,
        /// `-v`: say which system call is used and why.
        verbose: bool,
        /// `--svg FILE` (dry runs only): where to draw the memory map.
        svg: Option<&'a Path>,
    },
    /// `-e` without a kernel: boot the loaded kernel.
    Exec {
        /// Where the loaded-kernel flag is read.
        root: Sysroot,
        /// `--no-sync`.
        no_sync: bool,
        /// `--dry-run`: only say what would happen.
        dry_run: bool,
    },
    /// `-u`: unload the normal (or, with `-p`, the crash) kernel.
    Unload {
        /// Which kernel.
        mode: LoadMode,
        /// `-s` unloads with `kexec_file_load`; a dry run only says so.
        syscall: Syscall,
    },
    /// `--status`: is a kernel of `mode` loaded?
    Status {
        /// Where the flag is read.
        root: Sysroot,
        /// Which kernel.
        mode: LoadMode,
    },
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
    /// `vmcore info|dmesg [FILE]`.
    Vmcore {
        /// The vmcore (default [`PROC_VMCORE`]).
        file: &'a Path,
        /// What to print.
        report: Report,
    },
}

impl Args {
    /// What the arguments ask for, or why they make no sense together
    /// (beyond what clap already refused).
    pub fn action(&self) -> Result<Action<'_>, Failure> {
        match &self.command {
            Some(Command::Sim(args)) => return Ok(Action::Sim(args)),
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
        let root = self
            .sysroot
            .as_deref()
            .map_or_else(Sysroot::live, Sysroot::at);
        let mode = if self.load_panic {
            LoadMode::Crash
        } else {
            LoadMode::Normal
        };
        if self.svg.is_some() && (!self.dry_run || self.unload || self.kernel.is_none()) {
            return Err(Failure::input(
                "--svg",
                "--svg draws the memory map of a planned load: it needs --dry-run and a kernel",
                "kexec -l KERNEL … --dry-run --svg FILE",
            ));
        }
        if self.status {
            return Ok(Action::Status { root, mode });
        }
        if self.sysroot.is_some() && !self.dry_run {
            return Err(Failure::input(
                "arguments",
                "--sysroot describes another machine: only --dry-run and --status may use it",
                "add --dry-run to see the plan for that machine",
            ));
        }
        let call = if self.kexec_file_syscall {
            Call::KexecFileLoad
        } else if self.kexec_syscall {
            Call::KexecLoad
        } else {
            Call::Auto
        };
        let syscall = if self.dry_run {
            Syscall::DryRun {
                json: self.json,
                call,
            }
        } else {
            Syscall::Run(call)
        };
        if self.unload {
            return Ok(Action::Unload { mode, syscall });
        }
        if self.exec && self.kernel.is_none() {
            return Ok(Action::Exec {
                root,
                no_sync: self.no_sync,
                dry_run: self.dry_run,
            });
        }
        let Some(kernel) = &self.kernel else {
            return Err(Failure::input(
                "arguments",
                "no kernel given",
                "kexec -l KERNEL [--initrd F] [--append S], then kexec -e; see --help",
            ));
        };
        // `kexec KERNEL` (neither -l nor -p), `-f`, or `-e KERNEL`: load, then boot.
        let then_exec = !self.load && !self.load_panic || self.force || self.exec;
        if then_exec && self.load_panic {
            return Err(Failure::input(
                "arguments",
                "-p loads a crash kernel, which only a panic boots",
                "drop -f/-e, or use -l",
            ));
        }
        Ok(Action::Load {
            mode,
            kernel,
            input: self.plan.input(PurgatoryOptions {
                force_soft_sha256: self.purgatory_soft_sha256,
                no_caches: self.purgatory_no_caches,
                ..PurgatoryOptions::default()
            }),
            root,
            syscall,
            exec_after: then_exec && !self.dry_run,
            no_sync: self.no_sync,
            verbose: self.verbose,
            svg: self.svg.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::EXIT_BAD_INPUT;

    fn args(argv: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("kexec").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    /// The `Load` action for `argv`, or a panic.
    fn load(argv: &[&str]) -> (LoadMode, Syscall, bool, Sysroot) {
        match args(argv).action() {
            Ok(Action::Load {
                mode,
                kernel,
                syscall,
                exec_after,
                root,
                ..
            }) => {
                assert_eq!(kernel, Path::new("Image"), "{argv:?}");
                (mode, syscall, exec_after, root)
            }
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    /// The failure `argv` decides on, or a panic.
    fn refused(argv: &[&str]) -> Failure {
        match args(argv).action() {
            Err(f) => f,
            Ok(a) => panic!("{argv:?}: {a:?}"),
        }
    }

    #[test]
    fn load_modes_and_when_to_boot() {
        let live = Sysroot::live();
        let (normal, crash) = (LoadMode::Normal, LoadMode::Crash);
        // The default is auto (kexec_file_load, falling back).
        let kl = Syscall::Run(Call::Auto);
        assert_eq!(load(&["-l", "Image"]), (normal, kl, false, live.clone()));
        assert_eq!(
            load(&["-a", "-l", "Image"]),
            (normal, kl, false, live.clone())
        );
        assert_eq!(load(&["-p", "Image"]), (crash, kl, false, live.clone()));
        // `kexec KERNEL`, -f and -e KERNEL load, then boot.
        assert_eq!(load(&["Image"]), (normal, kl, true, live.clone()));
        assert_eq!(load(&["-f", "Image"]), (normal, kl, true, live.clone()));
        assert_eq!(
            load(&["-l", "-f", "Image"]),
            (normal, kl, true, live.clone())
        );
        assert_eq!(load(&["-e", "Image"]), (normal, kl, true, live.clone()));
        assert_eq!(
            load(&["-s", "-l", "Image"]),
            (
                normal,
                Syscall::Run(Call::KexecFileLoad),
                false,
                live.clone()
            )
        );
        assert_eq!(
            load(&["--kexec-syscall", "-l", "Image"]),
            (normal, Syscall::Run(Call::KexecLoad), false, live.clone())
        );
        assert_eq!(
            load(&["-c", "-l", "Image"]),
            (normal, Syscall::Run(Call::KexecLoad), false, live.clone())
        );
    }

    #[test]
    fn verbose_is_v_or_kexec_tools_debug() {
        let verbose = |argv: &[&str]| match args(argv).action() {
            Ok(Action::Load { verbose, .. }) => verbose,
            other => panic!("{argv:?}: {other:?}"),
        };
        assert!(!verbose(&["-l", "Image"]));
        for flag in ["-v", "--verbose", "-d", "--debug"] {
            assert!(verbose(&["-l", "Image", flag]), "{flag}");
        }
    }

    #[test]
    fn a_dry_run_makes_no_syscall_and_never_boots() {
        let dry = Syscall::DryRun {
            json: false,
            call: Call::Auto,
        };
        let root = Sysroot::at(Path::new("sr"));
        assert_eq!(
            load(&["Image", "--dry-run"]),
            (LoadMode::Normal, dry, false, Sysroot::live())
        );
        assert_eq!(
            load(&[
                "-s",
                "-p",
                "Image",
                "--dry-run",
                "--json",
                "--sysroot",
                "sr"
            ]),
            (
                LoadMode::Crash,
                Syscall::DryRun {
                    json: true,
                    call: Call::KexecFileLoad
                },
                false,
                root
            )
        );
    }

    #[test]
    fn the_plan_input_carries_every_plan_option() {
        let a = args(&[
            "-l",
            "Image",
            "--initrd",
            "initrd.img",
            "--append",
            "a=1",
            "--command-line",
            "b",
            "--reuse-cmdline",
            "--dtb",
            "board.dtb",
            "-i",
            "--purgatory-no-caches",
        ]);
        let Ok(Action::Load { input, .. }) = a.action() else {
            panic!("{a:?}");
        };
        assert_eq!(
            input,
            PlanInput {
                initrd: Some(Path::new("initrd.img")),
                append: &["a=1".to_owned(), "b".to_owned()],
                reuse_cmdline: true,
                dtb: Some(Path::new("board.dtb")),
                purgatory: PurgatoryOptions {
                    no_verify: true,
                    no_caches: true,
                    ..PurgatoryOptions::default()
                },
            }
        );
        let a = args(&["-l", "Image", "--purgatory-soft-sha256"]);
        let Ok(Action::Load { input, .. }) = a.action() else {
            panic!();
        };
        assert_eq!(
            input.purgatory,
            PurgatoryOptions {
                force_soft_sha256: true,
                ..PurgatoryOptions::default()
            }
        );
    }

    #[test]
    fn exec_unload_and_status() {
        assert_eq!(
            args(&["-e"]).action(),
            Ok(Action::Exec {
                root: Sysroot::live(),
                no_sync: false,
                dry_run: false
            })
        );
        assert_eq!(
            args(&["-e", "--no-sync", "--dry-run"]).action(),
            Ok(Action::Exec {
                root: Sysroot::live(),
                no_sync: true,
                dry_run: true
            })
        );
        assert_eq!(
            args(&["-u"]).action(),
            Ok(Action::Unload {
                mode: LoadMode::Normal,
                syscall: Syscall::Run(Call::Auto)
            })
        );
        assert_eq!(
            args(&["-u", "-p", "-s"]).action(),
            Ok(Action::Unload {
                mode: LoadMode::Crash,
                syscall: Syscall::Run(Call::KexecFileLoad)
            })
        );
        assert_eq!(
            args(&["-u", "--dry-run"]).action(),
            Ok(Action::Unload {
                mode: LoadMode::Normal,
                syscall: Syscall::DryRun {
                    json: false,
                    call: Call::Auto
                }
            })
        );
        assert_eq!(
            args(&["--status"]).action(),
            Ok(Action::Status {
                root: Sysroot::live(),
                mode: LoadMode::Normal
            })
        );
        // --status may read another machine's state without --dry-run.
        assert_eq!(
            args(&["-S", "-p", "--sysroot", "sr"]).action(),
            Ok(Action::Status {
                root: Sysroot::at(Path::new("sr")),
                mode: LoadMode::Crash
            })
        );
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            args(&["capture-sysroot", "out"]).action(),
            Ok(Action::Capture {
                from: Sysroot::live(),
                dir: Path::new("out")
            })
        );
        assert_eq!(
            args(&["capture-sysroot", "--from", "sr", "out"]).action(),
            Ok(Action::Capture {
                from: Sysroot::at(Path::new("sr")),
                dir: Path::new("out")
            })
        );
        let a = args(&["sim", "Image", "-p", "--seeds", "2"]);
        assert!(matches!(a.action(), Ok(Action::Sim(_))), "{a:?}");
        assert_eq!(
            args(&["vmcore", "info"]).action(),
            Ok(Action::Vmcore {
                file: Path::new("/proc/vmcore"),
                report: Report::Info { json: false }
            })
        );
        assert_eq!(
            args(&["vmcore", "info", "--json", "dump"]).action(),
            Ok(Action::Vmcore {
                file: Path::new("dump"),
                report: Report::Info { json: true }
            })
        );
        assert_eq!(
            args(&["vmcore", "dmesg", "dump"]).action(),
            Ok(Action::Vmcore {
                file: Path::new("dump"),
                report: Report::Dmesg
            })
        );
    }

    #[test]
    fn contradictions_are_bad_input() {
        let f = refused(&["-l", "Image", "--sysroot", "sr"]);
        assert_eq!(f.code, EXIT_BAD_INPUT);
        assert!(
            f.problem.contains("--sysroot describes another machine"),
            "{f}"
        );
        // --sysroot without --dry-run is refused before anything else.
        assert!(refused(&["-u", "--sysroot", "sr"])
            .problem
            .contains("--sysroot"));
        let f = refused(&["-l"]);
        assert_eq!(
            (f.code, f.problem.as_str()),
            (EXIT_BAD_INPUT, "no kernel given")
        );
        assert_eq!(refused(&[]).problem, "no kernel given");
        let f = refused(&["-p", "-f", "Image"]);
        assert_eq!(f.code, EXIT_BAD_INPUT);
        assert_eq!(
            f.problem,
            "-p loads a crash kernel, which only a panic boots"
        );
    }

    #[test]
    fn clap_refuses_what_cannot_go_together() {
        for argv in [
            &["-l", "-p", "Image"][..],
            &["-l", "-u"],
            &["-e", "-u"],
            &["-e", "-p"],
            &["-S", "-l", "Image"],
            &["-S", "--dry-run"],
            &["-s", "-c", "-l", "Image"],
            &["-s", "-a", "-l", "Image"],
            &["-c", "-a", "-l", "Image"],
            &["-l", "Image", "--json"],
            &["capture-sysroot", "out", "-l"],
            &["vmcore", "dmesg", "--json"],
            &["vmcore", "info", "a", "b"],
            &["vmcore"],
        ] {
            assert!(
                Args::try_parse_from(std::iter::once("kexec").chain(argv.iter().copied())).is_err(),
                "{argv:?}"
            );
        }
    }
}

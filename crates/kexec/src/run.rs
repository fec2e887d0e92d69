//! Carrying out an [`Action`]: each arm hands the work to the module that
//! owns it (planning to `pipeline`, syscalls to `syscalls`, printing to
//! `report`, `capture-sysroot` to `capture`, `kexec sim` to `sim`) and
//! returns what to print, or the [`Failure`].

use std::path::Path;

use kexec_core::cmdline;
use kexec_core::plan::LoadMode;

use crate::cli::{Action, Syscall};
use crate::failure::{Failure, Output, EXIT_OTHER};
use crate::mode::LoadModeExt;
use crate::pipeline::{self, PlanInput};
use crate::report::Report;
use crate::sysroot::Sysroot;
use crate::{capture, sim, syscalls, vmcore};

/// Carry out `action`.
pub fn run(action: Action<'_>) -> Result<Output, Failure> {
    match action {
        Action::Load {
            mode,
            kernel,
            input,
            root,
            syscall,
            exec_after,
            no_sync,
        } => {
            let text = load(mode, kernel, &input, &root, syscall)?;
            if exec_after {
                return Err(syscalls::exec(&root, no_sync));
            }
            Ok(Output::success(text))
        }
        Action::Exec { dry_run: true, .. } => Ok(Output::success(
            "dry run: would sync and boot the loaded kernel\n",
        )),
        Action::Exec { root, no_sync, .. } => Err(syscalls::exec(&root, no_sync)),
        Action::Unload { mode, syscall } => match syscall {
            Syscall::DryRun { .. } => Ok(Output::success(format!(
                "dry run: would unload the {} kernel\n",
                mode.name()
            ))),
            Syscall::KexecLoad => syscalls::unload(mode, false).map(Output::success),
            Syscall::KexecFileLoad => syscalls::unload(mode, true).map(Output::success),
        },
        Action::Status { root, mode } => status(&root, mode).map(Output::success),
        Action::Capture { from, dir } => capture::capture_sysroot(&from, dir).map(Output::success),
        Action::Vmcore { file, report } => vmcore::run(file, report),
        Action::Sim(args) => sim::run(args).map(|(text, passed)| Output {
            text,
            code: if passed { 0 } else { EXIT_OTHER },
        }),
    }
}

/// The load itself: plan it and print the plan (a dry run) or hand it to
/// `kexec_load`; or, for `kexec_file_load`, give the kernel the files and
/// the command line. Returns what to print.
fn load(
    mode: LoadMode,
    kernel: &Path,
    input: &PlanInput<'_>,
    root: &Sysroot,
    syscall: Syscall,
) -> Result<String, Failure> {
    match syscall {
        Syscall::KexecFileLoad => {
            let reused = pipeline::reused_cmdline(input.reuse_cmdline, root, mode)?;
            let line = cmdline::build(reused.as_deref(), input.append)
                .map_err(|e| Failure::input("command line", &e, e.hint()))?;
            syscalls::kexec_file_load(kernel, input.initrd, &line.unwrap_or_default(), mode)?;
            Ok(String::new())
        }
        Syscall::KexecLoad => {
            let planned = pipeline::make_plan(input, mode, kernel, root)?;
            syscalls::kexec_load(&planned.built.plan, &planned.buffers())?;
            Ok(String::new())
        }
        Syscall::DryRun { json } => {
            let planned = pipeline::make_plan(input, mode, kernel, root)?;
            let plan = &planned.built.plan;
            let report = Report {
                checks: plan.check(),
                plan,
                kernel_file: pipeline::display_name(kernel),
                kernel_format: planned.kernel_format,
                cmdline: planned.cmdline,
                dtb_from: planned.dtb_from,
                chosen_created: planned.built.dtb.chosen_created,
                changes: &planned.built.dtb.changes,
                notes: planned.notes,
            };
            Ok(if json {
                report.to_json()
            } else {
                report.to_text()
            })
        }
    }
}

/// `--status`: exit 0 if loaded, 1 if not (with a line saying which).
fn status(root: &Sysroot, mode: LoadMode) -> Result<String, Failure> {
    if syscalls::is_loaded(root, mode)? {
        Ok(format!("a {} kernel is loaded\n", mode.name()))
    } else {
        Err(Failure::other(
            root.path(mode.loaded_flag()).display().to_string(),
            format!("no {} kernel is loaded", mode.name()),
            "load one with `kexec -l` (or -p for a crash kernel)",
        ))
    }
}

//! Carrying out an [`Action`]: each arm hands the work to the module that
//! owns it (planning to `pipeline`, syscalls to `syscalls`, printing to
//! `report`, `capture-sysroot` to `capture`, `kexec sim` to `sim`) and
//! returns what to print, or the [`Failure`].

use std::path::Path;

use kexec_core::plan::LoadMode;
use kexec_core::{cmdline, initramfs};

use crate::cli::{self, Action, After, Immediate, Kexec, LoadArgs, Syscall};
use crate::failure::{Failure, Output, EXIT_OTHER};
use crate::firmware::Firmware;
use crate::hints::{self, Situation};
use crate::kfile::{self, Call, Decision, KexecState, Route};
use crate::mode::LoadModeExt;
use crate::pipeline;
use crate::plan_input::PlanInput;
use crate::report::Report;
use crate::sysroot::Sysroot;
use crate::timing;
use crate::{boot, capture, doctor, memmap, sim, syscalls, vmcore};

/// Carry out `action`.
pub fn run(action: Action<'_>) -> Result<Output, Failure> {
    match action {
        Action::Immediate { what, root } => immediate(what, &root).map(Output::success),
        Action::Kexec(k) => kexec(&k),
        Action::Capture { from, dir } => capture::capture_sysroot(&from, dir).map(Output::success),
        Action::Vmcore { file, report } => vmcore::run(file, report),
        Action::Doctor(args) => doctor::run(args),
        Action::Boot(args) => boot::run(args, |kernel, input, root, dry_run, verbose| {
            let syscall = match dry_run {
                Some(json) => Syscall::DryRun {
                    json,
                    call: Call::Auto,
                },
                None => Syscall::Run(Call::Auto),
            };
            let args = LoadArgs {
                kernel,
                input: *input,
                svg: None,
            };
            load(LoadMode::Normal, &args, root, syscall, verbose, false)
        }),
        Action::Sim(args) => sim::run(args).map(|(text, passed)| Output {
            text,
            code: if passed { 0 } else { EXIT_OTHER },
        }),
    }
}

/// `-h`, `-v`, `--print-ckr-size`.
fn immediate(what: Immediate, root: &Sysroot) -> Result<String, Failure> {
    match what {
        Immediate::Help => Ok(cli::command().render_help().to_string()),
        Immediate::Version => Ok(crate::version_text()),
        Immediate::PrintCkrSize => print_ckr_size(root),
    }
}

/// `--print-ckr-size`: the size in bytes of the crash region a `-p` load
/// uses (the last `Crash kernel` range of `/proc/iomem`, the high one when
/// there are two, as kexec-tools' arm64 `get_crash_kernel_load_range`
/// picks), or 0 when none is reserved.
fn print_ckr_size(root: &Sysroot) -> Result<String, Failure> {
    let map = pipeline::read_memory_map(root, "the crash region is listed in /proc/iomem")?;
    let size = map
        .crash_regions()
        .iter()
        .max()
        .map_or(0, |r| r.end - r.start);
    Ok(format!("{size}\n"))
}

/// The classic operation, in kexec-tools' order: status alone; or unload,
/// load, then shut down or boot.
fn kexec(k: &Kexec<'_>) -> Result<Output, Failure> {
    if k.status {
        return status(&k.root, k.mode);
    }
    let mut text = String::new();
    if k.unload {
        text.push_str(&unload(k.mode, k.syscall)?);
    }
    if let Some(l) = &k.load {
        text.push_str(&load(k.mode, l, &k.root, k.syscall, k.verbose, k.debug)?);
    }
    match (k.after, k.syscall) {
        (After::Nothing, _) => Ok(Output::success(text)),
        // A JSON dry run prints the plan alone, so that it stays one document.
        (_, Syscall::DryRun { json: true, .. }) if k.load.is_some() => Ok(Output::success(text)),
        (After::Shutdown, Syscall::DryRun { .. }) => {
            text.push_str(
                "dry run: would run `shutdown -r now` to reboot into the loaded kernel\n",
            );
            Ok(Output::success(text))
        }
        (After::Exec { sync, ifdown }, Syscall::DryRun { .. }) => {
            text.push_str(&format!(
                "dry run: would {}{}boot the loaded kernel\n",
                if sync { "sync, " } else { "" },
                if ifdown {
                    "take network interfaces down, "
                } else {
                    ""
                },
            ));
            Ok(Output::success(text))
        }
        (After::Shutdown, Syscall::Run(_)) => {
            print!("{text}");
            Err(syscalls::shutdown(&k.root))
        }
        (After::Exec { sync, ifdown }, Syscall::Run(_)) => {
            print!("{text}");
            Err(syscalls::exec(&k.root, sync, ifdown))
        }
    }
}

/// `-u`: unload (`-s`: with kexec_file_load; `-a`: that, falling back).
fn unload(mode: LoadMode, syscall: Syscall) -> Result<String, Failure> {
    match syscall {
        Syscall::DryRun { .. } => Ok(format!(
            "dry run: would unload the {} kernel\n",
            mode.name()
        )),
        Syscall::Run(call) => {
            syscalls::unload(mode, call == Call::KexecFileLoad, call == Call::Auto)
        }
    }
}

/// [`routed_load`], then with `--verbose` where its time went (timing.rs).
fn load(
    mode: LoadMode,
    args: &LoadArgs<'_>,
    root: &Sysroot,
    syscall: Syscall,
    verbose: bool,
    debug: bool,
) -> Result<String, Failure> {
    let started = std::time::Instant::now();
    let result = routed_load(mode, args, root, syscall, verbose, debug);
    if let Some(text) = timing::summary_within(started.elapsed()).filter(|_| verbose) {
        eprintln!("kexec: {text}");
    }
    result
}

/// The load itself: decide the system call (kfile.rs), then hand the
/// files to `kexec_file_load`, or plan and hand the plan to `kexec_load`,
/// or print the plan and the decision (a dry run). Returns what to print.
fn routed_load(
    mode: LoadMode,
    args: &LoadArgs<'_>,
    root: &Sysroot,
    syscall: Syscall,
    verbose: bool,
    debug: bool,
) -> Result<String, Failure> {
    let (kernel, input) = (args.kernel, &args.input);
    let say = |text: &str| {
        if verbose {
            eprintln!("kexec: {text}");
        }
    };
    let state = KexecState::read(root);
    let (call, dry_json) = match syscall {
        Syscall::Run(call) => (call, None),
        Syscall::DryRun { json, call } => (call, Some(json)),
    };
    // On the running system, ask the kernel whether it has kexec_file_load
    // at all (without side effects): where it has not, auto goes straight
    // to kexec_load without reading the image twice.
    let implemented = (root.is_live() && call == Call::Auto)
        .then(kexec_sys::file_load_implemented)
        .flatten();
    let missing = kexec_sys::Error::NotSupported("_FILE");
    if dry_json.is_none() && implemented == Some(false) {
        let decision = kfile::decide(call, input, &state, kfile::ImageFacts::default());
        if decision.route == (Route::KexecFileLoad { fallback: true }) {
            say(&state.describe());
            say(&decision.why);
            say(&format!(
                "kexec_file_load is not available here ({missing}); falling back to kexec_load"
            ));
            return kexec_load(mode, kernel, input, root, debug);
        }
    }
    // The Image's facts matter only when kexec_file_load may be tried.
    let image = match call {
        Call::KexecLoad => None,
        Call::KexecFileLoad | Call::Auto => Some(kfile::inspect(kernel)?),
    };
    let decision = kfile::decide(
        call,
        input,
        &state,
        image
            .as_ref()
            .map_or_else(kfile::ImageFacts::default, kfile::FileImage::facts),
    );
    if let Some(json) = dry_json {
        let note = if implemented == Some(false)
            && decision.route == (Route::KexecFileLoad { fallback: true })
        {
            format!(
                "syscall: kexec_load: auto: this kernel does not implement kexec_file_load \
                 ({missing}) ({})",
                state.describe()
            )
        } else {
            let image = image.map(|i| i.with_signature(kernel));
            let mut note = syscall_note(&decision, &state, image.as_ref());
            if implemented == Some(false) {
                note.push_str(&format!(
                    "; this kernel does not implement kexec_file_load ({missing})"
                ));
            }
            note
        };
        return dry_run(mode, kernel, input, root, json, note, args.svg);
    }
    say(&state.describe());
    say(&decision.why);
    let (Route::KexecFileLoad { fallback }, Some(mut image)) = (&decision.route, image) else {
        say("using kexec_load");
        return kexec_load(mode, kernel, input, root, debug);
    };
    say(&format!(
        "using kexec_file_load with {}",
        if image.decoded.is_some() {
            format!("the {} decompressed into a sealed memfd", image.format)
        } else {
            "the file itself".to_owned()
        }
    ));
    let files = prepare_file_load(mode, kernel, input, root, &image)?;
    if files.empty_initramfs {
        say("no initrd on a UEFI machine: passing an empty initramfs (see `--dry-run`)");
    }
    match timing::time("syscall", || {
        syscalls::kexec_file_load(
            &files.kernel,
            files.initrd.as_ref(),
            &files.cmdline,
            mode,
            input.no_cma,
        )
    }) {
        Ok(()) => Ok(String::new()),
        Err(e) if *fallback && kfile::may_fall_back(&e) => {
            say(&format!(
                "kexec_file_load is not available here ({e}); falling back to kexec_load"
            ));
            kexec_load(mode, kernel, input, root, debug)
        }
        Err(e) => {
            image.learn_signature(kernel);
            Err(kfile::explain_file_failure(
                &e,
                kernel,
                &image,
                &state,
                mode == LoadMode::Crash,
                &Situation::live(),
            ))
        }
    }
}

/// Plan the load and hand it to `kexec_load`.
fn kexec_load(
    mode: LoadMode,
    kernel: &Path,
    input: &PlanInput<'_>,
    root: &Sysroot,
    debug: bool,
) -> Result<String, Failure> {
    let planned = pipeline::make_plan(input, mode, kernel, root)?;
    if debug {
        eprint!("{}", debug_text(&planned));
    }
    timing::time("syscall", || {
        syscalls::kexec_load(&planned.built.plan, &planned.buffers())
    })?;
    Ok(String::new())
}

/// What `kexec_file_load` is given: the Image (the file, or a sealed memfd
/// of what we decoded), the initrd (given, or a UKI's `.initrd` in a memfd;
/// none on a UEFI machine: the empty initramfs in a memfd; otherwise none,
/// `KEXEC_FILE_NO_INITRAMFS`) and the command line (a UKI's
/// `.cmdline` when none is given). Everything that can be bad input is
/// found here, before any system call.
struct FileLoad {
    kernel: std::fs::File,
    initrd: Option<std::fs::File>,
    /// `initrd` is the empty initramfs.
    empty_initramfs: bool,
    cmdline: Vec<u8>,
}

fn prepare_file_load(
    mode: LoadMode,
    kernel: &Path,
    input: &PlanInput<'_>,
    root: &Sysroot,
    image: &kfile::FileImage,
) -> Result<FileLoad, Failure> {
    let reused = pipeline::reused_cmdline(input.reuse_cmdline, root, mode)?;
    let append = match (&reused, input.append) {
        (None, None) => image.uki.cmdline.as_deref().map(str::as_bytes),
        (_, given) => given,
    };
    let line = cmdline::build(reused.as_deref(), append)
        .map_err(|e| Failure::input("command line", &e, e.hint()))?;
    let kernel_file = image.open(kernel)?;
    let initrd = match (input.initrd, &image.uki.initrd) {
        (Some(p), _) => Some(std::fs::File::open(p).map_err(|e| {
            Failure::input(
                p.display().to_string(),
                format!("cannot open: {e}"),
                hints::input_unreadable(e.kind()),
            )
        })?),
        (None, Some(bytes)) => {
            Some(kexec_sys::sealed_memfd("kexec-initrd", bytes).map_err(|e| {
                Failure::system(
                    format!("{}:.initrd", kernel.display()),
                    format!("cannot put the UKI's initrd in a memfd: {e}"),
                    "give the initrd with --initrd",
                )
            })?)
        }
        // As for kexec_load (pipeline::make_plan): on a UEFI machine the
        // kernel's own loader passes the running tree's UEFI state on too
        // (drivers/of/kexec.c), so the new kernel would take the first
        // kernel's freed initrd from the EFI table; an empty one instead.
        (None, None) if Firmware::read(root).uefi == Some(true) => Some(
            kexec_sys::sealed_memfd(pipeline::EMPTY_INITRAMFS, &initramfs::empty()).map_err(
                |e| {
                    Failure::system(
                        pipeline::EMPTY_INITRAMFS,
                        format!("cannot put the empty initramfs in a memfd: {e}"),
                        "give an initrd with --initrd",
                    )
                },
            )?,
        ),
        (None, None) => None,
    };
    let empty_initramfs = input.initrd.is_none() && image.uki.initrd.is_none() && initrd.is_some();
    Ok(FileLoad {
        kernel: kernel_file,
        initrd,
        empty_initramfs,
        cmdline: line.unwrap_or_default(),
    })
}

/// `--dry-run`: the decision, then the plan `kexec_load` would load and
/// its memory map (with `--svg FILE`, also drawn as a picture in FILE).
fn dry_run(
    mode: LoadMode,
    kernel: &Path,
    input: &PlanInput<'_>,
    root: &Sysroot,
    json: bool,
    syscall_note: String,
    svg: Option<&Path>,
) -> Result<String, Failure> {
    let planned = pipeline::make_plan(input, mode, kernel, root)?;
    let plan = &planned.built.plan;
    let mut notes = planned.notes;
    notes.insert(0, syscall_note);
    let map = memmap::layout(&memmap::MapInput::new(&planned.memory_map, plan));
    if let Some(path) = svg {
        std::fs::write(path, memmap::to_svg(&map)).map_err(|e| {
            Failure::input(
                path.display().to_string(),
                format!("cannot write the memory map: {e}"),
                hints::output_file_unwritable(e.kind()),
            )
        })?;
        if !json {
            notes.push(format!("memory map drawn in {}", path.display()));
        }
    }
    let report = Report {
        map,
        checks: plan.check(),
        plan,
        kernel_file: pipeline::display_name(kernel),
        kernel_format: planned.kernel_format,
        cmdline: planned.cmdline,
        dtb_from: planned.dtb_from,
        chosen_created: planned.built.dtb.chosen_created,
        changes: &planned.built.dtb.changes,
        notes,
        firmware: planned.firmware,
        interface: planned.interface,
        handover: &planned.handover,
        risks: &planned.risks,
        psci_cpus: planned.built.psci_cpus.as_ref(),
    };
    Ok(if json {
        report.to_json()
    } else {
        report.to_text()
    })
}

/// The dry run's first note: which call, why, the state it read, and what
/// the kernel would do with the image.
fn syscall_note(
    decision: &Decision,
    state: &KexecState,
    image: Option<&kfile::FileImage>,
) -> String {
    let call = match decision.route {
        Route::KexecLoad => "kexec_load".to_owned(),
        Route::KexecFileLoad { fallback: true } => {
            "kexec_file_load (kexec_load if the kernel lacks it)".to_owned()
        }
        Route::KexecFileLoad { fallback: false } => "kexec_file_load".to_owned(),
    };
    let mut note = format!("syscall: {call}: {} ({})", decision.why, state.describe());
    if let (Route::KexecFileLoad { .. }, Some(image)) = (&decision.route, image) {
        note.push_str(if image.decoded.is_some() {
            "; the kernel would get the decompressed Image in a sealed memfd, unsigned"
        } else if image.signed == Some(true) {
            "; the kernel would get the file itself, which carries a PE signature"
        } else {
            "; the kernel would get the file itself, which carries no PE signature"
        });
        if state.locked_down() && (image.signed != Some(true) || image.decoded.is_some()) {
            note.push_str(&format!(
                " - lockdown will refuse it: {}",
                image.signature_problem()
            ));
        }
        note.push_str("; with kexec_file_load the kernel places the segments itself: the plan below is kexec_load's");
    }
    note
}

/// `-S`/`--status`: exit 1 if a kernel of `mode` is loaded, 0 if not, as
/// kexec-tools does (its `k_status` returns the flag's value as the exit
/// code), with a line saying which.
fn status(root: &Sysroot, mode: LoadMode) -> Result<Output, Failure> {
    let loaded = syscalls::is_loaded(root, mode)?;
    Ok(Output {
        text: format!(
            "{} kernel is loaded\n",
            if loaded {
                format!("a {}", mode.name())
            } else {
                format!("no {}", mode.name())
            }
        ),
        code: u8::from(loaded),
    })
}

/// `-d`: what kexec-tools users look for in its debug output: the
/// segments as handed to `kexec_load`, the entry, the purgatory.
fn debug_text(planned: &pipeline::Planned) -> String {
    let plan = &planned.built.plan;
    let mut out = format!(
        "kexec: debug: {} load, {} segments, entry {:#x} (the purgatory), DTB at {:#x}\n",
        plan.mode.name(),
        plan.segments.len(),
        plan.entry,
        plan.dtb_addr
    );
    for (i, s) in plan.segments.iter().enumerate() {
        out.push_str(&format!(
            "kexec: debug: segment[{i}] {:<9} bufsz {:#10x} mem {:#012x} memsz {:#10x} ({})\n",
            s.kind.to_string(),
            s.bufsz,
            s.mem,
            s.memsz,
            s.source
        ));
    }
    out
}

//! `kexec`: the command-line loader, a drop-in for kexec-tools on arm64.
//!
//! A thin layer: parse arguments, gather the system state (live, or replayed
//! from `--sysroot`), ask `kexec-core` for a load plan, then print it
//! (`--dry-run`, `--json`) or hand it to `kexec-sys` (`load.rs`).
//!
//! ```text
//! kexec -l|-p KERNEL [--initrd F] [--append S | --command-line S | --reuse-cmdline]
//!       [--dtb F] [-i] [--dry-run [--json]] [--sysroot DIR]
//! kexec -e [--no-sync]          kexec -u [-p]          kexec --status [-p]
//! kexec [-f] KERNEL ...         (load, then execute)
//! kexec -s -l KERNEL ...        (kexec_file_load: the kernel verifies and places)
//! kexec capture-sysroot DIR
//! kexec sim KERNEL [-p] [--sysroot DIR] [--config NAME|all] [--seeds N] [--json]
//!                               (the plan's handoff in the cachesim model: sim.rs)
//! ```
//!
//! Exit codes: 0 success, 1 other failure, 2 bad input, 3 system state.
#![forbid(unsafe_code)]

mod crashdump;
mod failure;
mod load;
mod report;
mod sim;
mod sysroot;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kexec_core::fdt::{self, ChosenEdit, CrashChosen, RNG_SEED_LEN};
use kexec_core::plan::{self, Blob, BuildError, KernelFacts, LoadMode, LoadRequest, SegmentKind};
use kexec_core::purgatory::{Purgatory, PurgatoryOptions};
use kexec_core::{cmdline, iomem, kernel};

use crate::failure::{chain, Failure};
use crate::report::Report;
use crate::sysroot::Sysroot;

/// Environment variable: a u64 (decimal or 0x-hex) that makes `kaslr-seed`
/// and `rng-seed` deterministic, for golden tests. Never set it in production.
pub const TEST_SEED_ENV: &str = "KEXEC_RS_TEST_SEED";

/// Command-line arguments, spelled as kexec-tools spells them.
#[derive(Debug, Parser)]
#[command(
    name = "kexec",
    version,
    about = "Load and boot a new Linux kernel (arm64)",
    args_conflicts_with_subcommands = true
)]
struct Args {
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
    /// Use kexec_file_load: the kernel reads, verifies and places the image
    /// (needed under lockdown; the kernel must have CONFIG_KEXEC_FILE).
    #[arg(
        short = 's',
        long = "kexec-file-syscall",
        conflicts_with = "kexec_syscall"
    )]
    kexec_file_syscall: bool,
    /// Use kexec_load (the default).
    #[arg(short = 'c', long = "kexec-syscall")]
    kexec_syscall: bool,
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
    },
    /// Make the plan `kexec -l` would load and run its handoff in the ARMv8
    /// memory-system model (cachesim); exit 1 on any violation.
    Sim(sim::SimArgs),
}

/// The options that shape a load plan, shared by `-l`/`-p` and `kexec sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanOptions {
    /// Initial ramdisk for the new kernel.
    #[arg(long, visible_alias = "ramdisk", value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Command line for the new kernel; repeatable, joined with spaces.
    #[arg(long = "append", visible_alias = "command-line", value_name = "S")]
    append: Vec<String>,
    /// Start from the running kernel's command line (minus BOOT_IMAGE=, initrd=,
    /// elfcorehdr=, and crashkernel= for -p).
    #[arg(long)]
    reuse_cmdline: bool,
    /// Device tree to pass instead of the running one (/sys/firmware/fdt).
    #[arg(long, value_name = "FILE")]
    dtb: Option<PathBuf>,
    /// Do not verify segment digests in the purgatory before booting.
    #[arg(short = 'i', long = "no-checks")]
    no_checks: bool,
}

impl PlanOptions {
    /// The planner's input; `purgatory` carries the switches beyond `-i`.
    pub(crate) fn input(&self, purgatory: PurgatoryOptions) -> PlanInput<'_> {
        PlanInput {
            initrd: self.initrd.as_deref(),
            append: &self.append,
            reuse_cmdline: self.reuse_cmdline,
            dtb: self.dtb.as_deref(),
            purgatory: PurgatoryOptions {
                no_verify: self.no_checks,
                ..purgatory
            },
        }
    }
}

impl Args {
    fn plan_input(&self) -> PlanInput<'_> {
        self.plan.input(PurgatoryOptions {
            force_soft_sha256: self.purgatory_soft_sha256,
            no_caches: self.purgatory_no_caches,
            ..PurgatoryOptions::default()
        })
    }
}

/// `--reuse-cmdline`: the running kernel's command line (from `root`)
/// without what must not be passed on; `None` without the option.
fn reused_cmdline(reuse: bool, root: &Sysroot, mode: LoadMode) -> Result<Option<String>, Failure> {
    if !reuse {
        return Ok(None);
    }
    let text = read_state(root, sysroot::CMDLINE, "--reuse-cmdline needs it")?;
    Ok(Some(cmdline::reused(
        &String::from_utf8_lossy(&text),
        mode == LoadMode::Crash,
    )))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Sim(sim_args)) = &args.command {
        return sim::main(sim_args);
    }
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("kexec: {f}");
            eprintln!("hint: {}", f.hint);
            ExitCode::from(f.code)
        }
    }
}

fn run(args: &Args) -> Result<String, Failure> {
    if let Some(Command::CaptureSysroot { dir }) = &args.command {
        return capture_sysroot(dir);
    }
    let sysroot = args
        .sysroot
        .as_deref()
        .map_or_else(Sysroot::live, Sysroot::at);
    let target = if args.load_panic {
        LoadMode::Crash
    } else {
        LoadMode::Normal
    };
    if args.status {
        return status(&sysroot, target);
    }
    if args.sysroot.is_some() && !args.dry_run {
        return Err(Failure::input(
            "arguments",
            "--sysroot describes another machine: only --dry-run and --status may use it",
            "add --dry-run to see the plan for that machine",
        ));
    }
    if args.unload {
        if args.dry_run {
            return Ok(format!(
                "dry run: would unload the {} kernel\n",
                kind_name(target)
            ));
        }
        return load::unload(target, args.kexec_file_syscall);
    }
    if args.exec && args.kernel.is_none() {
        if args.dry_run {
            return Ok("dry run: would sync and boot the loaded kernel\n".to_owned());
        }
        return Err(load::exec(&sysroot, args.no_sync));
    }
    let Some(kernel_path) = &args.kernel else {
        return Err(Failure::input(
            "arguments",
            "no kernel given",
            "kexec -l KERNEL [--initrd F] [--append S], then kexec -e; see --help",
        ));
    };
    // `kexec KERNEL` (neither -l nor -p), `-f`, or `-e KERNEL`: load, then boot.
    let then_exec = !args.load && !args.load_panic || args.force || args.exec;
    if then_exec && args.load_panic {
        return Err(Failure::input(
            "arguments",
            "-p loads a crash kernel, which only a panic boots",
            "drop -f/-e, or use -l",
        ));
    }
    let out = if args.kexec_file_syscall && !args.dry_run {
        let reused = reused_cmdline(args.plan.reuse_cmdline, &sysroot, target)?;
        let line = cmdline::build(reused.as_deref(), &args.plan.append)
            .map_err(|e| Failure::input("command line", &e, e.hint()))?;
        load::file_load(
            kernel_path,
            args.plan.initrd.as_deref(),
            &line.unwrap_or_default(),
            target,
        )?;
        String::new()
    } else {
        load_kernel(args, target, kernel_path, &sysroot)?
    };
    if then_exec && !args.dry_run {
        return Err(load::exec(&sysroot, args.no_sync));
    }
    Ok(out)
}

fn kind_name(mode: LoadMode) -> &'static str {
    match mode {
        LoadMode::Normal => "normal",
        LoadMode::Crash => "crash",
    }
}

/// `--status`: exit 0 if loaded, 1 if not (with a line saying which).
fn status(root: &Sysroot, mode: LoadMode) -> Result<String, Failure> {
    if load::is_loaded(root, mode)? {
        Ok(format!("a {} kernel is loaded\n", kind_name(mode)))
    } else {
        Err(Failure::other(
            root.path(match mode {
                LoadMode::Normal => sysroot::KEXEC_LOADED,
                LoadMode::Crash => sysroot::KEXEC_CRASH_LOADED,
            })
            .display()
            .to_string(),
            format!("no {} kernel is loaded", kind_name(mode)),
            "load one with `kexec -l` (or -p for a crash kernel)",
        ))
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::input(
            path.display().to_string(),
            format!("cannot read: {e}"),
            "check the path",
        )
    })
}

fn read_state(root: &Sysroot, rel: &str, hint: &str) -> Result<Vec<u8>, Failure> {
    root.read(rel).map_err(|e| {
        let hint = if root.is_live() {
            format!("{hint}; run as root")
        } else {
            format!("{hint}; capture it with `kexec capture-sysroot DIR` on the target")
        };
        Failure::system(
            root.path(rel).display().to_string(),
            format!("cannot read: {e}"),
            hint,
        )
    })
}

/// `kaslr-seed` and `rng-seed`: from the OS RNG, or derived from
/// [`TEST_SEED_ENV`] when set.
fn seeds() -> Result<(u64, Vec<u8>), Failure> {
    let mut bytes = vec![0u8; 8 + RNG_SEED_LEN];
    match std::env::var(TEST_SEED_ENV) {
        Ok(text) => {
            let parsed = match text.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => text.parse(),
            };
            let mut state = parsed.map_err(|e| {
                Failure::input(
                    TEST_SEED_ENV,
                    format!("{text:?}: {e}"),
                    "a u64, decimal or 0x-hex",
                )
            })?;
            // splitmix64: a fixed, documented stream.
            for chunk in bytes.chunks_mut(8) {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
            }
        }
        Err(_) => getrandom::fill(&mut bytes).map_err(|e| {
            Failure::system(
                "getrandom",
                e,
                "the OS random number generator is unavailable",
            )
        })?,
    }
    let mut kaslr = [0u8; 8];
    kaslr.copy_from_slice(&bytes[..8]);
    Ok((u64::from_le_bytes(kaslr), bytes[8..].to_vec()))
}

/// What a plan is made from besides the kernel and the system state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanInput<'a> {
    /// `--initrd`.
    pub initrd: Option<&'a Path>,
    /// `--append`, in order.
    pub append: &'a [String],
    /// `--reuse-cmdline`.
    pub reuse_cmdline: bool,
    /// `--dtb`.
    pub dtb: Option<&'a Path>,
    /// `-i` and the hidden purgatory test switches.
    pub purgatory: PurgatoryOptions,
}

/// Where `image` lies inside `file`, if it is a slice of it (a plain Image,
/// or an uncompressed UKI `.linux`, is borrowed from the file): then the
/// file's buffer is reused for it instead of copying the kernel, and peak
/// memory stays at the size of the input, as with kexec-tools. A
/// decompressed Image lives elsewhere and gives `None`.
fn image_span(file: &[u8], image: &[u8]) -> Option<(usize, usize)> {
    let offset = (image.as_ptr() as usize).checked_sub(file.as_ptr() as usize)?;
    let end = offset.checked_add(image.len())?;
    (end <= file.len()).then_some((offset, image.len()))
}

/// A plan and the bytes of every segment (what `kexec_load` is given).
#[derive(Debug)]
pub(crate) struct Planned {
    /// The plan, the edited DTB and the patched purgatory.
    pub built: plan::Built,
    /// The plain Image.
    pub kernel_image: Vec<u8>,
    /// The format the kernel came in.
    pub kernel_format: String,
    /// The initrd: (display name, path as given, bytes).
    pub initrd: Option<(String, String, Vec<u8>)>,
    /// The ELF core header of a crash load.
    pub elfcorehdr: Option<Vec<u8>>,
    /// The new command line (`None`: `bootargs` kept).
    pub cmdline: Option<String>,
    /// Where the device tree came from.
    pub dtb_from: String,
    /// Remarks for the user.
    pub notes: Vec<String>,
}

impl Planned {
    /// The segment buffers, by kind.
    pub fn buffers(&self) -> load::Buffers<'_> {
        load::Buffers {
            kernel: &self.kernel_image,
            initrd: self.initrd.as_ref().map(|(_, _, bytes)| bytes.as_slice()),
            dtb: &self.built.dtb.dtb,
            purgatory: self.built.purgatory.as_deref(),
            elfcorehdr: self.elfcorehdr.as_deref(),
        }
    }
}

/// Plan a load; print the plan (`--dry-run`) or carry it out.
fn load_kernel(
    args: &Args,
    mode: LoadMode,
    kernel_path: &Path,
    root: &Sysroot,
) -> Result<String, Failure> {
    let planned = plan_load(&args.plan_input(), mode, kernel_path, root)?;
    let plan = &planned.built.plan;
    if !args.dry_run {
        load::load(plan, &planned.buffers())?;
        return Ok(String::new());
    }
    let report = Report {
        checks: plan.check(),
        plan,
        kernel_file: display_name(kernel_path),
        kernel_format: planned.kernel_format,
        cmdline: planned.cmdline,
        dtb_from: planned.dtb_from,
        chosen_created: planned.built.dtb.chosen_created,
        changes: &planned.built.dtb.changes,
        notes: planned.notes,
    };
    Ok(if args.json {
        report.to_json()
    } else {
        report.to_text()
    })
}

/// Read the inputs and the system state and make the plan `kexec -l` (or
/// `-p`) loads.
pub(crate) fn plan_load(
    args: &PlanInput<'_>,
    mode: LoadMode,
    kernel_path: &Path,
    root: &Sysroot,
) -> Result<Planned, Failure> {
    let kernel_name = kernel_path.display().to_string();
    let kernel_bytes = read_input(kernel_path)?;
    let kernel = kernel::decode(&kernel_bytes).map_err(|e| {
        Failure::input(
            &kernel_name,
            chain(&e),
            "give an arm64 Image, Image.gz/.zst/.xz/.lz4, zboot, ELF vmlinux or UKI",
        )
    })?;
    let uki = kernel.uki.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let loaded = match mode {
        LoadMode::Normal => sysroot::KEXEC_LOADED,
        LoadMode::Crash => sysroot::KEXEC_CRASH_LOADED,
    };
    if root.flag(loaded) == Some(true) {
        notes.push(format!(
            "{loaded} is 1: a load would replace the kernel already loaded"
        ));
    }

    // Memory the plan may use.
    let iomem_path = root.path(sysroot::IOMEM).display().to_string();
    let iomem_text = String::from_utf8_lossy(&read_state(
        root,
        sysroot::IOMEM,
        "the memory map is needed",
    )?)
    .into_owned();
    let map = iomem::parse(&iomem_text).map_err(|e| match e {
        iomem::Error::AddressesHidden => Failure::system(
            &iomem_path,
            &e,
            "run as root: unprivileged readers see zeros",
        ),
        _ => Failure::input(&iomem_path, &e, "is this a /proc/iomem?"),
    })?;
    let memory = plan::memory_for(&map, mode).ok_or_else(|| {
        Failure::system(
            &iomem_path,
            "no \"Crash kernel\" region",
            "boot the running kernel with crashkernel=SIZE",
        )
    })?;
    let elfcorehdr = match mode {
        LoadMode::Crash => Some(crashdump::elf_core_header(root, &map, &mut notes)?),
        LoadMode::Normal => None,
    };
    let crash = (mode == LoadMode::Crash).then(|| {
        let mut usable = map.crash_regions();
        usable.reverse(); // high first, low last
        CrashChosen {
            elfcorehdr: None,
            usable,
        }
    });

    // Command line.
    let reused = reused_cmdline(args.reuse_cmdline, root, mode)?;
    let mut append = args.append.to_vec();
    if reused.is_none() && append.is_empty() {
        if let Some(c) = &uki.cmdline {
            append.push(c.clone());
        }
    }
    let new_cmdline = cmdline::build(reused.as_deref(), &append)
        .map_err(|e| Failure::input("command line", &e, e.hint()))?;

    // Device tree source.
    let (dtb_from, dtb_in) = match (args.dtb, &uki.dtb) {
        (Some(p), _) => (display_name(p), read_input(p)?),
        (None, Some(d)) => (format!("{}:.dtb", display_name(kernel_path)), d.clone()),
        (None, None) => (
            sysroot::FDT.to_owned(),
            read_state(root, sysroot::FDT, "the running device tree is needed")?,
        ),
    };
    let dtb_subject = args.dtb.map_or_else(
        || root.path(sysroot::FDT).display().to_string(),
        |p| p.display().to_string(),
    );
    fdt::parse_header(&dtb_in)
        .map_err(|e| Failure::input(&dtb_subject, &e, "not a valid flattened device tree"))?;

    // Place: kernel, initrd, the edited DTB (plan::build keeps that order).
    let kernel_source = display_name(kernel_path);
    let initrd_file = match args.initrd {
        Some(p) => Some((display_name(p), p.display().to_string(), read_input(p)?)),
        None => uki.initrd.clone().map(|d| {
            let name = format!("{kernel_source}:.initrd");
            (name.clone(), name, d)
        }),
    };
    let (kaslr_seed, rng_seed) = seeds()?;
    let purgatory = Purgatory::parse(load::PURGATORY).map_err(|e| {
        Failure::other(
            "built-in purgatory",
            e,
            "this kexec binary is broken; rebuild it",
        )
    })?;
    let purgatory_options = args.purgatory;
    let request = LoadRequest {
        mode,
        memory,
        kernel: Blob {
            source: &kernel_source,
            bytes: &kernel.image,
        },
        kernel_facts: KernelFacts::from_header(&kernel.header, kernel.image.len() as u64),
        initrd: initrd_file.as_ref().map(|(name, _, bytes)| Blob {
            source: name,
            bytes,
        }),
        dtb: &dtb_in,
        chosen: ChosenEdit {
            bootargs: new_cmdline.clone(),
            initrd: None,
            kaslr_seed: Some(kaslr_seed),
            rng_seed: Some(rng_seed),
            crash,
        },
        purgatory: Some((purgatory, purgatory_options)),
        elfcorehdr: elfcorehdr.as_deref().map(|bytes| Blob {
            source: "generated",
            bytes,
        }),
    };
    let built = plan::build(&request).map_err(|e| {
        let subject = match &e {
            BuildError::Place {
                kind: SegmentKind::Initrd,
                ..
            } => initrd_file
                .as_ref()
                .map_or_else(String::new, |f| f.1.clone()),
            BuildError::Place {
                kind: SegmentKind::Kernel,
                ..
            } => kernel_name.clone(),
            _ => dtb_subject.clone(),
        };
        Failure::input(subject, chain(&e), "see the rules in docs/plan-json.md")
    })?;
    if args.purgatory.no_verify {
        notes.push("-i: the purgatory will not verify segment digests".to_owned());
    }
    if built.uart.is_none() {
        notes.push("no PL011 console in stdout-path: the purgatory will be silent".to_owned());
    }
    let kernel_format = kernel.format.to_string();
    let kernel_image = match image_span(&kernel_bytes, &kernel.image) {
        None => kernel.image.into_owned(),
        Some((offset, len)) => {
            let mut file = kernel_bytes;
            file.truncate(offset + len);
            file.drain(..offset);
            file
        }
    };
    Ok(Planned {
        built,
        kernel_format,
        kernel_image,
        initrd: initrd_file,
        elfcorehdr,
        cmdline: new_cmdline,
        dtb_from,
        notes,
    })
}

fn capture_sysroot(dir: &Path) -> Result<String, Failure> {
    let live = Sysroot::live();
    let mut out = String::new();
    let results = sysroot::capture(&live, dir);
    for c in &results {
        match &c.result {
            Ok(n) => out.push_str(&format!(
                "wrote {} ({n} bytes)\n",
                dir.join(&c.rel).display()
            )),
            Err(e) => out.push_str(&format!("skipped /{}: {e}\n", c.rel)),
        }
    }
    let iomem_ok = results
        .iter()
        .any(|c| c.rel == sysroot::IOMEM && c.result.is_ok());
    if !iomem_ok {
        return Err(Failure::system(
            "/proc/iomem",
            "could not be captured",
            "run as root",
        ));
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(sysroot::IOMEM)) {
        if iomem::parse(&text) == Err(iomem::Error::AddressesHidden) {
            return Err(Failure::system(
                "/proc/iomem",
                "captured, but every address is zero",
                "run `kexec capture-sysroot` as root (CAP_SYS_ADMIN)",
            ));
        }
    }
    Ok(out)
}

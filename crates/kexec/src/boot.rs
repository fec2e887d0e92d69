//! `kexec boot`: what `systemctl kexec` does, without systemd — find the
//! Boot Loader Specification entries on the ESP and the XBOOTLDR partition
//! (`boot/scan.rs`), choose the entry systemd-boot would boot (or the one
//! named), and load it exactly as `kexec -l KERNEL --initrd F --append
//! OPTIONS [--dtb D]` would; with `-e`, boot it.
//!
//! ```text
//! kexec boot [ENTRY] [--list | --dry-run] [--json] [-e] [--esp DIR] [--boot DIR] [--sysroot DIR]
//! ```
//!
//! The parsing and the choice are pure (`kexec_core::bootentry`); this
//! module reads the files and hands the load to the caller's `load`, the
//! same function `kexec -l` uses (run.rs), so it has no loading path of its
//! own. Several `initrd` lines are concatenated, in order, into one file
//! in a private temporary directory, each but the last padded with zeros
//! to 4 bytes, as systemd-boot's `initrd_prepare()` (src/boot/boot.c) lays
//! them out: the kernel unpacks concatenated cpio archives one after the
//! other, skipping zeros between them, and an uncompressed archive must
//! start 4-byte aligned (`unpack_to_rootfs()` in init/initramfs.c;
//! Documentation/driver-api/early-userspace/buffer-format.rst). Empty
//! initrd files are skipped, as systemd-boot skips them.

mod scan;
mod show;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use kexec_core::bootentry::select::{self, Lookup};
use kexec_core::bootentry::KexecLoad;

use crate::failure::{Failure, Output};
use crate::plan_input::PlanInput;
use crate::syscalls;
use crate::sysroot::Sysroot;

use scan::{Found, Scan};

/// `kexec boot` arguments.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct BootArgs {
    /// The entry: its id (the file name without `.conf`, or the UKI's file
    /// name), its title or its version. Default: the entry systemd-boot
    /// would boot.
    entry: Option<String>,
    /// List the entries in boot order, the default marked; load nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "exec", "entry"])]
    list: bool,
    /// Show the chosen entry and the plan; make no system call.
    #[arg(long, conflicts_with = "exec")]
    dry_run: bool,
    /// With --list or --dry-run: print JSON.
    #[arg(long)]
    json: bool,
    /// Boot the entry once it is loaded (as `kexec -e` does).
    #[arg(short = 'e', long = "exec")]
    exec: bool,
    /// With --exec: do not sync file systems first.
    #[arg(short = 'y', long)]
    no_sync: bool,
    /// With --exec: do not take network interfaces down first.
    #[arg(short = 'x', long)]
    no_ifdown: bool,
    /// The EFI system partition (default: the first of /efi, /boot,
    /// /boot/efi that holds EFI/).
    #[arg(long, value_name = "DIR")]
    esp: Option<PathBuf>,
    /// The extended boot loader partition (default: /boot when it holds
    /// loader/ and is not the ESP).
    #[arg(long = "boot", value_name = "DIR")]
    boot: Option<PathBuf>,
    /// Read everything (partitions, EFI variables, memory map, device tree)
    /// under DIR instead of /; with --list or --dry-run.
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Say which system call is used and why (on stderr).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

/// How the loader is asked to load: `Some(json)` for a dry run.
pub(crate) type DryRun = Option<bool>;

/// Carries out `kexec boot`; `load` is `kexec -l`'s load (kernel, plan
/// input, root, dry run, verbose), returning what to print.
pub(crate) fn run(
    args: &BootArgs,
    load: impl FnOnce(&Path, &PlanInput<'_>, &Sysroot, DryRun, bool) -> Result<String, Failure>,
) -> Result<Output, Failure> {
    let only_reads = args.list || args.dry_run;
    if args.json && !only_reads {
        return Err(Failure::input(
            "arguments",
            "--json describes a listing or a plan",
            "add --list or --dry-run",
        ));
    }
    if args.sysroot.is_some() && !only_reads {
        return Err(Failure::input(
            "arguments",
            "--sysroot describes another machine: only --list and --dry-run may use it",
            "add --dry-run to see what would be loaded there",
        ));
    }
    let root = args
        .sysroot
        .as_deref()
        .map_or_else(Sysroot::live, Sysroot::at);
    let scan = scan::scan(&root, args.esp.as_deref(), args.boot.as_deref())?;
    if args.list {
        return Ok(Output::success(if args.json {
            show::list_json(&scan)
        } else {
            show::list_text(&scan)
        }));
    }
    let (index, why) = choose(&scan, args.entry.as_deref())?;
    let found = &scan.entries[index];
    let mut prepared = prepare(&scan, found)?;
    let input = PlanInput {
        initrd: prepared.initrd.as_deref(),
        append: prepared.append.as_deref().map(str::as_bytes),
        dtb: prepared.dtb.as_deref(),
        ..PlanInput::default()
    };
    let dry = args.dry_run.then_some(args.json);
    let plan = load(&prepared.kernel, &input, &root, dry, args.verbose)?;
    // The kernel copied the segments: the concatenation can go (before an
    // exec, which does not return).
    drop(prepared.scratch.take());
    let chosen = show::Chosen {
        scan: &scan,
        found,
        why: &why,
        load: &prepared.load,
        initrd_note: prepared.initrd_note.as_deref(),
    };
    if let Some(json) = dry {
        return if json {
            show::dry_run_json(&chosen, &plan).map(Output::success)
        } else {
            Ok(Output::success(show::dry_run_text(&chosen, &plan)))
        };
    }
    if args.exec {
        return Err(syscalls::exec(&root, !args.no_sync, !args.no_ifdown));
    }
    Ok(Output::success(format!(
        "loaded {} ({}); `kexec -e` boots it\n",
        found.shown,
        show::title(&found.entry)
    )))
}

/// The entry to load (index into the offered entries) and why it was
/// chosen; an error for a name that matches nothing bootable.
fn choose(scan: &Scan, name: Option<&str>) -> Result<(usize, String), Failure> {
    let Some(name) = name else {
        return match &scan.default {
            Some((i, reason)) => Ok((*i, format!("the default: {reason}"))),
            None => Err(no_entries(scan)),
        };
    };
    match select::lookup(&scan.entries, name) {
        Lookup::Found(i) => return Ok((i, format!("named {name:?}"))),
        Lookup::Ambiguous(hits) => {
            let ids: Vec<&str> = hits
                .iter()
                .map(|&i| scan.entries[i].entry.short_id())
                .collect();
            return Err(Failure::input(
                "arguments",
                format!(
                    "{name:?} matches {} entries: {}",
                    hits.len(),
                    ids.join(", ")
                ),
                "name the entry by its id (kexec boot --list shows them)",
            ));
        }
        Lookup::NotFound => {}
    }
    // A file that gives no bootable entry: say why.
    let stem = |f: &str| f.rsplit_once('.').map_or(f, |(s, _)| s).to_owned();
    let skipped = scan.skipped.iter().find(|s| {
        s.entry.as_ref().is_some_and(|e| {
            matches!(
                select::lookup(std::slice::from_ref(e), name),
                Lookup::Found(_)
            )
        }) || s.file_name.eq_ignore_ascii_case(name)
            || stem(&s.file_name).eq_ignore_ascii_case(name)
    });
    if let Some(s) = skipped {
        return Err(Failure::input(
            &s.shown,
            &s.problem,
            "this entry cannot be booted; kexec boot --list shows the others",
        ));
    }
    let ids: Vec<&str> = scan.entries.iter().map(|f| f.entry.short_id()).collect();
    Err(Failure::input(
        "arguments",
        format!("no boot entry {name:?}"),
        if ids.is_empty() {
            "there are no bootable entries (kexec boot --list)".to_owned()
        } else {
            format!("entries: {}", ids.join(", "))
        },
    ))
}

/// The failure when nothing can be booted.
fn no_entries(scan: &Scan) -> Failure {
    let places: Vec<String> = scan
        .partitions
        .iter()
        .map(|p| format!("{} {}", p.role.name().to_uppercase(), p.shown))
        .collect();
    Failure::system(
        "boot entries",
        format!(
            "no bootable entry in {} ({} skipped)",
            places.join(" and "),
            scan.skipped.len()
        ),
        "this boot loader may not use Boot Loader Specification entries (GRUB without BLS): \
         load the kernel by hand with kexec -l KERNEL --initrd F --reuse-cmdline",
    )
}

/// What is handed to the loader, and the files it needs.
struct Prepared {
    /// The entry's load, paths inside its partition.
    load: KexecLoad,
    /// The kernel's real path.
    kernel: PathBuf,
    /// The initrd's real path (an entry's only initrd, or the concatenation).
    initrd: Option<PathBuf>,
    /// How the initrd was made, when it was concatenated or some were empty.
    initrd_note: Option<String>,
    /// `--append` (none: the device tree's `bootargs` are kept).
    append: Option<String>,
    /// `--dtb`.
    dtb: Option<PathBuf>,
    /// The temporary directory holding a concatenation, removed on drop.
    scratch: Option<Scratch>,
}

/// Checks every file the entry names and makes the initrd.
fn prepare(scan: &Scan, found: &Found) -> Result<Prepared, Failure> {
    let part = &scan.partitions[found.partition];
    let load = found.entry.kexec_load().map_err(|e| {
        Failure::input(
            &found.shown,
            &e,
            "kexec cannot boot this entry: name another (kexec boot ENTRY; --list shows \
             them), or load a kernel by hand with kexec -l",
        )
    })?;
    let existing = |what: &str, path: &str| -> Result<PathBuf, Failure> {
        let real = part.real(path);
        if real.is_file() {
            Ok(real)
        } else {
            Err(Failure::input(
                &found.shown,
                format!("its {what} {} is missing", part.show(path)),
                "the entry names a file its partition does not hold: reinstall that kernel \
                 (kernel-install add) or pick another entry (kexec boot --list)",
            ))
        }
    };
    let kernel = existing(if load.uki { "UKI" } else { "kernel" }, &load.kernel)?;
    let mut initrds = Vec::new();
    let mut empty = Vec::new();
    for path in &load.initrd {
        let real = existing("initrd", path)?;
        let len = fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            empty.push(part.show(path));
        } else {
            initrds.push((path.clone(), real));
        }
    }
    let dtb = load
        .devicetree
        .as_deref()
        .map(|p| existing("devicetree", p))
        .transpose()?;
    let mut notes = Vec::new();
    if !empty.is_empty() {
        notes.push(format!(
            "empty, skipped as systemd-boot skips them: {}",
            empty.join(", ")
        ));
    }
    let (initrd, scratch) = match initrds.len() {
        0 => (None, None),
        1 => (Some(initrds.remove(0).1), None),
        n => {
            let scratch = Scratch::new()?;
            let out = scratch.0.join(format!("{}.initrd", found.entry.short_id()));
            concatenate(
                &initrds.iter().map(|(_, p)| p.as_path()).collect::<Vec<_>>(),
                &out,
            )?;
            notes.push(format!(
                "{n} initrds concatenated in order, each but the last padded to 4 bytes"
            ));
            (Some(out), Some(scratch))
        }
    };
    Ok(Prepared {
        append: load.command_line.clone(),
        load,
        kernel,
        initrd,
        initrd_note: (!notes.is_empty()).then(|| notes.join("; ")),
        dtb,
        scratch,
    })
}

/// Writes `parts` one after the other to `out`, zero-padding each but the
/// last to a multiple of 4 bytes (see the module comment).
fn concatenate(parts: &[&Path], out: &Path) -> Result<(), Failure> {
    let write_err = |e: std::io::Error| {
        Failure::system(
            out.display().to_string(),
            format!("cannot write: {e}"),
            "free space in the temporary directory ($TMPDIR)",
        )
    };
    let mut file = fs::File::create(out).map_err(write_err)?;
    for (i, part) in parts.iter().enumerate() {
        let mut input = fs::File::open(part).map_err(|e| {
            Failure::input(
                part.display().to_string(),
                format!("cannot read: {e}"),
                "check the file",
            )
        })?;
        let copied = std::io::copy(&mut input, &mut file).map_err(write_err)?;
        if i + 1 < parts.len() {
            let pad = copied.next_multiple_of(4) - copied;
            file.write_all(&[0u8; 3][..usize::try_from(pad).unwrap_or(0)])
                .map_err(write_err)?;
        }
    }
    file.flush().map_err(write_err)
}

/// A private temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, Failure> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let dir = base.join(format!("kexec-boot-{}-{n}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Failure::system(
                        dir.display().to_string(),
                        format!("cannot create: {e}"),
                        "the initrds are concatenated in $TMPDIR (default /tmp): make it writable",
                    ))
                }
            }
        }
        Err(Failure::system(
            base.display().to_string(),
            "no free name for a scratch directory",
            "clean up kexec-boot-* there",
        ))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenation_pads_all_but_the_last_to_four_bytes() {
        let dir = Scratch::new().unwrap();
        let (a, b, c, out) = (
            dir.0.join("a"),
            dir.0.join("b"),
            dir.0.join("c"),
            dir.0.join("out"),
        );
        fs::write(&a, b"12345").unwrap();
        fs::write(&b, b"abcd").unwrap();
        fs::write(&c, b"xy").unwrap();
        concatenate(&[&a, &b, &c], &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"12345\0\0\0abcdxy");
        concatenate(&[&c, &a], &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"xy\x00\x0012345");
        let kept = dir.0.clone();
        drop(dir);
        assert!(!kept.exists(), "the scratch directory is removed");
    }
}

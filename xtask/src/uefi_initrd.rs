//! A load without initrd on a UEFI machine: kernel A's initrd came through
//! EDK II's `LINUX_EFI_INITRD_MEDIA` LoadFile2 (QEMU's `-initrd` under
//! `-bios`), so the EFI stub installed the configuration table naming it;
//! kernel B, kexec'd with no `--initrd`, must boot as without initrd
//! instead of taking that (freed) initrd from the table
//! (kexec_core::initramfs says why; our loader hands over an empty
//! initramfs of one page).
//!
//! Kernel B has nothing to run, so it ends the way a kernel with no initrd
//! and no `root=` does: "VFS: Unable to mount root fs", a panic, and with
//! `panic=-1` a reset, which `-no-reboot` turns into QEMU's exit.
//! [`check`] reads B's console for what it did with its initrd.

use anyhow::{bail, Context, Result};

use crate::guest::{stage_initramfs, FileSource, Stage};
use crate::qemu::{Boot, Console, MachineShape, Timeline};
use crate::scenario::{build_our_kexec, resolve_kernel, Loader, WorkDir, STEP_TIMEOUT};
use crate::setup::Assets;
use crate::uefi::{shape, Tables};

/// Kernel B's command line: no `root=`, a reset on panic.
pub const B_CMDLINE: &str = "console=ttyAMA0 panic=-1 kxt.stage=b";

/// What kernel B prints when it frees an initrd of one page
/// (init/initramfs.c `free_initrd_mem`, mm/page_alloc.c
/// `free_reserved_area`): the empty initramfs and nothing else.
pub const FREED_ONE_PAGE: &str = "Freeing initrd memory: 4K";

/// The UEFI machine with a device tree, at its smallest: 1 CPU, 1 GiB
/// (the table comes from the EFI stub whatever the size).
pub fn small_shape() -> MachineShape {
    MachineShape {
        cpus: 1,
        memory_mib: 1024,
        ..shape(Tables::DeviceTree)
    }
}

/// Boot kernel A on [`small_shape`], load kernel B (the same kernel,
/// `kernel` as [`resolve_kernel`] names it) with `loader`, `args` and no
/// initrd, `-e`, and return the console once QEMU has exited.
pub fn run(assets: &Assets, loader: Loader, kernel: Option<&str>, args: &str) -> Result<Timeline> {
    let work = WorkDir::new("uefi-initrd")?;
    let kernel = &resolve_kernel(assets, kernel)?.image;
    let mut files = vec![(
        "/payload/Image".to_owned(),
        FileSource::Host(kernel.clone()),
    )];
    if loader == Loader::Ours {
        files.push((
            Loader::Ours.guest_path().to_owned(),
            FileSource::Host(build_our_kexec()?),
        ));
    }
    let path = loader.guest_path();
    let stage = Stage {
        name: "a".into(),
        script: format!(
            "say step load\n\
             {path} -l /payload/Image {args} --command-line=\"{B_CMDLINE}\" || fail \"load failed ($?)\"\n\
             say loaded\n\
             sync\n\
             {path} -e\n\
             fail \"exec returned ($?)\"\n"
        ),
        files,
    };
    let initrd = work.0.join("initrd-a");
    stage_initramfs(assets, &stage, &initrd)?;
    let boot = Boot::new(
        small_shape(),
        kernel,
        &initrd,
        "console=ttyAMA0 kxt.stage=a",
    );
    let mut console = Console::start(&boot)?;
    console.expect("a", "boot", STEP_TIMEOUT)?;
    console.expect("a", "loaded", STEP_TIMEOUT)?;
    console.finish(STEP_TIMEOUT)
}

/// Kernel B's console (after A's `loaded`) shows that it unpacked an initrd
/// of one page without error ([`FREED_ONE_PAGE`]), ran no `/init` (no
/// `@@kxt b` line: a stale copy of A's initramfs would run one) and
/// stopped for want of a root file system.
pub fn check(timeline: &Timeline) -> Result<()> {
    let loaded = timeline
        .lines
        .iter()
        .position(|l| l.text.contains("@@kxt a loaded"))
        .context("kernel a never loaded kernel b")?;
    let b: Vec<&str> = timeline.lines[loaded + 1..]
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    let has = |needle: &str| b.iter().any(|l| l.contains(needle));
    if !has("Booting Linux on physical CPU") {
        bail!("kernel b did not boot");
    }
    for bad in [
        "Initramfs unpacking failed",
        "rootfs image is not initramfs",
        "@@kxt b ",
    ] {
        if let Some(line) = b.iter().find(|l| l.contains(bad)) {
            bail!("kernel b took an initrd it was not given: {line:?}");
        }
    }
    if !has("Trying to unpack rootfs image as initramfs") && !has("Unpacking initramfs") {
        bail!("kernel b found no initrd (the empty initramfs was not handed over)");
    }
    if let Some(freed) = b.iter().find(|l| l.contains("Freeing initrd memory")) {
        if !freed.contains(FREED_ONE_PAGE) {
            bail!("kernel b freed an initrd other than the empty one: {freed:?}");
        }
    } else {
        bail!("kernel b never freed its initrd ({FREED_ONE_PAGE:?})");
    }
    // With a block layer the kernel looks for `root=` (init/do_mounts.c
    // mount_root); without one (the kernel we build) for an init program
    // on the empty rootfs (init/main.c kernel_init).
    if !has("VFS: Unable to mount root fs") && !has("No working init found") {
        bail!("kernel b did not end for want of a root file system or an init");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [&str; 2] = ["@@kxt a boot 6.1.0", "@@kxt a loaded"];
    const GOOD: [&str; 5] = [
        "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]",
        "[    1.000000] Trying to unpack rootfs image as initramfs...",
        "[    1.100000] Freeing initrd memory: 4K",
        "[    2.000000] VFS: Cannot open root device \"\" or unknown-block(0,0): error -6",
        "[    2.000000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    ];

    fn timeline(b: &[&str]) -> Timeline {
        Timeline::from_text(&[&A[..], b].concat())
    }

    #[test]
    fn the_empty_initramfs_passes() {
        check(&timeline(&GOOD)).unwrap();
    }

    #[test]
    fn each_sign_of_a_stale_initrd_fails() {
        let err = |b: Vec<&str>| check(&timeline(&b)).unwrap_err().to_string();
        let with = |i: usize, line: &'static str| {
            let mut b = GOOD.to_vec();
            b[i] = line;
            b
        };
        // The freed initrd, overwritten since, or another size.
        let e = err(with(
            2,
            "Initramfs unpacking failed: invalid magic at start of compressed archive",
        ));
        assert!(
            e.starts_with("kernel b took an initrd it was not given"),
            "{e}"
        );
        let e = err(with(
            2,
            "rootfs image is not initramfs (junk in compressed archive); looks like an initrd",
        ));
        assert!(
            e.starts_with("kernel b took an initrd it was not given"),
            "{e}"
        );
        let e = err(with(2, "Freeing initrd memory: 20480K"));
        assert!(e.starts_with("kernel b freed an initrd other"), "{e}");
        // A's initramfs, still intact, run again as stage b.
        let mut b = GOOD.to_vec();
        b.insert(3, "@@kxt b boot 6.1.0");
        assert!(err(b).starts_with("kernel b took an initrd"));
        // No initrd at all, or not freed.
        let e = err(with(1, "Run /init as init process"));
        assert!(e.starts_with("kernel b found no initrd"), "{e}");
        let e = err(with(2, "nothing"));
        assert!(e.starts_with("kernel b never freed"), "{e}");
        // B did not boot, or did not stop for want of a root.
        assert_eq!(err(vec![]), "kernel b did not boot");
        let e = err(GOOD[..4].to_vec());
        assert!(e.starts_with("kernel b did not end"), "{e}");
        // The kernel without a block layer ends for want of an init.
        let mut b = GOOD.to_vec();
        b[4] = "Kernel panic - not syncing: No working init found.  Try passing init= option";
        check(&timeline(&b)).unwrap();
        // A never loaded B.
        let e = check(&Timeline::from_text(&GOOD)).unwrap_err().to_string();
        assert_eq!(e, "kernel a never loaded kernel b");
    }

    #[test]
    fn the_machine_is_the_uefi_one_at_its_smallest() {
        let s = small_shape();
        assert_eq!((s.cpus, s.memory_mib), (1, 1024));
        assert_eq!(s.extra_qemu_args, shape(Tables::DeviceTree).extra_qemu_args);
        assert!(B_CMDLINE.contains("panic=-1") && !B_CMDLINE.contains("root="));
    }
}

//! Capture a *sysroot* from a QEMU guest: the `/proc` and `/sys` files the
//! loader reads, written under a directory with the same relative paths, so
//! `kexec --sysroot DIR` can replay that machine anywhere.
//!
//! Which files is decided in one place, `crates/kexec/src/capture.rs`: the
//! guest runs our own `kexec capture-sysroot` (built for arm64) and prints
//! every file it wrote. (xtask cannot depend on the `kexec` crate for the
//! list: building it builds the purgatory for `aarch64-unknown-none`, a
//! target that `cargo xtask setup` is what installs.)
//!
//! The guest prints each file base64-encoded between marker lines
//! (`file-begin PATH`, `b64 LINE`…, `file-end PATH`); the host decodes them.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::guest::{stage_initramfs, FileSource, Stage};
use crate::qemu::{Boot, Console, MachineShape, Timeline};
use crate::scenario::{build_our_kexec, Loader, WorkDir, STEP_TIMEOUT};
use crate::setup::Assets;
use crate::uefi::{self, Tables};

/// Where the guest's `kexec capture-sysroot` writes the sysroot.
const GUEST_SYSROOT: &str = "/tmp/sysroot";

/// A named machine shape whose sysroot is kept as a test fixture.
#[derive(Debug, Clone)]
pub struct CaptureShape {
    /// Directory name of the fixture.
    pub name: &'static str,
    /// The machine.
    pub shape: MachineShape,
}

/// The shapes of the committed fixtures.
pub fn fixture_shapes() -> Vec<CaptureShape> {
    let base = MachineShape::default;
    vec![
        CaptureShape {
            name: "virt-1g",
            shape: MachineShape {
                cpus: 2,
                memory_mib: 1024,
                ..base()
            },
        },
        CaptureShape {
            name: "virt-4g",
            shape: MachineShape {
                cpus: 2,
                memory_mib: 4096,
                ..base()
            },
        },
        CaptureShape {
            name: "virt-1g-crashkernel",
            shape: MachineShape {
                cpus: 2,
                memory_mib: 1024,
                kernel_args: vec!["crashkernel=256M".into()],
                ..base()
            },
        },
        CaptureShape {
            name: "virt-1g-smp4",
            shape: MachineShape {
                cpus: 4,
                memory_mib: 1024,
                ..base()
            },
        },
        CaptureShape {
            name: "virt-uefi-dt",
            shape: uefi::shape(Tables::DeviceTree),
        },
        CaptureShape {
            name: "virt-uefi-acpi",
            shape: uefi::shape(Tables::Acpi),
        },
    ]
}

/// The guest's script: `kexec capture-sysroot` into [`GUEST_SYSROOT`], then
/// every file it wrote, in path order.
fn capture_script() -> String {
    let kexec = Loader::Ours.guest_path();
    format!(
        "say step capture\n\
         {kexec} capture-sysroot {GUEST_SYSROOT} >/tmp/capture.out 2>&1 || \
         fail \"kexec capture-sysroot failed ($?): $(head -c 400 /tmp/capture.out | tr '\\n' ' ')\"\n\
         cd {GUEST_SYSROOT} || fail \"no {GUEST_SYSROOT}\"\n\
         for p in $(find . -type f | sed 's|^\\./||' | sort); do say file-begin $p; \
         base64 $p | sed 's/^/@@kxt '\"$stage\"' b64 /'; say file-end $p; done\n\
         cd /\n"
    )
}

/// Decode the files a capture run printed.
pub fn decode_files(timeline: &Timeline) -> Result<Vec<(String, Vec<u8>)>> {
    use base64::Engine as _;
    let mut files = Vec::new();
    let mut current: Option<(String, String)> = None;
    for m in &timeline.markers {
        match (m.key.as_str(), &mut current) {
            ("file-begin", None) => current = Some((m.value.clone(), String::new())),
            ("b64", Some((_, data))) => data.push_str(m.value.trim()),
            ("file-end", Some((path, data))) if *path == m.value => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .with_context(|| format!("bad base64 for {path}"))?;
                files.push((path.clone(), bytes));
                current = None;
            }
            ("file-begin" | "b64" | "file-end", _) => {
                bail!("out-of-order capture marker {}", m.step())
            }
            _ => {}
        }
    }
    if let Some((path, _)) = current {
        bail!("capture of {path} never ended");
    }
    Ok(files)
}

/// Boot `shape` and write its sysroot into `dest`.
pub fn capture_sysroot(assets: &Assets, shape: &MachineShape, dest: &Path) -> Result<()> {
    let work = WorkDir::new("capture")?;
    let initrd = work.0.join("initrd");
    let kexec = build_our_kexec()?;
    let stage = Stage {
        name: "cap".into(),
        script: capture_script(),
        files: vec![(Loader::Ours.guest_path().into(), FileSource::Host(kexec))],
    };
    stage_initramfs(assets, &stage, &initrd)?;
    let boot = Boot::new(
        shape.clone(),
        &assets.kernel.image,
        &initrd,
        "console=ttyAMA0 kxt.stage=cap",
    );
    let mut console = Console::start(&boot)?;
    console.expect("cap", "end", STEP_TIMEOUT)?;
    let timeline = console.finish(Duration::from_secs(120))?;
    let files = decode_files(&timeline)?;
    if !files.iter().any(|(p, _)| p == "proc/iomem") {
        bail!("the guest printed no /proc/iomem");
    }
    let _ = fs::remove_dir_all(dest);
    for (path, bytes) in files {
        let to = dest.join(&path);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_files_split_over_lines() {
        let t = Timeline::from_text(&[
            "@@kxt cap file-begin proc/cmdline",
            "@@kxt cap b64 Y29uc29s",
            "[    1.0] noise",
            "@@kxt cap b64 ZT10dHlBTUEwCg==",
            "@@kxt cap file-end proc/cmdline",
        ]);
        let files = decode_files(&t).unwrap();
        assert_eq!(
            files,
            vec![("proc/cmdline".to_owned(), b"console=ttyAMA0\n".to_vec())]
        );
    }

    #[test]
    fn the_guest_runs_our_capture_sysroot() {
        let script = capture_script();
        assert!(
            script.contains(
                "/bin/kexec-rs capture-sysroot /tmp/sysroot >/tmp/capture.out 2>&1 || fail"
            ),
            "{script}"
        );
        assert!(
            script.contains("for p in $(find . -type f | sed 's|^\\./||' | sort); do"),
            "{script}"
        );
    }

    #[test]
    fn unterminated_file_is_an_error() {
        let t = Timeline::from_text(&["@@kxt cap file-begin proc/iomem", "@@kxt cap b64 AAAA"]);
        assert_eq!(
            decode_files(&t).unwrap_err().to_string(),
            "capture of proc/iomem never ended"
        );
    }
}

//! Capture a *sysroot* from a QEMU guest: the `/proc` and `/sys` files the
//! loader reads, written under a directory with the same relative paths, so
//! `kexec --sysroot DIR` can replay that machine anywhere.
//!
//! The guest prints each file base64-encoded between marker lines
//! (`file-begin PATH`, `b64 LINE`…, `file-end PATH`); the host decodes them.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::guest::{stage_initramfs, Stage};
use crate::qemu::{Boot, Console, MachineShape, Timeline};
use crate::scenario::{WorkDir, STEP_TIMEOUT};
use crate::setup::Assets;

/// The files a sysroot holds (those that exist on the guest are captured).
pub const SYSROOT_FILES: [&str; 12] = [
    "proc/iomem",
    "proc/cmdline",
    "proc/sys/kernel/kexec_load_disabled",
    "sys/firmware/fdt",
    "sys/kernel/kexec_loaded",
    "sys/kernel/kexec_crash_loaded",
    "sys/kernel/kexec_crash_size",
    "sys/kernel/vmcoreinfo",
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/possible",
    "sys/devices/system/cpu/cpu0/crash_notes",
    "sys/devices/system/cpu/cpu0/crash_notes_size",
];

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
    ]
}

fn capture_script() -> String {
    let mut script = String::from("say step capture\n");
    for file in SYSROOT_FILES {
        script.push_str(&format!(
            "if [ -e /{file} ]; then say file-begin {file}; \
             base64 /{file} | sed 's/^/@@kxt '\"$stage\"' b64 /'; say file-end {file}; fi\n"
        ));
    }
    // crash_notes for every CPU beyond cpu0.
    script.push_str(
        "for d in /sys/devices/system/cpu/cpu[1-9]*; do for f in crash_notes crash_notes_size; do \
         p=${d#/}/$f; if [ -e /$p ]; then say file-begin $p; \
         base64 /$p | sed 's/^/@@kxt '\"$stage\"' b64 /'; say file-end $p; fi; done; done\n",
    );
    script
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
    let stage = Stage {
        name: "cap".into(),
        script: capture_script(),
        files: Vec::new(),
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
    fn unterminated_file_is_an_error() {
        let t = Timeline::from_text(&["@@kxt cap file-begin proc/iomem", "@@kxt cap b64 AAAA"]);
        assert_eq!(
            decode_files(&t).unwrap_err().to_string(),
            "capture of proc/iomem never ended"
        );
    }
}

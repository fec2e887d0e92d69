//! The `kexec boot` end-to-end hop: the next kernel is installed in the
//! guest as a Boot Loader Specification entry, laid out as kernel-install
//! lays one out on an XBOOTLDR partition (`/boot/loader/entries/*.conf`,
//! paths inside `/boot`), next to a decoy entry that sorts after it, and
//! the running kernel's `/init` runs `kexec boot --exec`
//! ([`crate::scenario::Hop::boot_entry`]).
//!
//! The next kernel's initramfs (the base archive, zero padding to 4 bytes,
//! the stage archive: `guest::stage_initramfs`) is split into two `initrd`
//! lines at the end of the base archive, without the padding, and the
//! options into two `options` lines: the digest of the initrd the new
//! kernel reports equals the host file's only if `kexec boot` joined the
//! options with a space and concatenated the initrds in order, padding the
//! first to 4 bytes as systemd-boot does; the decoy carries a wrong marker,
//! so a wrong choice of default fails too.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::guest::FileSource;

/// The entry `kexec boot` must choose, as `--list` shows its id.
pub const ENTRY_ID: &str = "kxt-next";

/// The guest files of a boot-entry hop: the kernel `image`, the next
/// initramfs `initrd` split after its first `base_len` bytes, the entry
/// with `cmdline`, and the decoy. Split files are written to `work`
/// (created).
pub fn files(
    image: &Path,
    initrd: &Path,
    base_len: u64,
    cmdline: &str,
    work: &Path,
) -> Result<Vec<(String, FileSource)>> {
    let bytes = fs::read(initrd).with_context(|| format!("reading {}", initrd.display()))?;
    let base = usize::try_from(base_len)?;
    let stage = base.next_multiple_of(4);
    if stage > bytes.len() || bytes[base..stage].iter().any(|&b| b != 0) {
        bail!(
            "{} does not hold the base initramfs ({base_len} bytes) then zero padding",
            initrd.display()
        );
    }
    fs::create_dir_all(work)?;
    let (first, second) = (work.join("initrd-base"), work.join("initrd-stage"));
    fs::write(&first, &bytes[..base])?;
    fs::write(&second, &bytes[stage..])?;
    let (head, tail) = cmdline.split_once(' ').unwrap_or((cmdline, ""));
    let entry = |version: &str, options: &str| {
        format!(
            "# kexec-rs e2e: the next kernel, as kernel-install would add it\n\
             title      kexec-rs e2e next kernel\n\
             version    {version}\n\
             sort-key   kxt\n\
             linux      /kxt/Image\n\
             initrd     /kxt/initrd-base\n\
             initrd     /kxt/initrd-stage\n\
             {options}"
        )
    };
    Ok(vec![
        (
            "/boot/kxt/Image".into(),
            FileSource::Host(image.to_path_buf()),
        ),
        ("/boot/kxt/initrd-base".into(), FileSource::Host(first)),
        ("/boot/kxt/initrd-stage".into(), FileSource::Host(second)),
        (
            format!("/boot/loader/entries/{ENTRY_ID}.conf"),
            FileSource::Bytes(
                entry("2.0", &format!("options    {head}\noptions    {tail}\n")).into_bytes(),
            ),
        ),
        (
            "/boot/loader/entries/kxt-decoy.conf".into(),
            FileSource::Bytes(
                entry("1.0", "options    console=ttyAMA0 kxt.marker=decoy\n").into_bytes(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initramfs_is_split_where_the_stage_archive_starts() {
        let dir = std::env::temp_dir().join(format!("xtask-boot-entry-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let initrd = dir.join("initrd");
        fs::write(&initrd, b"BASE5\0\0\0STAGE").unwrap();
        let files = files(
            Path::new("Image"),
            &initrd,
            5,
            "console=ttyAMA0 a=1 b",
            &dir,
        )
        .unwrap();
        assert_eq!(fs::read(dir.join("initrd-base")).unwrap(), b"BASE5");
        assert_eq!(fs::read(dir.join("initrd-stage")).unwrap(), b"STAGE");
        let FileSource::Bytes(entry) = &files[3].1 else {
            panic!()
        };
        let entry = String::from_utf8_lossy(entry);
        assert!(
            entry.contains("options    console=ttyAMA0\noptions    a=1 b\n"),
            "{entry}"
        );
        // Not zeros where the padding should be: refused.
        fs::write(&initrd, b"BASE5\0x\0STAGE").unwrap();
        assert!(super::files(Path::new("Image"), &initrd, 5, "x", &dir).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}

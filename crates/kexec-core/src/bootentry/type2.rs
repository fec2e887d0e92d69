//! Type #2 entries: Unified Kernel Images in `EFI/Linux/*.efi`, named from
//! their `.osrel` section ([`super::osrel`]) as systemd-boot's
//! `boot_entry_add_type2()` (src/boot/boot.c) names them; the `.cmdline` is
//! shown with surrounding whitespace trimmed (bootctl's `trim_cmdline()`).
//! The caller finds the sections ([`crate::pe::UkiLayout`]). Only a UKI's
//! base profile is offered (multi-profile UKIs add `@N` entries in
//! systemd-boot; not here).

use std::fmt;

use super::osrel::OsRelease;
use super::{counting, type1, Entry, EntryType, Loader};

/// The directory of Type #2 entries inside a partition.
pub const DIR: &str = "EFI/Linux";

/// Why a UKI gives no entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No `.osrel` section (systemd skips the UKI).
    NoOsRelease,
    /// The `.osrel` section is not text.
    OsRelease(type1::Error),
    /// `.osrel` has none of `PRETTY_NAME`, `IMAGE_ID`, `NAME`, `ID`.
    NoName,
    /// The `.cmdline` section is not text.
    Cmdline(type1::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoOsRelease => f.write_str("no .osrel section (systemd-boot skips it too)"),
            Error::OsRelease(e) => write!(f, ".osrel: {e}"),
            Error::NoName => f.write_str(
                ".osrel has no PRETTY_NAME, IMAGE_ID, NAME or ID (systemd-boot skips it too)",
            ),
            Error::Cmdline(e) => write!(f, ".cmdline: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The entry of the UKI `file_name` in [`DIR`], from its `.osrel` and
/// `.cmdline` section contents.
pub fn entry(
    file_name: &str,
    osrel: Option<&[u8]>,
    cmdline: Option<&[u8]>,
) -> Result<Entry, Error> {
    let osrel = osrel.ok_or(Error::NoOsRelease)?;
    let text = type1::text_of(osrel).map_err(Error::OsRelease)?;
    let picked = OsRelease::parse(text).pick().ok_or(Error::NoName)?;
    let options = match cmdline {
        None => Vec::new(),
        Some(bytes) => {
            let text = type1::text_of(trim_nuls(bytes)).map_err(Error::Cmdline)?;
            let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
            if trimmed.is_empty() {
                Vec::new()
            } else {
                vec![trimmed.to_owned()]
            }
        }
    };
    let (id, tries) = counting::split(file_name);
    Ok(Entry {
        kind: EntryType::Type2,
        file_name: file_name.to_owned(),
        id,
        tries,
        title: Some(picked.title),
        version: picked.version,
        machine_id: None,
        sort_key: picked.sort_key,
        architecture: None,
        loader: Some(Loader::Uki(format!("/{DIR}/{file_name}"))),
        initrd: Vec::new(),
        options,
        devicetree: None,
        devicetree_overlay: Vec::new(),
        ignored: Vec::new(),
    })
}

/// A section padded with NULs (as `objcopy` may leave it) without them.
fn trim_nuls(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uki_entry() {
        let e = entry(
            "arch-linux+3.efi",
            Some(b"PRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n"),
            Some(b" root=/dev/vda2 rw \n\0\0"),
        )
        .unwrap();
        assert_eq!(e.id, "arch-linux.efi");
        assert_eq!(e.tries.map(|t| t.left), Some(3));
        assert_eq!(e.title.as_deref(), Some("Arch Linux"));
        assert_eq!(e.sort_key.as_deref(), Some("arch"));
        assert_eq!(
            e.loader,
            Some(Loader::Uki("/EFI/Linux/arch-linux+3.efi".into()))
        );
        assert_eq!(e.options, ["root=/dev/vda2 rw"]);
        let load = e.kexec_load().unwrap();
        assert!(load.uki);
        assert_eq!(
            load.command_line, None,
            "the UKI's own .cmdline is used by the loader"
        );
    }

    #[test]
    fn what_systemd_skips() {
        assert_eq!(entry("a.efi", None, None), Err(Error::NoOsRelease));
        assert_eq!(
            entry("a.efi", Some(b"VERSION_ID=1\n"), None),
            Err(Error::NoName)
        );
        assert!(matches!(
            entry("a.efi", Some(b"ID=\xff\n"), None),
            Err(Error::OsRelease(_))
        ));
        assert!(matches!(
            entry("a.efi", Some(b"ID=a\n"), Some(b"a\0b")),
            Err(Error::Cmdline(_))
        ));
        assert_eq!(
            entry("a.efi", Some(b"ID=a\n"), Some(b" \n"))
                .unwrap()
                .options,
            Vec::<String>::new()
        );
        assert!(entry("a.efi", Some(b"ID=a\n"), None)
            .unwrap()
            .options
            .is_empty());
        let padded = entry("a.efi", Some(b"ID=a\n"), Some(b"quiet\0\0\0")).unwrap();
        assert_eq!(padded.options, ["quiet"]);
        assert_eq!(
            Error::NoOsRelease.to_string(),
            "no .osrel section (systemd-boot skips it too)"
        );
        assert_eq!(
            Error::NoName.to_string(),
            ".osrel has no PRETTY_NAME, IMAGE_ID, NAME or ID (systemd-boot skips it too)"
        );
        let e = entry("a.efi", Some(b"ID=\xff\n"), None).unwrap_err();
        assert_eq!(e.to_string(), ".osrel: line 1: not UTF-8");
        let e = entry("a.efi", Some(b"ID=a\n"), Some(b"a\0b")).unwrap_err();
        assert_eq!(e.to_string(), ".cmdline: line 1: a NUL byte in a text file");
    }
}

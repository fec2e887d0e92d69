//! Type #1 entries: `loader/entries/*.conf`, read as systemd-boot reads
//! them (`boot_entry_add_type1()` in systemd's src/boot/boot.c) on the line
//! format of `super::lines`:
//!
//! - `title`, `version`, `machine-id`, `sort-key`, `architecture`,
//!   `devicetree`: the last line of each counts;
//! - `initrd` may repeat (in order); `options` may repeat and the values are
//!   joined with spaces;
//! - `linux`, `uki`, `efi`, `uki-url` name what to start; two different ones
//!   make the entry bad (`LOADER_BAD`), the same one repeated keeps the last;
//! - unknown keys are ignored (systemd-boot ignores them silently; Fedora's
//!   `grub_users`, `grub_arg`, `grub_class` are such keys);
//! - `devicetree-overlay` holds space-separated paths (as bootctl reads it).
//!
//! Paths are inside the partition holding the entry. As bootctl's
//! `mangle_path()` (src/shared/bootspec.c) they are made absolute and their
//! duplicate `/` and `.` components dropped; `\` (a separator to
//! systemd-boot, which works in UEFI paths) counts as `/`. A path with a
//! `..` component, or ending in `/`, makes the entry malformed here (bootctl
//! ignores such a line with a warning, which would silently boot without
//! that initrd).
//!
//! Stricter than systemd-boot, which converts what it can: a file that is
//! not UTF-8, holds a NUL byte or is larger than [`MAX_SIZE`] is malformed.

use std::fmt;

use super::{counting, lines, Entry, EntryType, Loader};

/// The largest entry file read (systemd's `LONG_LINE_MAX`, 1 MiB: bootctl
/// refuses a longer line).
pub const MAX_SIZE: usize = 1 << 20;

/// A malformed entry file: what is wrong and on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What makes an entry file malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Larger than [`MAX_SIZE`].
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not UTF-8.
    NotUtf8,
    /// A NUL byte.
    NulByte,
    /// Two different things to start (`linux` and `efi`, …).
    LoaderConflict {
        /// The key seen first.
        first: &'static str,
        /// The key that conflicts with it.
        second: &'static str,
    },
    /// A path that leaves its partition or names a directory.
    BadPath {
        /// The key (`linux`, `initrd`, …).
        key: &'static str,
        /// The path as written.
        path: String,
        /// Why.
        problem: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match &self.kind {
            ErrorKind::TooLarge { size } => {
                write!(f, "{size} bytes, larger than a boot entry may be ({MAX_SIZE})")
            }
            ErrorKind::NotUtf8 => f.write_str("not UTF-8"),
            ErrorKind::NulByte => f.write_str("a NUL byte in a text file"),
            ErrorKind::LoaderConflict { first, second } => write!(
                f,
                "`{second}` after `{first}`: an entry starts one thing (systemd-boot ignores it too)"
            ),
            ErrorKind::BadPath { key, path, problem } => write!(f, "{key} {path:?}: {problem}"),
        }
    }
}

impl std::error::Error for Error {}

/// Separators between key and value.
const SEPARATORS: [char; 2] = [' ', '\t'];

/// Parses the entry file `file_name` (its name gives the id and the boot
/// counter) with contents `bytes`.
pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Entry, Error> {
    let text = text_of(bytes)?;
    let (id, tries) = counting::split(file_name);
    let mut entry = Entry {
        kind: EntryType::Type1,
        file_name: file_name.to_owned(),
        id,
        tries,
        title: None,
        version: None,
        machine_id: None,
        sort_key: None,
        architecture: None,
        loader: None,
        initrd: Vec::new(),
        options: Vec::new(),
        devicetree: None,
        devicetree_overlay: Vec::new(),
        ignored: Vec::new(),
    };
    for kv in lines::key_values(text, &SEPARATORS) {
        let (line, value) = (kv.line, kv.value);
        let path = |key: &'static str, p: &str| {
            normalize(p).map_err(|problem| Error {
                line,
                kind: ErrorKind::BadPath {
                    key,
                    path: p.to_owned(),
                    problem,
                },
            })
        };
        match kv.key {
            "title" => entry.title = Some(value.to_owned()),
            "version" => entry.version = Some(value.to_owned()),
            "machine-id" => entry.machine_id = Some(value.to_owned()),
            "sort-key" => entry.sort_key = Some(value.to_owned()),
            "architecture" => entry.architecture = Some(value.to_owned()),
            "linux" => set_loader(&mut entry, Loader::Linux(path("linux", value)?), line)?,
            "uki" => set_loader(&mut entry, Loader::Uki(path("uki", value)?), line)?,
            "efi" => set_loader(&mut entry, Loader::Efi(path("efi", value)?), line)?,
            "uki-url" => set_loader(&mut entry, Loader::UkiUrl(value.to_owned()), line)?,
            "initrd" => entry.initrd.push(path("initrd", value)?),
            "options" => entry.options.push(value.to_owned()),
            "devicetree" => entry.devicetree = Some(path("devicetree", value)?),
            "devicetree-overlay" => {
                for p in value.split_ascii_whitespace() {
                    entry
                        .devicetree_overlay
                        .push(path("devicetree-overlay", p)?);
                }
            }
            other => entry.ignored.push((line, other.to_owned())),
        }
    }
    Ok(entry)
}

/// The file as text, or why it is not a text file.
pub(crate) fn text_of(bytes: &[u8]) -> Result<&str, Error> {
    if bytes.len() > MAX_SIZE {
        return Err(Error {
            line: 0,
            kind: ErrorKind::TooLarge { size: bytes.len() },
        });
    }
    let line_of = |offset: usize| 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        return Err(Error {
            line: line_of(nul),
            kind: ErrorKind::NulByte,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| Error {
        line: line_of(e.valid_up_to()),
        kind: ErrorKind::NotUtf8,
    })
}

/// Sets what the entry starts, refusing a second kind.
fn set_loader(entry: &mut Entry, loader: Loader, line: usize) -> Result<(), Error> {
    if let Some(first) = &entry.loader {
        if first.key() != loader.key() {
            return Err(Error {
                line,
                kind: ErrorKind::LoaderConflict {
                    first: first.key(),
                    second: loader.key(),
                },
            });
        }
    }
    entry.loader = Some(loader);
    Ok(())
}

/// A path inside the partition, absolute and normalized, or why not.
pub(crate) fn normalize(path: &str) -> Result<String, &'static str> {
    let path = path.replace('\\', "/");
    if path.ends_with('/') {
        return Err("names a directory (trailing /)");
    }
    let mut out = String::with_capacity(path.len() + 1);
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err("`..` would leave the partition");
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        return Err("empty path");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Fedora 40 entry as kernel-install writes it for GRUB's BLS support.
    const FEDORA: &str = "title Fedora Linux (6.8.9-300.fc40.aarch64) 40 (Server Edition)\n\
        version 6.8.9-300.fc40.aarch64\n\
        linux /vmlinuz-6.8.9-300.fc40.aarch64\n\
        initrd /initramfs-6.8.9-300.fc40.aarch64.img\n\
        options root=UUID=6d5c1f38-4c8e-4d3c-9d4e-6f0b5e1c2a7b ro rootflags=subvol=root\n\
        grub_users $grub_users\n\
        grub_arg --unrestricted\n\
        grub_class fedora\n";

    #[test]
    fn fedora_entry() {
        let e = parse("0123-6.8.9-300.fc40.aarch64.conf", FEDORA.as_bytes()).unwrap();
        assert_eq!(e.id, "0123-6.8.9-300.fc40.aarch64.conf");
        assert_eq!(e.version.as_deref(), Some("6.8.9-300.fc40.aarch64"));
        assert_eq!(
            e.loader,
            Some(Loader::Linux("/vmlinuz-6.8.9-300.fc40.aarch64".into()))
        );
        assert_eq!(e.initrd, ["/initramfs-6.8.9-300.fc40.aarch64.img"]);
        assert_eq!(
            e.ignored,
            [
                (6, "grub_users".into()),
                (7, "grub_arg".into()),
                (8, "grub_class".into())
            ]
        );
        assert_eq!(e.tries, None);
    }

    #[test]
    fn repeats_counters_and_quotes() {
        let text = "title  \"A B\"\ntitle\tC\noptions a=1\n# options no\n  options  b=2 c\ninitrd /one\ninitrd two\nlinux /k\nlinux /k2\n";
        let e = parse("x+2-1.conf", text.as_bytes()).unwrap();
        assert_eq!(e.title.as_deref(), Some("C"));
        assert_eq!(e.command_line().as_deref(), Some("a=1 b=2 c"));
        assert_eq!(e.initrd, ["/one", "/two"]);
        assert_eq!(e.loader, Some(Loader::Linux("/k2".into())));
        assert_eq!(e.id, "x.conf");
        assert_eq!(e.tries, Some(counting::Tries { left: 2, done: 1 }));
    }

    #[test]
    fn two_things_to_start_are_malformed() {
        let err = parse("a.conf", b"linux /k\ntitle t\nefi /EFI/x.efi\n").unwrap_err();
        assert_eq!(
            err,
            Error {
                line: 3,
                kind: ErrorKind::LoaderConflict {
                    first: "linux",
                    second: "efi"
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 3: `efi` after `linux`: an entry starts one thing (systemd-boot ignores it too)"
        );
        assert!(parse("a.conf", b"uki /a.efi\nlinux /k\n").is_err());
    }

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(normalize("vmlinuz"), Ok("/vmlinuz".into()));
        assert_eq!(normalize("//a/./b//c"), Ok("/a/b/c".into()));
        assert_eq!(
            normalize("\\EFI\\Linux\\x.efi"),
            Ok("/EFI/Linux/x.efi".into())
        );
        assert!(normalize("/a/../b").is_err());
        assert!(normalize("/a/").is_err());
        assert!(normalize("/./.").is_err());
        let err = parse("a.conf", b"linux /k\ninitrd /../../etc/shadow\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string().contains("`..` would leave the partition"),
            "{err}"
        );
        let err = parse("a.conf", b"devicetree-overlay /a.dtbo ../b.dtbo\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn text_problems_name_the_line() {
        let err = parse("a.conf", b"title a\nlinux /k\xff\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: not UTF-8");
        assert_eq!((err.line, err.kind), (2, ErrorKind::NotUtf8));
        let err = parse("a.conf", b"title a\n\noptions \0\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: a NUL byte in a text file");
        assert_eq!((err.line, err.kind), (3, ErrorKind::NulByte));
        let big = vec![b'#'; MAX_SIZE + 1];
        let err = parse("a.conf", &big).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooLarge { size: MAX_SIZE + 1 });
        assert_eq!(
            err.to_string(),
            "1048577 bytes, larger than a boot entry may be (1048576)"
        );
        assert!(parse("a.conf", &big[..MAX_SIZE]).is_ok());
    }

    #[test]
    fn overlays_and_other_keys() {
        let e = parse(
            "a.conf",
            b"linux /k\ndevicetree /d.dtb\ndevicetree-overlay /o1.dtbo  /o2.dtbo\narchitecture x64\nuki-url http://x\n",
        );
        assert!(e.is_err(), "uki-url after linux");
        let e = parse(
            "a.conf",
            b"linux /k\ndevicetree d.dtb\ndevicetree-overlay /o1.dtbo  /o2.dtbo\narchitecture x64\n",
        )
        .unwrap();
        assert_eq!(e.devicetree.as_deref(), Some("/d.dtb"));
        assert_eq!(e.devicetree_overlay, ["/o1.dtbo", "/o2.dtbo"]);
        assert_eq!(e.architecture.as_deref(), Some("x64"));
    }
}

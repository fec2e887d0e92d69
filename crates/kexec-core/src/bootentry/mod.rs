//! Boot Loader Specification entries: what `systemctl kexec` (and
//! systemd-boot at the next reboot) would boot, as pure parsers and the
//! choice of the default; the file-system walk is the caller's.
//!
//! - [`type1`]: `loader/entries/*.conf` text files (the specification's
//!   "Type #1"), parsed as systemd-boot's `boot_entry_add_type1()`
//!   (src/boot/boot.c) reads them, paths checked as bootctl's
//!   `mangle_path()` (src/shared/bootspec.c) checks them;
//! - [`type2`]: Unified Kernel Images in `EFI/Linux/*.efi` ("Type #2"),
//!   named from their `.osrel` section ([`osrel`]);
//! - [`loader_conf`]: `loader/loader.conf`'s `default` and `preferred`
//!   patterns; [`efivar`]: the `LoaderEntry*` EFI variables;
//! - [`select`]: the order of entries (`boot_entry_compare()`) and the
//!   default (`boot_entries_select_default()`), with [`version`]
//!   (`strverscmp_improved()`) and [`glob`] (`efi_fnmatch()`);
//! - [`counting`]: boot counting in file names (`+LEFT-DONE`).
//!
//! systemd is LGPL-2.1: these modules follow its documented behaviour and
//! tests, citing the function each rule comes from; no code is copied.
//!
//! Every parser takes bytes or text and returns typed values or a typed
//! error with the line it is about; nothing here reads a file.

pub mod counting;
pub mod efivar;
pub mod glob;
mod lines;
pub mod loader_conf;
pub mod osrel;
pub mod select;
pub mod type1;
pub mod type2;
pub mod version;

pub use counting::Tries;

/// The EFI name of arm64 (`EFI_MACHINE_TYPE_NAME` in systemd's
/// src/boot/efi.h): the `architecture` an entry must name, if any, to be
/// offered here.
pub const EFI_ARCH: &str = "aa64";

/// Which kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// A `loader/entries/*.conf` file.
    Type1,
    /// A UKI in `EFI/Linux/`.
    Type2,
}

impl EntryType {
    /// `type1` or `type2`, as bootctl names them.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::Type1 => "type1",
            EntryType::Type2 => "type2",
        }
    }
}

/// What an entry starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Loader {
    /// `linux PATH`: a Linux kernel, with `initrd` and `devicetree` lines.
    Linux(String),
    /// `uki PATH` (or a Type #2 entry): a UKI carrying its own initrd and
    /// command line.
    Uki(String),
    /// `efi PATH`: any EFI program, chain-loaded by the firmware.
    Efi(String),
    /// `uki-url URL`: a UKI fetched over the network at boot.
    UkiUrl(String),
}

impl Loader {
    /// The key that names it in an entry file.
    pub fn key(&self) -> &'static str {
        match self {
            Loader::Linux(_) => "linux",
            Loader::Uki(_) => "uki",
            Loader::Efi(_) => "efi",
            Loader::UkiUrl(_) => "uki-url",
        }
    }

    /// The path (or URL) it names.
    pub fn target(&self) -> &str {
        match self {
            Loader::Linux(p) | Loader::Uki(p) | Loader::Efi(p) | Loader::UkiUrl(p) => p,
        }
    }
}

/// One boot entry, Type #1 or #2, as its file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type #1 or #2.
    pub kind: EntryType,
    /// The file name on disk (with any boot counter).
    pub file_name: String,
    /// The id: the file name without the boot counter, with its `.conf` or
    /// `.efi` suffix (bootctl's id; what `default` patterns match).
    pub id: String,
    /// The boot counter, if the name has one.
    pub tries: Option<Tries>,
    /// `title`, or a UKI's `PRETTY_NAME` (or the fallbacks of
    /// [`osrel::OsRelease::pick`]).
    pub title: Option<String>,
    /// `version`, or a UKI's `IMAGE_VERSION`/`VERSION`/`VERSION_ID`/`BUILD_ID`.
    pub version: Option<String>,
    /// `machine-id`.
    pub machine_id: Option<String>,
    /// `sort-key`, or a UKI's `IMAGE_ID`/`ID`.
    pub sort_key: Option<String>,
    /// `architecture` (an EFI name such as `aa64` or `x64`).
    pub architecture: Option<String>,
    /// What it starts; `None` when the file names nothing to start.
    pub loader: Option<Loader>,
    /// `initrd` lines, in order.
    pub initrd: Vec<String>,
    /// `options` lines, in order (a UKI's `.cmdline`).
    pub options: Vec<String>,
    /// `devicetree`.
    pub devicetree: Option<String>,
    /// `devicetree-overlay` paths, in order.
    pub devicetree_overlay: Vec<String>,
    /// Lines that were ignored (unknown keys), with their line numbers.
    pub ignored: Vec<(usize, String)>,
}

impl AsRef<Entry> for Entry {
    fn as_ref(&self) -> &Entry {
        self
    }
}

impl Entry {
    /// The id without its `.conf` suffix (bootctl's `id_old`), the short
    /// name `kexec boot NAME` accepts.
    pub fn short_id(&self) -> &str {
        let cut = self.id.len().saturating_sub(".conf".len());
        match self.id.get(cut..) {
            Some(suffix) if suffix.eq_ignore_ascii_case(".conf") => &self.id[..cut],
            _ => &self.id,
        }
    }

    /// The options as one command line: the `options` lines joined by
    /// spaces, as systemd-boot joins them; `None` without any.
    pub fn command_line(&self) -> Option<String> {
        (!self.options.is_empty()).then(|| self.options.join(" "))
    }

    /// Whether systemd-boot offers this entry on this machine at all: it
    /// names something to start, for arm64 or for any architecture, and is
    /// not a network UKI (shown only when booted from the network).
    /// (`boot_entry_add_type1()`: `LOADER_IGNORE` and `LOADER_UNDEFINED`.)
    pub fn offered(&self) -> Result<(), Hidden> {
        if let Some(arch) = &self.architecture {
            if !arch.eq_ignore_ascii_case(EFI_ARCH) {
                return Err(Hidden::Architecture(arch.clone()));
            }
        }
        match &self.loader {
            None => Err(Hidden::NothingToStart),
            Some(Loader::UkiUrl(url)) => Err(Hidden::NetworkUki(url.clone())),
            Some(_) => Ok(()),
        }
    }

    /// What a kexec of this entry loads, or why kexec cannot boot it.
    pub fn kexec_load(&self) -> Result<KexecLoad, NotBootable> {
        if let Err(hidden) = self.offered() {
            return Err(NotBootable::Hidden(hidden));
        }
        if !self.devicetree_overlay.is_empty() {
            return Err(NotBootable::DevicetreeOverlay(
                self.devicetree_overlay.clone(),
            ));
        }
        let vars = grub_variables(&self.options.join(" "));
        if !vars.is_empty() {
            return Err(NotBootable::GrubVariables(vars));
        }
        match &self.loader {
            Some(Loader::Linux(kernel)) => Ok(KexecLoad {
                kernel: kernel.clone(),
                uki: false,
                initrd: self.initrd.clone(),
                command_line: self.command_line(),
                devicetree: self.devicetree.clone(),
            }),
            // systemd-boot hands a UKI neither initrd nor device tree lines
            // (`initrd_prepare()` only serves `linux` entries); a Type #2
            // entry's options are the UKI's own `.cmdline`, used by the
            // loader itself.
            Some(Loader::Uki(uki)) => Ok(KexecLoad {
                kernel: uki.clone(),
                uki: true,
                initrd: Vec::new(),
                command_line: match self.kind {
                    EntryType::Type1 => self.command_line(),
                    EntryType::Type2 => None,
                },
                devicetree: None,
            }),
            Some(Loader::Efi(program)) => Err(NotBootable::EfiProgram(program.clone())),
            Some(Loader::UkiUrl(_)) | None => unreachable!("refused by offered()"),
        }
    }
}

/// Why systemd-boot does not show an entry on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hidden {
    /// `architecture` names another machine.
    Architecture(String),
    /// No `linux`, `uki`, `efi` or `uki-url` line.
    NothingToStart,
    /// `uki-url`: only offered when booted from the network.
    NetworkUki(String),
}

impl std::fmt::Display for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hidden::Architecture(a) => write!(f, "architecture {a}, not {EFI_ARCH} (arm64)"),
            Hidden::NothingToStart => f.write_str("no linux, uki or efi line: nothing to boot"),
            Hidden::NetworkUki(u) => write!(f, "uki-url {u}: a network boot, not supported"),
        }
    }
}

/// Why kexec cannot boot an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotBootable {
    /// systemd-boot does not offer it either.
    Hidden(Hidden),
    /// `efi`: an EFI program (another boot loader, a firmware tool), which
    /// only firmware can start.
    EfiProgram(String),
    /// `devicetree-overlay`: applying overlays is not implemented.
    DevicetreeOverlay(Vec<String>),
    /// The options name GRUB environment variables (Fedora's old
    /// `$kernelopts`), which only GRUB expands from its grubenv; systemd-boot
    /// passes them literally, and so would the new kernel's command line.
    GrubVariables(Vec<String>),
}

impl std::fmt::Display for NotBootable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotBootable::Hidden(h) => h.fmt(f),
            NotBootable::EfiProgram(p) => write!(
                f,
                "efi {p}: an EFI program, which only firmware can start (kexec boots Linux)"
            ),
            NotBootable::DevicetreeOverlay(o) => write!(
                f,
                "devicetree-overlay {}: applying device tree overlays is not supported",
                o.join(" ")
            ),
            NotBootable::GrubVariables(v) => write!(
                f,
                "options use GRUB variables ({}), which only GRUB expands (from its grubenv); \
                 systemd-boot passes them literally",
                v.join(", ")
            ),
        }
    }
}

/// The files and command line of a kexec, as `kexec -l KERNEL --initrd F
/// --append OPTIONS --dtb D` would take them (paths inside the entry's
/// partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KexecLoad {
    /// The kernel (`linux`) or UKI (`uki`, Type #2).
    pub kernel: String,
    /// Whether `kernel` is a UKI.
    pub uki: bool,
    /// The initrds, to be concatenated in order.
    pub initrd: Vec<String>,
    /// The command line; `None` leaves it to the loader (a UKI's
    /// `.cmdline`, or `kexec -l` without `--append`).
    pub command_line: Option<String>,
    /// The device tree.
    pub devicetree: Option<String>,
}

/// The GRUB environment variables `$name` or `${name}` in `options`.
pub fn grub_variables(options: &str) -> Vec<String> {
    let bytes = options.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let braced = bytes.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            let named = end > start && !bytes[start].is_ascii_digit();
            if named && (!braced || bytes.get(end) == Some(&b'}')) {
                let stop = end + usize::from(braced);
                out.push(options[i..stop].to_owned());
                i = stop;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_variables_are_found() {
        assert_eq!(grub_variables("$kernelopts"), ["$kernelopts"]);
        assert_eq!(
            grub_variables("root=/dev/sda ${tuned_params} quiet $x_1"),
            ["${tuned_params}", "$x_1"]
        );
        assert!(grub_variables("root=/dev/sda a=$ b=$1 c=${ d=${}").is_empty());
    }

    #[test]
    fn names_as_bootctl_writes_them() {
        assert_eq!(
            (EntryType::Type1.name(), EntryType::Type2.name()),
            ("type1", "type2")
        );
        for (loader, key) in [
            (Loader::Linux("/a".into()), "linux"),
            (Loader::Uki("/a".into()), "uki"),
            (Loader::Efi("/a".into()), "efi"),
            (Loader::UkiUrl("/a".into()), "uki-url"),
        ] {
            assert_eq!((loader.key(), loader.target()), (key, "/a"));
        }
    }

    /// What kexec can boot of each kind of entry, and why not.
    #[test]
    fn kexec_load_of_each_kind() {
        let parse = |text: &str| type1::parse("e.conf", text.as_bytes()).unwrap();
        let linux =
            parse("linux /k\ninitrd /a\ninitrd /b\noptions x\noptions y\ndevicetree /d.dtb\n");
        assert_eq!(
            linux.kexec_load(),
            Ok(KexecLoad {
                kernel: "/k".into(),
                uki: false,
                initrd: vec!["/a".into(), "/b".into()],
                command_line: Some("x y".into()),
                devicetree: Some("/d.dtb".into()),
            })
        );
        // A Type #1 `uki` gets its options, never initrd or device tree lines.
        let uki = parse("uki /u.efi\ninitrd /a\noptions quiet\ndevicetree /d.dtb\n");
        assert_eq!(
            uki.kexec_load(),
            Ok(KexecLoad {
                kernel: "/u.efi".into(),
                uki: true,
                initrd: vec![],
                command_line: Some("quiet".into()),
                devicetree: None,
            })
        );
        assert_eq!(parse("linux /k\n").kexec_load().unwrap().command_line, None);
        let refused = |text: &str| parse(text).kexec_load().unwrap_err().to_string();
        assert_eq!(
            refused("efi /EFI/memtest.efi\n"),
            "efi /EFI/memtest.efi: an EFI program, which only firmware can start (kexec boots Linux)"
        );
        assert_eq!(
            refused("linux /k\ndevicetree-overlay /a.dtbo /b.dtbo\n"),
            "devicetree-overlay /a.dtbo /b.dtbo: applying device tree overlays is not supported"
        );
        assert_eq!(
            refused("linux /k\noptions root=/dev/sda $kernelopts\n"),
            "options use GRUB variables ($kernelopts), which only GRUB expands (from its grubenv); \
             systemd-boot passes them literally"
        );
        assert_eq!(
            refused("linux /k\narchitecture x64\n"),
            "architecture x64, not aa64 (arm64)"
        );
        assert_eq!(
            refused("title t\n"),
            "no linux, uki or efi line: nothing to boot"
        );
        assert_eq!(
            refused("uki-url http://h/u.efi\n"),
            "uki-url http://h/u.efi: a network boot, not supported"
        );
        // `architecture` is compared case-insensitively, as systemd-boot does.
        assert!(parse("linux /k\narchitecture AA64\n").kexec_load().is_ok());
        assert_eq!(
            parse("linux /k\narchitecture x64\n").offered(),
            Err(Hidden::Architecture("x64".into()))
        );
    }

    #[test]
    fn short_id_drops_conf_only() {
        let mut e = type1::parse("fedora-6.8.conf", b"linux /v\n").unwrap();
        assert_eq!(e.short_id(), "fedora-6.8");
        e.id = "arch-linux.efi".into();
        assert_eq!(e.short_id(), "arch-linux.efi");
        e.id = "x.CONF".into();
        assert_eq!(e.short_id(), "x");
        e.id = "é.conf".into();
        assert_eq!(e.short_id(), "é");
        e.id = "conf".into();
        assert_eq!(e.short_id(), "conf");
        e.id = "ü-é".into();
        assert_eq!(e.short_id(), "ü-é");
    }
}

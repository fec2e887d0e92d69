//! Finding the boot partitions and reading every entry on them, as bootctl
//! does (`boot_config_load_auto()` and `boot_config_load()` in systemd's
//! src/shared/bootspec.c), under the root (`/` or `--sysroot`):
//!
//! - `--esp`/`--boot` name the partitions (inside the root); without them,
//!   `/run/boot-loader-entries/` (entries another boot loader passed on) is
//!   read as the ESP if it exists; else the ESP is the first of `/efi`,
//!   `/boot`, `/boot/efi` that holds an `EFI` directory, and the XBOOTLDR
//!   partition is `/boot` if it is not the ESP and holds `loader/`. bootctl
//!   also requires mount points of the right partition types; we only read,
//!   and a copied tree (`--sysroot`) has no mounts, so what is there decides.
//! - on each partition, `loader/entries/*.conf` (Type #1) then
//!   `EFI/Linux/*.efi` (Type #2), file names in byte order; names starting
//!   with `.` or `auto-` are skipped (systemd-boot's `valid_type1_filename()`
//!   and `config_load_type2_entries()`), so are symlinks (bootctl opens with
//!   `O_NOFOLLOW`) and a file seen before through another path (bootctl's
//!   `config_check_inode_relevant_and_unseen()`);
//! - `loader/loader.conf` on the ESP; the `LoaderEntry*` EFI variables
//!   under `sys/firmware/efi/efivars` when present.
//!
//! An entry systemd-boot would not offer (bad file, other architecture,
//! kernel file missing, …) is kept aside with the reason, never chosen as
//! the default, and an error if named.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kexec_core::bootentry::loader_conf::{self, LoaderConf};
use kexec_core::bootentry::select::{self, LoaderVariables, Reason};
use kexec_core::bootentry::{efivar, type1, type2, Entry, Loader};
use kexec_core::pe::{self, FileRange, UkiLayout};

use crate::failure::Failure;
use crate::sysroot::Sysroot;

/// Where bootctl looks for the ESP, in order.
const ESP_CANDIDATES: [&str; 3] = ["efi", "boot", "boot/efi"];
/// Where bootctl looks for the XBOOTLDR partition.
const XBOOTLDR_CANDIDATE: &str = "boot";
/// Entries another boot loader passed on (read as an ESP).
const RUN_ENTRIES: &str = "run/boot-loader-entries";
/// Type #1 entries inside a partition.
const ENTRIES_DIR: &str = "loader/entries";
/// The largest `.osrel`/`.cmdline` read (bootctl's `PE_SECTION_SIZE_MAX`).
const SECTION_MAX: u64 = 4 << 20;
/// At most this many files per directory are read.
const MAX_FILES: usize = 4096;

/// What a partition is to the boot loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The EFI system partition (holds `loader.conf`).
    Esp,
    /// The extended boot loader partition.
    Xbootldr,
}

impl Role {
    /// `esp` or `xbootldr`, as bootctl names them.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Esp => "esp",
            Role::Xbootldr => "xbootldr",
        }
    }
}

/// A boot partition.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    /// ESP or XBOOTLDR.
    pub role: Role,
    /// Its path as the user sees it (inside the root).
    pub shown: String,
    /// Its real path.
    pub dir: PathBuf,
}

impl Partition {
    /// `path` (absolute inside the partition) as the user sees it.
    pub(crate) fn show(&self, path: &str) -> String {
        format!("{}{path}", self.shown.trim_end_matches('/'))
    }

    /// The real path of `path` (absolute inside the partition).
    pub(crate) fn real(&self, path: &str) -> PathBuf {
        self.dir.join(path.trim_start_matches('/'))
    }
}

/// An entry and where it was found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The entry.
    pub entry: Entry,
    /// Index into [`Scan::partitions`].
    pub partition: usize,
    /// Its file as the user sees it.
    pub shown: String,
}

impl AsRef<Entry> for Found {
    fn as_ref(&self) -> &Entry {
        &self.entry
    }
}

/// A file that gives no entry systemd-boot would offer.
#[derive(Debug, Clone)]
pub(crate) struct Skipped {
    /// The file as the user sees it.
    pub shown: String,
    /// Its file name.
    pub file_name: String,
    /// The entry, when the file parsed.
    pub entry: Option<Entry>,
    /// Why it is skipped.
    pub problem: String,
}

/// Everything read.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The partitions, ESP first.
    pub partitions: Vec<Partition>,
    /// The entries systemd-boot would offer, in its order.
    pub entries: Vec<Found>,
    /// The other files, in the order found.
    pub skipped: Vec<Skipped>,
    /// `loader.conf` (empty when absent).
    pub conf: LoaderConf,
    /// The EFI variables that choose an entry.
    pub vars: LoaderVariables,
    /// The default: index into `entries`, and why.
    pub default: Option<(usize, Reason)>,
    /// Remarks (ignored lines, unreadable variables).
    pub notes: Vec<String>,
}

/// The partitions and entries under `root`.
pub(crate) fn scan(
    root: &Sysroot,
    esp: Option<&Path>,
    boot: Option<&Path>,
) -> Result<Scan, Failure> {
    let partitions = partitions(root, esp, boot)?;
    let mut out = Scan {
        partitions,
        entries: Vec::new(),
        skipped: Vec::new(),
        conf: LoaderConf::default(),
        vars: LoaderVariables::default(),
        default: None,
        notes: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for index in 0..out.partitions.len() {
        let part = out.partitions[index].clone();
        if part.role == Role::Esp {
            read_loader_conf(&part, &mut out);
        }
        for name in file_names(&part.dir.join(ENTRIES_DIR), ".conf", &mut out.notes) {
            let shown = part.show(&format!("/{ENTRIES_DIR}/{name}"));
            let path = part.dir.join(ENTRIES_DIR).join(&name);
            if !first_sight(&path, &mut seen) {
                continue;
            }
            let parsed = read_capped(&path, type1::MAX_SIZE as u64 + 1)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|bytes| type1::parse(&name, &bytes).map_err(|e| e.to_string()));
            classify(&mut out, index, shown, name, parsed);
        }
        for name in file_names(&part.dir.join(type2::DIR), ".efi", &mut out.notes) {
            let shown = part.show(&format!("/{}/{name}", type2::DIR));
            let path = part.dir.join(type2::DIR).join(&name);
            if !first_sight(&path, &mut seen) {
                continue;
            }
            let parsed = read_uki(&path, &name, &mut out.notes, &shown);
            classify(&mut out, index, shown, name, parsed);
        }
    }
    out.vars = read_variables(root, &mut out.notes);
    select::sort(&mut out.entries);
    out.default = select::default(&out.entries, &out.conf, &out.vars);
    Ok(out)
}

/// Files the boot loader would read from `dir`: regular files (not
/// symlinks) ending in `suffix` (any case), not hidden nor `auto-`, sorted.
fn file_names(dir: &Path, suffix: &str, notes: &mut Vec<String>) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in read.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            notes.push(format!(
                "{}: a file name that is not UTF-8, ignored",
                dir.display()
            ));
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if name.starts_with('.') || lower.starts_with("auto-") || !lower.ends_with(suffix) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    if names.len() > MAX_FILES {
        notes.push(format!(
            "{}: {} files, only the first {MAX_FILES} read",
            dir.display(),
            names.len()
        ));
        names.truncate(MAX_FILES);
    }
    names
}

/// Whether `path` is a file not seen before (by device and inode).
fn first_sight(path: &Path, seen: &mut BTreeSet<(u64, u64)>) -> bool {
    match fs::metadata(path) {
        Ok(m) => seen.insert((m.dev(), m.ino())),
        Err(_) => true,
    }
}

/// Files an entry, parsed or not, as offered or skipped.
fn classify(
    out: &mut Scan,
    partition: usize,
    shown: String,
    file_name: String,
    parsed: Result<Entry, String>,
) {
    let entry = match parsed {
        Ok(e) => e,
        Err(problem) => {
            out.skipped.push(Skipped {
                shown,
                file_name,
                entry: None,
                problem,
            });
            return;
        }
    };
    if !entry.ignored.is_empty() {
        let keys: Vec<String> = entry
            .ignored
            .iter()
            .map(|(line, key)| format!("{key} (line {line})"))
            .collect();
        out.notes.push(format!(
            "{shown}: keys systemd-boot does not know, ignored: {}",
            keys.join(", ")
        ));
    }
    let part = &out.partitions[partition];
    let problem = match (entry.offered(), &entry.loader) {
        (Err(hidden), _) => Some(hidden.to_string()),
        // systemd-boot drops an entry whose file is missing.
        (Ok(()), Some(Loader::Linux(p) | Loader::Uki(p) | Loader::Efi(p)))
            if !part.real(p).is_file() =>
        {
            Some(format!(
                "{} {} is missing",
                entry.loader.as_ref().map_or("", Loader::key),
                part.show(p)
            ))
        }
        _ => None,
    };
    match problem {
        Some(problem) => out.skipped.push(Skipped {
            shown,
            file_name,
            entry: Some(entry),
            problem,
        }),
        None => out.entries.push(Found {
            entry,
            partition,
            shown,
        }),
    }
}

/// Reads `loader.conf` of the ESP into `out`.
fn read_loader_conf(part: &Partition, out: &mut Scan) {
    let path = part.dir.join(loader_conf::PATH);
    let shown = part.show(&format!("/{}", loader_conf::PATH));
    let Ok(bytes) = read_capped(&path, type1::MAX_SIZE as u64 + 1) else {
        return;
    };
    match LoaderConf::parse(&bytes) {
        Ok(conf) => {
            for (line, why) in &conf.ignored {
                out.notes
                    .push(format!("{shown}: line {line}: {why}, ignored"));
            }
            out.conf = conf;
        }
        Err(e) => out.notes.push(format!("{shown}: {e}: ignored")),
    }
}

/// The Type #2 entry of the UKI at `path`, reading only its headers and
/// small sections.
fn read_uki(
    path: &Path,
    name: &str,
    notes: &mut Vec<String>,
    shown: &str,
) -> Result<Entry, String> {
    let mut file = fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    let mut head = Vec::new();
    (&mut file)
        .take(pe::HEADERS_READ as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    let layout = UkiLayout::parse(&head).map_err(|e| format!("not a UKI: {e}"))?;
    if layout.data_end > len {
        return Err(format!(
            "truncated: its sections end at byte {}, the file has {len}",
            layout.data_end
        ));
    }
    if layout.profiles {
        notes.push(format!(
            "{shown}: a multi-profile UKI: only its base profile is offered"
        ));
    }
    let mut section = |range: Option<FileRange>, what: &str| -> Result<Option<Vec<u8>>, String> {
        let Some(r) = range else { return Ok(None) };
        if r.size > SECTION_MAX {
            return Err(format!(
                "its {what} section has {} bytes, more than {SECTION_MAX}",
                r.size
            ));
        }
        file.seek(SeekFrom::Start(r.offset))
            .map_err(|e| format!("cannot read {what}: {e}"))?;
        let mut buf = Vec::new();
        (&mut file)
            .take(r.size)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {what}: {e}"))?;
        Ok(Some(buf))
    };
    let osrel = section(layout.osrel, ".osrel")?;
    let cmdline = section(layout.cmdline, ".cmdline")?;
    type2::entry(name, osrel.as_deref(), cmdline.as_deref()).map_err(|e| e.to_string())
}

/// At most `limit` bytes of `path`.
fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The `LoaderEntry*` EFI variables under `root`, those present.
fn read_variables(root: &Sysroot, notes: &mut Vec<String>) -> LoaderVariables {
    let mut read = |name: &str| {
        let rel = format!("{}/{}", efivar::EFIVARS_DIR, efivar::file_name(name));
        let bytes = root.read(&rel).ok()?;
        efivar::decode_string(&bytes)
            .map_err(|e| notes.push(format!("/{rel}: {e}: ignored")))
            .ok()
    };
    LoaderVariables {
        one_shot: read(efivar::ONE_SHOT),
        preferred: read(efivar::PREFERRED),
        default: read(efivar::DEFAULT),
        selected: read(efivar::SELECTED),
    }
}

/// The partitions to read.
fn partitions(
    root: &Sysroot,
    esp: Option<&Path>,
    boot: Option<&Path>,
) -> Result<Vec<Partition>, Failure> {
    let given = |role: Role, path: &Path| -> Result<Partition, Failure> {
        let shown = path.display().to_string();
        let dir = if root.is_live() {
            path.to_path_buf()
        } else {
            root.path(shown.trim_start_matches('/'))
        };
        if !dir.is_dir() {
            return Err(Failure::input(
                dir.display().to_string(),
                "not a directory",
                format!(
                    "--{} names the {} mount point",
                    if role == Role::Esp { "esp" } else { "boot" },
                    role.name()
                ),
            ));
        }
        Ok(Partition { role, shown, dir })
    };
    if esp.is_some() || boot.is_some() {
        let mut out = Vec::new();
        if let Some(p) = esp {
            out.push(given(Role::Esp, p)?);
        }
        if let Some(p) = boot {
            out.push(given(Role::Xbootldr, p)?);
        }
        return Ok(out);
    }
    let found = |rel: &str, role: Role| Partition {
        role,
        shown: format!("/{rel}"),
        dir: root.path(rel),
    };
    if root.path(RUN_ENTRIES).is_dir() {
        return Ok(vec![found(RUN_ENTRIES, Role::Esp)]);
    }
    let mut out = Vec::new();
    if let Some(rel) = ESP_CANDIDATES
        .iter()
        .find(|rel| root.path(rel).join("EFI").is_dir())
    {
        out.push(found(rel, Role::Esp));
    }
    let xbootldr = root.path(XBOOTLDR_CANDIDATE);
    let same_as_esp = out
        .first()
        .is_some_and(|esp| same_file(&esp.dir, &xbootldr));
    if !same_as_esp && xbootldr.join("loader").is_dir() {
        out.push(found(XBOOTLDR_CANDIDATE, Role::Xbootldr));
    }
    if out.is_empty() {
        return Err(Failure::system(
            root.path("").display().to_string(),
            "no boot partition: none of /efi, /boot, /boot/efi holds EFI/, and /boot holds no loader/",
            "mount the ESP (or the XBOOTLDR partition), or name them with --esp DIR / --boot DIR",
        ));
    }
    Ok(out)
}

/// Whether two paths are the same directory (bootctl drops an XBOOTLDR
/// that is the ESP).
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

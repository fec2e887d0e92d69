//! What `kexec boot` prints: the listing (`--list`, `--json`) and the
//! chosen entry above the plan (`--dry-run`). Paths are shown as inside the
//! root (`/efi/...` also under `--sysroot`).

use std::collections::BTreeMap;

use kexec_core::bootentry::{efivar, Entry, KexecLoad, Loader};
use serde::Serialize;

use super::scan::{Found, Role, Scan};
use crate::failure::Failure;

/// Identifier and version of `kexec boot --list --json`.
pub(crate) const LIST_SCHEMA: &str = "kexec-rs/boot-entries/v1";
/// Identifier and version of `kexec boot --dry-run --json`.
pub(crate) const DRY_RUN_SCHEMA: &str = "kexec-rs/boot/v1";

/// The entry chosen for a load.
pub(crate) struct Chosen<'a> {
    /// Everything read.
    pub scan: &'a Scan,
    /// The entry.
    pub found: &'a Found,
    /// Why it was chosen.
    pub why: &'a str,
    /// What is loaded.
    pub load: &'a KexecLoad,
    /// How the initrd was made, if worth saying.
    pub initrd_note: Option<&'a str>,
}

/// An entry's title as systemd-boot shows it: `title`, else the id.
pub(crate) fn title(e: &Entry) -> &str {
    e.title.as_deref().unwrap_or(&e.id)
}

/// One entry (`--list --json`'s `entries`, `--dry-run --json`'s `entry`).
#[derive(Debug, Serialize)]
struct JsonEntry {
    id: String,
    file: String,
    #[serde(rename = "type")]
    kind: &'static str,
    partition: &'static str,
    default: bool,
    title: Option<String>,
    version: Option<String>,
    machine_id: Option<String>,
    sort_key: Option<String>,
    tries: Option<JsonTries>,
    /// `{"linux": PATH}`, `{"uki": PATH}`, `{"efi": PATH}` or `{"uki-url": URL}`.
    loader: Option<BTreeMap<&'static str, String>>,
    kernel: Option<String>,
    initrd: Vec<String>,
    options: Option<String>,
    devicetree: Option<String>,
    kexec_bootable: bool,
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct JsonTries {
    left: u32,
    done: u32,
}

/// The partitions read.
#[derive(Debug, Serialize)]
struct JsonPartitions {
    esp: Option<String>,
    xbootldr: Option<String>,
}

fn entry_json(scan: &Scan, f: &Found, default: bool) -> JsonEntry {
    let e = &f.entry;
    let part = &scan.partitions[f.partition];
    let (kernel, problem) = match e.kexec_load() {
        Ok(load) => (Some(part.show(&load.kernel)), None),
        Err(why) => (None, Some(why.to_string())),
    };
    JsonEntry {
        id: e.id.clone(),
        file: f.shown.clone(),
        kind: e.kind.name(),
        partition: part.role.name(),
        default,
        title: e.title.clone(),
        version: e.version.clone(),
        machine_id: e.machine_id.clone(),
        sort_key: e.sort_key.clone(),
        tries: e.tries.map(|t| JsonTries {
            left: t.left,
            done: t.done,
        }),
        loader: e
            .loader
            .as_ref()
            .map(|l| BTreeMap::from([(l.key(), shown_target(scan, f, l))])),
        kernel,
        initrd: e.initrd.iter().map(|p| part.show(p)).collect(),
        options: e.command_line(),
        devicetree: e.devicetree.as_ref().map(|p| part.show(p)),
        kexec_bootable: problem.is_none(),
        problem,
    }
}

/// What a loader line names, as shown.
fn shown_target(scan: &Scan, f: &Found, l: &Loader) -> String {
    match l {
        Loader::UkiUrl(url) => url.clone(),
        other => scan.partitions[f.partition].show(other.target()),
    }
}

fn partitions_json(scan: &Scan) -> JsonPartitions {
    let find = |role| {
        scan.partitions
            .iter()
            .find(|p| p.role == role)
            .map(|p| p.shown.clone())
    };
    JsonPartitions {
        esp: find(Role::Esp),
        xbootldr: find(Role::Xbootldr),
    }
}

/// `--list --json`.
#[derive(Debug, Serialize)]
struct JsonList {
    schema: &'static str,
    partitions: JsonPartitions,
    loader_conf: JsonLoaderConf,
    efi_variables: BTreeMap<&'static str, Option<String>>,
    default: Option<String>,
    default_reason: Option<String>,
    entries: Vec<JsonEntry>,
    skipped: Vec<JsonSkipped>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct JsonLoaderConf {
    default: Option<String>,
    preferred: Option<String>,
}

#[derive(Debug, Serialize)]
struct JsonSkipped {
    file: String,
    problem: String,
}

/// `--list --json`.
pub(crate) fn list_json(scan: &Scan) -> String {
    let default = scan.default.as_ref().map(|(i, _)| *i);
    let v = &scan.vars;
    let doc = JsonList {
        schema: LIST_SCHEMA,
        partitions: partitions_json(scan),
        loader_conf: JsonLoaderConf {
            default: scan.conf.default.clone(),
            preferred: scan.conf.preferred.clone(),
        },
        efi_variables: BTreeMap::from([
            (efivar::ONE_SHOT, v.one_shot.clone()),
            (efivar::PREFERRED, v.preferred.clone()),
            (efivar::DEFAULT, v.default.clone()),
            (efivar::SELECTED, v.selected.clone()),
        ]),
        default: default.map(|i| scan.entries[i].entry.id.clone()),
        default_reason: scan.default.as_ref().map(|(_, r)| r.to_string()),
        entries: scan
            .entries
            .iter()
            .enumerate()
            .map(|(i, f)| entry_json(scan, f, Some(i) == default))
            .collect(),
        skipped: scan
            .skipped
            .iter()
            .map(|s| JsonSkipped {
                file: s.shown.clone(),
                problem: s.problem.clone(),
            })
            .collect(),
        notes: scan.notes.clone(),
    };
    pretty(&doc)
}

fn pretty(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// `--list`.
pub(crate) fn list_text(scan: &Scan) -> String {
    let mut out = String::new();
    for p in &scan.partitions {
        out.push_str(&format!(
            "{:<9} {}\n",
            format!("{}:", p.role.name().to_uppercase()),
            p.shown
        ));
    }
    if let Some(d) = &scan.conf.default {
        out.push_str(&format!("{:<9} default {d:?}\n", "loader:"));
    }
    match &scan.default {
        Some((i, reason)) => out.push_str(&format!(
            "{:<9} {} ({reason})\n",
            "default:",
            scan.entries[*i].entry.short_id()
        )),
        None => out.push_str("default:  none\n"),
    }
    let rows: Vec<[String; 4]> = scan
        .entries
        .iter()
        .map(|f| {
            let e = &f.entry;
            let mut id = e.short_id().to_owned();
            if let Some(t) = e.tries {
                id.push_str(&format!(" [tries {} left, {} done]", t.left, t.done));
            }
            [
                id,
                title(e).to_owned(),
                e.version.clone().unwrap_or_else(|| "-".into()),
                f.shown.clone(),
            ]
        })
        .collect();
    let head = [
        "id".to_owned(),
        "title".into(),
        "version".into(),
        "file".into(),
    ];
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .chain([&head])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |mark: &str, r: &[String; 4]| {
        format!(
            "{mark} {:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    out.push('\n');
    out.push_str(&line(" ", &head));
    for (i, (f, r)) in scan.entries.iter().zip(&rows).enumerate() {
        let is_default = scan.default.as_ref().is_some_and(|(d, _)| *d == i);
        out.push_str(line(if is_default { "*" } else { " " }, r).trim_end());
        out.push('\n');
        if let Err(why) = f.entry.kexec_load() {
            out.push_str(&format!("    not bootable by kexec: {why}\n"));
        }
    }
    if !scan.skipped.is_empty() {
        out.push_str("\nskipped:\n");
        for s in &scan.skipped {
            out.push_str(&format!("  {}: {}\n", s.shown, s.problem));
        }
    }
    if !scan.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in &scan.notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    out
}

/// The `kexec -l` line the load is equivalent to (paths as shown).
fn as_kexec_l(c: &Chosen<'_>) -> String {
    let part = &c.scan.partitions[c.found.partition];
    let mut line = format!("kexec -l {}", part.show(&c.load.kernel));
    match c.load.initrd.as_slice() {
        [] => {}
        [one] => line.push_str(&format!(" --initrd {}", part.show(one))),
        _ => line.push_str(" --initrd <the initrds concatenated>"),
    }
    if let Some(cmdline) = &c.load.command_line {
        line.push_str(&format!(" --append {cmdline:?}"));
    }
    if let Some(d) = &c.load.devicetree {
        line.push_str(&format!(" --dtb {}", part.show(d)));
    }
    line
}

/// `--dry-run`: the entry, then the plan.
pub(crate) fn dry_run_text(c: &Chosen<'_>, plan: &str) -> String {
    let e = &c.found.entry;
    let part = &c.scan.partitions[c.found.partition];
    let mut out = format!(
        "boot entry {} ({}, {} {})\n",
        c.found.shown,
        e.kind.name(),
        part.role.name().to_uppercase(),
        part.shown
    );
    out.push_str(&format!("  title:   {}\n", title(e)));
    if let Some(v) = &e.version {
        out.push_str(&format!("  version: {v}\n"));
    }
    out.push_str(&format!("  chosen:  {}\n", c.why));
    let kernel = part.show(&c.load.kernel);
    if c.load.uki {
        out.push_str(&format!("  uki:     {kernel}\n"));
    } else {
        out.push_str(&format!("  kernel:  {kernel}\n"));
    }
    if !c.load.initrd.is_empty() {
        let list: Vec<String> = c.load.initrd.iter().map(|p| part.show(p)).collect();
        out.push_str(&format!("  initrd:  {}\n", list.join(" + ")));
    }
    if let Some(note) = c.initrd_note {
        out.push_str(&format!("           ({note})\n"));
    }
    match (&c.load.command_line, c.load.uki) {
        (Some(cmdline), _) => out.push_str(&format!("  options: {cmdline}\n")),
        (None, true) => out.push_str("  options: the UKI's own .cmdline\n"),
        (None, false) => out.push_str(
            "  options: none: the device tree's bootargs are kept, as kexec -l without --append \
             keeps them (systemd-boot would boot with an empty command line)\n",
        ),
    }
    if let Some(d) = &c.load.devicetree {
        out.push_str(&format!("  dtb:     {}\n", part.show(d)));
    }
    out.push_str(&format!("  as:      {}\n\n", as_kexec_l(c)));
    out.push_str(plan);
    out
}

/// `--dry-run --json`, but the plan.
#[derive(Debug, Serialize)]
struct JsonDryRun<'a> {
    schema: &'static str,
    partitions: JsonPartitions,
    entry: JsonEntry,
    chosen: &'a str,
    load: JsonLoad<'a>,
}

#[derive(Debug, Serialize)]
struct JsonLoad<'a> {
    kernel: String,
    uki: bool,
    initrd: Vec<String>,
    initrd_note: Option<&'a str>,
    command_line: Option<&'a str>,
    devicetree: Option<String>,
    #[serde(rename = "as")]
    as_kexec_l: String,
}

/// `--dry-run --json`: the entry and the plan in one document, the plan
/// exactly as `kexec -l --dry-run --json` prints it (docs/plan-json.md, its
/// keys in that order), under `"plan"`, last.
pub(crate) fn dry_run_json(c: &Chosen<'_>, plan: &str) -> Result<String, Failure> {
    serde_json::from_str::<serde_json::Value>(plan).map_err(|e| {
        Failure::other(
            "plan",
            format!("the plan is not JSON: {e}"),
            "this is a bug in kexec",
        )
    })?;
    let part = &c.scan.partitions[c.found.partition];
    let is_default = c
        .scan
        .default
        .as_ref()
        .is_some_and(|(d, _)| std::ptr::eq(&c.scan.entries[*d], c.found));
    let doc = JsonDryRun {
        schema: DRY_RUN_SCHEMA,
        partitions: partitions_json(c.scan),
        entry: entry_json(c.scan, c.found, is_default),
        chosen: c.why,
        load: JsonLoad {
            kernel: part.show(&c.load.kernel),
            uki: c.load.uki,
            initrd: c.load.initrd.iter().map(|p| part.show(p)).collect(),
            initrd_note: c.initrd_note,
            command_line: c.load.command_line.as_deref(),
            devicetree: c.load.devicetree.as_ref().map(|p| part.show(p)),
            as_kexec_l: as_kexec_l(c),
        },
    };
    let head = pretty(&doc);
    let head = head
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(&head)
        .trim_end();
    let plan = plan.trim_end().replace('\n', "\n  ");
    Ok(format!("{head},\n  \"plan\": {plan}\n}}\n"))
}

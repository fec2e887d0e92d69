//! The order of boot entries and the default among them.
//!
//! Order: systemd-boot's `boot_entry_compare()` (src/boot/boot.c), a stable
//! sort of the entries in the order they were found:
//! 1. entries with no tries left (boot counter `+0`) last;
//! 2. entries with a sort key before those without;
//! 3. with sort keys: by sort key, then machine id (absent first), then
//!    version, newest first ([`super::version`]);
//! 4. by id, newest first (ids are compared lowercased, as systemd-boot
//!    lowercases them);
//! 5. when both are boot-counted: more tries left first, then fewer made.
//!
//! Default: what `systemctl kexec` picks, bootctl's
//! `boot_entries_select_default()` (src/shared/bootspec.c): the first entry
//! matched by, in turn, the EFI variables `LoaderEntryOneShot`,
//! `LoaderEntryPreferred`, `LoaderEntryDefault`, then `loader.conf`'s
//! `preferred` and `default`; else the first entry. A pattern is a glob
//! over ids, case-insensitive ([`super::glob`]); `@saved` means the entry
//! booted now (`LoaderEntrySelected`: bootctl's reading; systemd-boot
//! itself keeps its own `LoaderEntryLastBooted`, which names the same entry
//! on a system it booted).

use std::cmp::Ordering;
use std::fmt;

use super::loader_conf::LoaderConf;
use super::{efivar, glob, version, Entry};

/// systemd-boot's order of two entries: `Less` when `a` comes first.
pub fn compare(a: &Entry, b: &Entry) -> Ordering {
    let exhausted = |e: &Entry| e.tries.is_some_and(|t| t.left == 0);
    let r = exhausted(a).cmp(&exhausted(b));
    if r.is_ne() {
        return r;
    }
    let r = a.sort_key.is_none().cmp(&b.sort_key.is_none());
    if r.is_ne() {
        return r;
    }
    if let (Some(ka), Some(kb)) = (&a.sort_key, &b.sort_key) {
        let r = ka
            .cmp(kb)
            .then_with(|| a.machine_id.cmp(&b.machine_id))
            .then_with(|| {
                version::compare(
                    a.version.as_deref().unwrap_or(""),
                    b.version.as_deref().unwrap_or(""),
                )
                .reverse()
            });
        if r.is_ne() {
            return r;
        }
    }
    let r = version::compare(&a.id.to_ascii_lowercase(), &b.id.to_ascii_lowercase()).reverse();
    if r.is_ne() {
        return r;
    }
    match (a.tries, b.tries) {
        (Some(ta), Some(tb)) => tb.left.cmp(&ta.left).then(ta.done.cmp(&tb.done)),
        _ => Ordering::Equal,
    }
}

/// Sorts entries in systemd-boot's order, by the insertion sort
/// systemd-boot uses (`sort_pointer_array()`, src/boot/util.c): stable, and
/// the same result as systemd-boot's even where [`compare`] is not a total
/// order (a boot-counted and an uncounted file of the same id compare
/// equal, but two counted ones do not); it cannot panic on such input, as
/// the standard library's sort may.
pub fn sort<T: AsRef<Entry>>(entries: &mut [T]) {
    for i in 1..entries.len() {
        let mut k = i;
        while k > 0 && compare(entries[k - 1].as_ref(), entries[k].as_ref()).is_gt() {
            entries.swap(k - 1, k);
            k -= 1;
        }
    }
}

/// The EFI variables that choose an entry, as read (absent: `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoaderVariables {
    /// `LoaderEntryOneShot`.
    pub one_shot: Option<String>,
    /// `LoaderEntryPreferred`.
    pub preferred: Option<String>,
    /// `LoaderEntryDefault`.
    pub default: Option<String>,
    /// `LoaderEntrySelected`: the entry booted now, what `@saved` names.
    pub selected: Option<String>,
}

/// Why the default is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Matched the EFI variable `name` holding `pattern`.
    Variable {
        /// The variable (`LoaderEntryOneShot`, …).
        name: &'static str,
        /// Its value.
        pattern: String,
    },
    /// Matched `loader.conf`'s `key` (`preferred` or `default`).
    LoaderConf {
        /// `preferred` or `default`.
        key: &'static str,
        /// Its value.
        pattern: String,
    },
    /// Nothing else matched: the first entry in order.
    First,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Variable { name, pattern } => write!(f, "EFI variable {name} {pattern:?}"),
            Reason::LoaderConf { key, pattern } => write!(f, "loader.conf {key} {pattern:?}"),
            Reason::First => f.write_str("the first entry in systemd-boot's order"),
        }
    }
}

/// The first entry `pattern` matches (bootctl's `boot_config_find()`):
/// `@saved` is the selected entry's id; other `@` names match nothing.
pub fn find<T: AsRef<Entry>>(
    entries: &[T],
    pattern: &str,
    selected: Option<&str>,
) -> Option<usize> {
    let pattern = if pattern.starts_with('@') {
        if !pattern.eq_ignore_ascii_case("@saved") {
            return None;
        }
        selected?
    } else {
        pattern
    };
    let pattern = pattern.to_ascii_lowercase();
    entries
        .iter()
        .position(|e| glob::matches(&pattern, &e.as_ref().id.to_ascii_lowercase()))
}

/// The default entry among `entries` (sorted) and why; `None` when there
/// are none.
pub fn default<T: AsRef<Entry>>(
    entries: &[T],
    conf: &LoaderConf,
    vars: &LoaderVariables,
) -> Option<(usize, Reason)> {
    if entries.is_empty() {
        return None;
    }
    let selected = vars.selected.as_deref();
    let from_vars = [
        (efivar::ONE_SHOT, &vars.one_shot),
        (efivar::PREFERRED, &vars.preferred),
        (efivar::DEFAULT, &vars.default),
    ];
    for (name, value) in from_vars {
        if let Some(pattern) = value {
            if let Some(i) = find(entries, pattern, selected) {
                let pattern = pattern.clone();
                return Some((i, Reason::Variable { name, pattern }));
            }
        }
    }
    for (key, value) in [("preferred", &conf.preferred), ("default", &conf.default)] {
        if let Some(pattern) = value {
            if let Some(i) = find(entries, pattern, selected) {
                let pattern = pattern.clone();
                return Some((i, Reason::LoaderConf { key, pattern }));
            }
        }
    }
    Some((0, Reason::First))
}

/// How a name given on the command line matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one entry.
    Found(usize),
    /// Several entries share this title or version.
    Ambiguous(Vec<usize>),
    /// None.
    NotFound,
}

/// The entry a user names: by id (with or without its `.conf` or `.efi`
/// suffix, or the file name with its boot counter; case-insensitive), else
/// by title, else by version (exactly).
pub fn lookup<T: AsRef<Entry>>(entries: &[T], name: &str) -> Lookup {
    let by_id = entries.iter().map(AsRef::as_ref).position(|e: &Entry| {
        let stem =
            e.id.rsplit_once('.')
                .map_or(e.id.as_str(), |(stem, _)| stem);
        [e.id.as_str(), stem, e.file_name.as_str()]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    });
    if let Some(i) = by_id {
        return Lookup::Found(i);
    }
    for field in [
        (|e: &Entry| e.title.clone()) as fn(&Entry) -> Option<String>,
        |e: &Entry| e.version.clone(),
    ] {
        let hits: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| field(e.as_ref()).as_deref() == Some(name))
            .map(|(i, _)| i)
            .collect();
        match hits.len() {
            0 => continue,
            1 => return Lookup::Found(hits[0]),
            _ => return Lookup::Ambiguous(hits),
        }
    }
    Lookup::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootentry::type1;

    fn entry(name: &str, text: &str) -> Entry {
        type1::parse(name, text.as_bytes()).unwrap()
    }

    fn ids(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }

    /// `TEST_RET(bootspec_sort)` in systemd's src/test/test-bootspec.c.
    #[test]
    fn systemd_bootspec_sort() {
        let mut entries = vec![
            entry("a-10.conf", "title A\nversion 10\nmachine-id dd235d00696545768f6f693bfd23b15f\n"),
            entry("a-5.conf", "title A\nversion 5\nmachine-id dd235d00696545768f6f693bfd23b15f\n"),
            entry("b.conf", "title B\nversion 3\nmachine-id b75451ad92f94feeab50b0b442768dbd\n"),
            entry(
                "c.conf",
                "title C\nsort-key xxxx\nversion 5\nmachine-id 309de666fd5044268a9a26541ac93176\n",
            ),
            entry(
                "cx.conf",
                "title C\nsort-key xxxx\nversion 10\nmachine-id 309de666fd5044268a9a26541ac93176\n",
            ),
            entry(
                "d.conf",
                "title D\nsort-key kkkk\nversion 100\nmachine-id 81c6e3147cf544c19006af023e22b292\n",
            ),
        ];
        sort(&mut entries);
        assert_eq!(
            ids(&entries),
            [
                "d.conf",
                "cx.conf",
                "c.conf",
                "b.conf",
                "a-10.conf",
                "a-5.conf"
            ]
        );
    }

    #[test]
    fn boot_counting_order() {
        let mut entries = vec![
            entry("k-2+0-3.conf", "linux /k\n"),
            entry("k-1+2-1.conf", "linux /k\n"),
            entry("k-1+3.conf", "linux /k\n"),
            entry("k-1.conf", "linux /k\n"),
            entry("k-1+2-0.conf", "linux /k\n"),
        ];
        sort(&mut entries);
        let names: Vec<&str> = entries.iter().map(|e| e.file_name.as_str()).collect();
        // The exhausted newest kernel sorts last. Among k-1 the uncounted
        // file ties with the counted ones, which are ordered by tries left
        // then made: not a total order, so the result is the one of
        // systemd-boot's insertion sort (traced by hand): k-1+2-0 stops at
        // the uncounted k-1 it ties with.
        assert_eq!(
            names,
            [
                "k-1+3.conf",
                "k-1+2-1.conf",
                "k-1.conf",
                "k-1+2-0.conf",
                "k-2+0-3.conf"
            ]
        );
    }

    #[test]
    fn default_follows_variables_then_loader_conf_then_order() {
        let mut entries = vec![
            entry(
                "mid-6.1.0-18-arm64.conf",
                "sort-key debian\nversion 6.1.0-18-arm64\n",
            ),
            entry(
                "mid-6.1.0-21-arm64.conf",
                "sort-key debian\nversion 6.1.0-21-arm64\n",
            ),
            entry("arch.conf", "sort-key arch\nversion 6.9\n"),
        ];
        sort(&mut entries);
        assert_eq!(
            ids(&entries),
            [
                "arch.conf",
                "mid-6.1.0-21-arm64.conf",
                "mid-6.1.0-18-arm64.conf"
            ]
        );
        let none = LoaderVariables::default();
        let mut conf = LoaderConf::default();
        assert_eq!(default(&entries, &conf, &none), Some((0, Reason::First)));
        conf.default = Some("MID-*".into());
        assert_eq!(
            default(&entries, &conf, &none),
            Some((
                1,
                Reason::LoaderConf {
                    key: "default",
                    pattern: "MID-*".into()
                }
            ))
        );
        conf.preferred = Some("*-18-*".into());
        assert_eq!(default(&entries, &conf, &none).unwrap().0, 2);
        let vars = LoaderVariables {
            default: Some("arch.conf".into()),
            ..LoaderVariables::default()
        };
        assert_eq!(
            default(&entries, &conf, &vars),
            Some((
                0,
                Reason::Variable {
                    name: efivar::DEFAULT,
                    pattern: "arch.conf".into()
                }
            ))
        );
        // A pattern that matches nothing falls through.
        let vars = LoaderVariables {
            one_shot: Some("gone.conf".into()),
            ..vars
        };
        assert_eq!(default(&entries, &conf, &vars).unwrap().0, 0);
        assert_eq!(default::<Entry>(&[], &conf, &vars), None);
    }

    #[test]
    fn reasons_read_as_sentences() {
        let var = Reason::Variable {
            name: efivar::ONE_SHOT,
            pattern: "a*".into(),
        };
        assert_eq!(var.to_string(), "EFI variable LoaderEntryOneShot \"a*\"");
        let conf = Reason::LoaderConf {
            key: "default",
            pattern: "b".into(),
        };
        assert_eq!(conf.to_string(), "loader.conf default \"b\"");
        assert_eq!(
            Reason::First.to_string(),
            "the first entry in systemd-boot's order"
        );
    }

    #[test]
    fn saved_means_the_selected_entry() {
        let entries = vec![entry("a.conf", ""), entry("b.conf", "")];
        let conf = LoaderConf {
            default: Some("@saved".into()),
            ..LoaderConf::default()
        };
        let mut vars = LoaderVariables::default();
        assert_eq!(default(&entries, &conf, &vars), Some((0, Reason::First)));
        vars.selected = Some("b.conf".into());
        assert_eq!(default(&entries, &conf, &vars).unwrap().0, 1);
        assert_eq!(find(&entries, "@other", Some("b.conf")), None);
    }

    #[test]
    fn lookup_by_id_title_version() {
        let entries = vec![
            entry("fedora-6.8.conf", "title Fedora\nversion 6.8\n"),
            entry("fedora-6.7+1.conf", "title Fedora\nversion 6.7\n"),
            entry("rescue.conf", "title Rescue\nversion 6.8\n"),
        ];
        assert_eq!(lookup(&entries, "fedora-6.8"), Lookup::Found(0));
        assert_eq!(lookup(&entries, "FEDORA-6.8.conf"), Lookup::Found(0));
        assert_eq!(lookup(&entries, "fedora-6.7"), Lookup::Found(1));
        assert_eq!(lookup(&entries, "fedora-6.7+1.conf"), Lookup::Found(1));
        assert_eq!(lookup(&entries, "Rescue"), Lookup::Found(2));
        assert_eq!(lookup(&entries, "Fedora"), Lookup::Ambiguous(vec![0, 1]));
        assert_eq!(lookup(&entries, "6.7"), Lookup::Found(1));
        assert_eq!(lookup(&entries, "6.8"), Lookup::Ambiguous(vec![0, 2]));
        assert_eq!(lookup(&entries, "nope"), Lookup::NotFound);
        let uki =
            crate::bootentry::type2::entry("arch-linux.efi", Some(b"ID=arch\n"), None).unwrap();
        assert_eq!(
            lookup(std::slice::from_ref(&uki), "arch-linux"),
            Lookup::Found(0)
        );
        assert_eq!(lookup(&[uki], "ARCH-LINUX.efi"), Lookup::Found(0));
    }
}

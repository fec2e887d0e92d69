//! Property tests of the boot entry parsers and the entry order: the
//! version comparison is a total preorder that agrees with systemd's
//! examples (`version.rs` unit tests hold those) and with numbers; parsers
//! never panic; what an entry file says survives parsing.

use std::cmp::Ordering;

use kexec_core::bootentry::loader_conf::LoaderConf;
use kexec_core::bootentry::select::{self, LoaderVariables};
use kexec_core::bootentry::{counting, efivar, glob, osrel, type1, type2, version, Loader, Tries};
use proptest::prelude::*;

/// Version strings over the characters that matter (and some that only
/// separate), short enough that triples often share prefixes.
fn version_string() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9ab~^._+-]{0,8}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// `compare` is a total preorder: reflexive, antisymmetric, transitive.
    #[test]
    fn version_compare_is_a_total_preorder(
        a in version_string(), b in version_string(), c in version_string()
    ) {
        prop_assert_eq!(version::compare(&a, &a), Ordering::Equal);
        prop_assert_eq!(version::compare(&a, &b), version::compare(&b, &a).reverse());
        let le = |x: &str, y: &str| version::compare(x, y).is_le();
        if le(&a, &b) && le(&b, &c) {
            prop_assert!(le(&a, &c), "{a:?} <= {b:?} <= {c:?} but not {a:?} <= {c:?}");
        }
        if version::compare(&a, &b).is_eq() {
            prop_assert_eq!(version::compare(&a, &c), version::compare(&b, &c));
        }
    }

    /// Dotted numbers compare as tuples of numbers (leading zeros ignored),
    /// a longer tuple newer when one is a prefix of the other.
    #[test]
    fn dotted_numbers_compare_as_tuples(
        a in proptest::collection::vec(0u32..1000, 1..5),
        b in proptest::collection::vec(0u32..1000, 1..5),
        zeros in 0usize..3,
    ) {
        let show = |v: &[u32]| v.iter()
            .map(|n| format!("{}{n}", "0".repeat(zeros)))
            .collect::<Vec<_>>()
            .join(".");
        prop_assert_eq!(version::compare(&show(&a), &show(&b)), a.cmp(&b));
    }

    /// Arbitrary bytes never panic any parser.
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = type1::parse("fuzz+1-2.conf", &bytes);
        let _ = LoaderConf::parse(&bytes);
        let _ = efivar::decode_string(&bytes);
        let _ = type2::entry("fuzz.efi", Some(&bytes), Some(&bytes));
        let text = String::from_utf8_lossy(&bytes);
        let _ = osrel::OsRelease::parse(&text).pick();
        let (pattern, name) = text.split_once('\n').unwrap_or((&text, ""));
        let _ = glob::matches(pattern, name);
        let _ = counting::split(&text);
        let _ = version::compare_bytes(pattern.as_bytes(), name.as_bytes());
    }

    /// Arbitrary lines of known keys never panic, and what parses is
    /// normalized: absolute paths without `..`.
    #[test]
    fn entry_lines_never_panic(
        lines in proptest::collection::vec(
            (
                prop_oneof![
                    Just("title"), Just("version"), Just("linux"), Just("initrd"),
                    Just("options"), Just("efi"), Just("uki"), Just("devicetree"),
                    Just("devicetree-overlay"), Just("sort-key"), Just("architecture"),
                    Just("#"), Just("x"),
                ],
                prop_oneof![Just(" "), Just("\t"), Just("  ")],
                "[ -~]{0,20}",
                prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            ),
            0..12,
        )
    ) {
        let text: String = lines.iter().map(|(k, s, v, e)| format!("{k}{s}{v}{e}")).collect();
        if let Ok(e) = type1::parse("e.conf", text.as_bytes()) {
            let paths = e.initrd.iter().map(String::as_str)
                .chain(e.devicetree.as_deref())
                .chain(e.devicetree_overlay.iter().map(String::as_str))
                .chain(e.loader.iter().filter(|l| !matches!(l, Loader::UkiUrl(_))).map(Loader::target));
            for p in paths {
                prop_assert!(p.starts_with('/') && !p.split('/').any(|c| c == ".."), "{p:?}");
            }
        }
    }

    /// An entry written the way kernel-install writes one reads back.
    #[test]
    fn written_entries_read_back(
        title in "[A-Za-z0-9 ()._-]{1,30}",
        version in "[0-9a-z._-]{1,20}",
        options in proptest::collection::vec("[a-z0-9=_./-]{1,20}", 0..4),
        initrds in proptest::collection::vec("[a-z0-9_-][a-z0-9._-]{0,11}", 0..3),
        kernel in "[a-z0-9_-][a-z0-9._-]{0,11}",
        pad in 1usize..8,
    ) {
        let title = title.trim().to_owned();
        prop_assume!(!title.is_empty());
        let sp = " ".repeat(pad);
        let mut text = format!("title{sp}{title}\nversion{sp}{version}\n");
        for o in &options {
            text.push_str(&format!("options{sp}{o}\n"));
        }
        text.push_str(&format!("linux{sp}/{kernel}\n"));
        for i in &initrds {
            text.push_str(&format!("initrd{sp}{i}\n"));
        }
        let e = type1::parse("x.conf", text.as_bytes()).unwrap();
        prop_assert_eq!(e.title.as_deref(), Some(title.as_str()));
        prop_assert_eq!(e.version.as_deref(), Some(version.as_str()));
        prop_assert_eq!(e.command_line(), (!options.is_empty()).then(|| options.join(" ")));
        prop_assert_eq!(e.loader, Some(Loader::Linux(format!("/{kernel}"))));
        let want: Vec<String> = initrds.iter().map(|i| format!("/{i}")).collect();
        prop_assert_eq!(e.initrd, want);
    }

    /// A boot counter added to any name is found and removed.
    #[test]
    fn boot_counters_round_trip(
        name in "[a-z0-9.+-]{0,12}",
        left in 0u32..=counting::MAX_TRIES,
        done in proptest::option::of(0u32..=counting::MAX_TRIES),
        suffix in prop_oneof![Just(".conf"), Just(".efi")],
    ) {
        let file = match done {
            Some(d) => format!("{name}+{left}-{d}{suffix}"),
            None => format!("{name}+{left}{suffix}"),
        };
        prop_assert_eq!(
            counting::split(&file),
            (format!("{name}{suffix}"), Some(Tries { left, done: done.unwrap_or(0) }))
        );
    }

    /// Globs: an escaped literal matches exactly itself; `*` around a
    /// matching pattern still matches with anything around the name.
    #[test]
    fn glob_literals_and_stars(s in "[ -~]{0,16}", pre in "[a-z]{0,4}", post in "[a-z]{0,4}") {
        let escaped: String = s.chars().flat_map(|c| ['\\', c]).collect();
        prop_assert!(glob::matches(&escaped, &s));
        let longer = format!("{s}x");
        prop_assert!(!glob::matches(&escaped, &longer));
        let (starred, around) = (format!("*{escaped}*"), format!("{pre}{s}{post}"));
        prop_assert!(glob::matches(&starred, &around));
        prop_assert!(glob::matches("*", &s));
    }

    /// efivarfs strings round-trip.
    #[test]
    fn efivar_strings_round_trip(s in "[^\u{0}]{0,40}") {
        prop_assert_eq!(efivar::decode_string(&efivar::encode_string(&s)), Ok(s));
    }

    /// Sorting keeps every entry, puts exhausted ones last, and the
    /// default is always one of the entries.
    #[test]
    fn sorting_and_default(
        specs in proptest::collection::vec(
            ("[a-c]{1,3}", proptest::option::of(0u32..3), proptest::option::of("[a-b]"), "[0-9.]{0,4}"),
            0..10,
        ),
        pattern in "[a-c*?]{0,4}",
    ) {
        let mut entries: Vec<_> = specs.iter().map(|(name, tries, key, version)| {
            let file = match tries {
                Some(t) => format!("{name}+{t}.conf"),
                None => format!("{name}.conf"),
            };
            let mut text = format!("linux /k\nversion {version}\n");
            if let Some(k) = key {
                text.push_str(&format!("sort-key {k}\n"));
            }
            type1::parse(&file, text.as_bytes()).unwrap()
        }).collect();
        let mut before: Vec<String> = entries.iter().map(|e| e.file_name.clone()).collect();
        select::sort(&mut entries);
        let mut after: Vec<String> = entries.iter().map(|e| e.file_name.clone()).collect();
        let exhausted: Vec<bool> = entries.iter().map(|e| e.tries.is_some_and(|t| t.left == 0)).collect();
        prop_assert!(exhausted.windows(2).all(|w| w[0] <= w[1]), "{after:?}");
        before.sort();
        after.sort();
        prop_assert_eq!(before, after);
        let conf = LoaderConf { default: Some(pattern), ..LoaderConf::default() };
        match select::default(&entries, &conf, &LoaderVariables::default()) {
            Some((i, _)) => prop_assert!(i < entries.len()),
            None => prop_assert!(entries.is_empty()),
        }
    }
}

/// Every string of up to `len` characters over `alphabet`.
fn all_strings(alphabet: &str, len: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut layer = vec![String::new()];
    for _ in 0..len {
        layer = layer
            .iter()
            .flat_map(|s| alphabet.chars().map(move |c| format!("{s}{c}")))
            .collect();
        out.extend(layer.iter().cloned());
    }
    out
}

/// Exhaustively, over short strings of every kind of character (digit,
/// letter, the four prefixes, a separator): no triple breaks transitivity.
#[test]
fn version_compare_is_transitive_on_all_short_strings() {
    // Length 3 (64 million triples) also passes; it takes a release build.
    let strings = all_strings("0a~-^._", 2);
    for a in &strings {
        for b in &strings {
            let ab = version::compare(a, b);
            assert_eq!(ab, version::compare(b, a).reverse(), "{a:?} {b:?}");
            for c in &strings {
                if ab.is_le() && version::compare(b, c).is_le() {
                    assert!(version::compare(a, c).is_le(), "{a:?} <= {b:?} <= {c:?}");
                }
            }
        }
    }
}

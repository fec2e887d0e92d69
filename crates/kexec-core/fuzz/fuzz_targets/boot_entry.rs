//! Fuzz target: the boot entry parsers (Type #1 entries, loader.conf,
//! os-release of a UKI, efivarfs strings, boot counters, globs, versions)
//! never panic; the version comparison stays antisymmetric; a parsed entry's
//! paths stay inside its partition; sorting and choosing a default of the
//! entries parsed from the input's NUL-separated pieces never panic.
#![no_main]

use kexec_core::bootentry::loader_conf::LoaderConf;
use kexec_core::bootentry::select::{self, LoaderVariables};
use kexec_core::bootentry::{counting, efivar, glob, osrel, type1, type2, version, Loader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = counting::split(&text);
    let _ = efivar::decode_string(data);
    let _ = osrel::OsRelease::parse(&text).pick();
    let _ = type2::entry("fuzz.efi", Some(data), Some(data));
    let conf = LoaderConf::parse(data).unwrap_or_default();
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = glob::matches(a, b);
    assert_eq!(version::compare(a, b), version::compare(b, a).reverse());

    let mut entries = Vec::new();
    for (i, piece) in data.split(|&b| b == 0).enumerate().take(16) {
        let name = format!("e{i}+{}-{}.conf", i % 3, i % 2);
        if let Ok(e) = type1::parse(&name, piece) {
            for p in e.initrd.iter().chain(&e.devicetree).chain(&e.devicetree_overlay) {
                assert!(p.starts_with('/') && !p.split('/').any(|c| c == ".."), "{p:?}");
            }
            if let Some(l) = &e.loader {
                if !matches!(l, Loader::UkiUrl(_)) {
                    assert!(l.target().starts_with('/'));
                }
            }
            let _ = e.kexec_load();
            entries.push(e);
        }
    }
    select::sort(&mut entries);
    let vars = LoaderVariables {
        default: Some(a.to_owned()),
        selected: Some(b.to_owned()),
        ..LoaderVariables::default()
    };
    if let Some((i, _)) = select::default(&entries, &conf, &vars) {
        assert!(i < entries.len());
    }
    let _ = select::lookup(&entries, a);
});

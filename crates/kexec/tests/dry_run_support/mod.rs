//! Helpers shared by the `--dry-run` test files (`dry_run.rs`,
//! `dry_run_crash.rs`): the synthetic inputs, running `kexec`, golden files.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_assets::synthetic::synthetic_image;

pub const SEED: &str = "0x5eed";

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes the synthetic Image (1 MiB, a v3.17+ header: text_offset 0,
/// image_size 20 MiB, flags = LE | 4K pages | anywhere) and a 200 KiB
/// initrd; returns their paths.
pub fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let image = dir.join("Image");
    std::fs::write(&image, synthetic_image(1 << 20, 20 << 20, 0b1010, 31)).unwrap();
    let initrd = dir.join("initrd.img");
    let bytes: Vec<u8> = (0..200u32 * 1024)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    std::fs::write(&initrd, bytes).unwrap();
    (image, initrd)
}

pub fn kexec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(args)
        .env("KEXEC_RS_TEST_SEED", SEED)
        .output()
        .expect("run kexec")
}

/// The purgatory segment's bytes (and so its digest, size and end) follow
/// the purgatory's code, not the inputs: golden files show a placeholder.
pub fn mask_purgatory(name: &str, actual: &str) -> String {
    const VARIES: &str = "(varies with the purgatory build)";
    let mut in_purgatory = false;
    let mut out = String::new();
    for line in actual.lines() {
        let trimmed = line.trim_start();
        let masked = if name.ends_with(".json") {
            if trimmed.starts_with("\"kind\": \"purgatory\"") {
                in_purgatory = true;
            } else if trimmed.starts_with('}') {
                in_purgatory = false;
            }
            let key = ["\"end\"", "\"bufsz\"", "\"memsz\""]
                .into_iter()
                .find(|k| trimmed.starts_with(k));
            // An element of its `sha256_chunks`: a quoted digest alone.
            let digest = trimmed.trim_end_matches(',');
            let is_digest = digest.len() == 66
                && digest.starts_with('"')
                && digest.ends_with('"')
                && digest[1..65].bytes().all(|b| b.is_ascii_hexdigit());
            match key {
                None if in_purgatory && is_digest => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let comma = if trimmed.ends_with(',') { "," } else { "" };
                    format!("{indent}\"{VARIES}\"{comma}")
                }
                Some(k) if in_purgatory => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let comma = if trimmed.ends_with(',') { "," } else { "" };
                    format!("{indent}{k}: \"{VARIES}\"{comma}")
                }
                _ => line.to_owned(),
            }
        } else if line.contains("purgatory (built in)") {
            format!("purgatory row: {VARIES}")
        } else {
            line.to_owned()
        };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

pub fn golden(name: &str, actual: &str) {
    let actual = mask_purgatory(name, actual);
    let actual = actual.as_str();
    let path = manifest().join("tests/golden").join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

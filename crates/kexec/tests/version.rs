//! `kexec --version` and the test seed, on the binary cargo builds for
//! these tests (a test build: the `test-seed` feature is on, Cargo.toml).
//! The release side, that a packaged binary ignores `KEXEC_RS_TEST_SEED`,
//! is checked on the `.deb`'s binary (xtask/tests/package.rs, and in the
//! QEMU guest by xtask/tests/e2e.rs `ours_boots_kernel_b_on_one_cpu`).

use std::process::Command;

use sha2::{Digest, Sha256};
use test_assets::synthetic::{fixture_sysroot, scratch, synthetic_image};

fn kexec(args: &[&str], seed: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kexec"));
    cmd.args(args).env_remove(kexec::TEST_SEED_ENV);
    if let Some(seed) = seed {
        cmd.env(kexec::TEST_SEED_ENV, seed);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_purgatory_built_in() {
    let text = kexec(&["--version"], None);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!("kexec {} (kexec-rs)", env!("CARGO_PKG_VERSION"))
    );
    // The digest printed is the SHA-256 of a blob this executable carries,
    // and that blob is the purgatory every plan patches.
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("purgatory: sha256 "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no purgatory line in\n{text}"));
    let blob = kexec::PURGATORY;
    assert_eq!(digest, format!("{:x}", Sha256::digest(blob)));
    assert_eq!(digest, kexec::PURGATORY_SHA256);
    let exe = std::fs::read(env!("CARGO_BIN_EXE_kexec")).unwrap();
    assert!(exe.windows(blob.len()).any(|w| w == blob));
    for feature in [
        "kexec_file_load",
        "compressed Image (gzip, zstd, xz, lz4 legacy)",
        "ARMv8 SHA2 instructions",
    ] {
        assert!(text.contains(feature), "{feature}: {text}");
    }
    // Exactly what the library gives `-v` (kexec-tools: version) to print.
    assert_eq!(text, kexec::version_text());
}

/// The `kaslr-seed` line of a dry run of a synthetic Image on the
/// `qemu-virt-1g` fixture.
fn kaslr_seed(seed: Option<&str>) -> String {
    let dir = scratch("version-seed");
    let image = dir.join("Image");
    std::fs::write(&image, synthetic_image(1 << 20, 20 << 20, 0b1010, 3)).unwrap();
    let root = fixture_sysroot("qemu-virt-1g");
    let text = kexec(
        &[
            "-l",
            image.to_str().unwrap(),
            "--dry-run",
            "--sysroot",
            root.to_str().unwrap(),
        ],
        seed,
    );
    text.lines()
        .find(|l| l.trim_start().starts_with("kaslr-seed:"))
        .unwrap_or_else(|| panic!("no kaslr-seed in\n{text}"))
        .to_owned()
}

#[test]
fn the_test_build_honours_the_test_seed_and_says_so() {
    assert_eq!(kaslr_seed(Some("7")), kaslr_seed(Some("7")));
    assert_ne!(kaslr_seed(None), kaslr_seed(None));
    assert_ne!(kaslr_seed(Some("7")), kaslr_seed(Some("8")));
    let text = kexec(&["--version"], None);
    assert!(
        text.ends_with("test build: KEXEC_RS_TEST_SEED fixes kaslr-seed and rng-seed\n"),
        "{text}"
    );
    // What the package test looks for to prove a release binary cannot read
    // the variable is here, in a build that can.
    let exe = std::fs::read(env!("CARGO_BIN_EXE_kexec")).unwrap();
    let name = kexec::TEST_SEED_ENV.as_bytes();
    assert!(exe.windows(name.len()).any(|w| w == name));
}

//! What `kexec --version` says: the version, the digest of the purgatory
//! built into this binary, and what this build can do. Every line is
//! computed from the build itself (the embedded blob, the decoder list,
//! `cfg`s), not written by hand, so a build that lacks something cannot
//! claim it.

use kexec_core::decompress::Compression;

use crate::pipeline::PURGATORY;

/// SHA-256 (lowercase hex) of [`PURGATORY`], the purgatory blob embedded in
/// this binary, as `build.rs` computed it when it built the blob.
pub const PURGATORY_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/purgatory.sha256"));

/// The name `--version` starts with (kexec-tools prints `kexec-tools 2.0.x`).
const NAME: &str = "kexec";

/// Every compressed kernel format the loader decompresses
/// (kexec-core/src/decompress.rs); the test `every_decompressor_is_listed`
/// fails to build when a new one is not listed.
const DECOMPRESSORS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Zstd,
    Compression::Xz,
    Compression::Lz4Legacy,
];

/// `SHA256H` (Arm ARM C7.2.301: `0101 1110 000 Rm 0 100 00 Rn Rd`).
const SHA256H: (u32, u32) = (0x5e00_4000, 0xffe0_fc00);
/// `SHA256H2` (Arm ARM C7.2.300: `0101 1110 000 Rm 0 101 00 Rn Rd`).
const SHA256H2: (u32, u32) = (0x5e00_5000, 0xffe0_fc00);

/// Whether the aarch64 code in `blob` (little-endian, 4-byte aligned words)
/// contains both SHA-256 round instructions: then the purgatory hashes with
/// the ARMv8 SHA2 instructions where the CPU has them.
fn uses_sha2_instructions(blob: &[u8]) -> bool {
    let has = |(value, mask): (u32, u32)| {
        blob.chunks_exact(4).any(|w| {
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            word & mask == value
        })
    };
    has(SHA256H) && has(SHA256H2)
}

/// The text after `kexec ` in `kexec --version` (clap prints the name
/// before it and a newline after): the version, then one line per fact of
/// this build.
pub fn version_body() -> String {
    let hashing = if uses_sha2_instructions(PURGATORY) {
        "SHA-256 with the ARMv8 SHA2 instructions where the CPU has them, else in software"
    } else {
        "SHA-256 in software"
    };
    let decompressors: Vec<&str> = DECOMPRESSORS.iter().map(|c| c.name()).collect();
    let linkage = if cfg!(target_feature = "crt-static") {
        "static"
    } else {
        "dynamic"
    };
    let mut lines = vec![
        format!("{} (kexec-rs)", env!("CARGO_PKG_VERSION")),
        format!(
            "purgatory: sha256 {PURGATORY_SHA256} ({} bytes), verifies segments with {hashing}",
            PURGATORY.len()
        ),
        "system calls: kexec_load, kexec_file_load (-s; the default -a falls back to kexec_load)"
            .to_owned(),
        format!(
            "kernel formats: Image, compressed Image ({}), EFI zboot, UKI, ELF vmlinux",
            decompressors.join(", ")
        ),
        format!(
            "build: {}-{}, {linkage}",
            std::env::consts::ARCH,
            std::env::consts::OS
        ),
    ];
    lines.extend(test_seed_line());
    lines.join("\n")
}

/// `kexec --version`'s whole output, newline included (for `-v`, kexec-tools'
/// spelling of it).
pub fn version_text() -> String {
    format!("{NAME} {}\n", version_body())
}

/// Only in test builds: says that the test seed is honoured.
#[cfg(feature = "test-seed")]
fn test_seed_line() -> Option<String> {
    Some(format!(
        "test build: {} fixes kaslr-seed and rng-seed",
        crate::pipeline::TEST_SEED_ENV
    ))
}

/// Release builds say nothing of it (and do not contain the variable's name).
#[cfg(not(feature = "test-seed"))]
fn test_seed_line() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_digest_is_the_embedded_purgatory() {
        let hex: String = Sha256::digest(PURGATORY)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(PURGATORY_SHA256, hex);
        assert!(version_text().contains(&format!("purgatory: sha256 {hex} (")));
    }

    #[test]
    fn sha2_instructions_are_found_only_where_they_are() {
        assert!(uses_sha2_instructions(PURGATORY));
        // SHA256H q0, q1, v2.4s and SHA256H2 q1, q3, v2.4s.
        let both = [0x5e02_4020_u32, 0x5e02_5061];
        let bytes =
            |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_le_bytes()).collect() };
        assert!(uses_sha2_instructions(&bytes(&both)));
        assert!(!uses_sha2_instructions(&bytes(&both[..1])));
        assert!(!uses_sha2_instructions(&bytes(&both[1..])));
        // NOP, and SHA1H (a different SHA instruction) are not SHA-256.
        assert!(!uses_sha2_instructions(&bytes(&[0xd503_201f, 0x5e28_0800])));
        // Unaligned occurrences are not instructions.
        let mut shifted = vec![0u8];
        shifted.extend(bytes(&both));
        assert!(!uses_sha2_instructions(&shifted));
    }

    #[test]
    fn every_decompressor_is_listed() {
        let listed = |c: Compression| match c {
            Compression::Gzip | Compression::Zstd | Compression::Xz | Compression::Lz4Legacy => {
                DECOMPRESSORS.contains(&c)
            }
        };
        assert!(DECOMPRESSORS.iter().all(|c| listed(*c)));
        assert!(
            version_body().contains("compressed Image (gzip, zstd, xz, lz4 legacy)"),
            "{}",
            version_body()
        );
    }

    #[test]
    fn the_test_build_says_so() {
        // Unit tests are built with `test-seed` (Cargo.toml).
        assert!(version_body()
            .ends_with("\ntest build: KEXEC_RS_TEST_SEED fixes kaslr-seed and rng-seed"));
        assert!(version_text()
            .starts_with(&format!("kexec {} (kexec-rs)\n", env!("CARGO_PKG_VERSION"))));
    }
}

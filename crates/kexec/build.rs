//! Builds the purgatory (crates/purgatory) for `aarch64-unknown-none` and
//! leaves its flat, position-independent image in `OUT_DIR/purgatory.bin`,
//! which `src/pipeline.rs` embeds, and its SHA-256 (lowercase hex) in
//! `OUT_DIR/purgatory.sha256`, which `kexec --version` names
//! (`src/version.rs`). The linked ELF it was flattened from is kept as
//! `OUT_DIR/purgatory.elf` for the tests that read its code
//! (`tests/model_link.rs`). No pre-built blob is ever committed.
//!
//! `KEXEC_RS_PURGATORY_ELF=path` uses an already linked purgatory ELF instead
//! of building one (it is checked the same way).

use std::fmt::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    for path in [
        "crates/purgatory/src",
        "crates/purgatory/link.ld",
        "crates/purgatory/build.rs",
        "crates/purgatory/Cargo.toml",
        "crates/handoff/src",
        "crates/handoff/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=KEXEC_RS_PURGATORY_ELF");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let elf = match std::env::var_os("KEXEC_RS_PURGATORY_ELF") {
        Some(elf) => {
            std::fs::read(&elf).unwrap_or_else(|e| panic!("{}: {e}", PathBuf::from(&elf).display()))
        }
        None => {
            let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            let dir =
                purgatory_image::cargo_build(&cargo, &workspace, &out.join("purgatory-target"))
                    .unwrap_or_else(|e| panic!("purgatory: {e}"));
            let path = dir.join("purgatory");
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
    };
    let image = purgatory_image::from_elf(&elf).unwrap_or_else(|e| panic!("purgatory: {e}"));
    std::fs::write(out.join("purgatory.elf"), &elf).expect("writing purgatory.elf");
    std::fs::write(out.join("purgatory.bin"), &image.bytes).expect("writing purgatory.bin");
    let hex = Sha256::digest(&image.bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
    std::fs::write(out.join("purgatory.sha256"), hex).expect("writing purgatory.sha256");
}

//! Links the bare-metal binaries with `link.ld` (only for `target_os = "none"`;
//! host builds of the crate are stubs for `cargo test --workspace`).

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "none" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // Keep relocation records in the output so xtask can prove the
        // image has no absolute relocations (position independence).
        println!("cargo:rustc-link-arg-bins=--emit-relocs");
    }
}

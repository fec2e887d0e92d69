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
        // Cortex-A53 erratum 843419 (ADRP at page offset 0xff8/0xffc):
        // the linker rewrites or veneers affected sequences, as Linux does
        // with CONFIG_ARM64_ERRATUM_843419. Page offsets survive our 4 KiB
        // aligned placement, so the fix stays valid wherever we are loaded.
        println!("cargo:rustc-link-arg-bins=--fix-cortex-a53-843419");
    }
}

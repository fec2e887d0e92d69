//! Seed corpora for the cargo-fuzz targets in `crates/kexec-core/fuzz`.
//!
//! The seeds are generated, not committed: run
//! `cargo test -p kexec-core --test formats_fuzz_seeds -- --ignored`
//! (or `crates/kexec-core/fuzz/seed-corpus.sh`) to write them to
//! `crates/kexec-core/fuzz/corpus/<target>/`. The always-run test checks that
//! every seed is what its target expects.

mod formats_support;

use std::path::Path;

use formats_support as support;
use kexec_core::kernel::decode;

/// Small, valid inputs for each fuzz target.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let image = support::synthetic_image(4096);
    let trailed = |c: Vec<u8>| support::with_size_trailer(c, image.len());
    let gz = support::gzip(&image);
    let zst = support::zstd(&image);
    let xz = support::xz(&image);
    let lz4 = support::lz4_legacy(&image);
    let base = support::KIMAGE_VADDR;
    let (text, data) = image.split_at(0x800);
    let vmlinux = support::elf_aligned(
        base,
        &[
            support::Segment {
                vaddr: base,
                data: text,
                memsz: 0x800,
            },
            support::Segment {
                vaddr: base + 0x1000,
                data,
                memsz: 0x2000,
            },
        ],
        16,
    );
    let uki = support::uki(
        &image,
        Some("console=ttyAMA0"),
        Some(b"070701"),
        Some(&[0xd0, 0x0d, 0xfe, 0xed]),
    );
    let mut legacy = support::header(0x8_0000, 0, 0, false);
    legacy.resize(256, 0);
    let zboots = [
        ("zboot-gzip", support::zboot("gzip", &gz, gz.len())),
        (
            "zboot-zstd22",
            support::zboot("zstd22", &trailed(zst.clone()), zst.len()),
        ),
        (
            "zboot-xzkern",
            support::zboot("xzkern", &trailed(xz.clone()), xz.len()),
        ),
        (
            "zboot-lz4",
            support::zboot("lz4", &trailed(lz4.clone()), lz4.len()),
        ),
    ];
    let mut seeds = vec![
        ("image_header", "efi-4k", image[..64].to_vec()),
        ("image_header", "legacy", legacy[..64].to_vec()),
        ("decompress_gzip", "image", gz.clone()),
        ("decompress_zstd", "image-trailer", trailed(zst.clone())),
        ("decompress_xz", "image-trailer", trailed(xz.clone())),
        ("decompress_lz4", "image-trailer", trailed(lz4.clone())),
        ("pe_uki", "uki", uki.clone()),
        ("elf", "vmlinux", vmlinux.clone()),
        ("load_kernel", "image", image.clone()),
        ("load_kernel", "legacy", legacy),
        ("load_kernel", "gzip", gz),
        ("load_kernel", "zstd", trailed(zst)),
        ("load_kernel", "xz", trailed(xz)),
        ("load_kernel", "lz4", trailed(lz4)),
        ("load_kernel", "uki", uki),
        ("load_kernel", "vmlinux", vmlinux),
    ];
    for (name, file) in zboots {
        seeds.push(("zboot", name, file.clone()));
        seeds.push(("load_kernel", name, file));
    }
    seeds
}

#[test]
fn seeds_are_valid_and_small() {
    for (target, name, bytes) in seeds() {
        assert!(
            bytes.len() < 16 * 1024,
            "{target}/{name} is {} bytes",
            bytes.len()
        );
        if target == "load_kernel" {
            decode(&bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        }
    }
}

#[test]
#[ignore = "writes crates/kexec-core/fuzz/corpus; run explicitly"]
fn write_fuzz_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    for (target, name, bytes) in seeds() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    eprintln!("wrote seeds under {}", corpus.display());
}

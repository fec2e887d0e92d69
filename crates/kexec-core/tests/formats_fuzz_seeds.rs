//! Seed corpora for the cargo-fuzz targets in `crates/kexec-core/fuzz`.
//!
//! The seeds are generated, not committed: run
//! `cargo test -p kexec-core --test formats_fuzz_seeds -- --ignored`
//! (or `crates/kexec-core/fuzz/seed-corpus.sh`) to write them to
//! `crates/kexec-core/fuzz/corpus/<target>/` (or `$KEXEC_RS_FUZZ_CORPUS`).
//! [`seeds`] wraps a small synthetic Image in every container;
//! [`kernel_seeds`] takes the first bytes of each downloaded Debian kernel
//! (`test_assets::installed_kernels`): its header, and its first
//! [`KERNEL_PREFIX`] bytes compressed and wrapped — real code for the
//! decoders, written at run time only (kernel bytes are never committed).
//! The always-run tests check that every seed is what its target expects.

mod formats_support;

use std::path::{Path, PathBuf};

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

/// How much of a real kernel the compressed seeds hold: its header and the
/// start of `head.S`, small enough that the decoders stay fast.
const KERNEL_PREFIX: usize = 16 * 1024;

/// Seeds from the first bytes of each downloaded Debian kernel (none when
/// `cargo xtask setup` has not run).
fn kernel_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for kernel in test_assets::installed_kernels() {
        let image = std::fs::read(&kernel.image).unwrap();
        let prefix = &image[..KERNEL_PREFIX.min(image.len())];
        let trailed = |c: Vec<u8>| support::with_size_trailer(c, prefix.len());
        let gz = support::gzip(prefix);
        let zst = trailed(support::zstd(prefix));
        let xz = trailed(support::xz(prefix));
        let lz4 = trailed(support::lz4_legacy(prefix));
        let uki = support::uki(prefix, Some("console=ttyAMA0"), None, None);
        let zboot = support::zboot("gzip", &gz, gz.len());
        let (text, data) = prefix.split_at(prefix.len() / 2);
        let base = support::KIMAGE_VADDR;
        let vmlinux = support::elf_aligned(
            base,
            &[
                support::Segment {
                    vaddr: base,
                    data: text,
                    memsz: text.len() as u64,
                },
                support::Segment {
                    vaddr: base + 0x1_0000,
                    data,
                    memsz: 0x1_0000,
                },
            ],
            16,
        );
        let v = &kernel.version;
        seeds.extend([
            ("image_header", format!("kernel-{v}"), prefix[..64].to_vec()),
            ("decompress_gzip", format!("kernel-{v}"), gz.clone()),
            ("decompress_zstd", format!("kernel-{v}"), zst.clone()),
            ("decompress_xz", format!("kernel-{v}"), xz.clone()),
            ("decompress_lz4", format!("kernel-{v}"), lz4.clone()),
            ("zboot", format!("kernel-{v}-gzip"), zboot.clone()),
            ("pe_uki", format!("kernel-{v}"), uki.clone()),
            ("elf", format!("kernel-{v}"), vmlinux.clone()),
            ("load_kernel", format!("kernel-{v}-head"), prefix.to_vec()),
            ("load_kernel", format!("kernel-{v}-gzip"), gz),
            ("load_kernel", format!("kernel-{v}-zstd"), zst),
            ("load_kernel", format!("kernel-{v}-xz"), xz),
            ("load_kernel", format!("kernel-{v}-lz4"), lz4),
            ("load_kernel", format!("kernel-{v}-zboot"), zboot),
            ("load_kernel", format!("kernel-{v}-uki"), uki),
            ("load_kernel", format!("kernel-{v}-vmlinux"), vmlinux),
        ]);
    }
    seeds
}

/// Where the seeds go: `$KEXEC_RS_FUZZ_CORPUS`, else the fuzz crate's `corpus/`.
fn corpus_dir() -> PathBuf {
    std::env::var_os("KEXEC_RS_FUZZ_CORPUS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"))
}

#[test]
fn kernel_seeds_are_small_and_decode() {
    for (target, name, bytes) in kernel_seeds() {
        assert!(bytes.len() <= 2 * KERNEL_PREFIX, "{target}/{name}");
        if target == "load_kernel" && name.ends_with("-gzip") {
            decode(&bytes).unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
        }
    }
}

#[test]
#[ignore = "writes crates/kexec-core/fuzz/corpus; run explicitly"]
fn write_kernel_fuzz_seeds() {
    let corpus = corpus_dir();
    let seeds = kernel_seeds();
    for (target, name, bytes) in &seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    eprintln!(
        "wrote {} kernel seeds under {}",
        seeds.len(),
        corpus.display()
    );
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
    let corpus = corpus_dir();
    for (target, name, bytes) in seeds() {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    eprintln!("wrote seeds under {}", corpus.display());
}

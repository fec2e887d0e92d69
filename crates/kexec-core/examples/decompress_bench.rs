//! How fast each decoder decompresses a real kernel: the measurement behind
//! the decoder choice in `decompress.rs` (issue 15; numbers in
//! README.md, "Latest benchmark").
//!
//! ```text
//! cargo run --release -p kexec-core --example decompress_bench -- [--reps N] IMAGE...
//! ```
//!
//! Each plain arm64 `Image` is compressed as the kernel build does
//! (arch/arm64/boot/Makefile and drivers/firmware/efi/libstub/Makefile.zboot
//! with scripts/Makefile.lib: `gzip -n -9`, `zstd -22 --ultra`, `xz
//! --check=crc32 --arm64 --lzma2=dict=32MiB`, `lz4 -l -9`; the host's
//! tools, which must be installed), then decoded `--reps` times by
//! - `kexec_core::decompress` (what `kexec` runs: flate2 with its default
//!   miniz_oxide backend, ruzstd, lzma-rust2, lz4_flex; bounded reads), and
//! - for gzip, the alternatives: miniz_oxide and zlib-rs into one buffer of
//!   the size gzip's trailer states (ISIZE, RFC 1952 section 2.3.1).
//!
//! Every decoder's output is compared with the Image. Prints the median and
//! best time and the rate in MB/s of decompressed bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kexec_core::decompress::{self, Compression, DEFAULT_LIMIT};

/// gzip's fixed header: ID1 ID2 CM FLG MTIME(4) XFL OS (RFC 1952 section 2.3).
const GZIP_HEADER_LEN: usize = 10;
/// gzip's trailer: CRC32 and ISIZE (RFC 1952 section 2.3.1).
const GZIP_TRAILER_LEN: usize = 8;

type Decoder = fn(&[u8]) -> Vec<u8>;

/// A format: its name, the compressor's command line, and its decoders.
type Format<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, Decoder)]);

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut reps = 5;
    if let Some(i) = args.iter().position(|a| a == "--reps") {
        reps = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--reps N");
        args.drain(i..i + 2);
    }
    if args.is_empty() {
        eprintln!("usage: decompress_bench [--reps N] IMAGE...");
        std::process::exit(2);
    }
    println!("| kernel | format | compressed (MB) | decoder | median (s) | best (s) | MB/s |");
    println!("| --- | --- | ---: | --- | ---: | ---: | ---: |");
    for image_path in &args {
        let image = std::fs::read(image_path).expect("read the Image");
        let name = Path::new(image_path)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let formats: [Format<'_>; 4] = [
            (
                "gzip -9",
                &["gzip", "-n", "-9", "-c"],
                &[
                    ("kexec-core (flate2 + miniz_oxide)", current_gzip),
                    ("miniz_oxide, one buffer", miniz_gzip),
                    ("zlib-rs, one buffer", zlib_rs_gzip),
                ],
            ),
            (
                "zstd -22",
                &["zstd", "-q", "--ultra", "-22", "-c"],
                &[("kexec-core (ruzstd)", current_zstd)],
            ),
            (
                "xz arm64",
                &["xz", "-c", "--check=crc32", "--arm64", "--lzma2=dict=32MiB"],
                &[("kexec-core (lzma-rust2)", current_xz)],
            ),
            (
                "lz4 -l -9",
                &["lz4", "-q", "-l", "-9", "-c"],
                &[("kexec-core (lz4_flex)", current_lz4)],
            ),
        ];
        for (format, command, decoders) in formats {
            let packed = compress(Path::new(image_path), command);
            for (decoder, decode) in decoders {
                let mut times = Vec::new();
                for _ in 0..reps {
                    let start = Instant::now();
                    let out = decode(&packed);
                    times.push(start.elapsed());
                    assert!(out == image, "{decoder} decoded {format} wrongly");
                }
                times.sort();
                let median = times[times.len() / 2];
                println!(
                    "| {name} | {format} | {:.1} | {decoder} | {:.3} | {:.3} | {:.0} |",
                    packed.len() as f64 / 1e6,
                    median.as_secs_f64(),
                    times[0].as_secs_f64(),
                    image.len() as f64 / 1e6 / median.as_secs_f64().max(1e-9),
                );
            }
        }
    }
}

/// `command` (a compressor writing to stdout) run on `image`.
fn compress(image: &Path, command: &[&str]) -> Vec<u8> {
    let out = Command::new(command[0])
        .args(&command[1..])
        .arg(PathBuf::from(image))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", command[0]));
    assert!(out.status.success(), "{command:?} failed");
    out.stdout
}

fn current(format: Compression, input: &[u8]) -> Vec<u8> {
    decompress::decompress(format, input, DEFAULT_LIMIT).expect("decodes")
}

fn current_gzip(input: &[u8]) -> Vec<u8> {
    current(Compression::Gzip, input)
}

fn current_zstd(input: &[u8]) -> Vec<u8> {
    current(Compression::Zstd, input)
}

fn current_xz(input: &[u8]) -> Vec<u8> {
    current(Compression::Xz, input)
}

fn current_lz4(input: &[u8]) -> Vec<u8> {
    current(Compression::Lz4Legacy, input)
}

/// ISIZE, the decompressed size modulo 2^32, from the trailer.
fn gzip_isize(input: &[u8]) -> usize {
    let t = &input[input.len() - 4..];
    u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
}

/// The raw deflate stream of a single gzip member written by `gzip -n`
/// (no optional header fields: FLG = 0).
fn deflate_body(input: &[u8]) -> &[u8] {
    assert_eq!(input[3], 0, "gzip -n writes no optional fields");
    &input[GZIP_HEADER_LEN..input.len() - GZIP_TRAILER_LEN]
}

fn miniz_gzip(input: &[u8]) -> Vec<u8> {
    let size = gzip_isize(input);
    miniz_oxide::inflate::decompress_to_vec_with_limit(deflate_body(input), size)
        .expect("miniz_oxide decodes")
}

fn zlib_rs_gzip(input: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; gzip_isize(input)];
    // windowBits 16 + 15: a gzip wrapper, checked (zlib's inflateInit2).
    let config = zlib_rs::InflateConfig { window_bits: 31 };
    let (decoded, rc) = zlib_rs::decompress_slice(&mut out, input, config);
    assert_eq!(rc, zlib_rs::ReturnCode::Ok, "zlib-rs decodes");
    let n = decoded.len();
    out.truncate(n);
    out
}

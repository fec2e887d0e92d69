//! Property tests: the parsers never panic on arbitrary bytes, and any Image
//! survives every wrapper.

mod formats_support;

use formats_support as support;
use kexec_core::decompress::{self, Compression};
use kexec_core::image::{Arm64ImageHeader, ARM64_IMAGE_MAGIC, HEADER_SIZE};
use kexec_core::kernel::{self, decode_with_limit, KernelFormat};
use kexec_core::{elf, pe, zboot};
use proptest::prelude::*;

/// Output limit for arbitrary inputs: small, so bombs stay cheap.
const LIMIT: usize = 1 << 20;

/// Arbitrary bytes, often starting with a known magic so the parsers get past it.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(Vec::new()),
        Just(vec![0x1f, 0x8b, 0x08]),
        Just(vec![0x28, 0xb5, 0x2f, 0xfd]),
        Just(vec![0xfd, b'7', b'z', b'X', b'Z', 0x00]),
        Just(vec![0x02, 0x21, 0x4c, 0x18]),
        Just(b"MZ\0\0zimg".to_vec()),
        Just(b"MZ".to_vec()),
        Just(b"\x7fELF\x02\x01\x01\0".to_vec()),
    ];
    (magic, proptest::collection::vec(any::<u8>(), 0..2048)).prop_map(|(mut m, rest)| {
        m.extend(rest);
        m
    })
}

/// An Image of arbitrary contents behind a valid header.
fn arbitrary_image() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        0u64..4,
        proptest::collection::vec(any::<u8>(), 0..20_000),
        any::<bool>(),
    )
        .prop_map(|(efi, page, body, repetitive)| {
            let size = (HEADER_SIZE + body.len()) as u64;
            let mut image = support::header(0, size.next_multiple_of(0x1000), page << 1, efi);
            if repetitive {
                image.extend(body.iter().map(|b| b % 4));
            } else {
                image.extend(body);
            }
            image
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(bytes in input()) {
        let _ = Arm64ImageHeader::parse(&bytes);
        for format in [Compression::Gzip, Compression::Zstd, Compression::Xz, Compression::Lz4Legacy] {
            let _ = decompress::decompress(format, &bytes, LIMIT);
        }
        let _ = zboot::decompress(&bytes, LIMIT);
        let _ = pe::Uki::parse(&bytes);
        let _ = pe::certificate_table(&bytes);
        let _ = elf::flatten(&bytes, LIMIT);
        let decoded = decode_with_limit(&bytes, LIMIT);
        if let Ok(k) = &decoded {
            prop_assert!(k.image.len() <= LIMIT.max(bytes.len()));
        }
        // kexec -s decides from the first 64 bytes what decode decides from all.
        let head = &bytes[..bytes.len().min(64)];
        let plain = matches!(&decoded, Ok(k) if k.format == KernelFormat::Image)
            || matches!(&decoded, Err(kernel::Error::Image(_)));
        prop_assert_eq!(kernel::is_plain_image(head), plain);
    }

    /// Any 64 bytes with the magic at offset 56: a little-endian header
    /// parses and serialises back to the same bytes; a big-endian one
    /// (flags bit 0) is refused. Both branches run in every few cases.
    #[test]
    fn header_round_trips(
        mut bytes in proptest::collection::vec(any::<u8>(), HEADER_SIZE),
        big_endian in any::<bool>(),
    ) {
        // booting.rst: magic le32 at offset 56; flags le64 at 24, bit 0 = big-endian.
        bytes[56..60].copy_from_slice(&ARM64_IMAGE_MAGIC.to_le_bytes());
        let flags_lsb = 24;
        if big_endian {
            bytes[flags_lsb] |= 1;
        } else {
            bytes[flags_lsb] &= !1;
        }
        match Arm64ImageHeader::parse(&bytes) {
            Ok(h) => {
                prop_assert!(!big_endian);
                prop_assert_eq!(&h.to_bytes()[..], &bytes[..]);
                prop_assert_eq!(h.magic, ARM64_IMAGE_MAGIC);
            }
            Err(e) => {
                prop_assert!(big_endian, "a little-endian header was refused: {e}");
                prop_assert!(matches!(e, kexec_core::image::Error::BigEndian { .. }), "{e}");
            }
        }
    }

    #[test]
    fn every_wrapper_returns_the_same_image(image in arbitrary_image()) {
        let trailed = |c: Vec<u8>| support::with_size_trailer(c, image.len());
        let gz = support::gzip(&image);
        let zst = support::zstd(&image);
        let cases = [
            (KernelFormat::Image, image.clone()),
            (KernelFormat::Gzip, gz.clone()),
            (KernelFormat::Zstd, trailed(zst.clone())),
            (KernelFormat::Xz, trailed(support::xz(&image))),
            (KernelFormat::Lz4, trailed(support::lz4_legacy(&image))),
            (KernelFormat::Zboot { compression: "gzip".into() }, support::zboot("gzip", &gz, gz.len())),
            (
                KernelFormat::Zboot { compression: "zstd22".into() },
                support::zboot("zstd22", &trailed(zst.clone()), zst.len()),
            ),
            (KernelFormat::Uki, support::uki(&image, None, None, None)),
            (KernelFormat::Uki, support::uki(&gz, Some("x"), None, None)),
            (
                KernelFormat::Elf,
                support::elf(
                    support::KIMAGE_VADDR,
                    &[support::Segment {
                        vaddr: support::KIMAGE_VADDR,
                        data: &image,
                        memsz: image.len() as u64,
                    }],
                ),
            ),
        ];
        for (format, file) in cases {
            let k = decode_with_limit(&file, LIMIT)
                .map_err(|e| TestCaseError::fail(format!("{format}: {e}")))?;
            prop_assert_eq!(&k.format, &format);
            prop_assert!(k.image.as_ref() == image.as_slice(), "{} differs", format);
        }
    }

    #[test]
    fn truncated_wrappers_fail_cleanly(image in arbitrary_image(), cut in any::<prop::sample::Index>()) {
        let gz = support::gzip(&image);
        let file = support::zboot("gzip", &gz, gz.len());
        let cut = cut.index(file.len());
        // Never a panic; a shorter file is either an error or (when only
        // padding was cut) the same Image.
        if let Ok(k) = decode_with_limit(&file[..cut], LIMIT) {
            prop_assert!(k.image.as_ref() == image.as_slice());
        }
    }
}

//! Exact-result tests of the kernel format parsers on small, hand-built inputs.
//!
//! Longer than 700 lines: one exact-error test per format and failure, in
//! the order `kernel::decode` tries the formats; the builders they share are
//! in `formats_support`.

mod formats_support;

use std::borrow::Cow;

use formats_support as support;
use kexec_core::decompress::{self, Compression};
use kexec_core::elf;
use kexec_core::image::{self, Arm64ImageHeader, PageSize, Placement};
use kexec_core::kernel::{self, decode, decode_with_limit, KernelFormat, UkiParts};
use kexec_core::pe;
use kexec_core::zboot::{self, ZbootHeader};

/// The header of Debian's 6.1.0-56-arm64 Image (EFI stub, 4K pages, anywhere).
#[rustfmt::skip]
const DEBIAN_6_1_HEADER: [u8; 64] = [
    0x4d, 0x5a, 0x40, 0xfa,                         // 0000: code0: "MZ" + ccmp (EFI stub)
    0x56, 0xa3, 0x59, 0x14,                         // 0004: code1: b primary_entry
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0008: text_offset = 0
    0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, // 0010: image_size = 0x2010000
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0018: flags = LE | 4K | anywhere
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0020: res2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028: res3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0030: res4
    0x41, 0x52, 0x4d, 0x64,                         // 0038: magic "ARM\x64"
    0x40, 0x00, 0x00, 0x00,                         // 003c: res5: PE header at 0x40
];

/// A pre-3.17 kernel header: no EFI stub, image_size 0, flags unspecified.
#[rustfmt::skip]
const LEGACY_HEADER: [u8; 64] = [
    0x10, 0x00, 0x00, 0x14,                         // 0000: code0: b stext
    0x00, 0x00, 0x00, 0x00,                         // 0004: code1
    0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // 0008: text_offset = 0x80000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0010: image_size = 0 (pre-3.17)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0018: flags = 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0020: res2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028: res3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0030: res4
    0x41, 0x52, 0x4d, 0x64,                         // 0038: magic "ARM\x64"
    0x00, 0x00, 0x00, 0x00,                         // 003c: res5
];

#[test]
fn debian_header_fields() {
    let h = Arm64ImageHeader::parse(&DEBIAN_6_1_HEADER).unwrap();
    assert_eq!(h.text_offset, 0);
    assert_eq!(h.image_size, 0x0201_0000);
    assert_eq!(h.flags, 0xa);
    assert_eq!(h.magic, image::ARM64_IMAGE_MAGIC);
    assert_eq!(h.page_size(), PageSize::Size4K);
    assert_eq!(h.page_size().bytes(), Some(4096));
    assert_eq!(h.placement(), Placement::Anywhere);
    assert!(h.is_efi_stub());
    assert!(!h.is_legacy());
    assert_eq!(h.pe_header_offset(), Some(0x40));
    assert_eq!(h.effective_text_offset(), 0);
    assert_eq!(h.effective_image_size(0x1000), 0x0201_0000);
    assert_eq!(h.to_bytes(), DEBIAN_6_1_HEADER);
}

#[test]
fn legacy_header_uses_0x80000_and_room_after_the_file() {
    let h = Arm64ImageHeader::parse(&LEGACY_HEADER).unwrap();
    assert!(h.is_legacy());
    assert!(!h.is_efi_stub());
    assert_eq!(h.pe_header_offset(), None);
    assert_eq!(h.effective_text_offset(), image::LEGACY_TEXT_OFFSET);
    // The file, then kexec-tools' 16 MiB guess (KERNEL_IMAGE_SIZE) after it.
    assert_eq!(h.effective_image_size(0x12_3456), 0x12_3456 + 0x100_0000);
    assert_eq!(h.effective_image_size(u64::MAX), u64::MAX);
    assert_eq!(h.page_size(), PageSize::Unspecified);
    assert_eq!(h.placement(), Placement::NearDramBase);
}

#[test]
fn page_size_bits() {
    for (flags, size) in [
        (0b000, PageSize::Unspecified),
        (0b010, PageSize::Size4K),
        (0b100, PageSize::Size16K),
        (0b110, PageSize::Size64K),
    ] {
        let h = Arm64ImageHeader::parse(&support::header(0, 0x20_0000, flags, false)).unwrap();
        assert_eq!(h.page_size(), size, "flags {flags:#x}");
    }
    assert_eq!(PageSize::Size64K.bytes(), Some(0x1_0000));
}

#[test]
fn header_truncated() {
    assert_eq!(
        Arm64ImageHeader::parse(&DEBIAN_6_1_HEADER[..63]),
        Err(image::Error::Truncated { len: 63 })
    );
    assert_eq!(
        Arm64ImageHeader::parse(&[]),
        Err(image::Error::Truncated { len: 0 })
    );
}

#[test]
fn header_bad_magic() {
    let mut h = DEBIAN_6_1_HEADER;
    h[0x3b] = 0x65; // "ARMe"
    assert_eq!(
        Arm64ImageHeader::parse(&h),
        Err(image::Error::BadMagic { found: 0x654d_5241 })
    );
}

#[test]
fn header_big_endian_rejected() {
    let mut h = DEBIAN_6_1_HEADER;
    h[0x18] |= 1; // flags bit 0: big endian
    let err = Arm64ImageHeader::parse(&h).unwrap_err();
    assert_eq!(err, image::Error::BigEndian { flags: 0xb });
    assert_eq!(
        err.to_string(),
        "arm64 Image is big endian (flags 0xb); only little-endian kernels are supported"
    );
    assert_eq!(decode(&h), Err(kernel::Error::Image(err)));
}

#[test]
fn plain_image_is_borrowed() {
    let image = support::synthetic_image(4096);
    let k = decode(&image).unwrap();
    assert_eq!(k.format, KernelFormat::Image);
    assert!(matches!(k.image, Cow::Borrowed(b) if std::ptr::eq(b, image.as_slice())));
    assert_eq!(k.uki, None);
}

#[test]
fn unrecognised_input() {
    let err = decode(&[0u8; 100]).unwrap_err();
    assert_eq!(err, kernel::Error::Unrecognised { len: 100 });
    assert_eq!(
        err.to_string(),
        "not an arm64 kernel: no known magic (input of 100 bytes)"
    );
    assert!(matches!(
        decode(b"MZ"),
        Err(kernel::Error::Uki(pe::Error::Pe { .. }))
    ));
}

// ---- decompression -------------------------------------------------------

#[test]
fn detect_by_magic() {
    let data = support::synthetic_image(1000);
    assert_eq!(
        Compression::detect(&support::gzip(&data)),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::detect(&support::zstd(&data)),
        Some(Compression::Zstd)
    );
    assert_eq!(
        Compression::detect(&support::xz(&data)),
        Some(Compression::Xz)
    );
    assert_eq!(
        Compression::detect(&support::lz4_legacy(&data)),
        Some(Compression::Lz4Legacy)
    );
    assert_eq!(Compression::detect(&data), None);
}

#[test]
fn each_format_round_trips_with_and_without_size_trailer() {
    let data = support::synthetic_image(100_000);
    for (format, encode) in support::encoders() {
        let compressed = encode(&data);
        assert_eq!(
            decompress::decompress(format, &compressed, 1 << 20).unwrap(),
            data,
            "{format}"
        );
        let trailed = support::with_size_trailer(compressed.clone(), data.len());
        assert_eq!(
            decompress::decompress(format, &trailed, 1 << 20).unwrap(),
            data,
            "{format} + trailer"
        );
        let mut padded = compressed.clone();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(
            decompress::decompress(format, &padded, 1 << 20).unwrap(),
            data,
            "{format} + padding"
        );
        let bad_trailer = support::with_size_trailer(compressed, data.len() + 1);
        assert_eq!(
            decompress::decompress(format, &bad_trailer, 1 << 20),
            Err(decompress::Error::SizeTrailerMismatch {
                format,
                trailer: 100_001,
                actual: 100_000
            }),
            "{format}"
        );
    }
}

#[test]
fn concatenated_streams() {
    let a = support::synthetic_image(5000);
    let b = vec![7u8; 3000];
    let expected = [a.clone(), b.clone()].concat();
    for (format, encode) in support::encoders() {
        let both = [encode(&a), encode(&b)].concat();
        assert_eq!(
            decompress::decompress(format, &both, 1 << 20).unwrap(),
            expected,
            "{format}"
        );
    }
}

#[test]
fn trailing_garbage_rejected() {
    let data = support::synthetic_image(1000);
    let mut gz = support::gzip(&data);
    let end = gz.len();
    gz.extend_from_slice(b"garbage");
    assert_eq!(
        decompress::gunzip(&gz, 1 << 20),
        Err(decompress::Error::TrailingData {
            format: Compression::Gzip,
            offset: end as u64,
            len: 7
        })
    );
}

#[test]
fn gzip_bomb_stops_at_limit() {
    // 64 MiB of zeros compress to ~64 KiB; the limit is 1 MiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![0u8; 64 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 200_000);
    let err = decompress::gunzip(&bomb, 1 << 20).unwrap_err();
    assert_eq!(
        err,
        decompress::Error::LimitExceeded {
            format: Compression::Gzip,
            limit: 1 << 20
        }
    );
    assert_eq!(
        err.to_string(),
        "gzip stream: output exceeds the limit of 0x100000 bytes"
    );
    assert_eq!(
        decode_with_limit(&bomb, 1 << 20),
        Err(kernel::Error::Decompress(err))
    );
}

#[test]
fn every_format_respects_the_limit() {
    let data = support::synthetic_image(300_000);
    for (format, encode) in support::encoders() {
        let compressed = encode(&data);
        assert_eq!(
            decompress::decompress(format, &compressed, 299_999),
            Err(decompress::Error::LimitExceeded {
                format,
                limit: 299_999
            }),
            "{format}"
        );
        assert_eq!(
            decompress::decompress(format, &compressed, 300_000)
                .unwrap()
                .len(),
            300_000
        );
    }
}

#[test]
fn truncated_streams() {
    let data = support::synthetic_image(50_000);
    for (format, encode) in support::encoders() {
        let compressed = encode(&data);
        let cut = &compressed[..compressed.len() / 2];
        let err = decompress::decompress(format, cut, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                decompress::Error::Truncated { format: f, .. } | decompress::Error::Corrupt { format: f, .. }
                    if f == format
            ),
            "{format}: {err}"
        );
        assert!(
            err.to_string().starts_with(&format!("{format} stream: ")),
            "{err}"
        );
    }
}

#[test]
fn corrupt_gzip_reports_offset() {
    let data = support::synthetic_image(50_000);
    let mut gz = support::gzip(&data);
    // Block header right after the 10-byte member header: BTYPE = 3 is reserved.
    gz[10] |= 0b110;
    let err = decompress::gunzip(&gz, 1 << 20).unwrap_err();
    let decompress::Error::Corrupt { format, offset, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*format, Compression::Gzip);
    assert!(*offset >= 10, "{err}");
    assert!(
        err.to_string()
            .starts_with("gzip stream: corrupt data at input offset 0x"),
        "{err}"
    );
}

#[test]
fn bad_magic_for_requested_format() {
    assert_eq!(
        decompress::unzstd(b"not zstd", 10),
        Err(decompress::Error::BadMagic {
            format: Compression::Zstd
        })
    );
    assert_eq!(
        decompress::unlz4_legacy(b"\x02\x21", 10),
        Err(decompress::Error::BadMagic {
            format: Compression::Lz4Legacy
        })
    );
}

#[test]
fn lz4_oversized_and_truncated_blocks() {
    #[rustfmt::skip]
    let oversized = [
        0x02, 0x21, 0x4c, 0x18, // 0000: lz4 legacy magic
        0xff, 0xff, 0xff, 0x7f, // 0004: block size 0x7fffffff > LZ4_COMPRESSBOUND(8 MiB)
        0x00,                   // 0008: (block data)
    ];
    assert_eq!(
        decompress::unlz4_legacy(&oversized, 1 << 20),
        Err(decompress::Error::Corrupt {
            format: Compression::Lz4Legacy,
            offset: 4,
            reason: "block size 0x7fffffff exceeds the maximum 0x808090".into()
        })
    );
    #[rustfmt::skip]
    let truncated = [
        0x02, 0x21, 0x4c, 0x18, // 0000: lz4 legacy magic
        0x10, 0x00, 0x00, 0x00, // 0004: block size 0x10
        0x00, 0x01,             // 0008: only 2 bytes of block data
    ];
    assert_eq!(
        decompress::unlz4_legacy(&truncated, 1 << 20),
        Err(decompress::Error::Truncated {
            format: Compression::Lz4Legacy,
            offset: 4,
            reason: "block of 0x10 bytes, only 0x2 left".into()
        })
    );
    // Magic alone, or magic and a size trailer: empty output.
    assert_eq!(decompress::unlz4_legacy(&oversized[..4], 10), Ok(vec![]));
    assert_eq!(
        decompress::unlz4_legacy(&[0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0], 10),
        Ok(vec![])
    );
}

#[test]
fn compressed_non_image_is_rejected() {
    let gz = support::gzip(&[0x55; 100]);
    assert_eq!(
        decode(&gz),
        Err(kernel::Error::NotAnImage {
            format: KernelFormat::Gzip,
            source: image::Error::BadMagic { found: 0x5555_5555 }
        })
    );
    assert_eq!(
        decode(&gz).unwrap_err().to_string(),
        "gzip-compressed Image does not contain an arm64 Image: not an arm64 Image: magic at offset 56 is 0x55555555, expected 0x644d5241 (\"ARM\\x64\")"
    );
}

#[test]
fn compressed_stream_with_image_magic_at_56_is_decompressed() {
    // An Image whose bytes 46..50 (in res3/res4) happen to be "ARMd": stored
    // as lz4 literals they land at file offset 56, where an Image has its magic.
    let mut image = support::synthetic_image(100);
    image[46..50].copy_from_slice(b"ARMd");
    #[rustfmt::skip]
    let mut file = vec![
        0x02, 0x21, 0x4c, 0x18, // 0000: lz4 legacy magic
        0x66, 0x00, 0x00, 0x00, // 0004: block size 0x66
        0xf0, 85,               // 0008: token: 15 + 85 = 100 literals, no match
    ];
    file.extend_from_slice(&image); // 000a: the literals
    assert_eq!(&file[56..60], b"ARMd");
    let k = decode(&file).unwrap();
    assert_eq!(k.format, KernelFormat::Lz4);
    assert_eq!(k.image.as_ref(), image.as_slice());
}

#[test]
fn load_each_compressed_format() {
    let data = support::synthetic_image(200_000);
    let cases = [
        (KernelFormat::Gzip, support::gzip(&data)),
        (
            KernelFormat::Zstd,
            support::with_size_trailer(support::zstd(&data), data.len()),
        ),
        (
            KernelFormat::Xz,
            support::with_size_trailer(support::xz(&data), data.len()),
        ),
        (
            KernelFormat::Lz4,
            support::with_size_trailer(support::lz4_legacy(&data), data.len()),
        ),
    ];
    for (format, file) in cases {
        let k = decode(&file).unwrap();
        assert_eq!(k.format, format);
        assert_eq!(k.image.as_ref(), data.as_slice());
        assert_eq!(k.header, Arm64ImageHeader::parse(&data).unwrap());
    }
}

// ---- zboot ----------------------------------------------------------------

/// A zboot descriptor as zboot-header.S lays it out (payload outside the buffer).
#[rustfmt::skip]
const ZBOOT_HEADER: [u8; 64] = [
    0x4d, 0x5a, 0x00, 0x00,                         // 0000: MZ_MAGIC
    0x7a, 0x69, 0x6d, 0x67,                         // 0004: "zimg"
    0x00, 0x10, 0x00, 0x00,                         // 0008: payload offset 0x1000
    0x34, 0x12, 0x00, 0x00,                         // 000c: payload size 0x1234
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0010: reserved
    b'z', b's', b't', b'd', b'2', b'2', 0x00, 0x00, // 0018: compression type "zstd22"
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0020
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0030
    0xcd, 0x23, 0x82, 0x81,                         // 0038: LINUX_PE_MAGIC
    0x40, 0x00, 0x00, 0x00,                         // 003c: PE header offset
];

#[test]
fn zboot_header_fields() {
    let h = ZbootHeader::parse(&ZBOOT_HEADER).unwrap();
    assert_eq!(
        h,
        ZbootHeader {
            payload_offset: 0x1000,
            payload_size: 0x1234,
            compression: "zstd22".into(),
            pe_header_offset: 0x40
        }
    );
    assert_eq!(h.decoder(), Ok(Compression::Zstd));
}

#[test]
fn zboot_offset_past_eof() {
    let err = zboot::decompress(&ZBOOT_HEADER, 1 << 20).unwrap_err();
    assert_eq!(
        err,
        zboot::Error::PayloadOffsetPastEof {
            offset: 0x1000,
            file_len: 0x40
        }
    );
    assert_eq!(
        err.to_string(),
        "zboot payload offset 0x1000 past end of file (len 0x40)"
    );
    assert_eq!(decode(&ZBOOT_HEADER), Err(kernel::Error::Zboot(err)));
}

#[test]
fn zboot_payload_past_eof() {
    let mut file = ZBOOT_HEADER.to_vec();
    file.resize(0x2000, 0);
    assert_eq!(
        zboot::decompress(&file, 1 << 20),
        Err(zboot::Error::PayloadPastEof {
            offset: 0x1000,
            size: 0x1234,
            file_len: 0x2000
        })
    );
    // Offset and size overflowing u32 arithmetic.
    file[8..12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    file[12..16].copy_from_slice(&0x20u32.to_le_bytes());
    assert_eq!(
        zboot::decompress(&file, 1 << 20),
        Err(zboot::Error::PayloadOffsetPastEof {
            offset: 0xffff_fff0,
            file_len: 0x2000
        })
    );
}

#[test]
fn zboot_truncated_and_bad_name() {
    assert_eq!(
        ZbootHeader::parse(&ZBOOT_HEADER[..0x30]),
        Err(zboot::Error::Truncated { len: 0x30 })
    );
    let mut h = ZBOOT_HEADER;
    h[0x18..0x38].fill(b'a'); // no NUL terminator
    assert_eq!(
        ZbootHeader::parse(&h),
        Err(zboot::Error::BadCompressionName)
    );
    h[0x18] = 0; // empty name
    assert_eq!(
        ZbootHeader::parse(&h),
        Err(zboot::Error::BadCompressionName)
    );
    assert_eq!(
        ZbootHeader::parse(&DEBIAN_6_1_HEADER),
        Err(zboot::Error::BadMagic)
    );
}

#[test]
fn zboot_unsupported_compressions() {
    for name in ["lzma", "lzo", "bzip2"] {
        let file = support::zboot(name, &[0u8; 32], 32);
        let err = decode(&file).unwrap_err();
        assert_eq!(
            err,
            kernel::Error::Zboot(zboot::Error::Unsupported {
                compression: name.into()
            })
        );
        assert_eq!(
            err.to_string(),
            format!("zboot compression \"{name}\" is not supported (supported: gzip, zstd22, lz4, xzkern)")
        );
    }
}

#[test]
fn zboot_each_supported_compression() {
    let data = support::synthetic_image(150_000);
    for (name, payload, trailer) in [
        ("gzip", support::gzip(&data), false),
        ("zstd22", support::zstd(&data), true),
        ("lz4", support::lz4_legacy(&data), true),
        ("xzkern", support::xz(&data), true),
    ] {
        let size = payload.len();
        let payload = if trailer {
            support::with_size_trailer(payload, data.len())
        } else {
            payload
        };
        let file = support::zboot(name, &payload, size);
        let k = decode(&file).unwrap();
        assert_eq!(
            k.format,
            KernelFormat::Zboot {
                compression: name.into()
            },
            "{name}"
        );
        assert_eq!(k.image.as_ref(), data.as_slice(), "{name}");
    }
}

#[test]
fn zboot_corrupt_payload() {
    let data = support::synthetic_image(10_000);
    let mut payload = support::gzip(&data);
    payload[10] |= 0b110;
    let file = support::zboot("gzip", &payload, payload.len());
    let err = decode(&file).unwrap_err();
    assert!(
        matches!(
            &err,
            kernel::Error::Zboot(zboot::Error::Payload {
                compression,
                source: decompress::Error::Corrupt { format: Compression::Gzip, .. }
            }) if compression == "gzip"
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("zboot gzip payload: gzip stream: corrupt data at"),
        "{err}"
    );
}

// ---- UKI ------------------------------------------------------------------

#[test]
fn uki_with_all_sections() {
    let image = support::synthetic_image(20_000);
    let file = support::uki(
        &image,
        Some("console=ttyAMA0 root=/dev/vda\n"),
        Some(b"07070100"),
        Some(&[0xd0, 0x0d, 0xfe, 0xed]),
    );
    let parsed = pe::Uki::parse(&file).unwrap();
    assert_eq!(parsed.linux, image.as_slice());
    assert_eq!(parsed.cmdline, Some("console=ttyAMA0 root=/dev/vda"));
    let k = decode(&file).unwrap();
    assert_eq!(k.format, KernelFormat::Uki);
    assert!(
        matches!(k.image, Cow::Borrowed(_)),
        "a plain .linux is borrowed"
    );
    assert_eq!(k.image.as_ref(), image.as_slice());
    assert_eq!(
        k.uki,
        Some(UkiParts {
            cmdline: Some("console=ttyAMA0 root=/dev/vda".into()),
            initrd: Some(b"07070100".to_vec()),
            dtb: Some(vec![0xd0, 0x0d, 0xfe, 0xed]),
        })
    );
}

#[test]
fn uki_minimal_and_nested_compression() {
    let image = support::synthetic_image(20_000);
    let plain = support::uki(&image, None, None, None);
    let k = decode(&plain).unwrap();
    assert_eq!(k.uki, Some(UkiParts::default()));

    let gz = support::uki(&support::gzip(&image), None, None, None);
    let k = decode(&gz).unwrap();
    assert_eq!(
        (k.format, k.image.as_ref()),
        (KernelFormat::Uki, image.as_slice())
    );

    let payload = support::zstd(&image);
    let zb = support::zboot(
        "zstd22",
        &support::with_size_trailer(payload.clone(), image.len()),
        payload.len(),
    );
    let nested = support::uki(&zb, Some("quiet"), None, None);
    let k = decode(&nested).unwrap();
    assert_eq!(k.image.as_ref(), image.as_slice());
    assert_eq!(k.uki.unwrap().cmdline.as_deref(), Some("quiet"));
}

#[test]
fn uki_errors() {
    let image = support::synthetic_image(1000);
    // A PE without .linux.
    let (no_linux, _) = support::pe(support::IMAGE_FILE_MACHINE_ARM64, &[(".text", &[0u8; 16])]);
    assert_eq!(
        decode(&no_linux),
        Err(kernel::Error::Uki(pe::Error::MissingLinux))
    );
    // An x86-64 UKI.
    let (x86, _) = support::pe(0x8664, &[(".linux", &image)]);
    assert_eq!(
        decode(&x86),
        Err(kernel::Error::Uki(pe::Error::WrongMachine {
            machine: 0x8664
        }))
    );
    // .linux holding garbage, a UKI, or an ELF.
    assert_eq!(
        decode(&support::uki(&[1u8; 100], None, None, None)),
        Err(kernel::Error::UkiLinux(Box::new(
            kernel::Error::Unrecognised { len: 100 }
        )))
    );
    let inner = support::uki(&image, None, None, None);
    assert_eq!(
        decode(&support::uki(&inner, None, None, None)),
        Err(kernel::Error::UnsupportedNesting {
            inner: KernelFormat::Uki
        })
    );
    let vmlinux = support::elf(
        support::KIMAGE_VADDR,
        &[support::Segment {
            vaddr: support::KIMAGE_VADDR,
            data: &image,
            memsz: 0x2_0000,
        }],
    );
    assert_eq!(
        decode(&support::uki(&vmlinux, None, None, None)),
        Err(kernel::Error::UnsupportedNesting {
            inner: KernelFormat::Elf
        })
    );
    // .linux holding a truncated gzip stream.
    let gz = support::gzip(&image);
    let err = decode(&support::uki(&gz[..gz.len() - 12], None, None, None)).unwrap_err();
    assert!(
        matches!(&err, kernel::Error::UkiLinux(inner) if matches!(**inner, kernel::Error::Decompress(_))),
        "{err}"
    );
    // Bad UTF-8 command line.
    let file = support::uki(&image, None, None, None);
    let (bad, _) = support::pe(
        support::IMAGE_FILE_MACHINE_ARM64,
        &[(".linux", &image), (".cmdline", b"ok\xff")],
    );
    assert_eq!(
        decode(&bad),
        Err(kernel::Error::Uki(pe::Error::CmdlineNotUtf8 {
            valid_up_to: 2
        }))
    );
    assert!(pe::is_uki(&file));
}

#[test]
fn efi_stub_image_and_zboot_are_not_ukis() {
    let image = support::synthetic_image(1000);
    assert!(image.starts_with(b"MZ"));
    assert_eq!(decode(&image).unwrap().format, KernelFormat::Image);
    assert!(!pe::is_uki(&image));
    let payload = support::gzip(&image);
    let zb = support::zboot("gzip", &payload, payload.len());
    assert!(!pe::is_uki(&zb));
    assert!(zboot::is_zboot(&zb));
}

// ---- ELF ------------------------------------------------------------------

/// A minimal arm64 `vmlinux`: one `PT_LOAD` at KIMAGE_VADDR holding just an Image header.
#[rustfmt::skip]
const TINY_VMLINUX_HEADERS: [u8; 120] = [
    0x7f, b'E', b'L', b'F',                         // 0000: e_ident magic
    0x02, 0x01, 0x01, 0x00,                         // 0004: ELFCLASS64, ELFDATA2LSB, EV_CURRENT, SYSV
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0008: e_ident padding
    0x02, 0x00,                                     // 0010: e_type = ET_EXEC
    0xb7, 0x00,                                     // 0012: e_machine = EM_AARCH64 (183)
    0x01, 0x00, 0x00, 0x00,                         // 0014: e_version
    0x00, 0x00, 0x00, 0x08, 0x00, 0x80, 0xff, 0xff, // 0018: e_entry = 0xffff800008000000 (_text)
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0020: e_phoff = 0x40
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028: e_shoff = 0 (no sections)
    0x00, 0x00, 0x00, 0x00,                         // 0030: e_flags
    0x40, 0x00,                                     // 0034: e_ehsize = 64
    0x38, 0x00,                                     // 0036: e_phentsize = 56
    0x01, 0x00,                                     // 0038: e_phnum = 1
    0x40, 0x00,                                     // 003a: e_shentsize
    0x00, 0x00,                                     // 003c: e_shnum
    0x00, 0x00,                                     // 003e: e_shstrndx
    0x01, 0x00, 0x00, 0x00,                         // 0040: p_type = PT_LOAD
    0x07, 0x00, 0x00, 0x00,                         // 0044: p_flags = RWX
    0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0048: p_offset = 0x78
    0x00, 0x00, 0x00, 0x08, 0x00, 0x80, 0xff, 0xff, // 0050: p_vaddr = 0xffff800008000000
    0x00, 0x00, 0x00, 0x08, 0x00, 0x80, 0xff, 0xff, // 0058: p_paddr = p_vaddr (virtual on arm64)
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0060: p_filesz = 0x40
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0068: p_memsz = 0x1000 (BSS follows)
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // 0070: p_align = 0x10000
];

#[test]
fn tiny_vmlinux_from_bytes() {
    let file = [&TINY_VMLINUX_HEADERS[..], &DEBIAN_6_1_HEADER[..]].concat(); // 0078: the Image
    let k = elf::flatten(&file, 1 << 20).unwrap();
    assert_eq!(k.entry, support::KIMAGE_VADDR);
    assert_eq!(k.base_vaddr, support::KIMAGE_VADDR);
    assert_eq!(k.mem_span, 0x1000);
    assert_eq!(k.image, DEBIAN_6_1_HEADER);
    assert_eq!(
        k.header,
        Arm64ImageHeader::parse(&DEBIAN_6_1_HEADER).unwrap()
    );
    // One byte short of the segment's file bytes.
    assert_eq!(
        elf::flatten(&file[..file.len() - 1], 1 << 20),
        Err(elf::Error::SegmentOutOfBounds {
            vaddr: support::KIMAGE_VADDR,
            offset: 0x78,
            filesz: 0x40,
            file_len: 0xb7
        })
    );
}

#[test]
fn elf_two_segments_with_gap_and_bss() {
    let image = support::synthetic_image(0x3000);
    let (text, data) = image.split_at(0x2000);
    let base = support::KIMAGE_VADDR;
    let file = support::elf(
        base,
        &[
            // Listed out of order on purpose: the loader sorts by p_vaddr.
            support::Segment {
                vaddr: base + 0x3000,
                data,
                memsz: 0x8000,
            },
            support::Segment {
                vaddr: base,
                data: text,
                memsz: 0x2000,
            },
        ],
    );
    let k = elf::flatten(&file, 1 << 20).unwrap();
    assert_eq!(k.base_vaddr, base);
    assert_eq!(k.entry, base);
    assert_eq!(k.mem_span, 0xb000);
    let mut expected = text.to_vec();
    expected.resize(0x3000, 0); // zero-filled gap
    expected.extend_from_slice(data);
    assert_eq!(k.image, expected);
    let loaded = decode(&file).unwrap();
    assert_eq!(
        (loaded.format, loaded.image.as_ref()),
        (KernelFormat::Elf, expected.as_slice())
    );
}

#[test]
fn elf_errors() {
    let image = support::synthetic_image(0x1000);
    let base = support::KIMAGE_VADDR;
    let seg = |vaddr, data, memsz| support::Segment { vaddr, data, memsz };

    let file = support::elf(base + 0x40, &[seg(base, &image, 0x1000)]);
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::EntryNotAtStart {
            entry: base + 0x40,
            base
        })
    );
    let file = support::elf(base, &[seg(base, &image, 0x800)]);
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::FileSizeExceedsMemSize {
            vaddr: base,
            filesz: 0x1000,
            memsz: 0x800
        })
    );
    let file = support::elf(
        base,
        &[
            seg(base, &image, 0x1000),
            seg(base + 0x800, &image[..16], 0x10),
        ],
    );
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::OverlappingSegments {
            vaddr: base + 0x800,
            previous_end: base + 0x1000
        })
    );
    // A huge zero-filled gap must not be allocated.
    let file = support::elf(
        base,
        &[
            seg(base, &image, 0x1000),
            seg(base + (1 << 40), &image[..16], 0x10),
        ],
    );
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::TooLarge {
            size: (1 << 40) + 16,
            limit: 1 << 20
        })
    );
    let file = support::elf(base, &[seg(base, &[0u8; 0x100], 0x100)]);
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::Header(image::Error::BadMagic { found: 0 }))
    );
    // The synthetic header says image_size 0x20000: a larger BSS contradicts it.
    let file = support::elf(base, &[seg(base, &image, 0x40000)]);
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::ImageSizeTooSmall {
            image_size: 0x2_0000,
            span: 0x4_0000
        })
    );
    let file = support::elf(base, &[]);
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::NoLoadSegments)
    );
    let mut file = support::elf(base, &[seg(base, &image, 0x1000)]);
    file[18] = 62; // e_machine = EM_X86_64
    assert_eq!(
        decode(&file),
        Err(kernel::Error::Elf(elf::Error::NotAarch64 { machine: 62 }))
    );
    file[18] = 183;
    file[16] = 1; // e_type = ET_REL
    assert_eq!(
        elf::flatten(&file, 1 << 20),
        Err(elf::Error::NotExecutable { e_type: 1 })
    );
    file[16] = 2;
    let len = file.len();
    let err = elf::flatten(&file[..len - 16], 1 << 20).unwrap_err();
    assert_eq!(
        err,
        elf::Error::SegmentOutOfBounds {
            vaddr: base,
            offset: 0x1_0000,
            filesz: 0x1000,
            file_len: len - 16
        }
    );
    assert!(matches!(
        elf::flatten(&file[..40], 1 << 20),
        Err(elf::Error::Malformed { .. })
    ));
}

//! The format parsers on real Debian arm64 kernels (skipped when
//! `cargo xtask setup` has not downloaded them; see the `test-assets` crate).
//!
//! Each test wraps the real Image the way the kernel build, ukify or the
//! linker would, and checks that [`decode`] returns it byte for byte.
//! Debug builds compress slowly, so apart from one full-size gzip round trip
//! the compressed forms use an 8 MiB prefix of the Image, which still starts
//! with the real header.

mod formats_support;

use std::borrow::Cow;

use formats_support as support;
use kexec_core::image::{Arm64ImageHeader, PageSize};
use kexec_core::kernel::{decode, KernelFormat, UkiParts};

/// 8 MiB: the prefix used where the whole Image is not needed.
const PREFIX: usize = 8 << 20;

/// The installed kernels' Images, read into memory.
fn images() -> Vec<(String, Vec<u8>)> {
    test_assets::debian_kernels()
        .into_iter()
        .map(|k| {
            let bytes = std::fs::read(&k.image)
                .unwrap_or_else(|e| panic!("reading {}: {e}", k.image.display()));
            (k.version, bytes)
        })
        .collect()
}

fn prefix(image: &[u8]) -> &[u8] {
    &image[..image.len().min(PREFIX)]
}

#[test]
fn real_header() {
    for (version, image) in images() {
        let h = Arm64ImageHeader::parse(&image).unwrap();
        assert_eq!(h.text_offset, 0, "{version}");
        assert!(
            h.image_size > image.len() as u64,
            "{version}: image_size covers BSS"
        );
        assert_eq!(h.page_size(), PageSize::Size4K, "{version}");
        assert!(h.is_efi_stub(), "{version}");
        assert_eq!(h.effective_image_size(image.len() as u64), h.image_size);
        let k = decode(&image).unwrap();
        assert_eq!(k.format, KernelFormat::Image);
        assert!(matches!(k.image, Cow::Borrowed(b) if std::ptr::eq(b, image.as_slice())));
        assert_eq!(k.header, h);
    }
}

#[test]
fn real_gzip_full_size() {
    for (version, image) in images() {
        let gz = support::gzip(&image);
        let k = decode(&gz).unwrap();
        assert_eq!(k.format, KernelFormat::Gzip, "{version}");
        assert!(
            k.image.as_ref() == image.as_slice(),
            "{version}: gzip round trip differs"
        );
    }
}

#[test]
fn real_zstd_xz_lz4() {
    for (version, image) in images() {
        let part = prefix(&image);
        let cases = [
            (KernelFormat::Zstd, support::zstd(part)),
            (KernelFormat::Xz, support::xz(part)),
            (KernelFormat::Lz4, support::lz4_legacy(part)),
        ];
        for (format, compressed) in cases {
            let file = support::with_size_trailer(compressed, part.len());
            let k = decode(&file).unwrap();
            assert_eq!(k.format, format, "{version}");
            assert!(
                k.image.as_ref() == part,
                "{version}: {format} round trip differs"
            );
        }
    }
}

#[test]
fn real_lz4_full_size_multiple_blocks() {
    for (version, image) in images() {
        // More than 8 MiB: several legacy blocks, as the kernel writes them.
        let file = support::with_size_trailer(support::lz4_legacy(&image), image.len());
        let k = decode(&file).unwrap();
        assert_eq!(k.format, KernelFormat::Lz4, "{version}");
        assert!(
            k.image.as_ref() == image.as_slice(),
            "{version}: lz4 round trip differs"
        );
    }
}

#[test]
fn real_zboot() {
    for (version, image) in images() {
        let part = prefix(&image);
        let gz = support::gzip(part);
        let zst = support::zstd(part);
        let cases = [
            ("gzip", support::zboot("gzip", &gz, gz.len())),
            (
                "zstd22",
                support::zboot(
                    "zstd22",
                    &support::with_size_trailer(zst.clone(), part.len()),
                    zst.len(),
                ),
            ),
        ];
        for (name, file) in cases {
            let k = decode(&file).unwrap();
            assert_eq!(
                k.format,
                KernelFormat::Zboot {
                    compression: name.into()
                },
                "{version}"
            );
            assert!(k.image.as_ref() == part, "{version}: zboot {name} differs");
        }
    }
}

#[test]
fn real_uki() {
    for (version, image) in images() {
        let dtb = [0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 0x28];
        let file = support::uki(
            &image,
            Some("root=/dev/vda ro\0"),
            Some(b"initramfs"),
            Some(&dtb),
        );
        let k = decode(&file).unwrap();
        assert_eq!(k.format, KernelFormat::Uki, "{version}");
        assert!(
            k.image.as_ref() == image.as_slice(),
            "{version}: UKI .linux differs"
        );
        assert_eq!(
            k.uki,
            Some(UkiParts {
                cmdline: Some("root=/dev/vda ro".into()),
                initrd: Some(b"initramfs".to_vec()),
                dtb: Some(dtb.to_vec()),
            })
        );
        // A UKI whose .linux is itself compressed.
        let part = prefix(&image);
        let nested = support::uki(&support::gzip(part), None, None, None);
        let k = decode(&nested).unwrap();
        assert!(
            k.image.as_ref() == part,
            "{version}: UKI with gzip .linux differs"
        );
    }
}

#[test]
fn real_elf() {
    for (version, image) in images() {
        let h = Arm64ImageHeader::parse(&image).unwrap();
        let base = support::KIMAGE_VADDR;
        // Three PT_LOADs like a real vmlinux (text, init, data + BSS), split
        // at 64 KiB boundaries, the last one's p_memsz running to _end.
        let a = (image.len() / 3) & !0xffff;
        let b = (2 * image.len() / 3) & !0xffff;
        let seg = |from: usize, to: usize, memsz: u64| support::Segment {
            vaddr: base + from as u64,
            data: &image[from..to],
            memsz,
        };
        let file = support::elf(
            base,
            &[
                seg(0, a, a as u64),
                seg(a, b, (b - a) as u64),
                seg(b, image.len(), h.image_size - b as u64),
            ],
        );
        let k = decode(&file).unwrap();
        assert_eq!(k.format, KernelFormat::Elf, "{version}");
        assert!(
            k.image.as_ref() == image.as_slice(),
            "{version}: ELF flat image differs"
        );
        assert_eq!(k.header, h);
    }
}

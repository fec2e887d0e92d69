//! Inputs the tests make themselves, written once for every test crate: a
//! synthetic arm64 Image, a fresh scratch directory, and the committed
//! sysroot fixtures (`fixtures/sysroots`).

use std::path::PathBuf;

/// The arm64 Image header magic, "ARM\x64" read as a little-endian `u32`
/// (Documentation/arch/arm64/booting.rst).
const ARM64_IMAGE_MAGIC: u32 = 0x644d_5241;
/// `b +0x40`: the first instruction of a non-EFI Image, jumping over the
/// header.
const BRANCH_OVER_HEADER: u32 = 0x1400_0010;

/// A 64-byte arm64 Image header (booting.rst, "Call the kernel image"): a
/// non-EFI Image of `image_size` bytes at `text_offset`, with `flags`
/// (bit 0 big endian, bits 1-2 page size, bit 3 physical placement).
pub fn arm64_image_header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
    let mut h = [0u8; 64];
    // 0000: code0; 0004: code1 = 0.
    h[0..4].copy_from_slice(&BRANCH_OVER_HEADER.to_le_bytes());
    // 0008: text_offset.
    h[8..16].copy_from_slice(&text_offset.to_le_bytes());
    // 0010: image_size.
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    // 0018: flags; 0020..0038: res2, res3, res4 = 0.
    h[24..32].copy_from_slice(&flags.to_le_bytes());
    // 0038: magic; 003c: res5 = 0 (no PE header).
    h[56..60].copy_from_slice(&ARM64_IMAGE_MAGIC.to_le_bytes());
    h
}

/// A synthetic Image of `len` bytes (at least 64): the header of
/// [`arm64_image_header`] (text_offset 0), then byte `i` is
/// `i * step % 251`, a fixed pattern so digests stay stable.
pub fn synthetic_image(len: u32, image_size: u64, flags: u64, step: u32) -> Vec<u8> {
    synthetic_image_at(0, len, image_size, flags, step)
}

/// [`synthetic_image`] with the header's `text_offset`, for the Images of
/// kernels before v5.8 (which wrote 0 there): a pre-3.17 Image is
/// `synthetic_image_at(0x8_0000, len, 0, 0, step)` (`image_size` and `flags`
/// 0, `text_offset` 0x80000: booting.rst); one built with
/// `CONFIG_ARM64_RANDOMIZE_TEXT_OFFSET` and 4 KiB pages may have
/// `text_offset` 0x81000 (a random page multiple below 2 MiB).
pub fn synthetic_image_at(
    text_offset: u64,
    len: u32,
    image_size: u64,
    flags: u64,
    step: u32,
) -> Vec<u8> {
    let mut image: Vec<u8> = (0..len)
        .map(|i| u8::try_from(i.wrapping_mul(step) % 251).expect("below 251"))
        .collect();
    image[..64].copy_from_slice(&arm64_image_header(text_offset, image_size, flags));
    image
}

/// A fresh, empty directory for one test: `name` under a directory of this
/// process in the system's temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("kexec-rs-test-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The committed sysroot fixture `fixtures/sysroots/<name>`; panics if it
/// is missing (committed fixtures must exist: a test never skips them).
pub fn fixture_sysroot(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/sysroots")
        .join(name);
    assert!(
        dir.is_dir(),
        "committed fixture {} is missing",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_where_booting_rst_puts_them() {
        #[rustfmt::skip]
        let expected: [u8; 64] = [
            0x10, 0x00, 0x00, 0x14,                         // 0000: code0, b +0x40
            0x00, 0x00, 0x00, 0x00,                         // 0004: code1
            0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, // 0008: text_offset 0x80000
            0x00, 0x00, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, // 0010: image_size 20 MiB
            0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0018: flags LE, 4K, anywhere
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0020: res2
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0028: res3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0030: res4
            0x41, 0x52, 0x4d, 0x64,                         // 0038: magic "ARM\x64"
            0x00, 0x00, 0x00, 0x00,                         // 003c: res5
        ];
        assert_eq!(arm64_image_header(0x8_0000, 20 << 20, 0b1010), expected);
    }

    #[test]
    fn a_pre_3_17_image_has_only_the_magic_and_text_offset() {
        let image = synthetic_image_at(0x8_0000, 4096, 0, 0, 7);
        assert_eq!(image.len(), 4096);
        assert_eq!(image[..64], arm64_image_header(0x8_0000, 0, 0));
        assert_eq!(
            image[8..24],
            [0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(image[64..], synthetic_image(4096, 0, 0, 7)[64..]);
    }

    #[test]
    fn scratch_is_fresh() {
        let dir = scratch("fresh");
        std::fs::write(dir.join("f"), "x").unwrap();
        assert!(std::fs::read_dir(scratch("fresh"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    #[should_panic(expected = "committed fixture")]
    fn a_missing_fixture_panics() {
        fixture_sysroot("no-such-machine");
    }
}

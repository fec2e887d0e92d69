//! `pe::certificate_table` on real kernels: Debian signs its arm64 Images
//! for Secure Boot (sbverify lists "Debian Secure Boot Signer"), and the
//! table lies inside the file; anything that is not a PE file has none.

use kexec_core::pe::certificate_table;

#[test]
fn debian_images_carry_a_certificate_table() {
    for k in test_assets::debian_kernels() {
        let bytes = std::fs::read(&k.image).unwrap();
        let (offset, size) = certificate_table(&bytes)
            .unwrap_or_else(|| panic!("{}: Debian's Image is signed", k.version));
        // The table is the file's tail (sbsign appends it, 8-byte aligned).
        assert!(size > 8, "{}", k.version);
        assert_eq!(
            u64::from(offset) + u64::from(size),
            bytes.len() as u64,
            "{}",
            k.version
        );
        // The headers alone say so (what a dry run reads of a plain
        // Image: kexec/src/kfile.rs `learn_signature`).
        let head = &bytes[..kexec_core::pe::HEADERS_READ];
        assert_eq!(
            certificate_table(head),
            Some((offset, size)),
            "{}",
            k.version
        );
        // Zero the directory entry (the 5th, 8 bytes each, at the end of
        // the PE32+ optional header's fixed part): unsigned.
        let pe = u32::from_le_bytes(bytes[0x3c..0x40].try_into().unwrap()) as usize;
        let entry = pe + 24 + 112 + 4 * 8;
        let mut unsigned = bytes.clone();
        unsigned[entry..entry + 8].fill(0);
        assert_eq!(certificate_table(&unsigned), None, "{}", k.version);
    }
}

#[test]
fn no_pe_file_no_table() {
    let image = test_assets::synthetic::synthetic_image(4096, 0x20_0000, 0b0010, 1);
    assert_eq!(certificate_table(&image), None);
    assert_eq!(certificate_table(b""), None);
    assert_eq!(certificate_table(b"MZ"), None);
}

/// `kernel::is_plain_image` decides from 64 bytes what `decode` decides
/// from the whole file: the Image magic counts only when no magic at
/// offset 0 (zboot, a compression) comes first.
#[test]
fn a_plain_image_is_known_from_its_first_64_bytes() {
    use kexec_core::kernel::is_plain_image;
    let image = test_assets::synthetic::synthetic_image(4096, 0x20_0000, 0b0010, 1);
    assert!(is_plain_image(&image[..64]));
    assert!(
        !is_plain_image(&image[..63]),
        "a short header is not an Image"
    );
    for magic in [
        &[0x1f, 0x8b, 0x08][..],            // gzip (deflate)
        &[0x28, 0xb5, 0x2f, 0xfd],          // zstd
        &[0xfd, b'7', b'z', b'X', b'Z', 0], // xz
        &[0x02, 0x21, 0x4c, 0x18],          // lz4 legacy
        b"MZ\0\0zimg",                      // zboot
    ] {
        let mut head = image[..64].to_vec();
        head[..magic.len()].copy_from_slice(magic);
        assert!(!is_plain_image(&head), "{magic:02x?}");
    }
    // "MZ" alone is an EFI stub Image, as Debian's are.
    let mut stub = image[..64].to_vec();
    stub[..2].copy_from_slice(b"MZ");
    assert!(is_plain_image(&stub));
    let mut no_magic = image[..64].to_vec();
    no_magic[56] ^= 1;
    assert!(!is_plain_image(&no_magic));
    for k in test_assets::debian_kernels() {
        let bytes = std::fs::read(&k.image).unwrap();
        assert!(is_plain_image(&bytes[..64]), "{}", k.version);
    }
}

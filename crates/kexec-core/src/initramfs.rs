//! The empty initramfs: what a load with no initrd hands over on a UEFI
//! machine.
//!
//! A kernel that finds no initrd in `/chosen` (`phys_initrd_size == 0`)
//! but was given the UEFI system table takes the initrd the EFI
//! `LINUX_EFI_INITRD_MEDIA` configuration table names
//! (drivers/firmware/efi/efi.c `efi_config_parse_tables`). The EFI stub
//! installed that table for the *first* kernel
//! (drivers/firmware/efi/libstub/efi-stub-helper.c `efi_load_initrd`), in
//! `EFI_LOADER_DATA` memory the first kernel has used as RAM since, and the
//! initrd it names was freed after unpacking: a kexec'd kernel with no
//! initrd would unpack whatever is there now. Handing it an initrd of its
//! own, even an empty one, makes `phys_initrd_size` non-zero and the stale
//! table is ignored; the new kernel then boots as it would with no initrd
//! (nothing is unpacked; `/init` is missing, so it mounts `root=`).
//!
//! The archive is the `newc` cpio trailer alone (the format of
//! Documentation/driver-api/early-userspace/buffer-format.rst; the trailer
//! as usr/gen_init_cpio.c `cpio_trailer` writes it), followed by zeros to
//! one page: init/initramfs.c `unpack_to_rootfs` skips zero bytes between
//! archives, and a whole page makes the new kernel's "Freeing initrd
//! memory: 4K" (`free_initrd_mem` frees whole pages only) show which initrd
//! it took.

/// The size of [`empty`]: one 4 KiB page.
pub const EMPTY_SIZE: usize = 4096;

/// The `newc` magic (init/initramfs.c `do_header` accepts it and `070702`).
pub const NEWC_MAGIC: &[u8; 6] = b"070701";

/// The name of the entry that ends an archive (init/initramfs.c `do_name`).
pub const TRAILER: &str = "TRAILER!!!";

/// The 13 header fields after the magic, in order, each 8 hex digits.
const FIELDS: usize = 13;
/// `nlink` and `namesize`: the only non-zero fields of the trailer.
const NLINK: usize = 4;
const NAMESIZE: usize = 11;

/// Bytes of a `newc` header: the magic and 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 6 + FIELDS * 8;

/// The empty initramfs: a `newc` trailer, zeros to [`EMPTY_SIZE`].
pub fn empty() -> Vec<u8> {
    let mut out = Vec::with_capacity(EMPTY_SIZE);
    out.extend_from_slice(NEWC_MAGIC);
    // The name is stored with its NUL, and namesize counts it.
    let namesize = TRAILER.len() + 1;
    for field in 0..FIELDS {
        let value = match field {
            NLINK => 1,
            NAMESIZE => namesize,
            _ => 0,
        };
        out.extend_from_slice(format!("{value:08X}").as_bytes());
    }
    out.extend_from_slice(TRAILER.as_bytes());
    out.push(0);
    out.resize(EMPTY_SIZE, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One header field as init/initramfs.c `parse_header` reads it.
    fn field(bytes: &[u8], index: usize) -> u64 {
        let at = NEWC_MAGIC.len() + index * 8;
        let text = std::str::from_utf8(&bytes[at..at + 8]).unwrap();
        u64::from_str_radix(text, 16).unwrap()
    }

    #[test]
    fn the_archive_is_a_newc_trailer_then_zeros() {
        let a = empty();
        assert_eq!(a.len(), EMPTY_SIZE);
        assert_eq!(&a[..6], NEWC_MAGIC);
        // ino mode uid gid nlink mtime filesize major minor rmajor rminor namesize check
        let fields: Vec<u64> = (0..FIELDS).map(|i| field(&a, i)).collect();
        assert_eq!(fields, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]);
        let name_end = HEADER_LEN + usize::try_from(fields[NAMESIZE]).unwrap();
        assert_eq!(&a[HEADER_LEN..name_end], b"TRAILER!!!\0");
        // Everything after the name is zeros, which unpack_to_rootfs skips.
        assert!(a[name_end..].iter().all(|&b| b == 0));
        // The header is upper-case hex, as gen_init_cpio writes it.
        assert!(a[6..HEADER_LEN]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)));
    }
}

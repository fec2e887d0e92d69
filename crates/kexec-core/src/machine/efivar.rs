//! The UEFI `SecureBoot` variable as efivarfs shows it
//! (`/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c`):
//! the variable's 4 attribute bytes, little endian, then its data
//! (`efivarfs_file_read`, fs/efivarfs/file.c). `SecureBoot` is one byte,
//! 1 when the firmware enforces Secure Boot, 0 when not (UEFI 2.10 § 3.3,
//! "Globally Defined Variables").

use super::Error;

/// The file name of the variable under efivarfs: name, `-`, the EFI
/// global variable GUID (`EFI_GLOBAL_VARIABLE`).
pub const SECURE_BOOT_VAR: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// Bytes of attributes before the data.
pub const ATTRIBUTES_LEN: usize = 4;

/// Whether Secure Boot is enforced, from the efivarfs file's bytes.
pub fn secure_boot(file: &[u8]) -> Result<bool, Error> {
    if file.len() != ATTRIBUTES_LEN + 1 {
        return Err(Error::BadValue {
            what: "SecureBoot variable",
            detail: format!(
                "{} bytes; 4 attribute bytes and 1 data byte expected",
                file.len()
            ),
        });
    }
    match file[ATTRIBUTES_LEN] {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(Error::BadValue {
            what: "SecureBoot variable",
            detail: format!("value {other}, 0 or 1 expected"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_off_and_malformed() {
        // EFI_VARIABLE_BOOTSERVICE_ACCESS | RUNTIME_ACCESS = 0x6.
        assert_eq!(secure_boot(&[6, 0, 0, 0, 1]), Ok(true));
        assert_eq!(secure_boot(&[6, 0, 0, 0, 0]), Ok(false));
        assert!(secure_boot(&[6, 0, 0, 0, 2]).is_err());
        assert!(secure_boot(&[6, 0, 0, 0]).is_err());
        assert!(secure_boot(&[]).is_err());
        assert!(secure_boot(&[6, 0, 0, 0, 1, 0]).is_err());
    }
}

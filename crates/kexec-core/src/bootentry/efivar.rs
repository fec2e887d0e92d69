//! The systemd boot loader interface's EFI variables that choose an entry,
//! as Linux's efivarfs shows them: `/sys/firmware/efi/efivars/NAME-GUID`
//! holds a 32-bit attribute word, then the value; string variables are
//! UTF-16LE, NUL-terminated (systemd's `efi_get_variable_string()`,
//! src/basic/efivars.c, reads up to the first NUL).

use std::fmt;

use crate::machine::efivar::ATTRIBUTES_LEN;

/// The vendor GUID of the boot loader interface variables
/// (`LOADER_GUID` in systemd's src/fundamental/efivars-fundamental.h).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// The efivarfs directory, relative to the root.
pub const EFIVARS_DIR: &str = "sys/firmware/efi/efivars";

/// The entry to boot next, once (`systemctl reboot --boot-loader-entry=`).
pub const ONE_SHOT: &str = "LoaderEntryOneShot";
/// The entry preferred over the default (newer systemd).
pub const PREFERRED: &str = "LoaderEntryPreferred";
/// The default chosen in the boot menu (`bootctl set-default`).
pub const DEFAULT: &str = "LoaderEntryDefault";
/// The entry booted now: what `@saved` means to bootctl.
pub const SELECTED: &str = "LoaderEntrySelected";

/// The efivarfs file name of the loader variable `name`.
pub fn file_name(name: &str) -> String {
    format!("{name}-{LOADER_GUID}")
}

/// Why a variable's contents are not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the 4-byte attribute word.
    NoAttributes,
    /// An odd number of value bytes.
    OddLength,
    /// Not valid UTF-16.
    NotUtf16,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NoAttributes => "shorter than efivarfs's 4-byte attribute word",
            Error::OddLength => "an odd number of bytes: not UTF-16",
            Error::NotUtf16 => "not valid UTF-16",
        })
    }
}

impl std::error::Error for Error {}

/// The string value of an efivarfs file.
pub fn decode_string(file: &[u8]) -> Result<String, Error> {
    let value = file.get(ATTRIBUTES_LEN..).ok_or(Error::NoAttributes)?;
    if value.len() % 2 != 0 {
        return Err(Error::OddLength);
    }
    let units: Vec<u16> = value
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).map_err(|_| Error::NotUtf16)
}

/// An efivarfs file holding `value` (attributes non-volatile, boot service
/// and runtime access), for tests and fixtures.
pub fn encode_string(value: &str) -> Vec<u8> {
    let mut out = 7u32.to_le_bytes().to_vec();
    for u in value.encode_utf16().chain([0]) {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let f = encode_string("fedora-6.8.conf");
        assert_eq!(f.len(), 4 + 2 * 16);
        assert_eq!(decode_string(&f).as_deref(), Ok("fedora-6.8.conf"));
        // Without the terminating NUL too.
        assert_eq!(
            decode_string(&f[..f.len() - 2]).as_deref(),
            Ok("fedora-6.8.conf")
        );
        assert_eq!(decode_string(&[7, 0, 0]), Err(Error::NoAttributes));
        assert_eq!(decode_string(&[7, 0, 0, 0, b'a']), Err(Error::OddLength));
        assert_eq!(
            decode_string(&[7, 0, 0, 0, 0x00, 0xd8]),
            Err(Error::NotUtf16)
        );
        assert_eq!(decode_string(&[7, 0, 0, 0]).as_deref(), Ok(""));
        assert_eq!(
            file_name(DEFAULT),
            "LoaderEntryDefault-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
        );
        assert_eq!(
            Error::NoAttributes.to_string(),
            "shorter than efivarfs's 4-byte attribute word"
        );
        assert_eq!(
            Error::OddLength.to_string(),
            "an odd number of bytes: not UTF-16"
        );
        assert_eq!(Error::NotUtf16.to_string(), "not valid UTF-16");
    }
}

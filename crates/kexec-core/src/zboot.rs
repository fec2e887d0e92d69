//! EFI zboot images (`vmlinuz.efi`).
//!
//! A zboot image is a PE/COFF EFI application that decompresses the kernel
//! `Image` it carries. Its DOS header doubles as a small descriptor, laid out
//! by drivers/firmware/efi/libstub/zboot-header.S:
//!
//! ```text
//! 0x00  "MZ" + 2 bytes      DOS signature (MZ_MAGIC as a u32)
//! 0x04  "zimg"              image type
//! 0x08  u32 payload offset  from the start of the file
//! 0x0c  u32 payload size    of the compressed data, without the 4-byte
//!                           size_append trailer of non-gzip payloads
//! 0x10  u32, u32            reserved
//! 0x18  char[]              compression type, NUL terminated:
//!                           "gzip", "zstd22", and on 6.1-6.12 kernels also
//!                           "lz4", "lzma", "lzo", "xzkern", "bzip2"
//! 0x38  u32                 LINUX_PE_MAGIC (0x818223cd)
//! 0x3c  u32                 PE header offset (the DOS e_lfanew)
//! ```
//!
//! The payload decompresses to the plain arm64 `Image` (booting.rst).

use thiserror::Error;

use crate::decompress::{self, Compression};

/// Size of the zboot descriptor at the start of the file.
pub(crate) const ZBOOT_HEADER_SIZE: usize = 0x40;
/// The image type at offset 4.
pub(crate) const ZIMG_MAGIC: [u8; 4] = *b"zimg";
/// Offset of the image type.
pub(crate) const ZIMG_OFFSET: usize = 4;
/// Offset of the payload offset field.
pub(crate) const PAYLOAD_OFFSET_OFFSET: usize = 8;
/// Offset of the payload size field.
pub(crate) const PAYLOAD_SIZE_OFFSET: usize = 12;
/// Offset of the NUL-terminated compression type.
pub(crate) const COMPRESSION_OFFSET: usize = 0x18;
/// Offset of `LINUX_PE_MAGIC`, where the compression type field ends.
pub(crate) const LINUX_PE_MAGIC_OFFSET: usize = 0x38;
/// `LINUX_PE_MAGIC` (include/linux/pe.h).
pub const LINUX_PE_MAGIC: u32 = 0x8182_23cd;
/// Offset of the PE header offset (`e_lfanew`).
pub(crate) const PE_HEADER_OFFSET_OFFSET: usize = 0x3c;

/// Errors from zboot parsing and decompression.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is shorter than the zboot descriptor.
    #[error("zboot header truncated: file is {len:#x} bytes, the header needs 0x40")]
    Truncated {
        /// Length of the file.
        len: usize,
    },
    /// No "MZ" at 0 or no "zimg" at 4.
    #[error("not a zboot image: no \"MZ\" at offset 0 and \"zimg\" at offset 4")]
    BadMagic,
    /// The compression type field holds no NUL or non-printable bytes.
    #[error("zboot compression type at offset 0x18 is not a NUL-terminated ASCII name")]
    BadCompressionName,
    /// The payload starts past the end of the file.
    #[error("zboot payload offset {offset:#x} past end of file (len {file_len:#x})")]
    PayloadOffsetPastEof {
        /// Payload offset from the header.
        offset: u32,
        /// Length of the file.
        file_len: usize,
    },
    /// The payload ends past the end of the file.
    #[error(
        "zboot payload at {offset:#x} of size {size:#x} ends past end of file (len {file_len:#x})"
    )]
    PayloadPastEof {
        /// Payload offset from the header.
        offset: u32,
        /// Payload size from the header.
        size: u32,
        /// Length of the file.
        file_len: usize,
    },
    /// The compression type is not one this loader decodes.
    #[error(
        "zboot compression {compression:?} is not supported (supported: gzip, zstd22, lz4, xzkern)"
    )]
    Unsupported {
        /// The compression type from the header.
        compression: String,
    },
    /// The payload failed to decompress.
    #[error("zboot {compression} payload: {source}")]
    Payload {
        /// The compression type from the header.
        compression: String,
        /// The decoder's error.
        #[source]
        source: decompress::Error,
    },
}

/// The zboot descriptor at the start of a `vmlinuz.efi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZbootHeader {
    /// Offset of the compressed payload from the start of the file.
    pub payload_offset: u32,
    /// Size of the compressed payload (without any size trailer).
    pub payload_size: u32,
    /// Compression type, e.g. "gzip" or "zstd22".
    pub compression: String,
    /// Offset of the PE header.
    pub pe_header_offset: u32,
}

fn le_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

/// Whether `bytes` starts with the zboot signature ("MZ", then "zimg" at 4).
pub fn is_zboot(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MZ") && bytes.get(ZIMG_OFFSET..ZIMG_OFFSET + 4) == Some(&ZIMG_MAGIC[..])
}

/// Maps a zboot compression type name to a decoder, if supported.
pub(crate) fn compression_for(name: &str) -> Option<Compression> {
    match name {
        "gzip" => Some(Compression::Gzip),
        "zstd" | "zstd22" => Some(Compression::Zstd),
        "lz4" => Some(Compression::Lz4Legacy),
        "xzkern" | "xz" => Some(Compression::Xz),
        _ => None,
    }
}

impl ZbootHeader {
    /// Parses the zboot descriptor at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < ZBOOT_HEADER_SIZE {
            if is_zboot(bytes) {
                return Err(Error::Truncated { len: bytes.len() });
            }
            return Err(Error::BadMagic);
        }
        if !is_zboot(bytes) {
            return Err(Error::BadMagic);
        }
        let field = &bytes[COMPRESSION_OFFSET..LINUX_PE_MAGIC_OFFSET];
        let name_len = field
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::BadCompressionName)?;
        let name = &field[..name_len];
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadCompressionName);
        }
        Ok(Self {
            payload_offset: le_u32(bytes, PAYLOAD_OFFSET_OFFSET),
            payload_size: le_u32(bytes, PAYLOAD_SIZE_OFFSET),
            compression: name.iter().map(|&b| char::from(b)).collect(),
            pe_header_offset: le_u32(bytes, PE_HEADER_OFFSET_OFFSET),
        })
    }

    /// The compressed payload within `file`, checked against its bounds.
    pub fn payload<'a>(&self, file: &'a [u8]) -> Result<&'a [u8], Error> {
        let start = usize::try_from(self.payload_offset).unwrap_or(usize::MAX);
        if start > file.len() {
            return Err(Error::PayloadOffsetPastEof {
                offset: self.payload_offset,
                file_len: file.len(),
            });
        }
        let size = usize::try_from(self.payload_size).unwrap_or(usize::MAX);
        start
            .checked_add(size)
            .and_then(|end| file.get(start..end))
            .ok_or(Error::PayloadPastEof {
                offset: self.payload_offset,
                size: self.payload_size,
                file_len: file.len(),
            })
    }

    /// The decoder for this image's compression type.
    pub fn decoder(&self) -> Result<Compression, Error> {
        compression_for(&self.compression).ok_or_else(|| Error::Unsupported {
            compression: self.compression.clone(),
        })
    }
}

/// Parses the zboot image `file` and decompresses its payload into at most `limit` bytes.
///
/// The result is what the EFI stub would boot: normally an arm64 `Image`,
/// which the caller validates.
pub fn decompress(file: &[u8], limit: usize) -> Result<(ZbootHeader, Vec<u8>), Error> {
    let header = ZbootHeader::parse(file)?;
    let payload = header.payload(file)?;
    let format = header.decoder()?;
    let image =
        decompress::decompress(format, payload, limit).map_err(|source| Error::Payload {
            compression: header.compression.clone(),
            source,
        })?;
    Ok((header, image))
}

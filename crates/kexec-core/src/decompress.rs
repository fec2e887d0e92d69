//! Bounded decompression of compressed kernels.
//!
//! Covers the compressed forms of an arm64 `Image` that the kernel build
//! produces (arch/arm64/boot/Makefile, drivers/firmware/efi/libstub/Makefile.zboot,
//! scripts/Makefile.lib):
//!
//! - gzip (RFC 1952), `Image.gz` and the `gzip` zboot payload;
//! - zstd (RFC 8878), the `zstd22` zboot payload;
//! - xz (the .xz file format, with the ARM64 BCJ filter of `xz_wrap.sh`),
//!   the `xzkern` zboot payload;
//! - lz4 legacy frames as written by `lz4 -l` (magic `0x184C2102`, then blocks
//!   of a `u32` little-endian compressed size and an lz4 block that decodes
//!   to at most 8 MiB; see lib/decompress_unlz4.c).
//!
//! Every decoder reads incrementally and stops with [`Error::LimitExceeded`]
//! once the output would pass a caller-chosen limit; the output buffer grows
//! with what was actually decoded and never past the limit. The one
//! allocation sized from the input is the decoder window that a stream
//! declares: at most 128 MiB for zstd (ruzstd's default cap, which is also
//! what `zstd -22 --ultra` uses) and [`XZ_MEMORY_LIMIT`] for xz. The 4-byte little-endian size trailer
//! that `size_append` (scripts/Makefile.lib) appends after `*_with_size`
//! payloads, and zero padding, are accepted after the end of the stream.
//! Concatenated gzip members, zstd frames (and skippable frames), xz streams
//! and lz4 legacy frames are decoded one after another.

use std::fmt;
use std::io::{self, Read};

use thiserror::Error;

/// 1 GiB: the default output limit of a decompressed kernel.
pub const SZ_1G: usize = 1 << 30;
/// 8 MiB: the uncompressed size of a full lz4 legacy block (`LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE`).
pub const LZ4_LEGACY_BLOCK_SIZE: usize = 8 << 20;
/// The default output limit used by [`decompress`] callers that have no better bound.
pub const DEFAULT_LIMIT: usize = SZ_1G;
/// Memory the xz decoder may use for a dictionary. The kernel's `xz_wrap.sh`
/// uses a 32 MiB dictionary; `xz -9` uses 64 MiB.
pub const XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// gzip member magic (ID1, ID2) followed by CM = 8 (deflate), RFC 1952 section 2.3.1.
pub(crate) const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// zstd frame magic `0xFD2FB528`, little endian (RFC 8878 section 3.1.1).
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// xz stream header magic (xz file format section 2.1.1.1).
pub(crate) const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// lz4 legacy frame magic `0x184C2102`, little endian.
pub const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// Size of the reads from a decoder.
const READ_CHUNK: usize = 64 << 10;
/// Length of the size trailer written by `size_append`.
pub(crate) const SIZE_TRAILER_LEN: usize = 4;

/// zstd skippable frames have magics `0x184D2A50..=0x184D2A5F` (RFC 8878 section 3.1.2).
const ZSTD_SKIPPABLE_MAGIC_MASKED: u32 = 0x184d_2a50;
const ZSTD_SKIPPABLE_MAGIC_MASK: u32 = 0xffff_fff0;

/// `LZ4_COMPRESSBOUND(LZ4_LEGACY_BLOCK_SIZE)`: no valid legacy block is larger.
const LZ4_LEGACY_MAX_COMPRESSED: usize = LZ4_LEGACY_BLOCK_SIZE + LZ4_LEGACY_BLOCK_SIZE / 255 + 16;
/// lz4 cannot expand a block by more than this factor.
const LZ4_MAX_RATIO: usize = 255;

/// A compression format, recognised by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (deflate).
    Gzip,
    /// Zstandard.
    Zstd,
    /// xz (LZMA2).
    Xz,
    /// lz4 legacy frame.
    Lz4Legacy,
}

impl Compression {
    /// Recognises the compression format from the magic at the start of `bytes`.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&GZIP_MAGIC) {
            Some(Self::Gzip)
        } else if bytes.starts_with(&ZSTD_MAGIC) {
            Some(Self::Zstd)
        } else if bytes.starts_with(&XZ_MAGIC) {
            Some(Self::Xz)
        } else if bytes.starts_with(&LZ4_LEGACY_MAGIC) {
            Some(Self::Lz4Legacy)
        } else {
            None
        }
    }

    /// A short human-readable name ("gzip", "zstd", "xz", "lz4 legacy").
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Xz => "xz",
            Self::Lz4Legacy => "lz4 legacy",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors from the decoders. Messages start with the format that was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not start with the magic of the requested format.
    #[error("{format} stream: bad magic at offset 0")]
    BadMagic {
        /// The format that was requested.
        format: Compression,
    },
    /// The output would exceed the caller's limit (decompression bomb or wrong file).
    #[error("{format} stream: output exceeds the limit of {limit:#x} bytes")]
    LimitExceeded {
        /// The format being decoded.
        format: Compression,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The input ends before the end of the stream.
    #[error("{format} stream: truncated at input offset {offset:#x}: {reason}")]
    Truncated {
        /// The format being decoded.
        format: Compression,
        /// Input offset reached by the decoder.
        offset: u64,
        /// The decoder's own description.
        reason: String,
    },
    /// The decoder rejected the data.
    #[error("{format} stream: corrupt data at input offset {offset:#x}: {reason}")]
    Corrupt {
        /// The format being decoded.
        format: Compression,
        /// Input offset reached by the decoder (where known, the start of the bad block).
        offset: u64,
        /// The decoder's own description of the problem.
        reason: String,
    },
    /// Bytes follow the end of the stream that are neither zero padding nor a size trailer.
    #[error("{format} stream: {len} unexpected trailing bytes at input offset {offset:#x}")]
    TrailingData {
        /// The format being decoded.
        format: Compression,
        /// Offset of the first trailing byte.
        offset: u64,
        /// Number of trailing bytes.
        len: usize,
    },
    /// A 4-byte `size_append` trailer disagrees with the decoded size.
    #[error("{format} stream: size trailer says {trailer:#x} bytes, decoded {actual:#x}")]
    SizeTrailerMismatch {
        /// The format being decoded.
        format: Compression,
        /// The value of the trailer.
        trailer: u32,
        /// The decoded size modulo 2^32.
        actual: u32,
    },
}

/// Decompresses `input`, whose format is recognised by its magic, into at most `limit` bytes.
///
/// Returns `Ok(None)` when `input` starts with no known compression magic.
pub(crate) fn decompress_any(
    input: &[u8],
    limit: usize,
) -> Result<Option<(Compression, Vec<u8>)>, Error> {
    match Compression::detect(input) {
        Some(format) => Ok(Some((format, decompress(format, input, limit)?))),
        None => Ok(None),
    }
}

/// Decompresses `input` in the given `format` into at most `limit` bytes.
pub fn decompress(format: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    match format {
        Compression::Gzip => gunzip(input, limit),
        Compression::Zstd => unzstd(input, limit),
        Compression::Xz => unxz(input, limit),
        Compression::Lz4Legacy => unlz4_legacy(input, limit),
    }
}

/// Offset of `rest` (a suffix of `input`) within `input`.
fn offset_of(input: &[u8], rest: &[u8]) -> u64 {
    (input.len() - rest.len()) as u64
}

/// Reads `reader` to its end, appending to `out`, stopping once `out` would pass `limit`.
///
/// Returns `Ok(false)` if the limit was exceeded. `out` grows geometrically
/// with what was actually decoded, never past `limit`.
fn read_bounded(reader: &mut impl Read, out: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let needed = out.len().saturating_add(n);
        if needed > limit {
            return Ok(false);
        }
        if out.capacity() < needed {
            let target = out.capacity().saturating_mul(2).clamp(needed, limit);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Turns a decoder's I/O error into [`Error::Truncated`] or [`Error::Corrupt`].
fn stream_error(format: Compression, offset: u64, err: &io::Error) -> Error {
    let reason = err.to_string();
    if err.kind() == io::ErrorKind::UnexpectedEof {
        Error::Truncated {
            format,
            offset,
            reason,
        }
    } else {
        Error::Corrupt {
            format,
            offset,
            reason,
        }
    }
}

/// Checks what follows the last stream: nothing, zero padding, or a `size_append` trailer.
fn check_trailer(format: Compression, input: &[u8], rest: &[u8], out: &[u8]) -> Result<(), Error> {
    if rest.iter().all(|&b| b == 0) {
        return Ok(());
    }
    if rest.len() == SIZE_TRAILER_LEN {
        let trailer = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let size = (out.len() as u64).to_le_bytes();
        let actual = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
        if trailer == actual {
            return Ok(());
        }
        return Err(Error::SizeTrailerMismatch {
            format,
            trailer,
            actual,
        });
    }
    Err(Error::TrailingData {
        format,
        offset: offset_of(input, rest),
        len: rest.len(),
    })
}

/// Decompresses gzip members (RFC 1952) into at most `limit` bytes.
pub fn gunzip(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let format = Compression::Gzip;
    if !input.starts_with(&GZIP_MAGIC) {
        return Err(Error::BadMagic { format });
    }
    let mut out = Vec::new();
    let mut rest = input;
    while rest.starts_with(&GZIP_MAGIC) {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let result = read_bounded(&mut decoder, &mut out, limit);
        let remaining: &[u8] = decoder.get_ref();
        match result {
            Ok(true) => {}
            Ok(false) => return Err(Error::LimitExceeded { format, limit }),
            Err(err) => return Err(stream_error(format, offset_of(input, remaining), &err)),
        }
        rest = remaining;
    }
    check_trailer(format, input, rest, &out)?;
    Ok(out)
}

/// Decompresses zstd frames (RFC 8878) into at most `limit` bytes.
pub fn unzstd(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let format = Compression::Zstd;
    if !input.starts_with(&ZSTD_MAGIC) {
        return Err(Error::BadMagic { format });
    }
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        if rest.starts_with(&ZSTD_MAGIC) {
            let start = offset_of(input, rest);
            let mut cursor = rest;
            let mut decoder =
                ruzstd::decoding::StreamingDecoder::new(&mut cursor).map_err(|err| {
                    Error::Corrupt {
                        format,
                        offset: start,
                        reason: err.to_string(),
                    }
                })?;
            let result = read_bounded(&mut decoder, &mut out, limit);
            let finished = decoder.decoder.is_finished();
            let checksums = (
                decoder.decoder.get_checksum_from_data(),
                decoder.decoder.get_calculated_checksum(),
            );
            drop(decoder);
            let offset = offset_of(input, cursor);
            match result {
                Ok(true) => {}
                Ok(false) => return Err(Error::LimitExceeded { format, limit }),
                Err(err) => return Err(stream_error(format, offset, &err)),
            }
            if !finished {
                return Err(Error::Truncated {
                    format,
                    offset,
                    reason: "frame ends before its last block".into(),
                });
            }
            if let (Some(stored), Some(computed)) = checksums {
                if stored != computed {
                    return Err(Error::Corrupt {
                        format,
                        offset,
                        reason: format!(
                            "content checksum {stored:#010x} does not match the data ({computed:#010x})"
                        ),
                    });
                }
            }
            rest = cursor;
        } else if let Some(skip) = zstd_skippable_len(rest) {
            let Some(after) = rest.get(skip..) else {
                return Err(Error::Truncated {
                    format,
                    offset: offset_of(input, rest),
                    reason: format!("skippable frame of {skip:#x} bytes past end of input"),
                });
            };
            rest = after;
        } else {
            break;
        }
    }
    check_trailer(format, input, rest, &out)?;
    Ok(out)
}

/// Total length of the zstd skippable frame at the start of `bytes`, if there is one.
fn zstd_skippable_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..8)?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if magic & ZSTD_SKIPPABLE_MAGIC_MASK != ZSTD_SKIPPABLE_MAGIC_MASKED {
        return None;
    }
    let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    usize::try_from(size).ok()?.checked_add(8)
}

/// Decompresses xz streams into at most `limit` bytes.
pub fn unxz(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let format = Compression::Xz;
    if !input.starts_with(&XZ_MAGIC) {
        return Err(Error::BadMagic { format });
    }
    let mut out = Vec::new();
    let mut rest = input;
    while rest.starts_with(&XZ_MAGIC) {
        let memory_limit_kib = u32::try_from(XZ_MEMORY_LIMIT / 1024).unwrap_or(u32::MAX);
        // One stream at a time, so the bytes after it (padding, another
        // stream, a size trailer) are ours to judge.
        let mut decoder = lzma_rust2::XzReader::new_mem_limit(rest, false, memory_limit_kib);
        let result = read_bounded(&mut decoder, &mut out, limit);
        let remaining: &[u8] = decoder.into_inner();
        match result {
            Ok(true) => {}
            Ok(false) => return Err(Error::LimitExceeded { format, limit }),
            Err(err) => return Err(stream_error(format, offset_of(input, remaining), &err)),
        }
        // Stream padding (multiples of four zero bytes) may separate streams.
        let padding = remaining.iter().take_while(|&&b| b == 0).count() / 4 * 4;
        rest = &remaining[padding..];
    }
    check_trailer(format, input, rest, &out)?;
    Ok(out)
}

/// Decompresses lz4 legacy frames, as the kernel's `lib/decompress_unlz4.c` does,
/// into at most `limit` bytes.
///
/// After the magic come blocks, each a `u32` little-endian compressed size and
/// an lz4 block of at most [`LZ4_LEGACY_BLOCK_SIZE`] decoded bytes. A repeated
/// magic starts a new frame; four or fewer bytes left at a block boundary are
/// the end of the data (the `size_append` trailer, which is checked), and so
/// are zero bytes up to the end of the input (padding).
pub fn unlz4_legacy(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let format = Compression::Lz4Legacy;
    let Some(mut rest) = input.strip_prefix(&LZ4_LEGACY_MAGIC[..]) else {
        return Err(Error::BadMagic { format });
    };
    let mut out = Vec::new();
    let mut block = Vec::new();
    loop {
        if rest.iter().all(|&b| b == 0) {
            // End of data, or zero padding after it.
            return Ok(out);
        }
        if rest.len() <= SIZE_TRAILER_LEN {
            if rest.len() == SIZE_TRAILER_LEN {
                check_trailer(format, input, rest, &out)?;
            }
            return Ok(out);
        }
        let offset = offset_of(input, rest);
        let (size, data) = rest.split_at(4);
        if size == LZ4_LEGACY_MAGIC {
            rest = data;
            continue;
        }
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > LZ4_LEGACY_MAX_COMPRESSED {
            return Err(Error::Corrupt {
                format,
                offset,
                reason: format!(
                    "block size {size:#x} exceeds the maximum {LZ4_LEGACY_MAX_COMPRESSED:#x}"
                ),
            });
        }
        let Some(compressed) = data.get(..size) else {
            return Err(Error::Truncated {
                format,
                offset,
                reason: format!("block of {size:#x} bytes, only {:#x} left", data.len()),
            });
        };
        let capacity = LZ4_LEGACY_BLOCK_SIZE.min(size.saturating_mul(LZ4_MAX_RATIO));
        block.resize(capacity, 0);
        let decoded = lz4_flex::block::decompress_into(compressed, &mut block).map_err(|err| {
            Error::Corrupt {
                format,
                offset,
                reason: err.to_string(),
            }
        })?;
        if out.len().saturating_add(decoded) > limit {
            return Err(Error::LimitExceeded { format, limit });
        }
        out.extend_from_slice(&block[..decoded]);
        rest = &data[size..];
    }
}

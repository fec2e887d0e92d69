//! Kernel detection: from any supported file to a plain arm64 `Image`.
//!
//! The format is recognised by content, never by file name, in this order:
//!
//! 1. "MZ" and "zimg" at offset 4: EFI zboot ([`crate::zboot`]);
//! 2. gzip, zstd, xz or lz4 legacy magic at offset 0 ([`crate::decompress`]);
//! 3. the arm64 Image magic at offset 56 (booting.rst section 4): a plain
//!    `Image`, with or without EFI stub, used in place without a copy;
//! 4. any other "MZ": a PE file, which must be a UKI with a `.linux` section
//!    ([`crate::pe`]); the `.linux` contents may be an Image, a compressed
//!    Image or zboot (one level of nesting);
//! 5. `"\x7fELF"`: an ELF `vmlinux` ([`crate::elf`]).
//!
//! Magics at offset 0 come before the Image magic at 56 because compressed
//! data may hold those four bytes there by chance.
//!
//! ```
//! use kexec_core::image::ARM64_IMAGE_MAGIC;
//! use kexec_core::kernel::{decode, KernelFormat};
//!
//! // The smallest Image: a header and nothing else.
//! let mut image = [0u8; 64];
//! image[16..24].copy_from_slice(&0x20_0000u64.to_le_bytes()); // image_size
//! image[24..32].copy_from_slice(&0b0010u64.to_le_bytes()); // flags: LE, 4K pages
//! image[56..60].copy_from_slice(&ARM64_IMAGE_MAGIC.to_le_bytes());
//! let kernel = decode(&image)?;
//! assert_eq!(kernel.format, KernelFormat::Image);
//! assert_eq!(kernel.header.effective_image_size(64), 0x20_0000);
//! # Ok::<(), kexec_core::kernel::Error>(())
//! ```
//!
//! Whatever the wrapper, the result must carry a valid Image header.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use crate::decompress::{self, Compression};
use crate::image::{self, Arm64ImageHeader};
use crate::{elf, pe, zboot};

/// The outer format a kernel was found in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelFormat {
    /// A plain arm64 `Image` (possibly with an EFI stub).
    Image,
    /// A gzip-compressed Image (`Image.gz`).
    Gzip,
    /// A zstd-compressed Image.
    Zstd,
    /// An xz-compressed Image.
    Xz,
    /// An lz4 legacy-frame compressed Image.
    Lz4,
    /// An EFI zboot image (`vmlinuz.efi`).
    Zboot {
        /// The compression type named in the zboot header, e.g. "gzip".
        compression: String,
    },
    /// An ELF `vmlinux`.
    Elf,
    /// A Unified Kernel Image; see [`KernelImage::uki`].
    Uki,
}

impl KernelFormat {
    fn from_compression(compression: Compression) -> Self {
        match compression {
            Compression::Gzip => Self::Gzip,
            Compression::Zstd => Self::Zstd,
            Compression::Xz => Self::Xz,
            Compression::Lz4Legacy => Self::Lz4,
        }
    }
}

impl fmt::Display for KernelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image => f.write_str("arm64 Image"),
            Self::Gzip => f.write_str("gzip-compressed Image"),
            Self::Zstd => f.write_str("zstd-compressed Image"),
            Self::Xz => f.write_str("xz-compressed Image"),
            Self::Lz4 => f.write_str("lz4-compressed Image"),
            Self::Zboot { compression } => write!(f, "EFI zboot image ({compression})"),
            Self::Elf => f.write_str("ELF vmlinux"),
            Self::Uki => f.write_str("UKI"),
        }
    }
}

/// What a UKI carries besides the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UkiParts {
    /// The `.cmdline` section, without trailing NUL or newline.
    pub cmdline: Option<String>,
    /// The `.initrd` section.
    pub initrd: Option<Vec<u8>>,
    /// The `.dtb` section.
    pub dtb: Option<Vec<u8>>,
}

/// A kernel reduced to a plain arm64 Image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage<'a> {
    /// The outer format the kernel was found in.
    pub format: KernelFormat,
    /// The plain Image: borrowed from the input when it was one, else decoded.
    pub image: Cow<'a, [u8]>,
    /// The Image header at the start of `image`.
    pub header: Arm64ImageHeader,
    /// The other sections, when the kernel came in a UKI.
    pub uki: Option<UkiParts>,
}

/// Errors from [`decode`]: what was recognised, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// No known magic.
    #[error("not an arm64 kernel: no known magic (input of {len} bytes)")]
    Unrecognised {
        /// Length of the input.
        len: usize,
    },
    /// A plain Image with a bad header.
    #[error(transparent)]
    Image(#[from] image::Error),
    /// A compressed stream failed to decode.
    #[error(transparent)]
    Decompress(#[from] decompress::Error),
    /// A wrapper decoded to something that is not an arm64 Image.
    #[error("{format} does not contain an arm64 Image: {source}")]
    NotAnImage {
        /// The wrapper.
        format: KernelFormat,
        /// Why the contents are not an Image.
        #[source]
        source: image::Error,
    },
    /// A malformed zboot image.
    #[error(transparent)]
    Zboot(#[from] zboot::Error),
    /// A malformed ELF vmlinux.
    #[error(transparent)]
    Elf(#[from] elf::Error),
    /// A malformed UKI, or a PE file that is no kernel.
    #[error(transparent)]
    Uki(#[from] pe::Error),
    /// The `.linux` section of a UKI is not a loadable kernel.
    #[error("UKI .linux section: {0}")]
    UkiLinux(Box<Error>),
    /// The `.linux` section of a UKI holds a format that may not be nested.
    #[error("UKI .linux section holds a nested {inner}; only an Image, a compressed Image or zboot may be nested")]
    UnsupportedNesting {
        /// The nested format.
        inner: KernelFormat,
    },
}

/// Whether [`decode`] takes a file starting with `head` (its first 64
/// bytes suffice) as a plain Image, without reading the rest: not zboot,
/// no compression magic at offset 0, the Image magic at offset 56, in
/// [`decode`]'s order.
pub fn is_plain_image(head: &[u8]) -> bool {
    !zboot::is_zboot(head) && Compression::detect(head).is_none() && image::has_image_magic(head)
}

/// Recognises `bytes` and returns the plain Image, decoding at most
/// [`decompress::DEFAULT_LIMIT`] (1 GiB).
pub fn decode(bytes: &[u8]) -> Result<KernelImage<'_>, Error> {
    decode_with_limit(bytes, decompress::DEFAULT_LIMIT)
}

/// Recognises `bytes` and returns the plain Image, refusing to decode or
/// rebuild more than `limit` bytes.
pub fn decode_with_limit(bytes: &[u8], limit: usize) -> Result<KernelImage<'_>, Error> {
    if let Some(kernel) = decode_nestable(bytes, limit)? {
        return Ok(kernel);
    }
    if bytes.starts_with(&image::MZ_MAGIC) {
        return decode_uki(bytes, limit);
    }
    if elf::is_elf(bytes) {
        let kernel = elf::flatten(bytes, limit)?;
        return Ok(KernelImage {
            format: KernelFormat::Elf,
            image: Cow::Owned(kernel.image),
            header: kernel.header,
            uki: None,
        });
    }
    Err(Error::Unrecognised { len: bytes.len() })
}

/// The formats that may also appear inside a UKI: Image, zboot, compressed.
fn decode_nestable(bytes: &[u8], limit: usize) -> Result<Option<KernelImage<'_>>, Error> {
    // Magics at offset 0 first: a compressed stream may by chance hold the
    // Image magic at offset 56, while an Image never starts with one of them
    // (code0 is "MZ" or a branch instruction).
    let (format, image) = if zboot::is_zboot(bytes) {
        let (header, image) = zboot::decompress(bytes, limit)?;
        let format = KernelFormat::Zboot {
            compression: header.compression,
        };
        (format, image)
    } else if let Some((compression, image)) = decompress::decompress_any(bytes, limit)? {
        (KernelFormat::from_compression(compression), image)
    } else if image::has_image_magic(bytes) {
        let header = Arm64ImageHeader::parse(bytes)?;
        return Ok(Some(KernelImage {
            format: KernelFormat::Image,
            image: Cow::Borrowed(bytes),
            header,
            uki: None,
        }));
    } else {
        return Ok(None);
    };
    let header = match Arm64ImageHeader::parse(&image) {
        Ok(header) => header,
        Err(source) => return Err(Error::NotAnImage { format, source }),
    };
    Ok(Some(KernelImage {
        format,
        image: Cow::Owned(image),
        header,
        uki: None,
    }))
}

fn decode_uki(bytes: &[u8], limit: usize) -> Result<KernelImage<'_>, Error> {
    let uki = pe::Uki::parse(bytes)?;
    let inner = match decode_nestable(uki.linux, limit) {
        Ok(Some(inner)) => inner,
        Ok(None) if elf::is_elf(uki.linux) => {
            return Err(Error::UnsupportedNesting {
                inner: KernelFormat::Elf,
            })
        }
        Ok(None) if uki.linux.starts_with(&image::MZ_MAGIC) => {
            return Err(Error::UnsupportedNesting {
                inner: KernelFormat::Uki,
            })
        }
        Ok(None) => {
            return Err(Error::UkiLinux(Box::new(Error::Unrecognised {
                len: uki.linux.len(),
            })))
        }
        Err(err) => return Err(Error::UkiLinux(Box::new(err))),
    };
    Ok(KernelImage {
        format: KernelFormat::Uki,
        image: inner.image,
        header: inner.header,
        uki: Some(UkiParts {
            cmdline: uki.cmdline.map(str::to_owned),
            initrd: uki.initrd.map(<[u8]>::to_vec),
            dtb: uki.dtb.map(<[u8]>::to_vec),
        }),
    })
}

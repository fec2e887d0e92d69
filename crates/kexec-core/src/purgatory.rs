//! The purgatory segment: the parameter header the loader patches into the
//! embedded purgatory image before loading it.
//!
//! `kexec_load` on arm64 enters the loader's entry point with x0 = 0, MMU and
//! caches off (arch/arm64/kernel/relocate_kernel.S). The purgatory
//! (crates/purgatory) verifies the SHA-256 of every other segment, does the
//! cache maintenance of Documentation/arch/arm64/booting.rst and enters the
//! kernel with x0 = DTB. What it needs to know — segment digests, kernel
//! entry, DTB address, console UART, flags — is written into its header,
//! whose layout is defined once in the `handoff` crate.

use handoff::{Flags, HandoffParams, PurgatoryHeader, SegmentDigest, HEADER_OFFSET, HEADER_SIZE};

pub use handoff::HeaderError;

/// Why the purgatory could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image is shorter than its header's end.
    #[error("purgatory image of {len} bytes has no room for its header at {HEADER_OFFSET:#x}")]
    Truncated {
        /// Image length.
        len: usize,
    },
    /// The header does not decode or the parameters do not fit it.
    #[error("purgatory header: {0}")]
    Header(HeaderError),
    /// `mem_size` is smaller than the image.
    #[error("purgatory mem_size {mem_size:#x} is smaller than its {len} bytes")]
    MemSize {
        /// Header's memory size.
        mem_size: u64,
        /// Image length.
        len: usize,
    },
}

/// How the purgatory should behave (header flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgatoryOptions {
    /// Skip digest verification (`kexec -i` / `--no-checks`).
    pub no_verify: bool,
    /// Hash in software even when the CPU has the SHA2 instructions.
    pub force_soft_sha256: bool,
    /// Hash with the MMU and caches off (as kexec-tools does; for comparison).
    pub no_caches: bool,
}

impl PurgatoryOptions {
    fn flags(self) -> Flags {
        let mut bits = 0;
        if self.no_verify {
            bits |= Flags::NO_VERIFY;
        }
        if self.force_soft_sha256 {
            bits |= Flags::FORCE_SOFT_SHA256;
        }
        if self.no_caches {
            bits |= Flags::NO_CACHES;
        }
        Flags(bits)
    }
}

/// An embedded purgatory image, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purgatory<'a> {
    /// The flat image (entry at offset 0).
    pub image: &'a [u8],
    /// Bytes it occupies in memory (image, bss, page tables, stack).
    pub mem_size: u64,
}

impl<'a> Purgatory<'a> {
    /// Offset of the entry point (the image starts with a branch over the header).
    pub(crate) const ENTRY_OFFSET: u64 = 0;

    /// Check an image and read its memory size from its header.
    pub fn parse(image: &'a [u8]) -> Result<Self, Error> {
        let header = image
            .get(HEADER_OFFSET..HEADER_OFFSET + HEADER_SIZE)
            .ok_or(Error::Truncated { len: image.len() })?;
        let header = PurgatoryHeader::decode(header).map_err(Error::Header)?;
        if header.mem_size < image.len() as u64 {
            return Err(Error::MemSize {
                mem_size: header.mem_size,
                len: image.len(),
            });
        }
        Ok(Self {
            image,
            mem_size: header.mem_size,
        })
    }

    /// A copy of the image with its header carrying `params`.
    pub fn patched(&self, params: &HandoffParams) -> Result<Vec<u8>, Error> {
        let mut bytes = self.image.to_vec();
        PurgatoryHeader::patch_image(&mut bytes, params).map_err(Error::Header)?;
        Ok(bytes)
    }
}

/// The parameters for a purgatory that verifies `segments` (address,
/// length, SHA-256), then enters `kernel_entry` with x0 = `dtb`.
pub(crate) fn handoff_params(
    segments: impl IntoIterator<Item = (u64, u64, [u8; 32])>,
    kernel_entry: u64,
    dtb: u64,
    uart: Option<u64>,
    options: PurgatoryOptions,
) -> Result<HandoffParams, Error> {
    let mut params = HandoffParams {
        entry: kernel_entry,
        dtb,
        uart: uart.unwrap_or(0),
        flags: options.flags(),
        ..HandoffParams::default()
    };
    for (addr, len, sha256) in segments {
        params
            .push_segment(SegmentDigest { addr, len, sha256 })
            .map_err(Error::Header)?;
    }
    handoff::params::validate(&params).map_err(Error::Header)?;
    Ok(params)
}

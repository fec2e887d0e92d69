//! The purgatory segment: the parameter header the loader patches into the
//! embedded purgatory image before loading it.
//!
//! `kexec_load` on arm64 enters the loader's entry point with x0 = 0, MMU and
//! caches off (arch/arm64/kernel/relocate_kernel.S). The purgatory
//! (crates/purgatory) verifies the SHA-256 of every other segment, does the
//! cache maintenance of Documentation/arch/arm64/booting.rst and enters the
//! kernel with x0 = DTB. What it needs to know — segment ranges, kernel
//! entry, DTB address, console UART, flags, where its digest table is —
//! is written into its header, whose layout is defined once in the
//! `handoff` crate; the table of chunk digests ([`crate::digest`]) follows
//! the purgatory's own memory in its segment.

use handoff::{
    Conduit, Flags, HandoffParams, PurgatoryHeader, SegmentRange, DIGEST_SIZE, HEADER_OFFSET,
    HEADER_SIZE,
};

use crate::digest::{Sha256Digest, CHUNK_SHIFT};
use crate::fdt::{PsciCpus, PsciMethod};

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
    /// The digests given are not one per chunk of the segments.
    #[error("{given} chunk digests for a header that lists {needed}")]
    DigestTable {
        /// Digests given.
        given: usize,
        /// Digests the header's segments need.
        needed: u32,
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
    /// Hash on the boot CPU alone, even where PSCI could start the others
    /// (for comparison, or a firmware whose `CPU_ON` misbehaves).
    pub one_cpu: bool,
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

    /// Where the loader puts the digest table, from the load address: right
    /// after the purgatory's memory, 8-byte aligned.
    pub fn digests_offset(&self) -> u64 {
        self.mem_size.next_multiple_of(8)
    }

    /// The bytes of the purgatory's segment: the image with its header
    /// carrying `params`, zeros up to `params.digests_offset`, then
    /// `table` (one digest per chunk, in the header's order).
    pub fn segment_bytes(
        &self,
        params: &HandoffParams,
        table: &[Sha256Digest],
    ) -> Result<Vec<u8>, Error> {
        if table.len() != params.nr_digests as usize {
            return Err(Error::DigestTable {
                given: table.len(),
                needed: params.nr_digests,
            });
        }
        let mut bytes = self.patched(params)?;
        if !table.is_empty() {
            let offset = usize::try_from(params.digests_offset).map_err(|_| {
                Error::Header(handoff::HeaderError::BadDigestTable(params.digests_offset))
            })?;
            bytes.resize(offset, 0);
            bytes.reserve(table.len() * DIGEST_SIZE);
            for d in table {
                bytes.extend_from_slice(d);
            }
        }
        Ok(bytes)
    }
}

/// The parameters for a purgatory that verifies `segments` (address,
/// length) in [`crate::digest::CHUNK_SIZE`] chunks against a table at
/// `digests_offset`, on the CPUs of `cpus` too if given (`handoff::smp`),
/// then enters `kernel_entry` with x0 = `dtb`.
pub(crate) fn handoff_params(
    segments: impl IntoIterator<Item = (u64, u64)>,
    kernel_entry: u64,
    dtb: u64,
    uart: Option<u64>,
    options: PurgatoryOptions,
    digests_offset: u64,
    cpus: Option<&PsciCpus>,
) -> Result<HandoffParams, Error> {
    let mut params = HandoffParams {
        entry: kernel_entry,
        dtb,
        uart: uart.unwrap_or(0),
        flags: options.flags(),
        ..HandoffParams::default()
    };
    if let Some(c) = cpus {
        params.psci = match c.method {
            PsciMethod::Hvc => Conduit::Hvc,
            PsciMethod::Smc => Conduit::Smc,
        };
        for &mpidr in &c.mpidrs {
            params.push_secondary(mpidr).map_err(Error::Header)?;
        }
    }
    for (addr, len) in segments {
        params
            .push_segment(SegmentRange { addr, len })
            .map_err(Error::Header)?;
    }
    params
        .set_digest_table(CHUNK_SHIFT, digests_offset)
        .map_err(Error::Header)?;
    handoff::params::validate(&params).map_err(Error::Header)?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat image of `len` bytes with a header saying `mem_size`.
    fn image(len: usize, mem_size: u64) -> Vec<u8> {
        let mut img = vec![0u8; len];
        let header = PurgatoryHeader {
            mem_size,
            params: HandoffParams::default(),
        }
        .encode()
        .unwrap();
        img[HEADER_OFFSET..HEADER_OFFSET + HEADER_SIZE].copy_from_slice(&header);
        img
    }

    /// The memory size may equal the image (no bss) or exceed it, never be
    /// smaller: the image would not fit in what is reserved for it.
    #[test]
    fn the_memory_size_holds_the_image() {
        let len = HEADER_OFFSET + HEADER_SIZE + 100;
        let n = len as u64;
        assert_eq!(Purgatory::parse(&image(len, n)).unwrap().mem_size, n);
        assert_eq!(
            Purgatory::parse(&image(len, n + 1)).unwrap().mem_size,
            n + 1
        );
        assert_eq!(
            Purgatory::parse(&image(len, n - 1)),
            Err(Error::MemSize {
                mem_size: n - 1,
                len
            })
        );
    }

    /// Each option sets its own header flag, and the parameters carry them.
    #[test]
    fn options_set_their_flags() {
        let flags = |o: PurgatoryOptions| o.flags().0;
        let none = PurgatoryOptions::default();
        assert_eq!(flags(none), 0);
        let no_verify = PurgatoryOptions {
            no_verify: true,
            ..none
        };
        let soft = PurgatoryOptions {
            force_soft_sha256: true,
            ..none
        };
        let no_caches = PurgatoryOptions {
            no_caches: true,
            ..none
        };
        assert_eq!(flags(no_verify), Flags::NO_VERIFY);
        assert_eq!(flags(soft), Flags::FORCE_SOFT_SHA256);
        assert_eq!(flags(no_caches), Flags::NO_CACHES);
        let all = PurgatoryOptions {
            no_verify: true,
            force_soft_sha256: true,
            no_caches: true,
            one_cpu: false,
        };
        assert_eq!(
            flags(all),
            Flags::NO_VERIFY | Flags::FORCE_SOFT_SHA256 | Flags::NO_CACHES
        );
        let params = handoff_params([], 0x4020_0000, 0x4800_0000, None, all, 0x1000, None).unwrap();
        assert_eq!(params.flags.0, flags(all));
        // One CPU is not a header flag: the loader leaves the CPUs out.
        let one = PurgatoryOptions {
            one_cpu: true,
            ..none
        };
        assert_eq!(flags(one), 0);
    }

    /// The CPUs go into the header with their conduit; more than it holds
    /// is refused.
    #[test]
    fn psci_cpus_fill_the_header() {
        let opts = PurgatoryOptions::default();
        for (method, conduit) in [
            (PsciMethod::Hvc, Conduit::Hvc),
            (PsciMethod::Smc, Conduit::Smc),
        ] {
            let cpus = PsciCpus {
                method,
                mpidrs: vec![0, 1, 0x100],
            };
            let p = handoff_params(
                [(0x4020_0000, 0x1000)],
                0x4020_0000,
                0x4800_0000,
                None,
                opts,
                0x1000,
                Some(&cpus),
            )
            .unwrap();
            assert_eq!((p.psci, p.secondaries()), (conduit, &[0, 1, 0x100][..]));
        }
        let eight = PsciCpus {
            method: PsciMethod::Hvc,
            mpidrs: (0..8).collect(),
        };
        assert!(matches!(
            handoff_params([], 0, 0, None, opts, 0x1000, Some(&eight)),
            Err(Error::Header(_))
        ));
        let none = handoff_params([], 0, 0, None, opts, 0x1000, None).unwrap();
        assert_eq!((none.psci, none.secondaries().len()), (Conduit::None, 0));
    }
}

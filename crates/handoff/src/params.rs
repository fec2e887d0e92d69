//! The purgatory's parameter header: what the loader patches into the
//! purgatory image before `kexec_load`, and its decoded form.
//!
//! # Byte layout (version 1, all fields little endian)
//!
//! The header sits at [`HEADER_OFFSET`] in the flat purgatory binary (the
//! first instruction, at offset 0, branches over it). Offsets below are from
//! the start of the header.
//!
//! | offset | size | field | who writes it |
//! | --- | --- | --- | --- |
//! | 0x000 | 8 | magic `b"KXPURG01"` ([`HEADER_MAGIC`]) | link time |
//! | 0x008 | 4 | version = 1 ([`HEADER_VERSION`]) | link time |
//! | 0x00c | 4 | header size in bytes = 0x340 ([`HEADER_SIZE`]) | link time |
//! | 0x010 | 8 | `mem_size`: bytes the purgatory occupies in memory (code, data, bss, page-table pool, stack); the loader uses it as the segment's `memsz` | link time |
//! | 0x018 | 8 | `flags` ([`Flags`]) | loader |
//! | 0x020 | 8 | `entry`: physical address the next kernel is entered at | loader |
//! | 0x028 | 8 | `dtb`: physical address of the DTB, passed in x0 | loader |
//! | 0x030 | 8 | `uart`: physical address of a PL011 data register, 0 = no console | loader |
//! | 0x038 | 4 | `nr_segments` (at most [`MAX_SEGMENTS`]) | loader |
//! | 0x03c | 4 | reserved, 0 | loader |
//! | 0x040 | 48 × 16 | `segments[16]`, each: `addr` u64, `len` u64, `sha256` \[u8; 32\] | loader |
//!
//! Only `segments[..nr_segments]` are meaningful; the rest must be zero.
//! The purgatory hashes exactly `len` bytes at `addr` for each of them.
//!
//! The purgatory is position independent provided it is loaded at a 4 KiB
//! aligned address (see the purgatory crate), so the loader may place it in
//! any page-aligned free range of `mem_size` bytes.

/// Offset of the parameter header in the flat purgatory binary.
pub const HEADER_OFFSET: usize = 0x40;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = HEADER_SIZE_U32 as usize;
const HEADER_SIZE_U32: u32 = 0x340;
/// Magic at the start of the header.
pub const HEADER_MAGIC: [u8; 8] = *b"KXPURG01";
/// Layout version described in this module.
pub const HEADER_VERSION: u32 = 1;
/// Most segments the header can describe (`KEXEC_SEGMENT_MAX` in
/// include/uapi/linux/kexec.h is 16, and one of them is the purgatory).
pub const MAX_SEGMENTS: usize = 16;

const OFF_MAGIC: usize = 0x000;
const OFF_VERSION: usize = 0x008;
const OFF_SIZE: usize = 0x00c;
const OFF_MEM_SIZE: usize = 0x010;
const OFF_FLAGS: usize = 0x018;
const OFF_ENTRY: usize = 0x020;
const OFF_DTB: usize = 0x028;
const OFF_UART: usize = 0x030;
const OFF_NR_SEGMENTS: usize = 0x038;
/// Reserved u32 after `nr_segments`; written as zero, ignored on decode.
#[allow(dead_code)]
const OFF_RESERVED: usize = 0x03c;
const OFF_SEGMENTS: usize = 0x040;
/// Size of one segment record in the header.
pub const SEGMENT_RECORD_SIZE: usize = 48;

/// Option bits of the header's `flags` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u64);

impl Flags {
    /// Skip SHA-256 verification entirely (`kexec -i`).
    pub const NO_VERIFY: u64 = 1 << 0;
    /// Hash with the software SHA-256 even if the CPU has the SHA2 instructions.
    pub const FORCE_SOFT_SHA256: u64 = 1 << 1;
    /// Hash with the MMU and caches off (what kexec-tools does; for measurements).
    pub const NO_CACHES: u64 = 1 << 2;
    /// All defined bits.
    pub const ALL: u64 = Self::NO_VERIFY | Self::FORCE_SOFT_SHA256 | Self::NO_CACHES;

    /// Whether every bit of `bit` is set.
    pub const fn contains(self, bit: u64) -> bool {
        self.0 & bit == bit
    }
}

/// One segment the purgatory verifies before entering the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentDigest {
    /// Physical (= identity-mapped) start address.
    pub addr: u64,
    /// Number of bytes hashed.
    pub len: u64,
    /// Expected SHA-256 of those bytes.
    pub sha256: [u8; 32],
}

impl SegmentDigest {
    /// One past the last byte, or `None` if the range wraps.
    pub const fn end(&self) -> Option<u64> {
        self.addr.checked_add(self.len)
    }
}

/// Everything the handoff sequence needs to know from the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffParams {
    /// Segments to verify; only `segments[..count]` are used.
    pub segments: [SegmentDigest; MAX_SEGMENTS],
    /// Number of valid entries in `segments`.
    pub count: usize,
    /// Kernel entry point (physical).
    pub entry: u64,
    /// DTB physical address, passed to the kernel in x0.
    pub dtb: u64,
    /// PL011 base address (its data register), 0 = no console.
    pub uart: u64,
    /// Option bits.
    pub flags: Flags,
}

impl Default for HandoffParams {
    fn default() -> Self {
        Self {
            segments: [SegmentDigest::default(); MAX_SEGMENTS],
            count: 0,
            entry: 0,
            dtb: 0,
            uart: 0,
            flags: Flags::default(),
        }
    }
}

impl HandoffParams {
    /// The valid segments.
    pub fn segments(&self) -> &[SegmentDigest] {
        &self.segments[..self.count.min(MAX_SEGMENTS)]
    }

    /// Appends a segment; `Err(HeaderError::TooManySegments)` when full.
    pub fn push_segment(&mut self, seg: SegmentDigest) -> Result<(), HeaderError> {
        if self.count >= MAX_SEGMENTS {
            return Err(HeaderError::TooManySegments(self.count + 1));
        }
        self.segments[self.count] = seg;
        self.count += 1;
        Ok(())
    }
}

/// Why a header could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The magic is not `KXPURG01`: not a purgatory image, or the wrong offset.
    BadMagic,
    /// A layout version this code does not know.
    UnsupportedVersion(u32),
    /// The header size field does not match [`HEADER_SIZE`].
    BadSize(u32),
    /// More segments than [`MAX_SEGMENTS`].
    TooManySegments(usize),
    /// A segment's `addr + len` overflows.
    SegmentWraps(usize),
    /// Unknown flag bits are set.
    UnknownFlags(u64),
    /// The buffer is shorter than the header.
    Truncated(usize),
}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic => write!(f, "purgatory header magic not found"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported purgatory header version {v}"),
            Self::BadSize(s) => {
                write!(f, "purgatory header size {s:#x}, expected {HEADER_SIZE:#x}")
            }
            Self::TooManySegments(n) => write!(f, "{n} segments, at most {MAX_SEGMENTS}"),
            Self::SegmentWraps(i) => write!(f, "segment {i} wraps the address space"),
            Self::UnknownFlags(x) => write!(f, "unknown purgatory flags {x:#x}"),
            Self::Truncated(n) => write!(f, "purgatory header truncated at {n} bytes"),
        }
    }
}

/// The whole header as the loader writes it and the purgatory reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgatoryHeader {
    /// Bytes the purgatory occupies in memory (filled at link time).
    pub mem_size: u64,
    /// Loader-provided parameters.
    pub params: HandoffParams,
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(w)
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

impl PurgatoryHeader {
    /// Serialises the header (magic, version and size included).
    pub fn encode(&self) -> Result<[u8; HEADER_SIZE], HeaderError> {
        let p = &self.params;
        validate(p)?;
        let mut b = [0u8; HEADER_SIZE];
        put(&mut b, OFF_MAGIC, &HEADER_MAGIC);
        put(&mut b, OFF_VERSION, &HEADER_VERSION.to_le_bytes());
        put(&mut b, OFF_SIZE, &HEADER_SIZE_U32.to_le_bytes());
        put(&mut b, OFF_MEM_SIZE, &self.mem_size.to_le_bytes());
        put(&mut b, OFF_FLAGS, &p.flags.0.to_le_bytes());
        put(&mut b, OFF_ENTRY, &p.entry.to_le_bytes());
        put(&mut b, OFF_DTB, &p.dtb.to_le_bytes());
        put(&mut b, OFF_UART, &p.uart.to_le_bytes());
        // validate() bounded count by MAX_SEGMENTS, which fits a u32.
        let count = u32::try_from(p.count).unwrap_or(u32::MAX);
        put(&mut b, OFF_NR_SEGMENTS, &count.to_le_bytes());
        for (i, s) in p.segments().iter().enumerate() {
            let off = OFF_SEGMENTS + i * SEGMENT_RECORD_SIZE;
            put(&mut b, off, &s.addr.to_le_bytes());
            put(&mut b, off + 8, &s.len.to_le_bytes());
            put(&mut b, off + 16, &s.sha256);
        }
        Ok(b)
    }

    /// Parses a header from the start of `b` (which may be longer).
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < HEADER_SIZE {
            return Err(HeaderError::Truncated(b.len()));
        }
        if b[OFF_MAGIC..OFF_MAGIC + 8] != HEADER_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = get_u32(b, OFF_VERSION);
        if version != HEADER_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let size = get_u32(b, OFF_SIZE);
        if size as usize != HEADER_SIZE {
            return Err(HeaderError::BadSize(size));
        }
        let count = get_u32(b, OFF_NR_SEGMENTS) as usize;
        if count > MAX_SEGMENTS {
            return Err(HeaderError::TooManySegments(count));
        }
        let mut params = HandoffParams {
            count,
            entry: get_u64(b, OFF_ENTRY),
            dtb: get_u64(b, OFF_DTB),
            uart: get_u64(b, OFF_UART),
            flags: Flags(get_u64(b, OFF_FLAGS)),
            ..HandoffParams::default()
        };
        for i in 0..count {
            let off = OFF_SEGMENTS + i * SEGMENT_RECORD_SIZE;
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&b[off + 16..off + 48]);
            params.segments[i] = SegmentDigest {
                addr: get_u64(b, off),
                len: get_u64(b, off + 8),
                sha256,
            };
        }
        validate(&params)?;
        Ok(Self {
            mem_size: get_u64(b, OFF_MEM_SIZE),
            params,
        })
    }

    /// Writes the loader-owned fields into a purgatory image in place,
    /// keeping the link-time fields (checks the magic first).
    pub fn patch_image(image: &mut [u8], params: &HandoffParams) -> Result<(), HeaderError> {
        let end = HEADER_OFFSET + HEADER_SIZE;
        if image.len() < end {
            return Err(HeaderError::Truncated(image.len()));
        }
        let current = Self::decode(&image[HEADER_OFFSET..end])?;
        let new = Self {
            mem_size: current.mem_size,
            params: params.clone(),
        };
        image[HEADER_OFFSET..end].copy_from_slice(&new.encode()?);
        Ok(())
    }
}

/// Checks the parameters the handoff relies on.
pub fn validate(p: &HandoffParams) -> Result<(), HeaderError> {
    if p.count > MAX_SEGMENTS {
        return Err(HeaderError::TooManySegments(p.count));
    }
    if p.flags.0 & !Flags::ALL != 0 {
        return Err(HeaderError::UnknownFlags(p.flags.0 & !Flags::ALL));
    }
    for (i, s) in p.segments().iter().enumerate() {
        if s.end().is_none() {
            return Err(HeaderError::SegmentWraps(i));
        }
    }
    Ok(())
}

//! The purgatory's parameter header: what the loader patches into the
//! purgatory image before `kexec_load`, and its decoded form.
//!
//! # Byte layout (version 3, all fields little endian)
//!
//! The header sits at [`HEADER_OFFSET`] in the flat purgatory binary (the
//! first instruction, at offset 0, branches over it). Offsets below are from
//! the start of the header.
//!
//! | offset | size | field | who writes it |
//! | --- | --- | --- | --- |
//! | 0x000 | 8 | magic `b"KXPURG01"` ([`HEADER_MAGIC`]) | link time |
//! | 0x008 | 4 | version = 3 ([`HEADER_VERSION`]) | link time |
//! | 0x00c | 4 | header size in bytes = 0x190 ([`HEADER_SIZE`]) | link time |
//! | 0x010 | 8 | `mem_size`: bytes the purgatory occupies in memory (code, data, bss, page-table pool, stack) | link time |
//! | 0x018 | 8 | `flags` ([`Flags`]) | loader |
//! | 0x020 | 8 | `entry`: physical address the next kernel is entered at | loader |
//! | 0x028 | 8 | `dtb`: physical address of the DTB, passed in x0 | loader |
//! | 0x030 | 8 | `uart`: physical address of a PL011 data register, 0 = no console | loader |
//! | 0x038 | 4 | `nr_segments` (at most [`MAX_SEGMENTS`]) | loader |
//! | 0x03c | 4 | `chunk_shift`: chunks are `1 << chunk_shift` bytes ([`MIN_CHUNK_SHIFT`]..=[`MAX_CHUNK_SHIFT`]) | loader |
//! | 0x040 | 8 | `digests_offset`: where the digest table starts, from the purgatory's load address (a multiple of 8, at or after `mem_size`) | loader |
//! | 0x048 | 4 | `nr_digests`: entries in the digest table | loader |
//! | 0x04c | 4 | reserved, 0 | loader |
//! | 0x050 | 16 × 16 | `segments[16]`, each: `addr` u64, `len` u64 | loader |
//! | 0x150 | 4 | `psci`: how to call PSCI ([`Conduit`]: 0 none, 1 HVC, 2 SMC) | loader |
//! | 0x154 | 4 | `nr_secondaries` (at most [`MAX_SECONDARIES`]) | loader |
//! | 0x158 | 7 × 8 | `secondaries[7]`: `MPIDR_EL1` affinity fields of CPUs the purgatory may start to hash with it | loader |
//!
//! Only `segments[..nr_segments]` and `secondaries[..nr_secondaries]` are
//! meaningful; the rest must be zero. Secondaries need a conduit; the
//! purgatory starts them only when it verifies with the caches on
//! (`crate::smp`).
//!
//! # The digest table (variable length, outside the header)
//!
//! `nr_digests` SHA-256 digests of 32 bytes each, at `digests_offset` from
//! the purgatory's load address: the loader appends it to the purgatory's
//! segment after `mem_size` bytes (the segment's `bufsz` and `memsz` grow by
//! the padding and the table). Segment `i` is cut into
//! `ceil(len / (1 << chunk_shift))` chunks, chunk `j` covering
//! `[addr + j·C, min(addr + (j+1)·C, addr + len))` with `C = 1 << chunk_shift`;
//! the table lists segment 0's chunks in address order, then segment 1's,
//! and so on ([`HandoffParams::chunks`] is the one definition of that
//! order), so `nr_digests` is the sum of those counts. With
//! [`Flags::NO_VERIFY`] the loader writes no table: `nr_digests` is 0.
//!
//! The purgatory is position independent provided it is loaded at a 4 KiB
//! aligned address (see the purgatory crate), so the loader may place it in
//! any page-aligned free range.

/// Offset of the parameter header in the flat purgatory binary.
pub const HEADER_OFFSET: usize = 0x40;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = HEADER_SIZE_U32 as usize;
const HEADER_SIZE_U32: u32 = 0x190;
/// Magic at the start of the header.
pub const HEADER_MAGIC: [u8; 8] = *b"KXPURG01";
/// Layout version described in this module (3: secondary CPUs; 2 added
/// digests per chunk, in a table after the purgatory; 1 had one digest per
/// segment in the header).
pub const HEADER_VERSION: u32 = 3;
/// Most CPUs besides the boot CPU the purgatory starts to hash with it
/// (eight CPUs in all: hashing is bounded by memory bandwidth well before).
pub const MAX_SECONDARIES: usize = 7;
/// The `MPIDR_EL1` bits PSCI takes as a target: Aff3 (39:32), Aff2 (23:16),
/// Aff1 (15:8), Aff0 (7:0) (Linux: `MPIDR_HWID_BITMASK`,
/// arch/arm64/include/asm/cputype.h).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;
/// Most segments the header can describe (`KEXEC_SEGMENT_MAX` in
/// include/uapi/linux/kexec.h is 16, and one of them is the purgatory).
pub const MAX_SEGMENTS: usize = 16;
/// Bytes of one digest-table entry (a SHA-256 digest).
pub const DIGEST_SIZE: usize = 32;
/// Smallest chunk: one 4 KiB page.
pub const MIN_CHUNK_SHIFT: u32 = 12;
/// Largest chunk: 4 GiB.
pub const MAX_CHUNK_SHIFT: u32 = 32;
/// The chunk size the loader uses (`kexec_core::digest::CHUNK_SHIFT`):
/// 2 MiB, chosen by measurement (README, "Chunked digests").
pub const LOADER_CHUNK_SHIFT: u32 = 21;

const OFF_MAGIC: usize = 0x000;
const OFF_VERSION: usize = 0x008;
const OFF_SIZE: usize = 0x00c;
const OFF_MEM_SIZE: usize = 0x010;
const OFF_FLAGS: usize = 0x018;
const OFF_ENTRY: usize = 0x020;
const OFF_DTB: usize = 0x028;
const OFF_UART: usize = 0x030;
const OFF_NR_SEGMENTS: usize = 0x038;
const OFF_CHUNK_SHIFT: usize = 0x03c;
const OFF_DIGESTS_OFFSET: usize = 0x040;
const OFF_NR_DIGESTS: usize = 0x048;
/// Reserved u32 after `nr_digests`; written as zero, ignored on decode.
#[allow(dead_code)]
const OFF_RESERVED: usize = 0x04c;
const OFF_SEGMENTS: usize = 0x050;
const OFF_PSCI: usize = 0x150;
const OFF_NR_SECONDARIES: usize = 0x154;
const OFF_SECONDARIES: usize = 0x158;
/// Size of one segment record in the header.
pub const SEGMENT_RECORD_SIZE: usize = 16;

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

/// How the purgatory calls PSCI firmware: the device tree's `/psci`
/// `method` ("hvc" or "smc"), or ACPI's FADT `ARM_BOOT_ARCH` `PSCI_USE_HVC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conduit {
    /// No PSCI: the purgatory hashes on the boot CPU alone.
    #[default]
    None,
    /// `HVC #0`.
    Hvc,
    /// `SMC #0`.
    Smc,
}

impl Conduit {
    /// The header's encoding.
    pub const fn code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Hvc => 1,
            Self::Smc => 2,
        }
    }

    /// From the header's encoding.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Hvc),
            2 => Some(Self::Smc),
            _ => None,
        }
    }
}

/// One segment the purgatory verifies before entering the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentRange {
    /// Physical (= identity-mapped) start address.
    pub addr: u64,
    /// Number of bytes verified.
    pub len: u64,
}

impl SegmentRange {
    /// One past the last byte, or `None` if the range wraps.
    pub const fn end(&self) -> Option<u64> {
        self.addr.checked_add(self.len)
    }
}

/// Chunks of `1 << chunk_shift` bytes in `len` bytes (the last may be
/// shorter); 0 for an empty segment.
pub const fn chunk_count(len: u64, chunk_shift: u32) -> u64 {
    if chunk_shift >= 64 {
        return if len == 0 { 0 } else { 1 };
    }
    let whole = len >> chunk_shift;
    if len & ((1 << chunk_shift) - 1) != 0 {
        whole + 1
    } else {
        whole
    }
}

/// One chunk of one segment, with its place in the digest table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Index of its segment in the header.
    pub segment: usize,
    /// Index of the chunk within its segment.
    pub index: u64,
    /// Index of its digest in the digest table.
    pub digest: u64,
    /// First byte (physical).
    pub addr: u64,
    /// Bytes in the chunk.
    pub len: u64,
}

impl Chunk {
    /// One past its last byte (the parameters were validated: no wrap).
    pub const fn end(&self) -> u64 {
        self.addr.saturating_add(self.len)
    }
}

/// The chunks of every segment, in digest-table order ([`HandoffParams::chunks`]).
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    segments: &'a [SegmentRange],
    chunk_size: u64,
    segment: usize,
    offset: u64,
    index: u64,
    digest: u64,
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        loop {
            let s = self.segments.get(self.segment)?;
            if self.offset < s.len {
                let len = (s.len - self.offset).min(self.chunk_size);
                let c = Chunk {
                    segment: self.segment,
                    index: self.index,
                    digest: self.digest,
                    addr: s.addr + self.offset,
                    len,
                };
                self.offset += len;
                self.index += 1;
                self.digest += 1;
                return Some(c);
            }
            self.segment += 1;
            self.offset = 0;
            self.index = 0;
        }
    }
}

/// Everything the handoff sequence needs to know from the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffParams {
    /// Segments to verify; only `segments[..count]` are used.
    pub segments: [SegmentRange; MAX_SEGMENTS],
    /// Number of valid entries in `segments`.
    pub count: usize,
    /// Chunks are `1 << chunk_shift` bytes.
    pub chunk_shift: u32,
    /// Offset of the digest table from the purgatory's load address.
    pub digests_offset: u64,
    /// Entries in the digest table.
    pub nr_digests: u32,
    /// Kernel entry point (physical).
    pub entry: u64,
    /// DTB physical address, passed to the kernel in x0.
    pub dtb: u64,
    /// PL011 base address (its data register), 0 = no console.
    pub uart: u64,
    /// Option bits.
    pub flags: Flags,
    /// How to call PSCI.
    pub psci: Conduit,
    /// CPUs to start (their `MPIDR_EL1` affinity); only
    /// `secondaries[..nr_secondaries]` are used.
    pub secondaries: [u64; MAX_SECONDARIES],
    /// Number of valid entries in `secondaries`.
    pub nr_secondaries: usize,
}

impl Default for HandoffParams {
    fn default() -> Self {
        Self {
            segments: [SegmentRange::default(); MAX_SEGMENTS],
            count: 0,
            chunk_shift: 0,
            digests_offset: 0,
            nr_digests: 0,
            entry: 0,
            dtb: 0,
            uart: 0,
            flags: Flags::default(),
            psci: Conduit::None,
            secondaries: [0; MAX_SECONDARIES],
            nr_secondaries: 0,
        }
    }
}

impl HandoffParams {
    /// The valid segments.
    pub fn segments(&self) -> &[SegmentRange] {
        &self.segments[..self.count.min(MAX_SEGMENTS)]
    }

    /// Appends a segment; `Err(HeaderError::TooManySegments)` when full.
    pub fn push_segment(&mut self, seg: SegmentRange) -> Result<(), HeaderError> {
        if self.count >= MAX_SEGMENTS {
            return Err(HeaderError::TooManySegments(self.count + 1));
        }
        self.segments[self.count] = seg;
        self.count += 1;
        Ok(())
    }

    /// The valid secondary CPUs.
    pub fn secondaries(&self) -> &[u64] {
        &self.secondaries[..self.nr_secondaries.min(MAX_SECONDARIES)]
    }

    /// Appends a secondary CPU; `Err(HeaderError::TooManySecondaries)` when full.
    pub fn push_secondary(&mut self, mpidr: u64) -> Result<(), HeaderError> {
        if self.nr_secondaries >= MAX_SECONDARIES {
            return Err(HeaderError::TooManySecondaries(self.nr_secondaries + 1));
        }
        self.secondaries[self.nr_secondaries] = mpidr;
        self.nr_secondaries += 1;
        Ok(())
    }

    /// Bytes in a chunk (`1 << chunk_shift`, saturating).
    pub const fn chunk_size(&self) -> u64 {
        if self.chunk_shift >= 64 {
            u64::MAX
        } else {
            1 << self.chunk_shift
        }
    }

    /// The chunks of every segment, in digest-table order.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            segments: self.segments(),
            chunk_size: self.chunk_size().max(1),
            segment: 0,
            offset: 0,
            index: 0,
            digest: 0,
        }
    }

    /// How many digests the segments need (the sum of their chunk counts).
    pub fn digests_needed(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| chunk_count(s.len, self.chunk_shift))
            .fold(0, u64::saturating_add)
    }

    /// Bytes of the digest table.
    pub const fn digest_table_len(&self) -> u64 {
        self.nr_digests as u64 * DIGEST_SIZE as u64
    }

    /// Sets the chunk size and the table's place, and `nr_digests` to what
    /// the segments need (`0` with [`Flags::NO_VERIFY`]).
    pub fn set_digest_table(
        &mut self,
        chunk_shift: u32,
        digests_offset: u64,
    ) -> Result<(), HeaderError> {
        self.chunk_shift = chunk_shift;
        self.digests_offset = digests_offset;
        let n = if self.flags.contains(Flags::NO_VERIFY) {
            0
        } else {
            self.digests_needed()
        };
        self.nr_digests = u32::try_from(n).map_err(|_| HeaderError::TooManyDigests(n))?;
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
    /// `chunk_shift` is outside [`MIN_CHUNK_SHIFT`]..=[`MAX_CHUNK_SHIFT`].
    BadChunkShift(u32),
    /// `nr_digests` is not what the segments need (0 with `NO_VERIFY`).
    DigestCount {
        /// What the segments need.
        expected: u64,
        /// What the header says.
        found: u32,
    },
    /// More digests than a u32 counts.
    TooManyDigests(u64),
    /// The digest table is not 8-byte aligned, wraps, or overlaps the
    /// purgatory's own memory (`mem_size`).
    BadDigestTable(u64),
    /// A PSCI conduit code this code does not know.
    UnknownConduit(u32),
    /// More secondary CPUs than [`MAX_SECONDARIES`].
    TooManySecondaries(usize),
    /// Secondary CPUs without a PSCI conduit to start them.
    SecondariesWithoutPsci,
    /// A secondary's MPIDR has bits outside [`MPIDR_AFFINITY_MASK`], or
    /// appears twice.
    BadSecondary(u64),
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
            Self::BadChunkShift(s) => write!(
                f,
                "digest chunk shift {s}, expected {MIN_CHUNK_SHIFT}..={MAX_CHUNK_SHIFT}"
            ),
            Self::DigestCount { expected, found } => write!(
                f,
                "{found} digests in the table, the segments need {expected}"
            ),
            Self::TooManyDigests(n) => write!(f, "{n} digests, at most {}", u32::MAX),
            Self::BadDigestTable(o) => write!(
                f,
                "digest table at offset {o:#x} is misaligned, wraps or overlaps the purgatory"
            ),
            Self::UnknownConduit(c) => write!(f, "unknown PSCI conduit {c}"),
            Self::TooManySecondaries(n) => {
                write!(f, "{n} secondary CPUs, at most {MAX_SECONDARIES}")
            }
            Self::SecondariesWithoutPsci => write!(f, "secondary CPUs without a PSCI conduit"),
            Self::BadSecondary(m) => write!(
                f,
                "secondary CPU MPIDR {m:#x} is not an affinity value or appears twice"
            ),
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
        self.validate()?;
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
        put(&mut b, OFF_CHUNK_SHIFT, &p.chunk_shift.to_le_bytes());
        put(&mut b, OFF_DIGESTS_OFFSET, &p.digests_offset.to_le_bytes());
        put(&mut b, OFF_NR_DIGESTS, &p.nr_digests.to_le_bytes());
        for (i, s) in p.segments().iter().enumerate() {
            let off = OFF_SEGMENTS + i * SEGMENT_RECORD_SIZE;
            put(&mut b, off, &s.addr.to_le_bytes());
            put(&mut b, off + 8, &s.len.to_le_bytes());
        }
        put(&mut b, OFF_PSCI, &p.psci.code().to_le_bytes());
        // validate() bounded it by MAX_SECONDARIES.
        let n = u32::try_from(p.nr_secondaries).unwrap_or(u32::MAX);
        put(&mut b, OFF_NR_SECONDARIES, &n.to_le_bytes());
        for (i, m) in p.secondaries().iter().enumerate() {
            put(&mut b, OFF_SECONDARIES + 8 * i, &m.to_le_bytes());
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
        let code = get_u32(b, OFF_PSCI);
        let psci = Conduit::from_code(code).ok_or(HeaderError::UnknownConduit(code))?;
        let nr_secondaries = get_u32(b, OFF_NR_SECONDARIES) as usize;
        if nr_secondaries > MAX_SECONDARIES {
            return Err(HeaderError::TooManySecondaries(nr_secondaries));
        }
        let mut params = HandoffParams {
            count,
            psci,
            nr_secondaries,
            chunk_shift: get_u32(b, OFF_CHUNK_SHIFT),
            digests_offset: get_u64(b, OFF_DIGESTS_OFFSET),
            nr_digests: get_u32(b, OFF_NR_DIGESTS),
            entry: get_u64(b, OFF_ENTRY),
            dtb: get_u64(b, OFF_DTB),
            uart: get_u64(b, OFF_UART),
            flags: Flags(get_u64(b, OFF_FLAGS)),
            ..HandoffParams::default()
        };
        for i in 0..count {
            let off = OFF_SEGMENTS + i * SEGMENT_RECORD_SIZE;
            params.segments[i] = SegmentRange {
                addr: get_u64(b, off),
                len: get_u64(b, off + 8),
            };
        }
        for i in 0..nr_secondaries {
            params.secondaries[i] = get_u64(b, OFF_SECONDARIES + 8 * i);
        }
        let h = Self {
            mem_size: get_u64(b, OFF_MEM_SIZE),
            params,
        };
        h.validate()?;
        Ok(h)
    }

    /// [`validate`], and the digest table lies after the purgatory's own
    /// `mem_size` bytes (which it writes: page tables, stack).
    pub fn validate(&self) -> Result<(), HeaderError> {
        validate(&self.params)?;
        let p = &self.params;
        if p.nr_digests != 0 && p.digests_offset < self.mem_size {
            return Err(HeaderError::BadDigestTable(p.digests_offset));
        }
        Ok(())
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

/// Checks the parameters the handoff relies on: the segments, the flags,
/// and a digest table that matches them (the chunk size in range and
/// exactly one digest per chunk, or none with `NO_VERIFY`; 8-byte aligned,
/// not wrapping).
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
    let verify = !p.flags.contains(Flags::NO_VERIFY);
    if verify && p.count != 0 && !(MIN_CHUNK_SHIFT..=MAX_CHUNK_SHIFT).contains(&p.chunk_shift) {
        return Err(HeaderError::BadChunkShift(p.chunk_shift));
    }
    let expected = if verify { p.digests_needed() } else { 0 };
    if expected != u64::from(p.nr_digests) {
        return Err(HeaderError::DigestCount {
            expected,
            found: p.nr_digests,
        });
    }
    if p.nr_digests != 0
        && (!p.digests_offset.is_multiple_of(8)
            || p.digests_offset.checked_add(p.digest_table_len()).is_none())
    {
        return Err(HeaderError::BadDigestTable(p.digests_offset));
    }
    if p.nr_secondaries > MAX_SECONDARIES {
        return Err(HeaderError::TooManySecondaries(p.nr_secondaries));
    }
    if p.nr_secondaries != 0 && p.psci == Conduit::None {
        return Err(HeaderError::SecondariesWithoutPsci);
    }
    let cpus = p.secondaries();
    for (i, &m) in cpus.iter().enumerate() {
        // `take`, not a slice: no panic path in the purgatory.
        if m & !MPIDR_AFFINITY_MASK != 0 || cpus.iter().take(i).any(|&o| o == m) {
            return Err(HeaderError::BadSecondary(m));
        }
    }
    Ok(())
}

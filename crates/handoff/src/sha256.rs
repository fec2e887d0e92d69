//! SHA-256 padding and finalisation around a pluggable compression function,
//! so the purgatory can plug in the ARMv8 SHA2 instructions and everyone else
//! the portable software one.

use sha2::digest::generic_array::GenericArray;

/// Initial hash value (FIPS 180-4 §5.3.3).
pub const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Which SHA-256 implementation the handoff asks the machine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha256Engine {
    /// The ARMv8 SHA256H/H2/SU0/SU1 instructions (`ID_AA64ISAR0_EL1.SHA2 != 0`).
    Instructions,
    /// Portable software implementation.
    Software,
}

/// A SHA-256 compression function over whole 64-byte blocks.
pub trait Compress {
    /// Folds `blocks` into `state`.
    fn compress(&mut self, state: &mut [u32; 8], blocks: &[[u8; 64]]);
}

/// The software compression function of the `sha2` crate (which never uses
/// the SHA2 instructions on `aarch64-unknown-none`: without its `asm` feature
/// it only has the portable backend).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftCompress;

impl Compress for SoftCompress {
    fn compress(&mut self, state: &mut [u32; 8], blocks: &[[u8; 64]]) {
        for b in blocks {
            sha2::compress256(state, core::slice::from_ref(GenericArray::from_slice(b)));
        }
    }
}

/// Streaming SHA-256 over a [`Compress`].
#[derive(Debug, Clone)]
pub struct Sha256<C> {
    c: C,
    state: [u32; 8],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
}

impl<C: Compress> Sha256<C> {
    /// A fresh hash.
    pub fn new(c: C) -> Self {
        Self {
            c,
            state: H0,
            buf: [0; 64],
            buf_len: 0,
            total: 0,
        }
    }

    /// Absorbs `data`. Whole blocks go to the compression function one at a
    /// time. Written without indexing that could panic: the purgatory must
    /// not carry panic locations (absolute pointers) in its image.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let mut taken = 0;
            for (dst, src) in self.buf.iter_mut().skip(self.buf_len).zip(data) {
                *dst = *src;
                taken += 1;
            }
            self.buf_len += taken;
            data = data.get(taken..).unwrap_or_default();
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            self.c.compress(&mut self.state, &[block]);
            self.buf_len = 0;
        }
        let mut chunks = data.chunks_exact(64);
        for chunk in &mut chunks {
            // Always Ok (chunks_exact); no copy of the block.
            if let Ok(block) = <&[u8; 64]>::try_from(chunk) {
                self.c
                    .compress(&mut self.state, core::slice::from_ref(block));
            }
        }
        let rest = chunks.remainder();
        for (dst, src) in self.buf.iter_mut().zip(rest) {
            *dst = *src;
        }
        self.buf_len = rest.len();
    }

    /// Absorbs whole blocks in one call of the compression function (which
    /// can then keep the state in registers across them): the fast path for
    /// hashing a segment in place.
    pub fn update_blocks(&mut self, blocks: &[[u8; 64]]) {
        if self.buf_len != 0 {
            for b in blocks {
                self.update(b);
            }
            return;
        }
        self.total = self
            .total
            .wrapping_add((blocks.len() as u64).wrapping_mul(64));
        if !blocks.is_empty() {
            self.c.compress(&mut self.state, blocks);
        }
    }

    /// Pads and returns the digest.
    pub fn finalize(mut self) -> [u8; 32] {
        let bit_len = self.total.wrapping_mul(8);
        let mut tail = [0u8; 128];
        for (dst, src) in tail.iter_mut().zip(&self.buf).take(self.buf_len) {
            *dst = *src;
        }
        if let Some(b) = tail.get_mut(self.buf_len) {
            *b = 0x80;
        }
        let blocks = if self.buf_len < 56 { 1 } else { 2 };
        let len_at = 64 * blocks - 8;
        for (dst, src) in tail.iter_mut().skip(len_at).zip(bit_len.to_be_bytes()) {
            *dst = src;
        }
        for chunk in tail.chunks_exact(64).take(blocks) {
            let mut block = [0u8; 64];
            for (dst, src) in block.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.c.compress(&mut self.state, &[block]);
        }
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            for (dst, src) in o.iter_mut().zip(w.to_be_bytes()) {
                *dst = src;
            }
        }
        out
    }
}

/// One-shot software SHA-256 (for hosts and models).
pub fn sha256_soft(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new(SoftCompress);
    h.update(data);
    h.finalize()
}

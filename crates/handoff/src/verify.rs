//! Step 3 on one CPU: hash a share of the chunks and compare each with its
//! entry in the digest table. The boot CPU hashes share 0; with secondary
//! CPUs ([`crate::smp`]) the chunk whose digest has index `d` belongs to
//! share `d % shares`.

use crate::{Chunk, HandoffParams, Machine, Sha256Engine, DIGEST_SIZE};

/// Most failing chunks the console names one by one (the rest are counted).
pub const REPORTED_MISMATCHES: usize = 8;

/// What hashing found: the failing segments, how many chunks failed, and
/// the [`REPORTED_MISMATCHES`] failing chunks first in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatches {
    /// Bit `i` set: segment `i` has a failing chunk.
    pub segments: u32,
    /// Failing chunks.
    pub count: u64,
    /// The failing chunks with the smallest digest indices, in that order.
    pub first: [Option<Chunk>; REPORTED_MISMATCHES],
}

impl Mismatches {
    /// Nothing failed.
    pub const fn none() -> Self {
        Self {
            segments: 0,
            count: 0,
            first: [None; REPORTED_MISMATCHES],
        }
    }

    /// Records a failing chunk.
    pub fn note(&mut self, c: Chunk) {
        self.segments |= u32::try_from(c.segment)
            .ok()
            .and_then(|s| 1u32.checked_shl(s))
            .unwrap_or(0);
        self.count = self.count.saturating_add(1);
        self.keep_first(c);
    }

    /// Keeps `c` among `first` if it is one of the smallest digest indices:
    /// walks the list carrying the larger of each pair (no indexing, so no
    /// panic path and its relocations in the purgatory).
    fn keep_first(&mut self, c: Chunk) {
        let mut carry = Some(c);
        for slot in &mut self.first {
            match (carry, *slot) {
                (Some(x), Some(s)) if x.digest < s.digest => {
                    *slot = Some(x);
                    carry = Some(s);
                }
                (Some(x), None) => {
                    *slot = Some(x);
                    carry = None;
                }
                _ => {}
            }
        }
    }

    /// Adds what another share found (its `first` must be its smallest
    /// failing digest indices, as [`Mismatches::note`] keeps them).
    pub fn merge(&mut self, other: &Self) {
        self.segments |= other.segments;
        self.count = self.count.saturating_add(other.count);
        for c in other.first.iter().flatten() {
            self.keep_first(*c);
        }
    }
}

/// Reads digest `index` of the table at `table` (four aligned u64 reads).
fn read_digest<M: Machine + ?Sized>(m: &mut M, table: u64, index: u64) -> [u8; DIGEST_SIZE] {
    let mut d = [0u8; DIGEST_SIZE];
    let at = table + index * DIGEST_SIZE as u64;
    for (w, bytes) in d.chunks_exact_mut(8).enumerate() {
        bytes.copy_from_slice(&m.read_u64(at + 8 * w as u64).to_le_bytes());
    }
    d
}

/// Hashes the chunks of share `share` of `shares` (every chunk when
/// `shares` is 1) and compares each with the table at `table`; `progress`
/// is called after each chunk with the number hashed so far.
pub(crate) fn verify_share<M: Machine + ?Sized>(
    m: &mut M,
    p: &HandoffParams,
    table: u64,
    engine: Sha256Engine,
    (share, shares): (u64, u64),
    mut progress: impl FnMut(&mut M, u64),
) -> Mismatches {
    let mut found = Mismatches::none();
    let mut done = 0;
    for c in p.chunks().filter(|c| c.digest % shares.max(1) == share) {
        if m.sha256(c.addr, c.len, engine) != read_digest(m, table, c.digest) {
            found.note(c);
        }
        done += 1;
        progress(m, done);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(digest: u64, segment: usize) -> Chunk {
        Chunk {
            segment,
            index: digest,
            digest,
            addr: 0x1000 * digest,
            len: 0x1000,
        }
    }

    #[test]
    fn first_keeps_the_smallest_digest_indices_in_order() {
        let mut a = Mismatches::none();
        for d in [3, 11, 19, 27, 35, 43, 51, 59, 67] {
            a.note(chunk(d, 1));
        }
        let mut b = Mismatches::none();
        for d in [0, 8, 16] {
            b.note(chunk(d, 0));
        }
        a.merge(&b);
        let first: [u64; REPORTED_MISMATCHES] =
            core::array::from_fn(|i| a.first[i].map_or(u64::MAX, |c| c.digest));
        assert_eq!(first, [0, 3, 8, 11, 16, 19, 27, 35]);
        assert_eq!(a.count, 12);
        assert_eq!(a.segments, 0b11);
    }

    #[test]
    fn a_segment_past_the_mask_counts_but_sets_no_bit() {
        let mut a = Mismatches::none();
        a.note(chunk(1, 40));
        assert_eq!((a.count, a.segments), (1, 0));
    }
}

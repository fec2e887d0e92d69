//! Segment digests: one SHA-256 per fixed-size chunk, computed on every CPU.
//!
//! The purgatory verifies each segment chunk by chunk against a table of
//! digests (the layout: `handoff::params`). Chunk `j` of a segment covers its
//! bytes `[j·C, min((j+1)·C, bufsz))`, `C = 1 << CHUNK_SHIFT`; a segment
//! that starts with zero padding (the kernel's, below its `text_offset`)
//! hashes that padding as part of its first chunk.
//!
//! The chunks are independent, so the loader hashes them on all CPUs
//! (`std::thread::scope`, one worker per CPU taking the next unhashed chunk
//! from a shared counter). When the bytes are a file mapping, reading the
//! file (page faults) happens in the workers too, overlapped with hashing.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// `log2` of the chunk size: 2 MiB.
///
/// Measured (README, "Chunked digests"): the chunk size is a compromise
/// between balancing the workers (smaller is better: a 200 MiB initrd in
/// 2 MiB chunks is 100 pieces for 2 or 4 CPUs) and the per-chunk cost in
/// the purgatory (one finalisation and one 32-byte table read per chunk,
/// negligible above 64 KiB) and the table's size (32 bytes per chunk).
pub const CHUNK_SHIFT: u32 = handoff::params::LOADER_CHUNK_SHIFT;
/// The chunk size in bytes.
pub const CHUNK_SIZE: u64 = 1 << CHUNK_SHIFT;

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// The digests of the chunks of `padding` zero bytes followed by `bytes`
/// (a segment's buffer), in order, hashed on up to `workers` threads.
pub fn chunk_digests_with(
    padding: u64,
    bytes: &[u8],
    chunk_size: u64,
    workers: usize,
) -> Vec<Sha256Digest> {
    let total = padding.saturating_add(bytes.len() as u64);
    let chunk_size = chunk_size.max(1);
    let n = usize::try_from(total.div_ceil(chunk_size)).unwrap_or(usize::MAX);
    let hash = |i: usize| -> Sha256Digest {
        let start = (i as u64).saturating_mul(chunk_size);
        let end = start.saturating_add(chunk_size).min(total);
        let mut h = Sha256::new();
        // The part of the chunk in the padding, then the part in `bytes`.
        let zeros = padding.min(end).saturating_sub(start);
        h.update(vec![0u8; usize::try_from(zeros).unwrap_or(0)]);
        let from = usize::try_from(start.max(padding) - padding).unwrap_or(usize::MAX);
        let to = usize::try_from(end.max(padding) - padding).unwrap_or(usize::MAX);
        h.update(bytes.get(from..to).unwrap_or_default());
        h.finalize().into()
    };
    let workers = workers.clamp(1, n.max(1));
    if workers == 1 {
        return (0..n).map(hash).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break done;
            }
            done.push((i, hash(i)));
        }
    };
    let mut out = vec![[0u8; 32]; n];
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in helpers {
            // A worker only hashes: it cannot panic short of memory
            // exhaustion, which aborts anyway.
            all.extend(h.join().unwrap_or_default());
        }
        for (i, d) in all {
            out[i] = d;
        }
    });
    out
}

/// The SHA-256 of `bytes`: a chunk's digest, for a caller hashing chunks
/// as it reads them (what [`chunk_digests`] computes per chunk).
pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256::digest(bytes).into()
}

/// [`chunk_digests_with`] with [`CHUNK_SIZE`] on every CPU.
pub fn chunk_digests(padding: u64, bytes: &[u8]) -> Vec<Sha256Digest> {
    chunk_digests_with(padding, bytes, CHUNK_SIZE, cpus())
}

/// CPUs this process may run on (1 when unknown).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251).to_le_bytes()[0]).collect()
    }

    /// A chunk's digest as a caller computes it: FIPS 180-2's "abc"
    /// vector, and what chunk_digests gives a one-chunk buffer.
    #[test]
    fn sha256_is_a_chunks_digest() {
        let abc: Vec<u8> = (0..32)
            .map(|i| {
                let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
            })
            .collect();
        assert_eq!(sha256(b"abc").to_vec(), abc);
        let chunk = pattern(12_345);
        assert_eq!(vec![sha256(&chunk)], chunk_digests(0, &chunk));
    }

    #[test]
    fn chunks_are_the_sha256_of_each_slice_with_the_padding_in_front() {
        let bytes = pattern(10_000);
        for padding in [0usize, 1, 999, 4096, 5000] {
            let mut whole = vec![0u8; padding];
            whole.extend_from_slice(&bytes);
            for chunk in [1000usize, 4096, 1 << 20] {
                let want: Vec<Sha256Digest> = whole
                    .chunks(chunk)
                    .map(|c| Sha256::digest(c).into())
                    .collect();
                for workers in [1, 2, 3, 8] {
                    assert_eq!(
                        chunk_digests_with(padding as u64, &bytes, chunk as u64, workers),
                        want,
                        "padding {padding} chunk {chunk} workers {workers}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_and_exact_multiples() {
        assert!(chunk_digests_with(0, &[], 4096, 4).is_empty());
        let d = chunk_digests_with(0, &[7u8; 8192], 4096, 2);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], d[1]);
        assert_eq!(d[0], <[u8; 32]>::from(Sha256::digest([7u8; 4096])));
        // Only padding.
        assert_eq!(
            chunk_digests_with(4096, &[], 4096, 2),
            vec![<[u8; 32]>::from(Sha256::digest([0u8; 4096]))]
        );
        assert_eq!(CHUNK_SIZE, 1 << CHUNK_SHIFT);
        assert!(cpus() >= 1);
    }
}

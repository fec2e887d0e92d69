//! Reading a kernel or initrd and hashing it at once: every CPU takes the
//! next [`CHUNK_SIZE`] chunk, reads it straight into its place in the
//! final buffer (`pread`) and hashes it, so reading one chunk overlaps
//! hashing another. The digests are the ones the plan's segments need
//! ([`kexec_core::digest::chunk_digests`] with no padding), handed to the
//! planner with the bytes (`Blob::digests`) so it does not hash again.
//!
//! Measured before (README, "Chunked digests"): a verified load read the
//! file, then hashed it on every CPU; the read alone was a third of the
//! load. This replaces the file mapping tried then, which was unsound as a
//! safe API (a `&[u8]` over a file another process may write).
//!
//! Only regular files whose size is known up front are read this way;
//! anything else (a pipe, `/dev/stdin`) is read to the end and hashed after.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use kexec_core::digest::{chunk_digests, cpus, sha256, Sha256Digest, CHUNK_SIZE};

/// A file's bytes and, when asked for, their chunk digests.
#[derive(Debug)]
pub(crate) struct HashedFile {
    pub bytes: Vec<u8>,
    pub digests: Option<Vec<Sha256Digest>>,
}

/// Bytes of the file [`read`]'s `hash` predicate sees: an arm64 Image
/// header.
pub(crate) const HEAD: usize = 64;

/// Reads `path`, hashing its chunks on every CPU as they are read when
/// `hash` says so, given the file's first [`HEAD`] bytes (or all of a
/// shorter file): a verified load, and for the kernel only a plain Image,
/// whose file is its segment (a compressed or packed kernel's digests
/// would be of the wrong bytes).
pub(crate) fn read(path: &Path, hash: impl FnOnce(&[u8]) -> bool) -> io::Result<HashedFile> {
    let mut file = File::open(path)?;
    let mut head = [0u8; HEAD];
    let mut got = 0;
    while got < HEAD {
        match file.read_at(&mut head[got..], got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    let hash = hash(&head[..got]);
    let meta = file.metadata()?;
    // procfs and sysfs files say 0 bytes: read those to the end too.
    let size = usize::try_from(meta.len())
        .ok()
        .filter(|&n| meta.is_file() && n > 0);
    let (Some(size), true) = (size, hash) else {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let digests = hash.then(|| chunk_digests(0, &bytes));
        return Ok(HashedFile { bytes, digests });
    };
    let (bytes, digests) = read_hashed(&file, size, cpus())?;
    if grew(&file, size)? {
        return Err(io::Error::other("the file changed while it was read"));
    }
    Ok(HashedFile {
        bytes,
        digests: Some(digests),
    })
}

/// `file` has more than `size` bytes: it grew while read, and its end was
/// not read (one that shrank fails the read itself).
fn grew(file: &File, size: usize) -> io::Result<bool> {
    Ok(file.read_at(&mut [0u8], size as u64)? != 0)
}

/// The first `size` bytes of `file` and their chunk digests, on `workers`
/// threads.
fn read_hashed(
    file: &File,
    size: usize,
    workers: usize,
) -> io::Result<(Vec<u8>, Vec<Sha256Digest>)> {
    let chunk = usize::try_from(CHUNK_SIZE).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; size];
    let n = size.div_ceil(chunk);
    let mut digests = vec![[0u8; 32]; n];
    {
        let queue = Mutex::new(bytes.chunks_mut(chunk).zip(digests.iter_mut()).enumerate());
        let failed: Mutex<Option<io::Error>> = Mutex::new(None);
        let work = || loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((i, (buf, digest))) = next else {
                break;
            };
            if let Err(e) = file.read_exact_at(buf, (i * chunk) as u64) {
                *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                break;
            }
            *digest = sha256(buf);
        };
        std::thread::scope(|s| {
            for _ in 1..workers.clamp(1, n.max(1)) {
                s.spawn(work);
            }
            work();
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::other("the file changed while it was read")
            } else {
                e
            });
        }
    }
    Ok((bytes, digests))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kexec-hashed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The bytes of the file and the digests the planner would compute,
    /// for sizes around the chunk size, on 1 to 3 threads.
    #[test]
    fn same_bytes_and_digests_as_reading_then_hashing() {
        let c = usize::try_from(CHUNK_SIZE).unwrap();
        for len in [0, 1, c - 1, c, c + 1, 3 * c + 12_345] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| u8::try_from((i % 251) ^ (i / 4096 % 256)).unwrap_or(0))
                .collect();
            let path = scratch(&format!("f{len}"), &bytes);
            let want = chunk_digests(0, &bytes);
            for workers in 1..=3 {
                let file = File::open(&path).unwrap();
                let (b, d) = read_hashed(&file, len, workers).unwrap();
                assert!(b == bytes, "len {len} workers {workers}");
                assert_eq!(d, want, "len {len} workers {workers}");
            }
            let hashed = read(&path, |_| true).unwrap();
            assert!(hashed.bytes == bytes);
            assert_eq!(hashed.digests.as_deref(), Some(&want[..]));
            let plain = read(&path, |_| false).unwrap();
            assert!(plain.bytes == bytes);
            assert_eq!(plain.digests, None);
        }
    }

    /// A file shorter than its size said (it shrank) or longer (it grew)
    /// is an error, not a short or stale buffer.
    #[test]
    fn a_file_that_changes_size_is_refused() {
        let c = usize::try_from(CHUNK_SIZE).unwrap();
        let path = scratch("shrunk", &vec![7u8; c + 10]);
        let file = File::open(&path).unwrap();
        let e = read_hashed(&file, c + 100, 2).unwrap_err();
        assert_eq!(e.to_string(), "the file changed while it was read");
        // Grown: more bytes than the size read first.
        let file = File::open(&path).unwrap();
        assert!(grew(&file, c).unwrap());
        assert!(!grew(&file, c + 10).unwrap());
    }

    /// The predicate sees the file's head: all of a short file, the first
    /// 64 bytes of a longer one.
    #[test]
    fn the_predicate_sees_the_head() {
        let long: Vec<u8> = (0..200u8).collect();
        for bytes in [&long[..10], &long[..]] {
            let path = scratch(&format!("head{}", bytes.len()), bytes);
            let mut seen = Vec::new();
            let r = read(&path, |h| {
                seen = h.to_vec();
                false
            })
            .unwrap();
            assert_eq!(seen, bytes[..bytes.len().min(HEAD)]);
            assert!(r.bytes == bytes && r.digests.is_none());
        }
    }

    /// Not a regular file: read to the end, hashed after.
    #[test]
    fn a_pipe_like_file_is_read_to_the_end() {
        let hashed = read(Path::new("/proc/self/cmdline"), |_| true).unwrap();
        assert!(!hashed.bytes.is_empty());
        assert_eq!(hashed.digests.unwrap(), chunk_digests(0, &hashed.bytes));
    }
}

//! Read-only file mappings: a large input (the initrd) is hashed straight
//! from the page cache, its pages faulted in by the hashing threads, instead
//! of being copied into a fresh buffer first.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// A whole regular file mapped read-only (`mmap(PROT_READ, MAP_PRIVATE)`),
/// seen as `&[u8]`; unmapped on drop.
///
/// The promise: the slice holds the file's bytes as long as no other process
/// writes or truncates the file while it is mapped. What breaks it, and what
/// then happens:
/// - a write by someone else may show through (`MAP_PRIVATE` only keeps
///   *our* writes private, and we make none): bytes hashed and bytes later
///   copied by `kexec_load` may then differ, and the purgatory, which
///   compares the digests of what the kernel copied, refuses to boot and
///   names the chunk: never a silent boot of other bytes;
/// - a truncation makes a read of the lost pages raise `SIGBUS`, which ends
///   the process before anything is loaded.
///
/// Both are what any reader of a file being rewritten risks (a `read(2)`
/// gets a torn copy instead); kexec's inputs are the administrator's boot
/// files. Callers that cannot accept this read the file instead.
#[derive(Debug)]
pub struct MappedFile {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value (unmapped only
// in Drop); reading it from several threads at once is reading shared
// immutable memory.
unsafe impl Send for MappedFile {}
// SAFETY: as above: `&MappedFile` only gives `&[u8]`.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps all of `file`. `Ok(None)` when it is not a regular file or is
    /// empty (nothing to map: read it instead).
    pub fn map(file: &File) -> io::Result<Option<Self>> {
        let meta = file.metadata()?;
        if !meta.file_type().is_file() || meta.len() == 0 {
            return Ok(None);
        }
        let len = usize::try_from(meta.len())
            .map_err(|_| io::Error::new(io::ErrorKind::FileTooLarge, "file larger than memory"))?;
        // SAFETY: a new mapping chosen by the kernel (addr NULL), read-only
        // and private, of an open descriptor we borrow for the call (the
        // mapping keeps its own reference to the file). Nothing aliases it
        // mutably: we never write through it. Its contents can still change
        // if another process writes the file, which the type's promise
        // documents (the purgatory's digests catch it).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Some(Self { ptr, len }))
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is the start of a live read-only mapping of `len`
        // bytes owned by `self` (unmapped only in Drop, which needs `&mut
        // self`, so not while this borrow lives).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` created; no slice of it
        // outlives `self` (Deref borrows `self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_a_file_and_refuses_what_it_cannot() {
        let dir = std::env::temp_dir().join(format!("kexec-sys-mmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let m = MappedFile::map(&File::open(&path).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(&m[..], &bytes[..]);
        // Readable from several threads.
        std::thread::scope(|s| {
            let a = s.spawn(|| m[..5000].to_vec());
            assert_eq!(a.join().unwrap(), &bytes[..5000]);
        });
        drop(m);
        let empty = dir.join("empty");
        std::fs::File::create(&empty).unwrap();
        assert!(MappedFile::map(&File::open(&empty).unwrap())
            .unwrap()
            .is_none());
        // A directory is not a regular file.
        assert!(MappedFile::map(&File::open(&dir).unwrap())
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

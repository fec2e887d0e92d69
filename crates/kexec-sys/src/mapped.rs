//! Reading a file through read-only mappings: how a crash kernel reads
//! `/proc/vmcore` quickly.
//!
//! `read(2)` of `/proc/vmcore` maps and unmaps the old kernel's memory one
//! page at a time (fs/proc/vmcore.c `read_from_oldmem` →
//! arch/arm64/kernel/crash_dump.c `copy_oldmem_page`: a `memremap` and an
//! unmap, with its TLB invalidation, per 4 KiB); `mmap(2)` of it maps whole
//! ranges at once (`mmap_vmcore` → `remap_oldmem_pfn_range`), which is why
//! makedumpfile prefers it. Under QEMU's TCG the difference is ~8 MB/s
//! against hundreds.
//!
//! The bytes are copied out of each mapping with volatile loads into a
//! buffer the caller borrows: no reference to mapped memory is ever made,
//! so another party changing the file while it is read can only change the
//! bytes seen, never break Rust's aliasing rules. (A file truncated under
//! the mapping kills the process with SIGBUS: not memory unsafety.)

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// The dump a crash kernel exports (fs/proc/vmcore.c).
pub const VMCORE: &str = "/proc/vmcore";

/// Reads all of `/proc/vmcore` with [`read_mapped`].
pub fn read_vmcore_mapped(window: usize, each: impl FnMut(&[u8])) -> io::Result<u64> {
    let file = File::open(VMCORE)?;
    read_mapped(&file, window, each)
}

/// Reads all of `file` (its length when called) through read-only mappings
/// of about `window` bytes (rounded up to whole pages), handing the bytes
/// of each window to `each`, in order; a tail shorter than a page is read
/// with `pread`. Returns the number of bytes read.
pub fn read_mapped(file: &File, window: usize, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let size = file.metadata()?.len();
    let page = page_size()?;
    let window = window.max(page).next_multiple_of(page);
    let mut buf = vec![0u8; window];
    let mut offset = 0u64;
    while offset < size {
        let left = size - offset;
        let len = usize::try_from(left).map_or(window, |l| l.min(window));
        let mapped = len - len % page;
        let done = if mapped == 0 {
            file.read_exact_at(&mut buf[..len], offset)?;
            len
        } else {
            copy_mapped(file, offset, &mut buf[..mapped])?;
            mapped
        };
        each(&buf[..done]);
        offset += done as u64;
    }
    Ok(offset)
}

fn page_size() -> io::Result<usize> {
    // SAFETY: sysconf takes no pointer and has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(io::Error::last_os_error)
}

/// Copies `out.len()` bytes (a multiple of the page size) of `file` from
/// `offset` (page aligned) into `out` through one read-only mapping.
fn copy_mapped(file: &File, offset: u64, out: &mut [u8]) -> io::Result<()> {
    let off = libc::off_t::try_from(offset)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a fresh private read-only mapping chosen by the kernel
    // (address null), of a descriptor we borrow for the call; no pointer of
    // ours is passed in. The result is checked against MAP_FAILED.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            out.len(),
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            off,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let words = ptr.cast::<u64>();
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        // SAFETY: the mapping is `out.len()` bytes long, page aligned (so
        // u64 aligned), and readable; `i * 8 + 8 <= out.len()`. The load is
        // volatile: the bytes may change under us, and no reference to them
        // is made.
        let word = unsafe { std::ptr::read_volatile(words.add(i)) };
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // SAFETY: unmaps exactly the mapping made above, which nothing refers to
    // any more.
    if unsafe { libc::munmap(ptr, out.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "kexec-sys-mapped-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        let mut f = File::create(&path).unwrap();
        f.write_all(bytes).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    /// Every byte, in order, whatever the window and whatever the tail.
    #[test]
    fn reads_every_byte_in_order() {
        let page = page_size().unwrap();
        for len in [0, 1, 7, page - 1, page, page + 1, 3 * page + 5, 10 * page] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| ((i * 7 + i / 251) % 256).to_le_bytes()[0])
                .collect();
            let f = file_of(&bytes);
            for window in [1, page, 2 * page + 1, 64 * page] {
                let mut seen = Vec::new();
                let mut calls = 0;
                let n = read_mapped(&f, window, |b| {
                    seen.extend_from_slice(b);
                    calls += 1;
                })
                .unwrap();
                assert_eq!(n, len as u64, "len {len} window {window}");
                assert_eq!(seen, bytes, "len {len} window {window}");
                // Whole windows, then at most one mapped remainder and a tail.
                let w = window.max(page).next_multiple_of(page);
                assert!(calls <= len / w + 2, "len {len} window {window}: {calls}");
            }
        }
    }
}

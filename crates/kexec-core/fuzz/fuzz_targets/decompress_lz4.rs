//! Fuzz target: the lz4 legacy decoder never panics and respects its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap (an input may make the
/// code fill this much: at 16 MiB the slowest targets ran ~5 k inputs/s),
/// larger than any seed's output (the kernel-head seeds are 16 KiB).
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = kexec_core::decompress::unlz4_legacy(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});

//! Fuzz target: the xz decoder never panics and respects its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap, large enough for real streams.
const LIMIT: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = kexec_core::decompress::unxz(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});

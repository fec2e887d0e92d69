//! Fuzz target: zboot parsing and payload decoding never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap (an input may make the
/// code fill this much: at 16 MiB the slowest targets ran ~5 k inputs/s),
/// larger than any seed's output (the kernel-head seeds are 16 KiB).
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = kexec_core::zboot::ZbootHeader::parse(data) {
        let _ = header.payload(data);
    }
    if let Ok((_, out)) = kexec_core::zboot::decompress(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});

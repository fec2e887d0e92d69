//! Fuzz target: zboot parsing and payload decoding never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap, large enough for real streams.
const LIMIT: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = kexec_core::zboot::ZbootHeader::parse(data) {
        let _ = header.payload(data);
    }
    if let Ok((_, out)) = kexec_core::zboot::decompress(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});

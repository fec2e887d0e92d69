//! Fuzz target: detection and loading of any kernel format never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit: small enough that bombs are cheap (an input may make the
/// code fill this much: at 16 MiB the slowest targets ran ~5 k inputs/s),
/// larger than any seed's output (the kernel-head seeds are 16 KiB).
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(kernel) = kexec_core::kernel::decode_with_limit(data, LIMIT) {
        assert!(kernel.image.len() <= LIMIT.max(data.len()));
        assert_eq!(
            kernel.header,
            kexec_core::image::Arm64ImageHeader::parse(&kernel.image).unwrap()
        );
    }
});

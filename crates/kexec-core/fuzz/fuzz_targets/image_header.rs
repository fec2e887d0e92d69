//! Fuzz target: `Arm64ImageHeader::parse` never panics and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = kexec_core::image::Arm64ImageHeader::parse(data) {
        assert_eq!(header.to_bytes()[..], data[..64]);
        let _ = header.effective_image_size(data.len() as u64);
    }
});

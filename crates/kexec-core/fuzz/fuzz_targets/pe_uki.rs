//! Fuzz target: UKI (PE) parsing never panics; sections lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(uki) = kexec_core::pe::Uki::parse(data) {
        assert!(uki.linux.len() <= data.len());
    }
});

//! Fuzz target: UKI (PE) parsing never panics; sections lie inside the input;
//! reading the certificate table (`pe::certificate_table`) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((_, size)) = kexec_core::pe::certificate_table(data) {
        assert_ne!(size, 0);
    }
    if let Ok(uki) = kexec_core::pe::Uki::parse(data) {
        assert!(uki.linux.len() <= data.len());
    }
});

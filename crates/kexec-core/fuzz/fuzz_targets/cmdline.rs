//! Fuzz target: command-line reuse and building never panic; what `build`
//! accepts fits COMMAND_LINE_SIZE with its NUL.
#![no_main]

use kexec_core::cmdline::{build, reused, split_params};
use kexec_core::layout::COMMAND_LINE_SIZE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (old, append) = match data.iter().position(|&b| b == 1) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let _ = split_params(old);
    let crash = data.first().is_some_and(|b| b & 1 == 1);
    let base = reused(old, crash);
    if let Ok(Some(line)) = build(Some(&base), Some(append)) {
        assert!(!line.is_empty());
        assert!(line.len() < COMMAND_LINE_SIZE);
        assert!(!line.contains(&0));
    }
});

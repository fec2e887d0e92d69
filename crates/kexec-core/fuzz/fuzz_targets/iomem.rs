//! Fuzz target: `/proc/iomem` parsing never panics; usable RAM stays inside
//! System RAM and avoids every reserved range.
#![no_main]

use kexec_core::iomem::{parse, CRASH_KERNEL, RESERVED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(map) = parse(text) {
        let ram = map.system_ram();
        let holes: Vec<_> = map
            .all()
            .into_iter()
            .filter(|r| r.name == RESERVED || r.name == CRASH_KERNEL)
            .map(|r| r.range())
            .collect();
        for u in map.usable_ram() {
            assert!(ram.iter().any(|r| r.contains_range(&u)));
            assert!(holes.iter().all(|h| !h.overlaps(&u)));
        }
    }
});

//! Fuzz target: `/chosen` editing never panics; an accepted blob edits to a
//! blob that parses again and reports the initrd we wrote.
#![no_main]

use kexec_core::fdt::{chosen_initrd, edit_chosen, parse, ChosenEdit, CrashChosen};
use kexec_core::iomem::MemoryRange;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let crash = data.first().is_some_and(|b| b & 1 == 1);
    let initrd = MemoryRange::with_size(0x4800_0000, 0x10_0000);
    let edit = ChosenEdit {
        bootargs: Some("console=ttyAMA0".into()),
        initrd: Some(initrd),
        kaslr_seed: Some(0x1234),
        rng_seed: Some(vec![7; 32]),
        crash: crash.then(|| CrashChosen {
            elfcorehdr: Some(MemoryRange::with_size(0x7f00_0000, 0x1_0000)),
            usable: vec![MemoryRange::new(0x7000_0000, 0x8000_0000)],
        }),
    };
    if let Ok(out) = edit_chosen(data, &edit) {
        assert!(parse(&out.dtb).is_ok());
        assert_eq!(chosen_initrd(&out.dtb).ok().flatten(), Some(initrd));
    }
});

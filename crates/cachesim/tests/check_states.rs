//! The checkers of `cachesim::check` on machine states set up directly
//! (DRAM, cache lines, SCTLR and registers as "the old kernel left them"),
//! each at the exact address, place and message a handoff bug would leave:
//! booting.rst's "Call the kernel image" rules, one state per rule and one
//! just inside it that passes.

use cachesim::check::{
    check_code, check_cpu, check_data, check_mmu_off, execute_and_compare, Expected, Location,
};
use cachesim::{CacheConfig, Level, MemorySystem, Rule, Sctlr, Violation};

/// Where the image lies; 64-byte lines on `a57-like`.
const IMG: u64 = 0x4020_0000;
const DTB: u64 = 0x4800_0000;
const SEED: u64 = 7;

/// Four lines of distinct bytes.
fn image() -> Vec<u8> {
    (0..=255u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(1))
        .collect()
}

/// A machine whose DRAM holds the image, with empty caches.
fn loaded(img: &[u8]) -> MemorySystem {
    let mut m = MemorySystem::new(CacheConfig::named("a57-like").unwrap(), SEED);
    m.dram_write(IMG, img);
    m
}

/// The image's bytes `[off, off + 64)`, with byte `flip` (if any) changed.
fn line_of(img: &[u8], off: usize, flip: Option<usize>) -> Vec<u8> {
    let mut l = img[off..off + 64].to_vec();
    if let Some(i) = flip {
        l[i] ^= 0xff;
    }
    l
}

fn at(v: &Violation) -> (Rule, Option<u64>, Location) {
    (v.rule, v.addr, v.location)
}

#[test]
fn image_at_the_poc_with_clean_copies_passes() {
    let img = image();
    let mut m = loaded(&img);
    m.seed_dline(Level::L1, IMG + 0x40, false, &line_of(&img, 0x40, None));
    m.seed_dline(Level::L2, IMG + 0xc0, false, &line_of(&img, 0xc0, None));
    let e = Expected {
        addr: IMG,
        bytes: &img,
    };
    assert_eq!(check_data(&m, SEED, &[e]), Ok(()));
}

#[test]
fn wrong_byte_in_dram() {
    let img = image();
    let mut m = loaded(&img);
    m.dram_write(IMG + 0x45, &[0]);
    let e = Expected {
        addr: IMG,
        bytes: &img,
    };
    let v = check_data(&m, SEED, &[e]).unwrap_err();
    assert_eq!(at(&v), (Rule::NotAtPoc, Some(IMG + 0x45), Location::Dram));
    assert_eq!(
        v.detail,
        format!("DRAM has 0x00, intended {:#04x}", img[0x45])
    );
    assert_eq!((v.config, v.seed), ("a57-like", SEED));
}

#[test]
fn intended_bytes_only_in_a_cache() {
    // DRAM is wrong at 0x45; L1 holds a stale copy of that line, L2 the
    // intended one: the report names L2, where the data is.
    let img = image();
    for (dirty, how) in [(true, "still dirty"), (false, "only")] {
        let mut m = loaded(&img);
        m.dram_write(IMG + 0x45, &[0]);
        m.seed_dline(Level::L1, IMG + 0x40, false, &line_of(&img, 0x40, Some(9)));
        m.seed_dline(Level::L2, IMG + 0x40, dirty, &line_of(&img, 0x40, None));
        let e = Expected {
            addr: IMG,
            bytes: &img,
        };
        let v = check_data(&m, SEED, &[e]).unwrap_err();
        assert_eq!(
            at(&v),
            (Rule::NotAtPoc, Some(IMG + 0x45), Location::Data(Level::L2))
        );
        assert_eq!(
            v.detail,
            format!(
                "DRAM has 0x00, intended {:#04x}; the intended data is {how} in L2",
                img[0x45]
            )
        );
    }
}

#[test]
fn dirty_line_even_with_the_intended_bytes() {
    let img = image();
    let mut m = loaded(&img);
    m.seed_dline(Level::L2, IMG + 0x80, true, &line_of(&img, 0x80, None));
    let e = Expected {
        addr: IMG,
        bytes: &img,
    };
    let v = check_data(&m, SEED, &[e]).unwrap_err();
    assert_eq!(
        at(&v),
        (Rule::DirtyLine, Some(IMG + 0x80), Location::Data(Level::L2))
    );
    assert_eq!(v.detail, "line 0x40200080 is dirty in L2");
}

#[test]
fn stale_clean_line_at_its_first_wrong_byte() {
    let img = image();
    let mut m = loaded(&img);
    m.seed_dline(Level::L1, IMG + 0x80, false, &line_of(&img, 0x80, Some(5)));
    let e = Expected {
        addr: IMG,
        bytes: &img,
    };
    let v = check_data(&m, SEED, &[e]).unwrap_err();
    assert_eq!(
        at(&v),
        (
            Rule::StaleCleanLine,
            Some(IMG + 0x85),
            Location::Data(Level::L1)
        )
    );
    assert_eq!(
        v.detail,
        "clean line 0x40200080 in L1D differs from the image"
    );
}

#[test]
fn bytes_outside_every_image_are_not_compared() {
    // Two images half a line each, 0x20 bytes apart, in one line: a clean
    // line whose bytes differ only in the gap and past the end passes; one
    // wrong byte of the second image does not.
    let img = image();
    let mut m = loaded(&img);
    let (a, b) = (&img[..0x10], &img[0x30..0x40]);
    let mut line = line_of(&img, 0, None);
    for byte in &mut line[0x10..0x30] {
        *byte = 0xee;
    }
    m.seed_dline(Level::L1, IMG, false, &line);
    let images = [
        Expected {
            addr: IMG,
            bytes: a,
        },
        Expected {
            addr: IMG + 0x30,
            bytes: b,
        },
    ];
    assert_eq!(check_data(&m, SEED, &images), Ok(()));
    line[0x33] ^= 1;
    m.seed_dline(Level::L1, IMG, false, &line);
    let v = check_data(&m, SEED, &images).unwrap_err();
    assert_eq!(
        at(&v),
        (
            Rule::StaleCleanLine,
            Some(IMG + 0x33),
            Location::Data(Level::L1)
        )
    );
}

#[test]
fn stale_icache_and_fetch_buffer_lines() {
    let img = image();
    let code = Expected {
        addr: IMG,
        bytes: &img,
    };
    let mut m = loaded(&img);
    m.seed_iline(IMG + 0x40, 0, &line_of(&img, 0x40, None));
    m.seed_fetch_buffer(IMG + 0x80, &line_of(&img, 0x80, None));
    assert_eq!(check_code(&m, SEED, code), Ok(()));

    m.seed_iline(IMG + 0xc0, 3, &line_of(&img, 0xc0, Some(0x21)));
    let v = check_code(&m, SEED, code).unwrap_err();
    assert_eq!(
        at(&v),
        (Rule::StaleICache, Some(IMG + 0xe1), Location::ICache(3))
    );
    assert_eq!(
        v.detail,
        "I-cache line 0x402000c0 (tag 3) differs from the code"
    );

    let mut m = loaded(&img);
    m.seed_fetch_buffer(IMG + 0x40, &line_of(&img, 0x40, Some(2)));
    let v = check_code(&m, SEED, code).unwrap_err();
    assert_eq!(
        at(&v),
        (
            Rule::StaleFetchBuffer,
            Some(IMG + 0x42),
            Location::FetchBuffer
        )
    );
    assert_eq!(
        v.detail,
        "fetched-ahead line 0x40200040 differs from the code"
    );
}

#[test]
fn sctlr_at_the_branch() {
    let img = image();
    let mut m = loaded(&img);
    assert_eq!(check_mmu_off(&m, SEED, "to the purgatory"), Ok(()));
    let on = |m: bool, c: bool, i: bool| Sctlr { m, c, i };
    m.write_sctlr(on(false, false, false));
    let v = check_mmu_off(&m, SEED, "to the purgatory").unwrap_err();
    assert_eq!(
        at(&v),
        (Rule::SctlrNotSynchronised, None, Location::Register)
    );
    assert_eq!(
        v.detail,
        "SCTLR write --- issued but no ISB before the branch to the purgatory"
    );
    m.isb();
    assert_eq!(check_mmu_off(&m, SEED, "to the purgatory"), Ok(()));
    // The I-cache may stay on (booting.rst); M or C alone may not.
    for (s, shown) in [
        (on(false, false, true), None),
        (on(true, false, false), Some("M--")),
        (on(false, true, false), Some("-C-")),
    ] {
        m.write_sctlr(s);
        m.isb();
        let got = check_mmu_off(&m, SEED, "to the kernel");
        match shown {
            None => assert_eq!(got, Ok(())),
            Some(shown) => {
                let v = got.unwrap_err();
                assert_eq!(at(&v), (Rule::MmuOn, None, Location::Register));
                assert_eq!(
                    v.detail,
                    format!("SCTLR is {shown} at the branch to the kernel")
                );
            }
        }
    }
}

#[test]
fn boot_registers() {
    let img = image();
    let mut m = loaded(&img);
    m.set_reg(0, DTB);
    assert_eq!(check_cpu(&m, SEED, DTB), Ok(()));
    for r in 1..4u8 {
        m.set_reg(r, 1);
        let v = check_cpu(&m, SEED, DTB).unwrap_err();
        assert_eq!(at(&v), (Rule::BootRegisters, None, Location::Register));
        m.set_reg(r, 0);
    }
    m.set_reg(3, 0x10);
    let v = check_cpu(&m, SEED, DTB + 0x1000).unwrap_err();
    assert_eq!(
        v.detail,
        "x0..x3 = 0x48000000 0x0 0x0 0x10, want 0x48001000 0 0 0"
    );
    // SCTLR is checked first.
    m.write_sctlr(Sctlr {
        m: false,
        c: false,
        i: false,
    });
    assert_eq!(
        check_cpu(&m, SEED, DTB).unwrap_err().rule,
        Rule::SctlrNotSynchronised
    );
}

#[test]
fn executed_code_is_compared_up_to_len() {
    let img = image();
    let code = Expected {
        addr: IMG,
        bytes: &img,
    };
    let mut m = loaded(&img);
    assert_eq!(execute_and_compare(&mut m, SEED, code, 4096), Ok(()));
    let mut m = loaded(&img);
    m.dram_write(IMG + 0x90, &[0]);
    // The first 0x90 bytes are right.
    assert_eq!(execute_and_compare(&mut m, SEED, code, 0x90), Ok(()));
    let v = execute_and_compare(&mut m, SEED, code, 0x91).unwrap_err();
    assert_eq!(
        at(&v),
        (
            Rule::StaleCodeExecuted,
            Some(IMG + 0x90),
            Location::ICache(0)
        )
    );
    assert_eq!(
        v.detail,
        format!("fetched 0x00, intended {:#04x}", img[0x90])
    );
}

#[test]
fn messages() {
    let mut shown: Vec<String> = Rule::ALL.iter().map(ToString::to_string).collect();
    assert!(shown.iter().all(|s| !s.is_empty()), "{shown:?}");
    shown.sort();
    shown.dedup();
    assert_eq!(shown.len(), Rule::ALL.len(), "two rules read the same");
    assert_eq!(Rule::NotAtPoc.to_string(), "image not visible at the PoC");

    for (l, s) in [
        (Location::Dram, "DRAM"),
        (Location::Data(Level::System), "system cache"),
        (Location::ICache(2), "I-cache (tag 2)"),
        (Location::FetchBuffer, "fetch buffer"),
        (Location::Register, "register"),
    ] {
        assert_eq!(l.to_string(), s);
    }

    // A violation shows its rule, address, place, configuration and seed,
    // its detail, and the events touching the address.
    let img = image();
    let mut m = loaded(&img);
    m.seed_dline(Level::L2, IMG + 0x80, true, &line_of(&img, 0x80, None));
    m.isb();
    let e = Expected {
        addr: IMG,
        bytes: &img,
    };
    let v = check_data(&m, SEED, &[e]).unwrap_err();
    assert_eq!(v.timeline.len(), 1, "{v}");
    let (step, event) = &v.timeline[0];
    assert_eq!(
        v.to_string(),
        format!(
            "VIOLATION: dirty line left in a loaded range at 0x40200080 in L2 \
             [config a57-like, seed 7]\n  line 0x40200080 is dirty in L2\n  \
             timeline (step: event), last 1 relevant:\n    {step:>7}: {event}\n"
        )
    );
    let no_addr = check_mmu_off(
        &{
            let mut m = loaded(&img);
            m.write_sctlr(Sctlr {
                m: true,
                c: false,
                i: false,
            });
            m
        },
        SEED,
        "to the kernel",
    )
    .unwrap_err();
    assert!(
        no_addr
            .to_string()
            .starts_with("VIOLATION: SCTLR write not synchronised (no ISB) in register [config a57-like, seed 7]\n"),
        "{no_addr}"
    );
}

//! Host tests of the header's byte layout, its validation and the chunks
//! of the digest table.

extern crate std;

use std::vec;
use std::vec::Vec;

use crate::params::*;

fn one_segment(len: u64) -> HandoffParams {
    let mut p = HandoffParams {
        entry: 0x4020_0000,
        dtb: 0x4800_0000,
        uart: 0x0900_0000,
        flags: Flags(Flags::FORCE_SOFT_SHA256),
        ..Default::default()
    };
    p.push_segment(SegmentRange {
        addr: 0x4020_0000,
        len,
    })
    .unwrap();
    p
}

#[test]
fn header_layout_bytes() {
    let mut p = one_segment(0x1234);
    p.set_digest_table(12, 0x2_0000).unwrap();
    p.psci = Conduit::Smc;
    p.push_secondary(0x1).unwrap();
    p.push_secondary(0x1_0000_0100).unwrap();
    let h = PurgatoryHeader {
        mem_size: 0x2_0000,
        params: p.clone(),
    };
    let b = h.encode().unwrap();
    assert_eq!(b.len(), 0x190);
    #[rustfmt::skip]
    let want_head: [u8; 0x50] = [
        b'K', b'X', b'P', b'U', b'R', b'G', b'0', b'1', // 0x00: magic
        0x03, 0x00, 0x00, 0x00,                         // 0x08: version 3
        0x90, 0x01, 0x00, 0x00,                         // 0x0c: header size 0x190
        0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x10: mem_size 0x20000
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x18: flags FORCE_SOFT_SHA256
        0x00, 0x00, 0x20, 0x40, 0x00, 0x00, 0x00, 0x00, // 0x20: entry 0x40200000
        0x00, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00, 0x00, // 0x28: dtb 0x48000000
        0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, // 0x30: uart 0x09000000
        0x01, 0x00, 0x00, 0x00,                         // 0x38: nr_segments 1
        0x0c, 0x00, 0x00, 0x00,                         // 0x3c: chunk_shift 12
        0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x40: digests_offset 0x20000
        0x02, 0x00, 0x00, 0x00,                         // 0x48: nr_digests 2
        0x00, 0x00, 0x00, 0x00,                         // 0x4c: reserved
    ];
    assert_eq!(&b[..0x50], &want_head);
    #[rustfmt::skip]
    let want_seg0: [u8; 16] = [
        0x00, 0x00, 0x20, 0x40, 0x00, 0x00, 0x00, 0x00, // 0x50: segments[0].addr
        0x34, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x58: segments[0].len
    ];
    assert_eq!(&b[0x50..0x60], &want_seg0);
    assert!(b[0x60..0x150].iter().all(|&x| x == 0));
    #[rustfmt::skip]
    let want_smp: [u8; 0x18] = [
        0x02, 0x00, 0x00, 0x00,                         // 0x150: psci: SMC
        0x02, 0x00, 0x00, 0x00,                         // 0x154: nr_secondaries 2
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x158: secondaries[0]
        0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // 0x160: secondaries[1]
    ];
    assert_eq!(&b[0x150..0x168], &want_smp);
    assert!(b[0x168..].iter().all(|&x| x == 0));
    assert_eq!(PurgatoryHeader::decode(&b), Ok(h));
}

#[test]
fn chunks_cut_each_segment_in_table_order() {
    let mut p = HandoffParams::default();
    for (addr, len) in [(0x1000u64, 0x2001u64), (0x9000, 0), (0x8_0000, 0x1000)] {
        p.push_segment(SegmentRange { addr, len }).unwrap();
    }
    p.set_digest_table(12, 0x10_0000).unwrap();
    assert_eq!(p.nr_digests, 4);
    assert_eq!(p.digest_table_len(), 4 * 32);
    let got: Vec<_> = p
        .chunks()
        .map(|c| (c.segment, c.index, c.digest, c.addr, c.len, c.end()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 0, 0x1000, 0x1000, 0x2000),
            (0, 1, 1, 0x2000, 0x1000, 0x3000),
            (0, 2, 2, 0x3000, 0x1, 0x3001),
            (2, 0, 3, 0x8_0000, 0x1000, 0x8_1000),
        ]
    );
    assert_eq!(chunk_count(0, 12), 0);
    assert_eq!(chunk_count(1, 12), 1);
    assert_eq!(chunk_count(0x1000, 12), 1);
    assert_eq!(chunk_count(0x1001, 12), 2);
    assert_eq!(chunk_count(u64::MAX, 63), 2);
    assert_eq!(chunk_count(u64::MAX, 64), 1);
    assert_eq!(chunk_count(0, 64), 0);
    assert_eq!(p.chunk_size(), 0x1000);
    p.chunk_shift = 64;
    assert_eq!(p.chunk_size(), u64::MAX);
}

#[test]
fn header_errors() {
    let h = PurgatoryHeader {
        mem_size: 0,
        params: HandoffParams::default(),
    };
    let good = h.encode().unwrap();
    assert_eq!(
        PurgatoryHeader::decode(&good[..10]),
        Err(HeaderError::Truncated(10))
    );
    let mut b = good;
    b[0] = b'X';
    assert_eq!(PurgatoryHeader::decode(&b), Err(HeaderError::BadMagic));
    let mut b = good;
    b[8] = 1;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::UnsupportedVersion(1))
    );
    let mut b = good;
    b[0xc] = 0x40;
    b[0xd] = 0x03;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::BadSize(0x340))
    );
    let mut b = good;
    b[0x38] = 17;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::TooManySegments(17))
    );
    let mut b = good;
    b[0x18] = 0x80;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::UnknownFlags(0x80))
    );
    let mut p = HandoffParams::default();
    p.push_segment(SegmentRange {
        addr: u64::MAX,
        len: 2,
    })
    .unwrap();
    assert_eq!(
        PurgatoryHeader {
            mem_size: 0,
            params: p
        }
        .encode(),
        Err(HeaderError::SegmentWraps(0))
    );
    let mut full = HandoffParams::default();
    for _ in 0..MAX_SEGMENTS {
        full.push_segment(SegmentRange::default()).unwrap();
    }
    assert_eq!(
        full.push_segment(SegmentRange::default()),
        Err(HeaderError::TooManySegments(17))
    );
}

#[test]
fn secondary_cpu_errors() {
    let with = |psci: Conduit, cpus: &[u64]| {
        let mut p = HandoffParams {
            psci,
            ..HandoffParams::default()
        };
        for &c in cpus {
            p.push_secondary(c).unwrap();
        }
        PurgatoryHeader {
            mem_size: 0,
            params: p,
        }
    };
    let good = with(Conduit::Hvc, &[1, 2]).encode().unwrap();
    assert_eq!(good[0x150], 1);
    let mut b = good;
    b[0x150] = 3;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::UnknownConduit(3))
    );
    let mut b = good;
    b[0x154] = 8;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::TooManySecondaries(8))
    );
    let mut b = good;
    b[0x154] = 7;
    assert_eq!(
        PurgatoryHeader::decode(&b),
        Err(HeaderError::BadSecondary(0)),
        "the five zero entries repeat CPU 0"
    );
    assert_eq!(
        with(Conduit::None, &[1]).encode(),
        Err(HeaderError::SecondariesWithoutPsci)
    );
    assert_eq!(
        with(Conduit::Smc, &[1, 0x100_0000]).encode(),
        Err(HeaderError::BadSecondary(0x100_0000)),
        "bits 31:24 are not affinity"
    );
    assert_eq!(
        with(Conduit::Smc, &[0x1_0000_0000, 0x1_0000_0000]).encode(),
        Err(HeaderError::BadSecondary(0x1_0000_0000))
    );
    let all: [u64; MAX_SECONDARIES] = core::array::from_fn(|i| 0xff_00ff_ff00 + i as u64);
    let h = with(Conduit::Smc, &all);
    assert_eq!(PurgatoryHeader::decode(&h.encode().unwrap()), Ok(h.clone()));
    let mut p = h.params;
    assert_eq!(p.push_secondary(1), Err(HeaderError::TooManySecondaries(8)));
    assert_eq!(Conduit::from_code(2), Some(Conduit::Smc));
    assert_eq!(Conduit::from_code(0), Some(Conduit::None));
}

#[test]
fn digest_table_errors() {
    let header = |p: HandoffParams| PurgatoryHeader {
        mem_size: 0x2_0000,
        params: p,
    };
    let mut p = one_segment(0x3000);
    p.set_digest_table(12, 0x2_0000).unwrap();
    assert_eq!(p.nr_digests, 3);
    assert!(header(p.clone()).encode().is_ok());
    // One digest short, one too many.
    for n in [2, 4] {
        let q = HandoffParams {
            nr_digests: n,
            ..p.clone()
        };
        assert_eq!(
            validate(&q),
            Err(HeaderError::DigestCount {
                expected: 3,
                found: n
            })
        );
    }
    // The chunk size's bounds.
    for (shift, ok) in [(11, false), (12, true), (32, true), (33, false)] {
        let mut q = p.clone();
        q.set_digest_table(shift, 0x2_0000).unwrap();
        assert_eq!(
            validate(&q).is_ok(),
            ok,
            "shift {shift}: {:?}",
            validate(&q)
        );
        if !ok {
            assert_eq!(validate(&q), Err(HeaderError::BadChunkShift(shift)));
        }
    }
    // No segment: no chunk size needed (the link-time header is all zero).
    assert_eq!(validate(&HandoffParams::default()), Ok(()));
    // NO_VERIFY: no table at all.
    let mut q = p.clone();
    q.flags = Flags(Flags::NO_VERIFY);
    assert_eq!(
        validate(&q),
        Err(HeaderError::DigestCount {
            expected: 0,
            found: 3
        })
    );
    q.set_digest_table(0, 0).unwrap();
    assert_eq!(q.nr_digests, 0);
    assert_eq!(validate(&q), Ok(()));
    // Misaligned, wrapping, or over the purgatory's own memory.
    for off in [0x2_0004, u64::MAX - 0x40] {
        let mut q = p.clone();
        q.digests_offset = off;
        assert_eq!(validate(&q), Err(HeaderError::BadDigestTable(off)));
    }
    let mut q = p.clone();
    q.digests_offset = 0x1_fff8;
    assert_eq!(validate(&q), Ok(()));
    assert_eq!(
        header(q).encode(),
        Err(HeaderError::BadDigestTable(0x1_fff8))
    );
    // Too many chunks for the u32 count.
    let mut q = one_segment(1 << 45);
    assert_eq!(
        q.set_digest_table(12, 0),
        Err(HeaderError::TooManyDigests(1 << 33))
    );
    let msg = std::format!("{}", HeaderError::BadChunkShift(5));
    assert_eq!(msg, "digest chunk shift 5, expected 12..=32");
}

#[test]
fn patch_image_keeps_link_time_fields() {
    let linked = PurgatoryHeader {
        mem_size: 0x5000,
        params: HandoffParams::default(),
    };
    let mut image = vec![0u8; HEADER_OFFSET + HEADER_SIZE + 16];
    image[HEADER_OFFSET..HEADER_OFFSET + HEADER_SIZE].copy_from_slice(&linked.encode().unwrap());
    let p = HandoffParams {
        entry: 0x1000,
        dtb: 0x2000,
        ..Default::default()
    };
    PurgatoryHeader::patch_image(&mut image, &p).unwrap();
    let got = PurgatoryHeader::decode(&image[HEADER_OFFSET..]).unwrap();
    assert_eq!(
        got,
        PurgatoryHeader {
            mem_size: 0x5000,
            params: p
        }
    );
}

#[test]
fn segment_records_follow_each_other() {
    let mut p = one_segment(0x1234);
    p.push_segment(SegmentRange {
        addr: 0x4800_0000,
        len: 0x10,
    })
    .unwrap();
    p.set_digest_table(12, 0x2_0000).unwrap();
    let h = PurgatoryHeader {
        mem_size: 0x2_0000,
        params: p,
    };
    let b = h.encode().unwrap();
    // segments[1] at 0x60: addr, then len.
    assert_eq!(&b[0x60..0x68], &0x4800_0000u64.to_le_bytes());
    assert_eq!(&b[0x68..0x70], &0x10u64.to_le_bytes());
    assert!(b[0x70..].iter().all(|&x| x == 0));
    assert_eq!(PurgatoryHeader::decode(&b), Ok(h));
}

/// Exactly [`MAX_SEGMENTS`] segments: accepted by `validate`, encoded and
/// decoded back (the bound is `>`, not `>=`).
#[test]
fn a_full_segment_table_round_trips() {
    let mut full = HandoffParams::default();
    for i in 0..MAX_SEGMENTS as u64 {
        full.push_segment(SegmentRange {
            addr: 0x4000_0000 + i * 0x10_0000,
            len: 0x1000,
        })
        .unwrap();
    }
    full.flags = Flags(Flags::NO_VERIFY);
    assert_eq!(validate(&full), Ok(()));
    let h = PurgatoryHeader {
        mem_size: 0x2_0000,
        params: full,
    };
    let bytes = h.encode().unwrap();
    assert_eq!(PurgatoryHeader::decode(&bytes), Ok(h));
}

/// `patch_image` takes an image that ends right after the header, and
/// refuses one byte less as truncated.
#[test]
fn patch_image_needs_the_whole_header_and_no_more() {
    let linked = PurgatoryHeader {
        mem_size: 0x5000,
        params: HandoffParams::default(),
    };
    let end = HEADER_OFFSET + HEADER_SIZE;
    let mut image = vec![0u8; end];
    image[HEADER_OFFSET..].copy_from_slice(&linked.encode().unwrap());
    let p = HandoffParams {
        entry: 0x1000,
        ..Default::default()
    };
    assert_eq!(PurgatoryHeader::patch_image(&mut image, &p), Ok(()));
    let mut short = image[..end - 1].to_vec();
    assert_eq!(
        PurgatoryHeader::patch_image(&mut short, &p),
        Err(HeaderError::Truncated(end - 1))
    );
}

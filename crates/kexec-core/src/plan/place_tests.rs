//! Unit tests of the placer (`place.rs`): its fit search, its refusals and
//! their messages.

use super::super::tests::facts;
use super::*;
use crate::layout::{SZ_1G, SZ_1M, SZ_2M};

#[test]
fn lowest_fit_respects_alignment_and_offset() {
    let free = [MemoryRange::new(0x4010_0000, 0x8000_0000)];
    let all = MemoryRange::new(0, u64::MAX);
    assert_eq!(lowest_fit(&free, all, SZ_2M, SZ_2M, 0), Some(0x4020_0000));
    assert_eq!(
        lowest_fit(&free, all, SZ_2M, SZ_2M, 0x8_0000),
        Some(0x4020_0000 + 0x8_0000)
    );
    assert_eq!(lowest_fit(&free, all, SZ_1G, SZ_2M, 0), None);
}

#[test]
fn initrd_that_does_not_fit_is_explained() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    p.place_kernel("Image", &[0u8; 4096], facts(32 * SZ_1M))
        .unwrap();
    let err = p
        .place_initrd("big.img", &vec![0u8; 1200 << 20])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "initrd of 1200 MiB does not fit: largest free RAM range in usable RAM within the kernel's \
         32 GiB window is 0x42000000-0x7fffffff (992 MiB)"
    );
}

#[test]
fn place_blob_refuses_kinds_with_their_own_method() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M)).unwrap();
    assert_eq!(
        p.place_blob(SegmentKind::Kernel, "x", &[0]),
        Err(Error::DedicatedKind(SegmentKind::Kernel))
    );
    assert_eq!(
        p.place_blob(SegmentKind::Initrd, "x", &[0]),
        Ok(0x4020_0000)
    );
}

#[test]
fn kernel_not_first_is_refused() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    assert_eq!(
        p.place_initrd("i", &[1]),
        Err(Error::KernelNotPlaced(SegmentKind::Initrd))
    );
}

#[test]
fn seventeen_segments_are_refused() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M)).unwrap();
    for _ in 0..15 {
        p.place_blob(SegmentKind::ElfCoreHeader, "generated", &[0u8; 16])
            .unwrap();
    }
    assert_eq!(
        p.place_blob(SegmentKind::ElfCoreHeader, "generated", &[0u8; 16]),
        Err(Error::TooManySegments)
    );
}

/// A crash region the segments fill up to less than two 64 KiB pages is
/// refused (the kernel's kimage_alloc_crash_control_pages would fail
/// with ENOMEM); two free pages are enough.
#[test]
fn a_full_crash_region_is_refused() {
    let plan = |region_end: u64| {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, region_end)],
            LoadMode::Crash,
        )
        .with_total_ram(SZ_1G);
        p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M))?;
        // The DTB takes one 64 KiB page, the purgatory three.
        p.place_dtb("generated", &dtoolkit::model::DeviceTree::new().to_dtb())?;
        p.place_purgatory("purgatory", &[0u8; 4096], 0, 0x3_0000)?;
        p.finish()
    };
    let used = 0x4020_0000 + 0x4_0000;
    assert!(plan(used + 0x2_0000).is_ok());
    let err = plan(used + 0x1_0000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the segments leave 64 KiB free in the crash region 0x40000000-0x4024ffff; the kernel \
         needs 2 free 64 KiB pages there for its control pages (ENOMEM otherwise): reserve a \
         larger crashkernel= or load less"
    );
    assert!(matches!(
        plan(used),
        Err(Error::NoRoomForControlPages { .. })
    ));
}

/// A segment over half of RAM, or segments together over it, are refused
/// (sanity_check_segment_list: EINVAL); exactly half passes.
#[test]
fn more_than_half_of_ram_is_refused() {
    let plan = |total_ram: u64| {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        )
        .with_total_ram(total_ram);
        p.place_kernel("Image", &[0u8; 4096], facts(SZ_2M))?;
        p.place_dtb("generated", &dtoolkit::model::DeviceTree::new().to_dtb())?;
        p.finish()
    };
    // 2 MiB + 64 KiB in all.
    assert!(plan(2 * (SZ_2M + 0x1_0000)).is_ok());
    assert_eq!(
        plan(2 * (SZ_2M + 0x1_0000) - 1).unwrap_err().to_string(),
        "the segments together of 2.1 MiB is more than half of the 4.1 MiB of RAM the \
         kernel manages (kexec_load refuses with EINVAL)"
    );
    assert!(matches!(
        plan(4 * SZ_1M - 1),
        Err(Error::MoreThanHalfOfRam { what, .. }) if what == "the kernel"
    ));
    // A kernel of exactly half is allowed: only the total is over.
    assert!(matches!(
        plan(4 * SZ_1M),
        Err(Error::MoreThanHalfOfRam { what, .. }) if what == "the segments together"
    ));
}

/// Facts of an Image at `text_offset` with flags bit 3 as given.
fn at(text_offset: u64, image_size: u64, place_anywhere: bool) -> KernelFacts {
    KernelFacts {
        text_offset,
        place_anywhere,
        ..facts(image_size)
    }
}

/// A pre-3.17 kernel's facts for a file of `len` bytes (header parsed).
fn pre_3_17(len: u64) -> KernelFacts {
    let header = crate::image::Arm64ImageHeader::parse(
        &test_assets::synthetic::arm64_image_header(0x8_0000, 0, 0),
    )
    .unwrap();
    KernelFacts::from_header(&header, len)
}

fn one_gib() -> Planner {
    Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    )
}

/// text_offset 0x81000 (a randomised 4 KiB-page kernel): the segment starts
/// at the 64 KiB boundary below the Image, its bytes are 4 KiB of zeros and
/// the Image, and the kernel is entered at the Image.
#[test]
fn a_text_offset_off_64_kib_pads_the_kernel_segment() {
    use sha2::{Digest, Sha256};
    let image: Vec<u8> = (0..8192u32).map(|i| (i % 249) as u8).collect();
    let mut p = one_gib();
    let load = p
        .place_kernel("Image", &image, at(0x8_1000, SZ_2M, false))
        .unwrap();
    assert_eq!(load, 0x4008_1000);
    let k = &p.segments()[0];
    assert_eq!(
        (k.mem, k.bufsz, k.memsz),
        (0x4008_0000, 0x3000, SZ_2M + 0x1_0000)
    );
    let mut padded = vec![0u8; 0x1000];
    padded.extend_from_slice(&image);
    assert_eq!(k.digests, Some(vec![Sha256::digest(&padded).into()]));
    p.place_dtb("generated", &super::super::tests::dtb_without_initrd())
        .unwrap();
    let plan = p.finish().unwrap();
    assert_eq!(plan.entry, 0x4008_1000);
    assert_eq!(plan.kernel_load_addr(), Some(0x4008_1000));
    // 64 KiB aligned text_offsets need no padding.
    let mut p = one_gib();
    assert_eq!(
        p.place_kernel("Image", &image, at(0x9_0000, SZ_2M, false)),
        Ok(0x4009_0000)
    );
    assert_eq!(p.segments()[0].bufsz, 8192);
}

#[test]
fn a_text_offset_off_4_kib_is_refused() {
    let err = one_gib()
        .place_kernel("Image", &[0u8; 4096], at(0x8_0010, SZ_2M, false))
        .unwrap_err();
    assert_eq!(err, Error::UnalignedTextOffset(0x8_0010));
    assert!(err.to_string().contains("not a multiple of 4 KiB"), "{err}");
}

/// Before 3.17 the kernel's page tables sit below the Image and its BSS
/// after the file: the DTB goes past the file + 16 MiB, not into the free
/// 512 KiB below the Image that a v3.17+ kernel leaves.
#[test]
fn nothing_is_placed_in_a_pre_3_17_footprint() {
    let dtb = super::super::tests::dtb_without_initrd();
    let mut p = one_gib();
    assert_eq!(
        p.place_kernel("Image", &[0u8; 4096], pre_3_17(4096)),
        Ok(0x4008_0000)
    );
    // 0x4008_0000 + 4 KiB + 16 MiB, rounded up to 64 KiB.
    assert_eq!(p.place_dtb("generated", &dtb), Ok(0x4109_0000));
    let mut p = one_gib();
    p.place_kernel("Image", &[0u8; 4096], at(0x8_0000, SZ_2M, true))
        .unwrap();
    assert_eq!(p.place_dtb("generated", &dtb), Ok(0x4000_0000));
}

/// Flags bit 3 clear: the initrd and the DTB go above the kernel's base
/// even where lower RAM is free, and the DTB does not cross 2 MiB.
#[test]
fn flags_bit_3_clear_keeps_initrd_and_dtb_above_the_base() {
    let ram = [
        MemoryRange::new(0x3000_0000, 0x3040_0000),
        MemoryRange::new(0x4000_0000, 0x8000_0000),
    ];
    let dtb = super::super::tests::dtb_without_initrd();
    for (anywhere, initrd_at) in [(true, 0x3000_0000), (false, 0x4080_0000)] {
        let mut p = Planner::new(&ram, LoadMode::Normal);
        // 8 MiB: too large for the 4 MiB below.
        p.place_kernel("Image", &[0u8; 4096], at(0, 8 * SZ_1M, anywhere))
            .unwrap();
        let initrd = p.place_initrd("initrd", &[1u8; 100]).unwrap();
        assert_eq!(initrd.start, initrd_at, "bit 3 = {anywhere}");
    }
    // A kernel ending 64 KiB below a 2 MiB boundary and a 128 KiB DTB.
    let mut big = dtb.clone();
    big[4..8].copy_from_slice(&0x2_0000u32.to_be_bytes());
    big.resize(0x2_0000, 0);
    for (anywhere, dtb_at) in [(true, 0x401f_0000), (false, 0x4020_0000)] {
        let mut p = one_gib();
        p.place_kernel("Image", &[0u8; 4096], at(0, 0x1f_0000, anywhere))
            .unwrap();
        assert_eq!(
            p.place_dtb("generated", &big),
            Ok(dtb_at),
            "bit 3 = {anywhere}"
        );
    }
}

/// Flags bit 3 clear: a DTB only 512 MiB above the base is out of reach of
/// a kernel before v4.2; the refusal says where it had to go.
#[test]
fn flags_bit_3_clear_keeps_the_dtb_within_512_mib() {
    let ram = [
        MemoryRange::new(0x4000_0000, 0x4080_0000),
        MemoryRange::new(0x6000_0000, 0x6100_0000),
    ];
    let dtb = super::super::tests::dtb_without_initrd();
    let mut p = Planner::new(&ram, LoadMode::Normal);
    p.place_kernel("Image", &[0u8; 4096], at(0, 8 * SZ_1M, true))
        .unwrap();
    assert_eq!(p.place_dtb("generated", &dtb), Ok(0x6000_0000));
    let mut p = Planner::new(&ram, LoadMode::Normal);
    p.place_kernel("Image", &[0u8; 4096], at(0, 8 * SZ_1M, false))
        .unwrap();
    let err = p.place_dtb("generated", &dtb).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "dtb of {} B does not fit: no free RAM in usable RAM within the kernel's 32 GiB \
             window above its 2 MiB base (flags bit 3 = 0), within 512 MiB of it in one 2 MiB \
             block",
            dtb.len()
        )
    );
}

/// The bench's machine (issue 15): the running kernel at 0x40210000-0x4220ffff;
/// the kernel stays lowest (0x42000000, over the old kernel's data), the
/// initrd, too large for the 2 MiB below the old kernel, goes after the new
/// kernel rather than over the old kernel's text, and the DTB and purgatory
/// take the free RAM below the old kernel.
#[test]
fn small_segments_avoid_the_running_kernel_where_they_fit() {
    let running = MemoryRange::new(0x4021_0000, 0x4221_0000);
    let place = |avoid: Vec<MemoryRange>| {
        // Usable RAM: a reservation between the old kernel's text and data.
        let ram = [
            MemoryRange::new(0x4000_0000, 0x4186_0000),
            MemoryRange::new(0x41eb_0000, 0x8000_0000),
        ];
        let mut p = Planner::new(&ram, LoadMode::Normal).avoiding(avoid);
        let kernel = p
            .place_kernel("Image", &[0u8; 4096], facts(0x201_0000))
            .unwrap();
        let initrd = p.place_initrd("initrd", &vec![0u8; 0x2f_0000]).unwrap();
        let dtb = p
            .place_in_window(SegmentKind::Dtb, "dtb", &[0u8; 0x2000], DTB_ALIGN)
            .unwrap();
        (kernel, initrd.start, dtb)
    };
    assert_eq!(place(Vec::new()), (0x4200_0000, 0x4000_0000, 0x402f_0000));
    assert_eq!(
        place(vec![running]),
        (0x4200_0000, 0x4401_0000, 0x4000_0000)
    );
}

/// Where nothing else fits, the segment goes over the running kernel: a
/// preference, never a refusal.
#[test]
fn segments_still_go_over_the_running_kernel_when_nothing_else_fits() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x4800_0000)],
        LoadMode::Normal,
    )
    .avoiding(vec![MemoryRange::new(0x4400_0000, 0x4800_0000)]);
    p.place_kernel("Image", &[0u8; 4096], facts(0x400_0000))
        .unwrap();
    assert_eq!(
        p.place_initrd("initrd", &[0u8; 4096]).map(|r| r.start),
        Ok(0x4400_0000)
    );
}

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

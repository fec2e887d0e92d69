//! Tests of the placer and the checker together: a placed plan passes every
//! rule it can, and a tampered one is caught.

use super::*;
use crate::iomem::MemoryRange;
use crate::layout::{SZ_1M, SZ_2M};

/// Facts of a relocatable Image of `image_size` bytes at `text_offset` 0.
pub(super) fn facts(image_size: u64) -> KernelFacts {
    KernelFacts {
        text_offset: 0,
        image_size,
        place_anywhere: true,
    }
}

/// An empty tree: no `/chosen`, so no initrd.
pub(super) fn dtb_without_initrd() -> Vec<u8> {
    dtoolkit::model::DeviceTree::new().to_dtb()
}

#[test]
fn simple_plan_is_valid_apart_from_purgatory() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    let image = vec![0u8; 3 << 20];
    assert_eq!(
        p.place_kernel("Image", &image, facts(8 * SZ_1M)).unwrap(),
        0x4000_0000
    );
    let dtb = dtb_without_initrd();
    assert_eq!(p.place_dtb("generated", &dtb).unwrap(), 0x4080_0000);
    let plan = p.finish().unwrap();
    assert_eq!(plan.entry, 0x4000_0000);
    let failed: Vec<_> = plan
        .check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule)
        .collect();
    assert_eq!(failed, vec![Rule::DtbHandedOver]);
}

#[test]
fn check_catches_a_tampered_plan() {
    let mut p = Planner::new(
        &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
        LoadMode::Normal,
    );
    p.place_kernel(
        "Image",
        &[0u8; 4096],
        KernelFacts {
            place_anywhere: false,
            ..facts(SZ_2M)
        },
    )
    .unwrap();
    p.place_dtb("generated", &dtb_without_initrd()).unwrap();
    let mut plan = p.finish().unwrap();
    // Two 2 MiB steps up: still aligned, clear of the DTB, no longer lowest.
    plan.segments[0].mem += 2 * SZ_2M;
    plan.entry += 2 * SZ_2M;
    let failed: Vec<_> = plan
        .check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule)
        .collect();
    assert_eq!(failed, vec![Rule::KernelLowest, Rule::DtbHandedOver]);
    plan.segments[0].mem += 0x1000;
    let failed: Vec<_> = plan
        .check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule)
        .collect();
    assert!(failed.contains(&Rule::KernelAlignment));
    assert!(failed.contains(&Rule::SegmentAlignment));
}

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
        uses_memory_below_image: false,
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
    // Two 2 MiB steps up: still aligned, clear of the DTB, no longer lowest,
    // and above the DTB, which a kernel with flags bit 3 clear cannot reach.
    plan.segments[0].mem += 2 * SZ_2M;
    plan.entry += 2 * SZ_2M;
    let failed: Vec<_> = plan
        .check()
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.rule)
        .collect();
    assert_eq!(
        failed,
        vec![
            Rule::KernelLowest,
            Rule::LinearMapReach,
            Rule::DtbHandedOver
        ]
    );
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

#[test]
fn kernel_facts_follow_the_header() {
    use crate::image::{Arm64ImageHeader, ARM64_IMAGE_MAGIC};
    let header = |flags: u64| Arm64ImageHeader {
        code0: 0,
        code1: 0,
        text_offset: 0x8_0000,
        image_size: 0x200_0000,
        flags,
        res2: 0,
        res3: 0,
        res4: 0,
        magic: ARM64_IMAGE_MAGIC,
        res5: 0,
    };
    // booting.rst §4: flags bit 3 = 1 lets the Image sit anywhere.
    let anywhere = KernelFacts::from_header(&header(1 << 3), 0x100_0000);
    assert_eq!(
        anywhere,
        KernelFacts {
            text_offset: 0x8_0000,
            image_size: 0x200_0000,
            place_anywhere: true,
            uses_memory_below_image: false,
        }
    );
    assert!(!KernelFacts::from_header(&header(0), 0x100_0000).place_anywhere);
}

#[test]
fn digests_print_as_lower_case_hex() {
    let mut digest = [0u8; 32];
    digest[0] = 0x0a;
    digest[31] = 0xf0;
    let segment = |digests| Segment {
        kind: SegmentKind::Initrd,
        source: "initrd".into(),
        mem: 0,
        bufsz: 1,
        memsz: 0x1_0000,
        digests,
    };
    let hex = segment(Some(vec![digest, [0xff; 32]]))
        .digests_hex()
        .unwrap();
    assert_eq!(hex, [format!("0a{}f0", "00".repeat(30)), "ff".repeat(32)]);
    assert_eq!(segment(None).digests_hex(), None);
}

#[test]
fn a_dtb_of_exactly_2_mib_is_placed_and_one_byte_more_is_refused() {
    // A valid blob whose header claims 2 MiB: the rest is free space.
    let mut dtb = dtb_without_initrd();
    let total = 2 * SZ_1M;
    dtb[4..8].copy_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
    dtb.resize(usize::try_from(total).unwrap(), 0);
    let planner = || {
        let mut p = Planner::new(
            &[MemoryRange::new(0x4000_0000, 0x8000_0000)],
            LoadMode::Normal,
        );
        p.place_kernel("Image", &[0u8; 4096], facts(8 * SZ_1M))
            .unwrap();
        p
    };
    assert_eq!(planner().place_dtb("dtb", &dtb), Ok(0x4080_0000));
    dtb.push(0);
    assert_eq!(
        planner().place_dtb("dtb", &dtb),
        Err(Error::DtbTooLarge { size: total + 1 })
    );
}

//! Tests of [`make_plan`] that read the bytes it would load: the device tree
//! handed over on the captured UEFI machine (`virt-uefi-dt`).

use dtoolkit::{Node, Property};
use test_assets::synthetic::{fixture_sysroot, scratch, synthetic_image};

use super::*;

#[test]
fn the_embedded_purgatory_has_a_header() {
    let p = Purgatory::parse(PURGATORY).unwrap();
    assert!(p.mem_size >= PURGATORY.len() as u64);
}

/// `/chosen`'s `linux,uefi-*` properties, name and bytes, in tree order.
fn uefi_props(dtb: &[u8]) -> Vec<(String, Vec<u8>)> {
    let tree = fdt::parse(dtb).unwrap();
    let chosen = tree.root.children().find(|c| c.name() == "chosen").unwrap();
    chosen
        .properties()
        .filter(|p| p.name().starts_with(fdt::UEFI_PREFIX))
        .map(|p| (p.name().to_owned(), p.value().to_vec()))
        .collect()
}

/// `/memory@40000000` `reg`: 1 GiB on `qemu-virt-1g`, 4 GiB on the UEFI
/// machine.
fn memory_reg(dtb: &[u8]) -> Vec<u8> {
    let tree = fdt::parse(dtb).unwrap();
    let memory = tree.find_node("/memory@40000000").unwrap();
    memory.property("reg").unwrap().value().to_vec()
}

/// The device tree segment of a plan for `kernel` on `virt-uefi-dt`.
fn planned_dtb(kernel: &Path, dtb: Option<&Path>) -> Vec<u8> {
    let root = Sysroot::at(&fixture_sysroot("virt-uefi-dt"));
    let input = PlanInput {
        dtb,
        ..PlanInput::default()
    };
    make_plan(&input, LoadMode::Normal, kernel, &root)
        .unwrap()
        .built
        .dtb
        .dtb
}

#[test]
fn the_running_uefi_state_reaches_the_new_kernel_byte_for_byte() {
    let running = std::fs::read(fixture_sysroot("virt-uefi-dt").join("sys/firmware/fdt")).unwrap();
    let expected = uefi_props(&running);
    assert_eq!(expected.len(), 6, "the capture's EFI stub wrote six");
    let dir = scratch("pipeline-uefi");
    let image = dir.join("Image");
    let linux = synthetic_image(1 << 20, 20 << 20, 0b1010, 31);
    std::fs::write(&image, &linux).unwrap();
    // The running tree.
    assert_eq!(uefi_props(&planned_dtb(&image, None)), expected);
    // A UKI whose .dtb is another machine's (QEMU's own, no UEFI): that
    // tree, with the running UEFI state merged in.
    let other = std::fs::read(fixture_sysroot("qemu-virt-1g").join("sys/firmware/fdt")).unwrap();
    assert!(uefi_props(&other).is_empty());
    let uki = dir.join("linux.efi");
    let bytes = test_assets::pe::uki(&linux, None, None, Some(&other));
    std::fs::write(&uki, bytes).unwrap();
    let merged = planned_dtb(&uki, None);
    assert_eq!(memory_reg(&merged), memory_reg(&other));
    assert_ne!(memory_reg(&merged), memory_reg(&running));
    let mut got = uefi_props(&merged);
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // --dtb FILE: the same.
    let path = dir.join("other.dtb");
    std::fs::write(&path, &other).unwrap();
    let mut got = uefi_props(&planned_dtb(&image, Some(&path)));
    got.sort();
    assert_eq!(got, want);
}

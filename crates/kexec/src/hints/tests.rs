//! Each hint of `hints.rs` for each state that selects it.

use std::io::ErrorKind;

use kexec_core::machine::status::Credentials;
use kexec_sys::PermissionReason;

use super::*;

const ALL_CAPS: u64 = 0x1ff_ffff_ffff;
/// Docker's default set: no CAP_SYS_BOOT (22), no CAP_SYS_ADMIN (21).
const CONTAINER_CAPS: u64 = 0xa804_25fb;

fn situation(live: bool, arch: &str, euid: u32, caps: u64) -> Situation {
    Situation {
        live,
        arch: Some(arch.to_owned()),
        creds: Credentials {
            euid: Some(euid),
            cap_eff: Some(caps),
        },
    }
}

fn arm64_root() -> Situation {
    situation(true, "aarch64", 0, ALL_CAPS)
}
fn arm64_user() -> Situation {
    situation(true, "aarch64", 1000, 0)
}
fn x86_root() -> Situation {
    situation(true, "x86_64", 0, ALL_CAPS)
}
fn capture() -> Situation {
    situation(false, "aarch64", 1000, 0)
}

#[test]
fn a_missing_device_tree_on_x86_is_not_a_permission_problem() {
    let need = "the running device tree is needed";
    let h = state_unreadable(sysroot::FDT, need, ErrorKind::NotFound, &x86_root());
    assert!(
        h.starts_with("this is an x86_64 machine, not arm64: it has no device tree"),
        "{h}"
    );
    assert!(
        h.contains("--sysroot DIR") && h.contains("--dtb FILE"),
        "{h}"
    );
    assert!(!h.contains("run as root"), "{h}");
    // On arm64 the kernel did not publish it.
    let h = state_unreadable(sysroot::FDT, need, ErrorKind::NotFound, &arm64_root());
    assert!(h.contains("did not publish its device tree"), "{h}");
    assert!(h.contains("--dtb FILE"), "{h}");
    // Refused to a user: run as root; refused to root: something else.
    let h = state_unreadable(
        sysroot::FDT,
        need,
        ErrorKind::PermissionDenied,
        &arm64_user(),
    );
    assert_eq!(h, "the running device tree is needed; run as root");
    let h = state_unreadable(
        sysroot::FDT,
        need,
        ErrorKind::PermissionDenied,
        &arm64_root(),
    );
    assert!(h.contains("root was refused"), "{h}");
    // A capture without it.
    let h = state_unreadable(sysroot::FDT, need, ErrorKind::NotFound, &capture());
    assert!(
        h.contains("the capture lacks it") && h.contains("--dtb FILE"),
        "{h}"
    );
    let h = state_unreadable(
        sysroot::IOMEM,
        "the memory map is needed",
        ErrorKind::NotFound,
        &capture(),
    );
    assert!(
        h.contains("the capture lacks it") && !h.contains("--dtb"),
        "{h}"
    );
    let h = state_unreadable(sysroot::IOMEM, "x", ErrorKind::InvalidData, &capture());
    assert_eq!(h, "x; check the capture's files");
    let h = state_unreadable(sysroot::IOMEM, "x", ErrorKind::NotFound, &arm64_root());
    assert!(h.contains("mounted"), "{h}");
    assert_eq!(
        state_unreadable(sysroot::IOMEM, "x", ErrorKind::Other, &arm64_root()),
        "x"
    );
}

#[test]
fn hidden_addresses_by_who_reads() {
    assert!(hidden_addresses(&arm64_user()).starts_with("run as root"));
    let container = situation(true, "aarch64", 0, CONTAINER_CAPS);
    assert!(hidden_addresses(&container).contains("lacks CAP_SYS_ADMIN"));
    assert!(hidden_addresses(&capture()).contains("capture it again as root"));
}

#[test]
fn user_files_by_error_kind() {
    assert_eq!(input_unreadable(ErrorKind::NotFound), "check the path");
    assert!(input_unreadable(ErrorKind::PermissionDenied).contains("permissions"));
    assert!(input_unreadable(ErrorKind::IsADirectory).contains("not a directory"));
    assert_eq!(input_unreadable(ErrorKind::Other), "check the file");
}

#[test]
fn no_crash_region_by_command_line() {
    let asked = no_crash_region(Some("root=/dev/vda crashkernel=8G"), &arm64_root());
    assert!(asked.contains("reserved nothing"), "{asked}");
    let live = no_crash_region(Some("root=/dev/vda"), &arm64_root());
    assert!(
        live.starts_with("boot the running kernel with crashkernel="),
        "{live}"
    );
    assert!(no_crash_region(None, &capture()).contains("captured machine"));
}

#[test]
fn permission_refusals_by_reason_and_user() {
    assert_eq!(
        permission(PermissionReason::MissingCapability, &arm64_user()),
        "run kexec as root"
    );
    let container = situation(true, "aarch64", 0, CONTAINER_CAPS);
    let h = permission(PermissionReason::MissingCapability, &container);
    assert!(h.starts_with("root here lacks CAP_SYS_BOOT"), "{h}");
    assert!(
        permission(PermissionReason::LoadDisabled, &arm64_root()).contains("until the next boot")
    );
    assert!(permission(PermissionReason::LoadLimit, &arm64_root()).contains("kexec_load_limit"));
    assert!(permission(PermissionReason::Lockdown, &arm64_root())
        .starts_with("under lockdown only kexec_file_load"));
    assert!(permission(PermissionReason::Unknown, &arm64_root()).contains("security module"));
}

#[test]
fn missing_calls_by_architecture() {
    assert!(not_supported("kexec_load", &x86_root())
        .starts_with("this is an x86_64 machine, not arm64"));
    assert!(not_supported("kexec_load", &arm64_root()).contains("CONFIG_KEXEC)"));
    assert!(not_supported("kexec_file_load", &arm64_root()).contains("CONFIG_KEXEC_FILE"));
    assert!(not_supported("reboot", &arm64_root()).contains("CONFIG_KEXEC_CORE"));
}

#[test]
fn busy_by_cpu_state() {
    assert!(busy(Some(true)).contains("spin-table"));
    assert!(busy(Some(false)).contains("retry"));
    assert!(busy(None).contains("retry"));
    assert!(address_not_available(true).contains("crashkernel="));
    assert!(address_not_available(false).contains("bug"));
}

#[test]
fn kexec_state_by_machine() {
    let h = kexec_state_unreadable(ErrorKind::NotFound, &x86_root());
    assert!(h.starts_with("this is an x86_64 machine, not arm64"), "{h}");
    assert!(!h.contains("CONFIG_KEXEC?"), "{h}");
    let h = kexec_state_unreadable(ErrorKind::NotFound, &arm64_root());
    assert!(h.contains("no kexec support"), "{h}");
    assert!(kexec_state_unreadable(ErrorKind::NotFound, &capture()).contains("capture"));
    assert!(kexec_state_unreadable(ErrorKind::Other, &capture()).contains("capture's files"));
    assert!(kexec_state_unreadable(ErrorKind::Other, &arm64_root()).contains("mounted"));
    assert!(nothing_loaded(false, &arm64_root()).contains("kexec -l"));
    assert!(nothing_loaded(true, &arm64_root()).contains("kexec -p"));
    assert!(nothing_loaded(false, &x86_root()).contains("not arm64"));
}

#[test]
fn capture_vmcore_output_and_malformed_state() {
    assert!(iomem_not_captured(None, &arm64_root()).contains("not writable"));
    assert_eq!(
        iomem_not_captured(Some(ErrorKind::PermissionDenied), &arm64_user()),
        "run as root"
    );
    assert!(
        iomem_not_captured(Some(ErrorKind::PermissionDenied), &arm64_root()).contains("refused")
    );
    assert!(iomem_not_captured(Some(ErrorKind::NotFound), &arm64_root()).contains("mounted"));
    assert_eq!(
        iomem_not_captured(Some(ErrorKind::Other), &arm64_root()),
        "check /proc"
    );
    let h = vmcore_unopenable(true, ErrorKind::NotFound, &arm64_root());
    assert!(h.contains("only in a crash kernel"), "{h}");
    assert!(vmcore_unopenable(false, ErrorKind::NotFound, &arm64_root()).contains("check the path"));
    assert!(
        vmcore_unopenable(true, ErrorKind::PermissionDenied, &arm64_user()).contains("run as root")
    );
    assert!(
        vmcore_unopenable(true, ErrorKind::PermissionDenied, &arm64_root()).contains("refused")
    );
    assert!(output_failed(ErrorKind::BrokenPipe).contains("closed"));
    assert!(output_failed(ErrorKind::Other).contains("full disk"));
    assert!(malformed_state(true).contains("report"));
    assert!(malformed_state(false).contains("capture it again"));
}

#[test]
fn the_situation_of_this_process() {
    let s = Situation::live();
    assert!(s.live);
    assert_eq!(s.arch.as_deref(), Some(std::env::consts::ARCH));
    assert_eq!(
        s.foreign_arch().is_some(),
        std::env::consts::ARCH != "aarch64"
    );
    // A capture without a manifest does not say its architecture.
    let s = Situation::of(&Sysroot::at(std::path::Path::new("/nonexistent")));
    assert!(!s.live);
    assert_eq!(s.arch, None);
    assert_eq!(s.foreign_arch(), None);
}

#[test]
fn output_files_and_serial_ttys() {
    assert!(output_file_unwritable(ErrorKind::NotFound).contains("does not exist"));
    assert!(output_file_unwritable(ErrorKind::PermissionDenied).contains("may not write"));
    assert!(output_file_unwritable(ErrorKind::IsADirectory).contains("not a directory"));
    assert!(output_file_unwritable(ErrorKind::Other).contains("you can write to"));
    let h = serial_unreadable("ttyS9", ErrorKind::NotFound, &arm64_root());
    assert!(h.starts_with("no tty ttyS9"), "{h}");
    let h = serial_unreadable("ttyS9", ErrorKind::NotFound, &capture());
    assert!(
        h.starts_with("the capture has no /sys/class/tty/ttyS9"),
        "{h}"
    );
    let h = serial_unreadable("ttyS9", ErrorKind::PermissionDenied, &arm64_root());
    assert!(h.starts_with("drop --serial"), "{h}");
}

//! Test helpers for the doctor's decision: a healthy machine to vary.

use super::checks::{diagnose, Check};
use super::gather::{CacheIndex, Gathered};
use crate::sysroot::Probe;

/// The options of Debian 12's arm64 kernel that doctor looks at.
pub const BASE_CONFIG: &str = "# Linux/arm64 6.1.0 Kernel Configuration\n\
    CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\nCONFIG_CRASH_DUMP=y\n\
    CONFIG_RANDOMIZE_BASE=y\nCONFIG_SECURITY_LOCKDOWN_LSM=y\n";

/// [`BASE_CONFIG`] with `NAME=y` added for each `NAME` of `extra`, and
/// `NAME` unset for each `-NAME`.
pub fn config_text(extra: &[&str]) -> String {
    let mut text = BASE_CONFIG.to_owned();
    for e in extra {
        match e.strip_prefix('-') {
            Some(name) => text.push_str(&format!("# CONFIG_{name} is not set\n")),
            None => text.push_str(&format!("CONFIG_{e}=y\n")),
        }
    }
    text
}

fn found(text: &str) -> Probe {
    Probe::Found(text.as_bytes().to_vec())
}

fn fixture(name: &str, rel: &str) -> Probe {
    Probe::Found(std::fs::read(test_assets::synthetic::fixture_sysroot(name).join(rel)).unwrap())
}

/// A Debian 12 QEMU guest as root: arm64, 2 CPUs with PSCI, no UEFI, no
/// lockdown, Debian's configuration, no crash region, nothing loaded.
pub fn machine() -> Gathered {
    let cache = |index, level: &str, kind: &str, line: &str| CacheIndex {
        index,
        level: found(level),
        kind: found(kind),
        line: found(line),
    };
    Gathered {
        live: true,
        arch: Some("aarch64".into()),
        ctr_el0: Some(0x8444_c004),
        status: found("Name:\tkexec\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n"),
        osrelease: found("6.1.0-57-arm64\n"),
        load_disabled: found("0\n"),
        limit_reboot: Probe::Absent,
        limit_panic: Probe::Absent,
        lockdown: found("[none] integrity confidentiality\n"),
        efi: Probe::Absent,
        secure_boot: Probe::Absent,
        fadt: Probe::Absent,
        fdt: fixture("qemu-virt-1g", "sys/firmware/fdt"),
        config_gz: Probe::Absent,
        boot_config: Some(("/boot/config-6.1.0-57-arm64".into(), found(BASE_CONFIG))),
        iomem: fixture("qemu-virt-1g", "proc/iomem"),
        cmdline: fixture("qemu-virt-1g", "proc/cmdline"),
        kexec_loaded: found("0\n"),
        crash_loaded: found("0\n"),
        crash_size: found("0\n"),
        cpu_possible: found("0-1\n"),
        cpu_online: found("0-1\n"),
        cpus: vec![(0, found("1\n")), (1, found("1\n"))],
        caches: vec![
            cache(0, "1", "Data", "64"),
            cache(1, "1", "Instruction", "64"),
            cache(2, "2", "Unified", "64"),
        ],
        caches_end: Probe::Absent,
    }
}

/// The check `id` of `g`.
pub fn check(g: &Gathered, id: &str) -> Check {
    diagnose(g)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

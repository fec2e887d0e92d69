//! What `kexec doctor` reads, all through the [`Sysroot`] (so `--sysroot`
//! replays a capture), into [`Gathered`]: every file as a [`Probe`] (its
//! bytes, or absent, unreadable, or not in the capture), nothing decided.
//!
//! | file (relative to the root)                         | check |
//! |-----------------------------------------------------|-------|
//! | `proc/self/status`                                  | privileges (`Uid:`, `CapEff:`) |
//! | `proc/sys/kernel/osrelease`                         | which `/boot/config-*` |
//! | `proc/sys/kernel/kexec_load_disabled`, `kexec_load_limit_{reboot,panic}` | sysctls |
//! | `sys/kernel/security/lockdown`                      | lockdown |
//! | `sys/firmware/efi/fw_platform_size`                 | UEFI or not |
//! | `sys/firmware/efi/efivars/SecureBoot-8be4df61-…`    | Secure Boot |
//! | `sys/firmware/acpi/tables/FACP`                     | ACPI, PSCI on ACPI |
//! | `sys/firmware/fdt`                                  | PSCI and CPU enable methods |
//! | `proc/config.gz`, `boot/config-<release>`           | kernel configuration |
//! | `proc/iomem`, `proc/cmdline`                        | crashkernel reservation |
//! | `sys/kernel/kexec_{loaded,crash_loaded,crash_size}` | loaded kernels |
//! | `sys/devices/system/cpu/{possible,online}`, `cpuN/online` | CPU hotplug |
//! | `sys/devices/system/cpu/cpu0/cache/indexN/{level,type,coherency_line_size}` | cache geometry |
//!
//! and, not files, the architecture and `CTR_EL0` ([`Sysroot::arch`],
//! [`Sysroot::ctr_el0`]).

use kexec_core::elfcore::{self, MAX_CPUS};
use kexec_core::machine::efivar::SECURE_BOOT_VAR;

use crate::crashdump::CPU_POSSIBLE;
use crate::sysroot::{self, Probe, Sysroot};

/// `/sys/devices/system/cpu/online`: the online CPUs' list.
pub const CPU_ONLINE: &str = "sys/devices/system/cpu/online";
/// `/proc/self/status`.
pub const SELF_STATUS: &str = "proc/self/status";
/// `/proc/sys/kernel/osrelease`.
pub const OSRELEASE: &str = "proc/sys/kernel/osrelease";
/// `/proc/sys/kernel/kexec_load_limit_reboot` (Linux 6.7+).
pub const LOAD_LIMIT_REBOOT: &str = "proc/sys/kernel/kexec_load_limit_reboot";
/// `/proc/sys/kernel/kexec_load_limit_panic` (Linux 6.7+).
pub const LOAD_LIMIT_PANIC: &str = "proc/sys/kernel/kexec_load_limit_panic";
pub use crate::firmware::{ACPI_FADT, EFI_PLATFORM_SIZE};
/// Where efivarfs is mounted.
pub const EFIVARS: &str = "sys/firmware/efi/efivars";
/// The running kernel's configuration (`CONFIG_IKCONFIG_PROC`).
pub const PROC_CONFIG_GZ: &str = "proc/config.gz";
/// Most bytes `/proc/config.gz` may unpack to (configurations are ~300 KB).
pub const CONFIG_LIMIT: usize = 16 << 20;
/// Most cache index directories read (`indexN`).
pub const MAX_CACHE_INDEXES: u32 = 16;

/// `sys/firmware/efi/efivars/SecureBoot-…`.
pub fn secure_boot_var() -> String {
    format!("{EFIVARS}/{SECURE_BOOT_VAR}")
}

/// `boot/config-<release>`.
pub fn boot_config(release: &str) -> String {
    format!("boot/config-{release}")
}

/// `sys/devices/system/cpu/cpuN/online`.
pub fn cpu_online(cpu: u32) -> String {
    format!("sys/devices/system/cpu/cpu{cpu}/online")
}

/// `sys/devices/system/cpu/cpu0/cache/indexN/<file>`.
pub fn cache_file(index: u32, file: &str) -> String {
    format!("sys/devices/system/cpu/cpu0/cache/index{index}/{file}")
}

/// The files doctor reads whatever the machine; [`files`] adds those that
/// depend on it.
pub const FIXED_FILES: [&str; 17] = [
    SELF_STATUS,
    OSRELEASE,
    sysroot::KEXEC_LOAD_DISABLED,
    LOAD_LIMIT_REBOOT,
    LOAD_LIMIT_PANIC,
    sysroot::LOCKDOWN,
    EFI_PLATFORM_SIZE,
    ACPI_FADT,
    sysroot::FDT,
    PROC_CONFIG_GZ,
    sysroot::IOMEM,
    sysroot::CMDLINE,
    sysroot::KEXEC_LOADED,
    sysroot::KEXEC_CRASH_LOADED,
    sysroot::KEXEC_CRASH_SIZE,
    CPU_POSSIBLE,
    CPU_ONLINE,
];

/// One cache of cpu0, as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheIndex {
    /// `N` of `indexN`.
    pub index: u32,
    /// `level`.
    pub level: Probe,
    /// `type`: `Data`, `Instruction` or `Unified`.
    pub kind: Probe,
    /// `coherency_line_size`, bytes.
    pub line: Probe,
}

/// Everything doctor read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The running system (not a capture).
    pub live: bool,
    /// [`Sysroot::arch`].
    pub arch: Option<String>,
    /// [`Sysroot::ctr_el0`].
    pub ctr_el0: Option<u64>,
    /// `proc/self/status`.
    pub status: Probe,
    /// `proc/sys/kernel/osrelease`.
    pub osrelease: Probe,
    /// `kexec_load_disabled`.
    pub load_disabled: Probe,
    /// `kexec_load_limit_reboot`.
    pub limit_reboot: Probe,
    /// `kexec_load_limit_panic`.
    pub limit_panic: Probe,
    /// `sys/kernel/security/lockdown`.
    pub lockdown: Probe,
    /// `sys/firmware/efi/fw_platform_size`.
    pub efi: Probe,
    /// The `SecureBoot` variable.
    pub secure_boot: Probe,
    /// The FADT.
    pub fadt: Probe,
    /// `sys/firmware/fdt`.
    pub fdt: Probe,
    /// `proc/config.gz`.
    pub config_gz: Probe,
    /// `boot/config-<release>` and its path; `None` when the release is unknown.
    pub boot_config: Option<(String, Probe)>,
    /// `proc/iomem`.
    pub iomem: Probe,
    /// `proc/cmdline`.
    pub cmdline: Probe,
    /// `sys/kernel/kexec_loaded`.
    pub kexec_loaded: Probe,
    /// `sys/kernel/kexec_crash_loaded`.
    pub crash_loaded: Probe,
    /// `sys/kernel/kexec_crash_size`.
    pub crash_size: Probe,
    /// `sys/devices/system/cpu/possible`.
    pub cpu_possible: Probe,
    /// `sys/devices/system/cpu/online`.
    pub cpu_online: Probe,
    /// `cpuN/online` of every possible CPU (empty when `possible` is unknown).
    pub cpus: Vec<(u32, Probe)>,
    /// cpu0's caches, `index0` up to the first whose `level` is not found.
    pub caches: Vec<CacheIndex>,
    /// What probing that first `level` gave (absent, or not in a capture).
    pub caches_end: Probe,
}

/// The possible CPUs, if `possible` was read and parses.
pub fn possible_cpus(possible: &Probe) -> Option<Vec<u32>> {
    elfcore::parse_cpu_list(&possible.text()?).ok()
}

/// The kernel release, if `osrelease` was read.
fn release(osrelease: &Probe) -> Option<String> {
    osrelease
        .text()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && !t.contains('/'))
}

/// Read everything from `root`.
pub fn gather(root: &Sysroot) -> Gathered {
    let osrelease = root.probe(OSRELEASE);
    let cpu_possible = root.probe(CPU_POSSIBLE);
    let cpus = possible_cpus(&cpu_possible)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_CPUS)
        .map(|c| (c, root.probe(&cpu_online(c))))
        .collect();
    let mut caches = Vec::new();
    let mut caches_end = Probe::Absent;
    for index in 0..MAX_CACHE_INDEXES {
        let level = root.probe(&cache_file(index, "level"));
        if !matches!(level, Probe::Found(_)) {
            caches_end = level;
            break;
        }
        caches.push(CacheIndex {
            index,
            level,
            kind: root.probe(&cache_file(index, "type")),
            line: root.probe(&cache_file(index, "coherency_line_size")),
        });
    }
    Gathered {
        live: root.is_live(),
        arch: root.arch(),
        ctr_el0: root.ctr_el0(),
        status: root.probe(SELF_STATUS),
        boot_config: release(&osrelease).map(|r| {
            let rel = boot_config(&r);
            let probe = root.probe(&rel);
            (format!("/{rel}"), probe)
        }),
        osrelease,
        load_disabled: root.probe(sysroot::KEXEC_LOAD_DISABLED),
        limit_reboot: root.probe(LOAD_LIMIT_REBOOT),
        limit_panic: root.probe(LOAD_LIMIT_PANIC),
        lockdown: root.probe(sysroot::LOCKDOWN),
        efi: root.probe(EFI_PLATFORM_SIZE),
        secure_boot: root.probe(&secure_boot_var()),
        fadt: root.probe(ACPI_FADT),
        fdt: root.probe(sysroot::FDT),
        config_gz: root.probe(PROC_CONFIG_GZ),
        iomem: root.probe(sysroot::IOMEM),
        cmdline: root.probe(sysroot::CMDLINE),
        kexec_loaded: root.probe(sysroot::KEXEC_LOADED),
        crash_loaded: root.probe(sysroot::KEXEC_CRASH_LOADED),
        crash_size: root.probe(sysroot::KEXEC_CRASH_SIZE),
        cpu_possible,
        cpu_online: root.probe(CPU_ONLINE),
        cpus,
        caches,
        caches_end,
    }
}

/// Every file doctor reads from `root`, relative to it: the fixed ones,
/// the `SecureBoot` variable, `boot/config-<release>`, each possible CPU's
/// `online` and cpu0's cache indexes (for `capture-sysroot`).
pub fn files(root: &Sysroot) -> Vec<String> {
    let mut out: Vec<String> = FIXED_FILES.iter().map(|&f| f.to_owned()).collect();
    out.push(secure_boot_var());
    if let Some(r) = release(&root.probe(OSRELEASE)) {
        out.push(boot_config(&r));
    }
    for cpu in possible_cpus(&root.probe(CPU_POSSIBLE)).unwrap_or_default() {
        out.push(cpu_online(cpu));
    }
    for index in 0..MAX_CACHE_INDEXES {
        if !matches!(root.probe(&cache_file(index, "level")), Probe::Found(_)) {
            break;
        }
        for f in ["level", "type", "coherency_line_size"] {
            out.push(cache_file(index, f));
        }
    }
    out
}

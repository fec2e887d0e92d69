//! What the firmware handed the running kernel (UEFI or not, ACPI or a
//! device tree), read once for `kexec doctor` (its `firmware` check) and
//! the `--dry-run` report; and, for the report, which interface the new
//! kernel will boot with and what is risky about the hand-over.

use kexec_core::fdt::{Handover, UEFI_SYSTEM_TABLE};

use crate::sysroot::{Probe, Sysroot};

/// Present only when the kernel booted through UEFI
/// (drivers/firmware/efi/efi.c).
pub const EFI_PLATFORM_SIZE: &str = "sys/firmware/efi/fw_platform_size";
/// The ACPI FADT (root only, 0400); present only while the running kernel
/// uses ACPI (drivers/acpi/sysfs.c, run when ACPI is not disabled).
pub const ACPI_FADT: &str = "sys/firmware/acpi/tables/FACP";
/// The ACPI MADT (its GICC structures name the CPUs).
pub const ACPI_MADT: &str = "sys/firmware/acpi/tables/APIC";
/// The ACPI SPCR (the console UART of a machine booted with ACPI).
pub const ACPI_SPCR: &str = "sys/firmware/acpi/tables/SPCR";

/// UEFI and ACPI as the running system shows them; `None`: not known (a
/// capture that does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Firmware {
    /// Booted through UEFI.
    pub uefi: Option<bool>,
    /// The running kernel uses ACPI.
    pub acpi: Option<bool>,
}

impl Firmware {
    /// From the probes of [`EFI_PLATFORM_SIZE`] and [`ACPI_FADT`]: an
    /// unreadable FADT is still there (it is root's only).
    pub fn of(efi: &Probe, fadt: &Probe) -> Self {
        let uefi = match efi {
            Probe::Found(_) => Some(true),
            Probe::Absent => Some(false),
            _ => None,
        };
        let acpi = match fadt {
            Probe::Found(_) | Probe::Unreadable { .. } => Some(true),
            Probe::Absent => Some(false),
            Probe::NotCaptured => None,
        };
        Self { uefi, acpi }
    }

    /// Read from `root`.
    pub fn read(root: &Sysroot) -> Self {
        Self::of(&root.probe(EFI_PLATFORM_SIZE), &root.probe(ACPI_FADT))
    }

    /// `UEFI, ACPI`, `no UEFI, device tree`, `UEFI?, ACPI?`.
    pub fn describe(self) -> String {
        let uefi = match self.uefi {
            Some(true) => "UEFI",
            Some(false) => "no UEFI",
            None => "UEFI unknown",
        };
        let acpi = match self.acpi {
            Some(true) => "ACPI",
            Some(false) => "device tree",
            None => "ACPI unknown",
        };
        format!("{uefi}, {acpi}")
    }
}

/// How the new kernel will find the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// ACPI tables, through the UEFI system table.
    Acpi,
    /// The device tree passed.
    DeviceTree,
}

impl Interface {
    /// `"acpi"` or `"device-tree"` (the JSON value).
    pub const fn id(self) -> &'static str {
        match self {
            Interface::Acpi => "acpi",
            Interface::DeviceTree => "device-tree",
        }
    }
}

/// The last `acpi=` of a command line (the kernel applies them in order:
/// arch/arm64/kernel/acpi.c `parse_acpi`).
fn acpi_param(cmdline: &[u8]) -> Option<&[u8]> {
    cmdline
        .split(|b| b.is_ascii_whitespace())
        .filter_map(|w| w.strip_prefix(b"acpi="))
        .next_back()
}

/// Which interface the new kernel boots with, and why
/// (arch/arm64/kernel/acpi.c `acpi_boot_table_init`): ACPI with
/// `acpi=force` or `acpi=on`, or when the tree is a stub (`dt_is_stub`);
/// the device tree otherwise, or with `acpi=off`.
pub fn new_kernel_interface(h: &Handover, cmdline: &[u8]) -> (Interface, &'static str) {
    match acpi_param(cmdline) {
        Some(b"off") => (Interface::DeviceTree, "acpi=off"),
        Some(b"force") => (Interface::Acpi, "acpi=force"),
        Some(b"on") => (Interface::Acpi, "acpi=on"),
        _ if h.acpi_stub => (Interface::Acpi, "the device tree has nothing but /chosen"),
        _ => (Interface::DeviceTree, "a full device tree"),
    }
}

/// Something about the hand-over that may keep the new kernel from
/// booting or working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// Stable identifier (docs/plan-json.md).
    pub id: &'static str,
    /// What and why, with the kernel source.
    pub detail: String,
}

/// Risk: UEFI machine, no `linux,uefi-system-table` in the tree passed.
pub const UEFI_STATE_LOST: &str = "uefi-state-lost";
/// Risk: the new kernel will use ACPI without the UEFI system table.
pub const ACPI_WITHOUT_UEFI: &str = "acpi-without-uefi";
/// Risk: a GICv3 ITS without UEFI's memreserve table.
pub const ITS_WITHOUT_EFI_MEMRESERVE: &str = "its-without-efi-memreserve";
/// Risk: ACPI now, the device tree next.
pub const ACPI_TO_DEVICE_TREE: &str = "acpi-to-device-tree";
/// Every risk id, in [`risks`]' order (docs/plan-json.md lists each).
#[cfg(test)]
pub const RISK_IDS: [&str; 4] = [
    UEFI_STATE_LOST,
    ACPI_WITHOUT_UEFI,
    ITS_WITHOUT_EFI_MEMRESERVE,
    ACPI_TO_DEVICE_TREE,
];

/// The risks of handing over `h` on `fw`, the new kernel booting with `new`.
pub fn risks(fw: Firmware, h: &Handover, new: Interface) -> Vec<Risk> {
    let mut out = Vec::new();
    let systab = h.uefi_properties.iter().any(|p| p == UEFI_SYSTEM_TABLE);
    if fw.uefi == Some(true) && !systab {
        out.push(Risk {
            id: UEFI_STATE_LOST,
            detail: format!(
                "the machine booted through UEFI, but the device tree passed has no /chosen \
                 {UEFI_SYSTEM_TABLE}: the new kernel will have no EFI runtime services, EFI \
                 memory map or ACPI (drivers/firmware/efi/fdtparams.c); pass the running tree, \
                 or make the running /sys/firmware/fdt readable so that its UEFI state is \
                 carried over"
            ),
        });
    }
    if new == Interface::Acpi && !systab {
        out.push(Risk {
            id: ACPI_WITHOUT_UEFI,
            detail: format!(
                "the new kernel will look for ACPI tables, which arm64 finds only through the \
                 UEFI system table, and the device tree has no {UEFI_SYSTEM_TABLE} \
                 (arch/arm64/kernel/acpi.c acpi_boot_table_init): it will find no hardware"
            ),
        });
    }
    if let Some(its) = h.its.as_deref().filter(|_| !h.uefi) {
        out.push(Risk {
            id: ITS_WITHOUT_EFI_MEMRESERVE,
            detail: format!(
                "the device tree has a GICv3 ITS ({its}) and the kernel did not boot through \
                 UEFI: the ITS's LPI tables are reserved across kexec only through the EFI \
                 LINUX_EFI_MEMRESERVE table (drivers/irqchip/irq-gic-v3-its.c \
                 gic_reserve_range), which the EFI stub installs \
                 (drivers/firmware/efi/libstub/efi-stub.c install_memreserve_table), so /proc/iomem does not show them reserved, a segment may \
                 be placed on them, and the new kernel cannot take over LPIs the running one \
                 enabled (its_cpu_init_lpis: \"Expected reserved range\")"
            ),
        });
    }
    if fw.acpi == Some(true) && new == Interface::DeviceTree {
        out.push(Risk {
            id: ACPI_TO_DEVICE_TREE,
            detail: "the running kernel uses ACPI, but the new one will use the device tree \
                     passed (a full tree, no acpi=force or acpi=on in its command line: \
                     arch/arm64/kernel/acpi.c acpi_boot_table_init)"
                .to_owned(),
        });
    }
    out
}

#[cfg(test)]
#[path = "firmware_tests.rs"]
mod tests;

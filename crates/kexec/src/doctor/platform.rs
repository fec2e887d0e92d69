//! `kexec doctor`'s checks of the machine: loaded kernels and the crash
//! region, firmware, cache geometry; how CPUs are stopped and started is
//! `cpus.rs`. Pure, like `checks.rs`.
//!
//! Facts (Linux 6.1):
//! - `/sys/kernel/kexec_{loaded,crash_loaded,crash_size}` exist only with
//!   `CONFIG_KEXEC_CORE` (kernel/ksysfs.c); `kexec_crash_size` is the main
//!   (high) region's size (`crash_get_memory_size`, kernel/kexec_core.c;
//!   from 6.8 it adds the low region);
//! - `kexec -e` takes every CPU but the reboot CPU (cpu0 unless
//!   `reboot=s<N>`) offline (`smp_shutdown_nonboot_cpus`, kernel/cpu.c, from
//!   `machine_shutdown`, arch/arm64/kernel/process.c) and stops the kernel
//!   (`BUG_ON`) if one refuses; a CPU that cannot go offline has no
//!   `online` file (`offline_disabled = !hotpluggable`, drivers/base/cpu.c
//!   and drivers/base/core.c; `cpu_can_disable`, arch/arm64/kernel/setup.c,
//!   false e.g. where a trusted OS runs: arch/arm64/kernel/psci.c);
//! - with spin-table (no `cpu_die`) and more than one possible CPU, arm64
//!   refuses kexec loads, crash loads excepted (`cpus_are_stuck_in_kernel`,
//!   arch/arm64/kernel/smp.c; `machine_kexec_prepare`,
//!   arch/arm64/kernel/machine_kexec.c); see also `kexec_core::fdt::cpus`;
//! - arm64 fills cpu0's `cache/indexN` from `CLIDR_EL1` (level, type)
//!   and takes sizes only from the device tree or ACPI PPTT
//!   (arch/arm64/kernel/cacheinfo.c), so `coherency_line_size` may be
//!   missing; `CTR_EL0` is what cache maintenance by VA steps by;
//! - ACPI tables appear under `/sys/firmware/acpi/tables` only when the
//!   kernel uses ACPI; then CPUs use PSCI only if the FADT says so
//!   (`kexec_core::machine::fadt`), else the parking protocol, which has no
//!   `cpu_die` (arch/arm64/kernel/cpu_ops.c).

use kexec_core::iomem::{self, MemoryRange};
use kexec_core::machine::ctr;
use serde_json::{json, Value};

use super::checks::{not_read, shown, unknown, Check, Status};
use super::cpus;
use super::gather::{Gathered, ACPI_FADT};
use crate::firmware::Firmware;
use crate::hints;
use crate::sysroot::{self, Probe};

/// The machine's checks, in report order.
pub fn checks(g: &Gathered) -> Vec<Check> {
    let reserved = crash_regions(g);
    vec![
        kexec_loaded(g),
        crashkernel(g, &reserved),
        crash_loaded(g, &reserved),
        firmware(g),
        cpus::psci(g),
        cpus::cpu_hotplug(g),
        cache(g),
    ]
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// The `Crash kernel` ranges of `/proc/iomem`, or why they are unknown.
fn crash_regions(g: &Gathered) -> Result<Vec<MemoryRange>, Check> {
    let (id, title) = ("crashkernel", "crash kernel region");
    let Some(text) = g.iomem.text() else {
        return Err(unknown(id, title, &g.iomem, sysroot::IOMEM, g));
    };
    match iomem::parse(&text) {
        Ok(map) => Ok(map.crash_regions()),
        Err(iomem::Error::AddressesHidden) => Err(Check::new(
            id,
            title,
            Status::Unknown,
            "/proc/iomem shows every address as zero",
            Some(hints::hidden_addresses(&super::checks::situation(g))),
            Value::Null,
        )),
        Err(e) => Err(Check::new(
            id,
            title,
            Status::Unknown,
            format!("/proc/iomem: {e}"),
            None,
            Value::Null,
        )),
    }
}

fn flag(probe: &Probe) -> Option<bool> {
    match probe.text()?.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn kexec_loaded(g: &Gathered) -> Check {
    let (id, title) = ("kexec_loaded", "loaded kernel");
    match (flag(&g.kexec_loaded), &g.kexec_loaded) {
        (Some(true), _) => Check::new(
            id,
            title,
            Status::Ok,
            "a kernel is loaded: kexec -e boots it",
            None,
            json!(true),
        ),
        (Some(false), _) => Check::new(id, title, Status::Ok, "none loaded", None, json!(false)),
        (None, Probe::Absent) => Check::new(
            id,
            title,
            Status::Fail,
            "/sys/kernel/kexec_loaded is absent: the kernel has no kexec support",
            Some(hints::kexec_state_unreadable(
                std::io::ErrorKind::NotFound,
                &super::checks::situation(g),
            )),
            Value::Null,
        ),
        (None, Probe::Found(_)) => Check::new(
            id,
            title,
            Status::Unknown,
            "/sys/kernel/kexec_loaded: neither 0 nor 1",
            None,
            Value::Null,
        ),
        (None, probe) => unknown(id, title, probe, sysroot::KEXEC_LOADED, g),
    }
}

fn crashkernel(g: &Gathered, reserved: &Result<Vec<MemoryRange>, Check>) -> Check {
    let (id, title) = ("crashkernel", "crash kernel region");
    let regions = match reserved {
        Ok(r) => r,
        Err(check) => return check.clone(),
    };
    let size = g
        .crash_size
        .text()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let hex = |v: u64| format!("{v:#x}");
    let ranges: Vec<Value> = regions
        .iter()
        .map(|r| json!({"start": hex(r.start), "end": hex(r.end)}))
        .collect();
    let value = json!({"regions": ranges, "kexec_crash_size": size});
    if regions.is_empty() {
        return Check::new(
            id,
            title,
            Status::Warn,
            "none reserved: kexec -p cannot load a crash kernel",
            Some(hints::no_crash_region(
                g.cmdline.text().as_deref(),
                &super::checks::situation(g),
            )),
            value,
        );
    }
    let list: Vec<String> = regions
        .iter()
        .rev()
        .map(|r| format!("{} at {r}", mib(r.size())))
        .collect();
    let sysfs = size.map_or(String::new(), |s| format!(" (kexec_crash_size {})", mib(s)));
    Check::new(
        id,
        title,
        Status::Ok,
        format!("{}{sysfs}", list.join(" and ")),
        None,
        value,
    )
}

fn crash_loaded(g: &Gathered, reserved: &Result<Vec<MemoryRange>, Check>) -> Check {
    let (id, title) = ("crash_kernel_loaded", "loaded crash kernel");
    let any_reserved = reserved.as_ref().ok().map(|r| !r.is_empty());
    match (flag(&g.crash_loaded), any_reserved) {
        (Some(true), _) => Check::new(
            id,
            title,
            Status::Ok,
            "loaded: a panic boots it",
            None,
            json!(true),
        ),
        (Some(false), Some(true)) => Check::new(
            id,
            title,
            Status::Warn,
            "none loaded, though memory is reserved for one: a panic reboots without a dump",
            Some(
                "load one with `kexec -p KERNEL --initrd FILE --reuse-cmdline \
                --append \"maxcpus=1 reset_devices\"`"
                    .to_owned(),
            ),
            json!(false),
        ),
        (Some(false), _) => Check::new(id, title, Status::Ok, "none loaded", None, json!(false)),
        (None, _) => match &g.crash_loaded {
            Probe::Found(_) => Check::new(
                id,
                title,
                Status::Unknown,
                "/sys/kernel/kexec_crash_loaded: neither 0 nor 1",
                None,
                Value::Null,
            ),
            probe => unknown(id, title, probe, sysroot::KEXEC_CRASH_LOADED, g),
        },
    }
}

/// What the firmware handed over: UEFI or not, ACPI or a device tree.
fn firmware(g: &Gathered) -> Check {
    let (id, title) = ("firmware", "firmware");
    let Firmware { uefi, acpi } = Firmware::of(&g.efi, &g.fadt);
    let fdt = matches!(g.fdt, Probe::Found(_));
    let value = json!({"uefi": uefi, "acpi": acpi, "device_tree": fdt});
    let Some(uefi) = uefi else {
        return unknown(id, title, &g.efi, super::gather::EFI_PLATFORM_SIZE, g);
    };
    let boot = if uefi { "UEFI" } else { "no UEFI" };
    let (status, finding, hint) = match (acpi, fdt) {
        (Some(true), _) => (
            Status::Ok,
            format!("{boot}, ACPI"),
            uefi.then(|| {
                "the new kernel finds ACPI through the UEFI system table named in \
                /chosen of the running device tree, which kexec passes on"
                    .to_owned()
            }),
        ),
        (_, true) => (
            Status::Ok,
            format!("{boot}, device tree"),
            Some(
                "kexec passes the running device tree (/sys/firmware/fdt) with a \
                new /chosen; --dtb FILE passes another"
                    .to_owned(),
            ),
        ),
        (Some(false), false) => (
            Status::Warn,
            format!(
                "{boot}, and neither ACPI tables nor {}",
                shown(sysroot::FDT)
            ),
            Some("kexec_load needs a device tree: give one with --dtb FILE".to_owned()),
        ),
        (None, false) => (
            Status::Unknown,
            format!("{boot}; {}", not_read(&g.fadt, ACPI_FADT)),
            None,
        ),
    };
    Check::new(id, title, status, finding, hint, value)
}

/// cpu0's caches as sysfs lists them: (level, type, line bytes).
fn sysfs_caches(g: &Gathered) -> Vec<(u64, String, Option<u64>)> {
    g.caches
        .iter()
        .filter_map(|c| {
            let level = c.level.text()?.trim().parse().ok()?;
            let kind = c
                .kind
                .text()
                .map_or_else(|| "?".to_owned(), |t| t.trim().to_owned());
            let line = c.line.text().and_then(|t| t.trim().parse().ok());
            Some((level, kind, line))
        })
        .collect()
}

fn cache(g: &Gathered) -> Check {
    let (id, title) = ("cache", "cache geometry");
    let sysfs = sysfs_caches(g);
    let listed: Vec<String> = sysfs
        .iter()
        .map(|(l, k, line)| {
            format!(
                "L{l} {k} {}",
                line.map_or("(no line size)".to_owned(), |b| format!("{b} B"))
            )
        })
        .collect();
    let sysfs_text = if listed.is_empty() {
        format!(
            "sysfs: {}",
            not_read(&g.caches_end, &super::gather::cache_file(0, "level"))
        )
    } else {
        format!("sysfs: {}", listed.join(", "))
    };
    let sysfs_value: Vec<Value> = sysfs
        .iter()
        .map(|(l, k, line)| json!({"level": l, "type": k, "coherency_line_size": line}))
        .collect();
    let Some(raw) = g.ctr_el0 else {
        let why = match (g.live, g.arch.as_deref()) {
            (true, Some(a)) if a != "aarch64" => format!("no CTR_EL0: {a} is not an arm64 machine"),
            (true, _) => "CTR_EL0 could not be read".to_owned(),
            (false, _) => "the capture does not record CTR_EL0".to_owned(),
        };
        return Check::new(
            id,
            title,
            Status::Unknown,
            format!("{why}; {sysfs_text}"),
            None,
            json!({"ctr_el0": null, "sysfs": sysfs_value}),
        );
    };
    let c = match ctr::decode(raw) {
        Ok(c) => c,
        Err(e) => {
            return Check::new(
                id,
                title,
                Status::Unknown,
                format!("{e}; {sysfs_text}"),
                None,
                json!({"ctr_el0": format!("{raw:#x}"), "sysfs": sysfs_value}),
            )
        }
    };
    let value = json!({
        "ctr_el0": format!("{raw:#x}"),
        "dminline": c.dminline,
        "iminline": c.iminline,
        "l1ip": c.l1ip.name(),
        "idc": c.idc,
        "dic": c.dic,
        "cwg": c.cwg,
        "sysfs": sysfs_value,
    });
    let finding = format!(
        "CTR_EL0 {raw:#x}: D-cache line {} B, I-cache line {} B, L1I {}, \
            IDC {}, DIC {}; {sysfs_text}",
        c.dminline,
        c.iminline,
        c.l1ip.name(),
        u8::from(c.idc),
        u8::from(c.dic)
    );
    // DminLine is the smallest data or unified line the CPU controls: a
    // smaller one in sysfs means the two descriptions disagree.
    let smaller = sysfs
        .iter()
        .find(|(_, k, line)| k != "Instruction" && line.is_some_and(|b| b < c.dminline));
    if let Some((level, kind, Some(line))) = smaller {
        return Check::new(
            id,
            title,
            Status::Warn,
            format!(
                "{finding}: sysfs's L{level} {kind} line ({line} B) is smaller \
                than CTR_EL0's DminLine ({} B)",
                c.dminline
            ),
            Some(
                "the firmware's cache description (device tree or ACPI PPTT) \
                disagrees with the CPU; cache maintenance by VA (the \
                purgatory's) steps by CTR_EL0's line"
                    .to_owned(),
            ),
            value,
        );
    }
    Check::new(id, title, Status::Ok, finding, None, value)
}

#[cfg(test)]
mod tests;

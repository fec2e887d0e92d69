//! `kexec doctor`'s checks of how the CPUs are stopped and started across
//! kexec: PSCI (device tree or ACPI FADT) and CPU hotplug. Pure, like
//! `checks.rs`; the kernel's rules are listed in `platform.rs`.

use kexec_core::fdt::{cpu_boot, CpuBoot};
use kexec_core::machine::fadt;
use serde_json::{json, Value};

use super::checks::{shown, unknown, Check, Status};
use super::gather::{possible_cpus, Gathered, ACPI_FADT};
use crate::sysroot::{self, Probe};

/// How many CPUs the machine has, by `possible`, else the device tree.
fn cpu_count(g: &Gathered, boot: Option<&CpuBoot>) -> Option<usize> {
    possible_cpus(&g.cpu_possible)
        .map(|c| c.len())
        .or_else(|| boot.map(|b| b.cpus.len()))
}

pub(super) fn psci(g: &Gathered) -> Check {
    let (id, title) = ("psci", "PSCI (CPU off/on)");
    let stuck_hint = || {
        Some(
            "kexec -p still loads (a crash kernel runs on one CPU); for kexec \
            -l the firmware must provide PSCI, or boot with nr_cpus=1"
                .to_owned(),
        )
    };
    if let Probe::Found(table) = &g.fadt {
        return match fadt::arm_boot_flags(table) {
            Ok(f) if f.psci_compliant => {
                let conduit = if f.psci_use_hvc { "hvc" } else { "smc" };
                Check::new(
                    id,
                    title,
                    Status::Ok,
                    format!("ACPI FADT: PSCI over {}", conduit.to_uppercase()),
                    None,
                    json!({"source": "acpi", "conduit": conduit}),
                )
            }
            Ok(_) if cpu_count(g, None).is_some_and(|n| n > 1) => Check::new(
                id,
                title,
                Status::Fail,
                "ACPI FADT: no PSCI: CPUs use the parking protocol, which cannot \
                    take a CPU offline; the kernel refuses kexec loads (EBUSY)",
                stuck_hint(),
                json!({"source": "acpi", "conduit": null}),
            ),
            Ok(_) => Check::new(
                id,
                title,
                Status::Ok,
                "ACPI FADT: no PSCI, but one CPU: nothing to take offline",
                None,
                json!({"source": "acpi", "conduit": null}),
            ),
            Err(e) => Check::new(
                id,
                title,
                Status::Unknown,
                format!("{}: {e}", shown(ACPI_FADT)),
                None,
                Value::Null,
            ),
        };
    }
    if let Probe::Unreadable { .. } = &g.fadt {
        return unknown(id, title, &g.fadt, ACPI_FADT, g);
    }
    let Probe::Found(dtb) = &g.fdt else {
        return unknown(id, title, &g.fdt, sysroot::FDT, g);
    };
    let boot = match cpu_boot(dtb) {
        Ok(b) => b,
        Err(e) => {
            return Check::new(
                id,
                title,
                Status::Unknown,
                format!("{}: {e}", shown(sysroot::FDT)),
                None,
                Value::Null,
            )
        }
    };
    let methods: Vec<Option<String>> = boot.cpus.iter().map(|c| c.enable_method.clone()).collect();
    let conduit = boot.psci.as_ref().and_then(|p| p.method.clone());
    let value = json!({
        "source": "device-tree",
        "conduit": conduit,
        "compatible": boot.psci.as_ref().map(|p| p.compatible.clone()),
        "enable_methods": methods,
    });
    let several = cpu_count(g, Some(&boot)).unwrap_or(boot.cpus.len()) > 1;
    let secondary_methods: Vec<&str> = boot
        .cpus
        .iter()
        .filter_map(|c| c.enable_method.as_deref())
        .collect();
    if boot.cpus.is_empty() {
        return Check::new(
            id,
            title,
            Status::Unknown,
            "the device tree has no CPU nodes under /cpus",
            None,
            value,
        );
    }
    if several && secondary_methods.contains(&"spin-table") {
        return Check::new(
            id,
            title,
            Status::Fail,
            "CPUs use spin-table, which cannot take a CPU offline: the kernel \
            refuses kexec loads (EBUSY, \"CPUs are stuck in the kernel\")",
            stuck_hint(),
            value,
        );
    }
    let uses_psci = secondary_methods.contains(&"psci");
    let Some(node) = &boot.psci else {
        return if uses_psci {
            Check::new(
                id,
                title,
                Status::Fail,
                "CPUs name enable-method \"psci\", but the device tree has no PSCI node",
                Some(
                    "the firmware's device tree is broken: CPUs cannot be stopped or started"
                        .to_owned(),
                ),
                value,
            )
        } else if several {
            Check::new(
                id,
                title,
                Status::Warn,
                format!("no PSCI node; enable methods {secondary_methods:?}"),
                None,
                value,
            )
        } else {
            Check::new(
                id,
                title,
                Status::Ok,
                "one CPU, no PSCI node: nothing to take offline",
                None,
                value,
            )
        };
    };
    let method_ok = matches!(node.method.as_deref(), Some("hvc" | "smc"));
    if !node.available || !method_ok {
        let what = if node.available {
            format!(
                "method {:?}, neither hvc nor smc",
                node.method.as_deref().unwrap_or("(none)")
            )
        } else {
            "disabled (status)".to_owned()
        };
        let status = if several { Status::Fail } else { Status::Warn };
        return Check::new(
            id,
            title,
            status,
            format!(
                "{} {}: {what}: the kernel cannot use PSCI",
                node.path, node.compatible
            ),
            Some(
                "CPUs cannot be taken offline or started: fix the firmware's device tree"
                    .to_owned(),
            ),
            value,
        );
    }
    if node.compatible == "arm,psci" && !node.has_cpu_off && several {
        return Check::new(
            id,
            title,
            Status::Fail,
            format!(
                "{} is PSCI 0.1 without a cpu_off function ID: CPUs cannot be \
            turned off, and kexec -e would stop the kernel",
                node.path
            ),
            Some("the firmware must give cpu_off (or PSCI 0.2+)".to_owned()),
            value,
        );
    }
    let method = node.method.as_deref().unwrap_or_default().to_uppercase();
    Check::new(
        id,
        title,
        Status::Ok,
        format!(
            "{} over {method}; CPUs: {}",
            node.compatible,
            if uses_psci { "psci" } else { "boot CPU only" }
        ),
        None,
        value,
    )
}

pub(super) fn cpu_hotplug(g: &Gathered) -> Check {
    let (id, title) = ("cpu_hotplug", "CPU hotplug");
    let Some(possible) = possible_cpus(&g.cpu_possible) else {
        return match &g.cpu_possible {
            Probe::Found(_) => Check::new(
                id,
                title,
                Status::Unknown,
                "/sys/devices/system/cpu/possible: not a CPU list",
                None,
                Value::Null,
            ),
            probe => unknown(id, title, probe, crate::crashdump::CPU_POSSIBLE, g),
        };
    };
    let hotpluggable: Vec<u32> = g
        .cpus
        .iter()
        .filter(|(_, p)| matches!(p, Probe::Found(_)))
        .map(|(c, _)| *c)
        .collect();
    let value = json!({
        "possible": possible,
        "online": g.cpu_online.text().map(|t| t.trim().to_owned()),
        "hotpluggable": hotpluggable,
    });
    if possible.len() <= 1 {
        return Check::new(
            id,
            title,
            Status::Ok,
            "one CPU: nothing to take offline",
            None,
            value,
        );
    }
    if let Some((cpu, probe)) = g
        .cpus
        .iter()
        .find(|(_, p)| matches!(p, Probe::NotCaptured | Probe::Unreadable { .. }))
    {
        return unknown(id, title, probe, &super::gather::cpu_online(*cpu), g);
    }
    // The reboot CPU (cpu0) stays online; every other must go offline.
    let stuck: Vec<u32> = g
        .cpus
        .iter()
        .filter(|(c, p)| *c != 0 && *p == Probe::Absent)
        .map(|(c, _)| *c)
        .collect();
    let offline: Vec<u32> = g
        .cpus
        .iter()
        .filter(|(_, p)| p.text().is_some_and(|t| t.trim() == "0"))
        .map(|(c, _)| *c)
        .collect();
    let online = g
        .cpu_online
        .text()
        .map_or_else(|| "?".to_owned(), |t| t.trim().to_owned());
    if !stuck.is_empty() {
        let list: Vec<String> = stuck.iter().map(|c| format!("cpu{c}")).collect();
        return Check::new(
            id,
            title,
            Status::Fail,
            format!(
                "{} cannot be taken offline (no online file): kexec -e offlines \
                every CPU but cpu0 and stops the kernel if one refuses",
                list.join(", ")
            ),
            Some(
                "a CPU is not hotpluggable without CONFIG_HOTPLUG_CPU, with \
                spin-table, or where a trusted OS runs on it; boot with \
                nr_cpus=1, or fix the firmware"
                    .to_owned(),
            ),
            value,
        );
    }
    let now = if offline.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = offline.iter().map(|c| format!("cpu{c}")).collect();
        format!(
            "; {} offline now (the new kernel starts every CPU again)",
            list.join(", ")
        )
    };
    Check::new(
        id,
        title,
        Status::Ok,
        format!(
            "{} CPUs, online {online}: every secondary can be taken offline \
            for kexec -e and started again by the new kernel{now}",
            possible.len()
        ),
        None,
        value,
    )
}

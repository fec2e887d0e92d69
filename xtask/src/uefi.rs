//! UEFI machines: QEMU `virt` with Debian's EDK II firmware (`qemu-efi-aarch64`)
//! starting kernel A's EFI stub directly (`-bios` with `-kernel`, `-initrd`
//! and `-append`: ArmVirtQemu loads all three from fw_cfg, no boot loader),
//! a GICv3 with an ITS (its LPI tables are reserved through the EFI
//! `LINUX_EFI_MEMRESERVE` table) and RAM above 4 GiB, described to the
//! kernel either by a device tree or by ACPI tables only.
//!
//! Every kernel of a UEFI scenario reports, beside the usual markers
//! ([`crate::guest`]), what [`FIRMWARE_REPORT`] prints, judged on the host by
//! [`check_firmware`].

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::qemu::{MachineShape, Timeline, UEFI_FIRMWARE};
use crate::scenario::{stage_name, KexecScenario};

/// How the firmware describes the machine to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// A device tree (QEMU's, passed on by EDK II as a configuration table):
    /// `-M virt,acpi=off`, so QEMU builds no ACPI tables for EDK II to install.
    DeviceTree,
    /// ACPI tables only: EDK II installs QEMU's ACPI tables and no device
    /// tree, so the EFI stub makes an empty one (`/chosen` with the
    /// `linux,uefi-*` properties, no `/memory` nodes); `acpi=force` on
    /// kernel A's command line.
    Acpi,
}

impl Tables {
    /// Short name, as used in test and fixture names.
    pub fn name(self) -> &'static str {
        match self {
            Tables::DeviceTree => "dt",
            Tables::Acpi => "acpi",
        }
    }
}

/// The UEFI machine: 4 CPUs, 4 GiB of RAM (1 GiB of it above 4 GiB: `virt`'s
/// RAM starts at 1 GiB), GICv3 with an ITS, the firmware of [`UEFI_FIRMWARE`].
pub fn shape(tables: Tables) -> MachineShape {
    let mut machine_options = vec!["gic-version=3".to_owned(), "its=on".to_owned()];
    let mut kernel_args = Vec::new();
    match tables {
        Tables::DeviceTree => machine_options.push("acpi=off".into()),
        Tables::Acpi => kernel_args.push("acpi=force".into()),
    }
    MachineShape {
        cpus: 4,
        memory_mib: 4096,
        machine_options,
        extra_qemu_args: vec!["-bios".into(), UEFI_FIRMWARE.into()],
        kernel_args,
        ..MachineShape::default()
    }
}

/// Shell snippet every kernel of a UEFI scenario runs (with `say`):
/// * `efi-runtime`: which of the platform devices that
///   drivers/firmware/efi/efi.c `efisubsys_init` registers only when the
///   firmware's runtime services are enabled and support them (`efivars`:
///   GetVariable and GetNextVariableName; `rtc-efi`: the time services) exist,
///   and the date read from the EFI RTC (drivers/rtc/rtc-efi.c: a GetTime
///   call into the firmware, or `none`);
/// * `acpi-tables`: the names under `/sys/firmware/acpi/tables`
///   (drivers/acpi/sysfs.c `acpi_table_attr_init`, e.g. `APIC`, `SSDT1`),
///   without the `data` and `dynamic` directories;
/// * `gic-lpi`: how many times the GICv3 ITS driver
///   (drivers/irqchip/irq-gic-v3-its.c) said it found the redistributor
///   tables already in use (`allocate_lpi_tables`: a kexec'd kernel, LPIs
///   left enabled), used a reserved or a freshly allocated pending table per
///   CPU (`its_cpu_init_lpis`), found a pending table outside the EFI
///   memreserve ranges (`gic_check_reserved_range`), or gave up on memory
///   LPIs were left writing to.
pub const FIRMWARE_REPORT: &str = r#"
efi_date=none
for d in /sys/bus/platform/devices/rtc-efi*/rtc/rtc*/date; do
  [ -r "$d" ] && efi_date=$(cat "$d" 2>/dev/null || echo unreadable)
done
say efi-runtime "efivars=$([ -e /sys/bus/platform/devices/efivars.0 ] && echo 1 || echo 0) rtc-efi=$(ls -d /sys/bus/platform/devices/rtc-efi* 2>/dev/null | wc -l) date=$efi_date"
say acpi-tables "$(ls /sys/firmware/acpi/tables 2>/dev/null | grep -vxE 'data|dynamic' | tr '\n' ' ')"
dmesg >/tmp/dmesg.txt
n() { grep -c "$1" /tmp/dmesg.txt; }
say gic-lpi "preallocated=$(n 'Using preallocated redistributor tables') reserved=$(n 'using reserved LPI pending table') allocated=$(n 'using allocated LPI pending table') not-reserved=$(n 'Expected reserved range') corrupted=$(n 'memory probably corrupted')"
"#;

/// Make every kernel of `scenario` run [`FIRMWARE_REPORT`]: kernel A before
/// its first load, each kexec'd kernel before its own load (or instead).
pub fn add_reports(scenario: &mut KexecScenario) {
    if let Some(first) = scenario.hops.first_mut() {
        first.before_load = format!("{FIRMWARE_REPORT}{}", first.before_load);
    }
    for hop in &mut scenario.hops {
        hop.next_script = format!("{FIRMWARE_REPORT}{}", hop.next_script);
    }
}

/// `key=value` fields of a marker value.
fn fields(value: &str) -> BTreeMap<&str, &str> {
    value
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect()
}

/// Check what [`FIRMWARE_REPORT`] printed in `stages` (`a` first; every
/// kernel booted the machine's `cpus` CPUs): each has EFI runtime services
/// (both devices, and the EFI RTC answered with a date); on
/// [`Tables::Acpi`] each sees kernel A's ACPI table set, which has a MADT
/// (`APIC`) and an IORT (the ITS), and on [`Tables::DeviceTree`] none; A
/// allocated an LPI pending table per CPU, and each kexec'd kernel found the
/// tables left enabled and every CPU's inside the EFI memreserve ranges.
/// Returns A's ACPI table list.
pub fn check_firmware(
    timeline: &Timeline,
    kernels: usize,
    cpus: u32,
    tables: Tables,
) -> Result<String> {
    let get = |stage: &str, key: &str| {
        timeline
            .marker(stage, key)
            .map(|m| m.value.clone())
            .with_context(|| format!("kernel {stage} never reported `{key}`"))
    };
    let acpi_a = get("a", "acpi-tables")?;
    match tables {
        Tables::Acpi => {
            let names: Vec<&str> = acpi_a.split_whitespace().collect();
            if !names.contains(&"APIC") || !names.contains(&"IORT") {
                bail!("kernel a's ACPI tables lack the MADT (APIC) or the IORT: {acpi_a:?}");
            }
        }
        Tables::DeviceTree if !acpi_a.trim().is_empty() => {
            bail!("kernel a on a device-tree machine has ACPI tables: {acpi_a}")
        }
        Tables::DeviceTree => {}
    }
    let cpus = cpus.to_string();
    for i in 0..kernels {
        let stage = stage_name(i);
        let runtime = get(&stage, "efi-runtime")?;
        let f = fields(&runtime);
        let date = f.get("date").copied().unwrap_or("none");
        if f.get("efivars") != Some(&"1")
            || f.get("rtc-efi") != Some(&"1")
            || date == "none"
            || date == "unreadable"
        {
            bail!("kernel {stage} has no EFI runtime services: {runtime}");
        }
        let acpi = get(&stage, "acpi-tables")?;
        if acpi != acpi_a {
            bail!("kernel {stage}'s ACPI tables {acpi:?} differ from kernel a's {acpi_a:?}");
        }
        let lpi = get(&stage, "gic-lpi")?;
        let f = fields(&lpi);
        let want: [(&str, &str); 5] = if i == 0 {
            [
                ("preallocated", "0"),
                ("reserved", "0"),
                ("allocated", &cpus),
                ("not-reserved", "0"),
                ("corrupted", "0"),
            ]
        } else {
            [
                ("preallocated", "1"),
                ("reserved", &cpus),
                ("allocated", "0"),
                ("not-reserved", "0"),
                ("corrupted", "0"),
            ]
        };
        for (key, value) in want {
            if f.get(key) != Some(&value) {
                bail!("kernel {stage}'s GICv3 LPI tables: {lpi} (wanted {key}={value})");
            }
        }
    }
    Ok(acpi_a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stage: &str, tables: &str, lpi: &str) -> Vec<String> {
        vec![
            format!("@@kxt {stage} efi-runtime efivars=1 rtc-efi=1 date=2026-11-30"),
            format!("@@kxt {stage} acpi-tables {tables}"),
            format!("@@kxt {stage} gic-lpi {lpi}"),
        ]
    }

    const FIRST: &str = "preallocated=0 reserved=0 allocated=4 not-reserved=0 corrupted=0";
    const KEXECD: &str = "preallocated=1 reserved=4 allocated=0 not-reserved=0 corrupted=0";
    const ACPI: &str = "APIC DBG2 DSDT FACP GTDT IORT MCFG PPTT SPCR";

    fn timeline(lines: &[Vec<String>]) -> Timeline {
        let lines: Vec<&str> = lines.iter().flatten().map(String::as_str).collect();
        Timeline::from_text(&lines)
    }

    #[test]
    fn matching_reports_pass() {
        let t = timeline(&[report("a", ACPI, FIRST), report("b", ACPI, KEXECD)]);
        assert_eq!(check_firmware(&t, 2, 4, Tables::Acpi).unwrap(), ACPI);
        let t = timeline(&[report("a", "", FIRST), report("b", "", KEXECD)]);
        check_firmware(&t, 2, 4, Tables::DeviceTree).unwrap();
    }

    #[test]
    fn each_wrong_report_fails() {
        let err = |lines: &[Vec<String>], tables| {
            check_firmware(&timeline(lines), 2, 4, tables)
                .unwrap_err()
                .to_string()
        };
        let a = report("a", ACPI, FIRST);
        // A table lost in B, or a different set.
        let e = err(&[a.clone(), report("b", "APIC DSDT", KEXECD)], Tables::Acpi);
        assert!(e.starts_with("kernel b's ACPI tables"), "{e}");
        // No runtime services in B (efivars missing, or the RTC unread).
        let mut b = report("b", ACPI, KEXECD);
        b[0] = "@@kxt b efi-runtime efivars=0 rtc-efi=0 date=none".into();
        assert!(
            err(&[a.clone(), b.clone()], Tables::Acpi).starts_with("kernel b has no EFI runtime")
        );
        b[0] = "@@kxt b efi-runtime efivars=1 rtc-efi=1 date=unreadable".into();
        assert!(err(&[a.clone(), b], Tables::Acpi).starts_with("kernel b has no EFI runtime"));
        // B allocated fresh LPI tables, or found one outside the memreserve ranges.
        let e = err(&[a.clone(), report("b", ACPI, FIRST)], Tables::Acpi);
        assert!(e.contains("wanted preallocated=1"), "{e}");
        let bad = KEXECD.replace("not-reserved=0", "not-reserved=2");
        let e = err(&[a.clone(), report("b", ACPI, &bad)], Tables::Acpi);
        assert!(e.contains("wanted not-reserved=0"), "{e}");
        let bad = KEXECD.replace("reserved=4 ", "reserved=3 ");
        assert!(err(&[a, report("b", ACPI, &bad)], Tables::Acpi).contains("wanted reserved=4"));
        // ACPI tables on the device-tree machine, none on the ACPI one.
        let e = err(
            &[report("a", ACPI, FIRST), report("b", ACPI, KEXECD)],
            Tables::DeviceTree,
        );
        assert!(e.starts_with("kernel a on a device-tree machine"), "{e}");
        let e = err(
            &[report("a", "", FIRST), report("b", "", KEXECD)],
            Tables::Acpi,
        );
        assert!(e.starts_with("kernel a's ACPI tables lack"), "{e}");
        // A kernel that never reported.
        let e = err(&[report("a", ACPI, FIRST)], Tables::Acpi);
        assert_eq!(e, "kernel b never reported `efi-runtime`");
    }

    #[test]
    fn shapes_carry_the_firmware_and_the_tables() {
        let dt = shape(Tables::DeviceTree);
        assert_eq!(dt.machine_options, ["gic-version=3", "its=on", "acpi=off"]);
        assert!(dt.kernel_args.is_empty());
        let acpi = shape(Tables::Acpi);
        assert_eq!(acpi.machine_options, ["gic-version=3", "its=on"]);
        assert_eq!(acpi.kernel_args, ["acpi=force"]);
        for s in [dt, acpi] {
            assert_eq!((s.cpus, s.memory_mib), (4, 4096));
            assert_eq!(s.extra_qemu_args, ["-bios", UEFI_FIRMWARE]);
        }
    }
}

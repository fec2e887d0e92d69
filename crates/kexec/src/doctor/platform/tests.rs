//! Every state of the checks in `platform.rs`, from hand-made [`Gathered`]
//! values.

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use kexec_core::machine::fadt;

use super::*;
use crate::doctor::testing::{check, machine};

fn found(text: &str) -> Probe {
    Probe::Found(text.as_bytes().to_vec())
}

fn string(name: &str, value: &str) -> DeviceTreeProperty {
    DeviceTreeProperty::new_unchecked(name, format!("{value}\0").into_bytes())
}

/// A device tree with a PSCI node (`compatible`, `method`, extra
/// properties) if given, and one CPU per enable method.
fn dtb(psci: Option<(&str, Option<&str>, &[DeviceTreeProperty])>, cpus: &[Option<&str>]) -> Probe {
    let mut t = DeviceTree::new();
    if let Some((compatible, method, extra)) = psci {
        let mut node = DeviceTreeNode::new_unchecked("psci");
        node.add_property(string("compatible", compatible));
        if let Some(m) = method {
            node.add_property(string("method", m));
        }
        for p in extra {
            node.add_property(p.clone());
        }
        t.root.add_child(node);
    }
    let mut parent = DeviceTreeNode::new_unchecked("cpus");
    for (i, m) in cpus.iter().enumerate() {
        let mut cpu = DeviceTreeNode::new_unchecked(format!("cpu@{i}"));
        cpu.add_property(string("device_type", "cpu"));
        if let Some(m) = m {
            cpu.add_property(string("enable-method", m));
        }
        parent.add_child(cpu);
    }
    t.root.add_child(parent);
    Probe::Found(t.to_dtb())
}

fn with_fdt(fdt: Probe, possible: &str) -> Gathered {
    Gathered {
        fdt,
        cpu_possible: found(possible),
        ..machine()
    }
}

#[test]
fn loaded_kernel() {
    let at = |p: Probe| {
        check(
            &Gathered {
                kexec_loaded: p,
                ..machine()
            },
            "kexec_loaded",
        )
    };
    assert_eq!(at(found("1\n")).status, Status::Ok);
    assert!(at(found("1\n")).finding.contains("kexec -e boots it"));
    assert_eq!(at(found("0\n")).finding, "none loaded");
    let c = at(Probe::Absent);
    assert_eq!(c.status, Status::Fail);
    assert!(c.hint.unwrap().contains("CONFIG_KEXEC_CORE"));
    assert_eq!(at(found("x")).status, Status::Unknown);
    assert_eq!(at(Probe::NotCaptured).status, Status::Unknown);
}

#[test]
fn crash_region() {
    let iomem = "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
                 6ac00000-7abfffff : Crash kernel\n";
    let reserved = Gathered {
        iomem: found(iomem),
        crash_size: found("268435456\n"),
        ..machine()
    };
    let c = check(&reserved, "crashkernel");
    assert_eq!(c.status, Status::Ok);
    assert_eq!(
        c.finding,
        "256 MiB at 0x6ac00000-0x7abfffff (kexec_crash_size 256 MiB)"
    );
    assert_eq!(c.value["regions"][0]["start"], "0x6ac00000");
    // None reserved: how to get one, or why the one asked for is missing.
    let c = check(&machine(), "crashkernel");
    assert_eq!(c.status, Status::Warn);
    assert!(c
        .hint
        .unwrap()
        .starts_with("boot the running kernel with crashkernel="));
    let asked = Gathered {
        cmdline: found("root=/dev/vda crashkernel=64G\n"),
        ..machine()
    };
    assert!(check(&asked, "crashkernel")
        .hint
        .unwrap()
        .contains("reserved nothing"));
    let hidden = Gathered {
        iomem: found("00000000-00000000 : System RAM\n"),
        status: found("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n"),
        ..machine()
    };
    let c = check(&hidden, "crashkernel");
    assert_eq!(c.status, Status::Unknown);
    assert!(c.hint.unwrap().starts_with("run as root"));
    let bad = Gathered {
        iomem: found("nonsense\n"),
        ..machine()
    };
    assert_eq!(check(&bad, "crashkernel").status, Status::Unknown);
    let denied = Gathered {
        iomem: Probe::Unreadable {
            denied: true,
            message: "Permission denied".into(),
        },
        status: found("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n"),
        ..machine()
    };
    let c = check(&denied, "crashkernel");
    assert_eq!(c.status, Status::Unknown);
    assert_eq!(c.hint.as_deref(), Some("run kexec doctor as root"));

    // The loaded crash kernel, by reservation.
    let loaded = |flag: &str, g: &Gathered| {
        check(
            &Gathered {
                crash_loaded: found(flag),
                ..g.clone()
            },
            "crash_kernel_loaded",
        )
    };
    assert_eq!(loaded("1\n", &reserved).status, Status::Ok);
    let c = loaded("0\n", &reserved);
    assert_eq!(c.status, Status::Warn);
    assert!(c.hint.unwrap().contains("kexec -p"));
    assert_eq!(loaded("0\n", &machine()).status, Status::Ok);
    assert_eq!(loaded("?\n", &machine()).status, Status::Unknown);
    let absent = Gathered {
        crash_loaded: Probe::Absent,
        ..machine()
    };
    assert_eq!(
        check(&absent, "crash_kernel_loaded").status,
        Status::Unknown
    );
}

#[test]
fn firmware() {
    let c = check(&machine(), "firmware");
    assert_eq!(
        (c.status, c.finding.as_str()),
        (Status::Ok, "no UEFI, device tree")
    );
    assert!(c.hint.unwrap().contains("--dtb FILE"));
    let acpi = Gathered {
        efi: found("64\n"),
        fadt: Probe::Unreadable {
            denied: true,
            message: "Permission denied".into(),
        },
        ..machine()
    };
    let c = check(&acpi, "firmware");
    assert_eq!(c.finding, "UEFI, ACPI");
    assert_eq!(
        c.value,
        json!({"uefi": true, "acpi": true, "device_tree": true})
    );
    let nothing = Gathered {
        fdt: Probe::Absent,
        ..machine()
    };
    let c = check(&nothing, "firmware");
    assert_eq!(c.status, Status::Warn);
    assert!(c.hint.unwrap().contains("--dtb FILE"));
    let old = Gathered {
        live: false,
        efi: Probe::NotCaptured,
        ..machine()
    };
    assert_eq!(check(&old, "firmware").status, Status::Unknown);
    let half = Gathered {
        fdt: Probe::NotCaptured,
        fadt: Probe::NotCaptured,
        ..machine()
    };
    assert_eq!(check(&half, "firmware").status, Status::Unknown);
}

#[test]
fn psci_on_acpi() {
    let at = |flags: Probe, possible: &str| {
        check(
            &Gathered {
                fadt: flags,
                cpu_possible: found(possible),
                ..machine()
            },
            "psci",
        )
    };
    let c = at(Probe::Found(fadt::synthetic(276, 0b11)), "0-1");
    assert_eq!(
        (c.status, c.finding.as_str()),
        (Status::Ok, "ACPI FADT: PSCI over HVC")
    );
    assert!(at(Probe::Found(fadt::synthetic(276, 0b01)), "0-1")
        .finding
        .ends_with("SMC"));
    let c = at(Probe::Found(fadt::synthetic(276, 0)), "0-3");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("parking protocol"));
    assert_eq!(
        at(Probe::Found(fadt::synthetic(276, 0)), "0").status,
        Status::Ok
    );
    assert_eq!(
        at(Probe::Found(fadt::synthetic(100, 0)), "0-1").status,
        Status::Unknown
    );
    let c = at(
        Probe::Unreadable {
            denied: true,
            message: "Permission denied".into(),
        },
        "0-1",
    );
    assert_eq!(c.status, Status::Unknown);
}

#[test]
fn psci_on_device_trees() {
    let at = |fdt: Probe, possible: &str| check(&with_fdt(fdt, possible), "psci");
    let qemu = ("arm,psci-1.0\0arm,psci-0.2\0arm,psci", Some("hvc"), &[][..]);
    // QEMU's own tree.
    let c = check(&machine(), "psci");
    assert_eq!(c.status, Status::Ok);
    assert_eq!(c.finding, "arm,psci-1.0 over HVC; CPUs: psci");
    assert_eq!(c.value["enable_methods"], json!(["psci", "psci"]));
    assert_eq!(
        at(dtb(Some(qemu), &[Some("psci"); 2]), "0-1").status,
        Status::Ok
    );
    // spin-table with several CPUs: the kernel refuses kexec loads.
    let c = at(dtb(None, &[None, Some("spin-table")]), "0-1");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("spin-table"), "{}", c.finding);
    assert!(c.hint.unwrap().contains("kexec -p still loads"));
    assert_eq!(at(dtb(None, &[None]), "0").status, Status::Ok);
    // PSCI named, node missing.
    let c = at(dtb(None, &[Some("psci"), Some("psci")]), "0-1");
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("no PSCI node"));
    assert_eq!(
        at(dtb(None, &[Some("weird"), Some("weird")]), "0-1").status,
        Status::Warn
    );
    // A PSCI node the kernel cannot use.
    let c = at(
        dtb(Some(("arm,psci-1.0", None, &[])), &[Some("psci"); 2]),
        "0-1",
    );
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("neither hvc nor smc"), "{}", c.finding);
    assert_eq!(
        at(
            dtb(Some(("arm,psci-1.0", Some("svc"), &[])), &[Some("psci")]),
            "0"
        )
        .status,
        Status::Warn
    );
    let disabled = [string("status", "disabled")];
    let c = at(
        dtb(
            Some(("arm,psci-0.2", Some("smc"), &disabled)),
            &[Some("psci"); 2],
        ),
        "0-1",
    );
    assert!(c.finding.contains("disabled"), "{}", c.finding);
    // PSCI 0.1 needs a cpu_off function ID.
    let c = at(
        dtb(Some(("arm,psci", Some("smc"), &[])), &[Some("psci"); 2]),
        "0-1",
    );
    assert_eq!(c.status, Status::Fail);
    assert!(c.finding.contains("cpu_off"));
    let cpu_off = [DeviceTreeProperty::new_unchecked("cpu_off", 0x8400_0002u32)];
    assert_eq!(
        at(
            dtb(
                Some(("arm,psci", Some("smc"), &cpu_off)),
                &[Some("psci"); 2]
            ),
            "0-1"
        )
        .status,
        Status::Ok
    );
    // No tree, a broken one, no CPUs.
    assert_eq!(at(Probe::Absent, "0-1").status, Status::Unknown);
    assert_eq!(at(found("not a dtb"), "0-1").status, Status::Unknown);
    assert_eq!(at(dtb(Some(qemu), &[]), "0-1").status, Status::Unknown);
}

#[test]
fn cpu_hotplug() {
    let at = |possible: &str, cpus: Vec<(u32, Probe)>| {
        check(
            &Gathered {
                cpu_possible: found(possible),
                cpus,
                ..machine()
            },
            "cpu_hotplug",
        )
    };
    let c = check(&machine(), "cpu_hotplug");
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.starts_with("2 CPUs, online 0-1"), "{}", c.finding);
    assert_eq!(at("0", vec![(0, Probe::Absent)]).status, Status::Ok);
    let c = at(
        "0-2",
        vec![(0, found("1")), (1, found("1")), (2, found("0"))],
    );
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.contains("cpu2 offline now"), "{}", c.finding);
    // cpu0 (the reboot CPU) need not go offline; cpu1 must.
    assert_eq!(
        at("0-1", vec![(0, Probe::Absent), (1, found("1"))]).status,
        Status::Ok
    );
    let c = at("0-1", vec![(0, found("1")), (1, Probe::Absent)]);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.finding.starts_with("cpu1 cannot be taken offline"),
        "{}",
        c.finding
    );
    let c = at("0-1", vec![(0, found("1")), (1, Probe::NotCaptured)]);
    assert_eq!(c.status, Status::Unknown);
    assert_eq!(at("x-y", vec![]).status, Status::Unknown);
    let none = Gathered {
        cpu_possible: Probe::NotCaptured,
        ..machine()
    };
    assert_eq!(check(&none, "cpu_hotplug").status, Status::Unknown);
}

#[test]
fn cache_geometry() {
    let c = check(&machine(), "cache");
    assert_eq!(c.status, Status::Ok);
    assert!(
        c.finding.starts_with(
            "CTR_EL0 0x8444c004: D-cache line 64 B, I-cache line 64 B, L1I PIPT, IDC 0, DIC 0"
        ),
        "{}",
        c.finding
    );
    assert!(
        c.finding
            .ends_with("sysfs: L1 Data 64 B, L1 Instruction 64 B, L2 Unified 64 B"),
        "{}",
        c.finding
    );
    assert_eq!(c.value["dminline"], 64);
    assert_eq!(c.value["l1ip"], "PIPT");
    // A D-cache line smaller than DminLine in sysfs: the two disagree.
    let mut small = machine();
    small.caches[2].line = found("32\n");
    let c = check(&small, "cache");
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.finding.contains("L2 Unified line (32 B) is smaller"),
        "{}",
        c.finding
    );
    // sysfs without line sizes, as in the QEMU guest: arm64 reads only
    // CLIDR_EL1 (arch/arm64/kernel/cacheinfo.c, 6.1), sizes come from the
    // device tree or ACPI PPTT. Listed, nothing to compare.
    let mut sizeless = machine();
    for c in &mut sizeless.caches {
        c.line = Probe::Absent;
    }
    let c = check(&sizeless, "cache");
    assert_eq!(c.status, Status::Ok);
    assert!(c.finding.ends_with("sysfs: L1 Data (no line size), L1 Instruction (no line size), L2 Unified (no line size)"), "{}", c.finding);
    assert_eq!(c.value["sysfs"][0]["coherency_line_size"], Value::Null);
    // An I-cache line smaller than DminLine is not a disagreement.
    let mut small_i = machine();
    small_i.caches[1].line = found("32\n");
    assert_eq!(check(&small_i, "cache").status, Status::Ok);
    let unread = Gathered {
        ctr_el0: None,
        ..machine()
    };
    assert!(check(&unread, "cache")
        .finding
        .starts_with("CTR_EL0 could not be read"));
    let x86 = Gathered {
        ctr_el0: None,
        arch: Some("x86_64".into()),
        ..machine()
    };
    assert!(check(&x86, "cache")
        .finding
        .starts_with("no CTR_EL0: x86_64 is not an arm64 machine"));
    let old = Gathered {
        live: false,
        ctr_el0: None,
        caches: vec![],
        caches_end: Probe::NotCaptured,
        ..machine()
    };
    let c = check(&old, "cache");
    assert_eq!(c.status, Status::Unknown);
    assert!(
        c.finding.contains("does not record CTR_EL0"),
        "{}",
        c.finding
    );
    assert!(c.finding.contains("not in this capture"), "{}", c.finding);
    let bad = Gathered {
        ctr_el0: Some(0x0444_c004),
        ..machine()
    };
    assert_eq!(check(&bad, "cache").status, Status::Unknown);
}

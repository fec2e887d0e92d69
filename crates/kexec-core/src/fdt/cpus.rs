//! How the running kernel starts and stops its CPUs, as its device tree
//! says ([`cpu_boot`]): the PSCI node and each CPU's `enable-method`.
//!
//! kexec needs every secondary CPU taken offline before `kexec -e` and
//! started again by the new kernel. On arm64 (Linux 6.1):
//! * the PSCI node is the first node, in tree order, whose `compatible`
//!   names `arm,psci`, `arm,psci-0.2` or `arm,psci-1.0`, and it must be
//!   available (`psci_dt_init`, drivers/firmware/psci/psci.c); its
//!   `method` must be `hvc` or `smc` (`get_set_conduit_method`, same file);
//!   PSCI 0.1 (`arm,psci`) takes its function IDs from properties, so
//!   without `cpu_off` a CPU cannot be turned off (`psci_0_1_init`);
//! * the CPUs are the children of `/cpus` named `cpu` or of
//!   `device_type = "cpu"`, skipping `status = "fail…"`
//!   (`of_get_next_cpu_node`, drivers/of/base.c); each names its
//!   `enable-method`, `psci` or `spin-table` (`cpu_read_enable_method`,
//!   arch/arm64/kernel/cpu_ops.c; the boot CPU may have none);
//! * spin-table has no `cpu_die`, so with more than one CPU the kernel
//!   refuses a kexec load with EBUSY ("CPUs are stuck in the kernel":
//!   `cpus_are_stuck_in_kernel`, arch/arm64/kernel/smp.c, and
//!   `machine_kexec_prepare`, arch/arm64/kernel/machine_kexec.c);
//! * a CPU's MPIDR affinity is its `reg`: the first `#address-cells` cells
//!   (of its parent, else the nearest ancestor that has one, else 1),
//!   big-endian (`of_get_cpu_hwid`, `of_n_addr_cells`, drivers/of/base.c;
//!   `OF_ROOT_NODE_ADDR_CELLS_DEFAULT`, drivers/of/of_private.h); a value
//!   with bits outside `MPIDR_HWID_BITMASK`, or one seen before, is not a
//!   CPU the kernel uses (`of_parse_and_init_cpus`, arch/arm64/kernel/smp.c).
//!
//! [`psci_cpus`] picks from that the CPUs the purgatory may start with PSCI
//! `CPU_ON` to hash with it (`handoff::smp`).

use dtoolkit::model::{DeviceTree, DeviceTreeNode};
use dtoolkit::{Node, Property};

use super::parse::{parse, Error};

/// The `compatible` strings of a PSCI node, newest first
/// (`psci_of_match`, drivers/firmware/psci/psci.c).
pub const PSCI_COMPATIBLE: [&str; 3] = ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];

/// The PSCI node the kernel would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsciNode {
    /// Its path, e.g. `/psci`.
    pub path: String,
    /// The first of its `compatible` strings that the kernel matches.
    pub compatible: String,
    /// `method` (`hvc`, `smc`, or something the kernel refuses); `None`
    /// when absent.
    pub method: Option<String>,
    /// `status` says it is available (absent, `okay` or `ok`).
    pub available: bool,
    /// PSCI 0.1 only: whether it gives a `cpu_off` function ID.
    pub has_cpu_off: bool,
}

/// One CPU node of `/cpus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuNode {
    /// Its name, e.g. `cpu@1`.
    pub name: String,
    /// `enable-method`, `None` when absent.
    pub enable_method: Option<String>,
    /// Its hardware id (`reg`, read as the kernel reads it: the module
    /// documentation), `None` when `reg` is absent or too short.
    pub hwid: Option<u64>,
}

/// What the device tree says about starting and stopping CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuBoot {
    /// The PSCI node, if any.
    pub psci: Option<PsciNode>,
    /// The CPU nodes, in tree order.
    pub cpus: Vec<CpuNode>,
}

/// The NUL-separated strings of a property value (invalid UTF-8 replaced).
fn strings(value: &[u8]) -> Vec<String> {
    value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A string property's first string.
fn string(node: &DeviceTreeNode, name: &str) -> Option<String> {
    node.property(name)
        .and_then(|p| strings(p.value()).into_iter().next())
}

/// `status` absent, `okay` or `ok` (`__of_device_is_available`, drivers/of/base.c).
fn available(node: &DeviceTreeNode) -> bool {
    string(node, "status").is_none_or(|s| s == "okay" || s == "ok")
}

/// `status` is `fail` or `fail-…` (`__of_device_is_fail`, drivers/of/base.c).
fn failed(node: &DeviceTreeNode) -> bool {
    string(node, "status").is_some_and(|s| s == "fail" || s.starts_with("fail-"))
}

/// The first node in tree order (depth first) with a PSCI `compatible`.
fn find_psci(node: &DeviceTreeNode, path: &str) -> Option<PsciNode> {
    let compatibles = node
        .property("compatible")
        .map(|p| strings(p.value()))
        .unwrap_or_default();
    if let Some(c) = compatibles
        .iter()
        .find(|c| PSCI_COMPATIBLE.contains(&c.as_str()))
    {
        return Some(PsciNode {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            compatible: c.clone(),
            method: string(node, "method"),
            available: available(node),
            has_cpu_off: node.property("cpu_off").is_some(),
        });
    }
    node.children()
        .find_map(|child| find_psci(child, &format!("{path}/{}", child.name())))
}

/// A big-endian u32 property.
fn u32_property(node: &DeviceTreeNode, name: &str) -> Option<u32> {
    let p = node.property(name)?;
    Some(u32::from_be_bytes(p.value().get(..4)?.try_into().ok()?))
}

/// The first `cells` cells of `reg`, folded as `of_read_number` does (into
/// 64 bits: only the last two cells survive).
fn hwid(node: &DeviceTreeNode, cells: u32) -> Option<u64> {
    let reg = node.property("reg")?;
    let n = usize::try_from(cells).ok().filter(|&n| n > 0)?;
    let bytes = reg.value().get(..n.checked_mul(4)?)?;
    Some(bytes.chunks_exact(4).fold(0u64, |r, c| {
        let cell = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        r.checked_shl(32).unwrap_or(0) | u64::from(cell)
    }))
}

/// The CPU nodes of `/cpus` the kernel would see.
fn cpu_nodes(tree: &DeviceTree) -> Vec<CpuNode> {
    let Some(cpus) = tree.root.children().find(|c| c.name() == "cpus") else {
        return Vec::new();
    };
    let cells = u32_property(cpus, "#address-cells")
        .or_else(|| u32_property(&tree.root, "#address-cells"))
        .unwrap_or(OF_ROOT_NODE_ADDR_CELLS_DEFAULT);
    cpus.children()
        .filter(|c| {
            c.name().split('@').next() == Some("cpu")
                || string(c, "device_type").as_deref() == Some("cpu")
        })
        .filter(|c| !failed(c))
        .map(|c| CpuNode {
            name: c.name().to_owned(),
            enable_method: string(c, "enable-method"),
            hwid: hwid(c, cells),
        })
        .collect()
}

/// `#address-cells` where no node has one, on arm64
/// (drivers/of/of_private.h).
const OF_ROOT_NODE_ADDR_CELLS_DEFAULT: u32 = 1;

/// `MPIDR_HWID_BITMASK` (arch/arm64/include/asm/cputype.h): the affinity
/// fields of `MPIDR_EL1`.
pub const MPIDR_HWID_BITMASK: u64 = 0xff_00ff_ffff;

/// How the purgatory calls PSCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciMethod {
    /// `HVC #0`.
    Hvc,
    /// `SMC #0`.
    Smc,
}

impl PsciMethod {
    /// The device tree's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
        }
    }
}

/// CPUs the purgatory may start with PSCI `CPU_ON` to hash with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsciCpus {
    /// The conduit.
    pub method: PsciMethod,
    /// Their MPIDR affinities, in tree order (at most `limit` of
    /// [`psci_cpus`]); the CPU that runs the purgatory skips its own.
    pub mpidrs: Vec<u64>,
}

/// The CPUs `boot` lets the purgatory start, at most `limit`: with an
/// available PSCI node of version 0.2 or later (PSCI 0.1 takes its
/// function IDs from the tree; the purgatory uses the standard ones) whose
/// `method` is `hvc` or `smc`, each CPU whose `enable-method` is `psci`
/// with a valid hardware id seen once (the kernel's own rules above).
/// `None`: no PSCI the purgatory can use, no such CPU, or a tree of one
/// CPU (the one that runs the purgatory).
pub fn psci_cpus(boot: &CpuBoot, limit: usize) -> Option<PsciCpus> {
    let psci = boot.psci.as_ref().filter(|p| p.available)?;
    if psci.compatible == "arm,psci" {
        return None;
    }
    let method = match psci.method.as_deref() {
        Some("hvc") => PsciMethod::Hvc,
        Some("smc") => PsciMethod::Smc,
        _ => return None,
    };
    let mut seen = Vec::new();
    let mut mpidrs = Vec::new();
    for c in &boot.cpus {
        let Some(id) = c.hwid.filter(|id| id & !MPIDR_HWID_BITMASK == 0) else {
            continue;
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if c.enable_method.as_deref() == Some("psci") && mpidrs.len() < limit {
            mpidrs.push(id);
        }
    }
    // One CPU in the tree is the one that runs the purgatory.
    (seen.len() > 1 && !mpidrs.is_empty()).then_some(PsciCpus { method, mpidrs })
}

/// What `dtb` says about starting and stopping CPUs, or why it is not a
/// device tree.
pub fn cpu_boot(dtb: &[u8]) -> Result<CpuBoot, Error> {
    Ok(cpu_boot_of(&parse(dtb)?))
}

/// What a parsed device tree says about starting and stopping CPUs.
pub fn cpu_boot_of(tree: &DeviceTree) -> CpuBoot {
    CpuBoot {
        psci: find_psci(&tree.root, ""),
        cpus: cpu_nodes(tree),
    }
}

#[cfg(test)]
mod tests {
    use dtoolkit::model::{DeviceTreeNode, DeviceTreeProperty};

    use super::*;

    fn prop(name: &str, value: &[u8]) -> DeviceTreeProperty {
        DeviceTreeProperty::new_unchecked(name, value.to_vec())
    }

    /// A tree with a PSCI node of `compatible` (NUL-separated) and
    /// `method`, and CPUs with these enable methods (`reg` = their index,
    /// one cell).
    fn tree(psci: Option<(&[u8], Option<&str>)>, cpus: &[Option<&str>]) -> Vec<u8> {
        let mut t = DeviceTree::new();
        if let Some((compatible, method)) = psci {
            let mut node = DeviceTreeNode::new_unchecked("psci");
            node.add_property(prop("compatible", compatible));
            if let Some(m) = method {
                node.add_property(prop("method", format!("{m}\0").as_bytes()));
            }
            t.root.add_child(node);
        }
        let mut cpu_parent = DeviceTreeNode::new_unchecked("cpus");
        cpu_parent.add_property(prop("#address-cells", &1u32.to_be_bytes()));
        for (i, method) in cpus.iter().enumerate() {
            let mut cpu = DeviceTreeNode::new_unchecked(format!("cpu@{i}"));
            cpu.add_property(prop("device_type", b"cpu\0"));
            let reg = u32::try_from(i).unwrap_or(u32::MAX);
            cpu.add_property(prop("reg", &reg.to_be_bytes()));
            if let Some(m) = method {
                cpu.add_property(prop("enable-method", format!("{m}\0").as_bytes()));
            }
            cpu_parent.add_child(cpu);
        }
        t.root.add_child(cpu_parent);
        t.to_dtb()
    }

    #[test]
    fn qemu_virt_psci_and_cpus() {
        let dtb = tree(
            Some((b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0", Some("hvc"))),
            &[Some("psci"), Some("psci")],
        );
        let boot = cpu_boot(&dtb).unwrap();
        let psci = boot.psci.unwrap();
        assert_eq!(psci.path, "/psci");
        assert_eq!(psci.compatible, "arm,psci-1.0");
        assert_eq!(psci.method.as_deref(), Some("hvc"));
        assert!(psci.available);
        assert_eq!(boot.cpus.len(), 2);
        assert_eq!(boot.cpus[1].name, "cpu@1");
        assert_eq!(boot.cpus[1].enable_method.as_deref(), Some("psci"));
    }

    #[test]
    fn spin_table_without_psci() {
        let dtb = tree(None, &[None, Some("spin-table")]);
        let boot = cpu_boot(&dtb).unwrap();
        assert_eq!(boot.psci, None);
        assert_eq!(boot.cpus[0].enable_method, None);
        assert_eq!(boot.cpus[1].enable_method.as_deref(), Some("spin-table"));
    }

    #[test]
    fn psci_0_1_method_missing_and_failed_cpus() {
        let dtb = tree(Some((b"arm,psci\0", None)), &[Some("psci")]);
        let psci = cpu_boot(&dtb).unwrap().psci.unwrap();
        assert_eq!(psci.compatible, "arm,psci");
        assert_eq!(psci.method, None);
        assert!(!psci.has_cpu_off);
        // A CPU with status = "fail" is not one the kernel sees; a node not
        // named cpu without device_type is not a CPU.
        let mut t = parse(&dtb).unwrap();
        let cpus = t.root.child_mut("cpus").unwrap();
        let mut failed = DeviceTreeNode::new_unchecked("cpu@7");
        failed.add_property(prop("status", b"fail-sss\0"));
        cpus.add_child(failed);
        cpus.add_child(DeviceTreeNode::new_unchecked("idle-states"));
        let boot = cpu_boot(&t.to_dtb()).unwrap();
        assert_eq!(boot.cpus.len(), 1, "{boot:?}");
    }

    #[test]
    fn psci_cpus_of_qemu_virt_and_what_rules_them_out() {
        fn psci<'a>(compatible: &'a [u8], method: &'a str) -> Option<(&'a [u8], Option<&'a str>)> {
            Some((compatible, Some(method)))
        }
        let four = [Some("psci"); 4];
        let dtb = tree(
            psci(b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0", "hvc"),
            &four,
        );
        let boot = cpu_boot(&dtb).unwrap();
        assert_eq!(
            boot.cpus.iter().map(|c| c.hwid).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2), Some(3)]
        );
        let cpus = psci_cpus(&boot, 7).unwrap();
        assert_eq!(
            (cpus.method, cpus.mpidrs.as_slice()),
            (PsciMethod::Hvc, &[0, 1, 2, 3][..])
        );
        assert_eq!(psci_cpus(&boot, 2).unwrap().mpidrs, [0, 1]);
        let smc = tree(psci(b"arm,psci-0.2\0", "smc"), &four);
        let cpus = psci_cpus(&cpu_boot(&smc).unwrap(), 7).unwrap();
        assert_eq!(cpus.method.name(), "smc");
        // PSCI 0.1, another method, no PSCI, spin-table CPUs: none.
        for (why, dtb) in [
            ("0.1", tree(psci(b"arm,psci\0", "hvc"), &four)),
            ("method", tree(psci(b"arm,psci-0.2\0", "svc"), &four)),
            ("no psci", tree(None, &four)),
            (
                "spin-table",
                tree(psci(b"arm,psci-0.2\0", "smc"), &[None, Some("spin-table")]),
            ),
        ] {
            assert_eq!(psci_cpus(&cpu_boot(&dtb).unwrap(), 7), None, "{why}");
        }
        // One CPU: nothing to start.
        let one = tree(psci(b"arm,psci-1.0\0", "hvc"), &[Some("psci")]);
        assert_eq!(psci_cpus(&cpu_boot(&one).unwrap(), 7), None);
        // Unavailable PSCI node.
        let mut t = parse(&dtb_with_status()).unwrap();
        assert_eq!(psci_cpus(&cpu_boot(&t.to_dtb()).unwrap(), 7), None);
        t.root.child_mut("psci").unwrap().remove_property("status");
        assert!(psci_cpus(&cpu_boot(&t.to_dtb()).unwrap(), 7).is_some());
    }

    fn dtb_with_status() -> Vec<u8> {
        let dtb = tree(Some((b"arm,psci-0.2\0", Some("hvc"))), &[Some("psci"); 2]);
        let mut t = parse(&dtb).unwrap();
        t.root
            .child_mut("psci")
            .unwrap()
            .add_property(prop("status", b"disabled\0"));
        t.to_dtb()
    }

    /// `reg` read as the kernel reads it: two cells (a cluster in Aff1),
    /// the root's `#address-cells` when `/cpus` has none, the default of
    /// one cell, too short, bits outside the affinity fields, duplicates.
    #[test]
    fn hardware_ids_follow_the_kernels_reading() {
        let cpu = |name: &str, reg: &[u8]| {
            let mut c = DeviceTreeNode::new_unchecked(name);
            c.add_property(prop("device_type", b"cpu\0"));
            c.add_property(prop("enable-method", b"psci\0"));
            c.add_property(prop("reg", reg));
            c
        };
        let build = |root_cells: Option<u32>, cpus_cells: Option<u32>, regs: &[&[u8]]| {
            let mut t = DeviceTree::new();
            if let Some(n) = root_cells {
                t.root
                    .add_property(prop("#address-cells", &n.to_be_bytes()));
            }
            let mut node = DeviceTreeNode::new_unchecked("psci");
            node.add_property(prop("compatible", b"arm,psci-1.0\0"));
            node.add_property(prop("method", b"smc\0"));
            t.root.add_child(node);
            let mut cpus = DeviceTreeNode::new_unchecked("cpus");
            if let Some(n) = cpus_cells {
                cpus.add_property(prop("#address-cells", &n.to_be_bytes()));
            }
            for (i, r) in regs.iter().enumerate() {
                cpus.add_child(cpu(&format!("cpu@{i}"), r));
            }
            t.root.add_child(cpus);
            cpu_boot(&t.to_dtb()).unwrap()
        };
        let two = [0u32, 0x100].map(|a| [0u32.to_be_bytes(), a.to_be_bytes()].concat());
        let boot = build(None, Some(2), &[&two[0], &two[1]]);
        assert_eq!(psci_cpus(&boot, 7).unwrap().mpidrs, [0, 0x100]);
        // /cpus without #address-cells: the root's, else one cell.
        let boot = build(Some(2), None, &[&two[0], &two[1]]);
        assert_eq!(psci_cpus(&boot, 7).unwrap().mpidrs, [0, 0x100]);
        let boot = build(None, None, &[&two[1]]);
        assert_eq!(boot.cpus[0].hwid, Some(0), "the first cell only");
        // Too short; Aff3 in bits 39:32 is fine, bit 31 is not; a duplicate.
        let aff3 = [0x1u32, 0x0].map(u32::to_be_bytes).concat();
        let bit31 = [0u32, 0x8000_0000].map(u32::to_be_bytes).concat();
        let boot = build(
            None,
            Some(2),
            &[&two[0], &[0, 0, 0, 1], &aff3, &bit31, &aff3],
        );
        assert_eq!(boot.cpus[1].hwid, None);
        assert_eq!(psci_cpus(&boot, 7).unwrap().mpidrs, [0, 0x1_0000_0000]);
    }

    #[test]
    fn not_a_device_tree() {
        assert!(matches!(cpu_boot(b"nope"), Err(Error::TooShort { .. })));
    }
}

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
//!   `machine_kexec_prepare`, arch/arm64/kernel/machine_kexec.c).

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

/// The CPU nodes of `/cpus` the kernel would see.
fn cpu_nodes(tree: &DeviceTree) -> Vec<CpuNode> {
    let Some(cpus) = tree.root.children().find(|c| c.name() == "cpus") else {
        return Vec::new();
    };
    cpus.children()
        .filter(|c| {
            c.name().split('@').next() == Some("cpu")
                || string(c, "device_type").as_deref() == Some("cpu")
        })
        .filter(|c| !failed(c))
        .map(|c| CpuNode {
            name: c.name().to_owned(),
            enable_method: string(c, "enable-method"),
        })
        .collect()
}

/// What `dtb` says about starting and stopping CPUs, or why it is not a
/// device tree.
pub fn cpu_boot(dtb: &[u8]) -> Result<CpuBoot, Error> {
    let tree = parse(dtb)?;
    Ok(CpuBoot {
        psci: find_psci(&tree.root, ""),
        cpus: cpu_nodes(&tree),
    })
}

#[cfg(test)]
mod tests {
    use dtoolkit::model::{DeviceTreeNode, DeviceTreeProperty};

    use super::*;

    fn prop(name: &str, value: &[u8]) -> DeviceTreeProperty {
        DeviceTreeProperty::new_unchecked(name, value.to_vec())
    }

    /// A tree with a PSCI node of `compatible` (NUL-separated) and
    /// `method`, and CPUs with these enable methods.
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
        for (i, method) in cpus.iter().enumerate() {
            let mut cpu = DeviceTreeNode::new_unchecked(format!("cpu@{i}"));
            cpu.add_property(prop("device_type", b"cpu\0"));
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
    fn not_a_device_tree() {
        assert!(matches!(cpu_boot(b"nope"), Err(Error::TooShort { .. })));
    }
}

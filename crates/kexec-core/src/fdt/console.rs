//! The console the purgatory prints on: [`stdout_pl011`] follows `/chosen`
//! `stdout-path` to a PL011 UART and returns its physical address.

use dtoolkit::model::{DeviceTree, DeviceTreeNode};
use dtoolkit::{Node, Property};

use super::chosen::{chosen_node, DEFAULT_ADDRESS_CELLS};
use super::parse::be32;

/// `compatible` string of the ARM PL011 UART
/// (Documentation/devicetree/bindings/serial/pl011.yaml).
pub(crate) const PL011_COMPATIBLE: &str = "arm,pl011";

/// The physical address of the console UART named by `/chosen`
/// `stdout-path` (an absolute path or an `/aliases` name, with optional
/// `:options`; Documentation/devicetree/bindings/chosen.txt), when it is a
/// PL011 reachable without bus address translation. The purgatory prints on
/// it; `None` means "no console", never an error of the load. It takes the
/// tree [`super::edit_chosen`] already parsed and edited, so the blob is not
/// parsed again for it.
pub(crate) fn stdout_pl011(tree: &DeviceTree) -> Option<u64> {
    let string = |value: &[u8]| {
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        String::from_utf8_lossy(&value[..end]).into_owned()
    };
    let path = chosen_node(tree)
        .and_then(|c| {
            c.property("stdout-path")
                .or_else(|| c.property("linux,stdout-path"))
        })
        .map(|p| string(p.value()))?;
    let path = path.split(':').next().unwrap_or_default().to_owned();
    let path = if path.starts_with('/') {
        path
    } else {
        let alias = tree
            .root
            .children()
            .find(|c| c.name() == "aliases")
            .and_then(|a| a.property(&path))?;
        string(alias.value())
    };
    let address_cells = |node: &DeviceTreeNode| {
        node.property("#address-cells")
            .map(|p| (p.value().len() == 4).then(|| be32(p.value(), 0)))
    };
    // The UART's ancestors, root first.
    let mut ancestors: Vec<&DeviceTreeNode> = Vec::new();
    let mut node = &tree.root;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let next = node.children().find(|c| {
            c.name() == component
                || (!component.contains('@') && c.name().split('@').next() == Some(component))
        });
        let next = next?;
        // Translation through a bus's non-empty `ranges` is not followed.
        if !std::ptr::eq(node, &tree.root)
            && node
                .property("ranges")
                .is_some_and(|r| !r.value().is_empty())
        {
            return None;
        }
        ancestors.push(node);
        node = next;
    }
    let is_pl011 = node.property("compatible").is_some_and(|c| {
        c.value()
            .split(|&b| b == 0)
            .any(|s| s == PL011_COMPATIBLE.as_bytes())
    });
    if !is_pl011 {
        return None;
    }
    // How many cells the UART's `reg` address has. The kernel reads it two
    // ways, and both must agree or we print nowhere:
    // * the unflattened tree (the pl011 driver, `of_address_to_resource`):
    //   `of_n_addr_cells` (drivers/of/base.c) takes the nearest ancestor's
    //   `#address-cells`, walking up to the root, and the root's default
    //   `OF_ROOT_NODE_ADDR_CELLS_DEFAULT` = 1 (drivers/of/of_private.h);
    // * earlycon on the flat tree (`fdt_bus_default_count_cells`,
    //   drivers/of/fdt_address.c): the parent's `#address-cells`, else the
    //   root's (`dt_root_addr_cells`, the same default of 1).
    let root_cells = address_cells(&tree.root).unwrap_or(Some(DEFAULT_ADDRESS_CELLS))?;
    let parent = *ancestors.last()?;
    let walked = ancestors
        .iter()
        .rev()
        .find_map(|a| address_cells(a))
        .unwrap_or(Some(DEFAULT_ADDRESS_CELLS))?;
    let flat = address_cells(parent).unwrap_or(Some(root_cells))?;
    if walked != flat {
        return None;
    }
    let address_cells = walked;
    let reg = node.property("reg")?;
    let reg = reg.value();
    match address_cells {
        1 if reg.len() >= 4 => Some(u64::from(be32(reg, 0))),
        2 if reg.len() >= 8 => Some((u64::from(be32(reg, 0)) << 32) | u64::from(be32(reg, 4))),
        _ => None,
    }
}

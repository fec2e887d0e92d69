//! Exact results of [`stdout_pl011`] on small trees, written against what
//! the kernel's earlycon does with `/chosen` `stdout-path`: drivers/of/fdt.c
//! `early_init_dt_scan_chosen_stdout` (`stdout-path`, else
//! `linux,stdout-path`; the path ends at the first ':'), libfdt
//! `fdt_path_offset_namelen` (scripts/dtc/libfdt/fdt_ro.c: a path not
//! starting with '/' names an `/aliases` property; a component without '@'
//! matches a node name without its unit address), `fdt_node_check_compatible`
//! (any string of the list) and drivers/tty/serial/earlycon.c
//! `of_setup_earlycon` (the address from `reg` with the parent's
//! `#address-cells`; `status` is not read).

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::Node;

use super::console::PL011_COMPATIBLE;
use super::stdout_pl011;

const UART: &str = "pl011@9000000";
const UART_ADDRESS: u64 = 0x0900_0000;

/// A string property: the bytes and the terminating NUL.
fn string(name: &str, value: &str) -> DeviceTreeProperty {
    let mut bytes = value.as_bytes().to_vec();
    bytes.push(0);
    DeviceTreeProperty::new_unchecked(name, bytes)
}

fn cells(name: &str, cells: &[u32]) -> DeviceTreeProperty {
    let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
    DeviceTreeProperty::new_unchecked(name, bytes)
}

fn pl011(name: &str, reg: &[u32]) -> DeviceTreeNode {
    let mut uart = DeviceTreeNode::new_unchecked(name);
    uart.add_property(string(
        "compatible",
        &format!("{PL011_COMPATIBLE}\0arm,primecell"),
    ));
    uart.add_property(cells("reg", reg));
    uart
}

/// The QEMU `virt` shape: root `#address-cells = <2>`, `/aliases` first (so
/// a lookup that picks the wrong child finds no UART), a `/chosen`
/// with `chosen_props`, and the PL011 at 0x9000000.
fn machine(chosen_props: Vec<DeviceTreeProperty>) -> DeviceTree {
    let mut tree = DeviceTree::new();
    tree.root.add_property(cells("#address-cells", &[2]));
    tree.root.add_property(cells("#size-cells", &[2]));
    let mut aliases = DeviceTreeNode::new_unchecked("aliases");
    aliases.add_property(string("serial0", &format!("/{UART}")));
    tree.root.add_child(aliases);
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    for p in chosen_props {
        chosen.add_property(p);
    }
    tree.root.add_child(chosen);
    tree.root
        .add_child(pl011(UART, &[0, 0x0900_0000, 0, 0x1000]));
    tree
}

fn stdout(path: &str) -> DeviceTree {
    machine(vec![string("stdout-path", path)])
}

#[test]
fn absolute_path_with_and_without_options() {
    assert_eq!(stdout_pl011(&stdout("/pl011@9000000")), Some(UART_ADDRESS));
    assert_eq!(
        stdout_pl011(&stdout("/pl011@9000000:115200n8")),
        Some(UART_ADDRESS)
    );
}

#[test]
fn alias_with_and_without_options() {
    assert_eq!(stdout_pl011(&stdout("serial0")), Some(UART_ADDRESS));
    assert_eq!(
        stdout_pl011(&stdout("serial0:115200n8")),
        Some(UART_ADDRESS)
    );
    // An alias /aliases does not define, and no /aliases at all.
    assert_eq!(stdout_pl011(&stdout("serial1")), None);
    let mut tree = stdout("serial0");
    tree.root.remove_child("aliases").unwrap();
    assert_eq!(stdout_pl011(&tree), None);
}

#[test]
fn legacy_linux_stdout_path_is_read_when_stdout_path_is_absent() {
    let tree = machine(vec![string("linux,stdout-path", "/pl011@9000000")]);
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
    // stdout-path wins over the legacy name.
    let tree = machine(vec![
        string("stdout-path", "/nothing"),
        string("linux,stdout-path", "/pl011@9000000"),
    ]);
    assert_eq!(stdout_pl011(&tree), None);
    assert_eq!(stdout_pl011(&machine(vec![])), None);
}

#[test]
fn a_component_without_unit_address_matches_the_node_name() {
    assert_eq!(stdout_pl011(&stdout("/pl011")), Some(UART_ADDRESS));
    // A unit address must match exactly.
    assert_eq!(stdout_pl011(&stdout("/pl011@1")), None);
    assert_eq!(stdout_pl011(&stdout("/nothing")), None);
    assert_eq!(stdout_pl011(&stdout("/pl011@9000000/child")), None);
}

#[test]
fn only_a_pl011_compatible_is_a_console() {
    let mut tree = stdout("/serial@9000000");
    let mut uart = DeviceTreeNode::new_unchecked("serial@9000000");
    uart.add_property(string("compatible", "ns16550a"));
    uart.add_property(cells("reg", &[0, 0x0900_0000, 0, 0x1000]));
    tree.root.add_child(uart);
    assert_eq!(stdout_pl011(&tree), None);
    // PL011 anywhere in the list.
    let mut tree = stdout("/serial@9000000");
    let mut uart = DeviceTreeNode::new_unchecked("serial@9000000");
    uart.add_property(string("compatible", "vendor,uart\0arm,pl011"));
    uart.add_property(cells("reg", &[0, 0x0900_0000, 0, 0x1000]));
    tree.root.add_child(uart);
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
}

/// earlycon uses the node `stdout-path` names whatever its `status`.
#[test]
fn a_disabled_uart_is_still_the_console() {
    let mut tree = stdout("/serial@9000000");
    let mut uart = pl011("serial@9000000", &[0, 0x0900_0000, 0, 0x1000]);
    uart.add_property(string("status", "disabled"));
    tree.root.add_child(uart);
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
}

#[test]
fn reg_is_read_with_the_parents_address_cells() {
    // Two cells: the high word counts.
    let mut tree = stdout("/serial@109000000");
    tree.root
        .add_child(pl011("serial@109000000", &[1, 0x0900_0000]));
    assert_eq!(stdout_pl011(&tree), Some(0x1_0900_0000));
    // Two cells but one in reg: no address.
    let mut tree = stdout("/serial@9000000");
    tree.root.add_child(pl011("serial@9000000", &[0x0900_0000]));
    assert_eq!(stdout_pl011(&tree), None);
    // One cell, on a bus with an empty `ranges` (identity mapping).
    let mut tree = stdout("/soc/serial@9000000");
    let mut soc = DeviceTreeNode::new_unchecked("soc");
    soc.add_property(cells("#address-cells", &[1]));
    soc.add_property(cells("#size-cells", &[1]));
    soc.add_property(DeviceTreeProperty::new_unchecked(
        "ranges",
        Vec::<u8>::new(),
    ));
    soc.add_child(pl011("serial@9000000", &[0x0900_0000]));
    soc.add_child(pl011("short@0", &[]));
    let mut short = pl011("half@0", &[]);
    short.add_property(DeviceTreeProperty::new_unchecked("reg", vec![0x09u8, 0x00]));
    soc.add_child(short);
    let mut noreg = DeviceTreeNode::new_unchecked("noreg@0");
    noreg.add_property(string("compatible", PL011_COMPATIBLE));
    soc.add_child(noreg);
    tree.root.add_child(soc);
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
    // One cell but fewer than 4 bytes, an empty reg, no reg.
    for path in ["/soc/half@0", "/soc/short@0", "/soc/noreg@0"] {
        let mut t = tree.clone();
        let chosen = t.root.child_mut("chosen").unwrap();
        chosen.add_property(string("stdout-path", path));
        assert_eq!(stdout_pl011(&t), None, "{path}");
    }
}

#[test]
fn three_address_cells_or_translated_buses_give_no_console() {
    let mut tree = stdout("/bus/serial@9000000");
    let mut bus = DeviceTreeNode::new_unchecked("bus");
    bus.add_property(cells("#address-cells", &[3]));
    bus.add_child(pl011("serial@9000000", &[0, 0, 0x0900_0000]));
    tree.root.add_child(bus);
    assert_eq!(stdout_pl011(&tree), None);
    // A non-empty `ranges` would need translation, which is not followed.
    let mut tree = stdout("/soc/serial@9000000");
    let mut soc = DeviceTreeNode::new_unchecked("soc");
    soc.add_property(cells("#address-cells", &[1]));
    soc.add_property(cells("ranges", &[0, 0, 0x1000_0000]));
    soc.add_child(pl011("serial@9000000", &[0x0900_0000]));
    tree.root.add_child(soc);
    assert_eq!(stdout_pl011(&tree), None);
}

/// A root without `#address-cells`: the kernel reads `reg` with one cell
/// (`OF_ROOT_NODE_ADDR_CELLS_DEFAULT`), so `<0x9000000 0x1000>` is the UART
/// at 0x9000000 (read with two cells it would be 0x900000000001000).
#[test]
fn a_root_without_address_cells_means_one_cell() {
    let mut tree = DeviceTree::new();
    let mut chosen = DeviceTreeNode::new_unchecked("chosen");
    chosen.add_property(string("stdout-path", "/pl011@9000000"));
    tree.root.add_child(chosen);
    tree.root.add_child(pl011(UART, &[0x0900_0000, 0x1000]));
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
}

/// A bus without `#address-cells`: the pl011 driver (`of_n_addr_cells`)
/// takes the nearest ancestor's, earlycon (`fdt_bus_default_count_cells`)
/// the root's. Where they agree that is the answer; where they differ the
/// tree is ambiguous and the purgatory stays silent.
#[test]
fn a_bus_without_address_cells_inherits_only_where_both_kernel_readers_agree() {
    let soc = |outer_cells: Option<u32>| {
        let mut outer = DeviceTreeNode::new_unchecked("soc");
        if let Some(c) = outer_cells {
            outer.add_property(cells("#address-cells", &[c]));
        }
        outer.add_property(DeviceTreeProperty::new_unchecked(
            "ranges",
            Vec::<u8>::new(),
        ));
        let mut inner = DeviceTreeNode::new_unchecked("bus");
        inner.add_property(DeviceTreeProperty::new_unchecked(
            "ranges",
            Vec::<u8>::new(),
        ));
        inner.add_child(pl011("serial@9000000", &[0, 0x0900_0000]));
        outer.add_child(inner);
        outer
    };
    // Root 2, nothing in between: both readers use 2.
    let mut tree = stdout("/soc/bus/serial@9000000");
    tree.root.add_child(soc(None));
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
    // Root 2, soc 1: the driver reads 1 cell (0), earlycon 2 cells.
    let mut tree = stdout("/soc/bus/serial@9000000");
    tree.root.add_child(soc(Some(1)));
    assert_eq!(stdout_pl011(&tree), None);
}

/// `stdout-path` is read from the node the kernel reads as `/chosen`: the
/// first `chosen` or `chosen@…` child of the root.
#[test]
fn stdout_path_comes_from_the_chosen_the_kernel_reads() {
    let mut tree = stdout("/nowhere");
    let mut first = DeviceTreeNode::new_unchecked("chosen@1");
    first.add_property(string("stdout-path", "serial0"));
    let rest: Vec<DeviceTreeNode> = tree.root.children().cloned().collect();
    tree.root = DeviceTreeNode::new_unchecked("");
    tree.root.add_property(cells("#address-cells", &[2]));
    tree.root.add_child(first);
    for child in rest {
        tree.root.add_child(child);
    }
    assert_eq!(stdout_pl011(&tree), Some(UART_ADDRESS));
}

//! The tree a load hands over, before its `/chosen` edits: what of the
//! running kernel's boot state it carries on, and what must not be passed
//! on stale ([`prepare`]).
//!
//! Three sources of rules, each followed as the kernel does it:
//!
//! * **UEFI state** (drivers/firmware/efi/libstub/fdt.c `update_fdt`): a
//!   kernel started through its EFI stub finds EFI runtime services, the EFI
//!   memory map and the Secure Boot state only through the `/chosen`
//!   `linux,uefi-*` properties the stub wrote (drivers/firmware/efi/fdtparams.c);
//!   the stub also deletes every memory reservation of the tree it is given
//!   ("When booting via UEFI, kernel will use the UEFI memory map to find
//!   reserved regions"). These are kept untouched in the running tree. A
//!   tree from elsewhere (a UKI's `.dtb`, `--dtb FILE`) on a UEFI machine is
//!   merged as the stub would have: its own reservations dropped, the
//!   running `/chosen` `linux,uefi-*` properties copied in, and the running
//!   tree's reservations carried over (the kernel's own file loader,
//!   drivers/of/kexec.c `of_kexec_alloc_and_setup_fdt`, passes them on).
//! * **Stale handover state** (drivers/of/kexec.c
//!   `of_kexec_alloc_and_setup_fdt`, which starts from the running tree too):
//!   the reservation covering the running kernel's initrd (exact size, or
//!   rounded up to a page, the kernel's `round_up(tmp_size, PAGE_SIZE)`: we
//!   do not know the running page size and try 4, 16 and 64 KiB), the
//!   `linux,ima-kexec-buffer` property and its reservation
//!   (`remove_ima_buffer`: "of no use to a subsequent kernel"), and the Kexec
//!   HandOver properties `linux,kho-*` (`kho_add_chosen`, Linux 6.16+, deletes
//!   `linux,kho-fdt` and `linux,kho-scratch` before adding its own; a
//!   `kexec_load` has no KHO state to add, so every `linux,kho-` property is
//!   removed). The running tree's own reservation, which newer kernels drop
//!   by its physical address, is left: user space cannot know that address,
//!   and the running kernel keeps the range reserved, so no segment lands
//!   there.
//! * **What the new kernel will boot with** (arch/arm64/kernel/acpi.c
//!   `dt_is_stub`, `acpi_boot_table_init`): a tree with nothing but `/chosen`
//!   (and a Xen `/hypervisor`) makes the kernel use ACPI, which it finds only
//!   through the UEFI system table.

use dtoolkit::memreserve::MemoryReservation;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};

use crate::iomem::MemoryRange;

use super::chosen::{
    chosen_node, is_chosen, read_number, render_value, root_cells, PropertyChange, CHOSEN,
    INITRD_END, INITRD_START,
};
use super::parse::{parse, parse_header, Error, BOOT_CPUID_PHYS_OFFSET};

/// Prefix of the `/chosen` properties the EFI stub writes.
pub const UEFI_PREFIX: &str = "linux,uefi-";
/// `/chosen` property: physical address of the EFI system table; its
/// presence means the running kernel was started through its EFI stub.
pub const UEFI_SYSTEM_TABLE: &str = "linux,uefi-system-table";
/// `/chosen` property: the IMA measurement list a `kexec_file_load` passed.
pub const IMA_KEXEC_BUFFER: &str = "linux,ima-kexec-buffer";
/// Prefix of the Kexec HandOver properties (`linux,kho-fdt`, `linux,kho-scratch`).
pub const KHO_PREFIX: &str = "linux,kho-";
/// `compatible` of a GICv3 ITS node (drivers/irqchip/irq-gic-v3-its.c `its_device_id`).
pub const GIC_V3_ITS_COMPATIBLE: &str = "arm,gic-v3-its";
/// The page sizes the running kernel may have rounded its initrd
/// reservation up to (arm64: 4, 16 or 64 KiB).
pub const PAGE_SIZES: [u64; 3] = [0x1000, 0x4000, 0x1_0000];

/// What became of one memory reservation (DT spec § 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// In the tree passed on, kept.
    Kept,
    /// The running tree's, carried into a tree from elsewhere.
    Carried,
    /// A given tree's own, which the EFI stub would have deleted.
    DroppedLikeEfiStub,
    /// Covers the running kernel's initrd: stale once it is gone.
    RunningInitrd,
    /// Covers the IMA measurement buffer of a previous `kexec_file_load`.
    ImaBuffer,
}

impl Fate {
    /// Stable identifier (the JSON `action`).
    pub const fn id(self) -> &'static str {
        match self {
            Fate::Kept => "kept",
            Fate::Carried => "carried",
            Fate::DroppedLikeEfiStub => "dropped-like-efi-stub",
            Fate::RunningInitrd => "removed-running-initrd",
            Fate::ImaBuffer => "removed-ima-buffer",
        }
    }

    /// Whether the reservation is in the tree passed on.
    pub const fn passed_on(self) -> bool {
        matches!(self, Fate::Kept | Fate::Carried)
    }
}

/// One memory reservation and its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved range.
    pub range: MemoryRange,
    /// What became of it.
    pub fate: Fate,
}

/// A `/chosen` property removed as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its name.
    pub name: String,
    /// Its value, rendered for people.
    pub value: String,
    /// Why, with the kernel function that does the same.
    pub why: &'static str,
}

/// The tree to edit and what [`prepare`] did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The tree to edit (serialised; `boot_cpuid_phys` kept).
    pub dtb: Vec<u8>,
    /// The running kernel was started through its EFI stub (its `/chosen`
    /// has `linux,uefi-system-table`).
    pub uefi: bool,
    /// A tree from elsewhere was merged with the running tree's UEFI state.
    pub merged: bool,
    /// The `linux,uefi-*` properties copied from the running `/chosen`.
    pub carried: Vec<PropertyChange>,
    /// The `linux,uefi-*` properties the tree passes on.
    pub uefi_properties: Vec<String>,
    /// Every memory reservation looked at, in order: the passed tree's,
    /// then (merging) the running tree's.
    pub reservations: Vec<Reservation>,
    /// Stale `/chosen` properties removed.
    pub removed: Vec<Removed>,
    /// The tree has nothing but `/chosen`: the new kernel will use ACPI.
    pub acpi_stub: bool,
    /// The tree has a `/memory` node.
    pub memory_nodes: bool,
    /// Path of a GICv3 ITS node, if the tree has one.
    pub its: Option<String>,
}

/// Which input an [`Error`] of [`prepare`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The tree to pass (running, `--dtb` or a UKI's).
    Given,
    /// The running tree, read for its UEFI state.
    Running,
}

fn chosen_mut(tree: &mut DeviceTree) -> Option<&mut DeviceTreeNode> {
    tree.root.children_mut().find(|c| is_chosen(c.name()))
}

/// Removes the stale state of `tree`, judged by its own `/chosen`; returns
/// the removed properties and its reservations with their fates.
fn strip_stale(tree: &mut DeviceTree, kept: Fate) -> (Vec<Removed>, Vec<Reservation>) {
    let cells = root_cells(tree).ok();
    let mut removed = Vec::new();
    let mut stale: Vec<(MemoryRange, Fate)> = Vec::new();
    if let Some(chosen) = chosen_mut(tree) {
        let read = |c: &DeviceTreeNode, n| c.property(n).and_then(|p| read_number(p.value()));
        if let (Some(start), Some(end)) = (read(chosen, INITRD_START), read(chosen, INITRD_END)) {
            let size = end.wrapping_sub(start);
            let mut sizes = vec![size];
            sizes.extend(
                PAGE_SIZES
                    .iter()
                    .filter_map(|&p| size.checked_next_multiple_of(p)),
            );
            for s in sizes {
                stale.push((MemoryRange::with_size(start, s), Fate::RunningInitrd));
            }
        }
        if let Some(p) = chosen.remove_property(IMA_KEXEC_BUFFER) {
            let p = &p;
            let v = p.value();
            // do_get_kexec_buffer: the root's cells; shorter means no range.
            if let Some(c) = cells {
                let (a, s) = (c.address as usize * 4, c.size as usize * 4);
                if v.len() >= a + s {
                    let addr = read_number(&v[..a]).unwrap_or_default();
                    let size = read_number(&v[a..a + s]).unwrap_or_default();
                    stale.push((MemoryRange::with_size(addr, size), Fate::ImaBuffer));
                }
            }
            removed.push(Removed {
                name: IMA_KEXEC_BUFFER.to_owned(),
                value: render_value(IMA_KEXEC_BUFFER, v),
                why: "of no use to the next kernel (drivers/of/kexec.c remove_ima_buffer)",
            });
        }
        let kho: Vec<String> = chosen
            .properties()
            .map(|p| p.name().to_owned())
            .filter(|n| n.starts_with(KHO_PREFIX))
            .collect();
        for name in kho {
            if let Some(p) = chosen.remove_property(&name) {
                removed.push(Removed {
                    value: render_value(&name, (&p).value()),
                    name,
                    why: "Kexec HandOver state only the kernel's own loader can pass \
                          (drivers/of/kexec.c kho_add_chosen)",
                });
            }
        }
    }
    // fdt_find_and_del_mem_rsv deletes the first exact match, in the
    // kernel's order: exact initrd size, then rounded; then the IMA buffer.
    let mut fates: Vec<Fate> = vec![kept; tree.memory_reservations.len()];
    let mut initrd_done = false;
    for (range, fate) in stale {
        if fate == Fate::RunningInitrd && initrd_done {
            continue;
        }
        let hit = tree
            .memory_reservations
            .iter()
            .enumerate()
            .position(|(i, r)| {
                fates[i].passed_on() && r.address() == range.start && r.size() == range.size()
            });
        if let Some(i) = hit {
            fates[i] = fate;
            initrd_done |= fate == Fate::RunningInitrd;
        }
    }
    let reservations = tree
        .memory_reservations
        .iter()
        .zip(&fates)
        .map(|(r, &fate)| Reservation {
            range: MemoryRange::with_size(r.address(), r.size()),
            fate,
        })
        .collect();
    let mut index = 0;
    tree.memory_reservations.retain(|_| {
        index += 1;
        fates[index - 1].passed_on()
    });
    (removed, reservations)
}

/// Removes `/chosen`'s `linux,uefi-*` properties.
fn strip_uefi(tree: &mut DeviceTree) -> Vec<Removed> {
    let Some(chosen) = chosen_mut(tree) else {
        return Vec::new();
    };
    let names: Vec<String> = chosen
        .properties()
        .map(|p| p.name().to_owned())
        .filter(|n| n.starts_with(UEFI_PREFIX))
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let p = chosen.remove_property(&name)?;
            Some(Removed {
                value: render_value(&name, (&p).value()),
                name,
                why: "the running kernel was not started through UEFI: no firmware answers at \
                      the addresses these name (drivers/firmware/efi/fdtparams.c reads them)",
            })
        })
        .collect()
}

/// The first node (depth first) whose `compatible` lists `compatible`.
fn find_compatible(node: &DeviceTreeNode, path: &str, compatible: &str) -> Option<String> {
    let listed = node.property("compatible").is_some_and(|p| {
        p.value()
            .split(|&b| b == 0)
            .any(|c| c == compatible.as_bytes())
    });
    if listed {
        return Some(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    node.children()
        .find_map(|c| find_compatible(c, &format!("{path}/{}", c.name()), compatible))
}

/// `dt_is_stub` (arch/arm64/kernel/acpi.c): no root child but `chosen`
/// and a Xen `hypervisor`.
fn is_stub(tree: &DeviceTree) -> bool {
    tree.root.children().all(|c| {
        c.name() == CHOSEN
            || (c.name() == "hypervisor"
                && find_compatible(c, "", "xen,xen").as_deref() == Some("/"))
    })
}

fn serialise(tree: &DeviceTree, dtb: &[u8]) -> Result<Vec<u8>, Error> {
    let header = parse_header(dtb)?;
    let mut out = tree.to_dtb();
    out[BOOT_CPUID_PHYS_OFFSET..BOOT_CPUID_PHYS_OFFSET + 4]
        .copy_from_slice(&header.boot_cpuid_phys.to_be_bytes());
    Ok(out)
}

/// Prepares `given` for hand-over. `running` is the running tree when
/// `given` is not it (a UKI's `.dtb`, `--dtb FILE`): on a UEFI machine the
/// two are merged (see the module documentation); `None` when `given` is
/// the running tree.
pub fn prepare(given: &[u8], running: Option<&[u8]>) -> Result<Handover, (Input, Error)> {
    let mut tree = parse(given).map_err(|e| (Input::Given, e))?;
    let running = match running {
        Some(r) => Some(parse(r).map_err(|e| (Input::Running, e))?),
        None => None,
    };
    let uefi_of =
        |t: &DeviceTree| chosen_node(t).is_some_and(|c| c.property(UEFI_SYSTEM_TABLE).is_some());
    let uefi = running.as_ref().map_or_else(|| uefi_of(&tree), uefi_of);
    let (mut removed, mut reservations) = strip_stale(&mut tree, Fate::Kept);
    let mut carried = Vec::new();
    let merged = uefi && running.is_some();
    if running.is_some() && !uefi {
        // A tree from elsewhere naming EFI tables (a dump of another boot)
        // on a machine not started through UEFI: nothing answers there.
        removed.extend(strip_uefi(&mut tree));
    }
    if let (true, Some(mut run)) = (merged, running) {
        // update_fdt: every reservation of the tree the stub is given goes.
        for r in &mut reservations {
            if r.fate.passed_on() {
                r.fate = Fate::DroppedLikeEfiStub;
            }
        }
        tree.memory_reservations.clear();
        let (_, from_running) = strip_stale(&mut run, Fate::Carried);
        tree.memory_reservations.extend(
            from_running
                .iter()
                .filter(|r| r.fate.passed_on())
                .map(|r| MemoryReservation::new(r.range.start, r.range.size())),
        );
        reservations.extend(from_running);
        if chosen_node(&tree).is_none() {
            tree.root.add_child(DeviceTreeNode::new_unchecked(CHOSEN));
        }
        let source: Vec<(String, Vec<u8>)> = chosen_node(&run)
            .map(|c| {
                c.properties()
                    .filter(|p| p.name().starts_with(UEFI_PREFIX))
                    .map(|p| (p.name().to_owned(), p.value().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(chosen) = chosen_mut(&mut tree) {
            for (name, value) in source {
                let old = chosen.property(&name).map(|p| p.value().to_vec());
                if old.as_deref() == Some(value.as_slice()) {
                    continue;
                }
                carried.push(PropertyChange {
                    old: old.as_deref().map(|v| render_value(&name, v)),
                    new: Some(render_value(&name, &value)),
                    name: name.clone(),
                });
                chosen.add_property(DeviceTreeProperty::new_unchecked(name, value));
            }
        }
    }
    let uefi_properties = chosen_node(&tree)
        .map(|c| {
            c.properties()
                .map(|p| p.name().to_owned())
                .filter(|n| n.starts_with(UEFI_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    Ok(Handover {
        dtb: serialise(&tree, given).map_err(|e| (Input::Given, e))?,
        uefi,
        merged,
        carried,
        uefi_properties,
        reservations,
        removed,
        acpi_stub: is_stub(&tree),
        memory_nodes: tree
            .root
            .children()
            .any(|c| c.name() == "memory" || c.name().starts_with("memory@")),
        its: find_compatible(&tree.root, "", GIC_V3_ITS_COMPATIBLE),
    })
}

#[cfg(test)]
#[path = "handover_tests.rs"]
mod tests;

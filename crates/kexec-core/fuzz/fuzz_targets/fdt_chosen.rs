//! Fuzz target: `/chosen` editing never panics; an accepted blob edits to a
//! blob that parses again and reports the initrd we wrote, and editing that
//! blob again with the same edit changes nothing. The hand-over preparation
//! ([`prepare`]) never panics either: alone and merged with the blob as the
//! running tree, what it accepts parses again, keeps every `linux,uefi-*`
//! property of the running `/chosen` byte for byte, has no stale
//! `linux,ima-kexec-buffer` or `linux,kho-*` left, and only loses
//! reservations.
//!
//! Two kinds of input. One that starts with the FDT magic (`d0 0d fe ed`) is
//! a blob, edited as it is: the header and structure checks (seeds: the
//! committed DTBs). Any other input drives [`Unstructured`] to build a
//! *valid* tree — random nodes, properties and cells, with the names the
//! edits and the kernel look for — serialised by [`fdt_bytes`], and an edit;
//! one input in eight then has one byte of the blob overwritten. Random bytes
//! rarely get past the header's offsets and sizes; this way the edits run on
//! trees of every shape.
#![no_main]

use kexec_core::fdt::{
    chosen_initrd, edit_chosen, parse, prepare, ChosenEdit, CrashChosen, FDT_MAGIC,
    IMA_KEXEC_BUFFER, KHO_PREFIX, UEFI_PREFIX,
};
use dtoolkit::model::DeviceTree;
use kexec_core::iomem::MemoryRange;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Deepest nesting the builder makes (real trees nest < 10).
const MAX_DEPTH: u32 = 5;

/// Node names: the ones the code looks for, near misses, and spec oddities.
const NODE_NAMES: &[&str] = &[
    "chosen",
    "chosen@0",
    "memory@40000000",
    "memory",
    "cpus",
    "cpu@0",
    "pl011@9000000",
    "serial@9000000",
    "reserved-memory",
    "aliases",
    "psci",
    "intc@8000000",
    "its@8080000",
    "hypervisor",
];

/// Property names: `/chosen`'s, the root cells, console lookup, and a
/// 32-character name (over the spec's 31: the lenient reader's path).
const PROP_NAMES: &[&str] = &[
    "bootargs",
    "linux,initrd-start",
    "linux,initrd-end",
    "linux,elfcorehdr",
    "linux,usable-memory-range",
    "kaslr-seed",
    "rng-seed",
    "stdout-path",
    "linux,stdout-path",
    "#address-cells",
    "#size-cells",
    "reg",
    "compatible",
    "device_type",
    "status",
    "serial0",
    "linux,uefi-system-table",
    "linux,uefi-mmap-start",
    "linux,uefi-mmap-size",
    "linux,ima-kexec-buffer",
    "linux,kho-fdt",
    "linux,kho-scratch",
    "snps,dis-u2-freeclk-exists-quirk",
];

/// String values: compatibles, paths and options the console lookup reads.
const STRINGS: &[&str] = &[
    "arm,pl011",
    "arm,primecell",
    "/pl011@9000000",
    "/pl011@9000000:115200n8",
    "serial0:115200n8",
    "serial0",
    "memory",
    "okay",
    "disabled",
    "console=ttyAMA0 root=/dev/vda",
    "arm,gic-v3-its",
    "xen,xen",
];

struct Property {
    name: String,
    value: Vec<u8>,
}

struct Node {
    name: String,
    properties: Vec<Property>,
    children: Vec<Node>,
}

fn pick_name(u: &mut Unstructured<'_>, known: &[&str]) -> Result<String> {
    Ok(if u.ratio(7, 8)? {
        (*u.choose(known)?).to_owned()
    } else {
        let len = u.int_in_range(0..=12)?;
        (0..len)
            .map(|_| u.choose(b"abcz09,.-_@#+?"))
            .map(|c| c.map(|&c| char::from(c)))
            .collect::<Result<_>>()?
    })
}

/// A cell value, mostly small or an arm64 RAM-like address.
fn cell(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.int_in_range(0..=3)?,
        1 => 0x4000_0000 | (u.int_in_range(0..=0xffff)? << 12),
        _ => u.arbitrary()?,
    })
}

fn value(u: &mut Unstructured<'_>, name: &str) -> Result<Vec<u8>> {
    let cells = |u: &mut Unstructured<'_>, n: usize| -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(n * 4);
        for _ in 0..n {
            v.extend(cell(u)?.to_be_bytes());
        }
        Ok(v)
    };
    Ok(match u.int_in_range(0..=9)? {
        // What the name usually holds.
        0..=5 => match name {
            "#address-cells" | "#size-cells" => cells(u, 1)?,
            "bootargs" | "stdout-path" | "linux,stdout-path" | "compatible" | "device_type"
            | "status" | "serial0" => {
                let mut s = u.choose(STRINGS)?.as_bytes().to_vec();
                s.push(0);
                s
            }
            "reg" | "linux,usable-memory-range" => {
                let n = u.int_in_range(1..=4)? * 2;
                cells(u, n)?
            }
            "linux,elfcorehdr" => cells(u, 4)?,
            _ => {
                let n = u.int_in_range(1..=2)?;
                cells(u, n)?
            }
        },
        6 | 7 => {
            let n = u.int_in_range(0..=6)?;
            cells(u, n)?
        }
        8 => Vec::new(),
        _ => {
            let len = u.int_in_range(0..=40)?;
            u.bytes(len)?.to_vec()
        }
    })
}

fn node(u: &mut Unstructured<'_>, name: String, depth: u32) -> Result<Node> {
    let mut properties = Vec::new();
    if depth == 0 {
        // The root's cells first, mostly valid (1 or 2).
        for cells in ["#address-cells", "#size-cells"] {
            if u.ratio(3, 4)? {
                let v = if u.ratio(7, 8)? {
                    u.int_in_range(1..=2)?
                } else {
                    cell(u)?
                };
                properties.push(Property {
                    name: cells.into(),
                    value: v.to_be_bytes().to_vec(),
                });
            }
        }
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let name = pick_name(u, PROP_NAMES)?;
        let value = value(u, &name)?;
        properties.push(Property { name, value });
    }
    let mut children = Vec::new();
    if depth < MAX_DEPTH {
        let most = if depth == 0 { 6 } else { 3 };
        for _ in 0..u.int_in_range(0..=most)? {
            let child = pick_name(u, NODE_NAMES)?;
            children.push(node(u, child, depth + 1)?);
        }
    }
    Ok(Node {
        name,
        properties,
        children,
    })
}

fn be32(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_be_bytes());
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The strings block and where each name starts in it: a name already
/// there, or the tail of a longer one (the spec lets a property name share
/// another's bytes), is not stored again. Looked up by name, not by
/// scanning the block: a scan's byte comparisons, each traced by libFuzzer,
/// took a quarter of this target's time.
#[derive(Default)]
struct Strings {
    block: Vec<u8>,
    names: std::collections::BTreeMap<String, u32>,
}

impl Strings {
    fn offset(&mut self, name: &str) -> u32 {
        if let Some(&off) = self.names.get(name) {
            return off;
        }
        let shared = self
            .names
            .iter()
            .find(|(n, _)| n.len() > name.len() && n.ends_with(name))
            .map(|(n, &off)| off + (n.len() - name.len()) as u32);
        let off = shared.unwrap_or_else(|| {
            let off = self.block.len() as u32;
            self.block.extend(name.as_bytes());
            self.block.push(0);
            off
        });
        self.names.insert(name.to_owned(), off);
        off
    }
}

fn structure(node: &Node, block: &mut Vec<u8>, strings: &mut Strings) {
    be32(block, 1); // FDT_BEGIN_NODE
    block.extend(node.name.as_bytes());
    block.push(0);
    pad4(block);
    for p in &node.properties {
        let off = strings.offset(&p.name);
        be32(block, 3); // FDT_PROP
        be32(block, p.value.len() as u32);
        be32(block, off);
        block.extend(&p.value);
        pad4(block);
    }
    for child in &node.children {
        structure(child, block, strings);
    }
    be32(block, 2); // FDT_END_NODE
}

/// The flattened tree (DT spec v0.4 § 5): header, memory reservations,
/// structure block, strings block; version 17.
fn fdt_bytes(root: &Node, reservations: &[(u64, u64)], boot_cpuid: u32) -> Vec<u8> {
    const HEADER_LEN: usize = 40;
    let mut block = Vec::new();
    let mut strings = Strings::default();
    structure(root, &mut block, &mut strings);
    let strings = strings.block;
    be32(&mut block, 9); // FDT_END
    let mut rsv = Vec::new();
    for &(address, size) in reservations.iter().chain([&(0, 0)]) {
        rsv.extend(address.to_be_bytes());
        rsv.extend(size.to_be_bytes());
    }
    let off_rsvmap = HEADER_LEN;
    let off_struct = off_rsvmap + rsv.len();
    let off_strings = off_struct + block.len();
    let total = off_strings + strings.len();
    let mut out = Vec::with_capacity(total);
    for field in [
        FDT_MAGIC,
        total as u32,
        off_struct as u32,
        off_strings as u32,
        off_rsvmap as u32,
        17, // version
        16, // last_comp_version
        boot_cpuid,
        strings.len() as u32,
        block.len() as u32,
    ] {
        be32(&mut out, field);
    }
    out.extend(rsv);
    out.extend(block);
    out.extend(strings);
    out
}

fn range(u: &mut Unstructured<'_>) -> Result<MemoryRange> {
    let start = cell(u)? as u64 | (u64::from(u.int_in_range(0..=3u8)?) << 32);
    let len: u64 = u.int_in_range(0..=1 << 32)?;
    Ok(MemoryRange::with_size(start, len))
}

fn edit(u: &mut Unstructured<'_>) -> Result<ChosenEdit> {
    let initrd = if u.ratio(3, 4)? {
        Some(range(u)?)
    } else {
        None
    };
    let crash = if u.arbitrary()? {
        let mut usable = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            usable.push(range(u)?);
        }
        Some(CrashChosen {
            elfcorehdr: if u.ratio(3, 4)? {
                Some(range(u)?)
            } else {
                None
            },
            usable,
        })
    } else {
        None
    };
    Ok(ChosenEdit {
        bootargs: if u.arbitrary()? {
            Some(u.choose(STRINGS)?.as_bytes().to_vec())
        } else {
            None
        },
        initrd,
        kaslr_seed: u.arbitrary()?,
        rng_seed: if u.arbitrary()? {
            Some(vec![7; 32])
        } else {
            None
        },
        crash,
    })
}

/// A generated blob and edit.
fn generated(data: &[u8]) -> Result<(Vec<u8>, ChosenEdit)> {
    let mut u = Unstructured::new(data);
    let mut reservations = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        reservations.push((u.arbitrary()?, u.arbitrary()?));
    }
    let boot_cpuid = u.int_in_range(0..=3)?;
    let root = node(&mut u, String::new(), 0)?;
    let edit = edit(&mut u)?;
    let mut dtb = fdt_bytes(&root, &reservations, boot_cpuid);
    if u.ratio(1, 8)? {
        let at = u.choose_index(dtb.len())?;
        dtb[at] = u.arbitrary()?;
    }
    Ok((dtb, edit))
}

fn fixed_edit(crash: bool) -> ChosenEdit {
    ChosenEdit {
        bootargs: Some("console=ttyAMA0".into()),
        initrd: Some(MemoryRange::with_size(0x4800_0000, 0x10_0000)),
        kaslr_seed: Some(0x1234),
        rng_seed: Some(vec![7; 32]),
        crash: crash.then(|| CrashChosen {
            elfcorehdr: Some(MemoryRange::with_size(0x7f00_0000, 0x1_0000)),
            usable: vec![MemoryRange::new(0x7000_0000, 0x8000_0000)],
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let (dtb, edit) = if data.starts_with(&FDT_MAGIC.to_be_bytes()) {
        // The low bit of the last header byte (size_dt_struct) picks a crash edit.
        let crash = data.get(39).is_some_and(|b| b & 1 == 1);
        (data.to_vec(), fixed_edit(crash))
    } else {
        match generated(data) {
            Ok(generated) => generated,
            Err(_) => return,
        }
    };
    if let Ok(out) = edit_chosen(&dtb, &edit) {
        assert!(parse(&out.dtb).is_ok());
        assert_eq!(chosen_initrd(&out.dtb).ok().flatten(), edit.initrd);
        let again = edit_chosen(&out.dtb, &edit).expect("an edited blob edits again");
        assert_eq!(again.dtb, out.dtb, "the same edit twice changes nothing");
    }
    check_prepare(&dtb);
});

/// `/chosen`'s properties with `prefix`, name and bytes, in tree order.
fn chosen_props(tree: &DeviceTree, prefix: &str) -> Vec<(String, Vec<u8>)> {
    use dtoolkit::{Node, Property};
    let chosen = tree
        .root
        .children()
        .find(|c| c.name() == "chosen" || c.name().starts_with("chosen@"));
    chosen.map_or_else(Vec::new, |c| {
        c.properties()
            .filter(|p| p.name().starts_with(prefix))
            .map(|p| (p.name().to_owned(), p.value().to_vec()))
            .collect()
    })
}

fn check_prepare(dtb: &[u8]) {
    // Each tree parsed once: parsing was half of this target's time.
    let Ok(input) = parse(dtb) else {
        assert!(prepare(dtb, None).is_err(), "an unparsable blob is refused");
        return;
    };
    let reservations = input.memory_reservations.len();
    let mut before = chosen_props(&input, UEFI_PREFIX);
    before.sort();
    before.dedup_by(|a, b| a.0 == b.0);
    for running in [None, Some(dtb)] {
        let Ok(h) = prepare(dtb, running) else {
            continue;
        };
        let out = parse(&h.dtb).expect("a prepared tree parses");
        assert!(out.memory_reservations.len() <= reservations, "only loses");
        let mut uefi = chosen_props(&out, UEFI_PREFIX);
        uefi.sort();
        uefi.dedup_by(|a, b| a.0 == b.0);
        if h.uefi {
            assert_eq!(uefi, before, "linux,uefi-* kept byte for byte");
        }
        assert!(chosen_props(&out, KHO_PREFIX).is_empty());
        // Exactly that name: the kernel reads no other (a longer name that
        // starts with it, from a corrupted strings block, is not it).
        let ima = chosen_props(&out, IMA_KEXEC_BUFFER);
        assert!(!ima.iter().any(|(n, _)| n == IMA_KEXEC_BUFFER), "{ima:?}");
    }
}

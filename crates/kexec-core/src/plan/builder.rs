//! The builder: [`build`] turns a [`LoadRequest`] (every input of a load,
//! gathered by the caller) into a [`Built`] plan, driving the [`Planner`] in
//! the one order that works and editing the device tree and purgatory
//! header on the way.

use thiserror::Error;

use crate::fdt;
use crate::iomem::MemoryRange;

use super::model::{KernelFacts, LoadMode, LoadPlan, SegmentKind};
use super::place::{Error, Planner};

/// A file (or generated blob) to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob<'a> {
    /// File name, or `generated`.
    pub source: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
    /// The digests of `bytes` in [`crate::digest::CHUNK_SIZE`] chunks, if
    /// the caller already has them (it hashed each chunk as it read it):
    /// used as they are, when the segment is `bytes` alone (no padding) and
    /// their number fits; computed here otherwise. Trusted: wrong digests
    /// make the purgatory refuse the load at `kexec -e`, not here.
    pub digests: Option<&'a [crate::digest::Sha256Digest]>,
}

/// Everything a load needs, gathered by the caller (the CLI reads the files
/// and the system state; nothing here does I/O).
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    /// Normal or crash load.
    pub mode: LoadMode,
    /// Usable RAM, or the crash region: see [`memory_for`].
    pub memory: Vec<MemoryRange>,
    /// The RAM the running kernel manages
    /// ([`crate::iomem::MemoryMap::total_ram`]).
    pub total_ram: u64,
    /// The running kernel's image
    /// ([`crate::iomem::MemoryMap::running_kernel`]): the initrd, DTB,
    /// purgatory and other small segments go elsewhere when they fit
    /// ([`crate::plan::Planner::avoiding`]).
    pub running_kernel: Option<MemoryRange>,
    /// The plain Image.
    pub kernel: Blob<'a>,
    /// Facts from its header.
    pub kernel_facts: KernelFacts,
    /// The initrd, if any.
    pub initrd: Option<Blob<'a>>,
    /// The ELF core header of a crash load ([`crate::elfcore::build`]);
    /// [`build`] places it and points `/chosen/linux,elfcorehdr` at it, so
    /// `chosen.crash` must be set.
    pub elfcorehdr: Option<Blob<'a>>,
    /// The device tree to edit (the running one, `--dtb`, or a UKI's).
    pub dtb: &'a [u8],
    /// The `/chosen` edits; `initrd` is filled in by [`build`].
    pub chosen: fdt::ChosenEdit,
    /// The purgatory to load last (it verifies every other segment), with
    /// its options; `None` enters the kernel directly (x0 = 0: only useful
    /// for plans that are printed, not loaded).
    pub purgatory: Option<(
        crate::purgatory::Purgatory<'a>,
        crate::purgatory::PurgatoryOptions,
    )>,
    /// The CPUs the machine's ACPI tables name for PSCI
    /// ([`crate::machine::madt::psci_cpus`]): the purgatory hashes on them
    /// when the device tree names none (a UEFI/ACPI machine hands the new
    /// kernel a tree without `/cpus`).
    pub acpi_cpus: Option<fdt::PsciCpus>,
    /// The PL011 the machine's ACPI SPCR names
    /// ([`crate::machine::spcr::Spcr::pl011`]): the purgatory prints on it
    /// when the device tree's `stdout-path` names none.
    pub acpi_uart: Option<u64>,
}

/// Why [`build`] failed: which step, so the caller can name the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A segment could not be placed.
    #[error("{error}")]
    Place {
        /// The segment.
        kind: SegmentKind,
        /// Why.
        #[source]
        error: Error,
    },
    /// An ELF core header for a request without crash `/chosen` edits.
    #[error("an ELF core header needs the crash /chosen edits (a crash load)")]
    ElfCoreHeaderWithoutCrash,
    /// The device tree could not be edited.
    #[error(transparent)]
    Fdt(#[from] fdt::Error),
    /// The purgatory's header could not be filled in.
    #[error(transparent)]
    Purgatory(#[from] crate::purgatory::Error),
}

/// A plan and the device tree it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The plan.
    pub plan: LoadPlan,
    /// The edited device tree (the bytes of the DTB segment) and its diff.
    pub dtb: fdt::EditedDtb,
    /// The purgatory with its header filled in (the bytes of its segment).
    pub purgatory: Option<Vec<u8>>,
    /// The console UART the purgatory reports on.
    pub uart: Option<Uart>,
    /// The CPUs the purgatory may start to verify with it (from the tree's
    /// PSCI node and `/cpus`): only for a normal load that verifies with
    /// the caches on, never for a crash load (the crashed kernel stops
    /// its CPUs as best it can, and kdump must not depend on them).
    pub psci_cpus: Option<fdt::PsciCpus>,
}

/// The PL011 the purgatory prints on, and where the loader found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Its registers' physical address.
    pub base: u64,
    /// What named it.
    pub named_by: UartSource,
}

/// Where the loader found the purgatory's UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartSource {
    /// The device tree's `/chosen` `stdout-path`.
    StdoutPath,
    /// The ACPI SPCR, the tree naming none.
    AcpiSpcr,
}

impl std::fmt::Display for UartSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StdoutPath => "stdout-path",
            Self::AcpiSpcr => "the ACPI SPCR",
        })
    }
}

/// The memory a load may use: usable RAM for a normal load; the highest
/// `Crash kernel` range for a crash load (`None` if there is none).
pub fn memory_for(map: &crate::iomem::MemoryMap, mode: LoadMode) -> Option<Vec<MemoryRange>> {
    match mode {
        LoadMode::Normal => Some(map.usable_ram()),
        LoadMode::Crash => map.crash_kernel().map(|r| vec![r]),
    }
}

/// Makes the plan in the one order that works: kernel (fixes the window),
/// initrd and ELF core header (their addresses go into `/chosen`), the edited
/// DTB, then the purgatory.
pub fn build(req: &LoadRequest<'_>) -> Result<Built, BuildError> {
    let at = |kind| move |error| BuildError::Place { kind, error };
    // What the tree reserves for others (its memory reservations, the EFI
    // memory map) is not ours to use: the running kernel shows most of it as
    // `reserved` in /proc/iomem, but not a tree from elsewhere's, nor any
    // before 4.19. The edit below keeps them, and Rule::DtbReserved checks
    // the placed tree again.
    let reserved = fdt::reserved_ranges(&fdt::parse(req.dtb)?);
    let memory = crate::iomem::subtract(&req.memory, &reserved);
    let mut planner = Planner::new(&memory, req.mode)
        .with_total_ram(req.total_ram)
        .avoiding(req.running_kernel.into_iter().collect());
    if matches!(req.purgatory, Some((_, options)) if options.no_verify) {
        planner = planner.without_digests();
    }
    for b in [Some(req.kernel), req.initrd].into_iter().flatten() {
        if let Some(digests) = b.digests {
            planner = planner.with_chunk_digests(b.bytes, digests);
        }
    }
    // The Image's load address, the kernel's entry point (the segment may
    // start below it: KernelFacts::segment_padding).
    let kernel_entry = planner
        .place_kernel(req.kernel.source, req.kernel.bytes, req.kernel_facts)
        .map_err(at(SegmentKind::Kernel))?;
    let initrd = match req.initrd {
        Some(b) => Some(
            planner
                .place_initrd(b.source, b.bytes)
                .map_err(at(SegmentKind::Initrd))?,
        ),
        None => None,
    };
    let mut chosen = req.chosen.clone();
    if let Some(b) = req.elfcorehdr {
        let crash = chosen
            .crash
            .as_mut()
            .ok_or(BuildError::ElfCoreHeaderWithoutCrash)?;
        let mem = planner
            .place_blob(SegmentKind::ElfCoreHeader, b.source, b.bytes)
            .map_err(at(SegmentKind::ElfCoreHeader))?;
        crash.elfcorehdr = Some(MemoryRange::with_size(mem, b.bytes.len() as u64));
    }
    let edit = fdt::ChosenEdit { initrd, ..chosen };
    // One parse of the request's DTB: the edit returns the tree it edited,
    // which the console lookup below reads. The placer still reads the
    // initrd back from the serialised bytes (LoadPlan::dtb_initrd): that
    // second parse is the independent read-back Rule::DtbInitrd checks.
    let (dtb, tree) = fdt::edit_chosen_tree(req.dtb, &edit)?;
    planner
        .place_dtb("generated", &dtb.dtb)
        .map_err(at(SegmentKind::Dtb))?;
    let mut purgatory = None;
    let mut uart = None;
    let mut psci_cpus = None;
    if let Some((image, options)) = req.purgatory {
        // Everything placed so far is verified by the purgatory, which is
        // placed last: its own bytes carry the digests.
        uart = fdt::stdout_pl011(&tree)
            .map(|base| Uart {
                base,
                named_by: UartSource::StdoutPath,
            })
            .or(req.acpi_uart.map(|base| Uart {
                base,
                named_by: UartSource::AcpiSpcr,
            }));
        let verifies_cached = !(options.no_verify || options.no_caches || options.one_cpu);
        if req.mode == LoadMode::Normal && verifies_cached {
            psci_cpus = fdt::psci_cpus(&fdt::cpu_boot_of(&tree), handoff::MAX_SECONDARIES)
                .or_else(|| req.acpi_cpus.clone());
        }
        let dtb_addr = planner.dtb_addr().ok_or(BuildError::Place {
            kind: SegmentKind::Purgatory,
            error: Error::Missing(SegmentKind::Dtb),
        })?;
        let params = crate::purgatory::handoff_params(
            planner.segments().iter().map(|s| (s.mem, s.bufsz)),
            kernel_entry,
            dtb_addr,
            uart.map(|u| u.base),
            options,
            image.digests_offset(),
            psci_cpus.as_ref(),
        )?;
        // Without digests (`-i`) the purgatory is told not to verify
        // (NO_VERIFY) and gets no table.
        let table: Vec<_> = planner
            .segments()
            .iter()
            .filter_map(|s| s.digests.as_deref())
            .flatten()
            .copied()
            .collect();
        let bytes = image.segment_bytes(&params, &table)?;
        planner
            .place_purgatory(
                "purgatory (built in)",
                &bytes,
                crate::purgatory::Purgatory::ENTRY_OFFSET,
                image.mem_size,
            )
            .map_err(at(SegmentKind::Purgatory))?;
        purgatory = Some(bytes);
    }
    let plan = planner.finish().map_err(at(SegmentKind::Kernel))?;
    Ok(Built {
        plan,
        dtb,
        purgatory,
        uart,
        psci_cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dtb_without_initrd, facts};
    use super::super::Rule;
    use super::*;
    use crate::layout::SZ_1M;

    /// Digests the caller computed while reading go into the kernel's and
    /// the initrd's segments as they are (deliberately wrong ones here, to
    /// tell them from recomputed ones); not when their number does not fit
    /// the bytes, nor for a kernel segment that starts with padding (its
    /// chunks are not the file's).
    #[test]
    fn caller_digests_are_used_when_they_fit() {
        use crate::digest::chunk_digests;
        let kernel = vec![1u8; 3 << 20]; // two 2 MiB chunks
        let initrd = vec![2u8; 1 << 20]; // one
        let dtb = dtb_without_initrd();
        let fake = [[9u8; 32]; 2];
        let mut req = LoadRequest {
            mode: LoadMode::Normal,
            memory: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
            total_ram: 1 << 30,
            running_kernel: None,
            kernel: Blob {
                source: "Image",
                bytes: &kernel,
                digests: Some(&fake),
            },
            kernel_facts: facts(4 * SZ_1M),
            initrd: Some(Blob {
                source: "initrd",
                bytes: &initrd,
                digests: Some(&fake[..1]),
            }),
            elfcorehdr: None,
            dtb: &dtb,
            chosen: fdt::ChosenEdit::default(),
            purgatory: None,
            acpi_cpus: None,
            acpi_uart: None,
        };
        let digests = |req: &LoadRequest<'_>, kind| {
            let built = build(req).unwrap();
            built.plan.segment(kind).unwrap().digests.clone().unwrap()
        };
        assert_eq!(digests(&req, SegmentKind::Kernel), fake);
        assert_eq!(digests(&req, SegmentKind::Initrd), fake[..1]);
        // One digest for two chunks: computed.
        req.kernel.digests = Some(&fake[..1]);
        assert_eq!(
            digests(&req, SegmentKind::Kernel),
            chunk_digests(0, &kernel)
        );
        // A kernel segment with 4 KiB of padding before the Image.
        req.kernel.digests = Some(&fake);
        req.kernel_facts.text_offset = 0x1000;
        assert_eq!(
            digests(&req, SegmentKind::Kernel),
            chunk_digests(0x1000, &kernel)
        );
    }

    #[test]
    fn build_places_the_elf_core_header_and_points_chosen_at_it() {
        use dtoolkit::{Node, Property};

        let crash = MemoryRange::new(0x6ac0_0000, 0x7ac0_0000);
        let header = crate::elfcore::build(&crate::elfcore::ElfCoreInputs {
            ram: vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
            crash: vec![crash],
            ..Default::default()
        })
        .unwrap();
        let kernel = vec![0u8; 1 << 20];
        let dtb = dtb_without_initrd();
        let mut req = LoadRequest {
            mode: LoadMode::Crash,
            memory: vec![crash],
            total_ram: 1 << 30,
            running_kernel: None,
            kernel: Blob {
                source: "Image",
                bytes: &kernel,
                digests: None,
            },
            kernel_facts: facts(4 * SZ_1M),
            initrd: None,
            elfcorehdr: Some(Blob {
                source: "generated",
                bytes: &header,
                digests: None,
            }),
            dtb: &dtb,
            chosen: fdt::ChosenEdit {
                crash: Some(fdt::CrashChosen {
                    elfcorehdr: None,
                    usable: vec![crash],
                }),
                ..Default::default()
            },
            purgatory: None,
            acpi_cpus: None,
            acpi_uart: None,
        };
        let built = build(&req).unwrap();
        let seg = built.plan.segment(SegmentKind::ElfCoreHeader).unwrap();
        // Right after the 4 MiB kernel, inside the crash region.
        assert_eq!(seg.mem, 0x6b00_0000);
        assert_eq!(seg.bufsz, header.len() as u64);
        assert!(crash.contains_range(&seg.range()));
        let tree = fdt::parse(&built.dtb.dtb).unwrap();
        let chosen = tree.find_node("/chosen").unwrap();
        #[rustfmt::skip]
        assert_eq!(chosen.property(fdt::ELFCOREHDR).unwrap().value(), &[
            // No root #address-cells/#size-cells: the kernel reads 1 and 1
            // (OF_ROOT_NODE_*_CELLS_DEFAULT, drivers/of/of_private.h).
            0x6b, 0x00, 0x00, 0x00, // address, 1 cell
            0x00, 0x00, 0x00, 0xb0, // size, 1 cell: 64 + 2 * 56 bytes
        ]);
        let failed: Vec<_> = built
            .plan
            .check()
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.rule)
            .collect();
        assert_eq!(failed, [Rule::DtbHandedOver], "no purgatory in this test");

        req.chosen.crash = None;
        assert_eq!(build(&req), Err(BuildError::ElfCoreHeaderWithoutCrash));
    }

    /// A tree reserving the base of RAM (memreserve) and naming an EFI
    /// memory map just above: the kernel goes above both, and the placed
    /// tree still reserves them. Placed without the subtraction, the
    /// segments land on them and `dtb-reserved` fails.
    #[test]
    fn build_places_nothing_on_what_the_tree_reserves() {
        use dtoolkit::memreserve::MemoryReservation;
        use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

        let mut tree = DeviceTree::new();
        tree.memory_reservations
            .push(MemoryReservation::new(0x4000_0000, 0x1000));
        let mut chosen = DeviceTreeNode::new_unchecked("chosen");
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::UEFI_MMAP_START,
            0x4021_0018u64,
        ));
        chosen.add_property(DeviceTreeProperty::new_unchecked(
            fdt::UEFI_MMAP_SIZE,
            0x6c0u32,
        ));
        tree.root.add_child(chosen);
        let dtb = tree.to_dtb();
        let kernel = vec![0u8; 1 << 20];
        let ram = MemoryRange::new(0x4000_0000, 0x8000_0000);
        let req = LoadRequest {
            mode: LoadMode::Normal,
            memory: vec![ram],
            total_ram: 1 << 30,
            kernel: Blob {
                source: "Image",
                bytes: &kernel,
                digests: None,
            },
            kernel_facts: facts(2 * SZ_1M),
            initrd: None,
            elfcorehdr: None,
            dtb: &dtb,
            chosen: fdt::ChosenEdit::default(),
            purgatory: None,
            running_kernel: None,
            acpi_cpus: None,
            acpi_uart: None,
        };
        let built = build(&req).unwrap();
        // 0x40000000 and 0x40200000 each hold a reserved byte.
        assert_eq!(built.plan.kernel_load_addr(), Some(0x4040_0000));
        assert_eq!(
            built.plan.dtb_reserved,
            [
                MemoryRange::with_size(0x4000_0000, 0x1000),
                MemoryRange::with_size(0x4021_0018, 0x6c0),
            ]
        );
        let failed = |plan: &LoadPlan| -> Vec<Rule> {
            plan.check()
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| c.rule)
                .collect()
        };
        assert_eq!(failed(&built.plan), [Rule::DtbHandedOver]);
        // The planner alone, on all of RAM: the kernel lands on both.
        let mut planner = Planner::new(&[ram], LoadMode::Normal);
        planner
            .place_kernel("Image", &kernel, facts(4 * SZ_1M))
            .unwrap();
        planner.place_dtb("generated", &built.dtb.dtb).unwrap();
        let plan = planner.finish().unwrap();
        assert_eq!(failed(&plan), [Rule::DtbReserved, Rule::DtbHandedOver]);
    }

    /// The purgatory gets the tree's PSCI CPUs for a normal load that
    /// verifies with its caches on, and for nothing else.
    #[test]
    fn psci_cpus_go_into_the_header_of_a_cached_normal_load_only() {
        use crate::purgatory::{Purgatory, PurgatoryOptions};
        use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

        let prop = |n: &str, v: &[u8]| DeviceTreeProperty::new_unchecked(n, v.to_vec());
        let mut t = DeviceTree::new();
        let mut psci = DeviceTreeNode::new_unchecked("psci");
        psci.add_property(prop("compatible", b"arm,psci-1.0\0arm,psci-0.2\0"));
        psci.add_property(prop("method", b"smc\0"));
        t.root.add_child(psci);
        let mut cpus = DeviceTreeNode::new_unchecked("cpus");
        cpus.add_property(prop("#address-cells", &1u32.to_be_bytes()));
        for i in 0..4u32 {
            let mut cpu = DeviceTreeNode::new_unchecked(format!("cpu@{i}"));
            cpu.add_property(prop("device_type", b"cpu\0"));
            cpu.add_property(prop("enable-method", b"psci\0"));
            cpu.add_property(prop("reg", &i.to_be_bytes()));
            cpus.add_child(cpu);
        }
        t.root.add_child(cpus);
        let dtb = t.to_dtb();
        let mut image = vec![0u8; 8 << 10];
        let header = handoff::PurgatoryHeader {
            mem_size: 64 << 10,
            params: handoff::HandoffParams::default(),
        };
        image[handoff::HEADER_OFFSET..][..handoff::HEADER_SIZE]
            .copy_from_slice(&header.encode().unwrap());
        let purgatory = Purgatory::parse(&image).unwrap();
        let kernel = vec![0u8; 1 << 20];
        let crash = MemoryRange::new(0x6000_0000, 0x7000_0000);
        let header_of = |mode, options: PurgatoryOptions| {
            let req = LoadRequest {
                mode,
                memory: match mode {
                    LoadMode::Normal => vec![MemoryRange::new(0x4000_0000, 0x8000_0000)],
                    LoadMode::Crash => vec![crash],
                },
                total_ram: 1 << 30,
                running_kernel: None,
                kernel: Blob {
                    source: "Image",
                    bytes: &kernel,
                    digests: None,
                },
                kernel_facts: facts(4 * SZ_1M),
                initrd: None,
                elfcorehdr: None,
                dtb: &dtb,
                chosen: fdt::ChosenEdit {
                    crash: (mode == LoadMode::Crash).then(|| fdt::CrashChosen {
                        elfcorehdr: None,
                        usable: vec![crash],
                    }),
                    ..Default::default()
                },
                purgatory: Some((purgatory, options)),
                acpi_cpus: None,
                acpi_uart: None,
            };
            let built = build(&req).unwrap();
            let bytes = built.purgatory.unwrap();
            let h = handoff::PurgatoryHeader::decode(&bytes[handoff::HEADER_OFFSET..]).unwrap();
            (
                built.psci_cpus,
                h.params.psci,
                h.params.secondaries().to_vec(),
            )
        };
        let normal = PurgatoryOptions::default();
        let (cpus, conduit, secondaries) = header_of(LoadMode::Normal, normal);
        assert_eq!(conduit, handoff::Conduit::Smc);
        assert_eq!(secondaries, [0, 1, 2, 3]);
        assert_eq!(cpus.map(|c| c.mpidrs), Some(vec![0, 1, 2, 3]));
        for (why, mode, options) in [
            ("crash", LoadMode::Crash, normal),
            (
                "-i",
                LoadMode::Normal,
                PurgatoryOptions {
                    no_verify: true,
                    ..normal
                },
            ),
            (
                "caches off",
                LoadMode::Normal,
                PurgatoryOptions {
                    no_caches: true,
                    ..normal
                },
            ),
            (
                "one CPU",
                LoadMode::Normal,
                PurgatoryOptions {
                    one_cpu: true,
                    ..normal
                },
            ),
        ] {
            let (cpus, conduit, secondaries) = header_of(mode, options);
            assert_eq!(cpus, None, "{why}");
            assert_eq!(
                (conduit, secondaries.len()),
                (handoff::Conduit::None, 0),
                "{why}"
            );
        }
    }
}

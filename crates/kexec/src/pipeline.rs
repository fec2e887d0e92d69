//! The planning pipeline: read the kernel, the initrd, the device tree and
//! the system state (live, or replayed from `--sysroot`), and ask
//! `kexec-core` for the plan a load carries out ([`make_plan`]). Shared by
//! `kexec -l`/`-p` and `kexec sim`; it prints nothing and makes no kexec
//! system call.

use std::path::Path;

use kexec_core::digest::Sha256Digest;
use kexec_core::fdt::{self, ChosenEdit, CrashChosen, RNG_SEED_LEN};
use kexec_core::image::{Arm64ImageHeader, LEGACY_IMAGE_ROOM};
use kexec_core::layout::human_size;
use kexec_core::plan::{self, Blob, BuildError, KernelFacts, LoadMode, LoadRequest, SegmentKind};
use kexec_core::purgatory::Purgatory;
use kexec_core::{cmdline, initramfs, iomem, kernel};

use crate::crashdump;
use crate::failure::{chain, Failure};
use crate::firmware::{self, Firmware, Interface, Risk};
use crate::hashed_read;
use crate::hints::{self, Situation};
use crate::mode::LoadModeExt;
use crate::plan_input::PlanInput;
use crate::syscalls::Buffers;
use crate::sysroot::{self, Sysroot};
use crate::timing;

/// Environment variable: a u64 (decimal or 0x-hex) that makes `kaslr-seed`
/// and `rng-seed` deterministic, for golden tests. Only a build with the
/// `test-seed` feature reads it (this crate's tests); release builds ignore it.
pub const TEST_SEED_ENV: &str = "KEXEC_RS_TEST_SEED";

/// The purgatory built from crates/purgatory by `build.rs` (flat,
/// position independent, header unpatched); every plan patches a copy.
pub const PURGATORY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/purgatory.bin"));

/// The linked purgatory ELF [`PURGATORY`] was flattened from (code and
/// symbols), for the tests that read its paths (`tests/model_link.rs`).
/// Not used by the tool: a constant, so not in the binary.
pub const PURGATORY_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/purgatory.elf"));

/// The source of the initrd segment a load without initrd gets on a UEFI
/// machine ([`initramfs::empty`]).
pub(crate) const EMPTY_INITRAMFS: &str = "empty-initramfs";

/// The initrd of a plan and where it came from.
#[derive(Debug)]
pub(crate) struct InitrdFile {
    /// Short name, the segment's source in the plan (`initrd.img`, or
    /// `KERNEL:.initrd` from a UKI).
    pub name: String,
    /// The path as given (or the UKI name), the subject of errors about it.
    pub path: String,
    /// Its bytes, read into memory. (Not mapped: a `&[u8]` over a file
    /// mapping is sound only while no other process writes the file, a
    /// promise the loader cannot make; kexec-sys would have to leave it to
    /// its caller as an `unsafe fn`, which this crate forbids.)
    pub bytes: Vec<u8>,
    /// Their chunk digests, if hashed as they were read.
    pub digests: Option<Vec<Sha256Digest>>,
}

/// A plan and the bytes of every segment (what `kexec_load` is given).
#[derive(Debug)]
pub(crate) struct Planned {
    /// The plan, the edited DTB and the patched purgatory.
    pub built: plan::Built,
    /// The kernel segment's bytes: the plain Image, after zeros when
    /// `text_offset` is not 64 KiB aligned (`KernelFacts::segment_padding`).
    pub kernel_image: Vec<u8>,
    /// The format the kernel came in.
    pub kernel_format: String,
    /// The initrd.
    pub initrd: Option<InitrdFile>,
    /// The ELF core header of a crash load.
    pub elfcorehdr: Option<Vec<u8>>,
    /// The new command line (`None`: `bootargs` kept).
    pub cmdline: Option<Vec<u8>>,
    /// Where the device tree came from.
    pub dtb_from: String,
    /// Remarks for the user.
    pub notes: Vec<String>,
    /// The running system's `/proc/iomem`, which the plan was made in.
    pub memory_map: iomem::MemoryMap,
    /// What the device tree hands over of the running kernel's boot state
    /// (`Handover::dtb` is the tree before its `/chosen` edits).
    pub handover: fdt::Handover,
    /// The running system's firmware.
    pub firmware: Firmware,
    /// How the new kernel will find the hardware, and why.
    pub interface: (Interface, &'static str),
    /// What may keep the new kernel from booting or working.
    pub risks: Vec<Risk>,
}

impl Planned {
    /// The segment buffers, by kind.
    pub fn buffers(&self) -> Buffers<'_> {
        Buffers {
            kernel: &self.kernel_image,
            initrd: self.initrd.as_ref().map(|f| &f.bytes[..]),
            dtb: &self.built.dtb.dtb,
            purgatory: self.built.purgatory.as_deref(),
            elfcorehdr: self.elfcorehdr.as_deref(),
        }
    }
}

/// `--reuse-cmdline`: the running kernel's command line (from `root`)
/// without what must not be passed on; `None` without the option.
pub(crate) fn reused_cmdline(
    reuse: bool,
    root: &Sysroot,
    mode: LoadMode,
) -> Result<Option<Vec<u8>>, Failure> {
    if !reuse {
        return Ok(None);
    }
    let text = read_state(root, sysroot::CMDLINE, "--reuse-cmdline needs it")?;
    Ok(Some(cmdline::reused(&text, mode == LoadMode::Crash)))
}

/// The file name of `path` (the whole path if it has none).
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| unreadable_input(path, &e))
}

/// A kernel or initrd, with its chunk digests when `hash` says so given
/// the file's head: hashed as it is read ([`hashed_read`]).
fn read_segment_input(
    path: &Path,
    hash: impl FnOnce(&[u8]) -> bool,
) -> Result<hashed_read::HashedFile, Failure> {
    hashed_read::read(path, hash).map_err(|e| unreadable_input(path, &e))
}

fn unreadable_input(path: &Path, e: &std::io::Error) -> Failure {
    Failure::input(
        path.display().to_string(),
        format!("cannot read: {e}"),
        hints::input_unreadable(e.kind()),
    )
}

/// The state file `rel` of `root`, needed because `need` (the hint says
/// what is true for the error and the situation: `hints::state_unreadable`).
fn read_state(root: &Sysroot, rel: &str, need: &str) -> Result<Vec<u8>, Failure> {
    root.read(rel).map_err(|e| {
        Failure::system(
            root.path(rel).display().to_string(),
            format!("cannot read: {e}"),
            hints::state_unreadable(rel, need, e.kind(), &Situation::of(root)),
        )
    })
}

/// `/proc/iomem` of `root`, parsed; `need` says why it is read (the hint
/// when it cannot be).
pub(crate) fn read_memory_map(root: &Sysroot, need: &str) -> Result<iomem::MemoryMap, Failure> {
    let path = root.path(sysroot::IOMEM).display().to_string();
    let text = read_state(root, sysroot::IOMEM, need)?;
    iomem::parse(&String::from_utf8_lossy(&text)).map_err(|e| match e {
        iomem::Error::AddressesHidden => {
            Failure::system(&path, &e, hints::hidden_addresses(&Situation::of(root)))
        }
        _ => Failure::input(&path, &e, "is this a /proc/iomem?"),
    })
}

/// `kaslr-seed` and `rng-seed`: from the OS RNG, or, in a test build only,
/// derived from [`TEST_SEED_ENV`] when set ([`fixed_seed`]).
fn seeds() -> Result<(u64, Vec<u8>), Failure> {
    let mut bytes = vec![0u8; 8 + RNG_SEED_LEN];
    match fixed_seed()? {
        Some(mut state) => {
            // splitmix64: a fixed, documented stream.
            for chunk in bytes.chunks_mut(8) {
                let z = cachesim::rng::splitmix64(&mut state);
                chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
            }
        }
        None => getrandom::fill(&mut bytes).map_err(|e| {
            Failure::system(
                "getrandom",
                e,
                "the OS random number generator is unavailable",
            )
        })?,
    }
    let mut kaslr = [0u8; 8];
    kaslr.copy_from_slice(&bytes[..8]);
    Ok((u64::from_le_bytes(kaslr), bytes[8..].to_vec()))
}

/// The seed [`TEST_SEED_ENV`] fixes, in a build with the `test-seed` feature
/// (this crate's tests: Cargo.toml): a u64, decimal or 0x-hex.
#[cfg(feature = "test-seed")]
fn fixed_seed() -> Result<Option<u64>, Failure> {
    let Ok(text) = std::env::var(TEST_SEED_ENV) else {
        return Ok(None);
    };
    let parsed = match text.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => text.parse(),
    };
    parsed.map(Some).map_err(|e| {
        Failure::input(
            TEST_SEED_ENV,
            format!("{text:?}: {e}"),
            "a u64, decimal or 0x-hex",
        )
    })
}

/// A release build never reads [`TEST_SEED_ENV`]: a variable leaked into the
/// environment cannot make a shipped binary's seeds predictable.
#[cfg(not(feature = "test-seed"))]
fn fixed_seed() -> Result<Option<u64>, Failure> {
    Ok(None)
}

/// Where `image` lies inside `file`, if it is a slice of it (a plain Image,
/// or an uncompressed UKI `.linux`, is borrowed from the file): then the
/// file's buffer is reused for it instead of copying the kernel, and peak
/// memory stays at the size of the input, as with kexec-tools. A
/// decompressed Image lives elsewhere and gives `None`.
fn image_span(file: &[u8], image: &[u8]) -> Option<(usize, usize)> {
    let offset = (image.as_ptr() as usize).checked_sub(file.as_ptr() as usize)?;
    let end = offset.checked_add(image.len())?;
    (end <= file.len()).then_some((offset, image.len()))
}

/// `--serial TTY`: kexec-tools' arm64 purgatory writes to the MMIO address
/// `/sys/class/tty/TTY/iomem_base` names (`find_purgatory_sink` in
/// kexec/arch/arm64/kexec-arm64.c). Ours drives a PL011 and takes it from
/// the device tree's `stdout-path`, else from the ACPI SPCR; `--serial` is
/// accepted when it names that same UART and refused otherwise, so the
/// purgatory never writes to a device it cannot drive.
fn check_serial(root: &Sysroot, tty: &str, uart: Option<plan::Uart>) -> Result<(), Failure> {
    if tty.is_empty() || tty.contains('/') || tty.starts_with('.') {
        return Err(Failure::input(
            "arguments",
            format!("--serial {tty:?}: not a tty name"),
            "a name under /sys/class/tty, e.g. ttyAMA0",
        ));
    }
    let rel = format!("sys/class/tty/{tty}/iomem_base");
    let text = root.read(&rel).map_err(|e| {
        Failure::system(
            root.path(&rel).display().to_string(),
            format!("cannot read: {e}"),
            hints::serial_unreadable(tty, e.kind(), &Situation::of(root)),
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let base = text
        .trim()
        .strip_prefix("0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .filter(|&b| b != 0)
        .ok_or_else(|| {
            Failure::input(
                root.path(&rel).display().to_string(),
                format!("{:?} is not a MMIO address", text.trim()),
                "--serial needs a memory-mapped UART (iomem_base 0x...)",
            )
        })?;
    match uart {
        Some(u) if u.base == base => Ok(()),
        Some(u) => Err(Failure::input(
            "arguments",
            format!(
                "--serial {tty} is at {base:#x}, but the purgatory prints on the PL011 at {:#x} that {} names",
                u.base, u.named_by
            ),
            "drop --serial, or point stdout-path at that UART (--dtb)",
        )),
        None => Err(Failure::input(
            "arguments",
            format!("--serial {tty} ({base:#x}): neither the device tree's stdout-path nor an ACPI SPCR names a PL011 the purgatory can drive"),
            "drop --serial: the purgatory will be silent",
        )),
    }
}

/// What the plan does differently for an old kernel: a pre-3.17 header
/// (room reserved by assumption) and a `text_offset` that is not 64 KiB
/// aligned (a zero-padded kernel segment).
fn kernel_layout_notes(header: &Arm64ImageHeader, facts: &KernelFacts) -> Vec<String> {
    let mut notes = Vec::new();
    if header.is_legacy() {
        notes.push(format!(
            "pre-3.17 Image (image_size 0): text_offset taken as {:#x}; reserving the file \
             plus {} after the Image, and its 2 MiB base below it (kexec-tools reserves \
             16 MiB in all); initrd and DTB above the base, the DTB within 512 MiB of it",
            facts.text_offset,
            human_size(LEGACY_IMAGE_ROOM),
        ));
    }
    let padding = facts.segment_padding();
    if padding != 0 {
        notes.push(format!(
            "text_offset {:#x} is not 64 KiB aligned: the kernel segment starts {} below \
             the Image, zero-filled",
            facts.text_offset,
            human_size(padding),
        ));
    }
    notes
}

/// Read the inputs and the system state and make the plan `kexec -l` (or
/// `-p`) loads.
pub(crate) fn make_plan(
    args: &PlanInput<'_>,
    mode: LoadMode,
    kernel_path: &Path,
    root: &Sysroot,
) -> Result<Planned, Failure> {
    let kernel_name = kernel_path.display().to_string();
    let verify = !args.purgatory.no_verify;
    // Hashed as read only if the file is its segment: a plain Image (an
    // `MZ` EFI-stub Image is one too), not a compressed or packed kernel.
    let plain_image = |head: &[u8]| verify && Arm64ImageHeader::parse(head).is_ok();
    let kernel_read = timing::time("read", || read_segment_input(kernel_path, plain_image))?;
    let kernel_bytes = kernel_read.bytes;
    let kernel = timing::time("decompress", || kernel::decode(&kernel_bytes)).map_err(|e| {
        Failure::input(
            &kernel_name,
            chain(&e),
            "give an arm64 Image, Image.gz/.zst/.xz/.lz4, zboot, ELF vmlinux or UKI",
        )
    })?;
    if let Some(t) = args.kernel_type {
        if !t.accepts(&kernel.format) {
            return Err(Failure::input(
                &kernel_name,
                format!("--type {t:?}: the file is {}", kernel.format),
                "drop --type (the format is recognised from the content) or give the right file",
            ));
        }
    }
    let uki = kernel.uki.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let mut spcr_notes = Vec::new();
    let loaded = mode.loaded_flag();
    if root.flag(loaded) == Some(true) {
        notes.push(format!(
            "{loaded} is 1: a load would replace the kernel already loaded"
        ));
    }

    // Memory the plan may use.
    let iomem_path = root.path(sysroot::IOMEM).display().to_string();
    let map = read_memory_map(root, "the memory map is needed")?;
    let mut memory = plan::memory_for(&map, mode).ok_or_else(|| {
        let cmdline = root.read_text(sysroot::CMDLINE).ok();
        Failure::system(
            &iomem_path,
            "no \"Crash kernel\" region",
            hints::no_crash_region(cmdline.as_deref(), &Situation::of(root)),
        )
    })?;
    if !args.window.is_everything() {
        memory = args.window.clip(&memory);
        notes.push(format!(
            "--mem-min/--mem-max: segments only in {:#x}..={:#x}",
            args.window.min, args.window.max
        ));
        if memory.is_empty() {
            return Err(Failure::input(
                "arguments",
                format!(
                    "--mem-min {:#x} / --mem-max {:#x} leave no usable memory",
                    args.window.min, args.window.max
                ),
                "widen the window (see the memory in `kexec -l KERNEL --dry-run`)",
            ));
        }
    }
    let elfcorehdr = match mode {
        LoadMode::Crash => Some(crashdump::elf_core_header(root, &map, &mut notes)?),
        LoadMode::Normal => None,
    };
    let crash = (mode == LoadMode::Crash).then(|| {
        let mut usable = map.crash_regions();
        usable.reverse(); // high first, low last
        CrashChosen {
            elfcorehdr: None,
            usable,
        }
    });

    // Command line.
    let reused = reused_cmdline(args.reuse_cmdline, root, mode)?;
    let append = match (&reused, args.append) {
        (None, None) => uki.cmdline.as_deref().map(str::as_bytes),
        (_, given) => given,
    };
    let new_cmdline = cmdline::build(reused.as_deref(), append)
        .map_err(|e| Failure::input("command line", &e, e.hint()))?;

    // Device tree source.
    let (dtb_from, dtb_in) = match (args.dtb, &uki.dtb) {
        (Some(p), _) => (display_name(p), read_input(p)?),
        (None, Some(d)) => (format!("{}:.dtb", display_name(kernel_path)), d.clone()),
        (None, None) => (
            sysroot::FDT.to_owned(),
            timing::time("read", || {
                read_state(root, sysroot::FDT, "the running device tree is needed")
            })?,
        ),
    };
    let dtb_subject = args.dtb.map_or_else(
        || root.path(sysroot::FDT).display().to_string(),
        |p| p.display().to_string(),
    );
    fdt::parse_header(&dtb_in)
        .map_err(|e| Failure::input(&dtb_subject, &e, "not a valid flattened device tree"))?;
    // A tree from elsewhere is merged with the running one's UEFI state
    // (fdt::prepare); the running tree is what it is merged from.
    let running = if args.dtb.is_none() && uki.dtb.is_none() {
        None
    } else {
        let read = root.read(sysroot::FDT);
        if let Err(e) = &read {
            notes.push(format!(
                "{}: cannot read ({e}): nothing of the running kernel's UEFI state is carried \
                 over into {dtb_from}",
                root.path(sysroot::FDT).display()
            ));
        }
        read.ok()
    };
    let handover = fdt::prepare(&dtb_in, running.as_deref()).map_err(|(input, e)| match input {
        fdt::Input::Given => Failure::input(&dtb_subject, &e, "not a valid flattened device tree"),
        fdt::Input::Running => Failure::input(
            root.path(sysroot::FDT).display().to_string(),
            &e,
            "the running device tree is needed for its UEFI state; is this a /sys/firmware/fdt?",
        ),
    })?;

    // Place: kernel, initrd, the edited DTB (plan::build keeps that order).
    let kernel_source = display_name(kernel_path);
    let initrd_file = match args.initrd {
        Some(p) => {
            let read = timing::time("read", || read_segment_input(p, |_| verify))?;
            Some(InitrdFile {
                name: display_name(p),
                path: p.display().to_string(),
                bytes: read.bytes,
                digests: read.digests,
            })
        }
        None => uki.initrd.clone().map(|bytes| {
            let name = format!("{kernel_source}:.initrd");
            InitrdFile {
                path: name.clone(),
                name,
                bytes,
                digests: None,
            }
        }),
    };
    // No initrd, and the tree hands over the UEFI system table: an empty
    // one, or the new kernel takes the first kernel's freed initrd from the
    // EFI configuration table (kexec_core::initramfs says why).
    let initrd_file = initrd_file.or_else(|| {
        handover.uefi.then(|| {
            notes.push(format!(
                "no initrd on a UEFI machine: an empty initramfs ({}) is passed, so that the \
                 new kernel does not take the first kernel's freed initrd from the EFI \
                 LINUX_EFI_INITRD_MEDIA table (drivers/firmware/efi/efi.c \
                 efi_config_parse_tables); it boots as without initrd",
                human_size(initramfs::EMPTY_SIZE as u64)
            ));
            InitrdFile {
                name: EMPTY_INITRAMFS.to_owned(),
                path: EMPTY_INITRAMFS.to_owned(),
                bytes: initramfs::empty(),
                digests: None,
            }
        })
    });
    let (kaslr_seed, rng_seed) = seeds()?;
    let purgatory = Purgatory::parse(PURGATORY).map_err(|e| {
        Failure::other(
            "built-in purgatory",
            e,
            "this kexec binary is broken; rebuild it",
        )
    })?;
    let purgatory_options = args.purgatory;
    let request = LoadRequest {
        mode,
        memory,
        total_ram: map.total_ram(),
        running_kernel: map.running_kernel(),
        kernel: Blob {
            source: &kernel_source,
            bytes: &kernel.image,
            // The file's digests are the segment's when the segment is the
            // file (a plain Image; the planner also wants no padding).
            digests: kernel_read
                .digests
                .as_deref()
                .filter(|_| std::ptr::eq(kernel.image.as_ref(), kernel_bytes.as_slice())),
        },
        kernel_facts: KernelFacts::from_header(&kernel.header, kernel.image.len() as u64),
        initrd: initrd_file.as_ref().map(|f| Blob {
            source: &f.name,
            bytes: &f.bytes,
            digests: f.digests.as_deref(),
        }),
        dtb: &handover.dtb,
        chosen: ChosenEdit {
            bootargs: new_cmdline.clone(),
            initrd: None,
            kaslr_seed: Some(kaslr_seed),
            rng_seed: Some(rng_seed),
            crash,
        },
        purgatory: Some((purgatory, purgatory_options)),
        acpi_cpus: (mode == LoadMode::Normal)
            .then(|| acpi_psci_cpus(root, &mut notes))
            .flatten(),
        acpi_uart: acpi_console(root, &mut spcr_notes),
        elfcorehdr: elfcorehdr.as_deref().map(|bytes| Blob {
            source: "generated",
            bytes,
            digests: None,
        }),
    };
    let built = timing::time("plan", || plan::build(&request)).map_err(|e| {
        let subject = match &e {
            BuildError::Place {
                kind: SegmentKind::Initrd,
                ..
            } => initrd_file
                .as_ref()
                .map_or_else(String::new, |f| f.path.clone()),
            BuildError::Place {
                kind: SegmentKind::Kernel,
                ..
            } => kernel_name.clone(),
            _ => dtb_subject.clone(),
        };
        Failure::input(subject, chain(&e), "see the rules in docs/plan-json.md")
    })?;
    // The SPCR matters only when stdout-path names no PL011: a table the
    // purgatory cannot use is not worth a note when the tree names one.
    if built.uart.map(|u| u.named_by) != Some(plan::UartSource::StdoutPath) {
        notes.append(&mut spcr_notes);
    }
    if args.purgatory.no_verify {
        notes.push("-i: the purgatory will not verify segment digests".to_owned());
    }
    if let Some(tty) = args.serial {
        check_serial(root, tty, built.uart)?;
    }
    match built.uart {
        None => notes.push(
            "no PL011 console in stdout-path or an ACPI SPCR: the purgatory will be silent"
                .to_owned(),
        ),
        Some(u) if u.named_by == plan::UartSource::AcpiSpcr => notes.push(format!(
            "the purgatory prints on the PL011 at {:#x} that {} names",
            u.base, u.named_by
        )),
        Some(_) => {}
    }
    if let Some(c) = &built.psci_cpus {
        let ids: Vec<String> = c.mpidrs.iter().map(|m| format!("{m:#x}")).collect();
        notes.push(format!(
            "the purgatory verifies on several CPUs: it starts those of MPIDR {} with PSCI \
             CPU_ON over {} (not its own), and enters the kernel once PSCI reports each off",
            ids.join(", "),
            c.method.name()
        ));
    }
    notes.extend(kernel_layout_notes(&kernel.header, &built.plan.kernel));
    let firmware = Firmware::read(root);
    let cmdline = match &new_cmdline {
        Some(c) => c.clone(),
        // The tree was just made and read back by the planner.
        None => fdt::read_back(&built.dtb.dtb)
            .ok()
            .and_then(|r| r.bootargs)
            .unwrap_or_default(),
    };
    let interface = firmware::new_kernel_interface(&handover, &cmdline);
    let risks = firmware::risks(firmware, &handover, interface.0);
    let kernel_format = kernel.format.to_string();
    let mut kernel_image = match image_span(&kernel_bytes, &kernel.image) {
        None => kernel.image.into_owned(),
        Some((offset, len)) => {
            let mut file = kernel_bytes;
            file.truncate(offset + len);
            file.drain(..offset);
            file
        }
    };
    // The segment starts below an Image whose text_offset is not 64 KiB
    // aligned: zeros up to it (the planner hashed the same bytes).
    let padding = usize::try_from(built.plan.kernel.segment_padding()).unwrap_or(0);
    kernel_image.splice(0..0, std::iter::repeat_n(0u8, padding));
    Ok(Planned {
        built,
        kernel_format,
        kernel_image,
        initrd: initrd_file,
        elfcorehdr,
        cmdline: new_cmdline,
        dtb_from,
        notes,
        memory_map: map,
        handover,
        firmware,
        interface,
        risks,
    })
}

/// The CPUs the ACPI tables name for PSCI (the FADT's flags, the MADT's
/// GICC structures), for the purgatory to hash on when the device tree
/// names none. No tables (a device-tree machine): none. A table that does
/// not parse: none, and a note naming it (the purgatory then verifies on
/// one CPU; nothing else depends on these tables).
fn acpi_psci_cpus(root: &Sysroot, notes: &mut Vec<String>) -> Option<fdt::PsciCpus> {
    use kexec_core::machine::{fadt, madt};
    let fadt_bytes = root.read(firmware::ACPI_FADT).ok()?;
    let madt_bytes = root.read(firmware::ACPI_MADT).ok()?;
    let parsed = fadt::arm_boot_flags(&fadt_bytes)
        .map_err(|e| (firmware::ACPI_FADT, e))
        .and_then(|flags| {
            madt::cpu_mpidrs(&madt_bytes)
                .map(|cpus| (flags, cpus))
                .map_err(|e| (firmware::ACPI_MADT, e))
        });
    match parsed {
        Ok((flags, cpus)) => madt::psci_cpus(&flags, &cpus, handoff::MAX_SECONDARIES),
        Err((file, e)) => {
            notes.push(format!(
                "{}: {e}: the purgatory verifies on one CPU",
                root.path(file).display()
            ));
            None
        }
    }
}

/// The PL011 the ACPI SPCR names, for the purgatory to print on when the
/// device tree names none. No table (a device-tree machine, or ACPI without
/// a console): none. A table that does not parse, or names a UART the
/// purgatory does not drive: none, and a note naming it (the purgatory is
/// then silent; nothing else depends on this table).
fn acpi_console(root: &Sysroot, notes: &mut Vec<String>) -> Option<u64> {
    use kexec_core::machine::spcr;
    let bytes = root.read(firmware::ACPI_SPCR).ok()?;
    let found = spcr::parse(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| t.pl011());
    match found {
        Ok(base) => Some(base),
        Err(why) => {
            notes.push(format!(
                "{}: {why}: the purgatory will not print on it",
                root.path(firmware::ACPI_SPCR).display()
            ));
            None
        }
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

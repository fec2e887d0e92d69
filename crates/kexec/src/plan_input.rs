//! What shapes a load plan besides the kernel and the system state: the
//! load options as kexec-tools spells them ([`PlanOptions`], shared by
//! `kexec -l`/`-p` and `kexec sim`) and the planner's view of them
//! ([`PlanInput`]).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kexec_core::iomem::MemoryRange;
use kexec_core::kernel;
use kexec_core::purgatory::PurgatoryOptions;

use crate::failure::Failure;

/// The options that shape a load plan, shared by `-l`/`-p` and `kexec sim`.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub(crate) struct PlanOptions {
    /// Initial ramdisk for the new kernel.
    #[arg(long, visible_alias = "ramdisk", value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// Command line for the new kernel (the last one given wins; with
    /// --reuse-cmdline it is appended to the running kernel's). An empty
    /// line keeps the device tree's `bootargs`, as kexec-tools does.
    #[arg(
        long = "append",
        visible_alias = "command-line",
        value_name = "S",
        action = clap::ArgAction::Append
    )]
    append: Vec<OsString>,
    /// Start from the running kernel's command line (minus BOOT_IMAGE=, initrd=,
    /// elfcorehdr=, and crashkernel= for -p).
    #[arg(long, action = clap::ArgAction::SetTrue)]
    reuse_cmdline: bool,
    /// Device tree to pass instead of the running one (/sys/firmware/fdt).
    #[arg(long, value_name = "FILE")]
    dtb: Option<PathBuf>,
    /// Do not verify segment digests in the purgatory before booting.
    #[arg(short = 'i', long = "no-checks", action = clap::ArgAction::SetTrue)]
    no_checks: bool,
    /// Place no segment below ADDR (decimal, 0x-hex or 0-octal).
    #[arg(long, value_name = "ADDR")]
    mem_min: Option<String>,
    /// Place no segment at or above ADDR + 1 (decimal, 0x-hex or 0-octal).
    #[arg(long, value_name = "ADDR")]
    mem_max: Option<String>,
    /// Refuse the kernel unless it is of TYPE: `Image` (plain or compressed),
    /// `vmlinux` (ELF) or `vmlinuz` (EFI zboot), kexec-tools' names.
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    kernel_type: Option<String>,
    /// The console the purgatory prints on (a tty name, e.g. ttyAMA0); it
    /// must be the PL011 of the device tree's stdout-path (booted with ACPI:
    /// the one the SPCR names).
    #[arg(long, value_name = "TTY")]
    serial: Option<String>,
    /// Accepted and ignored: kexec-tools' ELF loaders on x86 take it to pass
    /// Linux-style arguments, which is what every arm64 load does.
    #[arg(long = "args-linux", hide = true, action = clap::ArgAction::SetTrue)]
    args_linux: bool,
    /// With kexec_file_load: ask the kernel not to place the segments in CMA
    /// memory (KEXEC_FILE_NO_CMA, Linux 6.17+). kexec_load never uses CMA.
    #[arg(long = "no-cma", action = clap::ArgAction::SetTrue)]
    no_cma: bool,
}

impl PlanOptions {
    /// The planner's input; `purgatory` carries the switches beyond `-i`.
    pub(crate) fn input(&self, purgatory: PurgatoryOptions) -> Result<PlanInput<'_>, Failure> {
        let addr = |name: &str, v: &Option<String>, default: u64| {
            v.as_deref().map_or(Ok(default), |text| {
                parse_c_number(text).ok_or_else(|| {
                    Failure::input(
                        "arguments",
                        format!("bad value in --{name}={text}"),
                        "an address: decimal, 0x-hex or 0-octal",
                    )
                })
            })
        };
        let window = MemWindow {
            min: addr("mem-min", &self.mem_min, 0)?,
            max: addr("mem-max", &self.mem_max, u64::MAX)?,
        };
        let kernel_type = self
            .kernel_type
            .as_deref()
            .map(KernelType::parse)
            .transpose()?;
        Ok(PlanInput {
            initrd: self.initrd.as_deref(),
            append: self.append.last().map(|a| a.as_bytes()),
            reuse_cmdline: self.reuse_cmdline,
            dtb: self.dtb.as_deref(),
            purgatory: PurgatoryOptions {
                no_verify: self.no_checks,
                ..purgatory
            },
            window,
            kernel_type,
            serial: self.serial.as_deref(),
            no_cma: self.no_cma,
        })
    }
}

/// A number as C's `strtoul(text, &end, 0)` reads it with nothing left over
/// (kexec-tools' `--mem-min`/`--mem-max`): `0x` hex, a leading `0` octal,
/// else decimal.
pub(crate) fn parse_c_number(text: &str) -> Option<u64> {
    let t = text.trim_start();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// `--mem-min`/`--mem-max`: the physical addresses segments may occupy
/// (`max` inclusive, as in kexec-tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemWindow {
    /// Lowest usable address.
    pub min: u64,
    /// Highest usable address.
    pub max: u64,
}

impl Default for MemWindow {
    fn default() -> Self {
        Self {
            min: 0,
            max: u64::MAX,
        }
    }
}

impl MemWindow {
    /// Whether the window leaves all memory usable.
    pub(crate) fn is_everything(self) -> bool {
        self == Self::default()
    }

    /// `ranges` cut to the window (empty ranges dropped).
    pub(crate) fn clip(self, ranges: &[MemoryRange]) -> Vec<MemoryRange> {
        let end = self.max.saturating_add(1).max(self.max);
        ranges
            .iter()
            .filter_map(|r| {
                let start = r.start.max(self.min);
                let stop = if self.max == u64::MAX {
                    r.end
                } else {
                    r.end.min(end)
                };
                (start < stop).then(|| MemoryRange::new(start, stop))
            })
            .collect()
    }
}

/// `--type`: kexec-tools' arm64 loader names (`file_type[]` in
/// kexec/arch/arm64/kexec-arm64.c: vmlinux, Image, uImage, vmlinuz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KernelType {
    /// `Image`: a plain Image, or one compressed as a whole (kexec-tools
    /// decompresses gzip and xz before probing; we also take zstd and lz4).
    Image,
    /// `vmlinux`: an ELF vmlinux.
    Vmlinux,
    /// `vmlinuz`: an EFI zboot image.
    Vmlinuz,
}

impl KernelType {
    fn parse(name: &str) -> Result<Self, Failure> {
        match name {
            "Image" => Ok(Self::Image),
            "vmlinux" => Ok(Self::Vmlinux),
            "vmlinuz" => Ok(Self::Vmlinuz),
            "uImage" => Err(Failure::input(
                "arguments",
                "--type uImage: U-Boot legacy images are not supported",
                "give the Image inside it (dumpimage -T kernel -p 0 -o Image uImage)",
            )),
            other => Err(Failure::input(
                "arguments",
                format!("--type {other}: unknown kernel type"),
                "one of Image, vmlinux, vmlinuz (or leave --type out: the format is recognised)",
            )),
        }
    }

    /// Whether a kernel found in `format` is of this type.
    pub(crate) fn accepts(self, format: &kernel::KernelFormat) -> bool {
        use kernel::KernelFormat as F;
        match self {
            Self::Image => matches!(format, F::Image | F::Gzip | F::Zstd | F::Xz | F::Lz4),
            Self::Vmlinux => matches!(format, F::Elf),
            Self::Vmlinuz => matches!(format, F::Zboot { .. }),
        }
    }
}

/// What a plan is made from besides the kernel and the system state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PlanInput<'a> {
    /// `--initrd`.
    pub initrd: Option<&'a Path>,
    /// The last `--append`/`--command-line`, as given (any bytes).
    pub append: Option<&'a [u8]>,
    /// `--reuse-cmdline`.
    pub reuse_cmdline: bool,
    /// `--dtb`.
    pub dtb: Option<&'a Path>,
    /// `-i` and the hidden purgatory test switches.
    pub purgatory: PurgatoryOptions,
    /// `--mem-min`, `--mem-max`.
    pub window: MemWindow,
    /// `--type`.
    pub kernel_type: Option<KernelType>,
    /// `--serial`.
    pub serial: Option<&'a str>,
    /// `--no-cma`.
    pub no_cma: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kexec_core::kernel::KernelFormat;

    #[test]
    fn a_window_clips_each_range_and_drops_what_falls_outside() {
        let ram = [
            MemoryRange::new(0x4000_0000, 0x8000_0000),
            MemoryRange::new(0x1_0000_0000, 0x1_4000_0000),
        ];
        let w = MemWindow {
            min: 0x6000_0000,
            max: 0x1_0fff_ffff,
        };
        assert_eq!(
            w.clip(&ram),
            vec![
                MemoryRange::new(0x6000_0000, 0x8000_0000),
                MemoryRange::new(0x1_0000_0000, 0x1_1000_0000),
            ]
        );
        // max is inclusive: a window ending at a range's first byte keeps it.
        let one = MemWindow {
            min: 0,
            max: 0x4000_0000,
        };
        assert_eq!(
            one.clip(&ram),
            vec![MemoryRange::new(0x4000_0000, 0x4000_0001)]
        );
        // Nothing left, and the whole of memory.
        let none = MemWindow {
            min: 0x9000_0000,
            max: 0x9fff_ffff,
        };
        assert!(none.clip(&ram).is_empty());
        // A window starting where a range ends leaves no empty range behind.
        let at_end = MemWindow {
            min: 0x8000_0000,
            max: 0x8fff_ffff,
        };
        assert!(at_end.clip(&ram).is_empty());
        assert_eq!(MemWindow::default().clip(&ram), ram.to_vec());
        assert!(MemWindow::default().is_everything() && !w.is_everything());
    }

    #[test]
    fn each_type_accepts_its_formats_only() {
        let zboot = KernelFormat::Zboot {
            compression: "gzip".into(),
        };
        let all = [
            KernelFormat::Image,
            KernelFormat::Gzip,
            KernelFormat::Zstd,
            KernelFormat::Xz,
            KernelFormat::Lz4,
            zboot,
            KernelFormat::Elf,
            KernelFormat::Uki,
        ];
        let accepted = |t: KernelType| all.iter().filter(|f| t.accepts(f)).count();
        assert_eq!(accepted(KernelType::Image), 5);
        assert!(KernelType::Vmlinux.accepts(&KernelFormat::Elf));
        assert_eq!(accepted(KernelType::Vmlinux), 1);
        assert!(KernelType::Vmlinuz.accepts(&all[5]));
        assert_eq!(accepted(KernelType::Vmlinuz), 1);
        assert!(!KernelType::Image.accepts(&KernelFormat::Uki));
    }
}

//! Named layout constants of the arm64 boot protocol and the kexec ABI.
//!
//! Every number a placement rule depends on lives here, once, with the
//! section of the primary source that defines it:
//! Documentation/arch/arm64/booting.rst (§ "Call the kernel image",
//! § "Setup the device tree", § "Decompress the kernel image"),
//! include/uapi/linux/kexec.h and arch/arm64/include/uapi/asm/setup.h.

/// 4 KiB, the smallest arm64 page size.
pub const SZ_4K: u64 = 0x1000;
/// 64 KiB, the largest arm64 page size.
pub const SZ_64K: u64 = 0x1_0000;
/// 1 MiB.
pub(crate) const SZ_1M: u64 = 0x10_0000;
/// 2 MiB.
pub const SZ_2M: u64 = 0x20_0000;
/// 1 GiB.
pub const SZ_1G: u64 = 0x4000_0000;
/// 32 GiB.
pub(crate) const SZ_32G: u64 = 32 * SZ_1G;

/// Alignment of every segment's physical start and size.
///
/// kexec_load(2) wants `mem` and `memsz` aligned to the running kernel's
/// `PAGE_SIZE`, which on arm64 is 4, 16 or 64 KiB. We do not know which from a
/// sysroot, so we align to the largest: a plan valid for 64 KiB pages is valid
/// for all three.
pub(crate) const SEGMENT_ALIGN: u64 = SZ_64K;

/// At most this many segments per kexec_load(2) call
/// (`KEXEC_SEGMENT_MAX`, include/uapi/linux/kexec.h).
///
/// The plan rule `plan::Rule::SegmentCount` owns this number.
/// `kexec_sys::KEXEC_SEGMENT_MAX` is a second copy for the syscall layer's
/// own check: kexec-sys cannot depend on this crate, and this pure crate does
/// not depend on the syscall crate, so a test here keeps the two equal.
pub const KEXEC_SEGMENT_MAX: usize = 16;

/// Pages the kernel takes from the crash region, outside every segment, when
/// it accepts a crash `kexec_load`: the control code page (`kimage_alloc_init`,
/// kernel/kexec.c, of order `get_order(KEXEC_CONTROL_PAGE_SIZE)` = 0 since
/// arm64's `KEXEC_CONTROL_PAGE_SIZE` is 4096, arch/arm64/include/asm/kexec.h)
/// and the VMCOREINFO safe copy (`kimage_crash_copy_vmcoreinfo`,
/// kernel/kexec_core.c), both through `kimage_alloc_crash_control_pages`.
/// Each is one `PAGE_SIZE` page at a `PAGE_SIZE` aligned address; not
/// knowing the page size, we ask for [`SEGMENT_ALIGN`] (64 KiB) ones.
pub(crate) const CRASH_CONTROL_PAGES: u64 = 2;

/// The Image must be loaded at a base address aligned to 2 MiB, plus
/// `text_offset` (booting.rst § 4 "Call the kernel image").
pub(crate) const KERNEL_BASE_ALIGN: u64 = SZ_2M;

/// `text_offset` is a multiple of 4 KiB. Kernels v3.17 to v5.7 refuse to
/// build otherwise (a `#error` in arch/arm64/kernel/head.S), and
/// `CONFIG_ARM64_RANDOMIZE_TEXT_OFFSET` (arch/arm64/Makefile, removed in
/// v5.8) picked a random multiple of the kernel's page size below 2 MiB; v5.8
/// and later write 0. So `0x81000` is a real value (4 KiB pages), while
/// `0x80010` is no kernel's: its entry would not even be page aligned.
pub(crate) const TEXT_OFFSET_ALIGN: u64 = SZ_4K;

/// A kernel with header flags bit 3 clear (every kernel before v4.6, and so
/// every pre-3.17 header, whose flags are 0) reaches nothing below its
/// 2 MiB aligned base: booting.rst § 4, "Bit 3", "memory below it is not
/// accessible via the linear mapping". Kernels before v4.2 also map the
/// device tree with one 2 MiB block during early boot, and only within this
/// distance above that base (`__create_page_tables` in
/// arch/arm64/kernel/head.S; booting.txt of those versions: "within the first
/// 512 megabytes from the start of the kernel image"), else they boot without
/// one.
pub(crate) const OLD_KERNEL_DTB_REACH: u64 = 512 * SZ_1M;

/// ... and that block: the device tree must not cross a 2 MiB boundary.
pub(crate) const OLD_KERNEL_DTB_BLOCK: u64 = SZ_2M;

/// With header flags bit 3 set, all `image_size` bytes of the Image must lie
/// below 2^48 (booting.rst § 4, "Bit 3").
pub(crate) const PHYS_ADDR_LIMIT_48: u64 = 1 << 48;

/// The device tree blob must be 8-byte aligned (booting.rst § 2
/// "Setup the device tree").
pub(crate) const DTB_ALIGN: u64 = 8;

/// The device tree blob must not exceed 2 MiB (booting.rst § 2).
pub(crate) const DTB_MAX_SIZE: u64 = SZ_2M;

/// The initrd must lie, together with the kernel Image, inside one window
/// aligned to this (booting.rst § 2, "initrd").
pub(crate) const INITRD_WINDOW_ALIGN: u64 = SZ_1G;

/// ... and that window is at most this large (booting.rst § 2, "initrd").
pub(crate) const INITRD_WINDOW_MAX: u64 = SZ_32G;

/// The longest kernel command line arm64 accepts, including the terminating
/// NUL (`COMMAND_LINE_SIZE`, arch/arm64/include/uapi/asm/setup.h).
pub const COMMAND_LINE_SIZE: usize = 2048;

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on
/// overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// Whether `value` is a multiple of `align` (a power of two).
pub(crate) const fn is_aligned(value: u64, align: u64) -> bool {
    value & (align - 1) == 0
}

/// A size for people: whole GiB or MiB when exact, else MiB with one
/// decimal from 1 MiB up, else whole KiB when exact, else bytes; e.g.
/// `2 MiB`, `812 MiB`, `1.5 MiB`, `64 KiB`, `4097 B`.
pub fn human_size(bytes: u64) -> String {
    for (unit, name) in [(SZ_1G, "GiB"), (SZ_1M, "MiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    if bytes >= SZ_1M {
        // Display only: precision loss is harmless.
        #[allow(clippy::cast_precision_loss)]
        let mib = bytes as f64 / SZ_1M as f64;
        return format!("{mib:.1} MiB");
    }
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        return format!("{} KiB", bytes / 1024);
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(1, SZ_2M), Some(SZ_2M));
        assert_eq!(align_up(SZ_2M, SZ_2M), Some(SZ_2M));
        assert_eq!(align_up(u64::MAX, SZ_4K), None);
        assert_eq!(align_down(SZ_2M + 1, SZ_2M), SZ_2M);
        assert!(is_aligned(SZ_1G, SZ_2M));
        assert!(!is_aligned(SZ_1G + 8, SZ_2M));
    }

    #[test]
    fn segment_max_matches_the_syscall_layer() {
        assert_eq!(KEXEC_SEGMENT_MAX, kexec_sys::KEXEC_SEGMENT_MAX);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(SZ_2M), "2 MiB");
        assert_eq!(human_size(812 * SZ_1M), "812 MiB");
        assert_eq!(human_size(SZ_1M + SZ_1M / 2 + 1), "1.5 MiB");
        assert_eq!(human_size(100), "100 B");
        assert_eq!(human_size(SZ_64K), "64 KiB");
        assert_eq!(human_size(32 * SZ_1M + SZ_64K), "32.1 MiB");
        assert_eq!(human_size(4 * SZ_1G), "4 GiB");
    }
}

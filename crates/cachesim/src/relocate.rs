//! The old kernel's side of `kexec -e`: walk the kimage entry list, copy
//! each source page to its destination, clean+invalidate, and branch to the
//! purgatory. Modelled on arch/arm64/kernel/relocate_kernel.S.
//!
//! Entry-list flags (include/linux/kexec.h): an entry is a page address with
//! flags in its low bits.

use crate::memory::PAGE_SIZE;
use handoff::maint::dcache_line_size;
use handoff::{Machine, SCTLR_C, SCTLR_I, SCTLR_M};

/// The entry names the destination of the following source pages.
pub const IND_DESTINATION: u64 = 0x1;
/// The entry points at the next page of entries.
pub const IND_INDIRECTION: u64 = 0x2;
/// The list ends.
pub const IND_DONE: u64 = 0x4;
/// The entry is a source page, copied to the current destination.
pub const IND_SOURCE: u64 = 0x8;

/// Which kernel behaviour to model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocStyle {
    /// Linux >= 5.16 (commit efc2d0f20a9d): copy with the MMU and caches on,
    /// `DC CIVAC` each destination page, then `DSB; IC IALLU; DSB; ISB`,
    /// caches and MMU off, branch.
    MmuOn,
    /// Linux < 5.16: caches off first; `DC IVAC` each destination page,
    /// `DSB`, copy with the MMU off; `DSB; IC IALLU; DSB; ISB`, branch.
    MmuOffInvalidate,
    /// A buggy variant of [`RelocStyle::MmuOffInvalidate`] that copies with
    /// the caches off without invalidating the destination first.
    MmuOffNoInvalidate,
}

/// Run the relocation: `head` is kimage->head, `entry` the purgatory (or
/// kernel) entry point, `x0` what the next image gets in x0: 0 for a
/// purgatory (`kexec_load`), the DTB for `kexec_file_load`, which on arm64
/// enters the kernel directly. Ends with the branch (`enter_kernel(entry,
/// x0)`), x1..x3 = 0.
pub fn relocate_new_kernel<M: Machine + ?Sized>(
    cpu: &mut M,
    head: u64,
    entry: u64,
    x0: u64,
    style: RelocStyle,
) -> M::Exit {
    let ctr = cpu.ctr_el0();
    let dline = dcache_line_size(ctr);
    let off = cpu.sctlr() & !(SCTLR_M | SCTLR_C | SCTLR_I);
    if style != RelocStyle::MmuOn {
        // cpu_soft_restart turned the MMU and caches off before relocating
        // (pre_disable_mmu_workaround: an ISB right before the MSR on
        // kernels built for Falkor, erratum E1041).
        cpu.isb();
        cpu.set_sctlr(off);
        cpu.isb();
    }
    let mut e = head;
    let mut ptr = 0u64;
    let mut dest = 0u64;
    loop {
        let addr = e & !(PAGE_SIZE - 1);
        if e & IND_SOURCE != 0 {
            if style == RelocStyle::MmuOffInvalidate {
                let mut a = dest;
                while a < dest + PAGE_SIZE {
                    cpu.dc_ivac(a);
                    a += dline;
                }
                cpu.dsb_sy();
            }
            // copy_page
            let mut o = 0;
            while o < PAGE_SIZE {
                let w = cpu.read_u64(addr + o);
                cpu.write_u64(dest + o, w);
                o += 8;
            }
            if style == RelocStyle::MmuOn {
                let mut a = dest;
                while a < dest + PAGE_SIZE {
                    cpu.dc_civac(a);
                    a += dline;
                }
            }
            dest += PAGE_SIZE;
        } else if e & IND_INDIRECTION != 0 {
            ptr = addr;
        } else if e & IND_DESTINATION != 0 {
            dest = addr;
        }
        e = cpu.read_u64(ptr);
        ptr += 8;
        if e & IND_DONE != 0 {
            break;
        }
    }
    // "wait for writes from copy_page to finish"
    cpu.dsb_ish();
    cpu.ic_iallu();
    cpu.dsb_ish();
    cpu.isb();
    if style == RelocStyle::MmuOn {
        cpu.set_sctlr(off);
        cpu.isb();
    }
    // kexec_load: the purgatory is entered with x0 = 0 (it sets x0 itself);
    // kexec_file_load: the kernel, with x0 = the DTB.
    cpu.enter_kernel(entry, x0)
}

/// How many list pages [`build_entry_list`] fills for `segments`: one entry
/// per destination and per source page, plus `IND_DONE`, 511 per page (the
/// last word of a full page chains to the next).
pub fn list_pages_needed(segments: &[(u64, Vec<u64>)]) -> usize {
    let entries: usize = segments.iter().map(|(_, s)| s.len() + 1).sum::<usize>() + 1;
    let per_page = usize::try_from(PAGE_SIZE / 8).unwrap_or(512) - 1;
    entries.div_ceil(per_page).max(1)
}

/// Build an entry list for `(dest, source pages)` pairs: returns the list
/// pages' contents, to be placed at `list_pages[i]`, and kimage->head.
/// `list_pages` needs [`list_pages_needed`] entries.
pub fn build_entry_list(segments: &[(u64, Vec<u64>)], list_pages: &[u64]) -> (Vec<Vec<u64>>, u64) {
    let per_page = usize::try_from(PAGE_SIZE / 8).unwrap_or(512);
    let mut words: Vec<u64> = Vec::new();
    for (dest, srcs) in segments {
        words.push(dest | IND_DESTINATION);
        words.extend(srcs.iter().map(|s| s | IND_SOURCE));
    }
    words.push(IND_DONE);
    let mut pages: Vec<Vec<u64>> = Vec::new();
    let mut it = words.into_iter().peekable();
    let mut i = 0;
    while it.peek().is_some() {
        let mut page = Vec::new();
        while page.len() < per_page - 1 {
            match it.next() {
                Some(w) => page.push(w),
                None => break,
            }
        }
        if it.peek().is_some() {
            let next = list_pages.get(i + 1).copied().unwrap_or(0);
            page.push(next | IND_INDIRECTION);
        }
        pages.push(page);
        i += 1;
    }
    let head = list_pages.first().copied().unwrap_or(0) | IND_INDIRECTION;
    (pages, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_list_chains_indirection_pages() {
        let srcs: Vec<u64> = (0..600).map(|i| 0x9000_0000 + i * PAGE_SIZE).collect();
        let (pages, head) = build_entry_list(&[(0x4000_0000, srcs)], &[0x1000, 0x2000]);
        assert_eq!(head, 0x1000 | IND_INDIRECTION);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0][0], 0x4000_0000 | IND_DESTINATION);
        assert_eq!(pages[0][1], 0x9000_0000 | IND_SOURCE);
        assert_eq!(pages[0].len(), 512);
        assert_eq!(pages[0][511], 0x2000 | IND_INDIRECTION);
        assert_eq!(pages[1].last(), Some(&IND_DONE));
        // 1 destination + 600 sources + DONE, 511 of them on page 0.
        assert_eq!(pages[1].len(), 602 - 511);
    }

    #[test]
    fn list_pages_needed_covers_big_plans() {
        // A 33 MB kernel is ~8000 source pages: 16 list pages, every
        // indirection pointing at one of them (none at page 0).
        for n in [1u64, 509, 510, 511, 600, 8046] {
            let srcs: Vec<u64> = (0..n).map(|i| 0x9000_0000 + i * PAGE_SIZE).collect();
            let segs = [(0x4000_0000, srcs)];
            let need = list_pages_needed(&segs);
            let pages: Vec<u64> = (1..=need as u64).map(|i| i * PAGE_SIZE).collect();
            let (list, _) = build_entry_list(&segs, &pages);
            assert_eq!(list.len(), need, "{n} sources");
            for w in list.iter().flatten().filter(|w| *w & IND_INDIRECTION != 0) {
                assert!(pages.contains(&(w & !(PAGE_SIZE - 1))), "{n}: {w:#x}");
            }
        }
    }
}

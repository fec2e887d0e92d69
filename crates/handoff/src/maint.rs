//! Cache maintenance by VA over address ranges, with the line size read from
//! `CTR_EL0`.
//!
//! Every helper covers every byte of `[start, start + len)`: the first line
//! is the one containing `start` (rounded down to the line size) and the last
//! one contains `start + len - 1`. None of them issues a barrier: callers
//! finish a batch with a DSB (see [`crate::handoff`]).

use crate::Machine;

/// `CTR_EL0.DminLine` (bits 19:16): log2 of the number of 4-byte words in
/// the smallest data or unified cache line of the hierarchy.
pub const CTR_DMINLINE_SHIFT: u32 = 16;
/// `CTR_EL0.IminLine` (bits 3:0): the same for the instruction caches.
pub const CTR_IMINLINE_SHIFT: u32 = 0;
/// `CTR_EL0.IDC` (bit 28): D-cache clean to the PoU not needed for I/D coherence.
pub const CTR_IDC: u64 = 1 << 28;
/// `CTR_EL0.DIC` (bit 29): I-cache invalidation to the PoU not needed.
pub const CTR_DIC: u64 = 1 << 29;

/// Smallest D-cache line in bytes according to `ctr` (a `CTR_EL0` value).
pub const fn dcache_line_size(ctr: u64) -> u64 {
    4 << ((ctr >> CTR_DMINLINE_SHIFT) & 0xf)
}

/// Smallest I-cache line in bytes according to `ctr`.
pub const fn icache_line_size(ctr: u64) -> u64 {
    4 << ((ctr >> CTR_IMINLINE_SHIFT) & 0xf)
}

/// Calls `op` with the address of every line of size `line` (a power of two)
/// that holds a byte of `[start, start + len)`. Ranges running past the top
/// of the address space stop at the last line.
pub fn for_each_line(start: u64, len: u64, line: u64, mut op: impl FnMut(u64)) {
    if len == 0 {
        return;
    }
    let last = start.saturating_add(len - 1) & !(line - 1);
    let mut va = start & !(line - 1);
    loop {
        op(va);
        if va >= last {
            break;
        }
        va += line;
    }
}

/// Which by-VA data-cache operation to apply over a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcOp {
    /// `DC CVAC`: clean to the PoC.
    CleanToPoc,
    /// `DC CIVAC`: clean and invalidate to the PoC.
    CleanInvalidateToPoc,
    /// `DC IVAC`: invalidate to the PoC (discards dirty data: only for
    /// line-aligned ranges the caller owns entirely).
    InvalidateToPoc,
    /// `DC CVAU`: clean to the PoU.
    CleanToPou,
}

/// Applies `op` by VA to every line of `[start, start + len)`.
pub fn dc_range<M: Machine + ?Sized>(m: &mut M, op: DcOp, start: u64, len: u64) {
    let line = dcache_line_size(m.ctr_el0());
    for_each_line(start, len, line, |va| match op {
        DcOp::CleanToPoc => m.dc_cvac(va),
        DcOp::CleanInvalidateToPoc => m.dc_civac(va),
        DcOp::InvalidateToPoc => m.dc_ivac(va),
        DcOp::CleanToPou => m.dc_cvau(va),
    });
}

/// `DC CVAC` over the range: memory at the PoC holds what the caches held.
pub fn clean_range_to_poc<M: Machine + ?Sized>(m: &mut M, start: u64, len: u64) {
    dc_range(m, DcOp::CleanToPoc, start, len);
}

/// `DC CIVAC` over the range: as [`clean_range_to_poc`], and no line of the
/// range is left in any cache.
pub fn clean_invalidate_range_to_poc<M: Machine + ?Sized>(m: &mut M, start: u64, len: u64) {
    dc_range(m, DcOp::CleanInvalidateToPoc, start, len);
}

/// `DC IVAC` over the range. The edges are rounded out to whole lines, so
/// the range must be line aligned or the bytes around it must not matter.
pub fn invalidate_range_to_poc<M: Machine + ?Sized>(m: &mut M, start: u64, len: u64) {
    dc_range(m, DcOp::InvalidateToPoc, start, len);
}

/// `IC IVAU` over the range, with the I-cache line size from `CTR_EL0`.
pub fn invalidate_icache_range<M: Machine + ?Sized>(m: &mut M, start: u64, len: u64) {
    let line = icache_line_size(m.ctr_el0());
    for_each_line(start, len, line, |va| m.ic_ivau(va));
}

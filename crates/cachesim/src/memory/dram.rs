//! DRAM, the point of coherency: sparse pages allocated on first write;
//! never-written bytes are address-derived garbage.

use super::{align_down, MemorySystem, PAGE_SIZE};

impl MemorySystem {
    /// Deterministic garbage for never-written DRAM.
    fn garbage(addr: u64) -> u8 {
        let z = addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
        (z >> 56).to_le_bytes()[0]
    }

    /// Read DRAM directly (the PoC), without stepping the adversary.
    pub fn dram_read(&self, addr: u64, out: &mut [u8]) {
        for (a, b) in (addr..).zip(out.iter_mut()) {
            let page = align_down(a, PAGE_SIZE);
            *b = match self.dram.get(&page) {
                Some(p) => p[usize::try_from(a - page).unwrap_or(0)],
                None => Self::garbage(a),
            };
        }
    }

    /// Write DRAM directly (test setup: "the old kernel put this here").
    pub fn dram_write(&mut self, addr: u64, data: &[u8]) {
        for (a, &b) in (addr..).zip(data.iter()) {
            let page = align_down(a, PAGE_SIZE);
            let p = self
                .dram
                .entry(page)
                .or_insert_with(|| (0..PAGE_SIZE).map(|i| Self::garbage(page + i)).collect());
            p[usize::try_from(a - page).unwrap_or(0)] = b;
        }
    }
}

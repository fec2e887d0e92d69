//! Identity-map page tables for the purgatory: VMSAv8-64 stage 1, 4 KiB
//! granule, 48-bit input addresses (T0SZ = 16, walk starts at level 0),
//! 2 MiB blocks where a whole aligned block is covered and 4 KiB pages
//! elsewhere (Arm ARM D8, "The AArch64 Virtual Memory System Architecture").
//!
//! Tables are written through [`Machine::write_u64`] into a pool of pages the
//! caller owns (inside the purgatory's segment), with the MMU still off.

use crate::Machine;

/// Translation granule and table size.
pub const PAGE_SIZE: u64 = 0x1000;
/// Level 2 block size with a 4 KiB granule.
pub const BLOCK_SIZE: u64 = 0x20_0000;
/// Entries per table.
const ENTRIES: u64 = 512;
/// Output-address bits 47:12 of a descriptor.
pub const DESC_ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

const DESC_VALID: u64 = 1 << 0;
/// Bit 1 set: table (levels 0-2) or page (level 3); clear: block.
const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
const DESC_ATTRINDX_SHIFT: u32 = 2;
/// AP\[1\]: RES1 in single-privilege regimes (EL2 without E2H), EL0 access in the others.
const DESC_AP1: u64 = 1 << 6;
const DESC_SH_INNER: u64 = 3 << 8;
/// Access flag: set, so no access-flag faults.
const DESC_AF: u64 = 1 << 10;
/// PXN in two-privilege regimes, RES0 at EL2 without E2H.
const DESC_PXN: u64 = 1 << 53;
/// UXN in two-privilege regimes, XN at EL2 without E2H.
const DESC_XN: u64 = 1 << 54;

/// Memory types, as indices into [`MAIR_VALUE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemAttr {
    /// Normal, inner/outer write-back, read/write-allocate (MAIR 0xff).
    NormalWb = 0,
    /// Device-nGnRE (MAIR 0x04): the UART.
    DeviceNgnre = 1,
    /// Normal, inner/outer non-cacheable (MAIR 0x44): the purgatory's stack,
    /// so nothing it writes with the MMU on can linger dirty in a cache.
    NormalNc = 2,
}

impl MemAttr {
    /// From an AttrIndx field.
    pub const fn from_index(i: u64) -> Option<Self> {
        match i {
            0 => Some(Self::NormalWb),
            1 => Some(Self::DeviceNgnre),
            2 => Some(Self::NormalNc),
            _ => None,
        }
    }
}

/// `MAIR_ELx`: Attr0 = 0xff, Attr1 = 0x04, Attr2 = 0x44.
pub const MAIR_VALUE: u64 = 0x44_04_ff;

/// The translation regime the purgatory runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// EL1&0 (`SCTLR_EL1`, `TCR_EL1`, `TTBR0_EL1`, `TLBI VMALLE1`).
    El1,
    /// EL2 with `HCR_EL2.E2H == 0`: single privilege level, `TCR_EL2` in its
    /// own format, AP\[1\] RES1, bit 54 is XN.
    El2,
    /// EL2 with `HCR_EL2.E2H == 1` (VHE host): the EL2&0 regime, whose
    /// `TCR_EL2` has the `TCR_EL1` layout.
    El2Host,
}

/// What `set_translation` programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmuConfig {
    /// Regime the values are meant for.
    pub regime: Regime,
    /// `MAIR_ELx`.
    pub mair: u64,
    /// `TCR_ELx`.
    pub tcr: u64,
    /// `TTBR0_ELx`: physical address of the level 0 table.
    pub ttbr0: u64,
}

/// `ID_AA64MMFR0_EL1.TGran4` (bits 31:28): 0 or 1 = 4 KiB granule supported.
pub const fn granule_4k_supported(mmfr0: u64) -> bool {
    matches!((mmfr0 >> 28) & 0xf, 0 | 1)
}

/// `TCR_ELx` for a 48-bit identity map of write-back tables. `mmfr0` gives
/// `PARange` (bits 3:0), used as IPS/PS capped at 48 bits.
pub const fn tcr_value(regime: Regime, mmfr0: u64) -> u64 {
    let parange = mmfr0 & 0xf;
    let ps = if parange > 5 { 5 } else { parange };
    let t0sz = 16;
    let irgn0_wbwa = 1 << 8;
    let orgn0_wbwa = 1 << 10;
    let sh0_inner = 3 << 12;
    let tg0_4k = 0 << 14;
    let common = t0sz | irgn0_wbwa | orgn0_wbwa | sh0_inner | tg0_4k;
    match regime {
        // TCR_EL2 (E2H = 0): PS at 18:16, bits 23 and 31 RES1.
        Regime::El2 => common | (ps << 16) | (1 << 23) | (1 << 31),
        // TCR_EL1 layout: T1SZ = 16, EPD1 = 1 (no TTBR1 walks), TG1 = 4 KiB (0b10), IPS at 34:32.
        Regime::El1 | Regime::El2Host => common | (16 << 16) | (1 << 23) | (2 << 30) | (ps << 32),
    }
}

/// Leaf descriptor attribute bits (everything but the address and type bits).
pub const fn leaf_attrs(regime: Regime, attr: MemAttr, exec: bool) -> u64 {
    let mut d = ((attr as u64) << DESC_ATTRINDX_SHIFT) | DESC_AF;
    if !matches!(attr, MemAttr::DeviceNgnre) {
        d |= DESC_SH_INNER;
    }
    // AP[2:1] = 0b00 (privileged read/write, no EL0 access) except where
    // AP[1] is RES1.
    if matches!(regime, Regime::El2) {
        d |= DESC_AP1;
    }
    if !exec {
        d |= match regime {
            Regime::El2 => DESC_XN,
            Regime::El1 | Regime::El2Host => DESC_XN | DESC_PXN,
        };
    } else if !matches!(regime, Regime::El2) {
        // Never executable from EL0.
        d |= DESC_XN;
    }
    d
}

/// Why the tables could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The table pool is out of pages.
    PoolExhausted,
    /// The pool is not page aligned.
    PoolMisaligned,
    /// An address above 48 bits.
    AddressTooHigh(u64),
}

/// Builds identity-map tables in `[pool, pool + pool_len)`.
#[derive(Debug)]
pub struct TableBuilder {
    regime: Regime,
    pool_next: u64,
    pool_end: u64,
    root: u64,
    pages_used: u64,
}

const fn index(va: u64, level: u32) -> u64 {
    (va >> (39 - 9 * level)) & (ENTRIES - 1)
}

impl TableBuilder {
    /// Starts a set of tables: allocates and zeroes the level 0 table.
    pub fn new<M: Machine + ?Sized>(
        m: &mut M,
        regime: Regime,
        pool: u64,
        pool_len: u64,
    ) -> Result<Self, MapError> {
        if pool & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::PoolMisaligned);
        }
        let mut b = Self {
            regime,
            pool_next: pool,
            pool_end: pool.saturating_add(pool_len),
            root: 0,
            pages_used: 0,
        };
        b.root = b.alloc(m)?;
        Ok(b)
    }

    /// Physical address of the level 0 table.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Pool pages used so far.
    pub fn pages_used(&self) -> u64 {
        self.pages_used
    }

    fn alloc<M: Machine + ?Sized>(&mut self, m: &mut M) -> Result<u64, MapError> {
        if self.pool_end.saturating_sub(self.pool_next) < PAGE_SIZE {
            return Err(MapError::PoolExhausted);
        }
        let t = self.pool_next;
        self.pool_next += PAGE_SIZE;
        self.pages_used += 1;
        for i in 0..ENTRIES {
            m.write_u64(t + 8 * i, 0);
        }
        Ok(t)
    }

    /// The next-level table under `table[idx]`, creating it (or splitting a
    /// level 2 block into 512 pages with the block's attributes) if needed.
    fn next_table<M: Machine + ?Sized>(
        &mut self,
        m: &mut M,
        table: u64,
        idx: u64,
        level: u32,
    ) -> Result<u64, MapError> {
        let slot = table + 8 * idx;
        let desc = m.read_u64(slot);
        if desc & DESC_VALID != 0 && desc & DESC_TABLE_OR_PAGE != 0 {
            return Ok(desc & DESC_ADDR_MASK);
        }
        let new = self.alloc(m)?;
        if desc & DESC_VALID != 0 && level == 2 {
            // A 2 MiB block being split into pages.
            let base = desc & DESC_ADDR_MASK;
            let attrs = desc & !DESC_ADDR_MASK & !(DESC_VALID | DESC_TABLE_OR_PAGE);
            for i in 0..ENTRIES {
                m.write_u64(
                    new + 8 * i,
                    (base + i * PAGE_SIZE) | attrs | DESC_VALID | DESC_TABLE_OR_PAGE,
                );
            }
        }
        m.write_u64(slot, new | DESC_VALID | DESC_TABLE_OR_PAGE);
        Ok(new)
    }

    /// Identity-maps every page touching `[start, start + len)` with `attr`.
    /// Later calls override earlier ones where they overlap.
    pub fn map<M: Machine + ?Sized>(
        &mut self,
        m: &mut M,
        start: u64,
        len: u64,
        attr: MemAttr,
        exec: bool,
    ) -> Result<(), MapError> {
        if len == 0 {
            return Ok(());
        }
        let end = start
            .checked_add(len)
            .and_then(|e| e.checked_add(PAGE_SIZE - 1))
            .map(|e| e & !(PAGE_SIZE - 1))
            .ok_or(MapError::AddressTooHigh(start))?;
        if end > 1 << 48 {
            return Err(MapError::AddressTooHigh(end - 1));
        }
        let leaf = leaf_attrs(self.regime, attr, exec);
        let mut va = start & !(PAGE_SIZE - 1);
        while va < end {
            let l1 = self.next_table(m, self.root, index(va, 0), 0)?;
            let l2 = self.next_table(m, l1, index(va, 1), 1)?;
            let slot = l2 + 8 * index(va, 2);
            let desc = m.read_u64(slot);
            let is_table = desc & DESC_VALID != 0 && desc & DESC_TABLE_OR_PAGE != 0;
            if va & (BLOCK_SIZE - 1) == 0 && end - va >= BLOCK_SIZE && !is_table {
                m.write_u64(slot, va | leaf | DESC_VALID);
                va += BLOCK_SIZE;
                continue;
            }
            let l3 = self.next_table(m, l2, index(va, 2), 2)?;
            m.write_u64(
                l3 + 8 * index(va, 3),
                va | leaf | DESC_VALID | DESC_TABLE_OR_PAGE,
            );
            va += PAGE_SIZE;
        }
        Ok(())
    }

    /// The configuration to program, for `mmfr0` = `ID_AA64MMFR0_EL1`.
    pub fn config(&self, mmfr0: u64) -> MmuConfig {
        MmuConfig {
            regime: self.regime,
            mair: MAIR_VALUE,
            tcr: tcr_value(self.regime, mmfr0),
            ttbr0: self.root,
        }
    }
}

/// A translation found by [`translate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Output (physical) address of the VA.
    pub pa: u64,
    /// Memory type.
    pub attr: MemAttr,
    /// Executable at the regime's privileged level.
    pub exec: bool,
}

/// Walks tables built by [`TableBuilder`] (4 KiB granule, 48-bit VA, start
/// at level 0) with `read` returning the u64 at a physical address. For
/// models and tests; `None` for a translation fault.
pub fn translate(cfg: &MmuConfig, va: u64, mut read: impl FnMut(u64) -> u64) -> Option<Leaf> {
    if va >> 48 != 0 {
        return None;
    }
    let mut table = cfg.ttbr0 & DESC_ADDR_MASK;
    for level in 0..4u32 {
        let desc = read(table + 8 * index(va, level));
        if desc & DESC_VALID == 0 {
            return None;
        }
        let is_leaf = level == 3 || (desc & DESC_TABLE_OR_PAGE == 0);
        if level == 3 && desc & DESC_TABLE_OR_PAGE == 0 {
            return None;
        }
        if !is_leaf {
            table = desc & DESC_ADDR_MASK;
            continue;
        }
        if level == 0 {
            // No level 0 blocks with a 4 KiB granule.
            return None;
        }
        let size_mask = (1u64 << (39 - 9 * level)) - 1;
        let attr_idx = (desc >> DESC_ATTRINDX_SHIFT) & 7;
        let mair_attr = (cfg.mair >> (8 * attr_idx)) & 0xff;
        let attr = match mair_attr {
            0xff => MemAttr::NormalWb,
            0x04 => MemAttr::DeviceNgnre,
            0x44 => MemAttr::NormalNc,
            _ => return None,
        };
        let exec = match cfg.regime {
            Regime::El2 => desc & DESC_XN == 0,
            Regime::El1 | Regime::El2Host => desc & DESC_PXN == 0,
        };
        return Some(Leaf {
            pa: (desc & DESC_ADDR_MASK & !size_mask) | (va & size_mask),
            attr,
            exec,
        });
    }
    None
}

//! The VMCOREINFO note's text: `KEY=VALUE` lines written by
//! kernel/crash_core.c (`crash_save_vmcoreinfo_init`), the printk code
//! (kernel/printk/printk.c, `log_buf_vmcoreinfo_setup`) and arm64
//! (arch/arm64/kernel/crash_core.c, `arch_crash_save_vmcoreinfo`), with the
//! formats of include/linux/crash_core.h: `SYMBOL(x)=%lx` (hex, no `0x`),
//! `SIZE(x)=%lu` and `OFFSET(x.y)=%lu` (decimal), `NUMBER(x)=%ld` (decimal;
//! arm64 writes its addresses as `0x%lx`), `KERNELOFFSET=%lx`,
//! `PAGESIZE=%ld`, `CRASHTIME=%lld` (seconds since the epoch, added at the
//! crash by `crash_save_vmcoreinfo`).

use crate::elfcore::LinearMap;

use super::{Error, Load};

/// The `KEY=VALUE` entries of a VMCOREINFO note, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmcoreInfo {
    /// The note's text.
    pub text: String,
    entries: Vec<(String, String)>,
}

impl VmcoreInfo {
    /// Parses the note's text; lines without `=` are ignored.
    pub fn new(text: &str) -> Self {
        let entries = text
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.to_owned(), v.trim().to_owned()))
            })
            .collect();
        Self {
            text: text.to_owned(),
            entries,
        }
    }

    /// The value of `key`, if present (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::MissingKey(key.to_owned()))
    }

    fn bad(key: &str, value: &str) -> Error {
        Error::BadNumber {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    /// A hex value without `0x` (`SYMBOL(…)`, `KERNELOFFSET`).
    pub fn hex(&self, key: &str) -> Result<u64, Error> {
        let v = self.need(key)?;
        u64::from_str_radix(v, 16).map_err(|_| Self::bad(key, v))
    }

    /// A decimal value (`SIZE(…)`, `OFFSET(…)`, `PAGESIZE`, `CRASHTIME`).
    pub fn decimal(&self, key: &str) -> Result<u64, Error> {
        let v = self.need(key)?;
        v.parse().map_err(|_| Self::bad(key, v))
    }

    /// A `NUMBER(…)`: decimal, possibly negative (`%ld`, kept as its 64-bit
    /// pattern), or `0x` hex.
    pub fn number(&self, key: &str) -> Result<u64, Error> {
        let v = self.need(key)?;
        let parsed = match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => match v.strip_prefix('-') {
                Some(d) => d.parse::<u64>().ok().map(u64::wrapping_neg),
                None => v.parse().ok(),
            },
        };
        parsed.ok_or_else(|| Self::bad(key, v))
    }

    /// `SYMBOL(name)`: a kernel virtual address.
    pub fn symbol(&self, name: &str) -> Result<u64, Error> {
        self.hex(&format!("SYMBOL({name})"))
    }

    /// `SIZE(name)`.
    pub fn size(&self, name: &str) -> Result<u64, Error> {
        self.decimal(&format!("SIZE({name})"))
    }

    /// `OFFSET(name)`, e.g. `printk_info.ts_nsec`.
    pub fn offset(&self, name: &str) -> Result<u64, Error> {
        self.decimal(&format!("OFFSET({name})"))
    }

    /// `OSRELEASE`.
    pub fn release(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `PAGESIZE`.
    pub fn page_size(&self) -> Option<u64> {
        self.decimal("PAGESIZE").ok()
    }

    /// `CRASHTIME`: seconds since the epoch when the kernel crashed.
    pub fn crash_time(&self) -> Option<i64> {
        self.get("CRASHTIME")?.parse().ok()
    }

    /// The address translation VMCOREINFO allows (see [`AddressMap`]).
    pub fn address_map(&self) -> AddressMap {
        let va_bits = self
            .decimal("NUMBER(VA_BITS)")
            .ok()
            .filter(|b| (36..=52).contains(b));
        let linear = va_bits.and_then(|_| LinearMap::from_vmcoreinfo(&self.text));
        // VA_BITS_MIN is 48 when VA_BITS is 52, else VA_BITS, and the linear
        // map ends at _PAGE_END(VA_BITS_MIN) = -(1 << (VA_BITS_MIN - 1))
        // (arch/arm64/include/asm/memory.h); the kernel image and modules
        // live above it (KIMAGE_VADDR = MODULES_END).
        let linear_end = va_bits.map_or(0, |b| u64::MAX << (b.min(48) - 1));
        AddressMap {
            linear,
            linear_end,
            kimage_voffset: self.number("NUMBER(kimage_voffset)").ok(),
        }
    }
}

/// How kernel virtual addresses become physical ones on arm64
/// (arch/arm64/include/asm/memory.h, `__virt_to_phys_nodebug`): a linear-map
/// address (`PAGE_OFFSET` up to `PAGE_END`) is `(addr - PAGE_OFFSET) +
/// PHYS_OFFSET` (`__lm_to_phys`); any other kernel address is in the kernel
/// image, `addr - kimage_voffset` (`__kimg_to_phys`). Without VMCOREINFO's
/// numbers the `PT_LOAD`s' `p_vaddr` serve, when their writer knew them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressMap {
    /// From `NUMBER(VA_BITS)` and `NUMBER(PHYS_OFFSET)`.
    pub linear: Option<LinearMap>,
    /// The end of the linear map (`_PAGE_END(VA_BITS_MIN)`); 0 if unknown.
    pub linear_end: u64,
    /// `NUMBER(kimage_voffset)`: kernel image virtual minus physical.
    pub kimage_voffset: Option<u64>,
}

impl AddressMap {
    /// The physical address of `vaddr`, if a rule translates it.
    pub fn to_phys(&self, vaddr: u64, loads: &[Load]) -> Option<u64> {
        if let Some(lm) = self.linear {
            if vaddr >= lm.page_offset && vaddr < self.linear_end {
                return Some((vaddr - lm.page_offset).wrapping_add(lm.phys_offset));
            }
        }
        if let Some(voffset) = self.kimage_voffset {
            if self.linear_end != 0 && vaddr >= self.linear_end {
                return Some(vaddr.wrapping_sub(voffset));
            }
        }
        loads.iter().find_map(|l| {
            let delta = vaddr.checked_sub(l.vaddr)?;
            (l.vaddr != 0 && delta < l.memsz).then(|| l.paddr.wrapping_add(delta))
        })
    }
}

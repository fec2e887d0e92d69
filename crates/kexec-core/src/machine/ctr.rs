//! `CTR_EL0`, the Cache Type Register (Arm ARM D19.2, "CTR_EL0, Cache Type
//! Register"), decoded: the cache line sizes cache maintenance by VA steps
//! by (the purgatory reads it the same way: `handoff::maint`), the L1
//! instruction cache's indexing, and whether I/D coherence needs the
//! D-cache clean (`IDC`) or the I-cache invalidation (`DIC`).

use handoff::maint::{CTR_DIC, CTR_DMINLINE_SHIFT, CTR_IDC, CTR_IMINLINE_SHIFT};

use super::Error;

/// `CTR_EL0.L1Ip`, bits 15:14.
pub const CTR_L1IP_SHIFT: u32 = 14;
/// `CTR_EL0.ERG`, bits 23:20: log2 words of the exclusives reservation granule.
pub const CTR_ERG_SHIFT: u32 = 20;
/// `CTR_EL0.CWG`, bits 27:24: log2 words of the cache writeback granule (0: not given).
pub const CTR_CWG_SHIFT: u32 = 24;
/// Bit 31 is RES1 in the AArch64 format (an AArch32 ARMv6 CTR has 0 there).
pub const CTR_RES1: u64 = 1 << 31;

/// `CTR_EL0.L1Ip`: how the level 1 instruction cache is indexed and tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L1Ip {
    /// 0b00: VMID-aware PIPT (Armv8.0 to 8.? only).
    Vpipt,
    /// 0b01: ASID-tagged VIVT (Armv8.0 only).
    Aivivt,
    /// 0b10: VIPT.
    Vipt,
    /// 0b11: PIPT.
    Pipt,
}

impl L1Ip {
    /// The name the Arm ARM gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vpipt => "VPIPT",
            Self::Aivivt => "AIVIVT",
            Self::Vipt => "VIPT",
            Self::Pipt => "PIPT",
        }
    }
}

/// A decoded `CTR_EL0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheType {
    /// The raw value.
    pub raw: u64,
    /// Smallest data or unified cache line in bytes (`DminLine`).
    pub dminline: u64,
    /// Smallest instruction cache line in bytes (`IminLine`).
    pub iminline: u64,
    /// L1 instruction cache policy.
    pub l1ip: L1Ip,
    /// `IDC`: no D-cache clean to the PoU needed for I/D coherence.
    pub idc: bool,
    /// `DIC`: no I-cache invalidation to the PoU needed for I/D coherence.
    pub dic: bool,
    /// Cache writeback granule in bytes; `None` when not given (0).
    pub cwg: Option<u64>,
    /// Exclusives reservation granule in bytes; `None` when not given (0).
    pub erg: Option<u64>,
}

/// A 4-bit "log2 of words" field in bytes.
fn words(value: u64, shift: u32) -> u64 {
    4 << ((value >> shift) & 0xf)
}

/// A 4-bit "log2 of words" field where 0 means "not given".
fn optional_words(value: u64, shift: u32) -> Option<u64> {
    ((value >> shift) & 0xf != 0).then(|| words(value, shift))
}

/// Decode `value`, or refuse one without the RES1 bit 31 (not an AArch64
/// `CTR_EL0`).
pub fn decode(value: u64) -> Result<CacheType, Error> {
    if value & CTR_RES1 == 0 {
        return Err(Error::BadValue {
            what: "CTR_EL0",
            detail: format!("{value:#x} has bit 31 (RES1) clear: not an AArch64 CTR_EL0"),
        });
    }
    Ok(CacheType {
        raw: value,
        dminline: words(value, CTR_DMINLINE_SHIFT),
        iminline: words(value, CTR_IMINLINE_SHIFT),
        l1ip: match (value >> CTR_L1IP_SHIFT) & 0b11 {
            0b00 => L1Ip::Vpipt,
            0b01 => L1Ip::Aivivt,
            0b10 => L1Ip::Vipt,
            _ => L1Ip::Pipt,
        },
        idc: value & CTR_IDC != 0,
        dic: value & CTR_DIC != 0,
        cwg: optional_words(value, CTR_CWG_SHIFT),
        erg: optional_words(value, CTR_ERG_SHIFT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cortex_a57_as_qemu_reports_it() {
        // QEMU's cortex-a57 (target/arm/cpu64.c): 0x8444c004.
        let c = decode(0x8444_c004).unwrap();
        assert_eq!((c.dminline, c.iminline), (64, 64));
        assert_eq!(c.l1ip, L1Ip::Pipt);
        // The Arm ARM's names (CTR_EL0.L1Ip), which `kexec doctor` prints.
        let names = [L1Ip::Vpipt, L1Ip::Aivivt, L1Ip::Vipt, L1Ip::Pipt].map(L1Ip::name);
        assert_eq!(names, ["VPIPT", "AIVIVT", "VIPT", "PIPT"]);
        assert!(!c.idc && !c.dic);
        assert_eq!((c.cwg, c.erg), (Some(64), Some(64)));
    }

    #[test]
    fn idc_dic_vipt_and_missing_granules() {
        // The a57 value with IDC (bit 28) and DIC (bit 29) set.
        let c = decode(0xb444_c004).unwrap();
        assert!(c.idc && c.dic);
        // A VIPT L1I with 32-byte D lines and no CWG/ERG given.
        let c = decode(0x8003_8001).unwrap();
        assert_eq!((c.dminline, c.iminline), (32, 8));
        assert_eq!(c.l1ip, L1Ip::Vipt);
        assert_eq!((c.cwg, c.erg), (None, None));
        assert_eq!(decode(0x8000_0000).unwrap().l1ip, L1Ip::Vpipt);
        assert_eq!(decode(0x8000_4000).unwrap().l1ip, L1Ip::Aivivt);
    }

    #[test]
    fn a_value_without_res1_is_refused() {
        let e = decode(0x0444_c004).unwrap_err();
        assert!(e.to_string().contains("bit 31 (RES1) clear"), "{e}");
    }
}

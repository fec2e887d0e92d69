//! Cache-hierarchy configurations, described the way software discovers them
//! (CTR_EL0) plus the facts software cannot discover (system cache, aliasing).

use std::fmt;

/// The L1 instruction-cache indexing policy, CTR_EL0.L1Ip (Arm ARM D19.2,
/// "CTR_EL0, Cache Type Register").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ICachePolicy {
    /// Physically indexed, physically tagged (`L1Ip == 0b11`): `IC IVAU` by any
    /// VA of a line invalidates every copy of it.
    Pipt,
    /// Virtually indexed, physically tagged (`L1Ip == 0b10`) with `colours`
    /// aliases: a line fetched through a VA of another colour survives
    /// `IC IVAU` of this VA; only `IC IALLU` removes it.
    Vipt {
        /// Number of page colours (way size / page size), a power of two.
        colours: u64,
    },
    /// ASID/VMID-tagged (`L1Ip == 0b01`, AIVIVT in ARMv8.0): lines carry the
    /// translation regime's tag; `IC IVAU` reaches only the current tag.
    AsidTagged,
}

/// A system-level cache beyond the PoU (outside the CPU's architected
/// hierarchy, before the PoC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemCache {
    /// Honours maintenance by VA to the PoC (the seed's "may stay enabled").
    HonoursVa,
    /// Ignores maintenance by VA: a misconfiguration no software sequence
    /// can fix; kept to show the model detects it.
    IgnoresVa,
}

/// One modelled CPU + memory system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Short name for `kexec sim --config NAME`.
    pub name: &'static str,
    /// One line describing what real part it resembles.
    pub summary: &'static str,
    /// Smallest D-cache line in bytes (CTR_EL0.DminLine = log2(words)).
    pub d_line: u64,
    /// Smallest I-cache line in bytes (CTR_EL0.IminLine).
    pub i_line: u64,
    /// CTR_EL0.IDC: D-cache clean to the PoU not required for
    /// instruction-to-data coherence.
    pub idc: bool,
    /// CTR_EL0.DIC: I-cache invalidation to the PoU not required for
    /// instruction-to-data coherence.
    pub dic: bool,
    /// L1 I-cache policy.
    pub icache: ICachePolicy,
    /// Optional system cache beyond the PoU.
    pub system_cache: Option<SystemCache>,
    /// Qualcomm Falkor erratum E1041 ("speculative instruction fetches might
    /// cause an incorrect translation when the MMU is disabled"): the MSR
    /// that clears SCTLR_ELx.M must be immediately preceded by an ISB
    /// (Linux: `pre_disable_mmu_workaround`, CONFIG_QCOM_FALKOR_ERRATUM_E1041,
    /// arch/arm64/include/asm/assembler.h). The model reports a missing ISB
    /// as a fault: it does not model the incorrect fetch itself.
    pub falkor_e1041: bool,
}

/// CTR_EL0 field positions (Arm ARM D19.2, CTR_EL0).
mod ctr {
    pub const IMINLINE_SHIFT: u32 = 0;
    pub const L1IP_SHIFT: u32 = 14;
    pub const DMINLINE_SHIFT: u32 = 16;
    pub const IDC_BIT: u32 = 28;
    pub const DIC_BIT: u32 = 29;
    /// Bit 31 is RES1.
    pub const RES1: u64 = 1 << 31;
    pub const L1IP_AIVIVT: u64 = 0b01;
    pub const L1IP_VIPT: u64 = 0b10;
    pub const L1IP_PIPT: u64 = 0b11;
}

/// The names accepted by [`CacheConfig::named`], sufficient-set first.
const NAMES: &[&str] = &[
    "a57-like",
    "a53-vipt",
    "asid-tagged",
    "tx2-slc",
    "n1-idc-dic",
    "idc-only-32",
    "dic-only-128",
    "split-lines",
    "slc-128",
    "falkor-e1041",
];

impl CacheConfig {
    /// log2(bytes / 4), the CTR_EL0 encoding of a line size.
    fn log2_words(bytes: u64) -> u64 {
        u64::from((bytes / 4).trailing_zeros())
    }

    /// The CTR_EL0 value software on this CPU would read.
    pub fn ctr_el0(&self) -> u64 {
        let l1ip = match self.icache {
            ICachePolicy::Pipt => ctr::L1IP_PIPT,
            ICachePolicy::Vipt { .. } => ctr::L1IP_VIPT,
            ICachePolicy::AsidTagged => ctr::L1IP_AIVIVT,
        };
        ctr::RES1
            | (Self::log2_words(self.i_line) << ctr::IMINLINE_SHIFT)
            | (l1ip << ctr::L1IP_SHIFT)
            | (Self::log2_words(self.d_line) << ctr::DMINLINE_SHIFT)
            | (u64::from(self.idc) << ctr::IDC_BIT)
            | (u64::from(self.dic) << ctr::DIC_BIT)
    }

    /// A named configuration, or `None` for an unknown name.
    pub fn named(name: &str) -> Option<Self> {
        let base = Self {
            name: "a57-like",
            summary: "Cortex-A57-like: 64 B lines, PIPT I-cache, L1+L2, no system cache",
            d_line: 64,
            i_line: 64,
            idc: false,
            dic: false,
            icache: ICachePolicy::Pipt,
            system_cache: None,
            falkor_e1041: false,
        };
        let c = match name {
            "a57-like" => base,
            "a53-vipt" => Self {
                name: "a53-vipt",
                summary: "Cortex-A53-like: VIPT I-cache with 4 page colours (aliasing)",
                icache: ICachePolicy::Vipt { colours: 4 },
                ..base
            },
            "asid-tagged" => Self {
                name: "asid-tagged",
                summary: "ASID-tagged (AIVIVT) I-cache, 64 B lines",
                icache: ICachePolicy::AsidTagged,
                ..base
            },
            "tx2-slc" => Self {
                name: "tx2-slc",
                summary: "ThunderX2-like: 64 B lines, system cache honouring VA maintenance",
                system_cache: Some(SystemCache::HonoursVa),
                ..base
            },
            "n1-idc-dic" => Self {
                name: "n1-idc-dic",
                summary: "Neoverse-N1-like: IDC=1, DIC=1, system cache honouring VA",
                idc: true,
                dic: true,
                system_cache: Some(SystemCache::HonoursVa),
                ..base
            },
            "idc-only-32" => Self {
                name: "idc-only-32",
                summary: "32 B lines, IDC=1, DIC=0, VIPT I-cache",
                d_line: 32,
                i_line: 32,
                idc: true,
                icache: ICachePolicy::Vipt { colours: 2 },
                ..base
            },
            "dic-only-128" => Self {
                name: "dic-only-128",
                summary: "128 B lines, IDC=0, DIC=1",
                d_line: 128,
                i_line: 128,
                dic: true,
                ..base
            },
            "split-lines" => Self {
                name: "split-lines",
                summary: "64 B D-lines, 32 B I-lines (stride must follow each), VIPT",
                i_line: 32,
                icache: ICachePolicy::Vipt { colours: 4 },
                ..base
            },
            "slc-128" => Self {
                name: "slc-128",
                summary: "128 B lines, ASID-tagged I-cache, system cache honouring VA",
                d_line: 128,
                i_line: 128,
                icache: ICachePolicy::AsidTagged,
                system_cache: Some(SystemCache::HonoursVa),
                ..base
            },
            "falkor-e1041" => Self {
                name: "falkor-e1041",
                summary: "Qualcomm Falkor-like: system cache honouring VA, erratum E1041 \
                          (ISB immediately before the MSR that turns the MMU off)",
                system_cache: Some(SystemCache::HonoursVa),
                falkor_e1041: true,
                ..base
            },
            "slc-ignores-va" => Self {
                name: "slc-ignores-va",
                summary: "MISCONFIGURED: system cache ignoring maintenance by VA",
                system_cache: Some(SystemCache::IgnoresVa),
                ..base
            },
            _ => return None,
        };
        Some(c)
    }

    /// Every correctly-behaving named configuration (not the misconfigured
    /// `slc-ignores-va`, which no software can handle).
    pub fn all_named() -> Vec<Self> {
        NAMES.iter().filter_map(|n| Self::named(n)).collect()
    }

    /// Every name [`CacheConfig::named`] accepts, including misconfigurations.
    pub fn names() -> Vec<&'static str> {
        let mut v = NAMES.to_vec();
        v.push("slc-ignores-va");
        v
    }
}

impl fmt::Display for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (CTR_EL0={:#010x}): {}",
            self.name,
            self.ctr_el0(),
            self.summary
        )
    }
}

/// Why a configuration file was refused (line numbers count from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A line is not `key = value` (or a `#` comment, or blank).
    Syntax(usize),
    /// A key the format does not have.
    UnknownKey(usize, String),
    /// A value that does not fit its key.
    BadValue(usize, String),
    /// `base` names no configuration.
    UnknownBase(usize, String),
    /// No `name = ...` line.
    MissingName,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax(l) => write!(f, "line {l}: expected `key = value`"),
            ConfigError::UnknownKey(l, k) => write!(f, "line {l}: unknown key {k:?}"),
            ConfigError::BadValue(l, k) => write!(f, "line {l}: bad value for {k}"),
            ConfigError::UnknownBase(l, b) => write!(f, "line {l}: unknown base {b:?}"),
            ConfigError::MissingName => f.write_str("no `name = ...` line"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl CacheConfig {
    /// A configuration from text (`kexec sim --config FILE`): `key = value`
    /// lines, `#` comments. Keys: `name` (required), `summary`, `base` (a
    /// named configuration to start from, default `a57-like`), `d_line`
    /// and `i_line` (bytes: a power of two, 16..=2048, the CTR_EL0 range),
    /// `idc`, `dic`, `falkor_e1041` (`true`/`false`), `icache` (`pipt`,
    /// `vipt:COLOURS`, `asid`), `system_cache` (`none`, `honours-va`,
    /// `ignores-va`).
    ///
    /// The name and summary are leaked to get the `'static` strings the
    /// report carries: call it a handful of times per process, not in a loop.
    pub fn from_text(text: &str) -> Result<Self, ConfigError> {
        let mut lines = Vec::new();
        let mut base = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or(ConfigError::Syntax(n))?;
            let (k, v) = (k.trim(), v.trim());
            if k == "base" {
                base = Some(Self::named(v).ok_or_else(|| ConfigError::UnknownBase(n, v.into()))?);
            } else {
                lines.push((n, k, v));
            }
        }
        let mut c = base.unwrap_or_else(|| Self::named("a57-like").expect("a57-like exists"));
        let based_on = c.name;
        let mut name = None;
        let mut summary = None;
        for (n, k, v) in lines {
            let bad = || ConfigError::BadValue(n, k.to_owned());
            let flag = |v: &str| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad()),
            };
            let line_size = |v: &str| {
                v.parse::<u64>()
                    .ok()
                    .filter(|b| b.is_power_of_two() && (16..=2048).contains(b))
                    .ok_or_else(bad)
            };
            match k {
                "name" if !v.is_empty() => name = Some(v),
                "summary" => summary = Some(v),
                "d_line" => c.d_line = line_size(v)?,
                "i_line" => c.i_line = line_size(v)?,
                "idc" => c.idc = flag(v)?,
                "dic" => c.dic = flag(v)?,
                "falkor_e1041" => c.falkor_e1041 = flag(v)?,
                "icache" => {
                    c.icache = match v.split_once(':') {
                        None if v == "pipt" => ICachePolicy::Pipt,
                        None if v == "asid" => ICachePolicy::AsidTagged,
                        Some(("vipt", colours)) => ICachePolicy::Vipt {
                            colours: colours
                                .parse::<u64>()
                                .ok()
                                .filter(|c| c.is_power_of_two() && *c >= 2)
                                .ok_or_else(bad)?,
                        },
                        _ => return Err(bad()),
                    }
                }
                "system_cache" => {
                    c.system_cache = match v {
                        "none" => None,
                        "honours-va" => Some(SystemCache::HonoursVa),
                        "ignores-va" => Some(SystemCache::IgnoresVa),
                        _ => return Err(bad()),
                    }
                }
                "name" => return Err(bad()),
                _ => return Err(ConfigError::UnknownKey(n, k.to_owned())),
            }
        }
        c.name = Box::leak(
            name.ok_or(ConfigError::MissingName)?
                .to_owned()
                .into_boxed_str(),
        );
        let summary = summary.map_or_else(
            || format!("from a configuration file (based on {based_on})"),
            str::to_owned,
        );
        c.summary = Box::leak(summary.into_boxed_str());
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_el0_encodes_a57() {
        // DminLine=4 (64 B), L1Ip=PIPT, IminLine=4, RES1 bit 31.
        assert_eq!(
            CacheConfig::named("a57-like").map(|c| c.ctr_el0()),
            Some(0x8004_c004)
        );
        let n1 = CacheConfig::named("n1-idc-dic").map(|c| c.ctr_el0());
        assert_eq!(n1, Some(0xb004_c004));
    }

    #[test]
    fn config_files_parse_and_refuse_nonsense() {
        let c = CacheConfig::from_text(
            "# a board\nname = my-soc\nbase = tx2-slc\nd_line = 128\ni_line = 32\n\
             icache = vipt:8\nidc = true\nfalkor_e1041 = true\n",
        )
        .expect("parses");
        assert_eq!(c.name, "my-soc");
        assert_eq!((c.d_line, c.i_line, c.idc, c.dic), (128, 32, true, false));
        assert_eq!(c.icache, ICachePolicy::Vipt { colours: 8 });
        assert_eq!(c.system_cache, Some(SystemCache::HonoursVa));
        assert!(c.falkor_e1041);
        assert_eq!(
            CacheConfig::from_text("d_line = 64"),
            Err(ConfigError::MissingName)
        );
        assert_eq!(
            CacheConfig::from_text("name = x\nd_line = 48"),
            Err(ConfigError::BadValue(2, "d_line".into()))
        );
        assert_eq!(
            CacheConfig::from_text("name = x\nways = 4"),
            Err(ConfigError::UnknownKey(2, "ways".into()))
        );
        assert_eq!(
            CacheConfig::from_text("name = x\nbase = nope"),
            Err(ConfigError::UnknownBase(2, "nope".into()))
        );
        assert_eq!(CacheConfig::from_text("name"), Err(ConfigError::Syntax(1)));
    }

    #[test]
    fn every_name_resolves() {
        for n in CacheConfig::names() {
            assert_eq!(CacheConfig::named(n).map(|c| c.name), Some(n));
        }
        assert!(CacheConfig::all_named().len() >= 8);
        assert!(CacheConfig::named("nope").is_none());
    }
}

//! The rules checked at "enter kernel" (and at purgatory entry), and the
//! violation they report.
//!
//! Sources: Documentation/arch/arm64/booting.rst ("Call the kernel image":
//! MMU off; the image range cleaned to the PoC; "the instruction cache ...
//! must not hold any stale entries corresponding to the loaded kernel
//! image"; x0 = DTB, x1..x3 = 0) and the seed mail (stale dirty lines may be
//! written back over newer data; stale clean lines shadow once caches are on).

use crate::memory::{Event, Level, MemorySystem};
use std::fmt;

/// A rule of the handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A non-cacheable read of a loaded range does not return the intended
    /// image (not cleaned to the PoC, or overwritten by a stale write-back).
    NotAtPoc,
    /// A cache level holds a dirty line in a loaded range: it may be written
    /// back over newer data after the handoff.
    DirtyLine,
    /// A cache level holds a clean line that differs from the intended image:
    /// it shadows memory once the next kernel turns its caches on.
    StaleCleanLine,
    /// The I-cache holds a stale line for the code executed next.
    StaleICache,
    /// Instructions fetched ahead before the last change were not discarded
    /// (missing ISB) and differ from the intended code.
    StaleFetchBuffer,
    /// Executing the next image's entry fetched wrong instructions.
    StaleCodeExecuted,
    /// SCTLR_ELx.M or .C still set at the branch.
    MmuOn,
    /// An SCTLR write not yet synchronised by an ISB at the branch.
    SctlrNotSynchronised,
    /// x0 is not the DTB, or x1..x3 are not zero.
    BootRegisters,
    /// The purgatory's own verification failed (it read wrong bytes).
    VerificationFailed,
    /// The purgatory hashed while its SCTLR write turning the MMU and
    /// caches on had not taken effect (no ISB after it), or reported
    /// verifying "caches on" but hashed a segment without them (SCTLR.M, C
    /// or I not set, or the segment not mapped write-back): correct bytes,
    /// but verification with the caches off is what it exists to avoid
    /// (about 50 times slower, ARM64-KEXEC.md §5).
    CachesNotOn,
    /// The purgatory read back a stack frame it wrote and got other bytes
    /// (a stale line shadowed or overwrote its stack): on the CPU, a wrong
    /// return address.
    StackCorrupted,
    /// A secondary CPU turned itself off with a line it wrote still dirty
    /// in a cache: the boot CPU reads its result from memory, and the line
    /// may be written back over the next kernel's data at any time.
    SecondaryDirtyLine,
    /// A CPU the purgatory started is still on at the branch to the
    /// kernel: it runs in memory the kernel owns, and the kernel's own
    /// `CPU_ON` for it fails.
    SecondaryStillOn,
    /// The model faulted (e.g. DC ZVA with the MMU off).
    Fault,
    /// The code under test returned an error or never reached the branch.
    NoEntry,
}

impl Rule {
    /// Every rule, in declaration order (a test keeps it complete).
    pub const ALL: [Rule; 16] = [
        Rule::NotAtPoc,
        Rule::DirtyLine,
        Rule::StaleCleanLine,
        Rule::StaleICache,
        Rule::StaleFetchBuffer,
        Rule::StaleCodeExecuted,
        Rule::MmuOn,
        Rule::SctlrNotSynchronised,
        Rule::BootRegisters,
        Rule::VerificationFailed,
        Rule::CachesNotOn,
        Rule::StackCorrupted,
        Rule::SecondaryDirtyLine,
        Rule::SecondaryStillOn,
        Rule::Fault,
        Rule::NoEntry,
    ];
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::NotAtPoc => "image not visible at the PoC",
            Rule::DirtyLine => "dirty line left in a loaded range",
            Rule::StaleCleanLine => "stale clean line left in a loaded range",
            Rule::StaleICache => "stale I-cache line for code executed next",
            Rule::StaleFetchBuffer => "stale instructions fetched ahead (no ISB)",
            Rule::StaleCodeExecuted => "stale code executed",
            Rule::MmuOn => "MMU or D-cache still on at the branch",
            Rule::SctlrNotSynchronised => "SCTLR write not synchronised (no ISB)",
            Rule::BootRegisters => "boot registers wrong (x0 = DTB, x1-x3 = 0)",
            Rule::VerificationFailed => "purgatory verification failed",
            Rule::StackCorrupted => "purgatory stack frame corrupted",
            Rule::CachesNotOn => {
                "hashed without the caches it turned on (write not yet in effect, or not cacheable)"
            }
            Rule::SecondaryDirtyLine => "secondary CPU turned off with a dirty line it wrote",
            Rule::SecondaryStillOn => "secondary CPU still on at the branch",
            Rule::Fault => "fault",
            Rule::NoEntry => "never entered the next image",
        })
    }
}

/// Where the offending state was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// DRAM (the PoC).
    Dram,
    /// A data-cache level.
    Data(Level),
    /// The I-cache, with the line's tag (colour/ASID).
    ICache(u64),
    /// The fetch buffer (instructions fetched ahead).
    FetchBuffer,
    /// A register or system register.
    Register,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dram => f.write_str("DRAM"),
            Location::Data(l) => write!(f, "{l}"),
            Location::ICache(t) => write!(f, "I-cache (tag {t})"),
            Location::FetchBuffer => f.write_str("fetch buffer"),
            Location::Register => f.write_str("register"),
        }
    }
}

/// A broken rule, with the timeline that led there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// First offending address, if any.
    pub addr: Option<u64>,
    /// Where the offending state sits.
    pub location: Location,
    /// One line of detail.
    pub detail: String,
    /// Configuration name.
    pub config: &'static str,
    /// Adversary seed.
    pub seed: u64,
    /// The last events touching the address plus global events (step, event).
    pub timeline: Vec<(u64, Event)>,
}

/// How many timeline events a violation keeps.
const TIMELINE_LEN: usize = 40;

impl Violation {
    /// Build a violation from the machine's state.
    pub fn new(
        m: &MemorySystem,
        seed: u64,
        rule: Rule,
        addr: Option<u64>,
        location: Location,
        detail: String,
    ) -> Self {
        let timeline = match addr {
            Some(a) => m.timeline(a, 1, TIMELINE_LEN),
            None => m.timeline(u64::MAX, 0, TIMELINE_LEN),
        };
        Self {
            rule,
            addr,
            location,
            detail,
            config: m.config().name,
            seed,
            timeline,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VIOLATION: {}", self.rule)?;
        if let Some(a) = self.addr {
            write!(f, " at {a:#x}")?;
        }
        writeln!(
            f,
            " in {} [config {}, seed {}]",
            self.location, self.config, self.seed
        )?;
        writeln!(f, "  {}", self.detail)?;
        writeln!(
            f,
            "  timeline (step: event), last {} relevant:",
            self.timeline.len()
        )?;
        for (s, e) in &self.timeline {
            writeln!(f, "    {s:>7}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// One range whose contents must be exactly `bytes` at the branch.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Physical start.
    pub addr: u64,
    /// Intended contents.
    pub bytes: &'a [u8],
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// The intended byte at `a`, if `a` is inside one of `images`.
fn intended(images: &[Expected<'_>], a: u64) -> Option<u8> {
    images.iter().find_map(|e| {
        let off = a.checked_sub(e.addr)?;
        e.bytes.get(usize::try_from(off).ok()?).copied()
    })
}

/// Compare a cached line against the intended bytes it overlaps; return the
/// first differing address.
fn line_stale(images: &[Expected<'_>], line: u64, data: &[u8]) -> Option<u64> {
    data.iter().enumerate().find_map(|(i, &b)| {
        let a = line + i as u64;
        intended(images, a).filter(|&want| want != b).map(|_| a)
    })
}

/// The data-side rules for `images` (D-cache and DRAM only).
pub fn check_data(m: &MemorySystem, seed: u64, images: &[Expected<'_>]) -> Result<(), Violation> {
    for e in images {
        let mut got = vec![0; e.bytes.len()];
        m.dram_read(e.addr, &mut got);
        if let Some(i) = first_diff(&got, e.bytes) {
            let a = e.addr + i as u64;
            let holder = m
                .cached_lines(a, 1)
                .into_iter()
                .find(|(_, l, _, d)| line_stale(images, *l, d).is_none());
            let (loc, why) = match holder {
                Some((lv, _, dirty, _)) => (
                    Location::Data(lv),
                    format!(
                        "DRAM has {:#04x}, intended {:#04x}; the intended data is {} in {lv}",
                        got[i],
                        e.bytes[i],
                        if dirty { "still dirty" } else { "only" }
                    ),
                ),
                None => (
                    Location::Dram,
                    format!("DRAM has {:#04x}, intended {:#04x}", got[i], e.bytes[i]),
                ),
            };
            return Err(Violation::new(m, seed, Rule::NotAtPoc, Some(a), loc, why));
        }
    }
    for e in images {
        for (lv, line, dirty, data) in m.cached_lines(e.addr, e.bytes.len() as u64) {
            if dirty {
                return Err(Violation::new(
                    m,
                    seed,
                    Rule::DirtyLine,
                    Some(line),
                    Location::Data(lv),
                    format!("line {line:#x} is dirty in {lv}"),
                ));
            }
            if let Some(a) = line_stale(images, line, &data) {
                return Err(Violation::new(
                    m,
                    seed,
                    Rule::StaleCleanLine,
                    Some(a),
                    Location::Data(lv),
                    format!("clean line {line:#x} in {lv} differs from the image"),
                ));
            }
        }
    }
    Ok(())
}

/// The instruction-side rules for code at `code` (executed next).
pub fn check_code(m: &MemorySystem, seed: u64, code: Expected<'_>) -> Result<(), Violation> {
    let images = [code];
    let len = code.bytes.len() as u64;
    for (line, tag, data) in m.icache_lines(code.addr, len) {
        if let Some(a) = line_stale(&images, line, &data) {
            return Err(Violation::new(
                m,
                seed,
                Rule::StaleICache,
                Some(a),
                Location::ICache(tag),
                format!("I-cache line {line:#x} (tag {tag}) differs from the code"),
            ));
        }
    }
    for (line, data) in m.fetch_buffer_lines(code.addr, len) {
        if let Some(a) = line_stale(&images, line, &data) {
            return Err(Violation::new(
                m,
                seed,
                Rule::StaleFetchBuffer,
                Some(a),
                Location::FetchBuffer,
                format!("fetched-ahead line {line:#x} differs from the code"),
            ));
        }
    }
    Ok(())
}

/// The SCTLR rules at a branch with the MMU off: the last SCTLR write is
/// synchronised (an ISB followed it) and M and C are clear. `at` names the
/// branch in the message ("to the kernel", "to the purgatory").
pub fn check_mmu_off(m: &MemorySystem, seed: u64, at: &str) -> Result<(), Violation> {
    if let Some(s) = m.pending_sctlr() {
        return Err(Violation::new(
            m,
            seed,
            Rule::SctlrNotSynchronised,
            None,
            Location::Register,
            format!("SCTLR write {s} issued but no ISB before the branch {at}"),
        ));
    }
    let s = m.sctlr();
    if s.m || s.c {
        return Err(Violation::new(
            m,
            seed,
            Rule::MmuOn,
            None,
            Location::Register,
            format!("SCTLR is {s} at the branch {at}"),
        ));
    }
    Ok(())
}

/// The register and SCTLR rules at the branch to the kernel.
pub fn check_cpu(m: &MemorySystem, seed: u64, dtb: u64) -> Result<(), Violation> {
    check_mmu_off(m, seed, "to the kernel")?;
    let r = m.regs();
    if r != [dtb, 0, 0, 0] {
        return Err(Violation::new(
            m,
            seed,
            Rule::BootRegisters,
            None,
            Location::Register,
            format!(
                "x0..x3 = {:#x} {:#x} {:#x} {:#x}, want {dtb:#x} 0 0 0",
                r[0], r[1], r[2], r[3]
            ),
        ));
    }
    Ok(())
}

/// Execute the first `len` bytes at `code` and compare (a dynamic check on
/// top of the static ones: uses the fetch path as the CPU would).
pub fn execute_and_compare(
    m: &mut MemorySystem,
    seed: u64,
    code: Expected<'_>,
    len: usize,
) -> Result<(), Violation> {
    let len = len.min(code.bytes.len());
    let got = m.execute(code.addr, len as u64);
    if let Some(i) = first_diff(&got, &code.bytes[..len]) {
        let a = code.addr + i as u64;
        return Err(Violation::new(
            m,
            seed,
            Rule::StaleCodeExecuted,
            Some(a),
            Location::ICache(0),
            format!("fetched {:#04x}, intended {:#04x}", got[i], code.bytes[i]),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Rule;

    /// The position of `r` in [`Rule::ALL`]. The match has no wildcard: a
    /// new variant does not compile until it is given a position here: give
    /// it the next one and put it at that position in `ALL` (the test checks
    /// that every rule of `ALL` sits at its position, so none twice).
    fn position(r: Rule) -> usize {
        match r {
            Rule::NotAtPoc => 0,
            Rule::DirtyLine => 1,
            Rule::StaleCleanLine => 2,
            Rule::StaleICache => 3,
            Rule::StaleFetchBuffer => 4,
            Rule::StaleCodeExecuted => 5,
            Rule::MmuOn => 6,
            Rule::SctlrNotSynchronised => 7,
            Rule::BootRegisters => 8,
            Rule::VerificationFailed => 9,
            Rule::CachesNotOn => 10,
            Rule::StackCorrupted => 11,
            Rule::SecondaryDirtyLine => 12,
            Rule::SecondaryStillOn => 13,
            Rule::Fault => 14,
            Rule::NoEntry => 15,
        }
    }

    #[test]
    fn all_lists_every_rule_once() {
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(position(*r), i, "{r:?} is out of place in Rule::ALL");
        }
    }
}

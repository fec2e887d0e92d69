//! Rules on what lies between the system instructions of the built
//! purgatory along every path ([`Paths`]): the memory accesses the compiler
//! adds (spills, reloads, frames) are invisible to the cache model, which
//! sees only the `handoff::Machine` calls, so where the Arm ARM sequences
//! need two instructions together, the binary must not put an access
//! between them.
//!
//! - [`NOTHING_BETWEEN`]: `isb` right before and right after every
//!   `msr sctlr_el*`, no instruction at all between (Qualcomm Falkor erratum
//!   E1041; `handoff::Machine::set_sctlr_synchronized`). Stronger than
//!   [`crate::sysinsn::check`]'s address-order test: a branch into the
//!   middle counts.
//! - [`NO_ACCESS_BETWEEN`]: pairs of the maintenance sequences that, when
//!   they follow each other (no other system instruction between), have no
//!   load or store between them: `DSB` → `IC` (the cleans complete, then
//!   the I-cache is invalidated; a store between would be neither cleaned
//!   nor ordered), `IC` → `DSB` and `TLBI` → `DSB` (the invalidation and its
//!   completion; an access between may be fetched or translated through
//!   what is being invalidated), `DSB` → `ISB` (completion, then context
//!   synchronisation). This is "clean; DSB; IC; DSB; ISB" and "TLBI; DSB;
//!   ISB" (Arm ARM B2.4.4 and D8.13.4; Linux `invalidate_icache_by_line`,
//!   `__tlbi` + `dsb` + `isb`). Where the handoff puts other system
//!   instructions between two steps (`IC IALLU`, the translation `MSR`s,
//!   `TLBI`, `DSB`, `MRS SCTLR`, `ISB` when the caches come on), loads
//!   between them are allowed: the CPU's EL byte, read from its stack with
//!   the MMU off; the model reads its stack at every barrier too.
//! - [`NO_STORE_AFTER_DMB`]: no store from the `dmb sy` through the `dc
//!   ivac`s after it. The model reports a DC by VA of a line stored to
//!   with the MMU off since the last DMB or DSB (cachesim's `Fault`), but
//!   only for the stores it knows of; a store the compiler adds there (a
//!   spill to the stack being invalidated) would be unordered with the
//!   invalidation of its line (Linux, head.S `preserve_boot_args`: "dmb sy
//!   needed before dc ivac with MMU off").

use crate::paths::{Access, Paths};
use crate::Error;

/// `(anchor, neighbour)`: the instruction right before and right after
/// every `anchor` on every path is a `neighbour`.
pub const NOTHING_BETWEEN: (&str, &str) = ("msr sctlr_el", "isb");

/// `(first, next)` prefixes of consecutive system instructions with no
/// memory access between them.
pub const NO_ACCESS_BETWEEN: &[(&str, &str)] = &[
    ("dsb", "ic "),
    ("ic ", "dsb"),
    ("tlbi ", "dsb"),
    ("dsb", "isb"),
];

/// The barrier that opens the no-store window, and what the window spans.
pub const NO_STORE_AFTER_DMB: (&str, &[&str]) = ("dmb sy", &["dc ivac", "mrs ctr_el0"]);

/// Every violation of the rules above in `paths`, as messages naming the
/// addresses (empty: all hold).
pub fn violations(paths: &Paths) -> Vec<String> {
    let mut out = Vec::new();
    let letter = |n: usize| paths.letter(n).unwrap_or("");
    let matches = |n: usize, prefix: &str| paths.letter(n).is_some_and(|l| l.starts_with(prefix));
    for n in 0..paths.nodes.len() {
        // Nothing between.
        let (anchor, neighbour) = NOTHING_BETWEEN;
        if matches(n, anchor) {
            for (side, others) in [("before", &paths.pred[n]), ("after", &paths.succ[n])] {
                for &o in others.iter().filter(|&&o| !matches(o, neighbour)) {
                    out.push(format!(
                        "{}: `{}` has {} immediately {side} it, not `{neighbour}` (Falkor \
                         erratum E1041: handoff::Machine::set_sctlr_synchronized)",
                        paths.describe(n),
                        letter(n),
                        paths.describe(o)
                    ));
                }
            }
        }
        // No access between consecutive pairs.
        for &(first, next) in NO_ACCESS_BETWEEN {
            if !matches(n, first) {
                continue;
            }
            for (access, to) in accesses_before_next_letter(paths, n) {
                if matches(to, next) {
                    out.push(format!(
                        "{}: a memory access between `{}` at {} and `{}` at {} (the Arm ARM \
                         sequence needs them together; the cache model does not see the access)",
                        paths.describe(access),
                        letter(n),
                        paths.describe(n),
                        letter(to),
                        paths.describe(to)
                    ));
                }
            }
        }
        // No store after the DMB until the DC IVACs are issued.
        let (dmb, span) = NO_STORE_AFTER_DMB;
        if letter(n) == dmb {
            let mut seen = vec![false; paths.nodes.len()];
            let mut todo = paths.succ[n].clone();
            while let Some(m) = todo.pop() {
                if std::mem::replace(&mut seen[m], true) {
                    continue;
                }
                if paths.letter(m).is_some_and(|l| !span.contains(&l)) {
                    continue;
                }
                if paths.insn(m).access == Access::Store {
                    out.push(format!(
                        "{}: a store after `{dmb}` at {} and before the `dc ivac`s it orders \
                         (a store the cache model does not see, unordered with the \
                         invalidation of its line)",
                        paths.describe(m),
                        paths.describe(n)
                    ));
                }
                todo.extend(&paths.succ[m]);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `(access, next)`: each memory-access node on a path from `from` to the
/// next system instruction `next` (no system instruction between).
fn accesses_before_next_letter(paths: &Paths, from: usize) -> Vec<(usize, usize)> {
    // The non-system instructions reachable from `from` before a system one.
    let mut region = vec![false; paths.nodes.len()];
    let mut todo = paths.succ[from].clone();
    while let Some(m) = todo.pop() {
        if paths.letter(m).is_some() || std::mem::replace(&mut region[m], true) {
            continue;
        }
        todo.extend(&paths.succ[m]);
    }
    let mut out = Vec::new();
    for a in (0..paths.nodes.len()).filter(|&a| region[a] && paths.insn(a).access != Access::None) {
        // The system instructions reachable from the access inside the region.
        let mut seen = vec![false; paths.nodes.len()];
        let mut todo = paths.succ[a].clone();
        while let Some(m) = todo.pop() {
            if std::mem::replace(&mut seen[m], true) {
                continue;
            }
            if paths.letter(m).is_some() {
                out.push((a, m));
            } else if region[m] {
                todo.extend(&paths.succ[m]);
            }
        }
    }
    out
}

/// [`violations`] as an error.
pub fn check(paths: &Paths) -> Result<(), Error> {
    let v = violations(paths);
    if v.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "system-instruction sequences:\n  {}",
            v.join("\n  ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Code;

    const ISB: u32 = 0xd503_3fdf;
    const NOP: u32 = 0xd503_201f;
    const DSB_SY: u32 = 0xd503_3f9f;
    const DMB_SY: u32 = 0xd503_3fbf;
    const DC_IVAC_X0: u32 = 0xd508_7620;
    const DC_CIVAC_X0: u32 = 0xd50b_7e20;
    const IC_IALLU: u32 = 0xd508_751f;
    const TLBI_ALLE2: u32 = 0xd50c_871f;
    const MSR_SCTLR_EL2_X0: u32 = 0xd51c_1000;
    const MRS_CTR_X1: u32 = 0xd53b_0021;
    const MRS_SCTLR_EL2_X0: u32 = 0xd53c_1000;
    const LDR_X1_SP: u32 = 0xf940_03e1;
    const STR_X1_SP: u32 = 0xf900_03e1;
    const BR_X8: u32 = 0xd61f_0100;

    fn run(words: &[u32]) -> Vec<String> {
        violations(&paths(words))
    }

    /// The shape of the handoff's caches-on sequence.
    const GOOD: &[u32] = &[
        STR_X1_SP,
        DMB_SY,
        MRS_CTR_X1,
        DC_IVAC_X0,
        LDR_X1_SP,
        DC_IVAC_X0,
        DC_CIVAC_X0,
        STR_X1_SP,
        DSB_SY,
        IC_IALLU,
        LDR_X1_SP,
        TLBI_ALLE2,
        DSB_SY,
        LDR_X1_SP,
        MRS_SCTLR_EL2_X0,
        ISB,
        MSR_SCTLR_EL2_X0,
        ISB,
        IC_IALLU,
        DSB_SY,
        ISB,
        BR_X8,
    ];

    fn paths(words: &[u32]) -> Paths {
        let code = Code::flat(0, words.iter().flat_map(|w| w.to_le_bytes()).collect());
        Paths::build(code, 0).unwrap()
    }

    #[test]
    fn the_handoff_shape_passes() {
        assert_eq!(run(GOOD), Vec::<String>::new());
        assert!(check(&paths(GOOD)).is_ok());
        let err = check(&paths(&with(16, NOP))).unwrap_err().to_string();
        assert!(
            err.starts_with("purgatory ELF: system-instruction sequences:"),
            "{err}"
        );
    }

    /// `GOOD` with `word` inserted before index `at`.
    fn with(at: usize, word: u32) -> Vec<u32> {
        let mut w = GOOD.to_vec();
        w.insert(at, word);
        w
    }

    #[test]
    fn each_rule_fails_on_its_own() {
        let cases: &[(usize, u32, &str)] = &[
            (16, NOP, "immediately before"),      // isb; nop; msr sctlr
            (17, LDR_X1_SP, "immediately after"), // msr sctlr; ldr; isb
            (9, LDR_X1_SP, "`dsb sy` at"),        // dsb; ldr; ic iallu
            (12, STR_X1_SP, "`tlbi alle2` at"),   // tlbi; str; dsb
            (19, LDR_X1_SP, "`ic iallu` at"),     // ic iallu; ldr; dsb
            (20, LDR_X1_SP, "`dsb sy` at"),       // dsb; ldr; isb
            (3, STR_X1_SP, "after `dmb sy`"),     // dmb; mrs ctr; str; dc ivac
            (5, STR_X1_SP, "after `dmb sy`"),     // between the two dc ivac
        ];
        for &(at, word, want) in cases {
            let v = run(&with(at, word));
            assert!(
                v.len() == 1 && v[0].contains(want),
                "insert {word:#x} at {at}: {v:#?}"
            );
        }
    }
}

//! The system instructions of a modelled purgatory run: what the CPU
//! executes for each operation the model performs, in order, named as
//! `purgatory_image::sysinsn` names the instructions it finds in the built
//! binary (`dc civac`, `msr sctlr_el2`, `mrs ctr_el0`, …).
//!
//! [`SimCpu`](super::SimCpu) records one letter per instruction of each
//! `handoff::Machine` call it performs (a call a mutant drops is not
//! performed, so not recorded), with the system register the CPU's
//! implementation (`crates/purgatory/src/cpu.rs`) uses at the run's EL, and
//! the entry code before the handoff ([`SysTrace::entry_code`]). The
//! path check (`crates/kexec/tests/model_link.rs`) requires every such
//! sequence to be one the binary's paths can produce, and every system
//! instruction of the binary to be used by some sequence.

use handoff::Regime;
use std::collections::BTreeSet;
use std::fmt;

/// System instructions in order, consecutive repeats counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysTrace {
    runs: Vec<(&'static str, u64)>,
}

impl SysTrace {
    /// Appends one instruction.
    pub fn push(&mut self, name: &'static str) {
        match self.runs.last_mut() {
            Some((last, n)) if *last == name => *n += 1,
            _ => self.runs.push((name, 1)),
        }
    }

    /// `(instruction, consecutive count)`, in order.
    pub fn runs(&self) -> &[(&'static str, u64)] {
        &self.runs
    }

    /// The distinct instructions.
    pub fn letters(&self) -> BTreeSet<&'static str> {
        self.runs.iter().map(|(l, _)| *l).collect()
    }

    /// How many instructions in all.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|(_, n)| n).sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The entry code of every CPU of the purgatory (`_start`, and
    /// `purgatory_secondary_entry` on a secondary: crates/purgatory/src/
    /// main.rs) and `Cpu::new` in the Rust code it calls, at `regime`:
    /// `cpu_setup` (interrupts masked, FP/SIMD enabled for the EL: CPTR_EL2
    /// at EL2, CPACR_EL1 at EL1 and with E2H; the purgatory's vectors
    /// installed; an ISB), `set_stack` (TPIDR_ELx = the stack top, for the
    /// vectors); then the handoff's CPU reads CurrentEL (and HCR_EL2 at
    /// EL2) once.
    pub fn entry_code(&mut self, regime: Regime) {
        self.push("msr daifset");
        self.push("mrs currentel");
        match regime {
            Regime::El1 => {
                self.push("mrs cpacr_el1");
                self.push("msr cpacr_el1");
                self.push("msr vbar_el1");
            }
            Regime::El2 => {
                self.push("mrs hcr_el2");
                self.push("mrs cptr_el2");
                self.push("msr cptr_el2");
                self.push("msr vbar_el2");
            }
            Regime::El2Host => {
                self.push("mrs hcr_el2");
                self.push("mrs cpacr_el1");
                self.push("msr cpacr_el1");
                self.push("msr vbar_el2");
            }
        }
        self.push("isb");
        self.push("mrs currentel");
        self.push(if regime == Regime::El1 {
            "msr tpidr_el1"
        } else {
            "msr tpidr_el2"
        });
        self.push("mrs currentel");
        if regime != Regime::El1 {
            self.push("mrs hcr_el2");
        }
    }
}

impl fmt::Display for SysTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (l, n)) in self.runs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(l)?;
            if *n > 1 {
                write!(f, " x{n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted() {
        let mut t = SysTrace::default();
        for l in ["dmb sy", "dc ivac", "dc ivac", "dc ivac", "dsb sy"] {
            t.push(l);
        }
        assert_eq!(t.runs(), &[("dmb sy", 1), ("dc ivac", 3), ("dsb sy", 1)]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.to_string(), "dmb sy, dc ivac x3, dsb sy");
    }
}

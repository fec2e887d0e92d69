//! Machines on which the code under test can start another CPU (PSCI
//! `CPU_ON`): the model ([`crate::SimCpu`]) implements [`Cpus`], and
//! [`crate::mutant::Mutant`] runs a started CPU's code through itself.

use handoff::{Conduit, HandoffParams, Machine, PurgatoryMemory};

/// A machine on which the code under test can start another CPU (PSCI
/// `CPU_ON`): the model ([`crate::SimCpu`]). [`crate::mutant::Mutant`] runs the started
/// CPU's code itself, so that its maintenance are sites of the same run
/// (in the phase "secondary") and mutated like the boot CPU's.
pub trait Cpus: Machine {
    /// A PSCI call: `Ok(x0)`, or `Err(start)` when, inside the call, a
    /// started CPU runs and the machine has switched to it: run `start` on
    /// the machine, then call [`Cpus::secondary_finished`].
    fn psci_call(
        &mut self,
        conduit: Conduit,
        function: u32,
        args: [u64; 3],
    ) -> Result<i64, Box<SecondaryStart>>;
    /// The started CPU's code returned (it called `CPU_OFF`, or parked):
    /// the machine runs the CPU that made the call again. Returns x0 of
    /// that call.
    fn secondary_finished(&mut self) -> i64;
}

/// What a CPU started by `CPU_ON` runs: the purgatory's secondary entry,
/// [`handoff::smp::secondary`], with the header it reads and its slot
/// (the context id).
#[derive(Debug, Clone)]
pub struct SecondaryStart {
    /// The purgatory's header, as the secondary reads it.
    pub params: HandoffParams,
    /// The purgatory's memory (from its link-time symbols).
    pub own: PurgatoryMemory,
    /// Its slot (the `CPU_ON` context id).
    pub slot: usize,
}

impl SecondaryStart {
    /// Runs the secondary's code on `m` (to its `CPU_OFF`, or its park).
    pub fn run<M: Machine + ?Sized>(&self, m: &mut M) {
        // What it returns is the model's final state, kept by the machine.
        let _ = handoff::smp::secondary(m, &self.params, &self.own, self.slot);
    }
}

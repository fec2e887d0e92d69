//! The language of the purgatory's system-instruction sequences: every
//! sequence of system instructions (named as [`crate::sysinsn`] names them)
//! along a path of [`Paths`] from the entry to the `br` into the kernel.
//!
//! [`Automaton`] is that language as a nondeterministic automaton whose
//! states are the system instructions of the expanded graph (an address in
//! a calling context) plus the entry; a transition from one to the next
//! exists when a path joins them with no system instruction between. Loops
//! stay loops: a `DC CIVAC` loop over a range is a state with a transition
//! to itself, so the language holds every line count. [`Automaton::accept`]
//! runs a sequence through it and returns the states and transitions some
//! accepting path used ([`Run`]): comparing these with all of them finds
//! instructions and orders of the binary that no accepted sequence needs.
//! [`Automaton::regex`] writes the language as a regular expression
//! (determinised, minimised, then state elimination: [`crate::regex`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::paths::Paths;
use crate::regex::{Dfa, Re};

/// One state: the entry, or a system instruction of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// The node of [`Paths`] (the entry node for state 0).
    pub node: usize,
    /// Index of the letter into [`Automaton::alphabet`] (`None`: the entry).
    pub letter: Option<usize>,
}

/// The system-instruction language of the paths from the entry to the exit.
#[derive(Debug, Clone)]
pub struct Automaton {
    /// The letters, sorted.
    pub alphabet: Vec<String>,
    /// State 0 is the entry; the others are system instructions.
    pub states: Vec<State>,
    /// Transitions of each state (to states; the letter read is the
    /// target's).
    pub next: Vec<Vec<usize>>,
    /// Whether the exit is reachable from the state with no system
    /// instruction on the way.
    pub accepting: Vec<bool>,
}

/// What an accepting run of a sequence went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// States some accepting path of the sequence passes.
    pub states: BTreeSet<usize>,
    /// Transitions `(from, to)` some accepting path takes.
    pub transitions: BTreeSet<(usize, usize)>,
}

/// Why a sequence is not in the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// How many letters were accepted as a prefix.
    pub position: usize,
    /// The letter that no path allows there (`None`: the sequence ended
    /// where every path needs more).
    pub found: Option<String>,
    /// What the binary allows at that position (`"<br>"`: the exit).
    pub expected: BTreeSet<String>,
    /// The last letters accepted before it.
    pub context: Vec<String>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "after {} system instructions (… {}), ",
            self.position,
            self.context.join(", ")
        )?;
        match &self.found {
            Some(l) => write!(f, "the binary has no path with `{l}` next")?,
            None => f.write_str("the sequence ends, but no path of the binary ends there")?,
        }
        let expected: Vec<String> = self.expected.iter().map(|s| format!("`{s}`")).collect();
        write!(f, "; it allows: {}", expected.join(", "))
    }
}

/// A small fixed-size set of states.
type Bits = Vec<u64>;

fn bit(b: &Bits, i: usize) -> bool {
    b[i / 64] >> (i % 64) & 1 == 1
}

fn set(b: &mut Bits, i: usize) {
    b[i / 64] |= 1 << (i % 64);
}

impl Automaton {
    /// The language of `paths` (its live part: what leads to the exit).
    pub fn new(paths: &Paths) -> Self {
        let letter_nodes: Vec<usize> = (0..paths.nodes.len())
            .filter(|&n| paths.live[n] && paths.letter(n).is_some())
            .collect();
        let alphabet: Vec<String> = letter_nodes
            .iter()
            .filter_map(|&n| paths.letter(n).map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut states = vec![State {
            node: 0,
            letter: None,
        }];
        let mut state_of = BTreeMap::new();
        for &n in &letter_nodes {
            let l = paths.letter(n).unwrap_or_default();
            state_of.insert(n, states.len());
            states.push(State {
                node: n,
                letter: alphabet.iter().position(|a| a == l),
            });
        }
        let mut next = vec![Vec::new(); states.len()];
        let mut accepting = vec![false; states.len()];
        for (s, st) in states.iter().enumerate() {
            // Search the non-system instructions after the state (from the
            // entry itself for state 0) up to the next system instruction.
            let mut seen = vec![false; paths.nodes.len()];
            let mut todo: Vec<usize> = if s == 0 {
                vec![0]
            } else {
                paths.succ[st.node].clone()
            };
            while let Some(n) = todo.pop() {
                if !paths.live[n] || std::mem::replace(&mut seen[n], true) {
                    continue;
                }
                if let Some(&t) = state_of.get(&n) {
                    next[s].push(t);
                    continue;
                }
                if paths.exits.contains(&n) {
                    accepting[s] = true;
                }
                todo.extend(&paths.succ[n]);
            }
            next[s].sort_unstable();
            next[s].dedup();
        }
        Automaton {
            alphabet,
            states,
            next,
            accepting,
        }
    }

    /// The letter of state `s` (`""` for the entry).
    pub fn letter(&self, s: usize) -> &str {
        self.states[s]
            .letter
            .map_or("", |l| self.alphabet[l].as_str())
    }

    fn expected(&self, from: &Bits) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for s in 0..self.states.len() {
            if bit(from, s) {
                out.extend(self.next[s].iter().map(|&t| self.letter(t).to_owned()));
                if self.accepting[s] {
                    out.insert("<br>".to_owned());
                }
            }
        }
        out
    }

    /// Runs `word` (letters with repeat counts) from the entry to the exit.
    pub fn accept(&self, word: &[(&str, u64)]) -> Result<Run, Rejection> {
        let flat: Vec<&str> = word
            .iter()
            .flat_map(|&(l, n)| std::iter::repeat_n(l, usize::try_from(n).unwrap_or(0)))
            .collect();
        let words = self.states.len().div_ceil(64);
        let mut start = vec![0; words];
        set(&mut start, 0);
        let mut forward = vec![start];
        let reject = |pos: usize, found: Option<&str>, from: &Bits| Rejection {
            position: pos,
            found: found.map(str::to_owned),
            expected: self.expected(from),
            context: flat[pos.saturating_sub(4)..pos]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        for (i, &l) in flat.iter().enumerate() {
            let cur = &forward[i];
            let mut nxt = vec![0; words];
            let mut any = false;
            for s in (0..self.states.len()).filter(|&s| bit(cur, s)) {
                for &t in self.next[s].iter().filter(|&&t| self.letter(t) == l) {
                    set(&mut nxt, t);
                    any = true;
                }
            }
            if !any {
                return Err(reject(i, Some(l), cur));
            }
            forward.push(nxt);
        }
        // Backwards from the accepting states at the end: what an accepting
        // run used.
        let n = flat.len();
        let mut back = vec![0; words];
        for s in (0..self.states.len()).filter(|&s| bit(&forward[n], s) && self.accepting[s]) {
            set(&mut back, s);
        }
        if back.iter().all(|&w| w == 0) {
            return Err(reject(n, None, &forward[n]));
        }
        let mut run = Run::default();
        for i in (0..n).rev() {
            let mut prev = vec![0; words];
            for s in (0..self.states.len()).filter(|&s| bit(&forward[i], s)) {
                // `back` holds states at position i + 1 only, all of
                // which read `flat[i]`.
                for &t in &self.next[s] {
                    if bit(&back, t) {
                        set(&mut prev, s);
                        run.transitions.insert((s, t));
                    }
                }
            }
            for t in (0..self.states.len()).filter(|&t| bit(&back, t)) {
                run.states.insert(t);
            }
            back = prev;
        }
        run.states.insert(0);
        Ok(run)
    }

    /// Every transition `(from, to)`.
    pub fn transitions(&self) -> BTreeSet<(usize, usize)> {
        self.next
            .iter()
            .enumerate()
            .flat_map(|(s, ts)| ts.iter().map(move |&t| (s, t)))
            .collect()
    }

    /// The sub-automaton of the paths that use only letters in `keep`
    /// (the language intersected with `keep`*), trimmed to what leads from
    /// the entry to the exit.
    pub fn restricted(&self, keep: &BTreeSet<&str>) -> Self {
        let allowed: Vec<bool> = (0..self.states.len())
            .map(|s| s == 0 || keep.contains(self.letter(s)))
            .collect();
        let mut a = self.clone();
        for (s, ts) in a.next.iter_mut().enumerate() {
            if allowed[s] {
                ts.retain(|&t| allowed[t]);
            } else {
                ts.clear();
            }
        }
        for (s, acc) in a.accepting.iter_mut().enumerate() {
            *acc &= allowed[s];
        }
        a
    }

    /// The language as a deterministic automaton over the alphabet.
    pub fn dfa(&self) -> Dfa {
        Dfa::determinise(
            self.alphabet.len(),
            self.states.len(),
            |s| {
                self.next[s]
                    .iter()
                    .filter_map(|&t| self.states[t].letter.map(|l| (l, t)))
                    .collect()
            },
            |s| self.accepting[s],
        )
    }

    /// The language as a regular expression over
    /// [`crate::regex::display_letter`] names.
    pub fn regex(&self) -> String {
        let re: Re = self.dfa().minimised().to_regex();
        re.display(&self.alphabet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Code;

    const ISB: u32 = 0xd503_3fdf;
    const DSB_SY: u32 = 0xd503_3f9f;
    const DC_CIVAC_X0: u32 = 0xd50b_7e20;
    const IC_IALLU: u32 = 0xd508_751f;
    const BR_X8: u32 = 0xd61f_0100;
    const ADD_X0: u32 = 0x9101_0000; // add x0, x0, #64

    fn code(words: &[u32]) -> Code {
        Code::flat(0, words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }

    /// `B.NE` from `from` to `to`.
    fn bne(from: u32, to: u32) -> u32 {
        0x5400_0001 | (((to.wrapping_sub(from) / 4) & 0x7_ffff) << 5)
    }

    /// `CBZ x1` from `from` to `to`.
    fn cbz(from: u32, to: u32) -> u32 {
        0xb400_0001 | (((to.wrapping_sub(from) / 4) & 0x7_ffff) << 5)
    }

    /// A loop of DC CIVAC, skipped when x1 = 0, then DSB; IC IALLU; DSB; ISB; BR.
    fn sample() -> Automaton {
        let words = [
            cbz(0, 16),
            DC_CIVAC_X0,
            ADD_X0,
            bne(12, 4),
            DSB_SY,
            IC_IALLU,
            DSB_SY,
            ISB,
            BR_X8,
        ];
        Automaton::new(&Paths::build(code(&words), 0).unwrap())
    }

    #[test]
    fn loops_accept_every_count_and_nothing_else() {
        let a = sample();
        for n in [0, 1, 7] {
            let w = [
                ("dc civac", n),
                ("dsb sy", 1),
                ("ic iallu", 1),
                ("dsb sy", 1),
                ("isb", 1),
            ];
            a.accept(&w).unwrap();
        }
        // A missing DSB, an extra ISB, a truncated sequence.
        let bad: [&[(&str, u64)]; 3] = [
            &[("dc civac", 2), ("ic iallu", 1), ("dsb sy", 1), ("isb", 1)],
            &[
                ("dc civac", 2),
                ("dsb sy", 1),
                ("isb", 1),
                ("ic iallu", 1),
                ("dsb sy", 1),
                ("isb", 1),
            ],
            &[("dc civac", 2), ("dsb sy", 1), ("ic iallu", 1)],
        ];
        for w in bad {
            let r = a.accept(w).unwrap_err();
            println!("{r}");
        }
        let r = a.accept(bad[0]).unwrap_err();
        assert_eq!((r.position, r.found.as_deref()), (2, Some("ic iallu")));
        assert!(r.expected.contains("dsb sy"), "{r}");
        let r = a.accept(bad[2]).unwrap_err();
        assert_eq!(r.found, None);
    }

    #[test]
    fn a_run_reports_what_it_used() {
        let a = sample();
        let run = a
            .accept(&[("dsb sy", 1), ("ic iallu", 1), ("dsb sy", 1), ("isb", 1)])
            .unwrap();
        // The loop's DC CIVAC state is not used when the range is empty.
        let dc = (0..a.states.len())
            .find(|&s| a.letter(s) == "dc civac")
            .unwrap();
        assert!(!run.states.contains(&dc));
        assert!(!run.transitions.contains(&(dc, dc)));
        assert_eq!(run.states.len(), 5);
        assert_eq!(run.transitions.len(), 4);
        // Every transition: entry→DC, entry→DSB, DC→DC, DC→DSB, then the
        // straight line DSB→IC→DSB→ISB.
        let all = a.transitions();
        assert_eq!(all.len(), 7);
        assert!(all.contains(&(dc, dc)) && all.contains(&(0, dc)));
        assert!(all.is_superset(&run.transitions));
    }

    #[test]
    fn a_rejection_says_where_and_what_the_binary_allows() {
        let r = sample().accept(&[("dc civac", 3), ("isb", 1)]).unwrap_err();
        assert_eq!(
            r.to_string(),
            "after 3 system instructions (… dc civac, dc civac, dc civac), the binary has no \
             path with `isb` next; it allows: `dc civac`, `dsb sy`"
        );
        let r = sample()
            .accept(&[("dsb sy", 1), ("ic iallu", 1), ("dsb sy", 1)])
            .unwrap_err();
        assert_eq!(
            r.to_string(),
            "after 3 system instructions (… dsb sy, ic iallu, dsb sy), the sequence ends, but \
             no path of the binary ends there; it allows: `isb`"
        );
    }

    #[test]
    fn the_regex_names_the_loop() {
        assert_eq!(sample().regex(), "DC_CIVAC* DSB_SY IC_IALLU DSB_SY ISB");
    }

    #[test]
    fn restriction_drops_paths_with_other_letters() {
        let a = sample();
        let keep: BTreeSet<&str> = ["dsb sy", "ic iallu", "isb"].into_iter().collect();
        assert_eq!(a.restricted(&keep).regex(), "DSB_SY IC_IALLU DSB_SY ISB");
    }
}

//! Deterministic automata over a small alphabet and the regular
//! expressions that describe them: subset construction, minimisation
//! (Moore's partition refinement) and state elimination (Brzozowski and
//! McCluskey), used to write the purgatory's system-instruction language
//! ([`crate::lang`]) in a form a person can read.

use std::collections::{BTreeMap, BTreeSet};

/// A deterministic automaton; a missing transition rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dfa {
    /// Alphabet size.
    pub letters: usize,
    /// The initial state.
    pub start: usize,
    /// `delta[state][letter]`.
    pub delta: Vec<Vec<Option<usize>>>,
    /// Accepting states.
    pub accepting: Vec<bool>,
}

impl Dfa {
    /// Subset construction from NFA state 0, `next(s)` giving `(letter,
    /// target)` pairs.
    pub fn determinise(
        letters: usize,
        nfa_states: usize,
        next: impl Fn(usize) -> Vec<(usize, usize)>,
        accepting: impl Fn(usize) -> bool,
    ) -> Self {
        let moves: Vec<Vec<(usize, usize)>> = (0..nfa_states).map(next).collect();
        let mut ids: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
        let mut sets: Vec<Vec<usize>> = vec![vec![0]];
        ids.insert(vec![0], 0);
        let mut dfa = Dfa {
            letters,
            start: 0,
            delta: Vec::new(),
            accepting: Vec::new(),
        };
        let mut i = 0;
        while i < sets.len() {
            let set = sets[i].clone();
            dfa.accepting.push(set.iter().any(|&s| accepting(s)));
            let mut row = vec![None; letters];
            for (l, cell) in row.iter_mut().enumerate() {
                let to: BTreeSet<usize> = set
                    .iter()
                    .flat_map(|&s| moves[s].iter().filter(|m| m.0 == l).map(|m| m.1))
                    .collect();
                if to.is_empty() {
                    continue;
                }
                let to: Vec<usize> = to.into_iter().collect();
                let id = *ids.entry(to.clone()).or_insert_with(|| {
                    sets.push(to);
                    sets.len() - 1
                });
                *cell = Some(id);
            }
            dfa.delta.push(row);
            i += 1;
        }
        dfa
    }

    /// The minimal automaton of the same language (states that cannot
    /// accept removed, equivalent states merged).
    pub fn minimised(&self) -> Dfa {
        let n = self.delta.len();
        // States from which an accepting state is reachable.
        let mut live: Vec<bool> = self.accepting.clone();
        loop {
            let mut changed = false;
            for s in 0..n {
                if !live[s] && self.delta[s].iter().flatten().any(|&t| live[t]) {
                    live[s] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let step = |s: usize, l: usize| self.delta[s][l].filter(|&t| live[t]);
        let kept: Vec<usize> = (0..n).filter(|&s| live[s] || s == self.start).collect();
        let mut class: Vec<usize> = vec![usize::MAX; n];
        for &s in &kept {
            class[s] = usize::from(self.accepting[s]);
        }
        loop {
            let mut sigs: BTreeMap<(usize, Vec<Option<usize>>), usize> = BTreeMap::new();
            let mut next = vec![usize::MAX; n];
            for &s in &kept {
                let sig = (
                    class[s],
                    (0..self.letters)
                        .map(|l| step(s, l).map(|t| class[t]))
                        .collect(),
                );
                let k = sigs.len();
                next[s] = *sigs.entry(sig).or_insert(k);
            }
            let before: BTreeSet<usize> = kept.iter().map(|&s| class[s]).collect();
            let stable = sigs.len() == before.len();
            class = next;
            if stable {
                break;
            }
        }
        let count = kept.iter().map(|&s| class[s] + 1).max().unwrap_or(0);
        let mut dfa = Dfa {
            letters: self.letters,
            start: class[self.start],
            delta: vec![vec![None; self.letters]; count],
            accepting: vec![false; count],
        };
        for &s in &kept {
            dfa.accepting[class[s]] = self.accepting[s];
            for l in 0..self.letters {
                dfa.delta[class[s]][l] = step(s, l).map(|t| class[t]);
            }
        }
        dfa
    }

    /// A regular expression of the language (state elimination, fewest
    /// in×out edges first). `None` when the language is empty.
    pub fn to_regex(&self) -> Re {
        let n = self.delta.len();
        let (start, end) = (n, n + 1);
        let mut edges: BTreeMap<(usize, usize), Re> = BTreeMap::new();
        let add = |edges: &mut BTreeMap<(usize, usize), Re>, k: (usize, usize), r: Re| {
            let e = match edges.remove(&k) {
                Some(old) => alt(old, r),
                None => r,
            };
            edges.insert(k, e);
        };
        add(&mut edges, (start, self.start), Re::Eps);
        for s in 0..n {
            if self.accepting[s] {
                add(&mut edges, (s, end), Re::Eps);
            }
            for l in 0..self.letters {
                if let Some(t) = self.delta[s][l] {
                    add(&mut edges, (s, t), Re::Sym(l));
                }
            }
        }
        let mut left: BTreeSet<usize> = (0..n).collect();
        while let Some(&k) = left.iter().min_by_key(|&&k| {
            let ins = edges.keys().filter(|e| e.1 == k && e.0 != k).count();
            let outs = edges.keys().filter(|e| e.0 == k && e.1 != k).count();
            (ins * outs, k)
        }) {
            left.remove(&k);
            let self_loop = edges.remove(&(k, k)).map(star);
            let ins: Vec<(usize, Re)> = edges
                .iter()
                .filter(|(e, _)| e.1 == k)
                .map(|(e, r)| (e.0, r.clone()))
                .collect();
            let outs: Vec<(usize, Re)> = edges
                .iter()
                .filter(|(e, _)| e.0 == k)
                .map(|(e, r)| (e.1, r.clone()))
                .collect();
            edges.retain(|e, _| e.0 != k && e.1 != k);
            for (i, a) in &ins {
                for (j, b) in &outs {
                    let mid = self_loop.clone().unwrap_or(Re::Eps);
                    add(&mut edges, (*i, *j), cat(vec![a.clone(), mid, b.clone()]));
                }
            }
        }
        edges.remove(&(start, end)).unwrap_or(Re::Alt(Vec::new()))
    }
}

/// A regular expression over letter indices. `Alt(vec![])` is the empty
/// language.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Re {
    /// The empty sequence.
    Eps,
    /// One letter.
    Sym(usize),
    /// A sequence.
    Cat(Vec<Re>),
    /// A choice.
    Alt(Vec<Re>),
    /// Zero or more repetitions.
    Star(Box<Re>),
}

fn seq(r: Re) -> Vec<Re> {
    match r {
        Re::Eps => Vec::new(),
        Re::Cat(v) => v,
        other => vec![other],
    }
}

/// `parts` in sequence (flattened; ε dropped).
pub fn cat(parts: Vec<Re>) -> Re {
    let v: Vec<Re> = parts.into_iter().flat_map(seq).collect();
    match v.len() {
        0 => Re::Eps,
        1 => v.into_iter().next().unwrap_or(Re::Eps),
        _ => Re::Cat(v),
    }
}

/// `a | b`, flattened, deduplicated, with common leading and trailing
/// parts factored out (`x a y | x b y` = `x (a | b) y`).
pub fn alt(a: Re, b: Re) -> Re {
    let mut set = BTreeSet::new();
    for r in [a, b] {
        match r {
            Re::Alt(v) => set.extend(v),
            other => {
                set.insert(other);
            }
        }
    }
    if set.len() == 1 {
        return set.into_iter().next().unwrap_or(Re::Eps);
    }
    let seqs: Vec<Vec<Re>> = set.iter().cloned().map(seq).collect();
    let shortest = seqs.iter().map(Vec::len).min().unwrap_or(0);
    let pre = (0..shortest)
        .take_while(|&i| seqs.iter().all(|s| s[i] == seqs[0][i]))
        .count();
    let suf = (0..shortest - pre)
        .take_while(|&i| {
            seqs.iter()
                .all(|s| s[s.len() - 1 - i] == seqs[0][seqs[0].len() - 1 - i])
        })
        .count();
    if pre == 0 && suf == 0 {
        return Re::Alt(set.into_iter().collect());
    }
    let first = &seqs[0];
    let middle = seqs
        .iter()
        .map(|s| cat(s[pre..s.len() - suf].to_vec()))
        .reduce(alt)
        .unwrap_or(Re::Eps);
    let mut parts = first[..pre].to_vec();
    parts.push(middle);
    parts.extend_from_slice(&first[first.len() - suf..]);
    cat(parts)
}

/// `r*`.
pub fn star(r: Re) -> Re {
    match r {
        Re::Eps => Re::Eps,
        Re::Star(x) => Re::Star(x),
        Re::Alt(v) if v.contains(&Re::Eps) => {
            let rest = v.into_iter().filter(|x| *x != Re::Eps).reduce(alt);
            rest.map_or(Re::Eps, star)
        }
        other => Re::Star(Box::new(other)),
    }
}

/// How a letter is written in a regular expression: `msr sctlr_el2` →
/// `MSR(sctlr_el2)`, `dc civac` → `DC_CIVAC`.
pub fn display_letter(name: &str) -> String {
    match name.split_once(' ') {
        Some((op @ ("msr" | "mrs"), reg)) => format!("{}({reg})", op.to_uppercase()),
        _ => name.to_uppercase().replace(' ', "_"),
    }
}

impl Re {
    fn atomic(&self) -> bool {
        matches!(self, Re::Sym(_) | Re::Eps)
    }

    /// Written with `names` for the letters: sequences separated by
    /// spaces, `(a | b)`, `x*`, `x+`, `x?`.
    pub fn display(&self, names: &[String]) -> String {
        let wrap = |r: &Re| {
            let s = r.display(names);
            if r.atomic() || matches!(r, Re::Alt(_)) {
                s
            } else {
                format!("({s})")
            }
        };
        match self {
            Re::Eps => "ε".into(),
            Re::Sym(l) => names
                .get(*l)
                .map_or_else(|| format!("#{l}"), |n| display_letter(n)),
            Re::Star(x) => format!("{}*", wrap(x)),
            Re::Alt(v) if v.is_empty() => "∅".into(),
            Re::Alt(v) => {
                let others: Vec<&Re> = v.iter().filter(|x| **x != Re::Eps).collect();
                let body = others
                    .iter()
                    .map(|x| x.display(names))
                    .collect::<Vec<_>>()
                    .join(" | ");
                match (v.len() != others.len(), others.as_slice()) {
                    (true, [one]) => format!("{}?", wrap(one)),
                    (true, _) => format!("({body})?"),
                    (false, _) => format!("({body})"),
                }
            }
            Re::Cat(v) => {
                let mut out = Vec::new();
                let mut i = 0;
                while i < v.len() {
                    // `x x*` is `x+`.
                    if let Some(Re::Star(s)) = v.get(i + 1) {
                        if **s == v[i] {
                            out.push(format!("{}+", wrap(&v[i])));
                            i += 2;
                            continue;
                        }
                    }
                    out.push(v[i].display(names));
                    i += 1;
                }
                out.join(" ")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    #[test]
    fn alternatives_are_factored() {
        let r = alt(
            cat(vec![Re::Sym(0), Re::Sym(1), Re::Sym(2)]),
            cat(vec![Re::Sym(0), Re::Sym(2), Re::Sym(2)]),
        );
        assert_eq!(r.display(&names()), "A (B | C) C");
        let r = alt(Re::Eps, Re::Sym(1));
        assert_eq!(r.display(&names()), "B?");
        let r = cat(vec![Re::Sym(0), star(Re::Sym(0))]);
        assert_eq!(r.display(&names()), "A+");
    }

    #[test]
    fn minimisation_merges_equivalent_branches() {
        // NFA: 0 -a-> 1, 0 -a-> 2, 1 -b-> 3, 2 -c-> 3, 3 accepting;
        // plus a dead branch 0 -c-> 4 (4 never accepts).
        let next = |s: usize| match s {
            0 => vec![(0, 1), (0, 2), (2, 4)],
            1 => vec![(1, 3)],
            2 => vec![(2, 3)],
            _ => vec![],
        };
        let d = Dfa::determinise(3, 5, next, |s| s == 3).minimised();
        assert_eq!(d.delta.len(), 3);
        assert_eq!(d.to_regex().display(&names()), "A (B | C)");
        assert_eq!(display_letter("msr sctlr_el2"), "MSR(sctlr_el2)");
        assert_eq!(display_letter("dc civac"), "DC_CIVAC");
    }
}

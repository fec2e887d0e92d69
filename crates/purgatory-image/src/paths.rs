//! The paths of the built purgatory: its control flow from `_start` to the
//! one indirect branch, the `br` into the next kernel.
//!
//! Every instruction reachable from the entry is decoded (`yaxpeax-arm`)
//! and classified: its system-instruction name ([`crate::sysinsn`]), whether
//! it reads or writes memory (the Arm ARM's "Loads and Stores" encoding
//! group, C4.1), and how control leaves it (B, B.cond, CBZ/CBNZ, TBZ/TBNZ,
//! BL, RET, BR). Calls are followed into their callees: the graph is the
//! program with every call site expanded into its own copy of the callee
//! (a node is an address in a calling context), so a path through a
//! function returns to the call site it came from. The purgatory is small,
//! statically linked and not recursive, so the expansion is finite; what
//! this graph cannot follow is refused, naming the address: a recursive
//! call, `BLR` (an indirect call), a second indirect branch, a
//! pointer-authenticated or exception-generating branch (but `HVC` and
//! `SMC`, the PSCI calls, which return to the next instruction), a `RET` out of
//! `_start`, control reaching a word outside the code or in the header.
//!
//! What it does not see: which branches are feasible together (it is path-
//! insensitive: a path may take `el == 2` in one method and `el == 1` in the
//! next), and the exception vectors (entered only by an exception, not by
//! a branch; they park).

use std::collections::{BTreeMap, HashMap};

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{ARMv8, InstDecoder, Opcode, Operand};

use crate::sysinsn::system_instruction_name;
use crate::Error;
use handoff::{HEADER_OFFSET, HEADER_SIZE};

/// Whether an instruction reads or writes memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Neither (data processing, branches, system instructions).
    None,
    /// A load (or a prefetch).
    Load,
    /// A store, or an atomic read-modify-write.
    Store,
}

/// How control leaves an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// To the next instruction.
    Next,
    /// `B`: to the target only.
    Jump(u64),
    /// A conditional branch: to the target or the next instruction.
    Branch(u64),
    /// `BL`: into the callee, back to the next instruction at its `RET`.
    Call(u64),
    /// `RET`.
    Return,
    /// `BR`: the branch out of the purgatory (into the next kernel).
    Exit,
    /// Nowhere (`BRK`, `HLT`, `UDF`).
    Stop,
}

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    /// Address (offset from the image's load address).
    pub addr: u64,
    /// The encoding.
    pub word: u32,
    /// Its system-instruction name ([`system_instruction_name`]), if any.
    pub letter: Option<String>,
    /// Its memory access.
    pub access: Access,
    /// Where control goes next.
    pub flow: Flow,
}

/// The executable bytes of an image and the names of its functions.
#[derive(Debug, Clone, Default)]
pub struct Code {
    /// `(address, bytes)` of each executable section.
    pub sections: Vec<(u64, Vec<u8>)>,
    /// Data inside the code that is never executed (the parameter header).
    pub data: std::ops::Range<u64>,
    /// `(address, name)` of every function and label, sorted by address.
    pub symbols: Vec<(u64, String)>,
}

impl Code {
    /// The executable sections and symbols of the purgatory ELF; the
    /// parameter header is data.
    pub fn from_elf(elf: &[u8]) -> Result<Self, Error> {
        let file = ElfFile64::<object::Endianness>::parse(elf)?;
        let mut code = Code {
            data: HEADER_OFFSET as u64..(HEADER_OFFSET + HEADER_SIZE) as u64,
            ..Code::default()
        };
        for section in file.sections() {
            let SectionFlags::Elf { sh_flags, .. } = section.flags() else {
                continue;
            };
            if sh_flags.contains(object::elf::SHF_EXECINSTR) && section.size() != 0 {
                code.sections
                    .push((section.address(), section.data()?.to_vec()));
            }
        }
        for sym in file.symbols() {
            let name = sym.name().unwrap_or_default();
            let in_code = matches!(sym.section(), object::SymbolSection::Section(i)
                if file.section_by_index(i).is_ok_and(|sec| sec.kind() == object::SectionKind::Text));
            let named = !name.is_empty() && !name.starts_with('$');
            if in_code
                && named
                && matches!(
                    sym.kind(),
                    SymbolKind::Text | SymbolKind::Label | SymbolKind::Unknown
                )
            {
                code.symbols.push((sym.address(), demangle(name)));
            }
        }
        code.symbols.sort();
        Ok(code)
    }

    /// `bytes` at `base`, no symbols (for tests).
    pub fn flat(base: u64, bytes: Vec<u8>) -> Self {
        Code {
            sections: vec![(base, bytes)],
            ..Code::default()
        }
    }

    /// Replaces the instruction at `addr` with `word` (to show a check
    /// fails on a changed binary). `false` if `addr` is not in the code.
    pub fn patch(&mut self, addr: u64, word: u32) -> bool {
        for (base, bytes) in &mut self.sections {
            let off = addr
                .checked_sub(*base)
                .and_then(|o| usize::try_from(o).ok());
            if let Some(w) = off.and_then(|o| bytes.get_mut(o..o.saturating_add(4))) {
                w.copy_from_slice(&word.to_le_bytes());
                return true;
            }
        }
        false
    }

    /// The address of the symbol `name`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols
            .iter()
            .find(|(_, n)| n == name)
            .map(|(a, _)| *a)
    }

    /// `addr` as `function+0xoff (0xaddr)`.
    pub fn describe(&self, addr: u64) -> String {
        // The header's label does not name the entry code after it.
        let names = |a: &u64| *a <= addr && (!self.data.contains(a) || self.data.contains(&addr));
        match self.symbols.iter().rev().find(|(a, _)| names(a)) {
            Some((a, n)) => format!("{addr:#x} ({n}+{:#x})", addr - a),
            None => format!("{addr:#x}"),
        }
    }

    fn word(&self, addr: u64) -> Result<u32, Error> {
        if self.data.contains(&addr) {
            return Err(Error::Invalid(format!(
                "control flow reaches {}, inside the parameter header",
                self.describe(addr)
            )));
        }
        for (base, bytes) in &self.sections {
            let Some(off) = addr.checked_sub(*base) else {
                continue;
            };
            let off = usize::try_from(off).unwrap_or(usize::MAX);
            if let Some(w) = bytes.get(off..off.saturating_add(4)) {
                if addr.is_multiple_of(4) {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(w);
                    return Ok(u32::from_le_bytes(b));
                }
            }
        }
        Err(Error::Invalid(format!(
            "control flow reaches {}, outside the code",
            self.describe(addr)
        )))
    }

    /// Decodes and classifies the instruction at `addr`.
    pub fn insn(&self, addr: u64) -> Result<Insn, Error> {
        let word = self.word(addr)?;
        let bytes = word.to_le_bytes();
        let mut reader = U8Reader::new(&bytes);
        let inst = <InstDecoder as Decoder<ARMv8>>::decode(&InstDecoder::default(), &mut reader)
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot decode the word {word:#010x} at {}: {e}",
                    self.describe(addr)
                ))
            })?;
        let target = || {
            inst.operands.iter().find_map(|o| match o {
                Operand::PCOffset(off) => Some(addr.wrapping_add_signed(*off)),
                _ => None,
            })
        };
        let refuse = |why: &str| {
            Err(Error::Invalid(format!(
                "{}: {why} (`{inst}`): the path check cannot follow it",
                self.describe(addr)
            )))
        };
        let flow =
            match inst.opcode {
                Opcode::B => Flow::Jump(target().unwrap_or(addr)),
                Opcode::Bcc(_)
                | Opcode::BCcc(_)
                | Opcode::CBZ
                | Opcode::CBNZ
                | Opcode::TBZ
                | Opcode::TBNZ => Flow::Branch(target().unwrap_or(addr)),
                Opcode::BL => Flow::Call(target().unwrap_or(addr)),
                Opcode::RET => Flow::Return,
                Opcode::BR => Flow::Exit,
                Opcode::BRK | Opcode::HLT | Opcode::UDF => Flow::Stop,
                // A PSCI call into firmware, which returns to the next
                // instruction (CPU_OFF does not when it succeeds: following
                // its failure path over-approximates).
                Opcode::HVC | Opcode::SMC => Flow::Next,
                Opcode::BLR => return refuse("an indirect call"),
                _ if is_branch_class(word) && !is_system_class(word) => return refuse(
                    "a branch or exception instruction the purgatory is not expected to contain",
                ),
                _ => Flow::Next,
            };
        Ok(Insn {
            addr,
            word,
            letter: system_instruction_name(word, &inst.opcode),
            access: access(word, &inst.opcode),
            flow,
        })
    }
}

/// Arm ARM C4.1: op0 (bits 28:25) = 101x, "Branches, Exception Generating
/// and System instructions".
fn is_branch_class(word: u32) -> bool {
    (word >> 26) & 0b111 == 0b101
}

/// Arm ARM C4.1.66: bits 31:22 = 0b1101010100, "System instructions".
fn is_system_class(word: u32) -> bool {
    word >> 22 == 0b11_0101_0100
}

/// Read-modify-write atomics (FEAT_LSE) are stores as well as loads.
const ATOMIC_PREFIXES: &[&str] = &[
    "LDADD", "LDCLR", "LDEOR", "LDSET", "LDSMAX", "LDSMIN", "LDUMAX", "LDUMIN",
];

/// The memory access of `word`: Arm ARM C4.1, op0 (bits 28:25) = x1x0 is
/// "Loads and Stores"; within it, loads and prefetches only read.
fn access(word: u32, opcode: &Opcode) -> Access {
    if (word >> 25) & 0b0101 != 0b0100 {
        // `DC ZVA` writes zeros: a store, though a system instruction.
        if is_system_class(word)
            && system_instruction_name(word, opcode).as_deref() == Some("dc zva")
        {
            return Access::Store;
        }
        return Access::None;
    }
    let name = format!("{opcode:?}");
    let load = name.starts_with("PRF")
        || (name.starts_with("LD") && !ATOMIC_PREFIXES.iter().any(|p| name.starts_with(p)));
    if load {
        Access::Load
    } else {
        Access::Store
    }
}

/// A Rust (legacy mangling) symbol as a path: `_ZN7handoff7handoff17h…E`
/// → `handoff::handoff`; other names unchanged.
pub fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else {
        return name.to_owned();
    };
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0) {
        let Ok(len) = rest[..digits].parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits..digits + len) else {
            break;
        };
        rest = &rest[digits + len..];
        let is_hash = part.len() == 17
            && part.starts_with('h')
            && part[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !is_hash {
            // A component that starts with `$` is written with a leading `_`.
            let part = part
                .strip_prefix("_$")
                .map_or(part.to_owned(), |p| format!("${p}"));
            parts.push(
                part.replace("$LT$", "<")
                    .replace("$GT$", ">")
                    .replace("$u20$", " ")
                    .replace("$C$", ",")
                    .replace("..", "::"),
            );
        }
    }
    if parts.is_empty() {
        name.to_owned()
    } else {
        parts.join("::")
    }
}

/// A node of the expanded graph: an instruction in a calling context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The instruction's address.
    pub addr: u64,
    /// Index into [`Paths::contexts`] (0: `_start`'s own code).
    pub ctx: usize,
}

/// A calling context: the call that entered a function copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The caller's context.
    pub parent: usize,
    /// The `BL`'s address.
    pub call_site: u64,
    /// The callee's address.
    pub callee: u64,
}

/// Most nodes the expansion may create before it is refused.
const MAX_NODES: usize = 1 << 21;

/// The expanded control-flow graph of the purgatory from its entry.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The image's code and symbols.
    pub code: Code,
    /// Every instruction reached, by address.
    pub insns: BTreeMap<u64, Insn>,
    /// Calling contexts; 0 is the entry's.
    pub contexts: Vec<Context>,
    /// The nodes; node 0 is the entry.
    pub nodes: Vec<Node>,
    /// Successors of each node.
    pub succ: Vec<Vec<usize>>,
    /// Predecessors of each node.
    pub pred: Vec<Vec<usize>>,
    /// The nodes of the one `BR` (one per calling context it is reached
    /// in), or of each `WFE` ([`Ending::Park`]).
    pub exits: Vec<usize>,
    /// Whether the node lies on a path from the entry to an exit.
    pub live: Vec<bool>,
}

/// Where the paths from an entry end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// At the one `br`, into the next kernel (the boot CPU, from `_start`).
    Branch,
    /// At a `wfe`, parked (a secondary CPU, from
    /// `purgatory_secondary_entry`, after its `CPU_OFF`); a `br` reachable
    /// from there is refused: only the boot CPU enters the kernel.
    Park,
}

/// `WFE` (a hint: Flow::Next).
const WFE: u32 = 0xd503_205f;

impl Paths {
    /// The paths of the purgatory ELF from `purgatory_secondary_entry`, the
    /// secondary CPUs' entry, to each `wfe` ([`Ending::Park`]).
    pub fn secondary_from_elf(elf: &[u8]) -> Result<Self, Error> {
        let code = Code::from_elf(elf)?;
        let start = code.symbol("purgatory_secondary_entry").ok_or_else(|| {
            Error::Invalid("no `purgatory_secondary_entry` symbol in the purgatory ELF".into())
        })?;
        Self::build_ending(code, start, Ending::Park)
    }

    /// The paths of the purgatory ELF from `_start`.
    pub fn from_elf(elf: &[u8]) -> Result<Self, Error> {
        Self::from_code(Code::from_elf(elf)?)
    }

    /// The paths of `code` from its `_start` symbol.
    pub fn from_code(code: Code) -> Result<Self, Error> {
        let start = code
            .symbol("_start")
            .ok_or_else(|| Error::Invalid("no `_start` symbol in the purgatory ELF".into()))?;
        Self::build(code, start)
    }

    /// The paths of `code` from `entry` to its `br`.
    pub fn build(code: Code, entry: u64) -> Result<Self, Error> {
        Self::build_ending(code, entry, Ending::Branch)
    }

    /// The paths of `code` from `entry`, ending as `ending` says.
    pub fn build_ending(code: Code, entry: u64, ending: Ending) -> Result<Self, Error> {
        let mut p = Paths {
            code,
            insns: BTreeMap::new(),
            contexts: vec![Context {
                parent: 0,
                call_site: 0,
                callee: entry,
            }],
            nodes: Vec::new(),
            succ: Vec::new(),
            pred: Vec::new(),
            exits: Vec::new(),
            live: Vec::new(),
        };
        let mut index: HashMap<(u64, usize), usize> = HashMap::new();
        let mut ctx_index: HashMap<(usize, u64), usize> = HashMap::new();
        let mut todo = vec![p.node(&mut index, entry, 0)];
        while let Some(n) = todo.pop() {
            let Node { addr, ctx } = p.nodes[n];
            let insn = match p.insns.get(&addr) {
                Some(i) => i.clone(),
                None => {
                    let i = p.code.insn(addr)?;
                    p.insns.insert(addr, i.clone());
                    i
                }
            };
            let mut next = Vec::new();
            match insn.flow {
                Flow::Next if ending == Ending::Park && insn.word == WFE => p.exits.push(n),
                Flow::Next => next.push((addr + 4, ctx)),
                Flow::Jump(t) => next.push((t, ctx)),
                Flow::Branch(t) => next.extend([(t, ctx), (addr + 4, ctx)]),
                Flow::Call(t) => {
                    let c = p.enter(&mut ctx_index, ctx, addr, t)?;
                    next.push((t, c));
                }
                Flow::Return => {
                    if ctx == 0 {
                        return Err(Error::Invalid(format!(
                            "{}: `ret` out of the entry code",
                            p.code.describe(addr)
                        )));
                    }
                    let c = p.contexts[ctx];
                    next.push((c.call_site + 4, c.parent));
                }
                Flow::Exit if ending == Ending::Park => {
                    return Err(Error::Invalid(format!(
                        "{}: a `br` reachable from a secondary CPU's entry: only the boot CPU \
                         enters the kernel",
                        p.code.describe(addr)
                    )))
                }
                Flow::Exit => p.exits.push(n),
                Flow::Stop => {}
            }
            for (a, c) in next {
                let before = p.nodes.len();
                let m = p.node(&mut index, a, c);
                if p.nodes.len() > MAX_NODES {
                    return Err(Error::Invalid(format!(
                        "more than {MAX_NODES} instruction copies: the call graph is too large to expand"
                    )));
                }
                if p.nodes.len() > before {
                    todo.push(m);
                }
                p.succ[n].push(m);
                p.pred[m].push(n);
            }
        }
        let mut exit_addrs: Vec<u64> = p.exits.iter().map(|&n| p.nodes[n].addr).collect();
        exit_addrs.sort_unstable();
        exit_addrs.dedup();
        match exit_addrs.as_slice() {
            [] if ending == Ending::Park => {
                return Err(Error::Invalid(
                    "no `wfe` reachable from the secondary entry: how does the CPU stop?".into(),
                ))
            }
            _ if ending == Ending::Park => {}
            [_] => {}
            [] => {
                return Err(Error::Invalid(
                    "no `br` reachable from the entry: where does the purgatory enter the kernel?"
                        .into(),
                ))
            }
            many => {
                let all: Vec<String> = many.iter().map(|&a| p.code.describe(a)).collect();
                return Err(Error::Invalid(format!(
                    "more than one indirect branch reachable from the entry ({}): only the \
                     branch into the kernel is expected",
                    all.join(", ")
                )));
            }
        }
        p.live = p.coreachable();
        Ok(p)
    }

    fn node(&mut self, index: &mut HashMap<(u64, usize), usize>, addr: u64, ctx: usize) -> usize {
        *index.entry((addr, ctx)).or_insert_with(|| {
            self.nodes.push(Node { addr, ctx });
            self.succ.push(Vec::new());
            self.pred.push(Vec::new());
            self.nodes.len() - 1
        })
    }

    /// The context of a call from `ctx` at `site` to `callee`.
    fn enter(
        &mut self,
        ctx_index: &mut HashMap<(usize, u64), usize>,
        ctx: usize,
        site: u64,
        callee: u64,
    ) -> Result<usize, Error> {
        if let Some(&c) = ctx_index.get(&(ctx, site)) {
            return Ok(c);
        }
        let mut c = ctx;
        loop {
            if self.contexts[c].callee == callee {
                return Err(Error::Invalid(format!(
                    "{}: recursive call of {}: the path check expands calls and cannot",
                    self.code.describe(site),
                    self.code.describe(callee)
                )));
            }
            if c == 0 {
                break;
            }
            c = self.contexts[c].parent;
        }
        self.contexts.push(Context {
            parent: ctx,
            call_site: site,
            callee,
        });
        let id = self.contexts.len() - 1;
        ctx_index.insert((ctx, site), id);
        Ok(id)
    }

    /// Nodes from which an exit is reachable.
    fn coreachable(&self) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        let mut todo = self.exits.clone();
        for &e in &self.exits {
            live[e] = true;
        }
        while let Some(n) = todo.pop() {
            for &m in &self.pred[n] {
                if !live[m] {
                    live[m] = true;
                    todo.push(m);
                }
            }
        }
        live
    }

    /// The instruction of node `n`.
    pub fn insn(&self, n: usize) -> &Insn {
        &self.insns[&self.nodes[n].addr]
    }

    /// The system-instruction name of node `n`, if it is one.
    pub fn letter(&self, n: usize) -> Option<&str> {
        self.insn(n).letter.as_deref()
    }

    /// Node `n` as `address (function+off)`, with its call chain.
    pub fn describe(&self, n: usize) -> String {
        let Node { addr, mut ctx } = self.nodes[n];
        let mut s = self.code.describe(addr);
        while ctx != 0 {
            let c = self.contexts[ctx];
            s.push_str(&format!(" called from {}", self.code.describe(c.call_site)));
            ctx = c.parent;
        }
        s
    }
}

#[cfg(test)]
#[path = "paths_tests.rs"]
mod tests;

//! The system instructions of the built purgatory, read from its machine
//! code: the link between the cache model (which runs the generic
//! `handoff` sequence through the `Machine` trait) and the bytes that run.
//!
//! Every word of the executable sections (the parameter header excepted)
//! is decoded with `yaxpeax-arm`; a word it cannot decode is an error.
//! Instructions of the System class (Arm ARM C4.1.66: `MSR`/`MRS`, `SYS`
//! aliases `DC`/`IC`/`TLBI`, barriers) are named from their encoding
//! fields (op0, op1, CRn, CRm, op2; Arm ARM C5.2) and checked:
//!
//! - each one is in [`KNOWN`], which says whether the model performs it (a
//!   `handoff::Machine` method) or why it lies outside the model (entry and
//!   vector code, ID registers). A new system instruction fails the build of
//!   `kexec` until it is modelled or justified;
//! - every `MSR SCTLR_ELx` has an `ISB` immediately before it (Qualcomm
//!   Falkor erratum E1041; Linux `pre_disable_mmu_workaround`) and
//!   immediately after it (the write takes effect before the next
//!   instruction).
//!
//! It reads the code in address order. The order along each path is
//! checked by [`crate::sequences`] (what lies between the instructions of
//! a maintenance sequence) and, against the model's runs, by the path check
//! ([`crate::paths`], [`crate::lang`]; `crates/kexec/tests/model_link.rs`).

use std::collections::BTreeMap;

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, SectionFlags};
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{ARMv8, InstDecoder, Opcode};

use crate::Error;
use handoff::{HEADER_OFFSET, HEADER_SIZE};

/// A system instruction found in the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInstruction {
    /// Address (offset from the image's load address).
    pub addr: u64,
    /// Its name, lower case: `isb`, `dsb sy`, `dc civac`, `msr sctlr_el2`,
    /// `mrs ctr_el0`, `msr daifset`, … (unnamed encodings as
    /// `sys op1,Cn,Cm,op2` / `msr s3_op1_cn_cm_op2`).
    pub name: String,
}

/// What happened to each system instruction the purgatory may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Performed by the model: the `handoff::Machine` method that issues it.
    Modelled(&'static str),
    /// Outside the model, and why that is sound.
    Outside(&'static str),
}

/// Every system instruction the purgatory may contain, with its role.
pub const KNOWN: &[(&str, Role)] = &[
    ("isb", Role::Modelled("isb, set_sctlr_synchronized")),
    ("dsb sy", Role::Modelled("dsb_sy")),
    ("dsb ish", Role::Modelled("dsb_ish")),
    ("dmb sy", Role::Modelled("dmb_sy")),
    ("dc cvac", Role::Modelled("dc_cvac")),
    ("dc civac", Role::Modelled("dc_civac")),
    ("dc ivac", Role::Modelled("dc_ivac")),
    ("dc cvau", Role::Modelled("dc_cvau")),
    ("ic ivau", Role::Modelled("ic_ivau")),
    ("ic iallu", Role::Modelled("ic_iallu")),
    ("tlbi vmalle1", Role::Modelled("tlb_invalidate_all (EL1)")),
    ("tlbi alle2", Role::Modelled("tlb_invalidate_all (EL2)")),
    (
        "msr sctlr_el1",
        Role::Modelled("set_sctlr_synchronized (EL1)"),
    ),
    (
        "msr sctlr_el2",
        Role::Modelled("set_sctlr_synchronized (EL2)"),
    ),
    ("mrs sctlr_el1", Role::Modelled("sctlr (EL1)")),
    ("mrs sctlr_el2", Role::Modelled("sctlr (EL2)")),
    ("msr mair_el1", Role::Modelled("set_translation (EL1)")),
    ("msr mair_el2", Role::Modelled("set_translation (EL2)")),
    ("msr tcr_el1", Role::Modelled("set_translation (EL1)")),
    ("msr tcr_el2", Role::Modelled("set_translation (EL2)")),
    ("msr ttbr0_el1", Role::Modelled("set_translation (EL1)")),
    ("msr ttbr0_el2", Role::Modelled("set_translation (EL2)")),
    ("mrs ctr_el0", Role::Modelled("ctr_el0")),
    ("mrs id_aa64isar0_el1", Role::Modelled("id_aa64isar0_el1")),
    ("mrs id_aa64mmfr0_el1", Role::Modelled("id_aa64mmfr0_el1")),
    (
        "mrs currentel",
        Role::Modelled("current_el; also the entry and vector code's EL test"),
    ),
    (
        "mrs hcr_el2",
        Role::Modelled("regime (E2H); also the entry code's FP enable"),
    ),
    (
        "msr daifset",
        Role::Outside(
            "entry: masks interrupts (already masked by the old kernel); no memory effect \
             (in the model's trace as entry code: cachesim's SysTrace::entry_code)",
        ),
    ),
    (
        "mrs cptr_el2",
        Role::Outside("entry: FP/SIMD enable at EL2, before any memory access of the handoff"),
    ),
    (
        "msr cptr_el2",
        Role::Outside("entry: FP/SIMD enable at EL2, before any memory access of the handoff"),
    ),
    (
        "mrs cpacr_el1",
        Role::Outside("entry: FP/SIMD enable at EL1 (or EL2 with E2H), as above"),
    ),
    (
        "msr cpacr_el1",
        Role::Outside("entry: FP/SIMD enable at EL1 (or EL2 with E2H), as above"),
    ),
    (
        "msr vbar_el1",
        Role::Outside("entry: our exception vectors; taken only on a fault, which parks"),
    ),
    ("msr vbar_el2", Role::Outside("entry: as vbar_el1")),
    (
        "mrs esr_el1",
        Role::Outside("vectors: the syndrome printed before parking"),
    ),
    ("mrs esr_el2", Role::Outside("vectors: as esr_el1")),
    ("mrs elr_el1", Role::Outside("vectors: as esr_el1")),
    ("mrs elr_el2", Role::Outside("vectors: as esr_el1")),
    ("mrs far_el1", Role::Outside("vectors: as esr_el1")),
    ("mrs far_el2", Role::Outside("vectors: as esr_el1")),
    (
        "mrs cntvct_el0",
        Role::Modelled("now_ns (the timer for the console's timing line)"),
    ),
    ("mrs cntfrq_el0", Role::Modelled("now_ns")),
    (
        "mrs mpidr_el1",
        Role::Modelled("mpidr (the boot CPU does not start itself)"),
    ),
    ("hvc #0", Role::Modelled("psci (the HVC conduit, at EL1)")),
    ("smc #0", Role::Modelled("psci (the SMC conduit)")),
    (
        "brk #1",
        Role::Outside(
            "never executed: the compiler's trap after an `asm!(.., noreturn)` (the branch \
             into the kernel); were it reached, our vectors would print it and park",
        ),
    ),
    (
        "msr tpidr_el1",
        Role::Outside(
            "entry: this CPU's stack top, for the exception vectors; a register no code \
             of the handoff reads, no memory effect (in the model's trace as entry code: \
             cachesim's SysTrace::entry_code)",
        ),
    ),
    ("msr tpidr_el2", Role::Outside("entry: as tpidr_el1")),
    (
        "mrs tpidr_el1",
        Role::Outside("vectors: the stack to print the syndrome on before parking"),
    ),
    ("mrs tpidr_el2", Role::Outside("vectors: as tpidr_el1")),
];

/// `(op0, op1, CRn, CRm, op2)` of a system register.
type RegisterEncoding = (u32, u32, u32, u32, u32);
/// `(op1, CRn, CRm, op2)` of a `SYS` alias (op0 = 1).
type SysEncoding = (u32, u32, u32, u32);

/// `(op0, op1, CRn, CRm, op2)` of the system registers above (Arm ARM,
/// chapter D19 / the register descriptions' "Accessing" sections).
const REGISTERS: &[(RegisterEncoding, &str)] = &[
    ((3, 0, 1, 0, 0), "sctlr_el1"),
    ((3, 4, 1, 0, 0), "sctlr_el2"),
    ((3, 0, 10, 2, 0), "mair_el1"),
    ((3, 4, 10, 2, 0), "mair_el2"),
    ((3, 0, 2, 0, 2), "tcr_el1"),
    ((3, 4, 2, 0, 2), "tcr_el2"),
    ((3, 0, 2, 0, 0), "ttbr0_el1"),
    ((3, 4, 2, 0, 0), "ttbr0_el2"),
    ((3, 3, 0, 0, 1), "ctr_el0"),
    ((3, 0, 0, 6, 0), "id_aa64isar0_el1"),
    ((3, 0, 0, 7, 0), "id_aa64mmfr0_el1"),
    ((3, 0, 4, 2, 2), "currentel"),
    ((3, 4, 1, 1, 0), "hcr_el2"),
    ((3, 4, 1, 1, 2), "cptr_el2"),
    ((3, 0, 1, 0, 2), "cpacr_el1"),
    ((3, 0, 12, 0, 0), "vbar_el1"),
    ((3, 4, 12, 0, 0), "vbar_el2"),
    ((3, 0, 5, 2, 0), "esr_el1"),
    ((3, 4, 5, 2, 0), "esr_el2"),
    ((3, 0, 4, 0, 1), "elr_el1"),
    ((3, 4, 4, 0, 1), "elr_el2"),
    ((3, 0, 6, 0, 0), "far_el1"),
    ((3, 4, 6, 0, 0), "far_el2"),
    ((3, 3, 14, 0, 2), "cntvct_el0"),
    ((3, 3, 14, 0, 0), "cntfrq_el0"),
    ((3, 0, 0, 0, 5), "mpidr_el1"),
    ((3, 0, 13, 0, 4), "tpidr_el1"),
    ((3, 4, 13, 0, 2), "tpidr_el2"),
];

/// `(op1, CRn, CRm, op2)` of the `SYS` aliases (op0 = 1; Arm ARM C5.3).
const SYS_ALIASES: &[(SysEncoding, &str)] = &[
    ((3, 7, 10, 1), "dc cvac"),
    ((3, 7, 14, 1), "dc civac"),
    ((0, 7, 6, 1), "dc ivac"),
    ((3, 7, 11, 1), "dc cvau"),
    ((3, 7, 4, 1), "dc zva"),
    ((0, 7, 6, 2), "dc isw"),
    ((0, 7, 10, 2), "dc csw"),
    ((0, 7, 14, 2), "dc cisw"),
    ((3, 7, 5, 1), "ic ivau"),
    ((0, 7, 5, 0), "ic iallu"),
    ((0, 7, 1, 0), "ic ialluis"),
    ((0, 8, 7, 0), "tlbi vmalle1"),
    ((0, 8, 3, 0), "tlbi vmalle1is"),
    ((4, 8, 7, 0), "tlbi alle2"),
    ((4, 8, 3, 0), "tlbi alle2is"),
];

/// Barrier option names by CRm (Arm ARM C6.2: DMB/DSB `<option>`).
fn barrier_option(crm: u32) -> String {
    match crm {
        15 => "sy".into(),
        14 => "st".into(),
        13 => "ld".into(),
        11 => "ish".into(),
        10 => "ishst".into(),
        9 => "ishld".into(),
        7 => "nsh".into(),
        3 => "osh".into(),
        _ => format!("#{crm}"),
    }
}

/// Names an exception-generating instruction (`svc`, `hvc`, `smc`, `brk`,
/// `hlt`, … with its immediate): they leave the purgatory's code for
/// firmware or a handler, so they are checked like system instructions
/// (the Arm ARM's "Exception generation" encoding class: bits [31:24] =
/// 0xd4, opc = [23:21], imm16 = [20:5], LL = [1:0]; the test encodings
/// are `llvm-mc --show-encoding`'s).
fn exception_generating_name(word: u32) -> Option<String> {
    if word >> 24 != 0xd4 {
        return None;
    }
    let (opc, imm, ll) = ((word >> 21) & 7, (word >> 5) & 0xffff, word & 3);
    let name = match (opc, ll) {
        (0, 1) => "svc",
        (0, 2) => "hvc",
        (0, 3) => "smc",
        (1, 0) => "brk",
        (2, 0) => "hlt",
        (5, 1) => "dcps1",
        (5, 2) => "dcps2",
        (5, 3) => "dcps3",
        _ => "exception",
    };
    Some(format!("{name} #{imm}"))
}

/// Names the System-class instruction `word`, or `None` for any other
/// instruction (Arm ARM C4.1.66, "System instructions": bits `[31:22]` =
/// 0b1101010100; L = bit 21, op0 = `[20:19]`, op1 = `[18:16]`, CRn =
/// `[15:12]`, CRm = `[11:8]`, op2 = `[7:5]`, Rt = `[4:0]`).
pub fn system_instruction_name(word: u32, opcode: &Opcode) -> Option<String> {
    if let Some(name) = exception_generating_name(word) {
        return Some(name);
    }
    if word >> 22 != 0b11_0101_0100 {
        return None;
    }
    let field = |shift: u32, bits: u32| (word >> shift) & ((1 << bits) - 1);
    let (l, op0, op1, crn, crm, op2) = (
        field(21, 1),
        field(19, 2),
        field(16, 3),
        field(12, 4),
        field(8, 4),
        field(5, 3),
    );
    Some(match opcode {
        Opcode::ISB => "isb".into(),
        Opcode::DSB(_) => format!("dsb {}", barrier_option(crm)),
        Opcode::DMB(_) => format!("dmb {}", barrier_option(crm)),
        Opcode::SYS(_) => SYS_ALIASES
            .iter()
            .find(|(k, _)| *k == (op1, crn, crm, op2))
            .map_or_else(
                || format!("sys {op1},c{crn},c{crm},{op2}"),
                |(_, n)| (*n).to_owned(),
            ),
        Opcode::MSR | Opcode::MRS if op0 >= 2 => {
            let reg = REGISTERS
                .iter()
                .find(|(k, _)| *k == (op0, op1, crn, crm, op2))
                .map_or_else(
                    || format!("s{op0}_{op1}_c{crn}_c{crm}_{op2}"),
                    |(_, n)| (*n).to_owned(),
                );
            format!("{} {reg}", if l == 1 { "mrs" } else { "msr" })
        }
        // MSR (immediate): op0 = 0, CRn = 4; DAIFSet is op1 = 3, op2 = 6.
        Opcode::MSR if (op1, crn, op2) == (3, 4, 6) => "msr daifset".into(),
        Opcode::MSR if (op1, crn, op2) == (3, 4, 7) => "msr daifclr".into(),
        // Hints (NOP, WFE, …) and the rest of the class carry no ordering
        // or maintenance meaning for the model.
        Opcode::HINT => return None,
        other => format!("{other:?}").to_lowercase(),
    })
}

/// The system instructions of `code`, which starts at address `base`;
/// words in `skip` (the parameter header, which is data) are not decoded.
pub fn system_instructions_in(
    code: &[u8],
    base: u64,
    skip: std::ops::Range<u64>,
) -> Result<Vec<SystemInstruction>, Error> {
    let decoder = InstDecoder::default();
    let mut out = Vec::new();
    for (i, chunk) in code.chunks(4).enumerate() {
        let addr = base + 4 * i as u64;
        if skip.contains(&addr) {
            continue;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(chunk) else {
            return Err(Error::Invalid(format!(
                "code ends with a partial word at {addr:#x}"
            )));
        };
        let word = u32::from_le_bytes(bytes);
        let mut reader = U8Reader::new(chunk);
        let inst = <InstDecoder as Decoder<ARMv8>>::decode(&decoder, &mut reader).map_err(|e| {
            Error::Invalid(format!(
                "cannot decode the word {word:#010x} at {addr:#x}: {e}"
            ))
        })?;
        if let Some(name) = system_instruction_name(word, &inst.opcode) {
            out.push(SystemInstruction { addr, name });
        }
    }
    Ok(out)
}

/// The system instructions of every executable section of the purgatory
/// ELF, in address order.
pub fn system_instructions(elf: &[u8]) -> Result<Vec<SystemInstruction>, Error> {
    let file = ElfFile64::<object::Endianness>::parse(elf)?;
    let header = HEADER_OFFSET as u64..(HEADER_OFFSET + HEADER_SIZE) as u64;
    let mut out = Vec::new();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags, .. } = section.flags() else {
            continue;
        };
        if !sh_flags.contains(object::elf::SHF_EXECINSTR) || section.size() == 0 {
            continue;
        }
        let data = section.data()?;
        out.extend(system_instructions_in(
            data,
            section.address(),
            header.clone(),
        )?);
    }
    out.sort_by_key(|s| s.addr);
    Ok(out)
}

/// Checks `insns` (in address order): every one is [`KNOWN`], and every
/// `msr sctlr_el*` sits between two `isb`s. Returns how many of each there
/// are.
pub fn check(insns: &[SystemInstruction]) -> Result<BTreeMap<String, usize>, Error> {
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for (i, s) in insns.iter().enumerate() {
        *counts.entry(s.name.clone()).or_insert(0) += 1;
        if !KNOWN.iter().any(|(n, _)| *n == s.name) {
            problems.push(format!(
                "{:#x}: `{}` is not a system instruction the cache model knows: model it \
                 (a handoff::Machine method) or add it to purgatory_image::sysinsn::KNOWN \
                 with the reason it lies outside the model",
                s.addr, s.name
            ));
        }
        if s.name.starts_with("msr sctlr_el") {
            let adjacent = |j: Option<usize>, addr: u64| {
                j.and_then(|j| insns.get(j))
                    .is_some_and(|p| p.name == "isb" && p.addr == addr)
            };
            if !adjacent(i.checked_sub(1), s.addr.wrapping_sub(4)) {
                problems.push(format!(
                    "{:#x}: `{}` without an `isb` immediately before it (Falkor erratum \
                     E1041: handoff::Machine::set_sctlr_synchronized)",
                    s.addr, s.name
                ));
            }
            if !adjacent(i.checked_add(1), s.addr + 4) {
                problems.push(format!(
                    "{:#x}: `{}` without an `isb` immediately after it",
                    s.addr, s.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(Error::Invalid(format!(
            "system instructions:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// [`check`] of the system instructions of the purgatory ELF.
pub fn check_system_instructions(elf: &[u8]) -> Result<BTreeMap<String, usize>, Error> {
    check(&system_instructions(elf)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodings as GNU as / llvm-mc assemble them.
    const ISB: u32 = 0xd503_3fdf;
    const NOP: u32 = 0xd503_201f;
    const MSR_SCTLR_EL2_X0: u32 = 0xd51c_1000;
    const MSR_SCTLR_EL1_X3: u32 = 0xd518_1003;
    const LDR_X1_SP: u32 = 0xf940_03e1;

    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn names(words: &[u32]) -> Vec<String> {
        system_instructions_in(&code(words), 0x1000, 0..0)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn names_follow_the_encodings() {
        let cases: &[(u32, &str)] = &[
            (ISB, "isb"),
            (0xd503_3f9f, "dsb sy"),
            (0xd503_3b9f, "dsb ish"),
            (0xd503_3fbf, "dmb sy"),
            (0xd50b_7e20, "dc civac"),
            (0xd50b_7a20, "dc cvac"),
            (0xd508_7620, "dc ivac"),
            (0xd50b_7b20, "dc cvau"),
            (0xd50b_7520, "ic ivau"),
            (0xd508_751f, "ic iallu"),
            (0xd508_871f, "tlbi vmalle1"),
            (0xd50c_871f, "tlbi alle2"),
            (MSR_SCTLR_EL2_X0, "msr sctlr_el2"),
            (MSR_SCTLR_EL1_X3, "msr sctlr_el1"),
            (0xd53c_1000, "mrs sctlr_el2"),
            (0xd53b_0020, "mrs ctr_el0"),
            (0xd538_4240, "mrs currentel"),
            (0xd51c_a200, "msr mair_el2"),
            (0xd51c_2040, "msr tcr_el2"),
            (0xd51c_2000, "msr ttbr0_el2"),
            (0xd503_4fdf, "msr daifset"),
            (0xd53b_e040, "mrs cntvct_el0"),
            (0xd50b_7420, "dc zva"),
            (0xd400_0002, "hvc #0"),
            (0xd400_0003, "smc #0"),
            (0xd400_0001, "svc #0"),
            (0xd420_0020, "brk #1"),
            (0xd440_0000, "hlt #0"),
            (0xd400_0043, "smc #2"),
            (0xd538_00a0, "mrs mpidr_el1"),
            (0xd518_d080, "msr tpidr_el1"),
            (0xd51c_d040, "msr tpidr_el2"),
        ];
        for &(w, want) in cases {
            assert_eq!(names(&[w]), [want], "{w:#010x}");
        }
        assert!(names(&[NOP, LDR_X1_SP]).is_empty());
    }

    #[test]
    fn sctlr_write_between_two_isbs_passes() {
        let insns = system_instructions_in(
            &code(&[NOP, ISB, MSR_SCTLR_EL2_X0, ISB, ISB, MSR_SCTLR_EL1_X3, ISB]),
            0,
            0..0,
        )
        .unwrap();
        let counts = check(&insns).unwrap();
        assert_eq!(counts["isb"], 4);
    }

    #[test]
    fn anything_between_isb_and_sctlr_write_fails() {
        for words in [
            &[ISB, NOP, MSR_SCTLR_EL2_X0, ISB][..],
            &[ISB, LDR_X1_SP, MSR_SCTLR_EL1_X3, ISB],
            &[MSR_SCTLR_EL2_X0, ISB],
        ] {
            let insns = system_instructions_in(&code(words), 0, 0..0).unwrap();
            let err = check(&insns).unwrap_err().to_string();
            assert!(err.contains("E1041"), "{err}");
        }
        let insns = system_instructions_in(&code(&[ISB, MSR_SCTLR_EL2_X0, NOP]), 0, 0..0).unwrap();
        let err = check(&insns).unwrap_err().to_string();
        assert!(err.contains("immediately after"), "{err}");
    }

    #[test]
    fn an_unknown_system_or_exception_instruction_fails() {
        // DC ZVA: a store the model's purgatory never performs; SVC: a call
        // into a kernel that is gone.
        for (word, name) in [(0xd50b_7420, "dc zva"), (0xd400_0001, "svc #0")] {
            let insns = system_instructions_in(&code(&[word]), 0, 0..0).unwrap();
            let err = check(&insns).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{name}` is not a system instruction")),
                "{err}"
            );
        }
    }

    #[test]
    fn skipped_words_are_not_decoded() {
        let words = [ISB, 0xd50b_7420, ISB];
        let got = system_instructions_in(&code(&words), 0, 4..8).unwrap();
        assert_eq!(got.len(), 2);
    }
}

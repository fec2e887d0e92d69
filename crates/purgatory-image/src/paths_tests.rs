//! Tests of the path expansion (`paths.rs`).
use super::*;

pub(crate) fn code(words: &[u32]) -> Code {
    Code::flat(0, words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

const NOP: u32 = 0xd503_201f;
const BR_X8: u32 = 0xd61f_0100;
const BLR_X8: u32 = 0xd63f_0100;
const RET: u32 = 0xd65f_03c0;
const STR_X1_SP: u32 = 0xf900_03e1;
const LDR_X1_SP: u32 = 0xf940_03e1;
const STP_X29_X30: u32 = 0xa9bf_7bfd;

/// `BL` from `from` to `to` (imm26 words).
fn bl(from: u32, to: u32) -> u32 {
    0x9400_0000 | ((to.wrapping_sub(from) / 4) & 0x03ff_ffff)
}

/// `CBZ x0` from `from` to `to` (imm19 words).
fn cbz(from: u32, to: u32) -> u32 {
    0xb400_0000 | (((to.wrapping_sub(from) / 4) & 0x7_ffff) << 5)
}

#[test]
fn calls_are_expanded_per_call_site() {
    // 0: bl 16; 4: bl 16; 8: br x8; 12: nop; 16: nop; 20: ret
    let p = Paths::build(code(&[bl(0, 16), bl(4, 16), BR_X8, NOP, NOP, RET]), 0).unwrap();
    // The callee's two instructions exist once per call site.
    let copies = p.nodes.iter().filter(|n| n.addr == 16).count();
    assert_eq!(copies, 2);
    assert_eq!(p.exits.len(), 1);
    assert!(p.live.iter().all(|&l| l), "every node leads to the br");
    // The word at 12 is never reached.
    assert!(!p.insns.contains_key(&12));
}

#[test]
fn an_indirect_call_is_refused_with_its_address() {
    let err = Paths::build(code(&[NOP, BLR_X8, BR_X8]), 0).unwrap_err();
    assert!(
        err.to_string().contains("0x4") && err.to_string().contains("indirect call"),
        "{err}"
    );
}

#[test]
fn recursion_and_a_second_br_are_refused() {
    let err = Paths::build(code(&[bl(0, 4), bl(4, 4), BR_X8]), 0).unwrap_err();
    assert!(err.to_string().contains("recursive"), "{err}");
    let err = Paths::build(code(&[cbz(0, 8), BR_X8, BR_X8]), 0).unwrap_err();
    assert!(
        err.to_string().contains("more than one indirect branch"),
        "{err}"
    );
    let err = Paths::build(code(&[NOP, RET]), 0).unwrap_err();
    assert!(err.to_string().contains("ret"), "{err}");
    let err = Paths::build(code(&[NOP, NOP]), 0).unwrap_err();
    assert!(err.to_string().contains("outside the code"), "{err}");
}

#[test]
fn a_parking_entry_ends_at_each_wfe_and_refuses_a_br() {
    // 0: cbz -> 12; 4: wfe; 8: b 4; 12: bl 20; 16: wfe; 20: ret
    let words = [cbz(0, 12), WFE, 0x17ff_ffff, bl(12, 20), WFE, RET];
    let p = Paths::build_ending(code(&words), 0, Ending::Park).unwrap();
    let mut exits: Vec<u64> = p.exits.iter().map(|&n| p.nodes[n].addr).collect();
    exits.sort_unstable();
    assert_eq!(exits, [4, 16]);
    // The loop after the first wfe is not followed.
    assert!(!p.insns.contains_key(&8));
    let err = Paths::build_ending(code(&[cbz(0, 8), WFE, BR_X8]), 0, Ending::Park).unwrap_err();
    assert!(err.to_string().contains("only the boot CPU"), "{err}");
    let err = Paths::build_ending(code(&[NOP, RET]), 0, Ending::Park).unwrap_err();
    assert!(err.to_string().contains("ret"), "{err}");
    // No wfe at all.
    let err = Paths::build_ending(code(&[0x1400_0000]), 0, Ending::Park).unwrap_err();
    assert!(err.to_string().contains("no `wfe`"), "{err}");
}

#[test]
fn loads_and_stores_are_told_apart() {
    let c = code(&[STR_X1_SP, LDR_X1_SP, STP_X29_X30, NOP, 0xd50b_7420]);
    let kinds: Vec<Access> = (0..5).map(|i| c.insn(4 * i).unwrap().access).collect();
    assert_eq!(
        kinds,
        [
            Access::Store,
            Access::Load,
            Access::Store,
            Access::None,
            Access::Store
        ]
    );
}

#[test]
fn rust_symbols_are_demangled() {
    assert_eq!(
        demangle("_ZN7handoff7handoff17h25c6f58c0ba8ac81E"),
        "handoff::handoff"
    );
    assert_eq!(
        demangle("_ZN56_$LT$purgatory..cpu..Cpu$u20$as$u20$handoff..Machine$GT$6sha25617he5b5381c08066b90E"),
        "<purgatory::cpu::Cpu as handoff::Machine>::sha256"
    );
    assert_eq!(demangle("purgatory_main"), "purgatory_main");
}

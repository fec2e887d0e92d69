//! SHA-256 compression with the ARMv8 Cryptographic Extension instructions
//! (SHA256H, SHA256H2, SHA256SU0, SHA256SU1), through the
//! `core::arch::aarch64` intrinsics.

use core::arch::aarch64::{
    uint32x4_t, uint8x16_t, vaddq_u32, vdupq_n_u32, vdupq_n_u8, vld1q_u32, vreinterpretq_u32_u8,
    vrev32q_u8, vsha256h2q_u32, vsha256hq_u32, vsha256su0q_u32, vsha256su1q_u32, vst1q_u32,
};
use core::arch::asm;

use handoff::sha256::Compress;

/// Round constants (FIPS 180-4 §4.2.2), 16-byte aligned so that a 4-lane
/// load needs no alignment fix-up under `+strict-align`.
#[repr(C, align(16))]
struct RoundConstants([u32; 64]);

static K: RoundConstants = RoundConstants([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/// The compression function on the SHA2 instructions: a token that this
/// CPU implements them, minted only by [`Sha2Instructions::detect`], which
/// reads `ID_AA64ISAR0_EL1` itself.
#[derive(Debug, Clone, Copy)]
pub struct Sha2Instructions {
    _checked: (),
}

impl Sha2Instructions {
    /// `Some` when this CPU's `ID_AA64ISAR0_EL1` reports the SHA256
    /// instructions ([`handoff::has_sha2_instructions`]).
    pub fn detect() -> Option<Self> {
        let isar0: u64;
        // SAFETY: reading an ID register has no side effects and is
        // permitted at EL1 and EL2.
        unsafe { asm!("mrs {}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack)) };
        handoff::has_sha2_instructions(isar0).then_some(Self { _checked: () })
    }
}

impl Compress for Sha2Instructions {
    fn compress(&mut self, state: &mut [u32; 8], blocks: &[[u8; 64]]) {
        // SAFETY: a `Sha2Instructions` exists only if this CPU implements
        // the SHA256 instructions (read from ID_AA64ISAR0_EL1 in `detect`,
        // its only constructor).
        unsafe { compress_blocks(state, blocks) }
    }
}

/// Loads 16 message bytes as four big-endian words, straight from the
/// segment with `LD1 {v.16b}`: byte elements, so no alignment requirement
/// (with the MMU off memory is Device, where an unaligned `LDR Q` faults).
/// Written as assembly because under `+strict-align` LLVM turns
/// `vld1q_u8` of a byte pointer into 16 byte loads and a trip through the
/// stack, which is non-cacheable while we hash.
#[target_feature(enable = "neon")]
fn load_be(bytes: &[u8]) -> uint32x4_t {
    let Ok(b) = <&[u8; 16]>::try_from(bytes) else {
        // Unreachable: callers pass 16-byte chunks of a 64-byte block.
        return vreinterpretq_u32_u8(vdupq_n_u8(0));
    };
    let v: uint8x16_t;
    // SAFETY: `b` refers to 16 readable bytes; LD1 reads exactly those.
    unsafe {
        asm!(
            "ld1 {{{v:v}.16b}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) b.as_ptr(),
            options(readonly, nostack, preserves_flags)
        )
    };
    vreinterpretq_u32_u8(vrev32q_u8(v))
}

/// `K[4 * i..4 * i + 4]` as a vector.
#[target_feature(enable = "neon")]
fn k4(i: usize) -> uint32x4_t {
    let Some(k) = K.0.get(4 * i..4 * i + 4) else {
        return vdupq_n_u32(0);
    };
    // SAFETY: `k` has four u32 at a 16-byte aligned address.
    unsafe { vld1q_u32(k.as_ptr()) }
}

/// # Safety
/// The CPU must implement FEAT_SHA256.
#[target_feature(enable = "sha2")]
unsafe fn compress_blocks(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    // SAFETY: `state` holds 8 u32, so both 4-lane loads are in bounds.
    let (mut abcd, mut efgh) =
        unsafe { (vld1q_u32(state.as_ptr()), vld1q_u32(state[4..].as_ptr())) };
    // Four rounds with the message words `w` (already W[t..t+4]).
    macro_rules! rounds {
        ($w:expr, $k:expr) => {{
            let wk = vaddq_u32($w, $k);
            let abcd_prev = abcd;
            abcd = vsha256hq_u32(abcd, efgh, wk);
            efgh = vsha256h2q_u32(efgh, abcd_prev, wk);
        }};
    }
    for block in blocks {
        let (abcd0, efgh0) = (abcd, efgh);
        let mut q = block.chunks_exact(16);
        let mut m0 = load_be(q.next().unwrap_or_default());
        let mut m1 = load_be(q.next().unwrap_or_default());
        let mut m2 = load_be(q.next().unwrap_or_default());
        let mut m3 = load_be(q.next().unwrap_or_default());
        // Rounds 0-47 also extend the schedule: W[t+16..t+20] =
        // SU1(SU0(W[t..], W[t+4..]), W[t+8..], W[t+12..]). Unrolled by hand
        // so the message stays in registers (the stack is non-cacheable).
        for g in 0..3 {
            rounds!(m0, k4(4 * g));
            m0 = vsha256su1q_u32(vsha256su0q_u32(m0, m1), m2, m3);
            rounds!(m1, k4(4 * g + 1));
            m1 = vsha256su1q_u32(vsha256su0q_u32(m1, m2), m3, m0);
            rounds!(m2, k4(4 * g + 2));
            m2 = vsha256su1q_u32(vsha256su0q_u32(m2, m3), m0, m1);
            rounds!(m3, k4(4 * g + 3));
            m3 = vsha256su1q_u32(vsha256su0q_u32(m3, m0), m1, m2);
        }
        rounds!(m0, k4(12));
        rounds!(m1, k4(13));
        rounds!(m2, k4(14));
        rounds!(m3, k4(15));
        abcd = vaddq_u32(abcd, abcd0);
        efgh = vaddq_u32(efgh, efgh0);
    }
    // SAFETY: in-bounds stores of 4 lanes each into the 8-word state.
    unsafe {
        vst1q_u32(state.as_mut_ptr(), abcd);
        vst1q_u32(state[4..].as_mut_ptr(), efgh);
    }
}

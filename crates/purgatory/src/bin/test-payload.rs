//! A stand-in "kernel" for the bare-metal tests (not shipped): prints
//!
//! `PAYLOAD x0=0x... x1=0x... x2=0x... x3=0x... el=N sctlr=0x... on=N`
//!
//! on the PL011 at 0x0900_0000 (QEMU `virt`), where `on` counts the CPUs
//! with MPIDR 1 to 7 that PSCI `AFFINITY_INFO` reports ON or ON_PENDING (a
//! kernel starts its secondaries with `CPU_ON`, which fails for a CPU
//! that is on), then powers the machine off
//! with PSCI SYSTEM_OFF (function id 0x8400_0008): `smc #0` at EL2 (QEMU's
//! conduit when `virtualization=on`), `hvc #0` at EL1. Position independent,
//! no stack, MMU off, like a kernel's first instructions.
//!
//! It also carries `entry_shim`, the tests' stand-in for the old kernel's
//! last steps: it leaves the PL011's `UARTCR` as the test asks (enabled, as
//! a running kernel's console is, or disabled), optionally sets
//! `HCR_EL2.E2H` and `TGE` (a VHE host's state), and jumps to the
//! purgatory. The harness loads a copy of this binary for the shim, also
//! when the payload is a real kernel.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    mov     x19, x0                 // the registers under test
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    movz    x23, #0x0900, lsl #16   // PL011 base on virt
    mov     w9, #0x301              // UARTCR: UARTEN | TXE | RXE (the
    str     w9, [x23, #0x30]        // shim may have disabled it)
    mrs     x24, CurrentEL
    ubfx    x24, x24, #2, #2
    cmp     x24, #2
    b.ne    1f
    mrs     x25, sctlr_el2
    b       2f
1:  mrs     x25, sctlr_el1
2:
    adr     x9, s_x0
    bl      puts
    mov     x9, x19
    bl      puthex
    adr     x9, s_x1
    bl      puts
    mov     x9, x20
    bl      puthex
    adr     x9, s_x2
    bl      puts
    mov     x9, x21
    bl      puthex
    adr     x9, s_x3
    bl      puts
    mov     x9, x22
    bl      puthex
    adr     x9, s_el
    bl      puts
    add     w10, w24, #'0'
    bl      putc
    adr     x9, s_sctlr
    bl      puts
    mov     x9, x25
    bl      puthex
    adr     x9, s_on
    bl      puts
    mov     x27, xzr                // CPUs found on
    mov     x28, #1                 // MPIDR of the CPU asked about
8:  movz    w0, #0x0004             // PSCI AFFINITY_INFO (SMC64)
    movk    w0, #0xc400, lsl #16
    mov     x1, x28
    mov     x2, xzr
    cmp     x24, #2
    b.eq    9f
    hvc     #0
    b       10f
9:  smc     #0
10: cmp     w0, #0                  // ON
    b.eq    11f
    cmp     w0, #2                  // ON_PENDING
    b.ne    12f
11: add     x27, x27, #1
12: add     x28, x28, #1
    cmp     x28, #8
    b.lo    8b
    add     w10, w27, #'0'
    bl      putc
    adr     x9, s_nl
    bl      puts
    // PSCI SYSTEM_OFF
    movz    w0, #0x0008
    movk    w0, #0x8400, lsl #16
    cmp     x24, #2
    b.eq    3f
    hvc     #0
    b       4f
3:  smc     #0
4:  wfe
    b       4b

// putc: w10 = byte. Clobbers w11.
putc:
    ldr     w11, [x23, #0x18]       // UARTFR
    tbnz    w11, #5, putc           // TXFF
    str     w10, [x23]              // UARTDR
    ret

// puts: x9 = NUL-terminated string. Clobbers x9-x12, x26.
puts:
    mov     x26, x30
5:  ldrb    w10, [x9], #1
    cbz     w10, 6f
    bl      putc
    b       5b
6:  ret     x26

// puthex: x9 = value, printed as 0x + 16 digits. Clobbers x10-x13, x26.
puthex:
    mov     x26, x30
    mov     w10, #'0'
    bl      putc
    mov     w10, #'x'
    bl      putc
    mov     x12, #60
7:  lsr     x13, x9, x12
    and     x13, x13, #0xf
    cmp     x13, #10
    add     x10, x13, #'0'
    add     x13, x13, #('a' - 10)
    csel    x10, x13, x10, hs
    bl      putc
    subs    x12, x12, #4
    b.pl    7b
    ret     x26

// entry_shim: a second entry for the tests (not part of the payload's
// behaviour): write shim_uartcr to the UARTCR of the PL011 at shim_uart
// (if not 0); if shim_vhe is not 0, set HCR_EL2.E2H and TGE (at EL2); then
// jump to shim_target (the purgatory) with x0 = 0. The harness patches the
// four slots.
    .balign 8
    .global entry_shim
entry_shim:
    ldr     x9, shim_uart
    ldr     w10, shim_uartcr
    cbz     x9, 1f
    str     w10, [x9, #0x30]
1:  ldr     x10, shim_vhe
    cbz     x10, 2f
    mrs     x9, hcr_el2
    orr     x9, x9, #(1 << 34)      // E2H
    orr     x9, x9, #(1 << 27)      // TGE
    msr     hcr_el2, x9
    isb
2:  ldr     x9, shim_target
    mov     x0, xzr
    br      x9
    .balign 8
    .global shim_target
shim_target:
    .quad   0
    .global shim_uart
shim_uart:
    .quad   0
    .global shim_uartcr
shim_uartcr:
    .quad   0
    .global shim_vhe
shim_vhe:
    .quad   0

s_x0:    .asciz "PAYLOAD x0="
s_x1:    .asciz " x1="
s_x2:    .asciz " x2="
s_x3:    .asciz " x3="
s_el:    .asciz " el="
s_sctlr: .asciz " sctlr="
s_on:    .asciz " on="
s_nl:    .asciz "\r\n"
"#
);

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use purgatory as _;

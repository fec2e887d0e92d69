//! The purgatory binary: entry code and the parameter header.
//!
//! Entry state (arm64 `kexec_load`): x0 = 0, MMU/D-cache/I-cache off,
//! interrupts masked, one CPU, no stack, EL2 (possibly with `HCR_EL2.E2H`)
//! or EL1. `_start` is at offset 0 and branches over the header at
//! [`handoff::HEADER_OFFSET`] (0x40), whose link-time fields (magic, version,
//! size, `mem_size`) are filled here and the rest by the loader.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    b       1f

    .balign 0x40
    .global purgatory_header
purgatory_header:
    .ascii  "KXPURG01"              // 0x00 magic
    .word   3                       // 0x08 version
    .word   0x190                   // 0x0c header size
    .quad   __purgatory_mem_size    // 0x10 mem_size (absolute symbol from link.ld)
    .space  0x190 - 0x18, 0         // 0x18.. loader-patched fields, zero

    // Every CPU's first steps: interrupts masked, FP/SIMD on, our vectors.
    // Leaves the EL (1 or 2) in x9; uses x10.
    .macro  cpu_setup
    msr     daifset, #0xf
    // FP/SIMD on for this EL (the SHA2 instructions and compiled code use it).
    mrs     x9, CurrentEL
    ubfx    x9, x9, #2, #2
    cmp     x9, #2
    b.ne    3f
    mrs     x10, hcr_el2
    tbnz    x10, #34, 3f            // E2H: CPTR_EL2 has the CPACR layout, reached as CPACR_EL1
    mrs     x10, cptr_el2
    bic     x10, x10, #(1 << 10)    // TFP = 0
    msr     cptr_el2, x10
    b       4f
3:  mrs     x10, cpacr_el1
    orr     x10, x10, #(3 << 20)    // FPEN = 0b11
    msr     cpacr_el1, x10
4:  // Our own exception vectors: a fault prints ESR/ELR/FAR and parks
    // instead of jumping into the old kernel's (now unmapped) vectors.
    adr     x10, purgatory_vectors
    cmp     x9, #2
    b.ne    8f
    msr     vbar_el2, x10
    b       9f
8:  msr     vbar_el1, x10
9:  isb
    .endm

    // sp = \top, and TPIDR_ELx = \top: the stack the exception vectors
    // take on this CPU. Uses x9.
    .macro  set_stack top
    mov     sp, \top
    mrs     x9, CurrentEL
    ubfx    x9, x9, #2, #2
    cmp     x9, #2
    b.ne    10f
    msr     tpidr_el2, \top
    b       11f
10: msr     tpidr_el1, \top
11:
    .endm

1:  cpu_setup
    // Zero .bss (normally empty).
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
5:  cmp     x9, x10
    b.hs    6f
    strb    wzr, [x9], #1
    b       5b
6:  adrp    x5, __stack_top
    add     x5, x5, :lo12:__stack_top
    set_stack x5
    adr     x0, _start
    adrp    x1, __image_end
    add     x1, x1, :lo12:__image_end
    adrp    x2, __tables_start
    add     x2, x2, :lo12:__tables_start
    adrp    x3, __tables_end
    add     x3, x3, :lo12:__tables_end
    adrp    x4, __stack_start
    add     x4, x4, :lo12:__stack_start
    mov     x5, sp
    adrp    x6, __mailbox_end
    add     x6, x6, :lo12:__mailbox_end
    bl      purgatory_main
7:  wfe
    b       7b

    // A secondary CPU started by the boot CPU with PSCI CPU_ON (MMU and
    // caches off, at the boot CPU's EL), x0 = its slot (the context id).
    .balign 4
    .global purgatory_secondary_entry
purgatory_secondary_entry:
    mov     x19, x0
    cpu_setup
    cmp     x19, #7                 // handoff::MAX_SECONDARIES
    b.hs    7b
    // Its own 16 KiB stack: slot s has [__stack_start + s * 16 KiB, +16 KiB).
    adrp    x5, __stack_start
    add     x5, x5, :lo12:__stack_start
    add     x6, x19, #1
    add     x5, x5, x6, lsl #14
    set_stack x5
    adr     x0, _start
    adrp    x1, __image_end
    add     x1, x1, :lo12:__image_end
    adrp    x2, __tables_start
    add     x2, x2, :lo12:__tables_start
    adrp    x3, __tables_end
    add     x3, x3, :lo12:__tables_end
    adrp    x4, __stack_start
    add     x4, x4, :lo12:__stack_start
    adrp    x5, __stack_top
    add     x5, x5, :lo12:__stack_top
    adrp    x6, __mailbox_end
    add     x6, x6, :lo12:__mailbox_end
    mov     x7, x19
    bl      purgatory_secondary
    b       7b

    // 16 entries of 0x80 bytes, 2 KiB aligned (VBAR_ELx.VBA).
    .section .text.vectors, "ax"
    .balign 0x800
purgatory_vectors:
    .rept   16
    .balign 0x80
    b       purgatory_vector_common
    .endr
purgatory_vector_common:
    mrs     x9, CurrentEL
    ubfx    x9, x9, #2, #2
    cmp     x9, #2
    b.ne    1f
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    mrs     x9, tpidr_el2
    b       2f
1:  mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    mrs     x9, tpidr_el1
2:  mov     sp, x9              // this CPU's stack top (set_stack)
    adr     x0, _start
    bl      purgatory_exception
3:  wfe
    b       3b
"#
);

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use purgatory as _;

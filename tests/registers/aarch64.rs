//! AArch64 (AAPCS64, Apple arm64, Windows ARM64): x19-x28, x29 (frame
//! pointer) and the low 64 bits of v8-v15 (d8-d15) are callee-saved. The
//! upper halves of v8-v15 and every other vector register are not, so they
//! are not checked. x18 (platform register; the TEB on Windows) is left
//! alone.

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &[
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "d8", "d9", "d10",
    "d11", "d12", "d13", "d14", "d15",
];

/// See `registers.rs`.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's registers and `after` in one 176-byte frame
        // (a multiple of 16, as sp must stay).
        "stp x29, x30, [sp, #-176]!",
        "stp x19, x20, [sp, #16]",
        "stp x21, x22, [sp, #32]",
        "stp x23, x24, [sp, #48]",
        "stp x25, x26, [sp, #64]",
        "stp x27, x28, [sp, #80]",
        "stp d8, d9, [sp, #96]",
        "stp d10, d11, [sp, #112]",
        "stp d12, d13, [sp, #128]",
        "stp d14, d15, [sp, #144]",
        "str x3, [sp, #160]",
        // Register i gets seed + i + 1.
        "add x19, x0, #1",
        "add x20, x0, #2",
        "add x21, x0, #3",
        "add x22, x0, #4",
        "add x23, x0, #5",
        "add x24, x0, #6",
        "add x25, x0, #7",
        "add x26, x0, #8",
        "add x27, x0, #9",
        "add x28, x0, #10",
        "add x29, x0, #11",
        "add x9, x0, #12",
        "fmov d8, x9",
        "add x9, x0, #13",
        "fmov d9, x9",
        "add x9, x0, #14",
        "fmov d10, x9",
        "add x9, x0, #15",
        "fmov d11, x9",
        "add x9, x0, #16",
        "fmov d12, x9",
        "add x9, x0, #17",
        "fmov d13, x9",
        "add x9, x0, #18",
        "fmov d14, x9",
        "add x9, x0, #19",
        "fmov d15, x9",
        // f(data)
        "mov x0, x2",
        "blr x1",
        // Record what the registers hold now.
        "ldr x3, [sp, #160]",
        "stp x19, x20, [x3]",
        "stp x21, x22, [x3, #16]",
        "stp x23, x24, [x3, #32]",
        "stp x25, x26, [x3, #48]",
        "stp x27, x28, [x3, #64]",
        "str x29, [x3, #80]",
        "stp d8, d9, [x3, #88]",
        "stp d10, d11, [x3, #104]",
        "stp d12, d13, [x3, #120]",
        "stp d14, d15, [x3, #136]",
        // Restore the caller's registers.
        "ldp x19, x20, [sp, #16]",
        "ldp x21, x22, [sp, #32]",
        "ldp x23, x24, [sp, #48]",
        "ldp x25, x26, [sp, #64]",
        "ldp x27, x28, [sp, #80]",
        "ldp d8, d9, [sp, #96]",
        "ldp d10, d11, [sp, #112]",
        "ldp d12, d13, [sp, #128]",
        "ldp d14, d15, [sp, #144]",
        "ldp x29, x30, [sp], #176",
        "ret",
    )
}

/// Overwrites every pattern register, as a broken switch would.
#[unsafe(naked)]
pub unsafe extern "C" fn clobber(_data: *mut u8) {
    naked_asm!(
        "mov x19, #-1",
        "mov x20, #-1",
        "mov x21, #-1",
        "mov x22, #-1",
        "mov x23, #-1",
        "mov x24, #-1",
        "mov x25, #-1",
        "mov x26, #-1",
        "mov x27, #-1",
        "mov x28, #-1",
        "mov x29, #-1",
        "movi d8, #0xffffffffffffffff",
        "movi d9, #0xffffffffffffffff",
        "movi d10, #0xffffffffffffffff",
        "movi d11, #0xffffffffffffffff",
        "movi d12, #0xffffffffffffffff",
        "movi d13, #0xffffffffffffffff",
        "movi d14, #0xffffffffffffffff",
        "movi d15, #0xffffffffffffffff",
        "ret",
    )
}

//! 32-bit ARM, AAPCS with VFP (hard-float): r4-r11 and d8-d15 are
//! callee-saved. The asm below is valid in both ARM and Thumb-2 state.
//!
//! A core register holds 32 bits, so core register `i` gets the low word of
//! `seed + i + 1` XORed with the seed's high word (which is what tells the
//! parent's and the coroutine's patterns apart); what it holds afterwards is
//! recorded the other way round, so an intact register reads back as exactly
//! `seed + i + 1`. The d registers hold the whole 64-bit pattern.

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &[
    "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "d8", "d9", "d10", "d11", "d12", "d13",
    "d14", "d15",
];

/// See `registers.rs`. AAPCS: seed in r0 (low) and r1 (high), f in r2,
/// data in r3, `after` on the stack.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's registers (100 bytes), then the seed's high word
        // and `after`, plus 4 bytes that keep sp 8-aligned for the call.
        "push {{r4-r11, lr}}",
        "vpush {{d8-d15}}",
        "ldr r12, [sp, #100]",
        "push {{r1, r12}}",
        "sub sp, sp, #4",
        // d(8+k) gets seed + 9 + k (high word unchanged: the low words of
        // the seeds are small).
        "add r12, r0, #9",
        "vmov d8, r12, r1",
        "add r12, r0, #10",
        "vmov d9, r12, r1",
        "add r12, r0, #11",
        "vmov d10, r12, r1",
        "add r12, r0, #12",
        "vmov d11, r12, r1",
        "add r12, r0, #13",
        "vmov d12, r12, r1",
        "add r12, r0, #14",
        "vmov d13, r12, r1",
        "add r12, r0, #15",
        "vmov d14, r12, r1",
        "add r12, r0, #16",
        "vmov d15, r12, r1",
        // Core register i gets (low(seed) + i + 1) ^ high(seed).
        "add r4, r0, #1",
        "eor r4, r4, r1",
        "add r5, r0, #2",
        "eor r5, r5, r1",
        "add r6, r0, #3",
        "eor r6, r6, r1",
        "add r7, r0, #4",
        "eor r7, r7, r1",
        "add r8, r0, #5",
        "eor r8, r8, r1",
        "add r9, r0, #6",
        "eor r9, r9, r1",
        "add r10, r0, #7",
        "eor r10, r10, r1",
        "add r11, r0, #8",
        "eor r11, r11, r1",
        // f(data)
        "mov r0, r3",
        "blx r2",
        // Record what the registers hold now: r12 = after, r0 = high word.
        "ldr r12, [sp, #8]",
        "ldr r0, [sp, #4]",
        "eor r1, r4, r0",
        "str r1, [r12, #0]",
        "str r0, [r12, #4]",
        "eor r1, r5, r0",
        "str r1, [r12, #8]",
        "str r0, [r12, #12]",
        "eor r1, r6, r0",
        "str r1, [r12, #16]",
        "str r0, [r12, #20]",
        "eor r1, r7, r0",
        "str r1, [r12, #24]",
        "str r0, [r12, #28]",
        "eor r1, r8, r0",
        "str r1, [r12, #32]",
        "str r0, [r12, #36]",
        "eor r1, r9, r0",
        "str r1, [r12, #40]",
        "str r0, [r12, #44]",
        "eor r1, r10, r0",
        "str r1, [r12, #48]",
        "str r0, [r12, #52]",
        "eor r1, r11, r0",
        "str r1, [r12, #56]",
        "str r0, [r12, #60]",
        "vstr d8, [r12, #64]",
        "vstr d9, [r12, #72]",
        "vstr d10, [r12, #80]",
        "vstr d11, [r12, #88]",
        "vstr d12, [r12, #96]",
        "vstr d13, [r12, #104]",
        "vstr d14, [r12, #112]",
        "vstr d15, [r12, #120]",
        // Restore the caller's registers.
        "add sp, sp, #12",
        "vpop {{d8-d15}}",
        "pop {{r4-r11, pc}}",
    )
}

/// Overwrites every pattern register, as a broken switch would.
#[unsafe(naked)]
pub unsafe extern "C" fn clobber(_data: *mut u8) {
    naked_asm!(
        "mvn r4, #0",
        "mov r5, r4",
        "mov r6, r4",
        "mov r7, r4",
        "mov r8, r4",
        "mov r9, r4",
        "mov r10, r4",
        "mov r11, r4",
        "vmov d8, r4, r4",
        "vmov d9, r4, r4",
        "vmov d10, r4, r4",
        "vmov d11, r4, r4",
        "vmov d12, r4, r4",
        "vmov d13, r4, r4",
        "vmov d14, r4, r4",
        "vmov d15, r4, r4",
        "bx lr",
    )
}

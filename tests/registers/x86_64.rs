//! x86-64 System V: rbx, rbp, r12-r15 are callee-saved. No vector or x87
//! register is (only the control bits of MXCSR and of the x87 control word,
//! which are thread state shared by all coroutines, like the rest of the
//! floating-point environment).

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &["rbx", "rbp", "r12", "r13", "r14", "r15"];

/// See `registers.rs`.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's registers and `after` (7 pushes after the
        // return address keep rsp 16-aligned for the call).
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "push rcx",
        // Register i gets seed + i + 1.
        "lea rbx, [rdi + 1]",
        "lea rbp, [rdi + 2]",
        "lea r12, [rdi + 3]",
        "lea r13, [rdi + 4]",
        "lea r14, [rdi + 5]",
        "lea r15, [rdi + 6]",
        // f(data)
        "mov rdi, rdx",
        "call rsi",
        // Record what the registers hold now.
        "pop rcx",
        "mov [rcx], rbx",
        "mov [rcx + 8], rbp",
        "mov [rcx + 16], r12",
        "mov [rcx + 24], r13",
        "mov [rcx + 32], r14",
        "mov [rcx + 40], r15",
        // Restore the caller's registers.
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "ret",
    )
}

/// Overwrites every pattern register, as a broken switch would.
#[unsafe(naked)]
pub unsafe extern "C" fn clobber(_data: *mut u8) {
    naked_asm!(
        "mov rbx, -1",
        "mov rbp, -1",
        "mov r12, -1",
        "mov r13, -1",
        "mov r14, -1",
        "mov r15, -1",
        "ret",
    )
}

//! 32-bit x86 System V: ebx, esi, edi, ebp are callee-saved. No x87 or SSE
//! register is (only the control bits of MXCSR and of the x87 control word,
//! thread state shared by all coroutines). Each 32-bit register holds the
//! low half of its pattern word; the high half is the seed's.

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &["ebx", "esi", "edi", "ebp"];

/// See `registers.rs`. cdecl: seed (two words), f, data, after on the stack.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's registers; eax = frame base, where the arguments
        // are at +20 (seed low), +24 (seed high), +28 (f), +32 (data),
        // +36 (after).
        "push ebx",
        "push esi",
        "push edi",
        "push ebp",
        "mov eax, esp",
        // A 16-byte aligned call with data as the argument and the frame
        // base kept just above it.
        "and esp, -16",
        "sub esp, 8",
        "push eax",
        "push dword ptr [eax + 32]",
        // Register i gets seed + i + 1 (the low halves never carry).
        "mov ecx, [eax + 20]",
        "lea ebx, [ecx + 1]",
        "lea esi, [ecx + 2]",
        "lea edi, [ecx + 3]",
        "lea ebp, [ecx + 4]",
        "call [eax + 28]",
        // Record what the registers hold now, with the seed's high half.
        "mov eax, [esp + 4]",
        "mov ecx, [eax + 36]",
        "mov edx, [eax + 24]",
        "mov [ecx], ebx",
        "mov [ecx + 4], edx",
        "mov [ecx + 8], esi",
        "mov [ecx + 12], edx",
        "mov [ecx + 16], edi",
        "mov [ecx + 20], edx",
        "mov [ecx + 24], ebp",
        "mov [ecx + 28], edx",
        // Restore the caller's registers.
        "mov esp, eax",
        "pop ebp",
        "pop edi",
        "pop esi",
        "pop ebx",
        "ret",
    )
}

/// Overwrites every pattern register, as a broken switch would.
#[unsafe(naked)]
pub unsafe extern "C" fn clobber(_data: *mut u8) {
    naked_asm!(
        "mov ebx, -1",
        "mov esi, -1",
        "mov edi, -1",
        "mov ebp, -1",
        "ret",
    )
}

//! 32-bit x86 Windows (cdecl): ebx, esi, edi and ebp are callee-saved. No
//! x87/SSE register is (only control bits, which are thread state).

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &["ebx", "esi", "edi", "ebp"];

/// See `registers.rs`. The 64-bit patterns do not fit: register i gets the
/// low half of seed + i + 1, and `after[i]` gets what it holds now in its
/// low half and the seed's high half.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's registers (arguments then start at [esp + 20]:
        // seed low, seed high, f, data, after).
        "push ebx",
        "push esi",
        "push edi",
        "push ebp",
        "mov eax, [esp + 20]",
        "mov ecx, [esp + 32]",
        "mov edx, [esp + 28]",
        "lea ebx, [eax + 1]",
        "lea esi, [eax + 2]",
        "lea edi, [eax + 3]",
        "lea ebp, [eax + 4]",
        // f(data), with esp 16-aligned at the call as far as we know (the
        // thunks do not care).
        "sub esp, 12",
        "push ecx",
        "call edx",
        "add esp, 16",
        // Record what the registers hold now.
        "mov eax, [esp + 36]",
        "mov ecx, [esp + 24]",
        "mov [eax], ebx",
        "mov [eax + 4], ecx",
        "mov [eax + 8], esi",
        "mov [eax + 12], ecx",
        "mov [eax + 16], edi",
        "mov [eax + 20], ecx",
        "mov [eax + 24], ebp",
        "mov [eax + 28], ecx",
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

//! 32-bit x86 Linux: `uc_mcontext.gregs` (i32 words).

use stackswitch::trap::TrapHandlerRegs;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_ESP as usize] as u32 as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
    gregs[libc::REG_EIP as usize] = regs.eip as i32;
    gregs[libc::REG_ESP as usize] = regs.esp as i32;
    gregs[libc::REG_EBP as usize] = regs.ebp as i32;
    gregs[libc::REG_ECX as usize] = regs.ecx as i32;
    gregs[libc::REG_EDX as usize] = regs.edx as i32;
}

//! x86-64 Linux: `uc_mcontext.gregs`.

use stackswitch::trap::TrapHandlerRegs;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RSP as usize] as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
    gregs[libc::REG_RIP as usize] = regs.rip as i64;
    gregs[libc::REG_RSP as usize] = regs.rsp as i64;
    gregs[libc::REG_RBP as usize] = regs.rbp as i64;
    gregs[libc::REG_RDI as usize] = regs.rdi as i64;
    gregs[libc::REG_RSI as usize] = regs.rsi as i64;
}

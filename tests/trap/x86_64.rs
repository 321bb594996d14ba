//! x86-64: Linux keeps the interrupted registers in `uc_mcontext.gregs`;
//! Apple behind the `uc_mcontext` pointer, in `__ss`.

use stackswitch::trap::TrapHandlerRegs;

#[cfg(not(target_vendor = "apple"))]
pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RSP as usize] as usize }
}

#[cfg(not(target_vendor = "apple"))]
pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
    gregs[libc::REG_RIP as usize] = regs.rip as i64;
    gregs[libc::REG_RSP as usize] = regs.rsp as i64;
    gregs[libc::REG_RBP as usize] = regs.rbp as i64;
    gregs[libc::REG_RDI as usize] = regs.rdi as i64;
    gregs[libc::REG_RSI as usize] = regs.rsi as i64;
}

#[cfg(target_vendor = "apple")]
pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext, whose machine context
    // pointer is valid for the duration of the handler.
    unsafe { (*(*uc).uc_mcontext).__ss.__rsp as usize }
}

#[cfg(target_vendor = "apple")]
pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let state = unsafe { &mut (*(*uc).uc_mcontext).__ss };
    state.__rip = regs.rip;
    state.__rsp = regs.rsp;
    state.__rbp = regs.rbp;
    state.__rdi = regs.rdi;
    state.__rsi = regs.rsi;
}

//! s390x Linux: `uc_mcontext.psw.addr` and `uc_mcontext.gregs`.

use stackswitch::trap::TrapHandlerRegs;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.gregs[15] as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let mc = unsafe { &mut (*uc).uc_mcontext };
    mc.psw.addr = regs.pc;
    mc.gregs[15] = regs.sp;
    mc.gregs[2] = regs.r2;
    mc.gregs[3] = regs.r3;
    mc.gregs[4] = regs.r4;
    mc.gregs[14] = regs.r14;
}

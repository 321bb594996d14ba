//! AArch64: Linux keeps the interrupted registers in `uc_mcontext` itself
//! (`regs[0..31]`, `sp`, `pc`); Apple behind the `uc_mcontext` pointer, in
//! `__ss` (`__x[0..29]`, `__fp`, `__lr`, `__sp`, `__pc`).

use stackswitch::trap::TrapHandlerRegs;

#[cfg(not(target_vendor = "apple"))]
pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.sp as usize }
}

#[cfg(not(target_vendor = "apple"))]
pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let mcontext = unsafe { &mut (*uc).uc_mcontext };
    mcontext.pc = regs.pc;
    mcontext.sp = regs.sp;
    mcontext.regs[0] = regs.x0;
    mcontext.regs[1] = regs.x1;
    mcontext.regs[29] = regs.x29;
    mcontext.regs[30] = regs.lr;
}

#[cfg(target_vendor = "apple")]
pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext, whose machine context
    // pointer is valid for the duration of the handler.
    unsafe { (*(*uc).uc_mcontext).__ss.__sp as usize }
}

#[cfg(target_vendor = "apple")]
pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let state = unsafe { &mut (*(*uc).uc_mcontext).__ss };
    state.__pc = regs.pc;
    state.__sp = regs.sp;
    state.__x[0] = regs.x0;
    state.__x[1] = regs.x1;
    state.__fp = regs.x29;
    state.__lr = regs.lr;
}

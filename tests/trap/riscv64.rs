//! RISC-V 64 Linux: `uc_mcontext.__gregs`, indexed by register number
//! (slot 0 holds the pc instead of the zero register).

use stackswitch::trap::TrapHandlerRegs;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.__gregs[libc::REG_SP] as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let gregs = unsafe { &mut (*uc).uc_mcontext.__gregs };
    gregs[libc::REG_PC] = regs.pc as libc::c_ulong;
    gregs[libc::REG_RA] = regs.ra as libc::c_ulong;
    gregs[libc::REG_SP] = regs.sp as libc::c_ulong;
    gregs[libc::REG_A0] = regs.a0 as libc::c_ulong;
    gregs[libc::REG_A0 + 1] = regs.a1 as libc::c_ulong;
    gregs[libc::REG_S0] = regs.s0 as libc::c_ulong;
}

//! 64-bit PowerPC Linux: `uc_mcontext.gp_regs` (NIP at index 32, LR at 36).

use stackswitch::trap::TrapHandlerRegs;

const PT_NIP: usize = 32;
const PT_LNK: usize = 36;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.gp_regs[1] as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let gp = unsafe { &mut (*uc).uc_mcontext.gp_regs };
    gp[PT_NIP] = regs.pc;
    gp[1] = regs.sp;
    gp[3] = regs.r3;
    gp[4] = regs.r4;
    gp[12] = regs.r12;
    gp[PT_LNK] = regs.lr;
}

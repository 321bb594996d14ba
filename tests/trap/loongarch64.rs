//! LoongArch64 Linux (musl): `uc_mcontext.__pc` and `__gregs`, indexed by
//! register number ($r1 = ra, $r3 = sp, $r4/$r5 = a0/a1, $r22 = fp).

use stackswitch::trap::TrapHandlerRegs;

const RA: usize = 1;
const SP: usize = 3;
const A0: usize = 4;
const A1: usize = 5;
const FP: usize = 22;

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.__gregs[SP] as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let mcontext = unsafe { &mut (*uc).uc_mcontext };
    mcontext.__pc = regs.pc as libc::c_ulong;
    mcontext.__gregs[RA] = regs.ra as libc::c_ulong;
    mcontext.__gregs[SP] = regs.sp as libc::c_ulong;
    mcontext.__gregs[A0] = regs.a0 as libc::c_ulong;
    mcontext.__gregs[A1] = regs.a1 as libc::c_ulong;
    mcontext.__gregs[FP] = regs.fp as libc::c_ulong;
}

//! 32-bit ARM Linux: `uc_mcontext.arm_*`.

use stackswitch::trap::TrapHandlerRegs;

/// CPSR bits the redirect must set: Thumb state, big-endian data, and the
/// If-Then state of a Thumb `it` block (bits 26:25 and 15:10), which must
/// not carry over to the new pc.
const CPSR_T: u32 = 1 << 5;
const CPSR_E: u32 = 1 << 9;
const CPSR_IT: u32 = (0b11 << 25) | (0b11_1111 << 10);

pub unsafe fn stack_pointer(uc: *mut libc::ucontext_t) -> usize {
    // SAFETY: the caller passes the kernel's ucontext.
    unsafe { (*uc).uc_mcontext.arm_sp as usize }
}

pub unsafe fn redirect(uc: *mut libc::ucontext_t, regs: &TrapHandlerRegs) {
    // SAFETY: as above; these writes take effect at sigreturn.
    let mc = unsafe { &mut (*uc).uc_mcontext };
    mc.arm_pc = regs.pc as _;
    mc.arm_r0 = regs.r0 as _;
    mc.arm_r1 = regs.r1 as _;
    mc.arm_r7 = regs.r7 as _;
    mc.arm_fp = regs.r11 as _;
    mc.arm_sp = regs.r13 as _;
    mc.arm_lr = regs.r14 as _;
    let mut cpsr = mc.arm_cpsr as u32 & !(CPSR_T | CPSR_E | CPSR_IT);
    if regs.cpsr_thumb {
        cpsr |= CPSR_T;
    }
    if regs.cpsr_endian {
        cpsr |= CPSR_E;
    }
    mc.arm_cpsr = cpsr as _;
}

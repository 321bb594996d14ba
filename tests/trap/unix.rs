//! Unix: a SIGSEGV/SIGBUS handler on an alternate signal stack. Reading the
//! stack pointer from a `ucontext_t` and writing `TrapHandlerRegs` into it is
//! per CPU (`context`).

use std::sync::Once;

use super::{classify, recovery_for};

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod context;
#[cfg(target_arch = "riscv64")]
#[path = "riscv64.rs"]
mod context;
#[cfg(target_arch = "loongarch64")]
#[path = "loongarch64.rs"]
mod context;
#[cfg(target_arch = "arm")]
#[path = "arm.rs"]
mod context;
#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod context;
#[cfg(target_arch = "x86")]
#[path = "x86.rs"]
mod context;
#[cfg(target_arch = "powerpc64")]
#[path = "powerpc64.rs"]
mod context;
#[cfg(target_arch = "s390x")]
#[path = "s390x.rs"]
mod context;

unsafe extern "C" fn on_fault(signal: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let uc = uc as *mut libc::ucontext_t;
    // SAFETY: the kernel passes a valid ucontext and siginfo to an
    // SA_SIGINFO handler.
    let (sp, addr) = unsafe { (context::stack_pointer(uc), (*info).si_addr() as usize) };
    match recovery_for(sp, classify(addr)) {
        // SAFETY: writes to the interrupted context take effect at sigreturn.
        Some(regs) => unsafe { context::redirect(uc, &regs) },
        // Not ours: restore the default action; the fault repeats and kills
        // the process with the right signal.
        // SAFETY: a plain libc call.
        None => unsafe {
            libc::signal(signal, libc::SIG_DFL);
        },
    }
}

/// Installs the handler once per process and an alternate signal stack for
/// the current thread (a stack overflow leaves no stack to handle it on).
/// Out of line, so that leak checkers' suppressions can name it.
#[inline(never)]
pub fn prepare_thread() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for signal in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: installing a handler with a zeroed, then filled, sigaction.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fault as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut action.sa_mask);
                assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
            }
        }
    });
    const ALT_STACK_SIZE: usize = 256 * 1024;
    // Leaked on purpose: the thread may take a signal until it exits.
    let alt = Box::leak(vec![0u8; ALT_STACK_SIZE].into_boxed_slice());
    let stack = libc::stack_t {
        ss_sp: alt.as_mut_ptr() as *mut libc::c_void,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: `alt` lives forever.
    assert_eq!(
        unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) },
        0
    );
}

/// Whether a child process was killed by the fault it took.
pub fn died_of_a_fault(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGSEGV)
}

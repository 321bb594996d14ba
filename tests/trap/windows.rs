//! Windows: a vectored exception handler. Stack overflows come as
//! STATUS_STACK_OVERFLOW, raised when the guard page reaches the stack's
//! guarantee zone; the handler then runs on that zone. Reading the stack
//! pointer from a CONTEXT and writing `TrapHandlerRegs` into it is per CPU
//! (`context`).

use std::hint::black_box;
use std::sync::Once;

use stackswitch::stack::DefaultStack;
use stackswitch::{Coroutine, Yielder};
use windows_sys::Win32::Foundation::{EXCEPTION_ACCESS_VIOLATION, EXCEPTION_STACK_OVERFLOW};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, EXCEPTION_CONTINUE_EXECUTION, EXCEPTION_CONTINUE_SEARCH,
    EXCEPTION_POINTERS,
};

use super::{classify, recovery_for, recurse, Outcome};

#[cfg(target_arch = "x86_64")]
mod context {
    use stackswitch::trap::TrapHandlerRegs;
    use windows_sys::Win32::System::Diagnostics::Debug::CONTEXT;

    pub fn stack_pointer(ctx: &CONTEXT) -> usize {
        ctx.Rsp as usize
    }

    pub fn redirect(ctx: &mut CONTEXT, regs: &TrapHandlerRegs) {
        ctx.Rip = regs.rip;
        ctx.Rsp = regs.rsp;
        ctx.Rbp = regs.rbp;
        ctx.Rdi = regs.rdi;
        ctx.Rsi = regs.rsi;
    }
}

#[cfg(target_arch = "x86")]
mod context {
    use stackswitch::trap::TrapHandlerRegs;
    use windows_sys::Win32::System::Diagnostics::Debug::CONTEXT;

    pub fn stack_pointer(ctx: &CONTEXT) -> usize {
        ctx.Esp as usize
    }

    pub fn redirect(ctx: &mut CONTEXT, regs: &TrapHandlerRegs) {
        ctx.Eip = regs.eip;
        ctx.Esp = regs.esp;
        ctx.Ebp = regs.ebp;
        ctx.Eax = regs.eax;
        ctx.Ebx = regs.ebx;
        ctx.Ecx = regs.ecx;
        ctx.Edx = regs.edx;
    }
}

#[cfg(target_arch = "aarch64")]
mod context {
    use stackswitch::trap::TrapHandlerRegs;
    use windows_sys::Win32::System::Diagnostics::Debug::CONTEXT;

    pub fn stack_pointer(ctx: &CONTEXT) -> usize {
        ctx.Sp as usize
    }

    pub fn redirect(ctx: &mut CONTEXT, regs: &TrapHandlerRegs) {
        ctx.Pc = regs.pc;
        ctx.Sp = regs.sp;
        // SAFETY: both views of the union are plain integers.
        let x = unsafe { &mut ctx.Anonymous.Anonymous };
        x.X0 = regs.x0;
        x.X1 = regs.x1;
        x.Fp = regs.x29;
        x.Lr = regs.lr;
    }
}

unsafe extern "system" fn on_exception(info: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: the OS passes valid exception and context records.
    let (record, ctx) = unsafe { (&*(*info).ExceptionRecord, &mut *(*info).ContextRecord) };
    let outcome = match record.ExceptionCode {
        EXCEPTION_STACK_OVERFLOW => Outcome::Overflowed,
        EXCEPTION_ACCESS_VIOLATION => classify(record.ExceptionInformation[1]),
        _ => return EXCEPTION_CONTINUE_SEARCH,
    };
    match recovery_for(context::stack_pointer(ctx), outcome) {
        Some(regs) => {
            context::redirect(ctx, &regs);
            EXCEPTION_CONTINUE_EXECUTION
        }
        // Not ours: let the next handler (in the end, the OS) deal with it.
        None => EXCEPTION_CONTINUE_SEARCH,
    }
}

/// Installs the handler once per process (it runs on the faulting thread's
/// own stack, or on its guarantee zone after an overflow).
pub fn prepare_thread() {
    static INSTALL: Once = Once::new();
    // SAFETY: registering a handler that lives for the whole process.
    INSTALL.call_once(|| unsafe {
        assert!(!AddVectoredExceptionHandler(1, Some(on_exception)).is_null());
    });
}

/// Whether a child process was ended by the fault it took. Windows reports
/// the access violation as the exit code; under Wine an unhandled exception
/// may end in its debugger's own status instead.
pub fn died_of_a_fault(status: &std::process::ExitStatus) -> bool {
    !status.success()
}

/// The TEB's StackBase, StackLimit and DeallocationStack.
fn teb_stack() -> [usize; 3] {
    let fields: [usize; 3];
    // SAFETY: reads of the current thread's TEB.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        {
            let (a, b, c): (usize, usize, usize);
            std::arch::asm!(
                "mov {}, gs:[0x08]", "mov {}, gs:[0x10]", "mov {}, gs:[0x1478]",
                out(reg) a, out(reg) b, out(reg) c, options(nostack, readonly),
            );
            fields = [a, b, c];
        }
        #[cfg(target_arch = "x86")]
        {
            let (a, b, c): (usize, usize, usize);
            std::arch::asm!(
                "mov {}, fs:[0x04]", "mov {}, fs:[0x08]", "mov {}, fs:[0xE0C]",
                out(reg) a, out(reg) b, out(reg) c, options(nostack, readonly),
            );
            fields = [a, b, c];
        }
        #[cfg(target_arch = "aarch64")]
        {
            // x18 holds the TEB's address on ARM64 Windows.
            let (a, b, c): (usize, usize, usize);
            std::arch::asm!(
                "ldr {}, [x18, #0x08]", "ldr {}, [x18, #0x10]", "ldr {}, [x18, #0x1478]",
                out(reg) a, out(reg) b, out(reg) c, options(nostack, readonly),
            );
            fields = [a, b, c];
        }
    }
    fields
}

#[test]
fn the_teb_describes_the_running_stack() {
    let parent = teb_stack();
    let stack = DefaultStack::new(256 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |y: &Yielder<(), [usize; 3]>, ()| {
        let first = teb_stack();
        y.suspend(first);
        // Grow the stack through its guard page: StackLimit follows.
        black_box(recurse(200));
        teb_stack()
    });
    let inside = coroutine.resume(()).as_yield().unwrap();
    assert_eq!(teb_stack(), parent);
    let grown = coroutine.resume(()).as_return().unwrap();
    assert_eq!(teb_stack(), parent);
    assert_eq!(inside[0], grown[0]);
    assert_eq!(inside[2], grown[2]);
    assert!(grown[1] < inside[1], "{inside:x?} -> {grown:x?}");
    let stack = coroutine.into_stack();
    use stackswitch::stack::Stack;
    assert_eq!(inside[0], stack.base().get());
    assert_eq!(inside[2], stack.limit().get());
    // The stack kept the grown limit.
    assert_eq!(stack.teb_fields().StackLimit, grown[1]);
}

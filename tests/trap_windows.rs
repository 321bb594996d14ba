//! Recovery from real faults inside a coroutine on Windows: a vectored
//! exception handler redirects the faulting coroutine with
//! `CoroutineTrapHandler::setup_trap_handler`. Stack overflows come as
//! STATUS_STACK_OVERFLOW, raised when the guard page reaches the stack's
//! guarantee zone; the handler then runs on that zone.
//!
//! The per-CPU part (reading the stack pointer from a CONTEXT and writing
//! `TrapHandlerRegs` into it) is the `context` module below.
#![cfg(all(windows, feature = "default-stack"))]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Once;

use stackswitch::stack::DefaultStack;
use stackswitch::trap::CoroutineTrapHandler;
use stackswitch::{Coroutine, CoroutineResult, Yielder};
use windows_sys::Win32::Foundation::{EXCEPTION_ACCESS_VIOLATION, EXCEPTION_STACK_OVERFLOW};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, CONTEXT, EXCEPTION_CONTINUE_EXECUTION, EXCEPTION_CONTINUE_SEARCH,
    EXCEPTION_POINTERS,
};

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

/// How a test coroutine ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Finished(u64),
    /// Recovered from an access violation at this address.
    Faulted(usize),
    /// Recovered from a stack overflow.
    Overflowed,
}

thread_local! {
    /// The coroutine this thread is running, for the exception handler.
    static RUNNING: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
    /// Makes the recovery closure panic instead of returning.
    static PANIC_IN_RECOVERY: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "system" fn on_exception(info: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: the OS passes valid exception and context records.
    let (record, ctx) = unsafe { (&*(*info).ExceptionRecord, &mut *(*info).ContextRecord) };
    let outcome = match record.ExceptionCode {
        EXCEPTION_STACK_OVERFLOW => Outcome::Overflowed,
        EXCEPTION_ACCESS_VIOLATION => Outcome::Faulted(record.ExceptionInformation[1]),
        _ => return EXCEPTION_CONTINUE_SEARCH,
    };
    let ctx: &mut CONTEXT = ctx;
    match RUNNING.with(Cell::get) {
        Some(handler) if handler.stack_ptr_in_bounds(context::stack_pointer(ctx)) => {
            // SAFETY: the fault happened in this thread's running coroutine,
            // whose body owns nothing, and the registers are written back
            // before returning.
            unsafe {
                let regs = if PANIC_IN_RECOVERY.with(Cell::get) {
                    handler.setup_trap_handler(move || panic!("recovered {outcome:?}"))
                } else {
                    handler.setup_trap_handler(move || outcome)
                };
                context::redirect(ctx, &regs);
            }
            EXCEPTION_CONTINUE_EXECUTION
        }
        // Not ours: let the next handler (in the end, the OS) deal with it.
        _ => EXCEPTION_CONTINUE_SEARCH,
    }
}

fn prepare() {
    static INSTALL: Once = Once::new();
    // SAFETY: registering a handler that lives for the whole process.
    INSTALL.call_once(|| unsafe {
        assert!(!AddVectoredExceptionHandler(1, Some(on_exception)).is_null());
    });
}

/// Resumes `coroutine` with the trap handler published for this thread.
fn run_guarded<I, Y>(
    coroutine: &mut Coroutine<I, Y, Outcome>,
    input: I,
) -> CoroutineResult<Y, Outcome> {
    RUNNING.with(|r| r.set(Some(coroutine.trap_handler())));
    let result = coroutine.resume(input);
    RUNNING.with(|r| r.set(None));
    result
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = [depth; 32];
    black_box(&frame);
    recurse_forever(depth + 1) + frame[31]
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 32];
    black_box(&frame);
    if depth == 0 {
        0
    } else {
        recurse(depth - 1) + frame[31]
    }
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

#[test]
fn two_stack_overflows_in_a_row_are_recovered() {
    prepare();
    let parent = teb_stack();
    let mut stack = DefaultStack::new(64 * 1024).unwrap();
    for _ in 0..2 {
        let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
            Outcome::Finished(recurse_forever(0))
        });
        assert_eq!(
            run_guarded(&mut coroutine, ()),
            CoroutineResult::Return(Outcome::Overflowed)
        );
        assert!(coroutine.done());
        assert_eq!(teb_stack(), parent);
        stack = coroutine.into_stack();
    }
    // The stack is still good for ordinary use.
    let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        Outcome::Finished(recurse(100))
    });
    assert!(matches!(
        run_guarded(&mut coroutine, ()),
        CoroutineResult::Return(Outcome::Finished(_))
    ));
    // And a panic still unwinds normally in the parent afterwards.
    assert!(std::panic::catch_unwind(|| panic!("after")).is_err());
}

#[test]
fn overflow_after_suspending_is_recovered() {
    prepare();
    let mut coroutine = Coroutine::new(|y: &Yielder<(), ()>, ()| {
        y.suspend(());
        Outcome::Finished(recurse_forever(0))
    });
    assert_eq!(run_guarded(&mut coroutine, ()), CoroutineResult::Yield(()));
    assert_eq!(
        run_guarded(&mut coroutine, ()),
        CoroutineResult::Return(Outcome::Overflowed)
    );
}

#[test]
fn bad_address_is_recovered_after_suspending() {
    prepare();
    const BAD: usize = 0x18;
    let mut coroutine = Coroutine::new(|yielder: &Yielder<u64, u64>, x: u64| {
        let y = yielder.suspend(x + 1);
        // SAFETY: not safe at all: it faults, which is the point.
        let value = unsafe { std::ptr::read_volatile(black_box(BAD) as *const u64) };
        Outcome::Finished(y + value)
    });
    assert_eq!(run_guarded(&mut coroutine, 1), CoroutineResult::Yield(2));
    assert_eq!(
        run_guarded(&mut coroutine, 5),
        CoroutineResult::Return(Outcome::Faulted(BAD))
    );
    assert!(coroutine.done());
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_in_the_recovery_closure_reaches_the_parent() {
    prepare();
    PANIC_IN_RECOVERY.with(|p| p.set(true));
    let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| {
        // SAFETY: faults on purpose.
        let value = unsafe { std::ptr::read_volatile(black_box(0x28usize) as *const u64) };
        Outcome::Finished(value)
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_guarded(&mut coroutine, ())
    }));
    PANIC_IN_RECOVERY.with(|p| p.set(false));
    RUNNING.with(|r| r.set(None));
    let payload = result.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("recovered Faulted(40)")
    );
    assert!(coroutine.done());
}

#[test]
fn faults_outside_coroutines_are_not_swallowed() {
    const CHILD: &str = "STACKSWITCH_TRAP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        prepare();
        // Outside any coroutine: the handler must give up and let it kill us.
        // SAFETY: faults on purpose.
        unsafe { std::ptr::read_volatile(black_box(0x20usize) as *const u64) };
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "faults_outside_coroutines_are_not_swallowed",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    // Windows reports the access violation as the exit code; under Wine an
    // unhandled exception may instead end in its debugger's own status.
    assert!(!status.success(), "the fault was swallowed: {status:?}");
}

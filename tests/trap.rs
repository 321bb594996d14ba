//! Recovery from real faults inside a coroutine: a SIGSEGV/SIGBUS handler on
//! an alternate signal stack redirects the faulting coroutine with
//! `CoroutineTrapHandler::setup_trap_handler`.
//!
//! The per-CPU part (reading the stack pointer from a `ucontext_t` and
//! writing `TrapHandlerRegs` into it) is in `trap/<arch>.rs`.
#![cfg(all(unix, feature = "default-stack"))]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Once;

use stackswitch::stack::DefaultStack;
use stackswitch::trap::CoroutineTrapHandler;
use stackswitch::{Coroutine, CoroutineResult, Yielder};

mod common;

#[cfg(target_arch = "x86_64")]
#[path = "trap/x86_64.rs"]
mod context;
#[cfg(target_arch = "riscv64")]
#[path = "trap/riscv64.rs"]
mod context;
#[cfg(target_arch = "loongarch64")]
#[path = "trap/loongarch64.rs"]
mod context;
#[cfg(target_arch = "arm")]
#[path = "trap/arm.rs"]
mod context;
#[cfg(target_arch = "aarch64")]
#[path = "trap/aarch64.rs"]
mod context;
#[cfg(target_arch = "x86")]
#[path = "trap/x86.rs"]
mod context;
#[cfg(target_arch = "powerpc64")]
#[path = "trap/powerpc64.rs"]
mod context;
#[cfg(target_arch = "s390x")]
#[path = "trap/s390x.rs"]
mod context;

/// How a test coroutine ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Finished(u64),
    /// Recovered from a fault at this address.
    Faulted(usize),
}

thread_local! {
    /// The coroutine this thread is running, for the signal handler.
    static RUNNING: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
    /// Makes the recovery closure panic instead of returning.
    static PANIC_IN_RECOVERY: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C" fn on_fault(signal: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let uc = uc as *mut libc::ucontext_t;
    // SAFETY: the kernel passes a valid ucontext and siginfo to an
    // SA_SIGINFO handler.
    let (sp, addr) = unsafe { (context::stack_pointer(uc), (*info).si_addr() as usize) };
    match RUNNING.with(Cell::get) {
        Some(handler) if handler.stack_ptr_in_bounds(sp) => {
            // SAFETY: the fault happened in this thread's running coroutine,
            // whose body owns nothing, and the registers are written back
            // before returning.
            unsafe {
                let regs = if PANIC_IN_RECOVERY.with(Cell::get) {
                    handler.setup_trap_handler(move || {
                        panic!("recovered fault near {:#x}", addr & !0xfff)
                    })
                } else {
                    handler.setup_trap_handler(move || Outcome::Faulted(addr))
                };
                context::redirect(uc, &regs);
            }
        }
        // Not ours: restore the default action; the fault repeats and kills
        // the process with the right signal.
        // SAFETY: plain libc calls.
        _ => unsafe {
            libc::signal(signal, libc::SIG_DFL);
        },
    }
}

/// Installs the handler once per process and an alternate signal stack for
/// the current thread (a stack overflow leaves no stack to handle it on).
fn prepare_thread() {
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

#[test]
fn stack_overflow_into_the_guard_page_is_recovered() {
    prepare_thread();
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        Outcome::Finished(recurse_forever(0))
    });
    match run_guarded(&mut coroutine, ()) {
        CoroutineResult::Return(Outcome::Faulted(_)) => {}
        other => panic!("expected a recovered overflow, got {other:?}"),
    }
    assert!(coroutine.done());

    // The guard page still works: overflow the same stack again.
    let stack = coroutine.into_stack();
    let mut again = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        Outcome::Finished(recurse_forever(0))
    });
    assert!(matches!(
        run_guarded(&mut again, ()),
        CoroutineResult::Return(Outcome::Faulted(_))
    ));
}

#[test]
fn bad_address_is_recovered_after_suspending() {
    prepare_thread();
    const BAD: usize = 0x18;
    let mut coroutine = Coroutine::new(|yielder: &Yielder<u64, u64>, x: u64| {
        let y = yielder.suspend(x + 1);
        // SAFETY: not safe at all: it faults, which is the point.
        let value = unsafe { std::ptr::read_volatile(black_box(BAD) as *const u64) };
        Outcome::Finished(y + value)
    });
    assert_eq!(run_guarded(&mut coroutine, 1), CoroutineResult::Yield(2));
    match run_guarded(&mut coroutine, 5) {
        // Some kernels (s390x) report the fault address rounded down to
        // its page.
        CoroutineResult::Return(Outcome::Faulted(addr)) => assert_eq!(addr & !0xfff, BAD & !0xfff),
        other => panic!("expected a recovered fault, got {other:?}"),
    }
    assert!(coroutine.done());
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_in_the_recovery_closure_reaches_the_parent() {
    prepare_thread();
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
        Some("recovered fault near 0x0")
    );
    assert!(coroutine.done());
}

#[test]
fn faults_outside_coroutines_are_not_swallowed() {
    const CHILD: &str = "STACKSWITCH_TRAP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        prepare_thread();
        // Outside any coroutine: the handler must give up and let it kill us.
        // SAFETY: faults on purpose.
        unsafe { std::ptr::read_volatile(black_box(0x20usize) as *const u64) };
        return;
    }
    let status = common::this_test_binary()
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
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGSEGV));
}

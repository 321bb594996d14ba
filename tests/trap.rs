//! Recovery from real faults inside a coroutine: a fault handler (a signal
//! handler on Unix, a vectored exception handler on Windows, in
//! `trap/<platform>.rs`) redirects the faulting coroutine with
//! `CoroutineTrapHandler::setup_trap_handler`, through the `TrapHandlerRegs`
//! of the CPU (`trap/<arch>.rs` on Unix).
#![cfg(feature = "default-stack")]
// Under Miri the signal handlers that use the helpers below are stubbed out.
#![cfg_attr(miri, allow(dead_code))]

use std::cell::Cell;
use std::hint::black_box;

use stackswitch::stack::DefaultStack;
use stackswitch::trap::{CoroutineTrapHandler, TrapHandlerRegs};
use stackswitch::{Coroutine, CoroutineResult, Yielder};

mod common;

#[cfg(all(unix, not(miri)))]
#[path = "trap/unix.rs"]
mod platform;
#[cfg(all(windows, not(miri)))]
#[path = "trap/windows.rs"]
mod platform;
/// Under Miri there are no signals, so no handlers to install (and
/// `TrapHandlerRegs` has no registers to write): the tests are ignored.
#[cfg(miri)]
mod platform {
    pub fn prepare_thread() {
        unreachable!("no signals under Miri");
    }

    pub fn died_of_a_fault(_: &std::process::ExitStatus) -> bool {
        unreachable!("no child processes under Miri");
    }
}

/// How a test coroutine ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Finished(u64),
    /// Recovered from a fault on the coroutine's own stack (its guard page).
    Overflowed,
    /// Recovered from a fault at this address, elsewhere.
    Faulted(usize),
}

thread_local! {
    /// The coroutine this thread is running, for the fault handler.
    static RUNNING: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
    /// Makes the recovery closure panic instead of returning.
    static PANIC_IN_RECOVERY: Cell<bool> = const { Cell::new(false) };
}

/// The fault handlers' common part: if the fault (`outcome`, with the
/// interrupted stack pointer `sp`) happened in this thread's running
/// coroutine, the registers that redirect it into a recovery closure.
fn recovery_for(sp: usize, outcome: Outcome) -> Option<TrapHandlerRegs> {
    let handler = RUNNING
        .with(Cell::get)
        .filter(|h| h.stack_ptr_in_bounds(sp))?;
    // SAFETY: the fault happened in this thread's running coroutine, whose
    // body owns nothing; the caller writes the registers back before the
    // handler returns.
    unsafe {
        Some(if PANIC_IN_RECOVERY.with(Cell::get) {
            handler.setup_trap_handler(move || panic!("recovered from {outcome:?}"))
        } else {
            handler.setup_trap_handler(move || outcome)
        })
    }
}

/// Classifies a fault at `addr`: on the running coroutine's own stack (its
/// guard page) or elsewhere.
fn classify(addr: usize) -> Outcome {
    match RUNNING.with(Cell::get) {
        Some(handler) if handler.stack_ptr_in_bounds(addr) => Outcome::Overflowed,
        // Some kernels (s390x) report the address rounded down to its page.
        _ => Outcome::Faulted(addr & !0xfff),
    }
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

#[test]
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn two_stack_overflows_in_a_row_are_recovered() {
    platform::prepare_thread();
    let mut stack = DefaultStack::new(64 * 1024).unwrap();
    // The guard page still works after a recovery (on Windows: it is
    // re-armed, as `_resetstkoflw` does).
    for _ in 0..2 {
        let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
            Outcome::Finished(recurse_forever(0))
        });
        assert_eq!(
            run_guarded(&mut coroutine, ()),
            CoroutineResult::Return(Outcome::Overflowed)
        );
        assert!(coroutine.done());
        stack = coroutine.into_stack();
    }
    // And the stack is still good for ordinary use.
    let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        Outcome::Finished(recurse(100))
    });
    assert!(matches!(
        run_guarded(&mut coroutine, ()),
        CoroutineResult::Return(Outcome::Finished(_))
    ));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn overflow_after_suspending_is_recovered() {
    platform::prepare_thread();
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
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn bad_address_is_recovered_after_suspending() {
    platform::prepare_thread();
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
        CoroutineResult::Return(Outcome::Faulted(BAD & !0xfff))
    );
    assert!(coroutine.done());
}

/// Under GCS (a build with `-Zbranch-protection=gcs`), a trapped coroutine
/// leaves through the trap handler with the trapped frames' return
/// addresses still on its control stack; its exit pops them, so that the
/// control stack is ready for the next coroutine on the same stack.
#[cfg(all(stackswitch_gcs, target_arch = "aarch64", target_os = "linux"))]
#[test]
fn a_trapped_coroutine_leaves_its_control_stack_ready_for_reuse() {
    use stackswitch::stack::Stack;
    platform::prepare_thread();
    let mut stack = DefaultStack::new(64 * 1024).unwrap();
    let Some(top) = stack.shadow_stack() else {
        return; // GCS is off: nothing to check
    };
    const BAD: usize = 0x38;
    let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        // SAFETY: faults on purpose.
        let value = unsafe { std::ptr::read_volatile(black_box(BAD) as *const u64) };
        Outcome::Finished(value)
    });
    assert_eq!(
        run_guarded(&mut coroutine, ()),
        CoroutineResult::Return(Outcome::Faulted(BAD & !0xfff))
    );
    let _stack = coroutine.into_stack();
    let cap_at = top.get() - 8;
    // SAFETY: the control stack's top word, readable (only ordinary stores
    // are refused), and nothing runs on it.
    let cap = unsafe { std::ptr::read_volatile(cap_at as *const usize) };
    assert_eq!(
        cap,
        (cap_at & !0xfff) | 1,
        "the trapped coroutine did not leave its cap at the top"
    );
}

#[cfg(feature = "unwind")]
#[test]
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn a_panic_in_the_recovery_closure_reaches_the_parent() {
    platform::prepare_thread();
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
        Some("recovered from Faulted(0)")
    );
    assert!(coroutine.done());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn faults_outside_coroutines_are_not_swallowed() {
    const CHILD: &str = "STACKSWITCH_TRAP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        platform::prepare_thread();
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
    assert!(
        platform::died_of_a_fault(&status),
        "the fault was swallowed: {status:?}"
    );
}

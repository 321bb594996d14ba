//! Coroutines on a thread with the Guarded Control Stack (GCS) on: AArch64
//! Linux, or qemu-aarch64 (10.1 and later) with `-cpu max`, where glibc
//! (2.41 and later) enables GCS for the process under the tunable
//! `glibc.cpu.aarch64_gcs` (ci/gcs.sh). Under a build with
//! `-Zbranch-protection=gcs` (build.rs sets `stackswitch_gcs`) every switch
//! must work and return addresses must still be checked; under a default
//! build creating a coroutine must panic with what to do.
//!
//! With `STACKSWITCH_EXPECT_GCS=1` the tests first check that GCS really is
//! on, so that a run meant to test it cannot pass without it.
#![cfg(all(target_arch = "aarch64", target_os = "linux"))]

use std::arch::{asm, naked_asm};

#[cfg(stackswitch_gcs)]
use stackswitch::stack::{DefaultStack, StackPool};
#[cfg(stackswitch_gcs)]
use stackswitch::Yielder;
use stackswitch::{Coroutine, CoroutineResult};

/// Whether GCS is on for this thread (`chkfeat x16`, a NOP on cores
/// without it, clears bit 0 of x16 when it is).
fn gcs_on() -> bool {
    let features: u64;
    // SAFETY: a hint instruction that only clears bits of x16.
    unsafe { asm!("mov x16, #1", "hint #40", out("x16") features, options(nomem, nostack)) };
    features == 0
}

/// GCSPR_EL0, the current control stack's pointer (only read with GCS on:
/// the register does not exist on older cores).
#[cfg(stackswitch_gcs)]
fn gcspr() -> u64 {
    let pointer: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mrs {}, S3_3_C2_C5_1", out(reg) pointer, options(nomem, nostack)) };
    pointer
}

/// Whether to test anything: GCS on, or a failure if the run expected it.
fn gcs_expected() -> bool {
    let expected = std::env::var("STACKSWITCH_EXPECT_GCS").is_ok_and(|v| v == "1");
    assert!(
        gcs_on() || !expected,
        "STACKSWITCH_EXPECT_GCS=1 but GCS is off for this thread: this run proves nothing"
    );
    gcs_on()
}

/// Runs `f` in a child process and returns how it ended (a `waitpid`
/// status). The child leaves with `_exit`.
fn in_child(f: fn()) -> libc::c_int {
    // SAFETY: the child only runs `f` and exits; the tests that fork run
    // the rest of the child's code on its one thread.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let passed = std::panic::catch_unwind(f).is_ok();
        // SAFETY: ends the child without running exit handlers.
        unsafe { libc::_exit(if passed { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

#[cfg(stackswitch_gcs)]
fn signal_of(status: libc::c_int) -> libc::c_int {
    if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        0
    }
}

/// Every switch path: start, suspend, resume, finish, a panic out of a
/// coroutine, a forced unwind on drop, nesting, the parent's stack, another
/// stack, and reuse of pooled stacks (whose control stacks stay with them).
#[cfg(stackswitch_gcs)]
fn use_every_switch_path() {
    let mut coroutine = Coroutine::new(|yielder, first: u32| {
        let mut sum = first;
        for i in 0..3 {
            sum += yielder.suspend(i);
        }
        sum += yielder.on_parent_stack(|| 100);
        let mut inner = Coroutine::new(|inner: &Yielder<(), u32>, ()| {
            inner.suspend(1000);
            2000
        });
        assert_eq!(inner.resume(()), CoroutineResult::Yield(1000));
        sum += yielder.suspend(3);
        assert_eq!(inner.resume(()), CoroutineResult::Return(2000));
        sum
    });
    assert_eq!(coroutine.resume(1), CoroutineResult::Yield(0));
    assert_eq!(coroutine.resume(2), CoroutineResult::Yield(1));
    assert_eq!(coroutine.resume(3), CoroutineResult::Yield(2));
    assert_eq!(coroutine.resume(4), CoroutineResult::Yield(3));
    assert_eq!(coroutine.resume(5), CoroutineResult::Return(115));

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panicking = Coroutine::<(), (), ()>::new(|_, ()| panic!("expected"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking.resume(())));
    std::panic::set_hook(hook);
    assert!(caught.is_err());

    let mut suspended = Coroutine::<(), (), ()>::new(|yielder, ()| {
        let _keep = String::from("on the coroutine stack");
        yielder.suspend(());
    });
    assert_eq!(suspended.resume(()), CoroutineResult::Yield(()));
    drop(suspended);

    let stack = DefaultStack::new(64 * 1024).unwrap();
    assert_eq!(stackswitch::on_stack(stack, || 7), 7);

    let pool = StackPool::new(64 * 1024).unwrap();
    for i in 0..4u32 {
        let mut pooled = Coroutine::with_stack(pool.get().unwrap(), |y: &Yielder<u32, u32>, x| {
            let again = y.suspend(x + 1);
            again * 2
        });
        assert_eq!(pooled.resume(i), CoroutineResult::Yield(i + 1));
        assert_eq!(pooled.resume(i), CoroutineResult::Return(i * 2));
    }
    assert_eq!(pool.idle(), 1);
}

#[cfg(stackswitch_gcs)]
#[test]
fn every_switch_path_works_under_gcs() {
    if !gcs_expected() {
        return;
    }
    // In a child, so that a control-stack fault is reported, not fatal.
    let status = in_child(use_every_switch_path);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the switch failed under GCS (status {status:#x}, signal {}: SIGSEGV means a return \
         did not match the control stack)",
        signal_of(status)
    );
}

#[cfg(stackswitch_gcs)]
#[test]
fn each_coroutine_has_a_control_stack_of_its_own() {
    if !gcs_expected() {
        return;
    }
    let parent = gcspr();
    let mut coroutine = Coroutine::new(|yielder: &Yielder<(), u64>, ()| {
        yielder.suspend(gcspr());
        gcspr()
    });
    let CoroutineResult::Yield(first) = coroutine.resume(()) else {
        panic!("did not yield")
    };
    assert_eq!(gcspr(), parent, "the parent's control stack moved");
    let CoroutineResult::Return(second) = coroutine.resume(()) else {
        panic!("did not return")
    };
    assert_eq!(gcspr(), parent, "the parent's control stack moved");
    // The parent's control stack is the thread's; the coroutine's is a
    // mapping of its own, far from it.
    assert!(
        first.abs_diff(parent) > 1 << 16,
        "{first:#x} near the parent's {parent:#x}"
    );
    assert_eq!(
        first, second,
        "the coroutine's control stack moved across a switch"
    );
}

/// Code to return to where GCS is off: it exits the child with 42.
extern "C" fn hijacked() -> ! {
    // SAFETY: ends the child process.
    unsafe { libc::_exit(42) }
}

/// Returns to `target` instead of its caller, by overwriting its return
/// address in its frame record on the data stack (what a stack buffer
/// overflow does), then returning.
#[unsafe(naked)]
extern "C" fn return_elsewhere(target: extern "C" fn() -> !) {
    naked_asm!(
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "str x0, [sp, #8]",
        "ldp x29, x30, [sp], #16",
        "ret",
    )
}

fn overwrite_a_return_address_in_a_coroutine() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|yielder, ()| {
        yielder.suspend(());
        return_elsewhere(std::hint::black_box(hijacked));
    });
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    coroutine.resume(());
}

#[cfg(stackswitch_gcs)]
#[test]
fn an_overwritten_return_address_is_caught_in_a_coroutine() {
    if !gcs_expected() {
        return;
    }
    let status = in_child(overwrite_a_return_address_in_a_coroutine);
    assert!(
        signal_of(status) == libc::SIGSEGV,
        "a return to an overwritten address was not stopped by GCS (status {status:#x}; \
         exit code 42 means it reached the hijacked code)"
    );
}

/// The control for the test above: without GCS the same overwrite reaches
/// the hijacked code.
#[test]
fn an_overwritten_return_address_is_followed_without_gcs() {
    if gcs_on() {
        return;
    }
    let status = in_child(overwrite_a_return_address_in_a_coroutine);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 42,
        "the overwrite did not reach the hijacked code (status {status:#x}): the test's \
         premise is wrong"
    );
}

/// A default build cannot follow GCS: creating a coroutine says so instead
/// of crashing at the first switch.
#[cfg(not(stackswitch_gcs))]
#[test]
fn without_gcs_support_creation_panics_with_what_to_do() {
    if !gcs_expected() {
        return;
    }
    let Err(panic) = std::panic::catch_unwind(|| Coroutine::<(), (), ()>::new(|_, ()| ())) else {
        panic!("a coroutine was created under GCS by a build that cannot follow it");
    };
    let message = *panic.downcast_ref::<&str>().expect("a panic message");
    assert!(message.contains("-Zbranch-protection=gcs"), "{message}");
}

/// A coroutine that finishes leaves its control stack as it found it, so
/// that the next coroutine on the same stack reuses it; one that never
/// finishes (`force_reset`) leaves it spent, and the stack gets a new one.
#[cfg(stackswitch_gcs)]
#[test]
fn control_stacks_are_reused_after_exit_and_replaced_after_a_reset() {
    use stackswitch::stack::Stack;
    if !gcs_expected() {
        return;
    }
    let pool = StackPool::new(64 * 1024).unwrap();
    let mut stack = pool.get().unwrap();
    let first = stack.shadow_stack().expect("a control stack under GCS");
    let suspend_twice = |yielder: &Yielder<(), ()>, ()| {
        yielder.suspend(());
        yielder.suspend(());
    };
    let mut coroutine = Coroutine::with_stack(stack, suspend_twice);
    while coroutine.resume(()) != CoroutineResult::Return(()) {}
    let mut stack = coroutine.into_stack();
    let cap_at = first.get() - 8;
    // SAFETY: the control stack's top word, readable (only ordinary stores
    // are refused), and nothing runs on it.
    let cap = unsafe { std::ptr::read_volatile(cap_at as *const usize) };
    assert_eq!(
        cap,
        (cap_at & !0xfff) | 1,
        "the finished coroutine did not leave its cap at the top"
    );
    assert_eq!(
        stack.shadow_stack(),
        Some(first),
        "the control stack was replaced"
    );

    let mut coroutine = Coroutine::with_stack(stack, suspend_twice);
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    // SAFETY: the coroutine's frames own nothing that needs dropping.
    unsafe { coroutine.force_reset() };
    let stack = coroutine.into_stack();
    // Its cap is gone: a new control stack, and a coroutine runs on it.
    let mut coroutine = Coroutine::with_stack(stack, suspend_twice);
    while coroutine.resume(()) != CoroutineResult::Return(()) {}
    let mut stack = coroutine.into_stack();
    assert!(stack.shadow_stack().is_some());
}

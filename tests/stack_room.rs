//! How large a closure a coroutine accepts: the usable part of its stack
//! (`Stack::usable_limit`, never a guard page) must hold the closure, a copy
//! of it, and `MIN_STACK_SIZE` bytes more. Tested on each side of the
//! boundary for each kind of stack: a closure that fits runs (and is
//! unwound); one that does not is refused with a clear panic, never a fault.
#![cfg(all(unix, feature = "default-stack"))]

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

use stackswitch::stack::{DefaultStack, Stack, StackPointer, StackPool, MIN_STACK_SIZE};
use stackswitch::{Coroutine, CoroutineResult, Yielder};

/// Usable bytes of every stack tested (a multiple of any page size).
const USABLE: usize = 64 * 1024;
/// The largest closure that could fit if the stack's header took nothing.
const LARGEST: usize = (USABLE - MIN_STACK_SIZE) / 2;

/// A stack of the user's own: a `DefaultStack` that reports its guard page
/// below its limit, as the `Stack` contract allows, so the default
/// `usable_limit` (the limit) is right for it.
struct GuardBelowLimit(DefaultStack);

// SAFETY: the limit is the inner stack's usable limit, above its guard
// page; the rest is the inner stack's.
unsafe impl Stack for GuardBelowLimit {
    fn base(&self) -> StackPointer {
        self.0.base()
    }

    fn limit(&self) -> StackPointer {
        // Just above the inner stack's guard page (where it has one).
        self.0.usable_limit()
    }

    // Under a hardware shadow stack (AArch64 GCS), the inner stack's.
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        self.0.shadow_stack()
    }
}

/// Creates a coroutine whose closure holds `N` bytes on `stack`; if it is
/// accepted, runs it to a suspend and drops it (unwinding it). Returns
/// whether it was accepted; a refusal must be the documented panic.
fn attempt<S: Stack + 'static, const N: usize>(stack: S) -> bool {
    let data = black_box([7u8; N]);
    let created = catch_unwind(AssertUnwindSafe(|| {
        Coroutine::with_stack(stack, move |yielder: &Yielder<(), usize>, ()| {
            let value = black_box(&data)[N - 1] as usize + 1;
            // Suspended, it is unwound when dropped, where that is possible.
            if cfg!(feature = "unwind") {
                yielder.suspend(value);
            }
            value
        })
    }));
    match created {
        Ok(mut coroutine) => {
            let (CoroutineResult::Yield(value) | CoroutineResult::Return(value)) =
                coroutine.resume(());
            assert_eq!(value, 8);
            drop(coroutine);
            true
        }
        Err(payload) => {
            let message = payload.downcast_ref::<String>().unwrap();
            assert!(
                message.contains("closure is too large for the coroutine's stack"),
                "{message}"
            );
            false
        }
    }
}

/// Tries closures of `LARGEST - offset` bytes, from the smallest, and
/// checks that there is one boundary, at most a header's size below
/// `LARGEST`, then that `LARGEST + 1` bytes and a closure as large as the
/// stack (which would reach into the guard page) are refused.
macro_rules! check_boundary {
    ($new_stack:expr, [$($offset:literal)*]) => {{
        let results = [$(attempt::<_, { LARGEST - $offset }>($new_stack)),*];
        let offsets = [$($offset),*];
        let first_fit = results.iter().position(|&fits| fits).expect("no closure fits");
        assert!(
            results[first_fit..].iter().all(|&fits| fits),
            "fits at offsets {:?}: {results:?}",
            offsets
        );
        // The stack's header (arch header and state) is far smaller.
        assert!(offsets[first_fit] <= 256, "{results:?}");
        assert!(!attempt::<_, { LARGEST + 1 }>($new_stack));
        assert!(!attempt::<_, { USABLE + 1024 }>($new_stack));
    }};
}

macro_rules! offsets {
    ($new_stack:expr) => {
        check_boundary!(
            $new_stack,
            [0 8 16 24 32 40 48 56 64 72 80 88 96 104 112 120 128 136 144 152 160 168 176 184
             192 200 208 216 224 232 240 248 256 264 272 280 288 296 304 312 320]
        )
    };
}

#[test]
fn closure_room_on_a_default_stack() {
    offsets!(DefaultStack::new(USABLE).unwrap());
}

#[test]
fn closure_room_on_a_pooled_stack() {
    let pool = StackPool::new(USABLE).unwrap();
    offsets!(pool.get().unwrap());
}

#[test]
fn closure_room_on_a_user_stack() {
    offsets!(GuardBelowLimit(DefaultStack::new(USABLE).unwrap()));
}

#[test]
fn a_closure_larger_than_the_stack_is_refused_not_written_into_the_guard_page() {
    // The case reported: 17 KiB on a 16 KiB stack.
    assert!(!attempt::<_, { 17 * 1024 }>(
        DefaultStack::new(16 * 1024).unwrap()
    ));
}

#[test]
fn remaining_stack_counts_usable_bytes_only() {
    let stack = DefaultStack::new(USABLE).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| {
        yielder.remaining_stack()
    });
    let left = coroutine.resume(()).as_return().unwrap();
    assert!(left < USABLE, "{left} counts the guard page");
    assert!(left > USABLE - 16 * 1024, "{left}");
}

//! Behaviour a corosensei 0.3.4 program relies on: stack sizes it accepts,
//! and the text of its panics (`#[should_panic(expected = ...)]` matches a
//! substring of the message).

use stackswitch::stack::{DefaultStack, Stack, StackPool, MIN_STACK_SIZE};
use stackswitch::{Coroutine, Yielder};

/// Runs a coroutine that suspends once on `stack`, then hands the stack back.
fn run_on(stack: DefaultStack) -> DefaultStack {
    let mut coroutine =
        Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, x| y.suspend(x + 1) * 2);
    assert_eq!(coroutine.resume(1).as_yield(), Some(2));
    assert_eq!(coroutine.resume(5).as_return(), Some(10));
    coroutine.into_stack()
}

#[test]
fn default_stack_below_the_minimum_is_raised_to_it() {
    for size in [0, 1, MIN_STACK_SIZE - 1] {
        let stack = DefaultStack::new(size).unwrap();
        assert!(
            stack.base().get() - stack.limit().get() >= MIN_STACK_SIZE,
            "{size}"
        );
        run_on(stack);
    }
}

#[test]
fn stack_pool_still_refuses_a_size_below_the_minimum() {
    let kind = StackPool::new(MIN_STACK_SIZE - 1).err().map(|e| e.kind());
    assert_eq!(kind, Some(std::io::ErrorKind::InvalidInput));
}

#[test]
#[should_panic(expected = "attempt to resume a completed coroutine")]
fn resume_of_a_completed_coroutine() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|_, ()| {});
    coroutine.resume(());
    coroutine.resume(());
}

// Needs `unwind`: the panic drops the suspended coroutine.
#[cfg(feature = "unwind")]
#[test]
#[should_panic(expected = "cannot extract stack from an incomplete coroutine")]
fn into_stack_of_a_suspended_coroutine() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|y, ()| y.suspend(()));
    coroutine.resume(());
    let _ = coroutine.into_stack();
}

#[test]
#[should_panic(expected = "cannot extract stack from an incomplete coroutine")]
fn into_stack_of_an_unstarted_coroutine() {
    let coroutine = Coroutine::<(), (), ()>::new(|_, ()| {});
    let _ = coroutine.into_stack();
}

// Without unwinding, a suspended coroutine cannot be unwound; the panic
// leaves it suspended, so it is finished before it is dropped.
#[cfg(not(feature = "unwind"))]
#[test]
fn force_unwind_without_the_unwind_feature() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut coroutine = Coroutine::<(), (), ()>::new(|y, ()| y.suspend(()));
    coroutine.resume(());
    let err = catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind())).unwrap_err();
    let message = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        message.contains("can't unwind a suspended coroutine without the \"unwind\" feature"),
        "{message}"
    );
    coroutine.resume(());
}

//! `Yielder::remaining_stack` and `Yielder::maybe_grow`.
#![cfg(feature = "default-stack")]

use std::hint::black_box;

use stackswitch::stack::DefaultStack;
use stackswitch::{on_stack, Coroutine, CoroutineResult, Yielder};

#[inline(never)]
fn remaining_below_a_16k_frame(yielder: &Yielder<(), usize>) -> usize {
    let frame = black_box([1u8; 16 * 1024]);
    // Measured in a frame of its own: within one frame the compiler may put
    // the measuring local above the array.
    remaining_in_a_new_frame(yielder) + frame[0] as usize - 1
}

#[inline(never)]
fn remaining_in_a_new_frame(yielder: &Yielder<(), usize>) -> usize {
    black_box(yielder.remaining_stack())
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn remaining_stack_counts_down_from_the_stack_size() {
    let stack = DefaultStack::new(128 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), usize>, ()| {
        let top = yielder.remaining_stack();
        yielder.suspend(top);
        let deeper = remaining_below_a_16k_frame(yielder);
        yielder.suspend(deeper);
        yielder.remaining_stack()
    });
    let top = coroutine.resume(()).as_yield().unwrap();
    // The limit includes the guard page (a page: 4 to 64 KiB depending on
    // the target); the top holds the header and a few frames.
    assert!(top > 120 * 1024 && top <= (128 + 64) * 1024, "{top}");
    let deeper = coroutine.resume(()).as_yield().unwrap();
    assert!(deeper + 16 * 1024 <= top, "{deeper} vs {top}");
    assert!(deeper + 64 * 1024 > top, "{deeper} vs {top}");
    // Back at the same depth: the same answer (it is TLS-free and needs no
    // bookkeeping on switches).
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(top));
}

#[test]
fn remaining_stack_is_zero_on_a_foreign_stack() {
    let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
        let mut other = DefaultStack::new(64 * 1024).unwrap();
        on_stack(&mut other, || yielder.remaining_stack())
    });
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(0));
}

/// Recursion of about 600 bytes per level, growing when under 64 KiB is
/// left (the limit includes guard pages, and on Windows a ~28 KiB guard and
/// guarantee zone), suspending at the bottom with what is left there.
fn deep(yielder: &Yielder<(), u64>, n: u64) -> u64 {
    let frame = black_box([n; 64]);
    if n == 0 {
        yielder.suspend(yielder.remaining_stack() as u64);
        return frame[0];
    }
    yielder.maybe_grow(64 * 1024, 256 * 1024, || deep(yielder, n - 1)) + frame[1] - n + 1
}

#[test]
#[cfg_attr(
    miri,
    ignore = "15,000 levels of recursion are too slow for Miri; maybe_grow's segments are covered by the two tests below"
)]
fn maybe_grow_recurses_far_beyond_the_stack_and_can_suspend_there() {
    // 15,000 levels need ~9 MiB: a 64 KiB stack overflows without growing.
    // (Not many more: each level is three calls deep, and ThreadSanitizer
    // keeps a shadow call stack of 65,536 entries per fiber, which a
    // recursion of 21,800 levels was seen to overflow.)
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), u64>, ()| {
        deep(yielder, 15_000)
    });
    let remaining_at_bottom = coroutine.resume(()).as_yield().unwrap();
    // At the bottom, on a 256 KiB segment (plus up to 64 KiB of guard
    // pages), with at least the red zone minus one level left.
    assert!(
        remaining_at_bottom > 32 * 1024 && remaining_at_bottom < (256 + 64) * 1024,
        "{remaining_at_bottom}"
    );
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(15_000));
}

#[cfg(feature = "unwind")]
#[test]
fn a_coroutine_suspended_on_grown_segments_unwinds_when_dropped() {
    use std::rc::Rc;
    let alive = Rc::new(());
    let witness = Rc::clone(&alive);
    let mut coroutine = Coroutine::new(move |yielder: &Yielder<(), u64>, ()| {
        let _witness = witness;
        deep(yielder, 5_000)
    });
    assert!(coroutine.resume(()).as_yield().is_some());
    assert_eq!(Rc::strong_count(&alive), 2);
    drop(coroutine);
    assert_eq!(Rc::strong_count(&alive), 1);
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_on_a_grown_segment_reaches_the_coroutine_with_its_bounds_restored() {
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| {
        let before = yielder.remaining_stack();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A red zone larger than the stack forces a new segment, large
            // enough for the panic hook to print a backtrace there
            // (RUST_BACKTRACE): under ThreadSanitizer, symbolizing took
            // more than 64 KiB.
            yielder.maybe_grow(1 << 30, 256 * 1024, || {
                assert!(yielder.remaining_stack() > 32 * 1024);
                panic!("on the segment")
            })
        }));
        assert!(caught.is_err());
        let after = yielder.remaining_stack();
        assert!(before.abs_diff(after) < 1024, "{before} vs {after}");
        after
    });
    let left = coroutine.resume(()).as_return().unwrap();
    // As above: the stack, plus a guard page of up to 64 KiB.
    assert!(left > 32 * 1024 && left <= (64 + 64) * 1024, "{left}");
}

/// Everything that runs on a coroutine's stack on its way in and out, a
/// forced unwind included, fits in `MIN_STACK_SIZE` on every CPU. Measured
/// on a larger stack, where an overflow of the minimum shows as a number
/// instead of a crash.
#[cfg(all(unix, feature = "unwind"))]
#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn a_forced_unwind_fits_in_the_minimum_stack() {
    use stackswitch::stack::MIN_STACK_SIZE;
    use stackswitch::ScopedCoroutine;

    let mut stack = DefaultStack::new(256 * 1024).unwrap();
    // Twice: the first unwind of a process may take more than later ones.
    for _ in 0..2 {
        let coroutine = ScopedCoroutine::with_stack(&mut stack, |y: &Yielder<(), ()>, ()| {
            let _held = black_box(vec![1u8; 3]);
            y.suspend(());
        });
        // Leaving the scope unwinds the suspended coroutine.
        coroutine.scope(|mut coroutine| {
            assert!(coroutine.resume(()).as_yield().is_some());
        });
    }
    let used = stack.high_water_mark();
    assert!(
        used <= MIN_STACK_SIZE,
        "{used} bytes used, MIN_STACK_SIZE is {MIN_STACK_SIZE}"
    );
}

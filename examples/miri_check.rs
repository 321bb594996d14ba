//! A small program of the kind users check under Miri: it creates, resumes,
//! drops, panics through and nests coroutines, and passes values of every
//! size through them. Under Miri every coroutine runs on a thread of its
//! own, and Miri checks each hand-off for data races and every access for
//! undefined behaviour.
//!
//! ```sh
//! cargo run --example miri_check
//! MIRIFLAGS=-Zmiri-permissive-provenance cargo +nightly miri run --example miri_check
//! ```

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use stackswitch::stack::DefaultStack;
use stackswitch::{is_forced_unwind, Coroutine, CoroutineResult, Generator, Yielder};

/// Counts its drops, to show that dropping a suspended coroutine runs the
/// destructors on its stack.
struct Tracked(Rc<Cell<u32>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn main() {
    // Create and resume: values in and out, small and large.
    let mut sum = Coroutine::new(|yielder: &Yielder<[u64; 32], String>, first: [u64; 32]| {
        let mut total: u64 = first.iter().sum();
        for _ in 0..3 {
            let next = yielder.suspend(format!("total {total}"));
            total += next.iter().sum::<u64>();
        }
        vec![total; 4]
    });
    for i in 0..3 {
        let result = sum.resume([i; 32]);
        println!("resume {i}: {}", result.as_yield().unwrap());
    }
    let result = sum.resume([10; 32]);
    assert_eq!(result, CoroutineResult::Return(vec![416; 4]));
    let stack = sum.into_stack();

    // Drop a suspended coroutine: its stack is unwound.
    let drops = Rc::new(Cell::new(0));
    let tracked = Tracked(drops.clone());
    let mut suspended = Coroutine::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
        let _held = tracked;
        let caught = catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
        // Code that catches panics lets the forced unwind through.
        if let Err(payload) = caught {
            assert!(is_forced_unwind(&*payload));
            std::panic::resume_unwind(payload);
        }
    });
    suspended.resume(());
    drop(suspended);
    assert_eq!(drops.get(), 1);
    println!("dropped a suspended coroutine: its destructor ran");

    // A panic inside continues from the parent's `resume`.
    let mut panicking = Coroutine::<(), (), ()>::new(|yielder, ()| {
        yielder.suspend(());
        std::panic::panic_any("inside the coroutine");
    });
    panicking.resume(());
    let payload = catch_unwind(AssertUnwindSafe(|| panicking.resume(()))).unwrap_err();
    println!("caught: {}", payload.downcast_ref::<&str>().unwrap());
    assert!(panicking.done());

    // Nested coroutines, and a generator inside a coroutine.
    let mut outer = Coroutine::new(|outer: &Yielder<u32, u32>, start: u32| {
        let mut inner = Coroutine::new(|inner: &Yielder<u32, u32>, x: u32| {
            let y = inner.suspend(x * 2);
            y + 1
        });
        let doubled = inner.resume(start).as_yield().unwrap();
        let from_parent = outer.suspend(doubled);
        let squares: u32 = Generator::new(|y| (1..=3).for_each(|i| y.suspend(i * i))).sum();
        inner.resume(from_parent).as_return().unwrap() + squares
    });
    assert_eq!(outer.resume(5), CoroutineResult::Yield(10));
    assert_eq!(outer.resume(20), CoroutineResult::Return(21 + 14));
    println!("nested: ok");

    // On a small stack of its own, running a closure on the parent's stack.
    let small = DefaultStack::new(16 * 1024).unwrap();
    let mut on_parent = Coroutine::with_stack(small, |yielder: &Yielder<(), ()>, ()| {
        yielder.on_parent_stack(|| (1..=100u32).sum::<u32>())
    });
    assert_eq!(on_parent.resume(()), CoroutineResult::Return(5050));
    println!("on the parent's stack: ok");
}

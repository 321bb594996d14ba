//! `ScopedCoroutine`: borrowing bodies stay sound whatever the scope does
//! with the reference it is given.
#![cfg(feature = "default-stack")]

use std::cell::Cell;

use stackswitch::stack::DefaultStack;
use stackswitch::{ScopedCoroutine, Yielder};

struct Flag<'a>(&'a Cell<u32>);

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn borrows_locals_mutably() {
    let mut total = 0u32;
    let coroutine = ScopedCoroutine::new(|y: &Yielder<u32, ()>, mut x| {
        while x != 0 {
            total += x;
            x = y.suspend(());
        }
    });
    coroutine.scope(|mut c| {
        for x in [5, 6, 7, 0] {
            c.resume(x);
        }
        assert!(c.done());
    });
    assert_eq!(total, 18);
}

#[cfg(feature = "unwind")]
#[test]
fn the_coroutine_is_unwound_at_the_end_of_the_scope() {
    let drops = Cell::new(0);
    let coroutine = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| {
        let _flag = Flag(&drops);
        y.suspend(());
    });
    coroutine.scope(|mut c| {
        c.resume(());
        assert_eq!(drops.get(), 0);
    });
    assert_eq!(drops.get(), 1);
}

#[cfg(feature = "unwind")]
#[test]
fn forgetting_the_reference_does_not_leak_the_coroutine() {
    let drops = Cell::new(0);
    let coroutine = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| {
        let _flag = Flag(&drops);
        y.suspend(());
    });
    coroutine.scope(|mut c| {
        c.resume(());
        // The reference is all the scope has to forget.
        #[allow(clippy::forget_non_drop)]
        std::mem::forget(c);
    });
    // The scope owned the coroutine, not the forgotten reference.
    assert_eq!(drops.get(), 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "forgets a coroutine on purpose: Miri reports the leaked stack"
)]
fn forgetting_an_unstarted_scoped_coroutine_is_harmless() {
    let drops = Cell::new(0);
    {
        let flag = Flag(&drops);
        let coroutine =
            ScopedCoroutine::<(), (), (), _>::new(move |_: &Yielder<(), ()>, ()| drop(flag));
        std::mem::forget(coroutine);
    }
    // The body never ran and its closure (with the flag) was leaked, not
    // run or dropped: nothing touched `drops` after its scope.
    assert_eq!(drops.get(), 0);
}

#[cfg(feature = "unwind")]
#[test]
fn swapping_scoped_coroutines_before_their_scopes() {
    // References from different scopes cannot be swapped (see the
    // `compile_fail` examples on `ScopedCoroutine`); whole unstarted
    // coroutines can, and each then runs and is dropped in its new place.
    let drops = Cell::new(0);
    let make = |id: u32| {
        let drops = &drops;
        ScopedCoroutine::new(move |y: &Yielder<(), u32>, ()| {
            let _flag = Flag(drops);
            loop {
                y.suspend(id);
            }
        })
    };
    let (mut first, mut second) = (make(1), make(2));
    std::mem::swap(&mut first, &mut second);
    first.scope(|mut c| assert_eq!(c.resume(()).as_yield(), Some(2)));
    assert_eq!(drops.get(), 1);
    second.scope(|mut c| assert_eq!(c.as_mut().resume(()).as_yield(), Some(1)));
    assert_eq!(drops.get(), 2);
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_in_the_scope_still_unwinds_the_coroutine() {
    let drops = Cell::new(0);
    let coroutine = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| {
        let _flag = Flag(&drops);
        y.suspend(());
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        coroutine.scope(|mut c| {
            c.resume(());
            panic!("scope body");
        })
    }));
    assert!(result.is_err());
    assert_eq!(drops.get(), 1);
}

#[test]
fn borrowed_stack_and_into_stack() {
    let mut stack = DefaultStack::new(32 * 1024).unwrap();
    let data = [1, 2, 3];
    let sum = ScopedCoroutine::with_stack(&mut stack, |_: &Yielder<(), ()>, ()| {
        data.iter().sum::<i32>()
    })
    .scope(|mut c| c.resume(()).as_return());
    assert_eq!(sum, Some(6));
    let unstarted =
        ScopedCoroutine::<(), (), (), _>::with_stack(stack, |_: &Yielder<(), ()>, ()| {});
    let _stack: DefaultStack = unstarted.into_stack();
}

#[test]
fn what_the_function_owns_is_dropped_once_whichever_way_it_goes() {
    let drops = Cell::new(0);
    // Dropped unstarted.
    let flag = Flag(&drops);
    drop(ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| {
        drop(flag)
    }));
    assert_eq!(drops.get(), 1);
    // Its stack taken back unstarted.
    let flag = Flag(&drops);
    let _stack = ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| drop(flag)).into_stack();
    assert_eq!(drops.get(), 2);
    // Run to completion.
    let flag = Flag(&drops);
    ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| drop(flag)).scope(|mut c| c.resume(()));
    assert_eq!(drops.get(), 3);
    // Never run inside its scope.
    let flag = Flag(&drops);
    ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| drop(flag)).scope(|_| {});
    assert_eq!(drops.get(), 4);
}

#[cfg(feature = "unwind")]
#[test]
fn a_borrowed_stack_comes_back_only_after_its_frames_are_unwound() {
    let drops = Cell::new(0);
    let mut stack = DefaultStack::new(64 * 1024).unwrap();
    for round in 1..=3 {
        ScopedCoroutine::with_stack(&mut stack, |y: &Yielder<(), ()>, ()| {
            // Pinned on the borrowed stack while suspended.
            let pinned = std::pin::pin!(Flag(&drops));
            y.suspend(());
            let _ = &pinned;
        })
        .scope(|mut c| {
            c.resume(());
        });
        assert_eq!(drops.get(), round, "unwound before the borrow ended");
    }
}

#[cfg(feature = "unwind")]
#[test]
fn the_outer_yielder_suspends_from_inside_a_nested_scoped_coroutine() {
    use stackswitch::Coroutine;
    let mut outer = Coroutine::new(|outer: &Yielder<u32, u32>, first: u32| {
        let mut seen = first;
        ScopedCoroutine::new(|_: &Yielder<(), ()>, ()| {
            // Suspends the outer coroutine from the inner one's stack.
            for i in 0..3 {
                seen += outer.suspend(i);
            }
        })
        .scope(|mut inner| {
            inner.resume(());
        });
        seen
    });
    assert_eq!(outer.resume(100).as_yield(), Some(0));
    assert_eq!(outer.resume(1).as_yield(), Some(1));
    assert_eq!(outer.resume(2).as_yield(), Some(2));
    assert_eq!(outer.resume(3).as_return(), Some(106));

    // Dropped while suspended there: both stacks unwind.
    let drops = std::rc::Rc::new(Cell::new(0));
    let in_outer = drops.clone();
    let mut outer = Coroutine::new(move |outer: &Yielder<(), ()>, ()| {
        let _a = CountDrop(in_outer.clone());
        ScopedCoroutine::new(|_: &Yielder<(), ()>, ()| {
            let _b = CountDrop(in_outer.clone());
            outer.suspend(());
        })
        .scope(|mut inner| {
            inner.resume(());
        });
    });
    assert!(outer.resume(()).as_yield().is_some());
    drop(outer);
    assert_eq!(drops.get(), 2);
}

#[cfg(feature = "unwind")]
struct CountDrop(std::rc::Rc<Cell<u32>>);

#[cfg(feature = "unwind")]
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn inputs_of_any_size_and_alignment() {
    #[derive(Clone, Copy)]
    #[repr(align(4096))]
    struct PageAligned(u64);
    let mut seen = Vec::new();
    ScopedCoroutine::new(
        |y: &Yielder<PageAligned, ()>, mut input: PageAligned| loop {
            assert_eq!(std::ptr::from_ref(&input) as usize % 4096, 0);
            seen.push(input.0);
            if input.0 == 0 {
                break;
            }
            input = y.suspend(());
        },
    )
    .scope(|mut c| {
        for i in [3, 2, 1, 0] {
            c.resume(PageAligned(i));
        }
    });
    assert_eq!(seen, [3, 2, 1, 0]);

    let mut total = 0usize;
    let stack = DefaultStack::new(2 * 1024 * 1024).unwrap();
    ScopedCoroutine::with_stack(stack, |y: &Yielder<Box<[u8; 512 * 1024]>, ()>, input| {
        total += input.iter().map(|&b| b as usize).sum::<usize>();
        let input = y.suspend(());
        total += input.iter().map(|&b| b as usize).sum::<usize>();
    })
    .scope(|mut c| {
        for b in 1..=2 {
            c.resume(Box::new([b; 512 * 1024]));
        }
    });
    assert_eq!(total, 3 * 512 * 1024);
}

//! Behaviour of `Coroutine`, `Yielder`, `on_stack` and stacks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use stackswitch::stack::{DefaultStack, Stack, MIN_STACK_SIZE};
use stackswitch::{on_stack, Coroutine, CoroutineResult, ScopedCoroutine, Yielder};

/// Counts how many of its instances were dropped.
struct DropCounter(Rc<Cell<usize>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn values_flow_both_ways() {
    let mut coroutine = Coroutine::new(|yielder, first: String| {
        let mut log = vec![first];
        for i in 0..3 {
            log.push(yielder.suspend(i));
        }
        log.join(",")
    });
    assert!(!coroutine.started());
    assert_eq!(coroutine.resume("a".into()), CoroutineResult::Yield(0));
    assert!(coroutine.started() && !coroutine.done());
    assert_eq!(coroutine.resume("b".into()), CoroutineResult::Yield(1));
    assert_eq!(coroutine.resume("c".into()), CoroutineResult::Yield(2));
    assert_eq!(
        coroutine.resume("d".into()),
        CoroutineResult::Return("a,b,c,d".to_string())
    );
    assert!(coroutine.done());
}

#[test]
fn suspends_from_deep_in_the_call_stack() {
    fn walk(yielder: &Yielder<(), u32>, depth: u32) {
        if depth == 0 {
            return;
        }
        yielder.suspend(depth);
        walk(yielder, depth - 1);
        yielder.suspend(depth + 1000);
    }
    let mut coroutine = Coroutine::new(|yielder, ()| walk(yielder, 50));
    let mut seen = Vec::new();
    while let CoroutineResult::Yield(v) = coroutine.resume(()) {
        seen.push(v);
    }
    let expected: Vec<u32> = (1..=50).rev().chain((1..=50).map(|d| d + 1000)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn values_larger_than_a_page_cross_stacks() {
    // The reference implementation refuses values above 1 KiB.
    let mut coroutine = Coroutine::new(
        |yielder: &Yielder<[u64; 1024], [u8; 8192]>, input: [u64; 1024]| {
            let mut big = [0u8; 8192];
            for (i, b) in big.iter_mut().enumerate() {
                *b = input[i % 1024] as u8;
            }
            big.reverse();
            let back = yielder.suspend(big);
            back.iter().sum::<u64>()
        },
    );
    let mut input = [0u64; 1024];
    for (i, v) in input.iter_mut().enumerate() {
        *v = i as u64;
    }
    let big = coroutine.resume(input).as_yield().unwrap();
    assert!(big
        .iter()
        .rev()
        .enumerate()
        .all(|(i, &b)| b == (i % 1024) as u8));
    assert_eq!(coroutine.resume(input).as_return(), Some(1023 * 1024 / 2));
}

/// Sends `values` in and back out of a coroutine (as inputs, yields and
/// the return value) and checks that every one arrives intact.
fn echo_round_trip<T: Clone + PartialEq + std::fmt::Debug + 'static>(values: &[T]) {
    let first = values.first().expect("at least one value");
    let mut coroutine = Coroutine::new(|yielder: &Yielder<T, T>, mut value: T| {
        for _ in 0..3 {
            value = yielder.suspend(value);
        }
        value
    });
    assert_eq!(
        coroutine.resume(first.clone()),
        CoroutineResult::Yield(first.clone())
    );
    for value in values.iter().cycle().skip(1).take(2) {
        assert_eq!(
            coroutine.resume(value.clone()),
            CoroutineResult::Yield(value.clone())
        );
    }
    let last = values[values.len() - 1].clone();
    assert_eq!(
        coroutine.resume(last.clone()),
        CoroutineResult::Return(last)
    );
}

/// A word-sized type with padding (and so uninitialised bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Padded {
    tag: u8,
    value: u16,
}

/// A zero-sized type more aligned than a word.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(align(64))]
struct AlignedZst;

#[test]
fn values_of_every_size_and_layout_cross_stacks() {
    // Fit in a register on every target (travel in it)...
    echo_round_trip(&[true, false]);
    echo_round_trip(&[0u8, 0xa5, u8::MAX]);
    echo_round_trip(&['x', '\u{10ffff}']);
    echo_round_trip(&[
        Padded {
            tag: 1,
            value: 0xbeef,
        },
        Padded {
            tag: 0xff,
            value: 0,
        },
    ]);
    echo_round_trip(&[(1u8, 2u8), (0xfe, 0xdc)]);
    echo_round_trip(&[usize::MAX, 0, 0x0123_4567]);
    echo_round_trip(&[None, Some(&7u32), Some(&0)]);
    echo_round_trip(&[Rc::new(1), Rc::new(2)]);
    // ... or not (travel by address), depending on the target's word.
    echo_round_trip(&[u64::MAX, 0x0123_4567_89ab_cdef]);
    echo_round_trip(&[Some(3u64), None]);
    echo_round_trip(&[(1u32, 2u8), (u32::MAX, 0)]);
    echo_round_trip(&[u128::MAX, 1 << 100]);
    echo_round_trip(&[String::from("heap"), String::new()]);
    echo_round_trip(&[AlignedZst]);
    echo_round_trip(&[()]);
}

#[test]
fn word_sized_values_are_dropped_once() {
    let drops = Rc::new(Cell::new(0));
    let mut coroutine = Coroutine::new(|yielder: &Yielder<DropCounter, DropCounter>, first| {
        let second = yielder.suspend(first);
        let counter = second.0.clone();
        drop(second);
        yielder.suspend(DropCounter(counter))
    });
    let yielded = coroutine
        .resume(DropCounter(drops.clone()))
        .as_yield()
        .unwrap();
    assert_eq!(drops.get(), 0);
    drop(yielded);
    assert_eq!(drops.get(), 1);
    drop(coroutine.resume(DropCounter(drops.clone())));
    assert_eq!(
        drops.get(),
        3,
        "dropped in the coroutine, then the yielded value"
    );
    let returned = coroutine
        .resume(DropCounter(drops.clone()))
        .as_return()
        .unwrap();
    assert_eq!(drops.get(), 3);
    drop(returned);
    assert_eq!(drops.get(), 4);
}

#[test]
fn zero_sized_and_copy_values() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|yielder, ()| {
        yielder.suspend(());
        yielder.suspend(());
    });
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
}

#[test]
#[should_panic(expected = "attempt to resume a completed coroutine")]
fn resume_after_completion_panics() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|_, ()| {});
    coroutine.resume(());
    coroutine.resume(());
}

/// `resume` takes `&mut self`, so safe code can only reach a running
/// coroutine through shared ownership with interior mutability, which
/// stops it with a clear panic; that panic then leaves the coroutine
/// like any other.
#[cfg(feature = "unwind")]
#[test]
fn resume_from_inside_itself_is_stopped_with_a_clear_panic() {
    type Shared = Rc<RefCell<Option<Coroutine<(), (), ()>>>>;
    let shared: Shared = Rc::new(RefCell::new(None));
    let inner = shared.clone();
    *shared.borrow_mut() = Some(Coroutine::new(move |_, ()| {
        inner.borrow_mut().as_mut().unwrap().resume(());
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.borrow_mut().as_mut().unwrap().resume(());
    }));
    let payload = result.unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("already borrowed"), "{message}");
    assert!(shared.borrow().as_ref().unwrap().done());
    // A cycle through the Rc: break it.
    shared.borrow_mut().take();
}

#[test]
fn dropping_an_unstarted_coroutine_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let coroutine = Coroutine::<(), (), ()>::new(move |_, ()| drop(guard));
    assert_eq!(drops.get(), 0);
    drop(coroutine);
    assert_eq!(drops.get(), 1);
}

#[test]
fn into_stack_reuses_the_stack() {
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let (base, limit) = (stack.base(), stack.limit());
    let mut first = Coroutine::with_stack(stack, |_: &Yielder<u32, ()>, x: u32| x + 1);
    assert_eq!(first.resume(1).as_return(), Some(2));
    let stack = first.into_stack();
    assert_eq!((stack.base(), stack.limit()), (base, limit));
    let mut second =
        Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, x: u32| y.suspend(x * 10));
    assert_eq!(second.resume(4).as_yield(), Some(40));
    assert_eq!(second.resume(1).as_return(), Some(1));
}

// Needs `unwind`: the panic drops the suspended coroutine.
#[cfg(feature = "unwind")]
#[test]
#[should_panic(expected = "cannot extract stack from an incomplete coroutine")]
fn into_stack_of_a_suspended_coroutine_panics() {
    let mut coroutine = Coroutine::<(), (), ()>::new(|y, ()| y.suspend(()));
    coroutine.resume(());
    let _ = coroutine.into_stack();
}

#[test]
fn borrowed_stacks_are_stacks() {
    let mut stack = DefaultStack::new(32 * 1024).unwrap();
    for i in 0..3u32 {
        let coroutine =
            ScopedCoroutine::with_stack(&mut stack, move |_: &Yielder<(), ()>, ()| i * 2);
        let result = coroutine.scope(|mut c| c.resume(()));
        assert_eq!(result.as_return(), Some(i * 2));
    }
}

#[test]
fn stacks_below_the_minimum_are_raised_to_it() {
    // As in corosensei: the size is a lower bound, the minimum applies.
    let stack = DefaultStack::new(MIN_STACK_SIZE - 1).unwrap();
    assert!(stack.base().get() - stack.limit().get() >= MIN_STACK_SIZE);
    assert!(DefaultStack::new(MIN_STACK_SIZE).is_ok());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a started coroutine on purpose (force_reset): Miri reports its thread, blocked for ever; ci/miri.sh runs it with -Zmiri-ignore-leaks"
)]
fn force_reset_skips_destructors_and_frees_the_coroutine() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(drops.clone());
    let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
        let _held = counter;
        y.suspend(());
    });
    coroutine.resume(());
    // SAFETY: the only thing on the stack is a drop counter, which may leak.
    unsafe { coroutine.force_reset() };
    assert!(coroutine.done());
    drop(coroutine.into_stack());
    assert_eq!(drops.get(), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn on_stack_runs_a_closure_on_another_stack() {
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let (base, limit) = (stack.base().get(), stack.limit().get());
    let local = 5;
    let addr_inside = on_stack(stack, || {
        let marker = local * 2;
        (std::hint::black_box(&marker) as *const i32 as usize, marker)
    });
    assert!(addr_inside.0 > limit && addr_inside.0 < base);
    assert_eq!(addr_inside.1, 10);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn on_parent_stack_runs_on_the_parent_stack() {
    let parent_marker = 0u8;
    let parent_addr = &parent_marker as *const u8 as usize;
    let stack = DefaultStack::new(16 * 1024).unwrap();
    let (base, limit) = (stack.base().get(), stack.limit().get());
    let mut coroutine = Coroutine::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
        let inner = yielder.on_parent_stack(move || {
            let here = 0u8;
            // A lot more than the coroutine's 16 KiB.
            let big = [7u8; 200 * 1024];
            (
                std::hint::black_box(&here) as *const u8 as usize,
                big.iter().map(|&b| b as usize).sum::<usize>(),
            )
        });
        yielder.suspend(());
        inner
    });
    assert!(coroutine.resume(()).as_yield().is_some());
    let (addr, sum) = coroutine.resume(()).as_return().unwrap();
    assert_eq!(sum, 7 * 200 * 1024);
    assert!(!(limit..base).contains(&addr));
    // Below the parent's frame, on the same stack.
    assert!(addr < parent_addr && parent_addr - addr < 16 * 1024 * 1024);
}

#[test]
fn nested_coroutines() {
    let mut outer = Coroutine::new(|outer_yielder: &Yielder<u32, u32>, start: u32| {
        let mut inner = Coroutine::new(|inner_yielder: &Yielder<u32, u32>, x: u32| {
            let y = inner_yielder.suspend(x + 1);
            y * 2
        });
        let a = inner.resume(start).as_yield().unwrap();
        let b = outer_yielder.suspend(a);
        inner.resume(b).as_return().unwrap()
    });
    assert_eq!(outer.resume(10).as_yield(), Some(11));
    assert_eq!(outer.resume(21).as_return(), Some(42));
}

#[test]
fn many_coroutines_interleaved() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut coroutines: Vec<_> = (0..20)
        .map(|id| {
            let log = log.clone();
            Coroutine::with_stack(
                DefaultStack::new(16 * 1024).unwrap(),
                move |y: &Yielder<(), ()>, ()| {
                    for step in 0..id % 4 {
                        log.borrow_mut().push((id, step));
                        y.suspend(());
                    }
                },
            )
        })
        .collect();
    let mut round = 0;
    while coroutines.iter().any(|c| !c.done()) {
        for c in coroutines.iter_mut().filter(|c| !c.done()) {
            c.resume(());
        }
        round += 1;
    }
    assert_eq!(round, 4);
    assert_eq!(log.borrow().len(), (0..20).map(|id| id % 4).sum::<usize>());
}

#[test]
fn coroutines_run_on_other_threads() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Coroutine::new(move |y: &Yielder<u64, u64>, mut x: u64| {
                    for _ in 0..1000 {
                        x = y.suspend(x + t);
                    }
                    x
                });
                let mut v = 0;
                while let CoroutineResult::Yield(out) = c.resume(v) {
                    v = out;
                }
                v
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), 1000 * t as u64);
    }
}

#[test]
fn coroutine_is_sync_not_send() {
    fn sync<T: Sync>() {}
    sync::<Coroutine<(), (), ()>>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DefaultStack>();
}

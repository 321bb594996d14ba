//! Panics and forced unwinding. Needs the `unwind` feature; without it the
//! one test below checks that dropping a suspended coroutine aborts cleanly.

mod common;

#[cfg(feature = "unwind")]
mod with_unwind {
    use std::cell::Cell;
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    use std::rc::Rc;

    use stackswitch::stack::{DefaultStack, MIN_STACK_SIZE};
    use stackswitch::{is_forced_unwind, on_stack, Coroutine, CoroutineResult, Yielder};

    struct DropCounter(Rc<Cell<usize>>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn panic_propagates_to_the_resumer_and_completes_the_coroutine() {
        let drops = Rc::new(Cell::new(0));
        let counter = DropCounter(drops.clone());
        let mut coroutine = Coroutine::<(), u32, ()>::new(move |y, ()| {
            let _held = counter;
            y.suspend(42);
            std::panic::panic_any(String::from("boom"));
        });
        assert_eq!(coroutine.resume(()).as_yield(), Some(42));
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert_eq!(
            err.downcast_ref::<String>().map(String::as_str),
            Some("boom")
        );
        assert_eq!(drops.get(), 1, "the coroutine's stack was unwound");
        assert!(coroutine.done());
        let again = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert!(again
            .downcast_ref::<&str>()
            .unwrap()
            .contains("already completed"));
    }

    #[test]
    fn panic_on_first_resume_propagates() {
        let mut coroutine = Coroutine::<(), (), ()>::new(|_, ()| panic!("first"));
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), "first");
        assert!(coroutine.done());
    }

    #[test]
    fn dropping_a_suspended_coroutine_runs_every_destructor() {
        let drops = Rc::new(Cell::new(0));
        let (a, b, c) = (
            DropCounter(drops.clone()),
            DropCounter(drops.clone()),
            DropCounter(drops.clone()),
        );
        fn deeper(y: &Yielder<(), ()>, held: DropCounter) {
            let _held = held;
            y.suspend(());
            unreachable!("never resumed");
        }
        let mut coroutine = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
            let _a = a;
            let _v = [b];
            deeper(y, c);
        });
        coroutine.resume(());
        assert_eq!(drops.get(), 0);
        drop(coroutine);
        assert_eq!(drops.get(), 3);
    }

    #[test]
    fn force_unwind_on_demand_then_reuse_the_stack() {
        let drops = Rc::new(Cell::new(0));
        let counter = DropCounter(drops.clone());
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            let _held = counter;
            loop {
                y.suspend(());
            }
        });
        coroutine.resume(());
        coroutine.resume(());
        coroutine.force_unwind();
        assert!(coroutine.done());
        assert_eq!(drops.get(), 1);
        coroutine.force_unwind(); // no-op once done
        let stack = coroutine.into_stack();
        let mut again = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| 7);
        assert_eq!(again.resume(()), CoroutineResult::Return(7));
    }

    #[test]
    fn forced_unwind_is_recognisable_and_can_be_rethrown() {
        let saw_it = Rc::new(Cell::new(false));
        let flag = saw_it.clone();
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            let result = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            if let Err(payload) = result {
                flag.set(is_forced_unwind(&*payload));
                resume_unwind(payload);
            }
        });
        coroutine.resume(());
        drop(coroutine);
        assert!(saw_it.get());
        assert!(!is_forced_unwind(
            &*catch_unwind(|| panic!("other")).unwrap_err()
        ));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "abandons a coroutine on purpose (it suspends while unwound): Miri reports its thread, blocked for ever; ci/miri.sh runs it with -Zmiri-ignore-leaks"
    )]
    fn swallowing_the_forced_unwind_and_suspending_is_reported() {
        let mut coroutine = Coroutine::<(), (), ()>::new(|y, ()| {
            let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            // Wrong: suspends again instead of letting the unwind continue.
            y.suspend(());
        });
        coroutine.resume(());
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind())).unwrap_err();
        let message = err.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(
            message.contains("caught the ForcedUnwind panic"),
            "{message}"
        );
        assert!(coroutine.done());
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert!(err.downcast_ref::<&str>().unwrap().contains("abandoned"));
        // Dropping it now leaks its stack rather than freeing live frames.
        drop(coroutine);
    }

    #[test]
    fn swallowing_the_forced_unwind_and_returning_completes() {
        let mut coroutine = Coroutine::<(), (), u32>::new(|y, ()| {
            let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            5
        });
        coroutine.resume(());
        coroutine.force_unwind();
        assert!(coroutine.done());
    }

    #[test]
    fn panic_in_a_destructor_during_forced_unwind_propagates() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("destructor");
                }
            }
        }
        let mut coroutine = Coroutine::<(), (), ()>::new(|y, ()| {
            let _p = PanicOnDrop;
            y.suspend(());
        });
        coroutine.resume(());
        // The destructor runs during an unwind, so it does not panic.
        coroutine.force_unwind();
        assert!(coroutine.done());

        // A destructor that panics during a normal return does propagate.
        let mut coroutine = Coroutine::<(), (), ()>::new(|_, ()| {
            let _p = PanicOnDrop;
        });
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), "destructor");
    }

    #[test]
    fn dropping_an_outer_coroutine_unwinds_a_nested_one_suspended_through_it() {
        let drops = Rc::new(Cell::new(0));
        let (a, b) = (DropCounter(drops.clone()), DropCounter(drops.clone()));
        let mut outer = Coroutine::<(), u32, ()>::new(move |outer_y, ()| {
            let _a = a;
            let outer_y = outer_y as *const Yielder<(), u32>;
            let inner = stackswitch::ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| {
                let _b = b;
                // SAFETY: the outer coroutine is running (it resumed us).
                unsafe { (*outer_y).suspend(1) };
            });
            inner.scope(|mut inner| {
                inner.as_mut().resume(());
            });
        });
        assert_eq!(outer.resume(()).as_yield(), Some(1));
        drop(outer);
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn panics_cross_on_stack_and_on_parent_stack() {
        let err =
            catch_unwind(|| on_stack(DefaultStack::new(64 * 1024).unwrap(), || panic!("on_stack")))
                .unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), "on_stack");

        let mut coroutine = Coroutine::<(), (), bool>::new(|y, ()| {
            let r = catch_unwind(AssertUnwindSafe(|| y.on_parent_stack(|| panic!("parent"))));
            *r.unwrap_err().downcast_ref::<&str>().unwrap() == "parent"
        });
        assert_eq!(coroutine.resume(()).as_return(), Some(true));
    }

    /// Runs the named test of this binary alone in a child process (so that
    /// it is the first unwind of that process); `true` inside the child.
    fn in_child_process(test: &str) -> bool {
        const CHILD: &str = "STACKSWITCH_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let output = super::common::this_test_binary()
            .args(["--exact", test, "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "child failed: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
        false
    }

    #[test]
    #[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
    fn smallest_stack_suspends_and_unwinds_safely() {
        // The first unwind of a process may resolve the unwinder's lazily
        // bound symbols, which can save the whole extended register state on
        // the current stack; it must still fit. Hence a fresh process.
        if !in_child_process("with_unwind::smallest_stack_suspends_and_unwinds_safely") {
            return;
        }
        for _ in 0..2 {
            let drops = Rc::new(Cell::new(0));
            let counter = DropCounter(drops.clone());
            let stack = DefaultStack::new(MIN_STACK_SIZE).unwrap();
            let mut coroutine = Coroutine::<(), (), ()>::with_stack(stack, move |y, ()| {
                let _held = counter;
                y.suspend(());
            });
            coroutine.resume(());
            drop(coroutine);
            assert_eq!(drops.get(), 1);
        }
    }
}

/// Without `unwind`, dropping a suspended coroutine must abort with a
/// message, never continue with live frames on a freed stack.
#[cfg(all(not(feature = "unwind"), feature = "default-stack"))]
#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn dropping_a_suspended_coroutine_aborts_without_unwind() {
    const CHILD: &str = "STACKSWITCH_ABORT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let mut coroutine = stackswitch::Coroutine::<(), (), ()>::new(|y, ()| y.suspend(()));
        coroutine.resume(());
        drop(coroutine);
        unreachable!("drop must abort");
    }
    let output = common::this_test_binary()
        .args([
            "--exact",
            "dropping_a_suspended_coroutine_aborts_without_unwind",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot be unwound without the `unwind` feature"),
        "{stderr}"
    );
}

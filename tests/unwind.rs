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
            .contains("attempt to resume a completed coroutine"));
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

    /// A value that panics when dropped, outside of an unwind.
    struct PanicOnDrop(&'static str);
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("{}", self.0);
            }
        }
    }

    #[test]
    fn swallowing_the_forced_unwind_and_suspending_is_unwound_again() {
        // On a borrowed stack, which is given back (and reused) once the
        // coroutine is gone: nothing may be left alive on it.
        let drops = Rc::new(Cell::new(0));
        let (a, b) = (DropCounter(drops.clone()), DropCounter(drops.clone()));
        let yielded = Rc::new(Cell::new(0));
        let (y1, y2) = (DropCounter(yielded.clone()), DropCounter(yielded.clone()));
        let mut stack = DefaultStack::new(64 * 1024).unwrap();
        let caught = Rc::new(Cell::new(0));
        let caught_in = caught.clone();
        let coroutine = stackswitch::ScopedCoroutine::with_stack(
            &mut stack,
            move |y: &Yielder<(), Option<DropCounter>>, ()| {
                let _a = a;
                let r = catch_unwind(AssertUnwindSafe(|| y.suspend(None)));
                caught_in.set(caught_in.get() + r.is_err() as usize);
                let _b = b;
                // Wrong, twice: swallows the unwind and suspends again.
                let r = catch_unwind(AssertUnwindSafe(|| y.suspend(Some(y1))));
                caught_in.set(caught_in.get() + r.is_err() as usize);
                y.suspend(Some(y2));
                unreachable!("the third suspend raises the forced unwind too");
            },
        );
        coroutine.scope(|mut coroutine| {
            assert!(coroutine.resume(()).as_yield().unwrap().is_none());
            coroutine.force_unwind();
            assert!(coroutine.done());
        });
        assert_eq!(caught.get(), 2, "the forced unwind was raised three times");
        assert_eq!(drops.get(), 2, "every frame was unwound");
        assert_eq!(yielded.get(), 2, "what it yielded meanwhile was dropped");
        // The stack is free for another coroutine.
        let mut again = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| 3);
        assert_eq!(again.resume(()).as_return(), Some(3));
    }

    #[test]
    fn dropping_a_coroutine_that_swallows_the_forced_unwind_unwinds_it_fully() {
        let drops = Rc::new(Cell::new(0));
        let a = DropCounter(drops.clone());
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            let _a = a;
            for _ in 0..3 {
                let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            }
            y.suspend(());
        });
        coroutine.resume(());
        drop(coroutine);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn a_yielded_value_that_panics_when_dropped_does_not_cut_the_unwind_short() {
        let drops = Rc::new(Cell::new(0));
        let (a, b) = (DropCounter(drops.clone()), DropCounter(drops.clone()));
        let mut coroutine = Coroutine::<(), Option<PanicOnDrop>, ()>::new(move |y, ()| {
            let _a = a;
            let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(None)));
            let _b = b;
            let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(Some(PanicOnDrop("first")))));
            y.suspend(Some(PanicOnDrop("second")));
        });
        assert!(coroutine.resume(()).as_yield().unwrap().is_none());
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind())).unwrap_err();
        assert_eq!(err.downcast_ref::<String>().unwrap(), "first");
        assert!(coroutine.done());
        assert_eq!(drops.get(), 2, "the coroutine was unwound to the end first");
    }

    #[test]
    fn dropping_an_unstarted_coroutine_runs_its_closure_drop_on_the_callers_stack() {
        let drops = Rc::new(Cell::new(0));
        let a = DropCounter(drops.clone());
        let coroutine = Coroutine::<(), (), ()>::new(move |_, ()| drop(a));
        drop(coroutine);
        assert_eq!(drops.get(), 1);

        let captured = PanicOnDrop("closure");
        let mut coroutine = Coroutine::<(), (), ()>::new(move |_, ()| drop(captured));
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind())).unwrap_err();
        assert_eq!(err.downcast_ref::<String>().unwrap(), "closure");
        assert!(coroutine.done() && coroutine.started());
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
            // Capturing a backtrace takes far more than the smallest stack.
            .env_remove("RUST_BACKTRACE")
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
    fn smallest_stack_drops_an_unstarted_closure_that_panics_first_in_the_process() {
        // The closure's destructor panics: the process's first panic, with
        // symbols still to be bound lazily. It must not run on the small
        // stack (nor crash there): the panic comes out of `drop`.
        if !in_child_process(
            "with_unwind::smallest_stack_drops_an_unstarted_closure_that_panics_first_in_the_process",
        ) {
            return;
        }
        let captured = PanicOnDrop("captured");
        let stack = DefaultStack::new(MIN_STACK_SIZE).unwrap();
        let coroutine = Coroutine::<(), (), ()>::with_stack(stack, move |_, ()| drop(captured));
        let err = catch_unwind(AssertUnwindSafe(|| drop(coroutine))).unwrap_err();
        assert_eq!(err.downcast_ref::<String>().unwrap(), "captured");
    }

    #[test]
    #[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
    fn smallest_stack_panics_first_in_the_process() {
        // The panic machinery runs on the coroutine's stack the first time.
        if !in_child_process("with_unwind::smallest_stack_panics_first_in_the_process") {
            return;
        }
        let stack = DefaultStack::new(MIN_STACK_SIZE).unwrap();
        let mut coroutine = Coroutine::<(), (), ()>::with_stack(stack, |_, ()| panic!("small"));
        let err = catch_unwind(AssertUnwindSafe(|| coroutine.resume(()))).unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), "small");
    }

    #[test]
    #[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
    fn smallest_stack_on_stack_panics_first_in_the_process() {
        if !in_child_process("with_unwind::smallest_stack_on_stack_panics_first_in_the_process") {
            return;
        }
        let mut stack = DefaultStack::new(MIN_STACK_SIZE).unwrap();
        let err = catch_unwind(AssertUnwindSafe(|| {
            on_stack(&mut stack, || panic!("small"))
        }));
        assert_eq!(*err.unwrap_err().downcast_ref::<&str>().unwrap(), "small");
    }

    #[test]
    #[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
    fn a_destructor_that_suspends_during_a_forced_unwind_ends_in_an_abort() {
        // The destructor runs during the unwind; its suspend raises the
        // forced unwind again, out of a destructor running during cleanup,
        // which Rust turns into an abort. Never a stack freed under frames.
        const CHILD: &str = "STACKSWITCH_SUSPENDING_DROP_CHILD";
        struct SuspendOnDrop<'y>(&'y Yielder<(), u32>);
        impl Drop for SuspendOnDrop<'_> {
            fn drop(&mut self) {
                self.0.suspend(2);
            }
        }
        if std::env::var_os(CHILD).is_some() {
            let mut stack = DefaultStack::new(64 * 1024).unwrap();
            let coroutine =
                stackswitch::ScopedCoroutine::with_stack(&mut stack, |y: &Yielder<(), u32>, ()| {
                    let _suspends = SuspendOnDrop(y);
                    y.suspend(1);
                });
            coroutine.scope(|mut coroutine| {
                assert_eq!(coroutine.resume(()).as_yield(), Some(1));
            });
            unreachable!("the coroutine cannot be unwound");
        }
        let output = super::common::this_test_binary()
            .args([
                "--exact",
                "with_unwind::a_destructor_that_suspends_during_a_forced_unwind_ends_in_an_abort",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
        }
        assert!(!output.status.success(), "{stderr}");
        assert!(!stderr.contains("unreachable"), "{stderr}");
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

/// Without `unwind`, `force_unwind` of a started, suspended coroutine
/// panics and leaves it suspended, as corosensei's does.
#[cfg(all(not(feature = "unwind"), feature = "default-stack"))]
#[test]
fn force_unwind_panics_without_unwind_and_leaves_the_coroutine_suspended() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut coroutine = stackswitch::Coroutine::<(), u8, u8>::new(|y, ()| {
        y.suspend(1);
        2
    });
    assert_eq!(coroutine.resume(()).as_yield(), Some(1));
    let err = catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind())).unwrap_err();
    let message = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        message.contains("can't unwind a suspended coroutine without the \"unwind\" feature"),
        "{message}"
    );
    assert!(coroutine.started() && !coroutine.done());
    assert_eq!(coroutine.resume(()).as_return(), Some(2));

    // An unstarted one needs no unwinding: its closure is dropped.
    let mut fresh = stackswitch::Coroutine::<(), (), ()>::new(|_, ()| {});
    fresh.force_unwind();
    assert!(fresh.done());
}

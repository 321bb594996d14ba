//! `StackFuture` driven by a minimal executor written here, so that it runs
//! on every target (tokio and the `futures` executor: see `integration/`).
#![cfg(feature = "default-stack")]

use std::cell::RefCell;
use std::future::Future;
use std::mem::size_of;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
#[cfg(feature = "unwind")]
use std::{cell::Cell, rc::Rc};

use stackswitch::future::StackFuture;

/// Counts wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `future` until it is ready, returning its output and the number of
/// polls it took. Fails if it is pending without having been woken.
fn run<F: Future>(future: F) -> (F::Output, usize) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    for polls in 1.. {
        let woken_before = counter.0.load(Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        assert!(
            counter.0.load(Ordering::SeqCst) > woken_before,
            "pending without a wake-up"
        );
    }
    unreachable!()
}

/// Pending `n` times (waking its waker each time), then ready with `value`.
struct Countdown<T> {
    n: u32,
    value: Option<T>,
}

impl<T: Unpin> Future for Countdown<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.n == 0 {
            return Poll::Ready(self.value.take().unwrap());
        }
        self.n -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn countdown<T>(n: u32, value: T) -> Countdown<T> {
    Countdown {
        n,
        value: Some(value),
    }
}

#[test]
fn blocking_style_code_awaits_futures() {
    let future = StackFuture::new(|s| {
        let a = s.block_on(countdown(2, 10));
        let b = s.block_on(async { 5 });
        let c = s.block_on(countdown(3, 100));
        a + b + c
    });
    let (value, polls) = run(future);
    assert_eq!(value, 115);
    assert_eq!(polls, 6);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads a thread-local of the test's thread inside a coroutine: under Miri thread-locals are per coroutine"
)]
fn the_task_waker_reaches_the_inner_future() {
    struct CheckWaker;
    impl Future for CheckWaker {
        type Output = bool;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
            // The only waker around is the executor's counting one.
            let before = Arc::strong_count(&COUNTER.with(|c| c.borrow().clone().unwrap()));
            let cloned = cx.waker().clone();
            let after = Arc::strong_count(&COUNTER.with(|c| c.borrow().clone().unwrap()));
            drop(cloned);
            Poll::Ready(after == before + 1)
        }
    }
    thread_local! {
        static COUNTER: RefCell<Option<Arc<CountingWaker>>> = const { RefCell::new(None) };
    }
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    COUNTER.with(|c| *c.borrow_mut() = Some(counter.clone()));
    let waker = Waker::from(counter);
    let mut cx = Context::from_waker(&waker);
    let mut future = StackFuture::new(|s| s.block_on(CheckWaker));
    assert_eq!(Pin::new(&mut future).poll(&mut cx), Poll::Ready(true));
}

#[cfg(feature = "unwind")]
#[test]
fn dropping_a_pending_future_unwinds_its_stack() {
    struct Flag(Rc<Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let (outer, inner) = (Flag(drops.clone()), Flag(drops.clone()));
    let mut future = StackFuture::new(move |s| {
        let _outer = outer;
        s.block_on(async move {
            let _inner = inner;
            std::future::pending::<()>().await
        })
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
    assert_eq!(drops.get(), 0);
    drop(future);
    assert_eq!(drops.get(), 2);
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_inside_continues_from_poll() {
    let future = StackFuture::new(|s| {
        s.block_on(countdown(1, ()));
        panic!("inside the stack");
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(future)));
    assert_eq!(
        *result.unwrap_err().downcast_ref::<&str>().unwrap(),
        "inside the stack"
    );
}

/// Set when the waker of one poll is woken.
struct WokenFlag(AtomicBool);

impl Wake for WokenFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls `future` once with a waker and a `Context` of this poll's own,
/// both on the heap and freed when the poll returns, their memory then
/// reused for `garbage` (kept by the caller until the next poll), so that
/// any later use of them reads a wild pointer instead of a stale copy.
/// Returns the result and whether this poll's waker was woken.
fn poll_from_a_fresh_context<F: Future>(
    future: Pin<&mut F>,
    garbage: &mut Vec<Box<dyn std::any::Any>>,
) -> (Poll<F::Output>, bool) {
    let woken = Arc::new(WokenFlag(AtomicBool::new(false)));
    let waker = Box::new(Waker::from(woken.clone()));
    let mut cx = Box::new(Context::from_waker(&waker));
    let poll = future.poll(&mut cx);
    drop(cx);
    drop(waker);
    const WILD: usize = 0xdead_0000_0000_dead_u64 as usize;
    garbage.push(Box::new([WILD; size_of::<Context>() / size_of::<usize>()]));
    garbage.push(Box::new([WILD; size_of::<Waker>() / size_of::<usize>()]));
    (poll, woken.0.load(Ordering::SeqCst))
}

/// Runs `future` with a new context for each poll, checking that every
/// pending poll woke that poll's own waker.
fn run_with_a_fresh_context_each_poll<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut garbage = Vec::new();
    loop {
        match poll_from_a_fresh_context(future.as_mut(), &mut garbage) {
            (Poll::Ready(output), _) => return output,
            (Poll::Pending, woken) => assert!(woken, "pending without waking this poll's waker"),
        }
    }
}

#[test]
fn nested_block_on_keeps_the_outer_future_polled_with_a_live_context() {
    let future = StackFuture::new(|s| {
        s.block_on(async {
            // Suspends the whole stack, this async block's poll included.
            let a = s.block_on(countdown(1, 1));
            // Then this polls with the async block's context, which must
            // still be alive, and whose waker must reach the task.
            let b = countdown(2, 20).await;
            let c = s.block_on(countdown(1, 300));
            a + b + c
        })
    });
    assert_eq!(run_with_a_fresh_context_each_poll(future), 321);
}

#[test]
fn nested_block_on_several_levels_deep() {
    let future = StackFuture::new(|s| {
        s.block_on(async {
            let x = s.block_on(async { s.block_on(countdown(2, 1)) + countdown(1, 2).await });
            x + countdown(1, 4).await
        })
    });
    assert_eq!(run_with_a_fresh_context_each_poll(future), 7);
}

#[cfg(feature = "unwind")]
#[test]
fn block_on_in_a_destructor_while_the_future_is_dropped_panics() {
    use stackswitch::future::Suspender;

    /// Waits for a future in its destructor.
    struct BlocksOnInDrop<'a, 'b> {
        suspender: &'a Suspender<'b>,
        result: Rc<RefCell<Option<String>>>,
    }
    impl Drop for BlocksOnInDrop<'_, '_> {
        fn drop(&mut self) {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Reads the context's waker when polled.
                self.suspender.block_on(std::future::poll_fn(|cx| {
                    cx.waker().wake_by_ref();
                    Poll::Ready(())
                }))
            }));
            let message = match caught {
                Ok(()) => "returned".to_string(),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            };
            *self.result.borrow_mut() = Some(message);
        }
    }

    let result = Rc::new(RefCell::new(None));
    let in_drop = result.clone();
    let mut future = Box::pin(StackFuture::new(move |s| {
        let _guard = BlocksOnInDrop {
            suspender: s,
            result: in_drop,
        };
        s.block_on(std::future::pending::<()>())
    }));
    let mut garbage = Vec::new();
    let (poll, _) = poll_from_a_fresh_context(future.as_mut(), &mut garbage);
    assert!(poll.is_pending());
    drop(future);
    let message = result.borrow_mut().take().expect("the destructor ran");
    assert!(
        message.contains("no poll of its StackFuture in progress"),
        "block_on in a destructor during the drop: {message}"
    );
}

#[cfg(feature = "unwind")]
#[test]
fn polling_after_a_panic_or_completion_panics_clearly() {
    let mut future = Box::pin(StackFuture::new(|s| {
        s.block_on(countdown(1, ()));
        panic!("inside");
    }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.as_mut().poll(&mut cx);
    }));
    assert!(caught.is_err());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.as_mut().poll(&mut cx);
    }));
    let payload = again.unwrap_err();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("after completion"), "{message}");
}

#[test]
fn outputs_and_awaited_values_of_any_size_and_alignment() {
    #[derive(Debug, PartialEq)]
    #[repr(align(4096))]
    struct PageAligned(u64);
    let future = StackFuture::new(|s| {
        s.block_on(countdown(1, ()));
        let aligned = s.block_on(countdown(1, Box::new(PageAligned(5))));
        let big = s.block_on(async { [3u8; 64 * 1024] });
        PageAligned(aligned.0 + big.iter().map(|&b| b as u64).sum::<u64>())
    });
    let (output, _) = run(future);
    assert_eq!(std::ptr::from_ref(&output) as usize % 4096, 0);
    assert_eq!(output, PageAligned(5 + 3 * 64 * 1024));
}

#[test]
fn a_stack_future_awaited_inside_another() {
    let future = StackFuture::new(|outer| {
        let inner = StackFuture::new(|inner| inner.block_on(countdown(2, 20)) + 1);
        outer.block_on(inner) * 2
    });
    assert_eq!(run_with_a_fresh_context_each_poll(future), 42);
}

#[test]
fn block_on_from_inside_a_scoped_coroutine_on_the_future_stack() {
    use stackswitch::{ScopedCoroutine, Yielder};
    let future = StackFuture::new(|s| {
        let mut total = 0;
        ScopedCoroutine::new(|_: &Yielder<(), ()>, ()| {
            // Suspends the whole StackFuture from the inner coroutine's stack.
            total += s.block_on(countdown(2, 40));
        })
        .scope(|mut inner| {
            inner.resume(());
        });
        total + s.block_on(countdown(1, 2))
    });
    assert_eq!(run_with_a_fresh_context_each_poll(future), 42);
}

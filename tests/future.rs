//! `StackFuture` driven by a minimal executor written here, so that it runs
//! on every target (tokio and the `futures` executor: see `integration/`).
#![cfg(feature = "default-stack")]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

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

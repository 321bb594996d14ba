//! Running blocking-style code as a [`Future`].
//!
//! [`StackFuture`] runs a function on its own stack. Inside it,
//! [`Suspender::block_on`] waits for a future the way a blocking call would:
//! the function's stack stays as it is, while the executor gets `Pending` and
//! the future's waker. This is how a WebAssembly runtime lets synchronous
//! guest code call asynchronous host functions.
//!
//! It works with any executor. A `StackFuture` is not `Send` (its stack may
//! hold thread-bound values the type system cannot see), so spawn it on a
//! single-threaded executor or `LocalSet`, or `block_on` it.
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use stackswitch::future::StackFuture;
//!
//! /// A future that is pending once before it is ready.
//! struct YieldOnce(bool);
//! impl Future for YieldOnce {
//!     type Output = u32;
//!     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
//!         if self.0 {
//!             return Poll::Ready(20);
//!         }
//!         self.0 = true;
//!         cx.waker().wake_by_ref();
//!         Poll::Pending
//!     }
//! }
//!
//! // Plain, synchronous code that needs an async result deep inside.
//! fn parse_config(suspender: &stackswitch::future::Suspender) -> u32 {
//!     let fetched = suspender.block_on(YieldOnce(false));
//!     fetched + 1
//! }
//!
//! let future = StackFuture::new(|suspender| parse_config(suspender) * 2);
//! # let waker = std::task::Waker::noop();
//! # let mut cx = Context::from_waker(&waker);
//! # let mut future = Box::pin(future);
//! # assert!(future.as_mut().poll(&mut cx).is_pending());
//! # assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(42));
//! ```
//!
//! Dropping a `StackFuture` before it completes unwinds its stack (with the
//! `unwind` feature), dropping every future that `block_on` was waiting for.
//! A panic in the function continues from `poll`.

use core::future::Future;
use core::marker::PhantomData;
use core::pin::{pin, Pin};
use core::ptr;
use core::task::{Context, Poll};

use crate::stack;
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::{Coroutine, CoroutineResult, Yielder};

/// The `Context` of the `poll` that resumed the coroutine, with its lifetime
/// erased: it is valid until the coroutine next suspends.
type ContextPtr = *mut Context<'static>;

macro_rules! stack_future_struct {
    ($($default:ty)?) => {
        /// A function on its own stack, run as a [`Future`]. See the
        /// [module documentation](self).
        pub struct StackFuture<Output, Stack: stack::Stack $(= $default)?> {
            coroutine: Coroutine<ContextPtr, (), Output, Stack>,
        }
    };
}
#[cfg(feature = "default-stack")]
stack_future_struct!(DefaultStack);
#[cfg(not(feature = "default-stack"))]
stack_future_struct!();

/// Lets the function of a [`StackFuture`] wait for futures.
pub struct Suspender<'a> {
    yielder: &'a Yielder<ContextPtr, ()>,
    /// Context of the current `poll`; replaced after each suspension.
    context: core::cell::Cell<ContextPtr>,
    marker: PhantomData<*mut ()>,
}

impl Suspender<'_> {
    /// Waits for `future` to complete, suspending this stack (and returning
    /// `Pending` from the enclosing `StackFuture::poll`) whenever it is not
    /// ready. The future is polled with the waker of the task that polls the
    /// `StackFuture`.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        loop {
            // SAFETY: the context pointer was handed over by the `poll` that
            // resumed us, which is still running (blocked in `resume`) until we
            // suspend below.
            let cx = unsafe { &mut *self.context.get() };
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return output;
            }
            self.context.set(self.yielder.suspend(()));
        }
    }
}

#[cfg(feature = "default-stack")]
impl<Output: 'static> StackFuture<Output, DefaultStack> {
    /// Runs `func` on a new [`DefaultStack`] when first polled.
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Suspender<'_>) -> Output + 'static,
    {
        Self::with_stack(DefaultStack::default(), func)
    }
}

impl<Output: 'static, Stack: stack::Stack + 'static> StackFuture<Output, Stack> {
    /// Runs `func` on `stack` when first polled.
    pub fn with_stack<F>(stack: Stack, func: F) -> Self
    where
        F: FnOnce(&Suspender<'_>) -> Output + 'static,
    {
        StackFuture {
            coroutine: Coroutine::with_stack(stack, move |yielder, context| {
                let suspender = Suspender {
                    yielder,
                    context: core::cell::Cell::new(context),
                    marker: PhantomData,
                };
                func(&suspender)
            }),
        }
    }
}

impl<Output, Stack: stack::Stack> Future for StackFuture<Output, Stack> {
    type Output = Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        // The coroutine holds no pointer into `self`, so it may move freely.
        let this = self.get_mut();
        assert!(
            !this.coroutine.done(),
            "StackFuture polled after completion"
        );
        let context = ptr::from_mut(cx).cast::<Context<'static>>();
        match this.coroutine.resume(context) {
            CoroutineResult::Yield(()) => Poll::Pending,
            CoroutineResult::Return(output) => Poll::Ready(output),
        }
    }
}

impl<Output, Stack: stack::Stack> Unpin for StackFuture<Output, Stack> {}

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

use core::cell::Cell;
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
///
/// It is only lent to that function, and cannot reach another thread or
/// another stack's parent (it is neither `Send` nor `Sync`):
///
/// ```compile_fail,E0277
/// use stackswitch::future::StackFuture;
///
/// let future = StackFuture::new(|s| {
///     std::thread::scope(|t| {
///         t.spawn(|| s.block_on(async { 1 })).join().unwrap() // error
///     })
/// });
/// ```
pub struct Suspender<'a> {
    yielder: &'a Yielder<ContextPtr, ()>,
    /// Context of the `poll` in progress; null while the coroutine is
    /// suspended, or unwinding because the `StackFuture` is dropped.
    context: Cell<ContextPtr>,
    /// How many times the coroutine has suspended, so that a `block_on`
    /// can tell whether one nested in the future it polls did.
    suspensions: Cell<usize>,
    marker: PhantomData<*mut ()>,
}

impl Suspender<'_> {
    /// Waits for `future` to complete, suspending this stack (and returning
    /// `Pending` from the enclosing `StackFuture::poll`) whenever it is not
    /// ready. The future is polled with the waker of the task that polls the
    /// `StackFuture` (a clone of it, in a `Context` that lives on this
    /// stack).
    ///
    /// # Nesting
    ///
    /// `block_on` may be called from inside a future that another `block_on`
    /// of the same `Suspender` is polling. The inner call suspends the whole
    /// stack, the outer future's `poll` included, until its own future is
    /// ready; the `Context` the outer future was given stays valid
    /// meanwhile (it lives on this stack), and if the outer future is then
    /// still pending, the outer `block_on` polls it again with the current
    /// task's waker before suspending, so no wake-up goes to an old waker.
    ///
    /// ```
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    /// use std::future::Future;
    /// use stackswitch::future::StackFuture;
    ///
    /// let future = StackFuture::new(|s| {
    ///     s.block_on(async {
    ///         // A blocking-style call inside an async block.
    ///         let inner = s.block_on(async {
    ///             let mut pending_once = false;
    ///             std::future::poll_fn(|cx| {
    ///                 if std::mem::replace(&mut pending_once, true) {
    ///                     Poll::Ready(20)
    ///                 } else {
    ///                     cx.waker().wake_by_ref();
    ///                     Poll::Pending
    ///                 }
    ///             })
    ///             .await
    ///         });
    ///         inner + 1
    ///     }) * 2
    /// });
    /// let mut future = pin!(future);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(future.as_mut().poll(&mut cx).is_pending());
    /// assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(42));
    /// ```
    ///
    /// # Panics
    ///
    /// If no `poll` of the `StackFuture` is in progress: that is, when
    /// called from a destructor that runs because a suspended `StackFuture`
    /// is being dropped (its stack is unwound). There is no task to wait
    /// in then. The panic happens before `future` is polled. Unless the
    /// destructor catches it, a panic in a destructor during an unwind
    /// aborts the process.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        loop {
            let current = self.context.get();
            if current.is_null() {
                no_poll_in_progress();
            }
            // SAFETY: a non-null pointer is the context of the `poll` that
            // resumed this stack, which is blocked in `resume` until we
            // suspend, and so alive; we only read its waker.
            let waker = unsafe { (*current).waker() }.clone();
            // The future may keep this context across a nested `block_on`
            // that suspends, after which the poll's own would be gone.
            let mut cx = Context::from_waker(&waker);
            let suspensions = self.suspensions.get();
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            if self.suspensions.get() == suspensions {
                self.suspend();
            }
            // Else a nested `block_on` suspended during that poll, after
            // which the future can only have registered the older waker in
            // `cx`: poll it again with the current one.
        }
    }

    /// Suspends the stack until the next `poll`, whose context it records.
    fn suspend(&self) {
        self.context.set(ptr::null_mut());
        self.suspensions.set(self.suspensions.get().wrapping_add(1));
        let context = self.yielder.suspend(());
        self.context.set(context);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn no_poll_in_progress() -> ! {
    panic!(
        "Suspender::block_on called with no poll of its StackFuture in progress \
         (from a destructor while the StackFuture is dropped)"
    )
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
                    context: Cell::new(context),
                    suspensions: Cell::new(0),
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

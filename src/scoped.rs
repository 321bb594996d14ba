//! Coroutines that borrow from the scope that runs them.

use core::marker::PhantomData;
use core::mem::ManuallyDrop;

use crate::stack;
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::trap::CoroutineTrapHandler;
use crate::{Coroutine, CoroutineResult, Yielder};

macro_rules! scoped_coroutine_struct {
    ($($default:ty)?) => {
        /// A [`Coroutine`] whose body, stack and values may borrow.
        ///
        /// It can only be run inside [`scope`](Self::scope), which drops
        /// (and so unwinds) it before returning. That keeps borrows sound
        /// even against `mem::forget`: a forgotten `ScopedCoroutine` never
        /// started, and the reference given to the scope owns nothing.
        ///
        /// ```
        /// use stackswitch::{ScopedCoroutine, Yielder};
        ///
        /// let mut total = 0;
        /// let coroutine = ScopedCoroutine::new(|yielder: &Yielder<i32, ()>, mut input| {
        ///     while input != 0 {
        ///         total += input;
        ///         input = yielder.suspend(());
        ///     }
        /// });
        /// coroutine.scope(|mut coroutine| {
        ///     for i in [1, 2, 3, 0] {
        ///         coroutine.as_mut().resume(i);
        ///     }
        /// });
        /// assert_eq!(total, 6);
        /// ```
        ///
        /// The coroutine cannot leave its scope, so nothing can outlive the
        /// borrows:
        ///
        /// ```compile_fail
        /// # use stackswitch::{ScopedCoroutine, Yielder};
        /// let local = 5;
        /// let coroutine = ScopedCoroutine::new(|_: &Yielder<(), ()>, ()| local);
        /// let escaped = coroutine.scope(|c| c); // error: the reference escapes
        /// ```
        ///
        /// nor be swapped into a longer-lived scope:
        ///
        /// ```compile_fail
        /// # use stackswitch::{ScopedCoroutine, Yielder};
        /// let outer = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(()));
        /// outer.scope(|mut a| {
        ///     let inner = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(()));
        ///     inner.scope(|mut b| std::mem::swap(&mut a, &mut b)); // error
        /// });
        /// ```
        ///
        /// and a borrowing body needs `ScopedCoroutine`, not [`Coroutine`]:
        ///
        /// ```compile_fail
        /// # use stackswitch::{Coroutine, Yielder};
        /// let local = String::from("borrowed");
        /// let c = Coroutine::new(|_: &Yielder<(), ()>, ()| local.len()); // error: not 'static
        /// ```
        ///
        /// Dropping it drops its function, and with it whatever the function
        /// owns, whose destructors may read what it borrows; the function's
        /// type is not part of `ScopedCoroutine`'s, so the compiler is told
        /// that dropping it uses the borrows. It must be dropped while they
        /// are alive, whether it never ran:
        ///
        /// ```compile_fail,E0597
        /// # use stackswitch::{ScopedCoroutine, Yielder};
        /// struct Shows<'a>(&'a String);
        /// impl Drop for Shows<'_> {
        ///     fn drop(&mut self) {
        ///         println!("{}", self.0); // reads the borrowed string
        ///     }
        /// }
        /// let coroutine;
        /// let text = String::from("freed first"); // dropped before `coroutine`
        /// let shows = Shows(&text);
        /// coroutine = ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| drop(shows));
        /// // error: `text` does not live long enough
        /// ```
        ///
        /// or is held by another scoped coroutine's function, which starts it
        /// and suspends in its scope when run:
        ///
        /// ```compile_fail,E0597
        /// # use stackswitch::{ScopedCoroutine, Yielder};
        /// # struct Shows<'a>(&'a String);
        /// # impl Drop for Shows<'_> {
        /// #     fn drop(&mut self) {
        /// #         println!("{}", self.0);
        /// #     }
        /// # }
        /// let outer;
        /// let text = String::from("freed first");
        /// let shows = Shows(&text);
        /// let inner = ScopedCoroutine::new(move |y: &Yielder<(), ()>, ()| {
        ///     let _shows = shows;
        ///     y.suspend(());
        /// });
        /// outer = ScopedCoroutine::new(move |y: &Yielder<(), ()>, ()| {
        ///     // Suspends `outer` while `inner` is suspended in its scope.
        ///     inner.scope(|mut inner| {
        ///         inner.resume(());
        ///         y.suspend(());
        ///     })
        /// });
        /// // error: `text` does not live long enough
        /// ```
        ///
        /// The usual order, borrowed data first, compiles:
        ///
        /// ```
        /// # use stackswitch::{ScopedCoroutine, Yielder};
        /// # struct Shows<'a>(&'a String);
        /// # impl Drop for Shows<'_> {
        /// #     fn drop(&mut self) {
        /// #         assert_eq!(self.0, "alive");
        /// #     }
        /// # }
        /// let text = String::from("alive");
        /// let shows = Shows(&text);
        /// let unstarted = ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| drop(shows));
        /// let shows = Shows(&text);
        /// let started = ScopedCoroutine::new(move |y: &Yielder<(), ()>, ()| {
        ///     let _shows = shows;
        ///     y.suspend(());
        /// });
        /// // Run to the end, so that no build needs to unwind it.
        /// started.scope(|mut c| {
        ///     c.resume(());
        ///     c.resume(());
        /// });
        /// # drop(unstarted);
        /// ```
        pub struct ScopedCoroutine<'a, Input, Yield, Return, Stack: stack::Stack $(= $default)?> {
            // Dropped by hand in `Drop`, whose presence makes the borrows
            // of 'a last until the drop.
            inner: ManuallyDrop<Coroutine<Input, Yield, Return, Stack>>,
            marker: PhantomData<&'a mut ()>,
        }
    };
}
#[cfg(feature = "default-stack")]
scoped_coroutine_struct!(DefaultStack);
#[cfg(not(feature = "default-stack"))]
scoped_coroutine_struct!();

#[cfg(feature = "default-stack")]
impl<'a, Input, Yield, Return> ScopedCoroutine<'a, Input, Yield, Return, DefaultStack> {
    /// Creates a scoped coroutine on a new [`DefaultStack`].
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        Self::with_stack(DefaultStack::default(), func)
    }
}

impl<'a, Input, Yield, Return, Stack: stack::Stack>
    ScopedCoroutine<'a, Input, Yield, Return, Stack>
{
    /// Creates a scoped coroutine on `stack`, which may be borrowed.
    pub fn with_stack<F>(stack: Stack, func: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'a,
    {
        ScopedCoroutine {
            // SAFETY: the coroutine only runs inside `scope`, which drops it
            // (unwinding it) while every borrow of 'a is still alive.
            inner: ManuallyDrop::new(unsafe { Coroutine::with_stack_unchecked(stack, func) }),
            marker: PhantomData,
        }
    }

    /// Drops the (never started) body and returns the stack.
    pub fn into_stack(self) -> Stack {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again.
        let mut inner = unsafe { ManuallyDrop::take(&mut this.inner) };
        inner.force_unwind();
        inner.into_stack()
    }

    /// Runs `f` with access to the coroutine, then drops the coroutine.
    pub fn scope<F, T>(mut self, f: F) -> T
    where
        F: FnOnce(ScopedCoroutineRef<'_, Input, Yield, Return, Stack>) -> T,
    {
        f(ScopedCoroutineRef {
            inner: &mut self.inner,
        })
    }
}

// An explicit `Drop` (not `#[may_dangle]`): the function dropped here may
// use the borrows of 'a, which the compiler cannot see in `Coroutine`.
impl<'a, Input, Yield, Return, Stack: stack::Stack> Drop
    for ScopedCoroutine<'a, Input, Yield, Return, Stack>
{
    fn drop(&mut self) {
        // SAFETY: `inner` is dropped only here, once.
        unsafe { ManuallyDrop::drop(&mut self.inner) }
    }
}

/// Access to a [`ScopedCoroutine`] within its [`scope`](ScopedCoroutine::scope).
/// Mirrors [`Coroutine`]'s methods.
pub struct ScopedCoroutineRef<'a, Input, Yield, Return, Stack: stack::Stack> {
    inner: &'a mut Coroutine<Input, Yield, Return, Stack>,
}

impl<Input, Yield, Return, Stack: stack::Stack>
    ScopedCoroutineRef<'_, Input, Yield, Return, Stack>
{
    /// Reborrows, for calling a method that takes `self` by value.
    pub fn as_mut(&mut self) -> ScopedCoroutineRef<'_, Input, Yield, Return, Stack> {
        ScopedCoroutineRef { inner: self.inner }
    }

    /// See [`Coroutine::resume`].
    pub fn resume(&mut self, val: Input) -> CoroutineResult<Yield, Return> {
        self.inner.resume(val)
    }

    /// See [`Coroutine::started`].
    pub fn started(&self) -> bool {
        self.inner.started()
    }

    /// See [`Coroutine::done`].
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// See [`Coroutine::force_reset`].
    ///
    /// # Safety
    /// As for [`Coroutine::force_reset`].
    pub unsafe fn force_reset(&mut self) {
        // SAFETY: forwarded to the caller.
        unsafe { self.inner.force_reset() }
    }

    /// See [`Coroutine::force_unwind`].
    pub fn force_unwind(&mut self) {
        self.inner.force_unwind()
    }

    /// See [`Coroutine::trap_handler`].
    pub fn trap_handler(&self) -> CoroutineTrapHandler<Return> {
        self.inner.trap_handler()
    }
}

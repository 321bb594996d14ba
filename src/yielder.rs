//! [`Yielder`]: how a running coroutine suspends itself, and what it knows
//! of the stack it runs on (room left, growing it, its parent's stack).

use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;

use crate::abi::StackPointer;
use crate::arch;
use crate::header::StackState;
use crate::sanitizer;
use crate::stack;
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::stack_call::call_on_stack_top;
#[cfg(feature = "default-stack")]
use crate::stack_call::on_stack;
use crate::transfer;
use crate::unwind;

/// The handle through which a coroutine suspends itself. It is the coroutine
/// stack's link word, and so only ever exists as a reference into that stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    link: Cell<usize>,
    marker: PhantomData<fn(Yield) -> Input>,
}

impl<Input, Yield> Yielder<Input, Yield> {
    /// Suspends the coroutine, handing `val` to the [`Coroutine::resume`](crate::Coroutine::resume)
    /// that resumed it, and returns the `Input` of the next resume.
    ///
    /// If the coroutine is dropped instead of resumed, this panics with a
    /// [`ForcedUnwind`](crate::ForcedUnwind) payload that unwinds the
    /// coroutine's stack; code that catches panics must let it through.
    ///
    /// It can be called at any depth of the coroutine's call stack:
    ///
    /// ```
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// fn countdown(yielder: &Yielder<(), u32>, n: u32) {
    ///     if n > 0 {
    ///         yielder.suspend(n);
    ///         countdown(yielder, n - 1);
    ///     }
    /// }
    /// let mut coroutine = Coroutine::new(|yielder, ()| countdown(yielder, 3));
    /// assert_eq!(coroutine.resume(()).as_yield(), Some(3));
    /// assert_eq!(coroutine.resume(()).as_yield(), Some(2));
    /// assert_eq!(coroutine.resume(()).as_yield(), Some(1));
    /// assert_eq!(coroutine.resume(()).as_return(), Some(()));
    /// ```
    #[inline]
    pub fn suspend(&self, val: Yield) -> Input {
        let mut val = ManuallyDrop::new(val);
        // SAFETY: `self` is the link of the coroutine running this code (a
        // `Yielder` cannot leave its stack: it is neither Send nor Sync, and
        // `on_parent_stack` needs a Send closure), and its parent is blocked
        // in `resume`, which takes ownership of `val` before we run again.
        let arg = unsafe {
            sanitizer::suspending(self.link.as_ptr());
            let arg = arch::suspend(transfer::send(&mut val), self.link.as_ptr());
            sanitizer::resumed_in_coroutine(self.link.as_ptr());
            arg
        };
        if self.state().unwind_requested() {
            self.unwind_on_request();
        }
        // SAFETY: without a request to unwind, the word carries the
        // parent's `Input`, sent by this switch.
        unsafe { transfer::receive(arg) }
    }

    /// The slow path of `suspend`: the parent asks us to unwind.
    #[cold]
    #[inline(never)]
    fn unwind_on_request(&self) -> ! {
        self.state().clear_unwind_request();
        unwind::start_forced_unwind()
    }

    /// Bytes of stack left below the current frame that code may use: the
    /// stack pointer minus the
    /// [`usable_limit`](crate::stack::Stack::usable_limit) of the stack the
    /// coroutine is running on, so guard pages (and whatever else the
    /// stack keeps off limits) are not counted.
    ///
    /// Returns 0 if called from a stack the coroutine does not know of (for
    /// example inside [`on_stack`] on another stack), so that
    /// [`maybe_grow`](Self::maybe_grow) errs on the side of growing. It
    /// reads only the coroutine's own stack, no thread-local.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| {
    ///     yielder.remaining_stack()
    /// });
    /// let left = coroutine.resume(()).as_return().unwrap();
    /// // Nearly all of it, and no more.
    /// assert!(left > 48 * 1024 && left < 64 * 1024);
    /// ```
    #[inline]
    pub fn remaining_stack(&self) -> usize {
        let here = arch::current_stack_pointer();
        let (limit, top) = self.state().bounds();
        if here > limit && here < top {
            here - limit
        } else {
            0
        }
    }

    /// Runs `f` on the current stack if at least `red_zone` bytes of it
    /// remain ([`remaining_stack`](Self::remaining_stack)), else on a new
    /// segment of `stack_size` bytes allocated for the call (and freed
    /// after it). Recursive code calls this at each level to grow without
    /// bound, as with the `stacker` crate's function of the same name.
    ///
    /// Inside `f`, `remaining_stack` describes the new segment, and `f` may
    /// suspend the coroutine. A panic in `f` continues from here.
    ///
    /// # Panics
    /// If a new segment is needed and the OS refuses the memory.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// fn depth(yielder: &Yielder<(), ()>, n: u64) -> u64 {
    ///     let frame = std::hint::black_box([n; 64]); // 512 bytes per level
    ///     if n == 0 {
    ///         return frame[0];
    ///     }
    ///     yielder.maybe_grow(32 * 1024, 256 * 1024, || 1 + depth(yielder, n - 1)) + frame[1] - n
    /// }
    ///
    /// # // Too deep to interpret in reasonable time (tests/stack_usage.rs
    /// # // covers maybe_grow under Miri).
    /// # if cfg!(miri) { return; }
    /// // 20,000 levels of 512+ bytes would overflow 64 KiB many times over.
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// let mut coroutine = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| depth(y, 20_000));
    /// assert_eq!(coroutine.resume(()).as_return(), Some(20_000));
    /// ```
    #[cfg(feature = "default-stack")]
    #[inline]
    pub fn maybe_grow<R>(&self, red_zone: usize, stack_size: usize, f: impl FnOnce() -> R) -> R {
        if self.remaining_stack() >= red_zone {
            f()
        } else {
            self.grow(stack_size, f)
        }
    }

    #[cfg(feature = "default-stack")]
    #[cold]
    #[inline(never)]
    fn grow<R>(&self, stack_size: usize, f: impl FnOnce() -> R) -> R {
        /// Puts the bounds of the segment's caller back, also on a panic.
        struct Restore<'a>(&'a StackState, usize, usize);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set_bounds(self.1, self.2);
            }
        }

        let mut segment =
            DefaultStack::new(stack_size).expect("failed to allocate a stack segment");
        let state = self.state();
        let (limit, top) = state.bounds();
        let _restore = Restore(state, limit, top);
        state.set_bounds(
            stack::Stack::usable_limit(&segment).get(),
            stack::Stack::base(&segment).get(),
        );
        on_stack(&mut segment, f)
    }

    /// The state slot of this coroutine's stack.
    #[inline(always)]
    fn state(&self) -> &StackState {
        let base = self as *const Self as usize + arch::LINK;
        // SAFETY: a Yielder is the link word of a live coroutine stack, LINK
        // bytes below its base, and is only ever borrowed from that stack.
        unsafe { StackState::of(StackPointer::new_unchecked(base)) }
    }

    /// Runs `f` on the stack of the coroutine's parent (which is blocked in
    /// `resume`), for work that needs more stack than the coroutine has.
    ///
    /// A panic in `f` continues in the coroutine.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::Coroutine;
    ///
    /// let small = DefaultStack::new(16 * 1024).unwrap();
    /// let mut coroutine = Coroutine::<(), (), u32>::with_stack(small, |yielder, ()| {
    ///     // 256 KiB would overflow this coroutine's stack.
    ///     yielder.on_parent_stack(|| {
    ///         let big = [1u8; 256 * 1024];
    ///         big.iter().map(|&b| b as u32).sum::<u32>()
    ///     })
    /// });
    /// assert_eq!(coroutine.resume(()).as_return(), Some(256 * 1024));
    /// ```
    pub fn on_parent_stack<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R,
        // Keeps references to this Yielder out of `f`: suspending from the
        // parent's stack would corrupt it.
        F: Send,
    {
        // SAFETY: `self` is the running coroutine's link word, which holds
        // the parent's stack pointer while we run.
        let top = unsafe { stack::parent_call_top(self.link.as_ptr()) };
        // SAFETY: below that point the parent's stack is free until we
        // switch back to it; we run in a coroutine, which has a parent.
        unsafe {
            call_on_stack_top(
                top,
                sanitizer::StackBounds::parent(self.link.as_ptr()),
                f,
                0,
            )
        }
    }
}

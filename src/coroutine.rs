//! [`Coroutine`]: the lifecycle of a coroutine, from its creation on a
//! stack through its resumptions to its end, and what its owner does with
//! it meanwhile (unwind it, reset it, take its stack back).
//!
//! The owner keeps one word about it, a [`Context`]; values cross stacks in
//! the word a switch carries ([`transfer`]); the stack's top holds the
//! generic state the coroutine side reads ([`header`](crate::header)); how a
//! coroutine's function ended comes back as an end ([`exit`](crate::exit)).

use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ptr;

use crate::abi::{EntryFn, StackPointer, Word};
use crate::arch;
use crate::context::{Context, FreshContext};
use crate::exit::{exit_with, Exit};
use crate::header::{move_to_stack_top, StackState};
use crate::sanitizer::{self, CoroutineFiber};
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::stack::{self, STACK_ALIGNMENT};
use crate::transfer;
use crate::trap::CoroutineTrapHandler;
use crate::unwind::{self, root_fn};
use crate::yielder::Yielder;

/// What a coroutine produced when it was last resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Yield, Return> {
    /// The coroutine suspended itself with [`Yielder::suspend`].
    Yield(Yield),
    /// The coroutine's function returned; it cannot be resumed again.
    Return(Return),
}

impl<Yield, Return> CoroutineResult<Yield, Return> {
    /// The yielded value, if the coroutine suspended.
    ///
    /// ```
    /// use stackswitch::CoroutineResult;
    /// assert_eq!(CoroutineResult::<i32, ()>::Yield(3).as_yield(), Some(3));
    /// ```
    pub fn as_yield(self) -> Option<Yield> {
        match self {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    ///
    /// ```
    /// use stackswitch::CoroutineResult;
    /// assert_eq!(CoroutineResult::<(), &str>::Return("done").as_return(), Some("done"));
    /// ```
    pub fn as_return(self) -> Option<Return> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(value) => Some(value),
        }
    }
}

macro_rules! coroutine_struct {
    ($($default:ty)?) => {
        /// A function running on its own stack that can suspend itself and be
        /// resumed.
        ///
        /// `Input` is passed in by each [`resume`](Self::resume), `Yield` is
        /// passed out by each [`Yielder::suspend`], `Return` is what the
        /// function returns. The body and its data must be `'static`; see
        /// [`ScopedCoroutine`](crate::ScopedCoroutine) for borrowing ones.
        ///
        /// ```
        /// use stackswitch::{Coroutine, CoroutineResult};
        ///
        /// let mut counter = Coroutine::new(|yielder, start: u32| {
        ///     let mut n = start;
        ///     loop {
        ///         let step = yielder.suspend(n);
        ///         if step == 0 {
        ///             return "stopped";
        ///         }
        ///         n += step;
        ///     }
        /// });
        /// assert_eq!(counter.resume(10), CoroutineResult::Yield(10));
        /// assert_eq!(counter.resume(5), CoroutineResult::Yield(15));
        /// assert_eq!(counter.resume(0), CoroutineResult::Return("stopped"));
        /// assert!(counter.done());
        /// ```
        ///
        /// # Dropping
        ///
        /// Dropping a suspended coroutine unwinds its stack (see
        /// [`force_unwind`](Self::force_unwind)), so every value on it is
        /// dropped before the stack is freed or given back. Where that is
        /// impossible (without the `unwind` feature, or with
        /// `panic = "abort"`), dropping a started, suspended coroutine
        /// aborts the process with a message: its stack is never freed
        /// under its frames. An unstarted one just drops its closure.
        ///
        /// A coroutine dropped while it runs (only possible from outside
        /// the type system: the thread-local destructors that
        /// `std::process::exit` runs, or raw pointers) is left alone: nothing
        /// is unwound and its stack is leaked, since code is running on it.
        ///
        /// # `Send`
        ///
        /// A coroutine may hold thread-bound values (an `Rc`, a
        /// `MutexGuard`) on its stack where the type system cannot see them,
        /// so `Coroutine` is never `Send`.
        pub struct Coroutine<Input, Yield, Return, Stack: stack::Stack $(= $default)?> {
            /// Owned stack; not dropped while frames may be live on it.
            stack: ManuallyDrop<Stack>,
            /// Saved context while suspended, else `DONE` or `RUNNING`.
            context: Context,
            /// The context before the first resume, to answer `started`,
            /// and whether the closure has something to drop.
            fresh: FreshContext,
            /// What sanitizers know about the coroutine (nothing without
            /// the `sanitizer` feature).
            fiber: CoroutineFiber,
            marker: PhantomData<(fn(Input) -> CoroutineResult<Yield, Return>, *mut ())>,
        }
    };
}
#[cfg(feature = "default-stack")]
coroutine_struct!(DefaultStack);
#[cfg(not(feature = "default-stack"))]
coroutine_struct!();

// SAFETY: a shared reference gives access to nothing but `started`, `done`
// and `trap_handler`, which only read plain words and the stack's bounds.
unsafe impl<Input, Yield, Return, Stack: stack::Stack + Sync> Sync
    for Coroutine<Input, Yield, Return, Stack>
{
}

#[cfg(feature = "default-stack")]
impl<Input, Yield, Return> Coroutine<Input, Yield, Return, DefaultStack> {
    /// Creates a coroutine that runs `func` on a new [`DefaultStack`].
    ///
    /// Nothing runs until the first [`resume`](Self::resume), whose input is
    /// `func`'s second argument.
    ///
    /// ```
    /// use stackswitch::{Coroutine, CoroutineResult};
    ///
    /// let mut greet = Coroutine::new(|yielder, first: String| {
    ///     let second = yielder.suspend(first.len());
    ///     format!("{first}, {second}")
    /// });
    /// assert_eq!(greet.resume("hello".into()), CoroutineResult::Yield(5));
    /// assert_eq!(greet.resume("world".into()).as_return().unwrap(), "hello, world");
    /// ```
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
    {
        Self::with_stack(DefaultStack::default(), func)
    }
}

impl<Input, Yield, Return, Stack: stack::Stack> Coroutine<Input, Yield, Return, Stack> {
    /// Creates a coroutine that runs `func` on `stack`.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<i32, ()>, x: i32| x * 2);
    /// assert_eq!(coroutine.resume(21).as_return(), Some(42));
    /// let _stack_for_reuse = coroutine.into_stack();
    /// ```
    ///
    /// # Panics
    ///
    /// If the closure does not fit. It is moved to the top of the stack;
    /// a small one (twice its size, plus the stack's small header, at most
    /// [`MIN_STACK_SIZE`](crate::stack::MIN_STACK_SIZE)` / 4`) fits on every
    /// stack. A larger one fits if the usable part of the stack (down to
    /// [`usable_limit`](crate::stack::Stack::usable_limit), guard pages
    /// excluded) holds, below it, another copy of it (it is moved into the
    /// frame that calls it) and `MIN_STACK_SIZE` bytes more: the room a
    /// small closure has on the smallest stack.
    ///
    /// ```should_panic
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let data = [0u8; 40 * 1024];
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// // Panics: 40 KiB twice over is more than the stack holds.
    /// let _ = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| data.len());
    /// ```
    pub fn with_stack<F>(stack: Stack, func: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return + 'static,
        Input: 'static,
        Yield: 'static,
        Return: 'static,
        Stack: 'static,
    {
        // SAFETY: everything is 'static, so nothing the coroutine holds can
        // dangle, even if the coroutine is leaked.
        unsafe { Self::with_stack_unchecked(stack, func) }
    }

    /// [`with_stack`](Self::with_stack) without the `'static` bounds.
    ///
    /// # Safety
    ///
    /// Everything `func` borrows, and the stack if it is borrowed, must stay
    /// valid until the coroutine has completed or been dropped. If it is
    /// leaked (`mem::forget`) after being started, that means forever, since
    /// its frames are never unwound. [`ScopedCoroutine`](crate::ScopedCoroutine)
    /// is a safe wrapper.
    pub unsafe fn with_stack_unchecked<F>(mut stack: Stack, func: F) -> Self
    where
        F: FnOnce(&Yielder<Input, Yield>, Input) -> Return,
    {
        root_fn! {
            /// Root of every coroutine: runs the closure and leaves through
            /// `arch::exit` with an `Exit`.
            unsafe fn coroutine_entry<Input, Yield, Return, F>(
                arg: Word,
                link: *mut usize,
                data: *mut u8,
            ) -> !
            where
                F: FnOnce(&Yielder<Input, Yield>, Input) -> Return,
            {
                // SAFETY: `with_stack_unchecked` moved an F to `data`, and this
                // is the only place that takes it (a coroutine dropped before
                // it starts is never entered); `link` is this stack's link,
                // whose layout is a `Yielder`'s; `arg` carries the parent's
                // `Input`, sent by this switch.
                unsafe {
                    sanitizer::coroutine_entered();
                    let yielder = &*(link as *const Yielder<Input, Yield>);
                    let input = transfer::receive::<Input>(arg);
                    // Taken where it is called, not before: each move of a
                    // large closure would be a copy on this stack.
                    let result = unwind::catch_at_root(|| {
                        Some(ptr::read(data as *mut F)(yielder, input))
                    });
                    exit_with(result, link)
                }
            }
        }

        // A thread with a hardware shadow stack: the coroutine needs one of
        // its own, which the stack provides, where the switch can follow it.
        // A switch that cannot follow one refuses such a thread: here, or
        // (for free) where this crate's stacks are made.
        let check = arch::FOLLOWS_SHADOW_STACK || !Stack::SHADOW_STACK_REFUSED_WHEN_MADE;
        let shadow = if check && arch::shadow_stack_active() {
            stack::refuse_unfollowed_shadow_stack();
            match stack.shadow_stack() {
                Some(top) => top.get(),
                None => stack::no_shadow_stack(),
            }
        } else {
            0
        };
        // SAFETY: the stack is ours and unused; the sanitizers learn of it
        // first (before anything is written to it), the OS state goes in
        // its header, the bounds and the closure just below. Its base is
        // aligned (a requirement of `Stack`); saying so lets the compiler
        // drop the rounding of the closure's address where it has nothing
        // to round.
        unsafe {
            core::hint::assert_unchecked(stack.base().get().is_multiple_of(STACK_ALIGNMENT));
            let fiber = CoroutineFiber::for_stack(|| stack_bounds(&stack));
            stack::attach_os_state(&stack);
            let usable_limit = stack.usable_limit();
            let state = StackState::of(stack.base());
            state.set_bounds(usable_limit.get(), stack.base().get());
            // A closure with nothing to drop costs nothing here.
            state.keep_closure_drop::<F>();
            let data = move_to_stack_top(stack.base(), usable_limit, func);
            let entry: EntryFn = coroutine_entry::<Input, Yield, Return, F>;
            let context = arch::init_stack(stack.base(), data, entry, data as *mut u8);
            arch::set_shadow_stack(stack.base(), context, shadow);
            let context = Context::saved(context);
            Coroutine {
                fiber,
                stack: ManuallyDrop::new(stack),
                context,
                fresh: FreshContext::new(context, mem::needs_drop::<F>()),
                marker: PhantomData,
            }
        }
    }

    /// Runs the coroutine until it suspends or returns.
    ///
    /// On the first call `val` becomes the function's second argument; on
    /// later ones it is what the pending [`Yielder::suspend`] returns.
    ///
    /// # Panics
    ///
    /// - If the coroutine has already completed, or is running (resumed
    ///   from within itself).
    /// - If the coroutine panics: the panic continues from here, and the
    ///   coroutine is then completed.
    ///
    /// ```should_panic
    /// use stackswitch::Coroutine;
    ///
    /// let mut once = Coroutine::<(), (), ()>::new(|_, ()| {});
    /// assert!(once.resume(()).as_return().is_some());
    /// once.resume(()); // panics: the coroutine has already completed
    /// ```
    #[inline]
    pub fn resume(&mut self, val: Input) -> CoroutineResult<Yield, Return> {
        if !self.context.is_saved() {
            self.not_resumable();
        }
        let mut input = ManuallyDrop::new(val);
        // SAFETY: the coroutine is suspended (checked above) and takes the
        // input before the switch returns; the word it sends back is its
        // yielded value, or what its exit sent, owned by us from now on.
        unsafe {
            let (word, next) = self.switch(transfer::send(&mut input));
            if next.is_saved() {
                return CoroutineResult::Yield(transfer::receive(word));
            }
            match self.exit_of(next, word) {
                Exit::Returned(value) => CoroutineResult::Return(value),
                Exit::Panicked(panic) => unwind::rethrow(Err(panic)),
                // A forced unwind that was not ours (a parent further out
                // is being dropped): let it continue out of here.
                Exit::Unwound => unwind::start_forced_unwind(),
            }
        }
    }

    /// How the coroutine ended, from its exit's `end` and word.
    ///
    /// # Safety
    /// The coroutine must have just exited with `end`, sending `word`.
    #[inline(always)]
    unsafe fn exit_of(&mut self, end: Context, word: Word) -> Exit<Return> {
        if end == Context::RETURNED {
            // SAFETY: a returning coroutine sends its value (`exit_with`).
            Exit::Returned(unsafe { transfer::receive(word) })
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.panic_or_unwind_exit_of(end, word) }
        }
    }

    /// [`exit_of`](Self::exit_of) for a panic or an unwind. A return's end
    /// is `DONE`, so the switch already left the coroutine done; these ends
    /// are replaced by `DONE` here, off the hot path.
    ///
    /// # Safety
    /// As for `exit_of`.
    #[cold]
    // Where panics are not caught, `CaughtPanic` is uninhabited and the
    // `PANICKED` branch is dead.
    #[allow(unreachable_code)]
    unsafe fn panic_or_unwind_exit_of(&mut self, end: Context, word: Word) -> Exit<Return> {
        self.context = Context::DONE;
        if end == Context::PANICKED {
            // SAFETY: `exit_with` sends the panic with this end.
            Exit::Panicked(unsafe { transfer::receive(word) })
        } else {
            Exit::Unwound
        }
    }

    /// Switches into the coroutine with `arg`. Returns the word it sent
    /// back and, with `context` set to it, its new context if it suspended,
    /// else its exit's end (not a saved context), which leaves `context`
    /// for [`exit_of`](Self::exit_of) to set.
    ///
    /// # Safety
    /// The coroutine must be suspended (or fresh).
    #[inline(always)]
    unsafe fn switch(&mut self, arg: Word) -> (Word, Context) {
        // Under `asm-unwind` a panic can leave `arch::resume` itself; the
        // coroutine is then finished. (Elsewhere this guard compiles away.)
        struct FinishOnUnwind<'a>(&'a mut Context);
        impl Drop for FinishOnUnwind<'_> {
            fn drop(&mut self) {
                *self.0 = Context::DONE;
            }
        }

        let base = self.stack.base();
        // SAFETY: forwarded from the caller: `context` is a saved context
        // of the coroutine on this stack.
        let sp = unsafe { self.context.stack_pointer() };
        // Safe code cannot reach a running coroutine through `self`, so
        // the compiler would drop a plain store here (it is overwritten
        // after the switch, and the asm is not given `self`). But the
        // thread-local destructors run by `std::process::exit` inside the
        // coroutine can drop it through the thread-local, and must see it
        // running: a volatile store is kept, and costs one store.
        // SAFETY: a valid, aligned place of ours.
        unsafe { ptr::write_volatile(&mut self.context, Context::RUNNING) };
        let guard = FinishOnUnwind(&mut self.context);
        // SAFETY: as above; the state is RUNNING for the duration, so no
        // other resume of it can start. The sanitizer hooks bracket the
        // switch, and `self.fiber` stays put while `self` is borrowed.
        let (arg, next) = unsafe {
            let token = sanitizer::resuming(&mut self.fiber);
            let switched = arch::resume(arg, sp, base);
            sanitizer::resumed_back(token);
            switched
        };
        mem::forget(guard);
        let next = Context::from_switch(next);
        self.context = next;
        (arg, next)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn not_resumable(&self) -> ! {
        if self.context == Context::DONE {
            panic!("attempt to resume a completed coroutine")
        }
        panic!("attempted to resume a coroutine that is already running")
    }

    /// Whether the coroutine has been resumed at least once (or completed).
    ///
    /// ```
    /// use stackswitch::Coroutine;
    ///
    /// let mut coroutine = Coroutine::<(), u8, ()>::new(|yielder, ()| {
    ///     yielder.suspend(1);
    /// });
    /// assert!(!coroutine.started() && !coroutine.done());
    /// coroutine.resume(());
    /// assert!(coroutine.started() && !coroutine.done());
    /// coroutine.resume(());
    /// assert!(coroutine.started() && coroutine.done());
    /// ```
    pub fn started(&self) -> bool {
        self.context != self.fresh.context()
    }

    /// Whether the coroutine has completed: it returned, panicked, was
    /// unwound or reset, and cannot be resumed again. See
    /// [`started`](Self::started) for an example.
    pub fn done(&self) -> bool {
        self.context == Context::DONE
    }

    /// Marks the coroutine as completed without unwinding its stack: values
    /// on it are never dropped (they are leaked), and the stack can be reused.
    ///
    /// # Safety
    ///
    /// Nothing on the coroutine's stack may be relied upon to run its
    /// destructor: it is as if the coroutine's frames were `mem::forget`-ed
    /// and their memory then reused.
    ///
    /// # Panics
    /// If the coroutine is running.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::Coroutine;
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// let mut coroutine = Coroutine::<(), (), ()>::with_stack(stack, |yielder, ()| {
    ///     let buffer = vec![0u8; 1024];
    ///     yielder.suspend(());
    ///     drop(buffer);
    /// });
    /// coroutine.resume(());
    /// # // Under Miri the reset coroutine's thread is leaked, and reported.
    /// # if cfg!(miri) { return; }
    /// // SAFETY: nothing on the stack needs its destructor to run; the
    /// // buffer is leaked.
    /// unsafe { coroutine.force_reset() };
    /// assert!(coroutine.done());
    /// let _reusable = coroutine.into_stack();
    /// ```
    pub unsafe fn force_reset(&mut self) {
        assert!(
            self.context != Context::RUNNING,
            "attempted to reset a running coroutine"
        );
        self.context = Context::DONE;
    }

    /// Unwinds a suspended coroutine: its pending [`Yielder::suspend`]
    /// raises a panic with a [`ForcedUnwind`](crate::ForcedUnwind) payload
    /// that runs every destructor on its stack, and the coroutine completes.
    /// A coroutine that never started just drops its closure (on the
    /// caller's stack). Nothing happens to a completed one.
    ///
    /// If the coroutine suspends again before it completes (code in it
    /// caught the `ForcedUnwind`, or a destructor suspends), the value it
    /// yields is dropped here and the pending `suspend` raises the forced
    /// unwind again, as many times as it takes: when this returns, nothing
    /// is left on the coroutine's stack, so the stack can be freed or
    /// reused (a borrowed one given back) with no frame alive on it.
    ///
    /// # Panics
    ///
    /// - If a destructor in the coroutine panics while unwinding, or code in
    ///   it panics after catching the `ForcedUnwind`: that panic continues
    ///   from here (the coroutine is then completed).
    /// - If dropping a value the coroutine yields while being unwound
    ///   panics: the coroutine is first unwound to the end, then that panic
    ///   continues from here.
    /// - If a closure of a coroutine that never started panics when
    ///   dropped: that panic continues from here (the coroutine is
    ///   completed).
    /// - If the coroutine is running.
    /// - If the coroutine has started and is suspended, but this build
    ///   cannot unwind it (without the `unwind` feature, or with
    ///   `panic = "abort"`): the coroutine is left suspended.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use stackswitch::Coroutine;
    ///
    /// let shared = Rc::new(());
    /// let on_stack = shared.clone();
    /// let mut coroutine = Coroutine::<(), (), ()>::new(move |yielder, ()| {
    ///     let _held = on_stack;
    ///     yielder.suspend(());
    /// });
    /// coroutine.resume(());
    /// assert_eq!(Rc::strong_count(&shared), 2);
    /// # if cfg!(feature = "unwind") {
    /// coroutine.force_unwind(); // drops `_held`, on the coroutine's stack
    /// assert_eq!(Rc::strong_count(&shared), 1);
    /// assert!(coroutine.done());
    /// # } else { unsafe { coroutine.force_reset() } }
    /// ```
    ///
    /// A coroutine that catches the forced unwind is unwound again:
    ///
    /// ```
    /// # if cfg!(feature = "unwind") {
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    /// use stackswitch::Coroutine;
    ///
    /// let mut stubborn = Coroutine::<(), &str, ()>::new(|yielder, ()| {
    ///     let _ = catch_unwind(AssertUnwindSafe(|| yielder.suspend("first")));
    ///     // Caught the forced unwind: this suspend raises it again.
    ///     yielder.suspend("second");
    ///     unreachable!();
    /// });
    /// assert_eq!(stubborn.resume(()).as_yield(), Some("first"));
    /// stubborn.force_unwind();
    /// assert!(stubborn.done());
    /// # }
    /// ```
    #[inline]
    pub fn force_unwind(&mut self) {
        if self.context != Context::DONE {
            self.force_unwind_slow();
        }
    }

    /// [`force_unwind`](Self::force_unwind) of a coroutine that has not
    /// completed.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn force_unwind_slow(&mut self) {
        if self.context == Context::RUNNING {
            panic!("attempted to unwind a running coroutine");
        }
        if !self.started() {
            self.context = Context::DONE;
            if self.fresh.closure_needs_drop() {
                // SAFETY: the coroutine never ran, so its closure is still
                // in place at the top of its stack; now that it is marked
                // done nothing else will take or drop the closure.
                unsafe { StackState::drop_unstarted_closure(self.stack.base()) };
            }
            return;
        }
        unwind::require_unwind_support();
        unwind::prepare_unwinder();
        let mut deferred = unwind::DeferredPanic::new();
        loop {
            // SAFETY: suspended (started, not done, not running), so its
            // stack state is set up; with the request the switch carries no
            // value.
            let switched = unwind::catch_forced_unwind(|| unsafe {
                StackState::of(self.stack.base()).request_unwind();
                self.switch(Word::uninit())
            });
            // SAFETY: what the coroutine sends is its values, now ours.
            unsafe {
                match switched {
                    // The unwind arrived here as a panic and was caught.
                    None => break,
                    Some((word, next)) if !next.is_saved() => match self.exit_of(next, word) {
                        Exit::Returned(_) | Exit::Unwound => break,
                        Exit::Panicked(panic) => unwind::rethrow(Err(panic)),
                    },
                    // It suspended again: drop what it yielded (a panic
                    // there waits until the coroutine is unwound) and ask
                    // again.
                    Some((word, _)) => deferred.run(|| drop(transfer::receive::<Yield>(word))),
                }
            }
        }
        deferred.resume();
    }

    /// Takes the stack back from a completed coroutine, to reuse it.
    ///
    /// # Panics
    /// If the coroutine has not completed.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// // One stack, many coroutines in turn: no allocation after the first.
    /// let mut stack = DefaultStack::new(64 * 1024).unwrap();
    /// for i in 0..3 {
    ///     let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| i * 2);
    ///     assert_eq!(coroutine.resume(()).as_return(), Some(i * 2));
    ///     stack = coroutine.into_stack();
    /// }
    /// ```
    pub fn into_stack(self) -> Stack {
        assert!(
            self.context == Context::DONE,
            "cannot extract stack from an incomplete coroutine"
        );
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the stack is moved out once;
        // the coroutine on it is done, so its header holds its last OS state.
        unsafe {
            let mut stack = ManuallyDrop::take(&mut this.stack);
            sanitizer::release(&mut this.fiber, || stack_bounds(&stack));
            stack::detach_os_state(&mut stack);
            stack
        }
    }

    /// A handle for a signal or exception handler to recover from a trap
    /// (such as a stack overflow) inside this coroutine. See [`crate::trap`],
    /// and the `sandbox` example for a complete signal handler.
    ///
    /// ```
    /// use stackswitch::Coroutine;
    ///
    /// let coroutine = Coroutine::<(), (), ()>::new(|_, ()| {});
    /// let handler = coroutine.trap_handler();
    /// // A handler checks that a fault happened on this coroutine's stack.
    /// let on_main_stack = 0u8;
    /// assert!(!handler.stack_ptr_in_bounds(&on_main_stack as *const u8 as usize));
    /// ```
    pub fn trap_handler(&self) -> CoroutineTrapHandler<Return> {
        CoroutineTrapHandler::new(
            self.stack.base(),
            self.stack.limit(),
            self.stack.usable_limit(),
        )
    }
}

impl<Input, Yield, Return, Stack: stack::Stack> Drop for Coroutine<Input, Yield, Return, Stack> {
    #[inline]
    fn drop(&mut self) {
        if self.context != Context::DONE && !self.finish_before_drop() {
            return;
        }
        // SAFETY: nothing is live on the stack any more (so its header holds
        // the last OS state), and it is dropped once.
        unsafe {
            sanitizer::release(&mut self.fiber, || stack_bounds(&*self.stack));
            stack::detach_os_state(&mut *self.stack);
            ManuallyDrop::drop(&mut self.stack)
        }
    }
}

impl<Input, Yield, Return, Stack: stack::Stack> Coroutine<Input, Yield, Return, Stack> {
    /// The slow path of `drop`: unwinds a suspended coroutine. Returns
    /// whether its stack may be freed.
    #[cold]
    #[inline(never)]
    fn finish_before_drop(&mut self) -> bool {
        if self.context == Context::RUNNING {
            // Dropped from under itself, as when `process::exit` in the
            // coroutine runs thread-local destructors: its frames are live
            // and their code is running, so nothing can be unwound and the
            // stack must not be freed. Leak it.
            return false;
        }
        if self.started() && !unwind::CAN_UNWIND {
            unwind::abort(
                "a suspended coroutine was dropped, but it cannot be unwound without the \
                 `unwind` feature and `panic = \"unwind\"`; aborting rather than free its \
                 stack under its frames",
            );
        }
        // If this panics, the coroutine is nonetheless completed; its stack
        // is then leaked, which is sound.
        self.force_unwind();
        true
    }
}

/// A stack's bounds, for the sanitizers. Handed to them as a closure: a
/// stack's limit may cost more than a load to compute, and a build without
/// sanitizers never calls it.
#[inline(always)]
fn stack_bounds<S: stack::Stack + ?Sized>(stack: &S) -> (StackPointer, StackPointer) {
    (stack.limit(), stack.base())
}

//! The coroutine state machine, above the architecture layer.
//!
//! Values cross stacks in the word a switch carries (see
//! [`transfer`]): by value if they fit, else by address.
//! What the word cannot say travels beside it, where the common paths do not
//! pay for it: how a coroutine's function ended goes in place of a context
//! (the `end` of `arch::exit`), and a parent's request that the coroutine
//! unwind itself is a bit in the coroutine's [`StackState`].

use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ptr;

use crate::abi::{EntryFn, StackCallFn};
use crate::arch;
use crate::sanitizer::{self, CoroutineFiber};
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::stack::{self, StackPointer, STACK_ALIGNMENT};
use crate::transfer::{self, Word};
use crate::trap::CoroutineTrapHandler;
use crate::unwind::{self, root_fn, CaughtPanic};

/// `Coroutine::context` values that are not saved stack pointers. A saved
/// context is a stack address, which is never this small.
const DONE: usize = 0;
const RUNNING: usize = 1;

/// How a coroutine's function ended, as its exit tells the parent in place
/// of a context (`arch::exit`'s `end`). Small numbers, so that no context (a
/// stack address) is ever one of them. A return is `DONE`, the state it
/// leaves the coroutine in.
const END_RETURNED: usize = DONE;
/// It panicked: the word carries the `CaughtPanic`.
const END_PANICKED: usize = 2;
/// It was unwound on request.
const END_UNWOUND: usize = 3;
const LAST_END: usize = END_UNWOUND;

/// The bit of `Coroutine::fresh_context` that says the closure needs
/// dropping (and the stack's state holds the function that does it).
const CLOSURE_NEEDS_DROP: usize = 1;

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

/// How a coroutine's function ended.
enum Exit<Return> {
    Returned(Return),
    Panicked(CaughtPanic),
    /// Unwound on request.
    Unwound,
}

impl<Return> Exit<Return> {
    #[inline(always)]
    fn from_root(result: Result<Option<Return>, CaughtPanic>) -> Self {
        match result {
            Ok(Some(value)) => Exit::Returned(value),
            Ok(None) => Exit::Unwound,
            Err(panic) if unwind::is_caught_forced_unwind(&panic) => Exit::Unwound,
            Err(panic) => Exit::Panicked(panic),
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
            context: usize,
            /// The context before the first resume, to answer `started`,
            /// with `CLOSURE_NEEDS_DROP` set if its closure has something
            /// to drop (contexts are even: the bit is free).
            fresh_context: usize,
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
            let fiber = CoroutineFiber::for_stack(|| (stack.limit(), stack.base()));
            stack::attach_os_state(&stack);
            let usable_limit = stack.usable_limit();
            let state = StackState::of(stack.base());
            state.set_bounds(usable_limit.get(), stack.base().get());
            // A closure with nothing to drop costs nothing here.
            if mem::needs_drop::<F>() {
                state.drop_closure.set(Some(drop_closure_in_place::<F>));
            }
            let data = move_to_stack_top(stack.base(), usable_limit, func);
            let entry: EntryFn = coroutine_entry::<Input, Yield, Return, F>;
            let context = arch::init_stack(stack.base(), data, entry, data as *mut u8);
            arch::set_shadow_stack(stack.base(), context, shadow);
            let context = context.get();
            Coroutine {
                fiber,
                stack: ManuallyDrop::new(stack),
                context,
                fresh_context: context | (mem::needs_drop::<F>() as usize * CLOSURE_NEEDS_DROP),
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
        if self.context <= RUNNING {
            self.not_resumable();
        }
        let mut input = ManuallyDrop::new(val);
        // SAFETY: the coroutine is suspended (checked above) and takes the
        // input before the switch returns; the word it sends back is its
        // yielded value, or what its exit sent, owned by us from now on.
        unsafe {
            let (word, next) = self.switch(transfer::send(&mut input));
            if next > LAST_END {
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
    unsafe fn exit_of(&mut self, end: usize, word: Word) -> Exit<Return> {
        if end == END_RETURNED {
            // SAFETY: a returning coroutine sends its value (`exit_with`).
            Exit::Returned(unsafe { transfer::receive(word) })
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.exit_of_other(end, word) }
        }
    }

    /// [`exit_of`](Self::exit_of) for the ends that are not returns, which
    /// also leave `context` to be set.
    ///
    /// # Safety
    /// As for `exit_of`.
    #[cold]
    // Where panics are not caught, `CaughtPanic` is uninhabited and the
    // `END_PANICKED` branch is dead.
    #[allow(unreachable_code)]
    unsafe fn exit_of_other(&mut self, end: usize, word: Word) -> Exit<Return> {
        self.context = DONE;
        if end == END_PANICKED {
            // SAFETY: `exit_with` sends the panic with this end.
            Exit::Panicked(unsafe { transfer::receive(word) })
        } else {
            Exit::Unwound
        }
    }

    /// Switches into the coroutine with `arg`. Returns the word it sent
    /// back and, with `context` set to it, its new context if it suspended,
    /// else its exit's `end` (at most `LAST_END`), which leaves `context`
    /// for [`exit_of`](Self::exit_of) to set.
    ///
    /// # Safety
    /// The coroutine must be suspended (or fresh).
    #[inline(always)]
    unsafe fn switch(&mut self, arg: Word) -> (Word, usize) {
        // Under `asm-unwind` a panic can leave `arch::resume` itself; the
        // coroutine is then finished. (Elsewhere this guard compiles away.)
        struct FinishOnUnwind<'a>(&'a mut usize);
        impl Drop for FinishOnUnwind<'_> {
            fn drop(&mut self) {
                *self.0 = DONE;
            }
        }

        let base = self.stack.base();
        // SAFETY: forwarded from the caller: `context` is a saved context
        // of the coroutine on this stack.
        let sp = unsafe { StackPointer::new_unchecked(self.context) };
        // Safe code cannot reach a running coroutine through `self`, so
        // the compiler would drop a plain store here (it is overwritten
        // after the switch, and the asm is not given `self`). But the
        // thread-local destructors run by `std::process::exit` inside the
        // coroutine can drop it through the thread-local, and must see it
        // running: a volatile store is kept, and costs one store.
        // SAFETY: a valid, aligned place of ours.
        unsafe { ptr::write_volatile(&mut self.context, RUNNING) };
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
        self.context = next;
        (arg, next)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn not_resumable(&self) -> ! {
        if self.context == DONE {
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
        self.context != self.fresh_context & !CLOSURE_NEEDS_DROP
    }

    /// Whether the coroutine has completed: it returned, panicked, was
    /// unwound or reset, and cannot be resumed again. See
    /// [`started`](Self::started) for an example.
    pub fn done(&self) -> bool {
        self.context == DONE
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
            self.context != RUNNING,
            "attempted to reset a running coroutine"
        );
        self.context = DONE;
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
        if self.context != DONE {
            self.force_unwind_slow();
        }
    }

    /// [`force_unwind`](Self::force_unwind) of a coroutine that has not
    /// completed.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn force_unwind_slow(&mut self) {
        if self.context == RUNNING {
            panic!("attempted to unwind a running coroutine");
        }
        if !self.started() {
            self.context = DONE;
            if self.fresh_context & CLOSURE_NEEDS_DROP != 0 {
                // SAFETY: the coroutine never ran, so its closure is still
                // in place at the top of its stack, and its state holds the
                // function that drops it (a `DropClosureFn`, written at
                // creation, as the bit says); now that it is marked done
                // nothing else will take or drop the closure.
                unsafe {
                    let base = self.stack.base();
                    if let Some(drop_closure) = StackState::of(base).drop_closure.get() {
                        drop_closure(base);
                    }
                }
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
                    Some((word, next)) if next <= LAST_END => match self.exit_of(next, word) {
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
            self.context == DONE,
            "cannot extract stack from an incomplete coroutine"
        );
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the stack is moved out once;
        // the coroutine on it is done, so its header holds its last OS state.
        unsafe {
            let mut stack = ManuallyDrop::take(&mut this.stack);
            sanitizer::release(&mut this.fiber, || (stack.limit(), stack.base()));
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
        if self.context != DONE && !self.finish_before_drop() {
            return;
        }
        // SAFETY: nothing is live on the stack any more (so its header holds
        // the last OS state), and it is dropped once.
        unsafe {
            sanitizer::release(&mut self.fiber, || (self.stack.limit(), self.stack.base()));
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
        if self.context == RUNNING {
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

/// Drops, in place, the closure `with_stack_unchecked` moved to the top of
/// the stack whose base is `base`: the `drop_closure` of an `F` coroutine.
///
/// # Safety
/// That closure must be there, never taken nor dropped, and not be used
/// again.
unsafe fn drop_closure_in_place<F>(base: StackPointer) {
    // SAFETY: forwarded from the caller; `closure_addr` is where
    // `move_to_stack_top` put it.
    unsafe { ptr::drop_in_place(closure_addr::<F>(base) as *mut F) }
}

/// The generic part of a coroutine stack's header, just below the arch
/// header, where a [`Yielder`] finds it from its own address (no
/// thread-local, nothing added to the switch).
#[repr(C)]
struct StackState {
    /// Lowest usable address of the stack the coroutine is running on
    /// (`Stack::usable_limit`: above its guard pages); changed by
    /// [`Yielder::maybe_grow`] while it runs on another segment.
    limit: Cell<usize>,
    /// Highest address of that stack. It is aligned (`Stack::base`), so its
    /// bit 0 is free: set (`UNWIND_REQUEST`), it is the parent's request
    /// that the coroutine unwind itself, sent with a resume that carries no
    /// value and taken by the coroutine before any of its code runs. So the
    /// request costs a creation nothing, and a resume just the test.
    top: Cell<usize>,
    /// Until the coroutine starts, if its closure needs dropping: a
    /// `DropClosureFn` that drops it in place (kept here rather than in the
    /// `Coroutine`, which stays small and cheap to move). Unused otherwise.
    /// Kept as a function pointer, never as an integer: one rebuilt from an
    /// integer has no provenance, and calling it is undefined behaviour.
    drop_closure: Cell<Option<DropClosureFn>>,
}

/// Drops the closure of a coroutine that never started, in place on its
/// stack (whose base it is given), running on the caller's stack.
type DropClosureFn = unsafe fn(StackPointer);

/// The bit of `StackState::top` that asks the coroutine to unwind.
const UNWIND_REQUEST: usize = 1;

/// Bytes the generic code reserves below the arch header: the state.
const STATE_SIZE: usize = mem::size_of::<StackState>().next_multiple_of(STACK_ALIGNMENT);

impl StackState {
    /// The state slot of the coroutine stack whose base is `base`.
    ///
    /// # Safety
    /// `base` must be the base of a coroutine stack (created or being
    /// created), which outlives the returned reference.
    #[inline(always)]
    unsafe fn of<'a>(base: StackPointer) -> &'a StackState {
        let addr = base.get() - arch::STACK_HEADER_SIZE - STATE_SIZE;
        // SAFETY: forwarded from the caller; every stack has MIN_STACK_SIZE
        // bytes, far more than the header and the state, and the slot is
        // aligned (the header size is a multiple of STACK_ALIGNMENT).
        unsafe { &*(addr as *const StackState) }
    }

    /// Sets the bounds of the stack the coroutine runs on (`top` aligned),
    /// with no request to unwind.
    #[inline(always)]
    fn set_bounds(&self, limit: usize, top: usize) {
        self.limit.set(limit);
        self.top.set(top);
    }

    /// Parent side: asks the coroutine to unwind itself when next resumed.
    #[inline(always)]
    fn request_unwind(&self) {
        self.top.set(self.top.get() | UNWIND_REQUEST);
    }

    /// Coroutine side of a resume: whether the parent asks it to unwind.
    /// (Whoever acts on a request clears it from a cold function of its own,
    /// so that this stays a single test of memory on the hot path.)
    #[inline(always)]
    fn unwind_requested(&self) -> bool {
        self.top.get() & UNWIND_REQUEST != 0
    }

    #[inline(always)]
    fn clear_unwind_request(&self) {
        self.top.set(self.top.get() & !UNWIND_REQUEST);
    }
}

/// Leaves a coroutine for the last time, telling its parent how its
/// function ended: the end in place of a context, with the returned value or
/// the panic in the word.
///
/// # Safety
/// `link` must be the running coroutine's, whose stack holds nothing live
/// but this frame.
#[inline(always)]
unsafe fn exit_with<Return>(result: Result<Option<Return>, CaughtPanic>, link: *mut usize) -> ! {
    // The values sent stay in these slots, alive to the end of this frame,
    // which is never left (the parent takes them before it can free or
    // reuse the stack).
    let mut returned: ManuallyDrop<Return>;
    let mut panicked: ManuallyDrop<CaughtPanic>;
    let (word, end) = match Exit::from_root(result) {
        Exit::Returned(value) => {
            returned = ManuallyDrop::new(value);
            // SAFETY: given up and kept in place, as above.
            (unsafe { transfer::send(&mut returned) }, END_RETURNED)
        }
        Exit::Panicked(panic) => {
            panicked = ManuallyDrop::new(panic);
            // SAFETY: as above.
            (unsafe { transfer::send(&mut panicked) }, END_PANICKED)
        }
        Exit::Unwound => (Word::uninit(), END_UNWOUND),
    };
    // SAFETY: forwarded from the caller; the final switch follows.
    unsafe {
        sanitizer::exiting();
        arch::exit(word, link, end)
    }
}

/// Where [`move_to_stack_top`] puts a `T` on the stack whose base is `base`:
/// just below the arch header and the stack state, aligned to at least
/// `STACK_ALIGNMENT`.
#[inline(always)]
fn closure_addr<T>(base: StackPointer) -> usize {
    let top = base.get() - arch::STACK_HEADER_SIZE - STATE_SIZE;
    let align = mem::align_of::<T>().max(STACK_ALIGNMENT);
    top.wrapping_sub(mem::size_of::<T>()) & !(align - 1)
}

/// A closure (or trap handler closure) whose header, two copies and
/// alignment take at most this much is small: every stack accepts it, as
/// it leaves most of the `MIN_STACK_SIZE` that every stack has.
const SMALL_CLOSURE: usize = stack::MIN_STACK_SIZE / 4;

/// The room a stack must keep for frames below a large closure and the copy
/// of it that is called: `MIN_STACK_SIZE`, as much as a small closure has
/// on the smallest stack.
pub(crate) const ROOM_BELOW_CLOSURE: usize = stack::MIN_STACK_SIZE;

/// Moves `value` to the top of a stack ([`closure_addr`]) and returns its
/// address.
///
/// # Panics
/// If the value is not small ([`SMALL_CLOSURE`]) and would leave less than
/// room for a copy of it (a closure is moved once more, into the frame that
/// calls it) and [`ROOM_BELOW_CLOSURE`] bytes between the value and
/// `usable_limit`.
///
/// # Safety
/// Nothing may be running on the stack; `usable_limit` must be its
/// [`Stack::usable_limit`](stack::Stack::usable_limit), at least
/// `MIN_STACK_SIZE` below `base`.
pub(crate) unsafe fn move_to_stack_top<T>(
    base: StackPointer,
    usable_limit: StackPointer,
    value: T,
) -> usize {
    // Known at compile time: no test at run time for the usual closure.
    let always_fits = arch::STACK_HEADER_SIZE
        + STATE_SIZE
        + 2 * mem::size_of::<T>()
        + mem::align_of::<T>().max(STACK_ALIGNMENT)
        <= SMALL_CLOSURE;
    let fits = always_fits || {
        let top = base.get() - arch::STACK_HEADER_SIZE - STATE_SIZE;
        let align = mem::align_of::<T>().max(STACK_ALIGNMENT);
        top.checked_sub(mem::size_of::<T>())
            .and_then(|addr| (addr & !(align - 1)).checked_sub(usable_limit.get()))
            .and_then(|below| below.checked_sub(mem::size_of::<T>()))
            >= Some(ROOM_BELOW_CLOSURE)
    };
    if !fits {
        closure_too_large(mem::size_of::<T>(), base.get() - usable_limit.get());
    }
    let addr = closure_addr::<T>(base);
    if !always_fits {
        // Memcheck takes what the last frames on a reused stack left for
        // dead stack; a large closure is written there from outside, and the
        // frame that copies it in begins there too. The stack is the new
        // coroutine's from its usable limit up. (Nothing outside Valgrind.)
        stack::valgrind::make_mem_undefined(usable_limit.get(), base.get() - usable_limit.get());
    }
    // SAFETY: `addr` is aligned and within the stack's usable part (above
    // `usable_limit`), with nothing running on it (caller); the OS is made
    // to provide it first.
    unsafe {
        stack::make_writable(base, addr);
        ptr::write(addr as *mut T, value)
    };
    addr
}

#[cold]
#[inline(never)]
fn closure_too_large(size: usize, usable: usize) -> ! {
    panic!(
        "closure is too large for the coroutine's stack: {size} bytes on a stack with \
         {usable} usable bytes, which must also hold a copy of it and {ROOM_BELOW_CLOSURE} \
         bytes more"
    )
}

/// The handle through which a coroutine suspends itself. It is the coroutine
/// stack's link word, and so only ever exists as a reference into that stack.
#[repr(transparent)]
pub struct Yielder<Input, Yield> {
    link: Cell<usize>,
    marker: PhantomData<fn(Yield) -> Input>,
}

impl<Input, Yield> Yielder<Input, Yield> {
    /// Suspends the coroutine, handing `val` to the [`Coroutine::resume`]
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
        let bounds = self.state();
        let (limit, top) = (bounds.limit.get(), bounds.top.get());
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
        let bounds = self.state();
        let _restore = Restore(bounds, bounds.limit.get(), bounds.top.get());
        bounds.set_bounds(
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
        // SAFETY: the link holds the parent's stack pointer while we run.
        let top = unsafe { arch::parent_stack_top(self.link.get()) };
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

/// Runs `f` on `stack` and returns its result; the stack is only borrowed
/// for the call. Backtraces taken inside `f` continue into the caller, and a
/// panic in `f` continues from here.
///
/// ```
/// use stackswitch::on_stack;
/// use stackswitch::stack::DefaultStack;
///
/// // Unoptimised frames are large on some CPUs (s390x): give it room.
/// let mut stack = DefaultStack::new(1024 * 1024).unwrap();
/// let depth = on_stack(&mut stack, || {
///     fn recurse(n: u32) -> u32 { if n == 0 { 0 } else { 1 + recurse(n - 1) } }
///     recurse(1000)
/// });
/// assert_eq!(depth, 1000);
/// ```
pub fn on_stack<F, R>(mut stack: impl stack::Stack, f: F) -> R
where
    F: FnOnce() -> R,
{
    // On a thread with a shadow stack that the switch follows, `f` runs on
    // the stack's own if it has one (else on the current one, which works
    // too, within its room).
    let shadow = if arch::FOLLOWS_SHADOW_STACK && arch::shadow_stack_active() {
        stack.shadow_stack().map_or(0, |top| top.get())
    } else {
        0
    };
    // SAFETY: the stack is ours for the duration of the call and its base is
    // aligned by contract; so is its shadow stack.
    unsafe {
        unwind::prepare_unwinder_for(stack.base().get() - stack.usable_limit().get());
        let bounds = sanitizer::StackBounds::new(stack.limit(), stack.base());
        let call = stack::StackCall::new(&mut stack);
        call_on_stack_top(call.top(), bounds, f, shadow)
    }
}

/// # Safety
/// The memory below `top` must be free stack for the duration of the call,
/// within the stack `bounds`.
unsafe fn call_on_stack_top<F, R>(
    top: StackPointer,
    bounds: sanitizer::StackBounds,
    f: F,
    shadow: usize,
) -> R
where
    F: FnOnce() -> R,
{
    union Slot<F, R> {
        func: ManuallyDrop<F>,
        result: ManuallyDrop<Result<R, CaughtPanic>>,
    }

    root_fn! {
        unsafe fn run_slot<F, R>(data: *mut u8)
        where
            F: FnOnce() -> R,
        {
            // SAFETY: `data` is the Slot below, holding `func` until now.
            unsafe {
                let caller = sanitizer::stack_call_entered();
                let slot = &mut *(data as *mut Slot<F, R>);
                let func = ManuallyDrop::take(&mut slot.func);
                slot.result = ManuallyDrop::new(unwind::catch_at_root(func));
                sanitizer::stack_call_leaving(caller);
            }
        }
    }

    let mut slot = Slot {
        func: ManuallyDrop::new(f),
    };
    let run: StackCallFn = run_slot::<F, R>;
    // SAFETY: `run_slot` replaces `func` with `result` before returning; the
    // sanitizer hooks bracket the switches.
    unsafe {
        let token = sanitizer::calling_on_stack(bounds);
        arch::call_on_stack(&mut slot as *mut Slot<F, R> as *mut u8, top, run, shadow);
        sanitizer::stack_call_returned(token);
        unwind::rethrow(ManuallyDrop::into_inner(slot.result))
    }
}

root_fn! {
    /// Root of a trapped coroutine, entered through `TrapHandlerRegs`: runs
    /// the handler's closure and finishes the coroutine with its value.
    pub(crate) unsafe fn trap_entry<F, Return>(data: *mut u8, link: *mut usize) -> !
    where
        F: FnOnce() -> Return,
    {
        // SAFETY: `setup_trap_handler` moved an F to `data`; the link is the
        // trapped coroutine's, whose parent is still blocked in `resume`.
        unsafe {
            sanitizer::trapped(data as usize);
            let result = unwind::catch_at_root(|| Some(ptr::read(data as *mut F)()));
            exit_with(result, link)
        }
    }
}

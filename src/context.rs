//! The word a [`Coroutine`](crate::Coroutine) keeps about where its
//! coroutine is: a saved context, or a state.
//!
//! A saved context is the stack pointer at which the switch saved a
//! suspended (or fresh) coroutine: a stack address, so never a small number.
//! The small numbers are free to say what is not a context:
//!
//! | value | meaning |
//! |---|---|
//! | 0 | [`DONE`](Context::DONE): returned, panicked, unwound or reset; also the end of a coroutine that returned |
//! | 1 | [`RUNNING`](Context::RUNNING) |
//! | 2 | [`PANICKED`](Context::PANICKED): the end of a coroutine whose function panicked |
//! | 3 | [`UNWOUND`](Context::UNWOUND): the end of a coroutine unwound on request |
//! | larger | a saved context |
//!
//! An *end* is what a coroutine's last switch hands its parent in place of
//! a context (`arch::exit`); it says how the function ended, so the word
//! that comes with it needs no tag. A return ends in `DONE`, the state it
//! leaves, so the common end costs nothing more. The other ends are held
//! only until the parent has read them, and replaced by `DONE`.
//!
//! So both tests on the hot path (may it be resumed? did it suspend?) are
//! one comparison: [`is_saved`](Context::is_saved).

use crate::abi::StackPointer;

/// See the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub(crate) struct Context(usize);

impl Context {
    /// Completed; also the end of a coroutine that returned.
    pub(crate) const DONE: Context = Context(0);
    /// The end of a coroutine that returned: it leaves the coroutine done.
    pub(crate) const RETURNED: Context = Context::DONE;
    /// Running: resumed and not back yet.
    pub(crate) const RUNNING: Context = Context(1);
    /// The end of a coroutine whose function panicked (the word carries
    /// the caught panic).
    pub(crate) const PANICKED: Context = Context(2);
    /// The end of a coroutine unwound on request.
    pub(crate) const UNWOUND: Context = Context(3);
    /// The largest value that is not a saved context.
    const LAST_STATE: usize = 3;

    /// A context saved at `sp`.
    #[inline(always)]
    pub(crate) fn saved(sp: StackPointer) -> Context {
        debug_assert!(sp.get() > Self::LAST_STATE);
        Context(sp.get())
    }

    /// What a switch returned in place of a stack pointer: a saved context
    /// or an end.
    #[inline(always)]
    pub(crate) fn from_switch(raw: usize) -> Context {
        Context(raw)
    }

    /// The word an exit hands the switch (an end).
    #[inline(always)]
    pub(crate) fn to_switch(self) -> usize {
        self.0
    }

    /// Whether this is a saved context: the coroutine is suspended (or
    /// fresh) and may be resumed. After a switch: whether it suspended,
    /// rather than ended.
    #[inline(always)]
    pub(crate) fn is_saved(self) -> bool {
        self.0 > Self::LAST_STATE
    }

    /// The stack pointer of a saved context.
    ///
    /// # Safety
    /// This must be a saved context ([`is_saved`](Self::is_saved)).
    #[inline(always)]
    pub(crate) unsafe fn stack_pointer(self) -> StackPointer {
        // SAFETY: forwarded to the caller: a saved context is a stack
        // address, never zero.
        unsafe { StackPointer::new_unchecked(self.0) }
    }
}

/// A coroutine's first context, and whether its closure has something to
/// drop if it never starts. Contexts are aligned, so bit 0 is free for the
/// flag: the pair costs a `Coroutine` one word.
#[derive(Clone, Copy)]
pub(crate) struct FreshContext(usize);

impl FreshContext {
    const CLOSURE_NEEDS_DROP: usize = 1;

    #[inline(always)]
    pub(crate) fn new(context: Context, closure_needs_drop: bool) -> FreshContext {
        debug_assert!(context.0 & Self::CLOSURE_NEEDS_DROP == 0);
        FreshContext(context.0 | (closure_needs_drop as usize * Self::CLOSURE_NEEDS_DROP))
    }

    /// The context the coroutine had before its first resume.
    #[inline(always)]
    pub(crate) fn context(self) -> Context {
        Context(self.0 & !Self::CLOSURE_NEEDS_DROP)
    }

    /// Whether the closure needs dropping (if the coroutine never starts).
    #[inline(always)]
    pub(crate) fn closure_needs_drop(self) -> bool {
        self.0 & Self::CLOSURE_NEEDS_DROP != 0
    }
}

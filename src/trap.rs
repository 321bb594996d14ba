//! Recovering from traps (faults) inside a coroutine.
//!
//! A signal handler (Unix) or vectored exception handler (Windows) that
//! catches a fault, such as a stack overflow into the guard page or a read
//! of a bad address, can check that the fault happened on a coroutine's
//! stack and rewrite the interrupted context so that, when the handler
//! returns, the coroutine discards its stack, runs a recovery closure and
//! returns that closure's value to whoever resumed it.
//!
//! This is what WebAssembly runtimes do to turn guest stack overflows into
//! traps. It is `unsafe` and has strict rules: see
//! [`CoroutineTrapHandler::setup_trap_handler`].
//!
//! Under Miri none of this is available (no signals, no guard pages):
//! `setup_trap_handler` panics, [`TrapHandlerRegs`] has no registers, and
//! `install_overflow_reporter` returns an `Unsupported` error.

use core::marker::PhantomData;
use core::ptr;

#[cfg(all(unix, feature = "default-stack", not(miri)))]
pub use crate::overflow::install_overflow_reporter;

/// Under Miri there are no guard pages to fault in, and no signals: the
/// overflow reporter is unavailable, and this fails with
/// [`ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported).
#[cfg(all(unix, feature = "default-stack", miri))]
pub fn install_overflow_reporter() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the overflow reporter is unavailable under Miri",
    ))
}

use crate::abi::StackPointer;
use crate::abi::TrapEntryFn;
use crate::arch;
pub use crate::arch::TrapHandlerRegs;
use crate::exit::exit_with;
use crate::header::move_to_stack_top;
use crate::sanitizer;
use crate::stack::STACK_ALIGNMENT;
use crate::unwind::{self, root_fn};

/// The bounds of one coroutine's stack, for a trap handler. Obtained from
/// [`Coroutine::trap_handler`](crate::Coroutine::trap_handler).
///
/// It holds no lifetime so that it can be stored where a signal handler
/// finds it (a thread-local, say); it must not be used after the coroutine
/// is dropped.
pub struct CoroutineTrapHandler<Return> {
    base: StackPointer,
    /// Guard pages included, for `stack_ptr_in_bounds`.
    limit: StackPointer,
    /// Where the room a handler's closure must leave ends.
    usable_limit: StackPointer,
    marker: PhantomData<fn(Return)>,
}

impl<Return> Clone for CoroutineTrapHandler<Return> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Return> Copy for CoroutineTrapHandler<Return> {}

impl<Return> CoroutineTrapHandler<Return> {
    pub(crate) fn new(base: StackPointer, limit: StackPointer, usable_limit: StackPointer) -> Self {
        CoroutineTrapHandler {
            base,
            limit,
            usable_limit,
            marker: PhantomData,
        }
    }

    /// Whether a stack pointer taken from a trap context lies within the
    /// coroutine's stack, guard pages included (so a stack overflow counts).
    /// Meaningful only while the coroutine exists.
    pub fn stack_ptr_in_bounds(&self, stack_ptr: usize) -> bool {
        stack_ptr >= self.limit.get() && stack_ptr < self.base.get()
    }

    /// Redirects a trapped coroutine: once the trap handler has written the
    /// returned registers into the interrupted context and returned, the
    /// coroutine's stack is discarded, `f` runs on a fresh stack top, and the
    /// coroutine completes with `f`'s value as its
    /// [`CoroutineResult::Return`](crate::CoroutineResult::Return).
    ///
    /// A panic in `f` continues from the parent's `resume`.
    ///
    /// # Safety
    ///
    /// - The coroutine must be the one that trapped, currently running on
    ///   this thread: the trap context's stack pointer must pass
    ///   [`stack_ptr_in_bounds`](Self::stack_ptr_in_bounds).
    /// - Nothing on the coroutine's stack is dropped: the code that trapped
    ///   must not have owned anything whose destructor matters (in practice:
    ///   JIT-compiled or otherwise self-contained code that interacts with
    ///   its environment only by suspending).
    /// - The handler must write every field of the returned
    ///   [`TrapHandlerRegs`] into the interrupted context before returning.
    pub unsafe fn setup_trap_handler<F>(&self, f: F) -> TrapHandlerRegs
    where
        F: FnOnce() -> Return + 'static,
    {
        // SAFETY: the coroutine trapped, so its frames are being discarded and
        // its stack top is free for `f`; the link still names its parent.
        unsafe {
            let data = move_to_stack_top(self.base, self.usable_limit, f);
            let entry: TrapEntryFn = trap_entry::<F, Return>;
            debug_assert_eq!(data % STACK_ALIGNMENT, 0);
            arch::trap_regs(self.base, data, entry, data as *mut u8)
        }
    }
}

root_fn! {
    /// Root of a trapped coroutine, entered through `TrapHandlerRegs`: runs
    /// the handler's closure and finishes the coroutine with its value.
    unsafe fn trap_entry<F, Return>(data: *mut u8, link: *mut usize) -> !
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

//! Under Miri, which runs no inline asm: every coroutine runs on an OS
//! thread of its own, and a switch hands control to the other side and
//! blocks until it comes back.
//!
//! Exactly one side runs at a time. Each hand-off goes through a mutex and
//! a condition variable, so Miri's data-race detector sees every switch as
//! the synchronisation it is: whatever one side wrote before switching
//! happens before whatever the other side reads after it.
//!
//! What the generic code sees is unchanged. The stack (plain allocator
//! memory under Miri) still holds the closure, the `StackState` and the
//! link; only the frames live elsewhere, on the coroutine's thread:
//!
//! - a *fresh* context is an address on the coroutine's stack, 16 below the
//!   closure, where `init_stack` stored the entry function and its data;
//! - the first `resume` makes the coroutine's [`Fiber`] (the hand-off
//!   state, shared by both sides), stores its address in the link word and
//!   spawns the thread, which calls `entry(arg, link, data)`;
//! - a *suspended* context is the fiber's address with bit 0 set (a fresh
//!   one is aligned), so that `started` still sees it change;
//! - `exit` hands the last word over and waits until the parent has taken
//!   it (a value too large for the word stays in the exiting frame), then
//!   ends the thread by unwinding it with a payload of its own, through
//!   frames that hold nothing to drop (root functions are `"C-unwind"`
//!   under Miri for this reason). The parent lets it go, and joins it, at
//!   its next switch or when its own thread ends, whichever comes first.
//!
//! A coroutine that is never resumed never gets a thread; its thread is
//! named after the thread that first resumed it. One that is
//! `force_reset` while suspended keeps its thread blocked for ever, since
//! its frames may neither run nor be unwound: like the values it holds,
//! the thread is leaked, and Miri reports the leak at exit (as it reports
//! every other leak).
//!
//! The stack pointer is *virtual*: a thread-local that holds, on a
//! coroutine's thread, the fresh context below its closure, and inside
//! `call_on_stack` a word below the top it was given. So
//! `Yielder::remaining_stack` reports the whole stack as free (frames never
//! use it), is 0 off the coroutine's stacks as natively, and `maybe_grow`
//! grows only when asked for more than a whole stack.
//!
//! There are no traps under Miri (no signals, no guard pages):
//! `trap_regs` panics.

use core::cell::Cell;
use core::ptr;
use std::boxed::Box;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// The stack holds only the closure and the generic state: no frames.
pub(super) const MIN_STACK_SIZE: usize = 4096;
/// Offset of the link word below the stack base. While the coroutine is
/// started, the link holds the address of its [`Fiber`].
pub(super) const LINK: usize = 16;

trap_handler_regs! {
    /// Under Miri there are no traps to redirect: this type has no
    /// registers, and `setup_trap_handler` panics.
    pub struct TrapHandlerRegs {
        _private: (),
    }
}

/// Bit 0 of a suspended context (a fiber's address, which is aligned).
const SUSPENDED_TAG: usize = 1;
/// `Handoff::end` while the coroutine is suspended rather than finished.
const SUSPENDED: usize = usize::MAX;
/// The virtual stack pointer of a thread that runs on no coroutine stack:
/// above every stack, so that no bounds contain it.
const NO_STACK: usize = !(STACK_ALIGNMENT - 1);

/// Who may run: the hand-off token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Turn {
    Parent,
    Coroutine,
    /// The coroutine has exited and the parent has taken its last word:
    /// its thread may end.
    Released,
}

struct Handoff {
    turn: Turn,
    /// The word the last switch carried.
    word: Word,
    /// `SUSPENDED`, or the `end` the coroutine exited with.
    end: usize,
    /// The parent's virtual stack pointer while it is blocked in `resume`.
    parent_sp: usize,
}

/// What both sides of one coroutine share.
struct Fiber {
    handoff: Mutex<Handoff>,
    turn_changed: Condvar,
    /// The coroutine's thread, joined when it is released.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Fiber {
    fn lock(&self) -> MutexGuard<'_, Handoff> {
        // Neither side panics while holding the lock.
        self.handoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the turn (`to`) to the other side with `word` and `end`, and
    /// waits until it is no longer theirs. Returns the guard.
    fn hand_over(&self, word: Word, end: usize, to: Turn) -> MutexGuard<'_, Handoff> {
        let mut state = self.lock();
        state.word = word;
        state.end = end;
        state.turn = to;
        self.turn_changed.notify_one();
        self.wait_while(state, to)
    }

    fn wait_while<'a>(
        &'a self,
        mut state: MutexGuard<'a, Handoff>,
        turn: Turn,
    ) -> MutexGuard<'a, Handoff> {
        while state.turn == turn {
            state = self
                .turn_changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state
    }
}

/// The payload that ends a coroutine's thread once it has exited.
struct ThreadExit;

/// A finished coroutine whose thread waits for its parent to take the last
/// word; dropping it lets the thread end and joins it.
struct Exited(Arc<Fiber>);

impl Drop for Exited {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.turn = Turn::Released;
            self.0.turn_changed.notify_one();
        }
        let handle = self.0.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            // The thread catches its own unwind, so it cannot fail.
            let _ = handle.join();
        }
    }
}

std::thread_local! {
    /// The coroutine that last exited into this thread, until this thread
    /// switches again or ends (by then the word it sent has been taken).
    static EXITED: Cell<Option<Exited>> = const { Cell::new(None) };
    /// This thread's virtual stack pointer.
    static STACK_POINTER: Cell<usize> = const { Cell::new(NO_STACK) };
}

/// Lets the thread of the coroutine that last exited here end.
fn release_exited() {
    drop(EXITED.try_with(Cell::take).ok().flatten());
}

/// # Safety
/// `link` must be the link value of a started coroutine.
unsafe fn fiber_of<'a>(link: usize) -> &'a Fiber {
    // SAFETY: the link holds the address of the fiber that the parent's
    // side keeps alive while the coroutine is not finished.
    unsafe { &*(link as *const Fiber) }
}

/// Arguments of the entry call, sent to the new thread.
struct Start {
    entry: EntryFn,
    arg: Word,
    link: *mut usize,
    data: *mut u8,
    fresh: usize,
    fiber: Arc<Fiber>,
}

// SAFETY: the parent blocks until the coroutine switches back, so what the
// pointers reach is used by one thread at a time, each hand-off
// synchronised by the fiber's mutex.
unsafe impl Send for Start {}

fn run_coroutine(start: Start) {
    let _ = STACK_POINTER.try_with(|sp| sp.set(start.fresh));
    let Start {
        entry,
        arg,
        link,
        data,
        fiber,
        ..
    } = start;
    // SAFETY: `init_stack` and the first `resume` laid out the entry call.
    let result =
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| unsafe { entry(arg, link, data) }));
    let leaked_panic = match result {
        Ok(()) => true,
        Err(payload) => !payload.is::<ThreadExit>(),
    };
    if leaked_panic {
        // A panic left the coroutine's root: natively that aborts (the root
        // is `extern "C"`) or unwinds into the parent (`asm-unwind`, not
        // supported under Miri).
        crate::unwind::abort("a panic unwound out of a coroutine's root function");
    }
    drop(fiber);
}

/// # Safety
/// See [`super::init_stack`]; the fresh context takes 16 bytes below `sp`
/// (the entry function and its data, for the coroutine's thread).
#[inline]
pub(super) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    let fresh = sp - 16;
    // SAFETY: the caller guarantees those bytes, and the header, are ours;
    // 16 bytes hold a function pointer and a data pointer on every target.
    unsafe {
        ptr::write(fresh as *mut EntryFn, entry);
        ptr::write((fresh + 8) as *mut *mut u8, data);
        ptr::write((base.get() - LINK) as *mut usize, 0);
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    release_exited();
    let parent_sp = current_stack_pointer();
    let ctx = sp.get();
    let fresh = ctx & SUSPENDED_TAG == 0;
    let raw: *const Fiber = if fresh {
        // SAFETY: a fresh context, as `init_stack` wrote it.
        unsafe { start(arg, ctx, base, parent_sp) }
    } else {
        // A suspended context is the address of its fiber, whose share the
        // parent's side still owns.
        (ctx & !SUSPENDED_TAG) as *const Fiber
    };
    // SAFETY: as just said.
    let fiber = unsafe { &*raw };
    let state = if fresh {
        fiber.wait_while(fiber.lock(), Turn::Coroutine)
    } else {
        let mut state = fiber.lock();
        state.parent_sp = parent_sp;
        drop(state);
        fiber.hand_over(arg, SUSPENDED, Turn::Coroutine)
    };
    let (word, end) = (state.word, state.end);
    drop(state);
    if end == SUSPENDED {
        return (word, raw as usize | SUSPENDED_TAG);
    }
    // Finished: take back the parent's share of the fiber; the thread waits
    // in `exit` until the word has been taken (it may be an address in the
    // exiting frame), which is done by the time this thread switches again.
    // SAFETY: the share `start` gave up, taken once (the coroutine is done).
    let fiber = unsafe { Arc::from_raw(raw) };
    let mut exited = Some(Exited(fiber));
    let _ = EXITED.try_with(|slot| slot.set(exited.take()));
    // If this thread's thread-locals are already gone (it is ending), the
    // exited thread can never be released safely: it is leaked.
    core::mem::forget(exited);
    (word, end)
}

/// Starts a fresh coroutine on a new thread, with the turn its own.
///
/// # Safety
/// As for `resume`, with `ctx` fresh.
unsafe fn start(arg: Word, ctx: usize, base: StackPointer, parent_sp: usize) -> *const Fiber {
    // SAFETY: `init_stack` wrote these words.
    let (entry, data) = unsafe {
        (
            ptr::read(ctx as *const EntryFn),
            ptr::read((ctx + 8) as *const *mut u8),
        )
    };
    let fiber = Arc::new(Fiber {
        handoff: Mutex::new(Handoff {
            turn: Turn::Coroutine,
            word: Word::uninit(),
            end: SUSPENDED,
            parent_sp,
        }),
        turn_changed: Condvar::new(),
        thread: Mutex::new(None),
    });
    // The parent's share, given up until the coroutine finishes.
    let raw = Arc::into_raw(Arc::clone(&fiber));
    let link = (base.get() - LINK) as *mut usize;
    // SAFETY: the link word lies in the stack's header, ours to write
    // while the coroutine does not run.
    unsafe { *link = raw as usize };
    let start = Start {
        entry,
        arg,
        link,
        data,
        fresh: ctx,
        fiber,
    };
    // Named after the thread that starts it, so that messages (panics,
    // Miri's reports) read as they would natively.
    let mut builder = thread::Builder::new();
    if let Some(name) = thread::current().name() {
        builder = builder.name(name.into());
    }
    let handle = builder
        .spawn(move || run_coroutine(start))
        .expect("failed to spawn a thread for a coroutine");
    // SAFETY: `raw` is kept alive by the parent's share.
    let fiber = unsafe { &*raw };
    *fiber.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    raw
}

/// # Safety
/// See [`super::suspend`].
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    release_exited();
    // SAFETY: the caller's contract; the coroutine is started.
    let fiber = unsafe { fiber_of(*link) };
    let state = fiber.hand_over(arg, SUSPENDED, Turn::Parent);
    state.word
}

/// # Safety
/// See [`super::exit`].
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    release_exited();
    // SAFETY: as for `suspend`.
    let fiber = unsafe { fiber_of(*link) };
    let state = fiber.hand_over(arg, end, Turn::Parent);
    debug_assert!(state.turn == Turn::Released);
    drop(state);
    // The frames between here and the thread's root hold nothing to drop.
    std::panic::resume_unwind(Box::new(ThreadExit))
}

/// The parent's virtual stack pointer while it is blocked in `resume`.
///
/// # Safety
/// See [`super::parent_stack_top`].
pub(super) unsafe fn parent_stack_top(link: usize) -> StackPointer {
    // SAFETY: the caller's contract.
    let parent_sp = unsafe { fiber_of(link) }.lock().parent_sp;
    // SAFETY: a virtual stack pointer is never zero.
    unsafe { StackPointer::new_unchecked(parent_sp) }
}

/// Calls `f(data)` on this thread, with the virtual stack pointer just
/// below `top` for the duration.
///
/// # Safety
/// See [`super::call_on_stack`].
pub(super) unsafe fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = STACK_POINTER.try_with(|sp| sp.set(self.0));
        }
    }
    let saved = STACK_POINTER
        .try_with(|sp| sp.replace(top - STACK_ALIGNMENT))
        .unwrap_or(NO_STACK);
    let _restore = Restore(saved);
    // SAFETY: forwarded from the caller.
    unsafe { f(data) }
}

/// The virtual stack pointer (see the module documentation).
#[inline]
pub(super) fn current_stack_pointer() -> usize {
    STACK_POINTER.try_with(Cell::get).unwrap_or(NO_STACK)
}

/// There are no traps under Miri.
///
/// # Safety
/// Never safe to call: it panics.
pub(super) unsafe fn trap_regs(
    _base: StackPointer,
    _sp: usize,
    _handler: TrapEntryFn,
    _data: *mut u8,
) -> TrapHandlerRegs {
    panic!("trap handling is unavailable under Miri (no signals, no guard pages)")
}

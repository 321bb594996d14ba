//! The sanitizer hooks with the `sanitizer` feature: which coroutine runs on
//! which stack, and what each sanitizer must be told when that changes. Each
//! sanitizer's own calls live in its module (`asan.rs`, `tsan.rs`), which
//! is empty unless the crate is built with that sanitizer
//! (`-Zsanitizer=address`, `-Zsanitizer=thread`).
//!
//! ASan's protocol (`sanitizer/common_interface_defs.h`): before a switch,
//! `__sanitizer_start_switch_fiber(&save, bottom, size)` names the stack
//! being switched to and parks the current fiber's fake stack in `save`
//! (a null `save` destroys it: the fiber will never run again); right after
//! the switch, on the new stack, `__sanitizer_finish_switch_fiber(saved,
//! &bottom_old, &size_old)` reinstates that stack's parked fake stack and
//! reports the bounds of the stack just left.
//!
//! TSan's: each coroutine is a fiber (`__tsan_create_fiber`), and
//! `__tsan_switch_to_fiber` is called just before every switch. Switching
//! synchronises the two fibers, as a coroutine's hand-over does.
//!
//! TSan keeps a shadow call stack per fiber: every instrumented function
//! pushes on entry and pops on return, on whichever fiber is current at the
//! time. So the function that calls `__tsan_switch_to_fiber` must be the one
//! that performs the stack switch (the arch's inlined `asm!`), and it must
//! not return in between: a hook that switched the fiber and then returned
//! to its caller would pop that return from the *other* fiber's shadow
//! stack (a fresh coroutine's fiber underflowed, and its first push
//! faulted). The hooks that end with the fiber switch (`resuming`,
//! `suspending`, `exiting`), and everything they call after it, are
//! therefore `#[inline(always)]`, which rustc honours at every opt-level,
//! and the switch is their last action.

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr;

use super::{asan, tsan};
use crate::abi::StackPointer;

/// The smallest stack a coroutine can run and be unwound on. Under a
/// sanitizer, instrumented frames are several times larger and the runtime
/// itself runs on the stack (ASan's `__asan_handle_no_return`, called before
/// every panic, overflowed 4 KiB; the test suite runs on 16 KiB).
pub(crate) const fn min_stack_size(arch_min: usize) -> usize {
    const SANITIZED_MIN: usize = 16 * 1024;
    if cfg!(any(sanitize = "address", sanitize = "thread")) && arch_min < SANITIZED_MIN {
        SANITIZED_MIN
    } else {
        arch_min
    }
}

/// A stack's bounds as ASan takes them: lowest address and size.
#[derive(Clone, Copy)]
pub(crate) struct StackBounds {
    pub(super) bottom: *const c_void,
    pub(super) size: usize,
}

impl StackBounds {
    pub(super) const UNKNOWN: StackBounds = StackBounds {
        bottom: ptr::null(),
        size: 0,
    };

    #[inline]
    pub(crate) fn new(limit: StackPointer, base: StackPointer) -> Self {
        StackBounds {
            bottom: limit.get() as *const c_void,
            size: base.get() - limit.get(),
        }
    }

    /// The stack of the parent of the running coroutine whose link is at
    /// `link`.
    ///
    /// # Safety
    /// Must run in that coroutine (or in one it resumed).
    #[inline]
    pub(crate) unsafe fn parent(link: *mut usize) -> Self {
        // SAFETY: forwarded to the caller.
        unsafe { (*owner_of(link).0).parent }
    }
}

/// Per-coroutine sanitizer state, kept in the `Coroutine` (which may move
/// while the coroutine is suspended). The coroutine reaches it through
/// `CURRENT` while it runs.
pub(crate) struct CoroutineFiber {
    /// The address of the coroutine's link (its `Yielder`), which names it.
    link: usize,
    /// The stack ASan last saw the coroutine run on (its own, unless it
    /// suspended from inside `on_stack` or from a nested coroutine).
    stack: StackBounds,
    /// The coroutine's fake stack while it is not running.
    fake_stack: *mut c_void,
    /// While the coroutine runs: its parent's stack and parked fake stack.
    parent: StackBounds,
    parent_fake_stack: *mut c_void,
    /// The coroutine's TSan fiber, and its parent's while it runs.
    tsan_fiber: *mut c_void,
    parent_tsan_fiber: *mut c_void,
    /// The TSan fiber to switch to on the next resume: the one that was
    /// running when the coroutine suspended.
    resume_tsan_fiber: *mut c_void,
    /// While the coroutine runs: the state that was `CURRENT` when it was
    /// resumed (its resumer's coroutine, or null).
    outer: *mut CoroutineFiber,
    /// While the coroutine is suspended from inside a nested coroutine (a
    /// coroutine it resumed, which called this one's `Yielder::suspend`):
    /// the innermost one, which continues when this one is resumed, and
    /// the one of the chain between them whose `outer` is this one. Null
    /// otherwise.
    innermost: *mut CoroutineFiber,
    relink: *mut CoroutineFiber,
}

impl CoroutineFiber {
    /// The state of a coroutine about to be set up on the stack `limit..base`.
    ///
    /// Clears the stack's ASan poison: a stack may be reused after the
    /// coroutine on it was forgotten rather than dropped (`mem::forget`, or
    /// a coroutine leaked inside the frames of one that was `force_reset`),
    /// and then its dead frames' redzones are still poisoned; a new
    /// coroutine's frames over them would be reported (or, where ASan
    /// cannot make sense of them, trip its `kCurrentStackFrameMagic` check).
    ///
    /// `bounds` gives the stack's `(limit, base)`.
    ///
    /// # Safety
    /// Nothing may run on the stack, which must be ours.
    #[inline]
    pub(crate) unsafe fn for_stack(bounds: impl FnOnce() -> (StackPointer, StackPointer)) -> Self {
        let (limit, base) = bounds();
        // SAFETY: forwarded to the caller: no live frame has poison there.
        unsafe { asan::unpoison(limit.get() as *const c_void, base.get() - limit.get()) };
        // SAFETY: creating a fiber has no preconditions.
        let tsan_fiber = unsafe { tsan::create_fiber() };
        CoroutineFiber {
            link: base.get() - crate::arch::LINK,
            stack: StackBounds::new(limit, base),
            fake_stack: ptr::null_mut(),
            parent: StackBounds::UNKNOWN,
            parent_fake_stack: ptr::null_mut(),
            tsan_fiber,
            parent_tsan_fiber: ptr::null_mut(),
            resume_tsan_fiber: tsan_fiber,
            outer: ptr::null_mut(),
            innermost: ptr::null_mut(),
            relink: ptr::null_mut(),
        }
    }
}

/// The state of the innermost coroutine running on this thread, if any.
/// Through `outer`, it chains every running coroutine, innermost first.
#[thread_local]
static CURRENT: Cell<*mut CoroutineFiber> = Cell::new(ptr::null_mut());

#[inline]
fn current() -> *mut CoroutineFiber {
    CURRENT.get()
}

/// The state of the running coroutine whose link is at `link`, and the
/// state before it in the chain of running coroutines (null if it is the
/// innermost). A `Yielder` may belong to an outer coroutine: a nested one
/// may suspend the coroutine that resumed it, and everything in between.
///
/// # Safety
/// The coroutine must be running (it or a coroutine it resumed is
/// executing), on this thread.
#[inline]
unsafe fn owner_of(link: *mut usize) -> (*mut CoroutineFiber, *mut CoroutineFiber) {
    let mut inner = ptr::null_mut();
    let mut fiber = current();
    // SAFETY: every state in the chain belongs to a running coroutine, so
    // it is in place (its `Coroutine` is borrowed by the `resume` that
    // runs it); the owner is among them (the caller's contract).
    unsafe {
        while (*fiber).link != link as usize {
            inner = fiber;
            fiber = (*fiber).outer;
        }
    }
    (fiber, inner)
}

/// What the parent keeps across a resume: the state of the coroutine it
/// resumes.
pub(crate) struct ResumeToken {
    fiber: *mut CoroutineFiber,
}

/// Parent side, just before switching into the coroutine that owns `fiber`.
///
/// Inlined, and the TSan fiber switch last: see the module documentation.
///
/// # Safety
/// The switch must follow, and `resumed_back` must be called right after it
/// returns; `fiber` must stay in place until then.
#[inline(always)]
pub(crate) unsafe fn resuming(fiber: &mut CoroutineFiber) -> ResumeToken {
    let this: *mut CoroutineFiber = fiber;
    fiber.outer = current();
    if fiber.innermost.is_null() {
        CURRENT.set(this);
    } else {
        // Suspended from a nested coroutine: that one continues, and its
        // chain leads back to this state, wherever it has moved.
        // SAFETY: the states of the chain, on the suspended stacks, stayed
        // in place (their coroutines are borrowed by the suspended
        // `resume`s).
        unsafe { (*fiber.relink).outer = this };
        CURRENT.set(fiber.innermost);
        fiber.innermost = ptr::null_mut();
        fiber.relink = ptr::null_mut();
    }
    // SAFETY: the switch into the coroutine follows.
    unsafe {
        asan::start_switch_fiber(&mut fiber.parent_fake_stack, fiber.stack);
        fiber.parent_tsan_fiber = tsan::current_fiber();
        tsan::deliver_deferred_signals();
        tsan::switch_to_fiber(fiber.resume_tsan_fiber);
    }
    ResumeToken { fiber: this }
}

/// Parent side, right after the coroutine switched back.
///
/// # Safety
/// `token` comes from the `resuming` of this switch.
#[inline]
pub(crate) unsafe fn resumed_back(token: ResumeToken) {
    // SAFETY: the fiber stayed in place (`resuming`'s contract), and the
    // coroutine's side started this switch.
    unsafe {
        let fiber = &mut *token.fiber;
        asan::finish_switch_fiber(fiber.parent_fake_stack, Some(&mut fiber.stack));
        CURRENT.set(fiber.outer);
    }
    tsan::deliver_deferred_signals();
}

/// Coroutine side, first thing in a coroutine's root function.
///
/// # Safety
/// Must be the first switch into this coroutine.
#[inline]
pub(crate) unsafe fn coroutine_entered() {
    // SAFETY: the parent set `CURRENT` and started the switch; a new
    // coroutine has no fake stack yet (ASan makes one when needed).
    unsafe {
        let fiber = &mut *current();
        asan::finish_switch_fiber(ptr::null_mut(), Some(&mut fiber.parent));
    }
    tsan::deliver_deferred_signals();
}

/// Coroutine side, just before suspending the coroutine whose link is at
/// `link`: the running one, or one that (indirectly) resumed it.
///
/// Inlined, and the TSan fiber switch last: see the module documentation.
///
/// # Safety
/// That coroutine must be running, and the switch to its parent must
/// follow, then `resumed_in_coroutine`.
#[inline(always)]
pub(crate) unsafe fn suspending(link: *mut usize) {
    // SAFETY: forwarded to the caller; the states in the chain are in
    // place while their coroutines run, and we switch next.
    unsafe {
        let (fiber, inner) = owner_of(link);
        let fiber = &mut *fiber;
        if !inner.is_null() {
            fiber.innermost = current();
            fiber.relink = inner;
        }
        asan::start_switch_fiber(&mut fiber.fake_stack, fiber.parent);
        fiber.resume_tsan_fiber = tsan::current_fiber();
        tsan::deliver_deferred_signals();
        tsan::switch_to_fiber(fiber.parent_tsan_fiber);
    }
}

/// Coroutine side, right after being resumed from `suspend`.
///
/// # Safety
/// Must follow the switch that `suspending(link)` started.
#[inline]
pub(crate) unsafe fn resumed_in_coroutine(link: *mut usize) {
    // SAFETY: whoever resumed us set `CURRENT` to the chain of running
    // states, which ends at the suspended coroutine's (in its new place),
    // and started the switch.
    unsafe {
        let fiber = &mut *owner_of(link).0;
        asan::finish_switch_fiber(fiber.fake_stack, Some(&mut fiber.parent));
    }
    tsan::deliver_deferred_signals();
}

/// Coroutine side, before the last switch out of the coroutine.
///
/// The fake stack is parked rather than destroyed: the value the coroutine
/// hands back may live on it, and the parent reads it after the switch.
/// `release` destroys it.
///
/// # Safety
/// The final switch to the parent must follow.
#[inline(always)]
pub(crate) unsafe fn exiting() {
    // SAFETY: the coroutine runs its root function, so it is the innermost
    // (any it resumed has returned or switched back), and we switch next.
    unsafe {
        let fiber = &mut *current();
        asan::start_switch_fiber(&mut fiber.fake_stack, fiber.parent);
        tsan::deliver_deferred_signals();
        tsan::switch_to_fiber(fiber.parent_tsan_fiber);
    }
}

/// Coroutine side, first thing in the root function of a trapped
/// coroutine. The frames below `top` were abandoned by the trap: their
/// poisoned redzones must not trip up the code that now runs over them.
///
/// # Safety
/// Must run on the trapped coroutine's stack, with nothing live below `top`
/// but the caller's own frames.
#[inline]
pub(crate) unsafe fn trapped(top: usize) {
    // SAFETY: the memory between the stack's bottom and `top` belongs to
    // the coroutine's stack; the caller's frame was poisoned correctly on
    // entry and clearing poison never causes a report.
    unsafe {
        let stack = (*current()).stack;
        let bottom = stack.bottom as usize;
        if bottom < top && top <= bottom + stack.size {
            asan::unpoison(stack.bottom, top - bottom);
        }
    }
}

/// What the caller keeps across a stack call: its parked fake stack.
pub(crate) struct StackCallToken {
    fake_stack: *mut c_void,
}

/// Caller side, just before a call on the stack `target`.
///
/// # Safety
/// The call must follow, and `stack_call_returned` right after.
#[inline]
pub(crate) unsafe fn calling_on_stack(target: StackBounds) -> StackCallToken {
    let mut token = StackCallToken {
        fake_stack: ptr::null_mut(),
    };
    // SAFETY: the switch to `target` follows.
    unsafe { asan::start_switch_fiber(&mut token.fake_stack, target) };
    token
}

/// Callee side, first thing on the new stack; returns the caller's stack.
///
/// # Safety
/// Must follow `calling_on_stack`.
#[inline]
pub(crate) unsafe fn stack_call_entered() -> StackBounds {
    let mut caller = StackBounds::UNKNOWN;
    // SAFETY: the caller started the switch. The call gets a fake stack of
    // its own when it needs one.
    unsafe { asan::finish_switch_fiber(ptr::null_mut(), Some(&mut caller)) };
    caller
}

/// Callee side, last thing before returning to `caller`.
///
/// The call's fake stack is destroyed here. That is sound because the
/// function calling this hook was entered mid-switch, when ASan gives out
/// no fake frames: its own locals, and with them everything it hands back,
/// are on the real stack.
///
/// # Safety
/// The return to the caller must follow, with no further calls.
#[inline]
pub(crate) unsafe fn stack_call_leaving(caller: StackBounds) {
    // SAFETY: see above.
    unsafe { asan::start_switch_fiber_for_good(caller) };
}

/// Caller side, right after the stack call returned.
///
/// # Safety
/// `token` comes from this call's `calling_on_stack`.
#[inline]
pub(crate) unsafe fn stack_call_returned(token: StackCallToken) {
    // SAFETY: the callee started the switch back.
    unsafe { asan::finish_switch_fiber(token.fake_stack, None) };
}

/// When a coroutine is done with its stack (before the stack is freed or
/// handed back for reuse): frees what the sanitizers keep for the coroutine
/// and clears the poison its abandoned frames left on the stack, which
/// would otherwise trip up whatever uses the memory next.
///
/// # Safety
/// Nothing may run on the stack, and the coroutine may never run again.
#[inline]
pub(crate) unsafe fn release(
    fiber: &mut CoroutineFiber,
    bounds: impl FnOnce() -> (StackPointer, StackPointer),
) {
    let (limit, base) = bounds();
    // SAFETY: the coroutine is gone, so its fake stack and TSan fiber are
    // unused (and the fiber is not the current one: the caller runs on
    // another stack), and its stack memory is ours.
    unsafe {
        asan::destroy_fake_stack(fiber.fake_stack);
        fiber.fake_stack = ptr::null_mut();
        tsan::destroy_fiber(fiber.tsan_fiber);
        fiber.tsan_fiber = ptr::null_mut();
        asan::unpoison(limit.get() as *const c_void, base.get() - limit.get());
    }
}

/// Before a scan reads all of `low..top`, memory of a stack nothing runs
/// on: clears the poison left there by frames that never returned (a
/// coroutine's root frame, say), since reading it is no bug.
///
/// # Safety
/// Nothing may run on `low..top`, which must be memory of one stack.
#[allow(dead_code)] // Only the Unix stacks measure their use.
#[inline]
pub(crate) unsafe fn scanning_unused_stack(low: usize, top: usize) {
    // SAFETY: forwarded to the caller: no frame on it can be hurt.
    unsafe { asan::unpoison(low as *const c_void, top - low) }
}

#[cfg(all(test, sanitize = "thread", feature = "default-stack"))]
mod tests {
    use crate::sanitizer::tsan;
    use crate::{Coroutine, ScopedCoroutine, Yielder};

    fn current_fiber() -> *mut core::ffi::c_void {
        // SAFETY: no preconditions.
        unsafe { tsan::current_fiber() }
    }

    /// A coroutine suspended by a nested one, through the outer one's
    /// `Yielder`, hands its resumer that resumer's own fiber back (not the
    /// outer coroutine's, which would be destroyed under it), also after
    /// moving while suspended, and when dropped.
    #[test]
    fn suspending_from_a_nested_coroutine_returns_to_the_resumers_fiber() {
        let outer = || {
            Coroutine::<(), u32, u32>::new(|outer_yielder, ()| {
                let outer_yielder = outer_yielder as *const Yielder<(), u32>;
                let inner = ScopedCoroutine::new(move |_: &Yielder<(), ()>, ()| {
                    // SAFETY: the outer coroutine runs (it resumed us).
                    unsafe { (*outer_yielder).suspend(1) };
                });
                inner.scope(|mut inner| {
                    inner.as_mut().resume(());
                });
                2
            })
        };
        let own = current_fiber();
        let mut coroutine = outer();
        assert_eq!(coroutine.resume(()).as_yield(), Some(1));
        assert_eq!(current_fiber(), own);
        let mut moved = std::boxed::Box::new(coroutine);
        assert_eq!(moved.resume(()).as_return(), Some(2));
        assert_eq!(current_fiber(), own);

        let mut dropped = outer();
        assert_eq!(dropped.resume(()).as_yield(), Some(1));
        drop(dropped);
        assert_eq!(current_fiber(), own);
    }
}

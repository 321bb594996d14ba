//! What the OS must know about the stack a coroutine runs on, and the
//! writes to a stack from outside it. Only Windows keeps such state (the
//! TEB's stack fields, and how much of a stack is committed); elsewhere,
//! and under Miri (where coroutines run on threads of their own, on
//! allocator memory), these compile to nothing. The context-switch code of a Windows arch
//! swaps the TEB fields with the copy kept in the stack's header (see
//! `arch::teb_fields_slot`).

#[cfg(all(windows, not(miri)))]
use super::windows;
use super::{Stack, StackPointer};
#[cfg(all(windows, not(miri)))]
use super::{StackTebFields, STACK_ALIGNMENT};

/// Records the stack's OS view in its header before a coroutine starts on it.
///
/// # Safety
/// Nothing may be running on `stack`: its header is overwritten.
#[inline(always)]
pub(crate) unsafe fn attach_os_state<S: Stack + ?Sized>(stack: &S) {
    #[cfg(all(windows, not(miri)))]
    // SAFETY: the header of an unused stack is ours to write, once committed
    // (a stack may not have committed any of it yet).
    unsafe {
        let mut fields = stack.teb_fields();
        // The header, and the generic state below it.
        let lowest = stack.base().get() - crate::arch::STACK_HEADER_SIZE - WRITTEN_BELOW_VALUE;
        if lowest < fields.StackLimit {
            windows::commit_down_to(&mut fields, lowest);
        }
        *crate::arch::teb_fields_slot(stack.base()) = fields;
    }
    #[cfg(not(all(windows, not(miri))))]
    let _ = stack;
}

/// Hands the OS view that the last coroutine left in the header back to the
/// stack (Windows may have committed more of it, or seen it overflow).
///
/// # Safety
/// A coroutine must have been set up on `stack` with `attach_os_state`, and
/// must not be running.
#[inline(always)]
pub(crate) unsafe fn detach_os_state<S: Stack + ?Sized>(stack: &mut S) {
    #[cfg(all(windows, not(miri)))]
    {
        // SAFETY: forwarded from the caller: the header holds the fields.
        let fields = unsafe { *crate::arch::teb_fields_slot(stack.base()) };
        stack.update_teb_fields(fields.StackLimit, fields.GuaranteedStackBytes);
    }
    #[cfg(not(all(windows, not(miri))))]
    let _ = stack;
}

/// Bytes below a value moved to a stack's top (`coroutine::move_to_stack_top`)
/// that the arch's `init_stack` or `trap_regs` may write next, or below the
/// arch header that the generic state takes: a few words.
#[cfg(all(windows, not(miri)))]
const WRITTEN_BELOW_VALUE: usize = 64;

/// Makes the top of the stack with base `base` writable down to `value`
/// (and the few words below it that an entry writes), before a value is
/// written there from outside the stack: by a coroutine's creation or by a
/// trap handler redirecting it.
///
/// Windows commits a stack one guard page at a time as code running on it
/// touches them, in order. A write from elsewhere (a `memcpy` of a large
/// closure starts at its lowest address) would hit the guard page as an
/// exception of its own, or skip it into reserved memory. So the pages are
/// committed here, a guard page put below them, and StackLimit moved as the
/// OS would have: in the stack's header while it is not running (its
/// fields, from `attach_os_state`, go back to the stack when it is
/// detached), in the TEB while a trap handler runs on it. Elsewhere stacks
/// are plain memory and this does nothing.
///
/// # Safety
/// `base` must be the base of a coroutine stack that is being set up
/// (`attach_os_state` done) or that trapped and runs the handler; `value`
/// must lie within its usable part.
#[inline(always)]
pub(crate) unsafe fn make_writable(base: StackPointer, value: usize) {
    #[cfg(all(windows, not(miri)))]
    {
        let lowest = value.saturating_sub(WRITTEN_BELOW_VALUE);
        // SAFETY: forwarded from the caller: the header is the stack's.
        let saved = unsafe { &*crate::arch::teb_fields_slot(base) };
        // Usually all of it is committed already (the header holds the
        // stack's fields while it is set up).
        if saved.StackBase != base.get() || lowest < saved.StackLimit {
            // SAFETY: forwarded from the caller.
            unsafe { commit_for_write(base, lowest) };
        }
    }
    #[cfg(not(all(windows, not(miri))))]
    let _ = (base, value);
}

/// The slow path of `make_writable`.
///
/// # Safety
/// As for `make_writable`, with `lowest` the lowest address to write.
#[cfg(all(windows, not(miri)))]
#[cold]
#[inline(never)]
unsafe fn commit_for_write(base: StackPointer, lowest: usize) {
    let live = crate::arch::current_teb_fields();
    if live.StackBase == base.get() {
        // A trap handler on the stack: the TEB describes it.
        let mut fields = live;
        // SAFETY: forwarded from the caller: the stack's own fields.
        if unsafe { windows::commit_down_to(&mut fields, lowest) } {
            // SAFETY: the pages above the new limit are committed.
            unsafe { crate::arch::set_current_stack_limit(fields.StackLimit) };
        }
    } else {
        // SAFETY: forwarded from the caller: the header is the stack's.
        let saved = unsafe { &mut *crate::arch::teb_fields_slot(base) };
        if saved.StackBase == base.get() {
            // SAFETY: forwarded from the caller: the stack's own fields.
            unsafe { windows::commit_down_to(saved, lowest) };
        }
    }
}

/// The top to give `arch::call_on_stack` for running on the stack of the
/// running coroutine's parent (blocked in `resume`), whose link word is at
/// `link`.
///
/// On Windows the TEB must describe that stack while the function runs on
/// it, as for [`StackCall`]: the word at the top points at the parent's TEB
/// fields, which the switch keeps in the coroutine's header while it runs
/// (and puts back in the TEB when the parent runs again, also with the
/// changes the OS made during the call). The parent's stack may never have
/// reached down to that word: it is committed first, as those fields say.
///
/// # Safety
/// `link` must be the link word of the running coroutine.
#[inline]
pub(crate) unsafe fn parent_call_top(link: *mut usize) -> StackPointer {
    // SAFETY: forwarded from the caller: the link word holds the parent's
    // stack pointer while the coroutine runs.
    let top = unsafe { crate::arch::parent_stack_top(*link) };
    #[cfg(all(windows, not(miri)))]
    // SAFETY: the header of the coroutine's stack (whose base is LINK bytes
    // above its link word) holds the parent's fields while it runs; below
    // the top the parent's stack is free, and committed before the write.
    unsafe {
        let base = StackPointer::new_unchecked(link as usize + crate::arch::LINK);
        let fields = crate::arch::teb_fields_slot(base);
        windows::commit_down_to(&mut *fields, top.get());
        *(top.get() as *mut *mut StackTebFields) = fields;
    }
    top
}

/// A stack lent to `arch::call_on_stack` (by `on_stack`), with the top to
/// give it. On Windows the TEB must describe the stack while the function
/// runs on it: its fields are stored at the top and the word at `top`
/// points at them, where the arch's `call_on_stack` looks for them; the OS
/// may move them (growing the stack) during the call, so dropping this
/// hands them back to the stack, also when the function panicked.
pub(crate) struct StackCall<'a, S: Stack + ?Sized> {
    #[cfg_attr(not(all(windows, not(miri))), allow(dead_code))]
    stack: &'a mut S,
    top: StackPointer,
}

impl<'a, S: Stack + ?Sized> StackCall<'a, S> {
    /// # Safety
    /// Nothing may be running on `stack`: its top is overwritten.
    #[inline(always)]
    pub(crate) unsafe fn new(stack: &'a mut S) -> Self {
        #[cfg(all(windows, not(miri)))]
        // SAFETY: the top of an unused stack is ours to write, once
        // committed.
        let top = unsafe {
            let fields = (stack.base().get() - core::mem::size_of::<StackTebFields>())
                & !(STACK_ALIGNMENT - 1);
            let top = (fields - core::mem::size_of::<usize>()) & !(STACK_ALIGNMENT - 1);
            let mut own = stack.teb_fields();
            if windows::commit_down_to(&mut own, top) {
                stack.update_teb_fields(own.StackLimit, own.GuaranteedStackBytes);
            }
            *(fields as *mut StackTebFields) = stack.teb_fields();
            *(top as *mut usize) = fields;
            StackPointer::new_unchecked(top)
        };
        #[cfg(not(all(windows, not(miri))))]
        let top = stack.base();
        StackCall { stack, top }
    }

    /// The top to give `arch::call_on_stack`.
    #[inline(always)]
    pub(crate) fn top(&self) -> StackPointer {
        self.top
    }
}

impl<S: Stack + ?Sized> Drop for StackCall<'_, S> {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(all(windows, not(miri)))]
        // SAFETY: `new` stored the fields' address at `top`, and the arch's
        // `call_on_stack` left the stack's final fields there.
        unsafe {
            let fields = **(self.top.get() as *const *const StackTebFields);
            self.stack
                .update_teb_fields(fields.StackLimit, fields.GuaranteedStackBytes);
        }
    }
}

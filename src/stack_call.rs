//! Running a function on another stack: [`on_stack`] (a stack lent for the
//! call), and the parent's stack for `Yielder::on_parent_stack` and the
//! segments of `Yielder::maybe_grow`.

use core::mem::ManuallyDrop;

use crate::abi::{StackCallFn, StackPointer};
use crate::arch;
use crate::sanitizer;
use crate::stack;
use crate::unwind::{self, root_fn, CaughtPanic};

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
pub(crate) unsafe fn call_on_stack_top<F, R>(
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

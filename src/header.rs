//! The top of a coroutine stack, below the arch's header: the generic state
//! a [`Yielder`](crate::Yielder) finds from its own address, and where a
//! coroutine's closure (or a trap handler's) is put.
//!
//! ```text
//!  base ──►  +------------------------+
//!            | arch header (link, …)  |  arch::STACK_HEADER_SIZE
//!            +------------------------+
//!            | StackState             |  STATE_SIZE
//!            +------------------------+ ◄── closure_addr (rounded down)
//!            | closure                |
//!            +------------------------+
//!            | the coroutine's frames |
//!            ⋮                        ⋮
//! ```

use core::cell::Cell;
use core::mem;
use core::ptr;

use crate::abi::StackPointer;
use crate::arch::{self, STACK_ALIGNMENT};
use crate::stack;

/// The generic part of a coroutine stack's header, just below the arch
/// header, where a [`Yielder`](crate::Yielder) finds it from its own address (no
/// thread-local, nothing added to the switch).
#[repr(C)]
pub(crate) struct StackState {
    /// Lowest usable address of the stack the coroutine is running on
    /// (`Stack::usable_limit`: above its guard pages); changed by
    /// [`Yielder::maybe_grow`](crate::Yielder::maybe_grow) while it runs on another segment.
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
    pub(crate) unsafe fn of<'a>(base: StackPointer) -> &'a StackState {
        let addr = base.get() - arch::STACK_HEADER_SIZE - STATE_SIZE;
        // SAFETY: forwarded from the caller; every stack has MIN_STACK_SIZE
        // bytes, far more than the header and the state, and the slot is
        // aligned (the header size is a multiple of STACK_ALIGNMENT).
        unsafe { &*(addr as *const StackState) }
    }

    /// Sets the bounds of the stack the coroutine runs on (`top` aligned),
    /// with no request to unwind.
    #[inline(always)]
    pub(crate) fn set_bounds(&self, limit: usize, top: usize) {
        self.limit.set(limit);
        self.top.set(top);
    }

    /// The bounds of the stack the coroutine runs on: `(limit, top)`.
    /// (`top` may carry a request to unwind, while the coroutine is
    /// suspended: never while its code runs.)
    #[inline(always)]
    pub(crate) fn bounds(&self) -> (usize, usize) {
        (self.limit.get(), self.top.get())
    }

    /// Keeps how to drop an `F` closure at the top of the stack, for a
    /// coroutine dropped before it starts. Nothing for a closure with
    /// nothing to drop.
    #[inline(always)]
    pub(crate) fn keep_closure_drop<F>(&self) {
        if mem::needs_drop::<F>() {
            self.drop_closure.set(Some(drop_closure_in_place::<F>));
        }
    }

    /// Drops, in place, the closure of a coroutine that never started, on
    /// the stack whose base is `base`, if it has something to drop.
    ///
    /// # Safety
    /// `base` must be the base of that coroutine's stack; the closure must
    /// be there, never taken nor dropped, and not be used again.
    #[inline]
    pub(crate) unsafe fn drop_unstarted_closure(base: StackPointer) {
        // SAFETY: forwarded from the caller; the function was kept for the
        // closure's type at creation.
        unsafe {
            if let Some(drop_closure) = Self::of(base).drop_closure.get() {
                drop_closure(base);
            }
        }
    }

    /// Parent side: asks the coroutine to unwind itself when next resumed.
    #[inline(always)]
    pub(crate) fn request_unwind(&self) {
        self.top.set(self.top.get() | UNWIND_REQUEST);
    }

    /// Coroutine side of a resume: whether the parent asks it to unwind.
    /// (Whoever acts on a request clears it from a cold function of its own,
    /// so that this stays a single test of memory on the hot path.)
    #[inline(always)]
    pub(crate) fn unwind_requested(&self) -> bool {
        self.top.get() & UNWIND_REQUEST != 0
    }

    #[inline(always)]
    pub(crate) fn clear_unwind_request(&self) {
        self.top.set(self.top.get() & !UNWIND_REQUEST);
    }
}

/// Drops, in place, the closure `Coroutine::with_stack_unchecked` moved to the top of
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

//! Stacks for coroutines.
//!
//! A coroutine runs on memory that implements [`Stack`]. [`DefaultStack`]
//! (feature `default-stack`) asks the OS for a guard-paged region, and
//! [`StackPool`] recycles guard-paged stacks without system calls; any other
//! type can be used if it upholds the trait's contract, and a `&mut S` of a
//! stack is itself a stack, for reuse without moving.

use core::num::NonZeroUsize;

/// A stack address. Never zero.
pub type StackPointer = NonZeroUsize;

/// Alignment of the stack pointer required at function calls on this target.
/// [`Stack::base`] and [`Stack::limit`] must be multiples of it.
///
/// ```
/// use stackswitch::stack::STACK_ALIGNMENT;
/// assert!(STACK_ALIGNMENT.is_power_of_two() && STACK_ALIGNMENT >= 8);
/// ```
pub const STACK_ALIGNMENT: usize = crate::arch::STACK_ALIGNMENT;

/// Smallest usable size, excluding guard pages, that a stack may have.
///
/// It is enough to start a coroutine, suspend, resume, return and be unwound
/// when dropped; real code needs more. It depends on the target, because
/// unwinding does: 4 KiB on x86-64 Linux; more where the system unwinder's
/// frames are large (RISC-V's tracks 66 registers) or where raising an
/// exception puts several CPU context records on the stack (Windows SEH),
/// and under a sanitizer, whose instrumentation makes frames larger.
///
/// ```
/// use stackswitch::stack::{DefaultStack, MIN_STACK_SIZE};
/// use stackswitch::Coroutine;
///
/// let tiny = DefaultStack::new(MIN_STACK_SIZE).unwrap();
/// let mut coroutine = Coroutine::<(), (), u32>::with_stack(tiny, |_, ()| 1 + 1);
/// assert_eq!(coroutine.resume(()).as_return(), Some(2));
/// ```
pub const MIN_STACK_SIZE: usize = crate::sanitizer::min_stack_size(crate::arch::MIN_STACK_SIZE);

/// Memory a coroutine can run on.
///
/// # Safety
///
/// An implementation must guarantee that:
/// - [`base`](Self::base) and [`limit`](Self::limit) are aligned to
///   [`STACK_ALIGNMENT`], as their documentation says;
/// - the memory from [`limit`](Self::limit) to [`base`](Self::base) stays
///   valid and unused by anything else for as long as the object lives (it
///   may move: the memory may not);
/// - at least [`MIN_STACK_SIZE`] bytes below `base` are readable and
///   writable;
/// - a guard region below the usable memory (inside `limit..base` or just
///   below `limit`) faults on access, so that a stack overflow can never
///   silently write to other memory.
pub unsafe trait Stack {
    /// Highest address of the stack (stacks grow downwards). Aligned to
    /// [`STACK_ALIGNMENT`].
    fn base(&self) -> StackPointer;

    /// Lowest address of the stack, guard pages included. Aligned to
    /// [`STACK_ALIGNMENT`].
    fn limit(&self) -> StackPointer;

    /// The Thread Environment Block fields that describe this stack, for
    /// Windows to see while a coroutine runs on it.
    #[cfg(windows)]
    fn teb_fields(&self) -> StackTebFields;

    /// Saves TEB fields that code running on the stack may have changed
    /// (Windows grows the committed part of a stack and may change its
    /// guaranteed size).
    #[cfg(windows)]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize);
}

/// Thread Environment Block fields that Windows keeps about the current
/// stack; `SwitchToFiber` swaps the same set.
///
/// The layout (four words in this order) is also the one the Windows
/// context-switch code keeps in a coroutine stack's header.
#[cfg(windows)]
#[derive(Clone, Copy, Debug)]
#[repr(C)]
#[allow(non_snake_case, missing_docs)]
pub struct StackTebFields {
    pub StackBase: usize,
    pub StackLimit: usize,
    pub DeallocationStack: usize,
    pub GuaranteedStackBytes: usize,
}

// SAFETY: the borrow keeps the underlying stack, and so its memory, alive and
// exclusively ours for as long as the reference is used.
unsafe impl<S: Stack + ?Sized> Stack for &mut S {
    #[inline]
    fn base(&self) -> StackPointer {
        (**self).base()
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        (**self).limit()
    }

    #[cfg(windows)]
    #[inline]
    fn teb_fields(&self) -> StackTebFields {
        (**self).teb_fields()
    }

    #[cfg(windows)]
    #[inline]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        (**self).update_teb_fields(stack_limit, guaranteed_stack_bytes)
    }
}

// The OS layer: `DefaultStack` and the slabs of `StackPool`. Under Miri,
// allocator memory instead (Miri emulates no `mmap` flags or guard pages).
#[cfg(all(feature = "default-stack", unix, not(miri)))]
mod unix;
#[cfg(all(feature = "default-stack", unix, not(miri)))]
use self::unix as sys;
#[cfg(all(feature = "default-stack", unix, not(miri)))]
mod valgrind;
#[cfg(all(feature = "default-stack", windows, not(miri)))]
mod windows;
#[cfg(feature = "default-stack")]
pub use self::sys::{DefaultStack, DEFAULT_STACK_SIZE};
#[cfg(all(feature = "default-stack", windows, not(miri)))]
use self::windows as sys;
#[cfg(all(feature = "default-stack", miri))]
mod miri;
#[cfg(all(feature = "default-stack", miri))]
use self::miri as sys;

#[cfg(feature = "default-stack")]
mod pool;
#[cfg(feature = "default-stack")]
pub use self::pool::{PooledStack, StackPool, StackPoolBuilder};

// What the OS must know about the stack a coroutine runs on. Only Windows
// keeps such state (in the TEB); elsewhere these hooks compile to nothing.
// The context-switch code of a Windows arch swaps the TEB fields with the
// copy kept in the stack's header (see `arch::teb_fields_slot`).

/// Records the stack's OS view in its header before a coroutine starts on it.
///
/// # Safety
/// Nothing may be running on `stack`: its header is overwritten.
#[inline(always)]
pub(crate) unsafe fn attach_os_state<S: Stack + ?Sized>(stack: &S) {
    #[cfg(windows)]
    // SAFETY: the header of an unused stack is ours to write.
    unsafe {
        *crate::arch::teb_fields_slot(stack.base()) = stack.teb_fields();
    }
    #[cfg(not(windows))]
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
    #[cfg(windows)]
    {
        // SAFETY: forwarded from the caller: the header holds the fields.
        let fields = unsafe { *crate::arch::teb_fields_slot(stack.base()) };
        stack.update_teb_fields(fields.StackLimit, fields.GuaranteedStackBytes);
    }
    #[cfg(not(windows))]
    let _ = stack;
}

/// The top to give `arch::call_on_stack` for running a function on `stack`.
///
/// On Windows the TEB must describe the stack while the function runs on it:
/// its fields are stored at the top and the word at the returned address
/// points at them, where the arch's `call_on_stack` looks for them.
///
/// # Safety
/// Nothing may be running on `stack`: its top is overwritten.
#[inline(always)]
pub(crate) unsafe fn call_top<S: Stack + ?Sized>(stack: &S) -> StackPointer {
    #[cfg(windows)]
    // SAFETY: the top of an unused stack is ours to write; the fields and the
    // pointer lie within its first MIN_STACK_SIZE bytes.
    unsafe {
        let fields =
            (stack.base().get() - core::mem::size_of::<StackTebFields>()) & !(STACK_ALIGNMENT - 1);
        *(fields as *mut StackTebFields) = stack.teb_fields();
        let top = (fields - core::mem::size_of::<usize>()) & !(STACK_ALIGNMENT - 1);
        *(top as *mut usize) = fields;
        StackPointer::new_unchecked(top)
    }
    #[cfg(not(windows))]
    stack.base()
}

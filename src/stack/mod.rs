//! Stacks for coroutines.
//!
//! A coroutine runs on memory that implements [`Stack`]. [`DefaultStack`]
//! (feature `default-stack`) asks the OS for a guard-paged region; any other
//! type can be used if it upholds the trait's contract, and a `&mut S` of a
//! stack is itself a stack, for reuse without moving.

use core::num::NonZeroUsize;

/// A stack address. Never zero.
pub type StackPointer = NonZeroUsize;

/// Alignment of the stack pointer required at function calls on this target.
/// [`Stack::base`] and [`Stack::limit`] must be multiples of it.
pub const STACK_ALIGNMENT: usize = crate::arch::STACK_ALIGNMENT;

/// Smallest usable size, excluding guard pages, that a stack may have.
///
/// It is enough to start a coroutine, suspend, resume, return, panic and be
/// unwound when dropped; real code needs more.
pub const MIN_STACK_SIZE: usize = 4096;

/// Memory a coroutine can run on.
///
/// # Safety
///
/// An implementation must guarantee that:
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
#[cfg(windows)]
#[derive(Clone, Copy, Debug)]
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

#[cfg(all(feature = "default-stack", unix))]
mod unix;
#[cfg(all(feature = "default-stack", unix))]
pub use self::unix::DefaultStack;

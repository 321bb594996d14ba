//! The sanitizer hooks without the `sanitizer` feature: nothing to do.
//! Every type is zero-sized and every function empty and inlined, so the
//! switch path compiles to exactly what it would be without them.

use crate::abi::StackPointer;

/// The smallest usable stack: what the architecture needs.
pub(crate) const fn min_stack_size(arch_min: usize) -> usize {
    arch_min
}

/// Per-coroutine sanitizer state: none.
pub(crate) struct CoroutineFiber;

impl CoroutineFiber {
    /// # Safety
    /// See `fibers.rs`; nothing is required here.
    #[inline(always)]
    pub(crate) unsafe fn for_stack(_bounds: impl FnOnce() -> (StackPointer, StackPointer)) -> Self {
        CoroutineFiber
    }
}

/// The bounds of a stack: not needed.
#[derive(Clone, Copy)]
pub(crate) struct StackBounds;

impl StackBounds {
    #[inline(always)]
    pub(crate) fn new(_limit: StackPointer, _base: StackPointer) -> Self {
        StackBounds
    }

    /// # Safety
    /// Must run in a coroutine.
    #[inline(always)]
    pub(crate) unsafe fn parent(_link: *mut usize) -> Self {
        StackBounds
    }
}

/// What the parent keeps across a resume: nothing.
pub(crate) struct ResumeToken;

/// What the caller keeps across a stack call: nothing.
pub(crate) struct StackCallToken;

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn resuming(_fiber: &mut CoroutineFiber) -> ResumeToken {
    ResumeToken
}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn resumed_back(_token: ResumeToken) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn coroutine_entered() {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn suspending(_link: *mut usize) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn resumed_in_coroutine(_link: *mut usize) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn exiting() {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn trapped(_top: usize) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn calling_on_stack(_target: StackBounds) -> StackCallToken {
    StackCallToken
}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn stack_call_entered() -> StackBounds {
    StackBounds
}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn stack_call_leaving(_caller: StackBounds) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn stack_call_returned(_token: StackCallToken) {}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[inline(always)]
pub(crate) unsafe fn release(
    _fiber: &mut CoroutineFiber,
    _bounds: impl FnOnce() -> (StackPointer, StackPointer),
) {
}

/// # Safety
/// See `fibers.rs`; nothing is required here.
#[allow(dead_code)] // Only the Unix stacks measure their use.
#[inline(always)]
pub(crate) unsafe fn scanning_unused_stack(_low: usize, _top: usize) {}

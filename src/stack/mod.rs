//! Stacks for coroutines.
//!
//! A coroutine runs on memory that implements [`Stack`]. [`DefaultStack`]
//! (feature `default-stack`) asks the OS for a guard-paged region, and
//! [`StackPool`] recycles guard-paged stacks without system calls; any other
//! type can be used if it upholds the trait's contract, and a `&mut S` of a
//! stack is itself a stack, for reuse without moving.

pub use crate::abi::StackPointer;
#[cfg(windows)]
pub use crate::abi::StackTebFields;

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
/// A panic raised by code on such a stack needs more the first time in a
/// process (the unwinder's symbols are bound then, which can save the whole
/// extended register state on the stack): [`DefaultStack`] and
/// [`StackPool`] make that happen on the caller's stack when they make a
/// small stack, and [`on_stack`](crate::on_stack) before it runs on one. A
/// small stack of another kind should be made after a first panic.
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
/// - at least [`MIN_STACK_SIZE`] bytes below `base`, and all of
///   [`usable_limit`](Self::usable_limit)`..base`, are readable and writable;
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

    /// The top of a hardware shadow stack (a stack of return addresses
    /// that ordinary stores cannot reach) made for this stack, or `None`
    /// (the default) if it has none.
    ///
    /// Called when a coroutine is created on a thread that runs with a
    /// shadow stack, on targets whose switch moves between them: AArch64
    /// Linux with the Guarded Control Stack (GCS) on, in builds with
    /// nightly's `-Zbranch-protection=gcs`. An implementation returns the
    /// top of a shadow stack (from `map_shadow_stack(2)`) that lives as long
    /// as `self`, is used by nothing else, and holds a start token (GCS: a
    /// cap token) in its top word; it may map it on the first call, and must
    /// check the token on every call (a coroutine that did not finish may
    /// have consumed it). Creating a coroutine on such a thread with a stack
    /// that has none panics. [`DefaultStack`] and [`StackPool`] stacks
    /// provide one.
    ///
    /// ```
    /// use stackswitch::stack::{DefaultStack, Stack};
    ///
    /// let mut stack = DefaultStack::new(64 * 1024).unwrap();
    /// // Some only on a thread with a shadow stack that the switch follows.
    /// if let Some(top) = stack.shadow_stack() {
    ///     assert_eq!(top.get() % 8, 0);
    /// }
    /// ```
    #[inline]
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        None
    }

    /// Whether every stack of this type was made by code that refused a
    /// thread with a hardware shadow stack the switch cannot follow (see
    /// `refuse_unfollowed_shadow_stack`), so that creating a coroutine on
    /// one need not check again. Only this crate's stacks set it: a shadow
    /// stack is turned on when a thread starts, so a check where the stack
    /// was made holds wherever it is used, and the common creation path
    /// stays free of it.
    #[doc(hidden)]
    const SHADOW_STACK_REFUSED_WHEN_MADE: bool = false;

    /// Lowest address that code running on the stack may use: above any
    /// guard region inside `limit..base` (on Windows, also above the zone
    /// the OS keeps for handling a stack overflow). Aligned to
    /// [`STACK_ALIGNMENT`], at most `base - MIN_STACK_SIZE`, and at least
    /// [`limit`](Self::limit), which it is unless overridden: right for a
    /// stack whose guard region lies below `limit`.
    ///
    /// It decides how large a closure a coroutine accepts (see
    /// [`Coroutine::with_stack`](crate::Coroutine::with_stack)) and what
    /// [`Yielder::remaining_stack`](crate::Yielder::remaining_stack)
    /// counts; trap handlers still use `limit`, so that a fault in a guard
    /// page is seen as one on the stack.
    ///
    /// ```
    /// use stackswitch::stack::{DefaultStack, Stack};
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// // The guard page is not usable (under Miri stacks have none).
    /// assert!(stack.usable_limit() > stack.limit() || cfg!(miri));
    /// assert!(stack.base().get() - stack.usable_limit().get() >= 64 * 1024);
    /// ```
    #[inline]
    fn usable_limit(&self) -> StackPointer {
        self.limit()
    }

    /// The Thread Environment Block fields that describe this stack, for
    /// Windows to see while a coroutine runs on it.
    ///
    /// Laid out as a Windows thread stack: reserved from
    /// `DeallocationStack` to `StackBase`, committed from `StackLimit` up
    /// (a guard page may lie just below). Windows commits more as code
    /// running on the stack reaches down; before this crate writes below
    /// `StackLimit` from outside the stack (a large closure at creation),
    /// it commits the pages itself in the same way, and the new limit comes
    /// back through [`update_teb_fields`](Self::update_teb_fields). A stack
    /// that is committed whole reports `StackLimit` = `DeallocationStack`.
    #[cfg(windows)]
    fn teb_fields(&self) -> StackTebFields;

    /// Saves TEB fields that code running on the stack may have changed
    /// (Windows grows the committed part of a stack and may change its
    /// guaranteed size).
    #[cfg(windows)]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize);
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

    #[inline]
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        (**self).shadow_stack()
    }

    const SHADOW_STACK_REFUSED_WHEN_MADE: bool = S::SHADOW_STACK_REFUSED_WHEN_MADE;

    #[inline]
    fn usable_limit(&self) -> StackPointer {
        (**self).usable_limit()
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

// The OS layer: `DefaultStack` and the slabs of `StackPool` (on Windows
// also the committing of any stack, so that module is there without the
// feature too). Under Miri, allocator memory instead (Miri emulates no
// `mmap` flags or guard pages, and keeps no TEB).
#[cfg(all(feature = "default-stack", unix, not(miri)))]
mod unix;
#[cfg(all(feature = "default-stack", unix, not(miri)))]
use self::unix as sys;
pub mod valgrind;
#[cfg(all(windows, not(miri)))]
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

mod os_state;
pub(crate) use self::os_state::{
    attach_os_state, detach_os_state, make_writable, parent_call_top, StackCall,
};

/// Panics if this thread runs with a hardware shadow stack that the switch
/// cannot follow: the first switch would crash. Where a stack is made (see
/// `Stack::SHADOW_STACK_REFUSED_WHEN_MADE`), or a coroutine is created on
/// a stack made elsewhere.
#[inline]
#[track_caller]
pub(crate) fn refuse_unfollowed_shadow_stack() {
    if !crate::arch::FOLLOWS_SHADOW_STACK && crate::arch::shadow_stack_active() {
        crate::arch::shadow_stack_unsupported();
    }
}

/// The panic of a coroutine creation that needs a shadow stack from a stack
/// that has none (see [`Stack::shadow_stack`]).
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn no_shadow_stack() -> ! {
    panic!(
        "this thread runs with a hardware shadow stack, and the coroutine's stack provides none \
         (Stack::shadow_stack): use DefaultStack or StackPool stacks, or implement it"
    )
}

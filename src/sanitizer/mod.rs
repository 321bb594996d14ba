//! What sanitizers must be told when execution moves between stacks.
//!
//! AddressSanitizer and ThreadSanitizer keep per-thread state about the
//! stack being run on: ASan its bounds and its "fake stack" (where it puts
//! locals to catch use-after-return), TSan the shadow call stack and
//! happens-before clock of a "fiber". A stack switch they are not told about
//! corrupts that state and produces false reports, or hides real ones.
//!
//! The coroutine code calls the hooks below at every point where the stack
//! changes. With the `sanitizer` feature (nightly only) and a build with
//! `-Zsanitizer=address` or `-Zsanitizer=thread`, they call the sanitizer's
//! fiber interface (`fibers.rs`, over `asan.rs` and `tsan.rs`); otherwise
//! they are empty, inlined functions on zero-sized types (`noop.rs`), and
//! cost nothing. Under Miri, which runs no sanitizer (and runs each
//! coroutine on a thread of its own, where the thread-local below would not
//! follow it), the feature selects `noop.rs` too.
//!
//! The hook points:
//!
//! | where | parent side | coroutine side |
//! |---|---|---|
//! | `resume` | [`resuming`] before, [`resumed_back`] after the switch | [`coroutine_entered`] first thing in the root function |
//! | `suspend` | | [`suspending`] before, [`resumed_in_coroutine`] after the switch |
//! | coroutine exit | | [`exiting`] before the last switch |
//! | trap recovery | | [`trapped`] first thing in the trap's root function |
//! | `on_stack`, `on_parent_stack` | [`calling_on_stack`] before, [`stack_call_returned`] after | [`stack_call_entered`] first, [`stack_call_leaving`] last in the called root function |
//! | a coroutine's stack is freed or reused | [`release`] | |
//! | a stack nothing runs on is scanned (its high-water mark) | [`scanning_unused_stack`] | |
//!
//! The coroutine side finds its [`CoroutineFiber`] through a thread-local
//! pointer that the parent sets in [`resuming`] and restores in
//! [`resumed_back`]: a coroutine runs on the thread that resumed it until
//! it switches back, so the pointer is right for every hook in between.
//! It points at the innermost running coroutine, whose state chains to the
//! ones that resumed it: a nested coroutine may suspend an outer one (with
//! the outer one's `Yielder`), so `suspend` looks its coroutine up by link.

#[cfg(all(feature = "sanitizer", feature = "asm-unwind"))]
compile_error!(
    "the `sanitizer` and `asm-unwind` features cannot be combined: a panic \
     unwinding through the switch moves between stacks without the \
     sanitizer hooks"
);

// The hooks: empty ones, or the fiber bookkeeping, which calls each
// sanitizer's own interface.
#[cfg(all(feature = "sanitizer", not(miri)))]
mod asan;
#[cfg(not(all(feature = "sanitizer", not(miri))))]
#[path = "noop.rs"]
mod imp;
#[cfg(all(feature = "sanitizer", not(miri)))]
#[path = "fibers.rs"]
mod imp;
#[cfg(all(feature = "sanitizer", not(miri)))]
mod tsan;

pub(crate) use imp::{
    calling_on_stack, coroutine_entered, exiting, min_stack_size, release, resumed_back,
    resumed_in_coroutine, resuming, stack_call_entered, stack_call_leaving, stack_call_returned,
    suspending, trapped, CoroutineFiber, StackBounds,
};
// Only the Unix stacks measure their use.
#[allow(unused_imports)]
pub(crate) use imp::scanning_unused_stack;

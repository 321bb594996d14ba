//! The few types every layer shares: what a stack address is, the word a
//! switch carries, the signatures of the functions entered at the root of a
//! stack, and (on Windows) the OS's view of a stack.
//!
//! A leaf: it names no other module of the crate, so any module may use it
//! without making the module graph cyclic (`ci/module-graph.py` checks).

use core::num::NonZeroUsize;

/// A stack address. Never zero.
pub type StackPointer = NonZeroUsize;

/// The register's worth of bits a switch carries (`arg`). `MaybeUninit`
/// because it may hold a value with padding, or no value at all: inline asm
/// accepts `MaybeUninit` operands of integer types and moves them between
/// registers like any other, keeping every bit; Rust never reads the word
/// as an integer. See `crate::transfer`.
pub(crate) type Word = core::mem::MaybeUninit<usize>;

/// The signatures of the functions the switch enters at the root of a stack.
/// Their ABI is `"C-unwind"` only where a panic may leave them by unwinding
/// (through the switch with `asm-unwind`; under Miri, where a coroutine's
/// thread ends by unwinding out of its root); see `crate::unwind::root_fn`,
/// which declares such functions to match.
macro_rules! root_fn_types {
    ($abi:literal) => {
        /// Entry of a coroutine: `(first resume argument, link, closure)`.
        pub(crate) type EntryFn = unsafe extern $abi fn(Word, *mut usize, *mut u8) -> !;
        /// Entry of a trapped coroutine: `(handler closure, link)`.
        pub(crate) type TrapEntryFn = unsafe extern $abi fn(*mut u8, *mut usize) -> !;
        /// Function run by `arch::call_on_stack`.
        pub(crate) type StackCallFn = unsafe extern $abi fn(*mut u8);
    };
}
#[cfg(any(feature = "asm-unwind", miri))]
root_fn_types!("C-unwind");
#[cfg(not(any(feature = "asm-unwind", miri)))]
root_fn_types!("C");

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

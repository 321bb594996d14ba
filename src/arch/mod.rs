//! The context-switch layer: one file per CPU (and ABI), one interface.
//!
//! Everything above this module is architecture-neutral. It sees a coroutine
//! as an opaque *stack pointer* (where the suspended context was saved) and a
//! *link* (a word near the top of the coroutine stack through which the
//! coroutine finds its parent). Every architecture file implements:
//!
//! | item | what it does |
//! |---|---|
//! | `STACK_ALIGNMENT` | alignment the ABI requires of the stack pointer at a call |
//! | `MIN_STACK_SIZE` | smallest stack on which a coroutine can run and be unwound (depends on the unwinder's appetite) |
//! | `STACK_HEADER_SIZE` | bytes the arch reserves at the top of every coroutine stack (link and frame record); a multiple of `STACK_ALIGNMENT` |
//! | `LINK` | offset of the link word below the stack base (inside the header), so a `Yielder` can find its stack's top |
//! | `TrapHandlerRegs` | the registers a signal handler must write to redirect a trapped coroutine |
//! | `init_stack(stack, sp, entry, data)` | lays out a fresh coroutine below `sp` so that its first resume calls `entry(arg, link, data)` |
//! | `resume(arg, sp, base)` | switches into the coroutine whose context is saved at `sp`; returns `(arg, sp)` when it suspends, `(arg, end)` when it exits |
//! | `suspend(arg, link)` | saves the running coroutine's context and switches back to the parent recorded in `link` |
//! | `exit(arg, link, end)` | switches to the parent for the last time, saving nothing; `end` is a small number (never a context) that the parent's `resume` returns in place of `sp` |
//! | `current_stack_pointer()` | the stack pointer where it is inlined (one register move) |
//! | `parent_stack_top(link)` | highest usable address on the parent's stack while it is blocked in `resume` |
//! | `stack_call_trampoline(data, top, f)` | calls `f(data)` with the stack pointer at `top`, linked for unwinders (`call_on_stack` below) |
//! | `trap_regs(base, sp, handler, data)` | prepares the stack so that, with the returned registers, the trapped coroutine calls `handler(data, link)` |
//!
//! The `arg` of a switch is a [`Word`]: one register's worth of bits that
//! the switch carries from one side to the other untouched, never reading
//! it (the generic code puts a small value or an address in it).
//!
//! The root frame of every coroutine carries unwind information (DWARF CFI,
//! or SEH on Windows) that reads the link, so unwinders and debuggers walk
//! from a coroutine into whoever resumed it last. Switches never write below
//! the stack pointer, so signals may arrive at any instruction.
//!
//! With the `sanitizer` feature, the ELF files (but `arm.rs`, whose naked
//! functions live in inner modules, and which no sanitizer supports) never
//! inline `init_stack`, so that the codegen unit of the naked functions
//! (their module's) holds an ordinary function too. LLVM writes the CFI of
//! naked functions (module asm) to `.eh_frame` only if some function of
//! their codegen unit needs an unwind table; alone with a sanitizer's
//! module constructor, which does not, it went to `.debug_frame` only,
//! where debuggers find it but `_Unwind_Backtrace` (`std::backtrace`, the
//! `backtrace` crate) does not: backtraces under ASan stopped at a
//! coroutine's root frame. Without a sanitizer every function of the unit
//! has an unwind table, so `init_stack` is inlined there (the call cost 23
//! instructions per creation on x86-64). A program built with a sanitizer
//! but without the feature may see backtraces stop at the root frame.
//!
//! Under Miri, `miri.rs` replaces them all: coroutines run on threads of
//! their own, with no asm (see that file).
//!
//! Adding a CPU means adding one file here and one line below.

/// `asm!` for the parent's side of a switch (`resume`). With `asm-unwind` a
/// panic in the coroutine unwinds through the root frame's unwind info
/// straight out of this asm, so it is marked `may_unwind`. The operand list
/// must end with a comma. (An arch may use it for `suspend` too, where
/// `may_unwind` is merely unused.)
#[allow(unused_macros)] // The Windows files do not use it (no `asm-unwind` there).
macro_rules! resume_asm {
    ($($body:tt)*) => {
        #[cfg(feature = "asm-unwind")]
        core::arch::asm!($($body)* options(may_unwind));
        #[cfg(not(feature = "asm-unwind"))]
        core::arch::asm!($($body)*);
    };
}

/// The register's worth of bits a switch carries (`arg`). `MaybeUninit`
/// because it may hold a value with padding, or no value at all: inline asm
/// accepts `MaybeUninit` operands of integer types and moves them between
/// registers like any other, keeping every bit; Rust never reads the word
/// as an integer. See `crate::transfer`.
pub(crate) type Word = core::mem::MaybeUninit<usize>;

use crate::stack::StackPointer;
use crate::unwind::StackCallFn;

macro_rules! select_arch {
    ($($cond:meta => $file:literal,)*) => {
        $(
            // Miri runs no inline asm: it has a backend of its own.
            #[cfg(all(not(miri), $cond))]
            #[path = $file]
            mod imp;
        )*
        #[cfg(miri)]
        #[path = "miri.rs"]
        mod imp;
    };
}

select_arch! {
    all(target_arch = "x86_64", not(windows)) => "x86_64.rs",
    any(target_arch = "riscv64", target_arch = "riscv32") => "riscv.rs",
    target_arch = "loongarch64" => "loongarch64.rs",
    all(target_arch = "x86_64", windows) => "x86_64_windows.rs",
    all(target_arch = "x86", windows) => "x86_windows.rs",
    all(target_arch = "aarch64", windows) => "aarch64_windows.rs",
    target_arch = "arm" => "arm.rs",
    all(target_arch = "aarch64", not(windows)) => "aarch64.rs",
    all(target_arch = "x86", not(windows)) => "x86.rs",
    all(target_arch = "powerpc64", target_endian = "little") => "powerpc64.rs",
    target_arch = "s390x" => "s390x.rs",
}

pub use imp::TrapHandlerRegs;
// Windows arches also keep the TEB fields of a stack in its header, where
// the stack module's hooks read and write them.
#[cfg(all(windows, not(miri)))]
pub(crate) use imp::teb_fields_slot;
pub(crate) use imp::{
    current_stack_pointer, exit, init_stack, parent_stack_top, resume, suspend, trap_regs, LINK,
    MIN_STACK_SIZE, STACK_ALIGNMENT, STACK_HEADER_SIZE,
};

/// Calls `f(data)` with the stack pointer at `top`, linked so that
/// unwinders continue on the stack it was called from.
///
/// # Safety
/// `top` must be aligned to `STACK_ALIGNMENT`, with enough stack below it
/// for `f`, and laid out as the arch's `stack_call_trampoline` documents
/// (on Windows, the word at `top` points at the stack's TEB fields;
/// `stack::call_top` and `parent_stack_top` arrange that).
#[inline]
pub(crate) unsafe fn call_on_stack(data: *mut u8, top: StackPointer, f: StackCallFn) {
    // SAFETY: forwarded to the caller.
    unsafe { imp::stack_call_trampoline(data, top.get(), f) }
}

// The generic code relies on the header keeping everything below it aligned.
const _: () = assert!(STACK_HEADER_SIZE.is_multiple_of(STACK_ALIGNMENT));
// ... and on the link lying inside the header.
const _: () = assert!(LINK >= core::mem::size_of::<usize>() && LINK <= STACK_HEADER_SIZE);

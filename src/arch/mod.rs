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
//! | `shadow_stack_active()`, `FOLLOWS_SHADOW_STACK`, `shadow_stack_unsupported()`, `set_shadow_stack(base, context, shadow)` | hardware shadow stacks (x86-64, AArch64; defaults below for the others) |
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
//! Adding a CPU (or ABI) takes, all in all:
//! - a file here implementing the table above, opening with a drawing of its
//!   stack layout and registers, and a row in `select_arch!` below;
//! - its callee-saved register check, `tests/registers/<cpu>.rs`, and a
//!   line in `tests/registers.rs`;
//! - how a signal handler reads and redirects its registers,
//!   `tests/trap/<cpu>.rs`, and a line in `tests/trap.rs`;
//! - a row in `ci/targets` (its toolchain, linker and runner), and a group
//!   in `ci/setup.sh` if nothing there installs it yet;
//! - a row in the README's *Support* table.
//!
//! Under Miri, `miri.rs` replaces them all: coroutines run on threads of
//! their own, with no asm (see that file).

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

pub(crate) use crate::abi::Word;
use crate::abi::{StackCallFn, StackPointer};

/// One `imp` module per row; a target that matches no row stops the build
/// with a message that lists the supported CPUs.
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
        #[cfg(not(any(miri, $($cond),*)))]
        compile_error!(concat!(
            "stackswitch has no context switch for this target. Supported: ",
            $(stringify!($cond), " (", $file, "); ",)*
            "see the README's Support table."
        ));
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
pub(crate) use imp::{
    current_stack_pointer, exit, init_stack, parent_stack_top, resume, suspend, trap_regs, LINK,
    MIN_STACK_SIZE, STACK_ALIGNMENT, STACK_HEADER_SIZE,
};
#[cfg(all(windows, not(miri)))]
pub(crate) use imp::{current_teb_fields, set_current_stack_limit, teb_fields_slot};

// Hardware shadow stacks (return addresses kept where ordinary stores
// cannot reach, checked by every return): an arch that knows of them says
// whether the thread runs with one, and whether its switch can follow it
// (moving between per-coroutine shadow stacks that `set_shadow_stack` hands
// to a fresh context). Where it cannot, creating a coroutine on such a
// thread panics with what to do instead of crashing at the first switch.
#[cfg(any(
    all(target_arch = "x86_64", not(windows), not(miri)),
    all(target_arch = "aarch64", not(windows), not(miri))
))]
pub(crate) use imp::{shadow_stack_active, shadow_stack_unsupported, FOLLOWS_SHADOW_STACK};

/// Whether the thread runs with a hardware shadow stack: never, as far as
/// this target's switch knows.
#[cfg(not(any(
    all(target_arch = "x86_64", not(windows), not(miri)),
    all(target_arch = "aarch64", not(windows), not(miri))
)))]
#[inline(always)]
pub(crate) fn shadow_stack_active() -> bool {
    false
}

/// Never called on this target (see `shadow_stack_active`).
#[cfg(not(any(
    all(target_arch = "x86_64", not(windows), not(miri)),
    all(target_arch = "aarch64", not(windows), not(miri))
)))]
#[cold]
pub(crate) fn shadow_stack_unsupported() -> ! {
    unreachable!()
}

#[cfg(not(any(
    all(target_arch = "x86_64", not(windows), not(miri)),
    all(target_arch = "aarch64", not(windows), not(miri))
)))]
pub(crate) const FOLLOWS_SHADOW_STACK: bool = false;

#[cfg(all(target_arch = "aarch64", not(windows), not(miri)))]
pub(crate) use imp::set_shadow_stack;

/// Gives a fresh context its shadow stack: nothing to do where the switch
/// follows none.
///
/// # Safety
/// As for the arch files that implement it.
#[cfg(not(all(target_arch = "aarch64", not(windows), not(miri))))]
#[inline(always)]
pub(crate) unsafe fn set_shadow_stack(_base: StackPointer, _context: StackPointer, _shadow: usize) {
}

/// Calls `f(data)` with the stack pointer at `top`, linked so that
/// unwinders continue on the stack it was called from.
///
/// # Safety
/// `top` must be aligned to `STACK_ALIGNMENT`, with enough stack below it
/// for `f`, and laid out as the arch's `stack_call_trampoline` documents
/// (on Windows, the word at `top` points at the stack's TEB fields;
/// `stack::StackCall` and `stack::parent_call_top` arrange that).
///
/// Where the switch follows shadow stacks, a non-zero `shadow` is the top of
/// the shadow stack that goes with `top`'s stack (as from
/// `Stack::shadow_stack`), which `f` then runs on.
#[inline]
pub(crate) unsafe fn call_on_stack(
    data: *mut u8,
    top: StackPointer,
    f: StackCallFn,
    shadow: usize,
) {
    // SAFETY: forwarded to the caller.
    #[cfg(all(stackswitch_gcs, target_arch = "aarch64", not(windows)))]
    unsafe {
        imp::stack_call_trampoline(data, top.get(), f, shadow)
    }
    #[cfg(not(all(stackswitch_gcs, target_arch = "aarch64", not(windows))))]
    {
        let _ = shadow;
        // SAFETY: forwarded to the caller.
        unsafe { imp::stack_call_trampoline(data, top.get(), f) }
    }
}

// The generic code relies on the header keeping everything below it aligned.
const _: () = assert!(STACK_HEADER_SIZE.is_multiple_of(STACK_ALIGNMENT));
// ... and on the link lying inside the header.
const _: () = assert!(LINK >= core::mem::size_of::<usize>() && LINK <= STACK_HEADER_SIZE);

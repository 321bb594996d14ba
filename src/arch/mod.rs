//! The context-switch layer: one file per CPU (and ABI), one interface.
//!
//! Everything above this module is architecture-neutral. It sees a coroutine
//! as an opaque *context* (the stack pointer where its suspended state was
//! saved) and a *link* (a word near the top of the coroutine stack through
//! which the coroutine finds its parent).
//!
//! This file is the interface: the functions and constants below, each
//! documented here and nowhere else, forward to the file of the CPU being
//! built (`imp`), whose items are its private implementation. A CPU file
//! holds what is truly its own: the asm, the drawing of its stack layout,
//! its notes. For a few items a default here serves most CPUs; a file
//! defines its own only where it differs (see `chosen` at the end).
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
//! A switch is asymmetric: `resume` enters the coroutine with a call and
//! the coroutine comes back with a return to it, so the CPU's
//! return-address predictor stays in step. For the same reason the first
//! entry calls `entry` *by hand*, where the CPU has such a predictor (the
//! return address set or pushed, then a plain jump): a real call would push
//! the predictor, and since the entry never returns, `exit`'s return would
//! then mispredict, and the parent's next return too.
//!
//! Adding a CPU (or ABI) takes, all in all:
//! - a file here, opening with a drawing of its stack layout and registers,
//!   that defines as `pub(super)` items, with the signatures of the items
//!   below:
//!   - the constants `STACK_ALIGNMENT`, `MIN_STACK_SIZE`,
//!     `STACK_HEADER_SIZE` and `LINK`;
//!   - `TrapHandlerRegs`, through `trap_handler_regs!`;
//!   - the functions `init_stack`, `resume` (its asm through `resume_asm!`),
//!     `suspend`, `exit`, `trap_regs`, `current_stack_pointer` (usually
//!     through `current_stack_pointer_by!`) and `stack_call_trampoline`
//!     (see [`call_on_stack`]);
//!   - whatever it defines in place of a default, with its target added to
//!     that item's row in `chosen` (at the end of this file);
//!   - in every module of it that holds naked functions, one
//!     `sanitizer_unwind_anchor!()`;
//!   - on Windows, `teb()` (the TEB's address, which `windows.rs` reads)
//!     and the swap of the TEB fields in its switch;
//!
//!   and a row in `select_arch!` below;
//! - its callee-saved register check, `tests/registers/<cpu>.rs`, and a
//!   line in `tests/registers.rs`;
//! - how a signal handler reads and redirects its registers,
//!   `tests/trap/<cpu>.rs`, and a line in `tests/trap/unix.rs`;
//! - a row in `ci/targets` (its toolchain, linker and runner), and a group
//!   in `ci/setup.sh` if nothing there installs it yet;
//! - a row in the README's *Support* table.
//!
//! Under Miri, `miri.rs` replaces them all: coroutines run on threads of
//! their own, with no asm (see that file).

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

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

/// Defines `TrapHandlerRegs`, the public type of what [`trap_regs`]
/// returns, with the fields of the CPU (registers of the interrupted
/// context, named after them) and, optionally, doc lines of its own after
/// the shared ones.
macro_rules! trap_handler_regs {
    ($(#[doc = $doc:literal])* pub struct TrapHandlerRegs { $($fields:tt)* }) => {
        /// Registers to write into the interrupted context when redirecting
        /// a trapped coroutine (see [`CoroutineTrapHandler::setup_trap_handler`]).
        ///
        $(#[doc = $doc])*
        ///
        /// [`CoroutineTrapHandler::setup_trap_handler`]: crate::trap::CoroutineTrapHandler::setup_trap_handler
        #[derive(Clone, Copy, Debug)]
        #[allow(missing_docs)]
        pub struct TrapHandlerRegs {
            $($fields)*
        }
    };
}

/// Defines the CPU's `current_stack_pointer` (see [`current_stack_pointer`])
/// as one register copy: `$copy` is the instruction, `{}` its destination.
#[allow(unused_macros)] // Miri defines its own.
macro_rules! current_stack_pointer_by {
    ($copy:literal) => {
        #[inline(always)]
        pub(super) fn current_stack_pointer() -> usize {
            let sp: usize;
            // SAFETY: copies a register; touches no memory, stack or flags.
            unsafe {
                core::arch::asm!($copy, out(reg) sp, options(nomem, nostack, preserves_flags))
            };
            sp
        }
    };
}

/// With the `sanitizer` feature, an ordinary function in the module that
/// invokes this, kept by a `#[used]` static; nothing calls it, so it costs
/// nothing at run time. Every module that holds naked functions invokes it
/// once, so that their codegen unit (their module's: a nested module, this
/// one included, may land in a unit of its own) holds an ordinary function.
///
/// Why: LLVM writes the CFI of naked functions (module asm) to `.eh_frame`
/// only if some function of their codegen unit needs an unwind table. With
/// only a sanitizer's module constructor, which does not, it goes to
/// `.debug_frame` alone, where debuggers find it but `_Unwind_Backtrace`
/// (`std::backtrace`, the `backtrace` crate) does not: backtraces under
/// ASan stop at a coroutine's root frame (`tests/backtrace.rs` under
/// `ci/sanitizers.sh`). Without a sanitizer every function of the unit has
/// an unwind table, and a unit without functions gets `.eh_frame` too, so
/// only the feature needs the anchor; a program built with a sanitizer but
/// without the feature may see backtraces stop at the root frame.
#[allow(unused_macros)] // Not needed by the Windows files (no sanitizer there).
macro_rules! sanitizer_unwind_anchor {
    () => {
        /// See `sanitizer_unwind_anchor!` in `arch/mod.rs`.
        #[cfg(feature = "sanitizer")]
        fn sanitizer_unwind_anchor() {}
        #[cfg(feature = "sanitizer")]
        #[used]
        static SANITIZER_UNWIND_ANCHOR: fn() = sanitizer_unwind_anchor;
    };
}

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

// What the Windows CPUs share (the TEB), for their files and the stack
// module; its macros are used by their switch asm, so it comes first.
#[cfg(all(windows, not(miri)))]
#[macro_use]
mod windows;

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

/// Alignment the ABI requires of the stack pointer at a call.
pub(crate) const STACK_ALIGNMENT: usize = imp::STACK_ALIGNMENT;
/// Smallest stack on which a coroutine can run and be unwound (it depends
/// on the unwinder's appetite).
pub(crate) const MIN_STACK_SIZE: usize = imp::MIN_STACK_SIZE;
/// Bytes the arch reserves at the top of every coroutine stack (the link
/// and a frame record, and whatever else the CPU keeps per stack); a
/// multiple of `STACK_ALIGNMENT`.
pub(crate) const STACK_HEADER_SIZE: usize = imp::STACK_HEADER_SIZE;
/// Offset of the link word below the stack base (inside the header), so
/// that a `Yielder` can find its stack's top.
pub(crate) const LINK: usize = imp::LINK;

pub use imp::TrapHandlerRegs;

// Windows arches also keep the TEB fields of a stack in its header, where
// the stack module's hooks read and write them.
#[cfg(all(windows, not(miri)))]
pub(crate) use windows::{current_teb_fields, set_current_stack_limit, teb_fields_slot};

/// Lays out a fresh coroutine below `sp`, on the stack whose base is
/// `base`, so that its first [`resume`] calls `entry(arg, link, data)` on
/// that stack (`link`: the address of the link word), in a root frame whose
/// unwind information reads the link. Returns the fresh context.
///
/// # Safety
/// `sp` must be aligned to [`STACK_ALIGNMENT`], at most
/// `base - STACK_HEADER_SIZE`, with room below it on the stack described by
/// `base` for the arch's fresh context (a few words; the arch file says how
/// many). `data` must be `sp`: the closure it points at lies right above
/// the fresh context, where some arches find it. The header is written too.
#[inline(always)]
pub(crate) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: forwarded to the caller.
    unsafe { imp::init_stack(base, sp, entry, data) }
}

/// Switches into the coroutine whose context is `sp`, handing it `arg`.
/// Returns what the coroutine hands back and where it stopped: `(arg, sp)`
/// with its new context when it suspends, `(arg, end)` when it exits.
///
/// # Safety
/// `sp` must be the context of a fresh or suspended coroutine whose stack
/// has base `base`, and this must be its only resumption.
#[inline(always)]
pub(crate) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    // SAFETY: forwarded to the caller.
    unsafe { imp::resume(arg, sp, base) }
}

/// Saves the running coroutine's context and switches back to the parent
/// recorded in the link at `link`, handing it `arg`. Returns what the next
/// [`resume`] hands in.
///
/// # Safety
/// Must run on the coroutine stack whose link is at `link`, with its parent
/// blocked in [`resume`].
#[inline(always)]
pub(crate) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    // SAFETY: forwarded to the caller.
    unsafe { imp::suspend(arg, link) }
}

/// Switches to the parent for the last time, saving nothing: the parent's
/// [`resume`] returns `(arg, end)`.
///
/// # Safety
/// As for [`suspend`]. Nothing live may remain on the coroutine's stack but
/// what `arg` points at (which the parent takes before it switches again),
/// and `end` must be a small number, never a context.
#[inline(always)]
pub(crate) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: forwarded to the caller.
    unsafe { imp::exit(arg, link, end) }
}

/// The stack pointer where this is inlined, read directly: an address of a
/// local would not do, since a sanitizer may keep locals elsewhere (ASan's
/// fake stack).
#[inline(always)]
pub(crate) fn current_stack_pointer() -> usize {
    imp::current_stack_pointer()
}

/// Highest usable address on the parent's stack while it is blocked in
/// [`resume`] (for `on_parent_stack`). The default: below the frame record
/// the switch left on the parent's stack, at the link or (where the link is
/// the parent's stack pointer) `PARENT_FRAME_BELOW_LINK` bytes below it,
/// since the parent is stopped inside an asm block without `nostack` and so
/// keeps nothing below its stack pointer, not even in a red zone; rounded
/// down to [`STACK_ALIGNMENT`].
///
/// # Safety
/// `link` must be the link value of a running coroutine.
#[inline(always)]
pub(crate) unsafe fn parent_stack_top(link: usize) -> StackPointer {
    // SAFETY: forwarded to the caller.
    unsafe { chosen::parent_stack_top(link) }
}

/// Prepares the stack of a trapped coroutine so that, once the returned
/// registers are written into the interrupted context, it calls
/// `handler(data, link)` with its stack pointer just below `sp`, in a frame
/// whose unwind information reads the link as the root frame's does.
///
/// # Safety
/// `sp` must be aligned to [`STACK_ALIGNMENT`], at most
/// `base - STACK_HEADER_SIZE`, with free stack below it, and the link must
/// hold the parent of the coroutine that trapped.
#[inline(always)]
pub(crate) unsafe fn trap_regs(
    base: StackPointer,
    sp: usize,
    handler: TrapEntryFn,
    data: *mut u8,
) -> TrapHandlerRegs {
    // SAFETY: forwarded to the caller.
    unsafe { imp::trap_regs(base, sp, handler, data) }
}

// Hardware shadow stacks (return addresses kept where ordinary stores
// cannot reach, checked by every return): an arch that knows of them says
// whether the thread runs with one, and whether its switch can follow it
// (moving between per-coroutine shadow stacks that `set_shadow_stack` hands
// to a fresh context). Where it cannot, creating a coroutine on such a
// thread panics with what to do instead of crashing at the first switch.
// The defaults know of none.

/// Whether the thread runs with a hardware shadow stack (by default: never,
/// as far as the switch knows).
#[inline(always)]
pub(crate) fn shadow_stack_active() -> bool {
    chosen::shadow_stack_active()
}

/// Whether the switch follows hardware shadow stacks (see
/// [`set_shadow_stack`]).
pub(crate) const FOLLOWS_SHADOW_STACK: bool = chosen::FOLLOWS_SHADOW_STACK;

/// The panic of a coroutine creation on a thread with a shadow stack that
/// the switch cannot follow (by default never called: see
/// [`shadow_stack_active`]).
#[inline(always)]
#[track_caller]
pub(crate) fn shadow_stack_unsupported() -> ! {
    chosen::shadow_stack_unsupported()
}

/// Gives a fresh context the shadow stack whose top is `shadow` (0: none);
/// by default nothing to do.
///
/// # Safety
/// `context` must be what [`init_stack`] returned for the stack whose base
/// is `base`; a non-zero `shadow` must be the top of a shadow stack made
/// for the switch (as from `Stack::shadow_stack`).
#[inline(always)]
pub(crate) unsafe fn set_shadow_stack(base: StackPointer, context: StackPointer, shadow: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { chosen::set_shadow_stack(base, context, shadow) }
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

/// For each item with a default in [`defaults`]: the arch file's own on the
/// targets listed with it (whose files define it), the default elsewhere.
mod chosen {
    macro_rules! own_or_default {
        ($($own:meta => $($item:ident),+;)*) => {$($(
            #[cfg($own)]
            pub(super) use super::imp::$item;
            #[cfg(not($own))]
            pub(super) use super::defaults::$item;
        )+)*};
    }

    own_or_default! {
        miri => parent_stack_top;
        all(
            not(miri),
            any(
                windows,
                target_arch = "riscv32",
                target_arch = "riscv64",
                target_arch = "loongarch64",
            ),
        ) => PARENT_FRAME_BELOW_LINK;
        all(not(miri), not(windows), any(target_arch = "x86_64", target_arch = "aarch64"))
            => shadow_stack_active, shadow_stack_unsupported, FOLLOWS_SHADOW_STACK;
        all(not(miri), not(windows), target_arch = "aarch64") => set_shadow_stack;
    }
}

/// The defaults (documented with the functions above that forward to them).
#[allow(dead_code)] // Each is unused on the targets whose file has its own.
mod defaults {
    use super::{chosen, STACK_ALIGNMENT};
    use crate::abi::StackPointer;

    /// # Safety
    /// See [`super::parent_stack_top`].
    #[inline]
    pub(super) unsafe fn parent_stack_top(link: usize) -> StackPointer {
        let top = (link - chosen::PARENT_FRAME_BELOW_LINK) & !(STACK_ALIGNMENT - 1);
        // SAFETY: a stack address is never near zero.
        unsafe { StackPointer::new_unchecked(top) }
    }

    /// The link points at the parent's frame record itself.
    pub(super) const PARENT_FRAME_BELOW_LINK: usize = 0;

    #[inline(always)]
    pub(super) fn shadow_stack_active() -> bool {
        false
    }

    pub(super) const FOLLOWS_SHADOW_STACK: bool = false;

    #[cold]
    pub(super) fn shadow_stack_unsupported() -> ! {
        unreachable!()
    }

    /// # Safety
    /// See [`super::set_shadow_stack`].
    #[inline(always)]
    pub(super) unsafe fn set_shadow_stack(
        _base: StackPointer,
        _context: StackPointer,
        _shadow: usize,
    ) {
    }
}

// The generic code relies on the header keeping everything below it aligned.
const _: () = assert!(STACK_HEADER_SIZE.is_multiple_of(STACK_ALIGNMENT));
// ... and on the link lying inside the header.
const _: () = assert!(LINK >= core::mem::size_of::<usize>() && LINK <= STACK_HEADER_SIZE);

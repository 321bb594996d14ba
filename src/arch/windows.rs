//! What every Windows arch shares: the Thread Environment Block (TEB) fields
//! that describe the running stack, and the copy of them that a coroutine
//! stack keeps in its header.
//!
//! Besides registers, a Windows thread has per-stack state in its TEB:
//! StackBase and StackLimit (of NT_TIB, which opens the TEB),
//! DeallocationStack and GuaranteedStackBytes (32 bits). The OS reads them
//! to grow a stack through its guard page, to raise STATUS_STACK_OVERFLOW,
//! and to check that exception frames lie on the current stack. Every switch
//! swaps these four fields with the copy kept at the bottom of the
//! coroutine's header (`StackTebFields` order, `STACK_HEADER_SIZE` below
//! the base): while the coroutine runs the header holds the parent's values,
//! while it is suspended (or done) its own. NT_TIB.ExceptionList is swapped
//! too, for reasons each CPU file gives.
//!
//! The offsets differ between the 32- and the 64-bit TEB, not between CPUs
//! of one width; they are written once, in `teb_offset!`, which the CPU
//! files' switch asm reads too. What is per CPU: where the TEB is (the CPU
//! file's `teb()`, whose asm is not `pure`: a coroutine may be resumed on
//! another thread, so a TEB address must not be reused across a switch),
//! and the asm that swaps the fields.
//!
//! Declared in `arch/mod.rs` for every Windows CPU (`#[macro_use]`, before
//! the CPU file, whose switch asm uses `teb_offset!`).

use crate::abi::{EntryFn, StackPointer, StackTebFields};

// A panic unwinding straight through the switch would leave the TEB
// describing the coroutine's stack; panics cross as values here instead.
#[cfg(feature = "asm-unwind")]
compile_error!("the `asm-unwind` feature is not supported on Windows; use `unwind`");

/// Enough to run and unwind a coroutine: raising an SEH exception puts several CONTEXT records on the stack (8-12 KiB).
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;

/// Offset of a field in the TEB of this pointer width, as an integer
/// literal, for Rust and asm (`concat!` spells it out in decimal). `SelfTeb`
/// is NT_TIB.Self, the TEB's own address.
#[cfg(target_pointer_width = "64")]
#[rustfmt::skip]
macro_rules! teb_offset {
    (ExceptionList) => { 0x0 };
    (StackBase) => { 0x08 };
    (StackLimit) => { 0x10 };
    (SelfTeb) => { 0x30 };
    (DeallocationStack) => { 0x1478 };
    (GuaranteedStackBytes) => { 0x1748 };
}
#[cfg(target_pointer_width = "32")]
#[rustfmt::skip]
macro_rules! teb_offset {
    (ExceptionList) => { 0x0 };
    (StackBase) => { 0x04 };
    (StackLimit) => { 0x08 };
    (SelfTeb) => { 0x18 };
    (DeallocationStack) => { 0xE0C };
    (GuaranteedStackBytes) => { 0xF78 };
}

/// The current thread's TEB stack fields (those of the stack it runs on).
#[inline]
pub(crate) fn current_teb_fields() -> StackTebFields {
    let teb = super::imp::teb();
    // SAFETY: the thread's own TEB is live while it runs, and these are
    // its fields (volatile: the OS changes them behind the code's back).
    unsafe {
        let word = |offset: usize| ((teb + offset) as *const usize).read_volatile();
        StackTebFields {
            StackBase: word(teb_offset!(StackBase)),
            StackLimit: word(teb_offset!(StackLimit)),
            DeallocationStack: word(teb_offset!(DeallocationStack)),
            GuaranteedStackBytes: ((teb + teb_offset!(GuaranteedStackBytes)) as *const u32)
                .read_volatile() as usize,
        }
    }
}

/// Sets the current thread's TEB StackLimit.
///
/// # Safety
/// `limit` must be the lowest committed address of the stack the thread
/// runs on, above its guard page.
#[inline]
pub(crate) unsafe fn set_current_stack_limit(limit: usize) {
    let field = super::imp::teb() + teb_offset!(StackLimit);
    // SAFETY: forwarded from the caller; writes the thread's own TEB.
    unsafe { (field as *mut usize).write_volatile(limit) }
}

/// Writes the first context of a fresh coroutine, the same three words on
/// every Windows CPU, 32 bytes below `sp`: the address `resume` calls
/// (`start`), then the entry function and its data, which `start` reads.
/// Returns that context.
///
/// # Safety
/// The 32 bytes below `sp` must be writable memory of the coroutine's
/// stack.
#[inline(always)]
pub(super) unsafe fn fresh_context(
    sp: usize,
    start: unsafe extern "C" fn(),
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    let fresh = sp - 32;
    let words = fresh as *mut usize;
    // SAFETY: forwarded from the caller; a stack address is never zero.
    unsafe {
        *words.add(2) = data as usize;
        *words.add(1) = entry as usize;
        *words = start as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// Address of the saved TEB fields in the header of the stack with `base`:
/// the bottom of the header in every Windows arch.
#[inline]
pub(crate) fn teb_fields_slot(base: StackPointer) -> *mut StackTebFields {
    (base.get() - super::STACK_HEADER_SIZE) as *mut StackTebFields
}

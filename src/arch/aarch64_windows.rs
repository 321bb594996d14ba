//! AArch64 Windows (ARM64 ABI: AAPCS64 with x18 reserved for the TEB).
//!
//! Status: this file builds (aarch64-pc-windows-msvc) but has never run:
//! there is no ARM64 Windows (or Wine) runner here. The scheme is the one of
//! `x86_64_windows.rs`, which is tested under Wine.
//!
//! Registers a callee must preserve: x19-x28, x29 (fp), sp and the low 64
//! bits of v8-v15; x18 always points at the TEB and is never touched.
//! x20-x28 and v8-v15 are declared as clobbered by the switch asm; LLVM
//! reserves x19 (its base pointer) and x29, so those are saved by hand; lr
//! (x30) is clobbered by the `blr`.
//!
//! The 64-bit TEB layout is shared with x64: ExceptionList [x18], StackBase
//! [x18 + 0x08], StackLimit [x18 + 0x10], DeallocationStack
//! [x18 + 0x1478], GuaranteedStackBytes [x18 + 0x1748] (32 bits). Every
//! switch swaps them with the copy in the coroutine's header (the parent's
//! while the coroutine runs, its own otherwise); ExceptionList is swapped
//! for Wine's sake, as on x64.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -8       | Pc = parent_landing+8  |  }  a machine frame (MSFT_OP_MACHINE_FRAME:
//!   -16      | Sp = link              |  }  pc = [sp + 8], sp = [sp]); x29 of the
//!            +------------------------+     root frame points here
//!   -24      | ExceptionList          |
//!   -32      | (padding)              |
//!   -40      | GuaranteedStackBytes   |  }
//!   -48      | DeallocationStack      |  }  TEB fields (StackTebFields)
//!   -56      | StackLimit             |  }
//!   -64      | StackBase              |  }
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |
//!            +------------------------+
//!            | (pad) | data | entry   |
//!  fresh sp  | coroutine_start        |  (`resume` branches through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the address of a frame record the
//! switch left on the parent's stack (laid out like the frame of
//! `parent_landing`, whose prologue is `stp x29, x30, [sp, #-32]!;
//! str x19, [sp, #16]`):
//!
//! ```text
//!  parent's sp at the `resume` asm ──►  +----------------+
//!                                       | link address   |  (for on_parent_stack)
//!                                       | parent x19     |
//!                                       | return address |  (lr of the blr)
//!                                link ─►| parent x29     |
//!                                       +----------------+
//! ```
//!
//! The root frame's unwind codes (set_fp: sp = x29 = the machine frame; then
//! the machine frame) make SEH unwinders continue at `parent_landing` with
//! sp = link, whose codes restore x19, x29 and lr and return into the
//! parent.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp   ──►  resume address | coroutine x19 | coroutine x29 | (pad) | (its frames…)
//! ```
//!
//! `resume` enters with `blr` and the coroutine leaves with `ret`, so the
//! return-address predictor stays in step.

// A panic unwinding straight through the switch would leave the TEB
// describing the coroutine's stack; panics cross as values here instead.
#[cfg(feature = "asm-unwind")]
compile_error!("the `asm-unwind` feature is not supported on Windows; use `unwind`");

use core::arch::{asm, naked_asm};

use super::Word;
use crate::abi::{StackPointer, StackTebFields};
use crate::abi::{EntryFn, StackCallFn, TrapEntryFn};

pub const STACK_ALIGNMENT: usize = 16;
pub const STACK_HEADER_SIZE: usize = 64;
/// Enough to run and unwind a coroutine: raising an SEH exception puts several CONTEXT records on the stack (8-12 KiB).
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Registers to write into the interrupted context when redirecting a trapped
/// coroutine (see [`CoroutineTrapHandler::setup_trap_handler`]). Same fields
/// as on other AArch64 systems.
///
/// [`CoroutineTrapHandler::setup_trap_handler`]: crate::trap::CoroutineTrapHandler::setup_trap_handler
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub struct TrapHandlerRegs {
    pub pc: u64,
    pub sp: u64,
    pub x0: u64,
    pub x1: u64,
    pub x29: u64,
    pub lr: u64,
}

/// Offset of the link word (the machine frame) below the stack base.
pub const LINK: usize = 16;
/// Offset of the saved TEB fields below the base.
const TEB_FIELDS: usize = 64;

/// Swaps the TEB stack fields with the four words at `[$p, #$o]` ..
/// (offsets `$o` .. `$o + 24`, `StackTebFields` layout), using x3 and x4.
macro_rules! swap_teb {
    ($p:literal, $o0:literal, $o1:literal, $o2:literal, $o3:literal) => {
        concat!(
            "ldr x3, [x18, #0x08]\n",
            "ldr x4, [", $p, ", #", $o0, "]\n",
            "str x4, [x18, #0x08]\n",
            "str x3, [", $p, ", #", $o0, "]\n",
            "ldr x3, [x18, #0x10]\n",
            "ldr x4, [", $p, ", #", $o1, "]\n",
            "str x4, [x18, #0x10]\n",
            "str x3, [", $p, ", #", $o1, "]\n",
            "ldr x3, [x18, #0x1478]\n",
            "ldr x4, [", $p, ", #", $o2, "]\n",
            "str x4, [x18, #0x1478]\n",
            "str x3, [", $p, ", #", $o2, "]\n",
            "ldr w3, [x18, #0x1748]\n",
            "ldr w4, [", $p, ", #", $o3, "]\n",
            "str w4, [x18, #0x1748]\n",
            "str w3, [", $p, ", #", $o3, "]\n",
        )
    };
}

/// Swaps all TEB fields with the header of the coroutine whose link address
/// is in x2 (TEB fields at x2 - 48, ExceptionList at x2 - 8).
macro_rules! swap_header {
    () => {
        concat!(
            swap_teb!("x2", "-48", "-40", "-32", "-24"),
            "ldr x3, [x18]\n",
            "ldur x4, [x2, #-8]\n",
            "str x4, [x18]\n",
            "stur x3, [x2, #-8]\n",
        )
    };
}

/// Never runs: its unwind codes describe the frame record that entering a
/// coroutine leaves on the parent's stack (see the module docs).
#[unsafe(naked)]
unsafe extern "C" fn parent_landing() {
    naked_asm!(
        ".seh_proc {name}",
        "stp x29, x30, [sp, #-32]!",
        ".seh_save_fplr_x 32",
        "str x19, [sp, #16]",
        ".seh_save_reg x19, 16",
        ".seh_endprologue",
        // The landing address, LANDING_OFFSET bytes in (two instructions).
        "brk #1",
        ".seh_endproc",
        name = sym parent_landing,
    )
}

/// Offset of the landing address in `parent_landing`.
const LANDING_OFFSET: usize = 8;

/// First code to run on a fresh coroutine. Entered by `resume`'s `blr`,
/// still on the parent's stack, with x0 = argument, x1 = fresh sp,
/// x2 = link address.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        ".seh_proc {name}",
        // Unwind codes, undone bottom-up: sp = x29 (the machine frame in the
        // header), then the machine frame gives the parent's pc and sp.
        ".seh_pushframe",
        // Build the parent's frame record and publish it through the link.
        "stp x29, x30, [sp, #-32]!",
        "stp x19, x2, [sp, #16]",
        "mov x3, sp",
        "str x3, [x2]",
        "mov x29, x2",
        ".seh_set_fp",
        ".seh_endprologue",
        swap_header!(),
        // Move onto the coroutine stack (fresh sp, 16-aligned) and call
        // entry(arg = x0, link = x1, data = x2).
        // The call is made by hand (lr set, then `br` through x16), which
        // leaves the return-address predictor alone: see `aarch64.rs`.
        "ldr x16, [x1, #8]",
        "ldr x4, [x1, #16]",
        "mov sp, x1",
        "mov x1, x2",
        "mov x2, x4",
        "adr x30, 2f",
        "br x16",
        // The entry function leaves through `exit` and never returns.
        "2:",
        "brk #1",
        ".seh_endproc",
        name = sym coroutine_start,
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): sp is 16-aligned
/// with the handler's address at [sp], x29 = the header's machine frame,
/// x0 = data, x1 = link address.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        ".seh_proc {name}",
        ".seh_pushframe",
        ".seh_set_fp",
        ".seh_endprologue",
        "ldr x3, [sp]",
        "blr x3",
        "brk #1",
        ".seh_endproc",
        name = sym trap_start,
    )
}

/// Calls `f(data)` on the stack topped at `top` (x1, 16-aligned), whose
/// word at `top` points at the TEB fields of that stack; they are swapped
/// in for the call and back out after it.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".seh_proc {name}",
        "stp x29, x30, [sp, #-32]!",
        ".seh_save_fplr_x 32",
        "str x19, [sp, #16]",
        ".seh_save_reg x19, 16",
        "mov x29, sp",
        ".seh_set_fp",
        ".seh_endprologue",
        // x19 (preserved by f) keeps the TEB block across the call.
        "ldr x19, [x1]",
        swap_teb!("x19", "0", "8", "16", "24"),
        // f runs with an empty ExceptionList; the caller's is kept in the
        // free word of our frame.
        "ldr x3, [x18]",
        "str x3, [x29, #24]",
        "mov x3, #-1",
        "str x3, [x18]",
        "mov sp, x1",
        "blr x2",
        "ldr x3, [x29, #24]",
        "str x3, [x18]",
        swap_teb!("x19", "0", "8", "16", "24"),
        ".seh_startepilogue",
        "mov sp, x29",
        ".seh_set_fp",
        "ldr x19, [sp, #16]",
        ".seh_save_reg x19, 16",
        "ldp x29, x30, [sp], #32",
        ".seh_save_fplr_x 32",
        ".seh_endepilogue",
        "ret",
        ".seh_endproc",
        name = sym stack_call_trampoline,
    )
}

/// The current thread's TEB stack fields (those of the stack it runs on).
#[inline]
pub fn current_teb_fields() -> StackTebFields {
    let (base, limit, deallocation, guaranteed): (usize, usize, usize, u32);
    // SAFETY: reads the current thread's own TEB (x18).
    unsafe {
        asm!(
            "ldr {base}, [x18, #0x08]",
            "ldr {limit}, [x18, #0x10]",
            "ldr {deallocation}, [x18, #0x1478]",
            "ldr {guaranteed:w}, [x18, #0x1748]",
            base = out(reg) base,
            limit = out(reg) limit,
            deallocation = out(reg) deallocation,
            guaranteed = out(reg) guaranteed,
            options(nostack, readonly, preserves_flags),
        );
    }
    StackTebFields {
        StackBase: base,
        StackLimit: limit,
        DeallocationStack: deallocation,
        GuaranteedStackBytes: guaranteed as usize,
    }
}

/// Sets the current thread's TEB StackLimit.
///
/// # Safety
/// `limit` must be the lowest committed address of the stack the thread
/// runs on, above its guard page.
#[inline]
pub unsafe fn set_current_stack_limit(limit: usize) {
    // SAFETY: forwarded from the caller; writes the thread's own TEB.
    unsafe {
        asm!(
            "str {}, [x18, #0x10]",
            in(reg) limit,
            options(nostack, preserves_flags),
        );
    }
}

/// Address of the saved TEB fields in the header of the stack with `base`.
#[inline]
pub fn teb_fields_slot(base: StackPointer) -> *mut StackTebFields {
    (base.get() - TEB_FIELDS) as *mut StackTebFields
}

/// # Safety
/// `sp` must be 16-aligned, at most `base - STACK_HEADER_SIZE`, with at least
/// 32 writable bytes below it on the stack described by `base`.
#[inline]
pub unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: the caller guarantees the header and the 32 bytes below `sp`
    // are writable memory of this stack.
    unsafe {
        let top = base.get();
        *((top - 8) as *mut usize) = parent_landing as *const () as usize + LANDING_OFFSET;
        *((top - LINK) as *mut usize) = 0;
        *((top - 24) as *mut usize) = usize::MAX;
        let fresh = sp - 32;
        *((fresh + 16) as *mut usize) = data as usize;
        *((fresh + 8) as *mut usize) = entry as usize;
        *(fresh as *mut usize) = coroutine_start as *const () as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// `sp` must be the context of a suspended coroutine whose stack has base
/// `base`, and this must be its only resumption.
#[inline(always)]
pub unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine saves x19 and x29 in the frame record it builds
    // on our stack and restores them before returning; everything else the
    // compiler expects preserved is declared clobbered; it returns to the
    // instruction after `blr` with sp back where it was and the TEB fields
    // swapped back.
    unsafe {
        asm!(
            "ldr x3, [x1]",
            "blr x3",
            inout("x0") arg => ret_arg,
            inout("x1") sp.get() => ret_sp,
            inout("x2") base.get() - LINK => _,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// Must run on the coroutine stack whose link is at `link`, with its parent
/// blocked in `resume`.
#[inline(always)]
pub unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context (resume address, x19, x29) is what the code
    // at label 2 restores, and the parent's frame record is at [link].
    unsafe {
        asm!(
            // Save our context on our stack and hand its address over in x1.
            "sub sp, sp, #32",
            "adr x3, 2f",
            "stp x3, x19, [sp]",
            "str x29, [sp, #16]",
            "mov x1, sp",
            swap_header!(),
            // Return into the parent's `resume`, restoring its x19, x29, lr.
            "ldr x3, [x2]",
            "ldr x19, [x3, #16]",
            "ldp x29, x30, [x3]",
            "add sp, x3, #32",
            "ret",
            // Resumed: on the parent's stack, x2 = link, x1 = our context.
            "2:",
            "stp x29, x30, [sp, #-32]!",
            "stp x19, x2, [sp, #16]",
            "mov x3, sp",
            "str x3, [x2]",
            swap_header!(),
            "ldr x19, [x1, #8]",
            "ldr x29, [x1, #16]",
            "add sp, x1, #32",
            inout("x0") arg => ret_arg,
            inout("x2") link => _,
            out("x1") _,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    ret_arg
}

/// # Safety
/// As for [`suspend`]; the coroutine's stack must hold nothing live.
#[inline(always)]
pub unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: x1 = `end` (a small
    // number, never a context) tells the parent the coroutine has finished;
    // our final TEB fields stay in the header.
    unsafe {
        asm!(
            swap_header!(),
            "ldr x3, [x2]",
            "ldr x19, [x3, #16]",
            "ldp x29, x30, [x3]",
            "add sp, x3, #32",
            "ret",
            in("x0") arg,
            in("x2") link,
            in("x1") end,
            options(noreturn),
        )
    }
}

/// # Safety
/// `link` must be the link value of a running coroutine.
#[inline]
pub unsafe fn parent_stack_top(link: usize) -> StackPointer {
    // Below the parent's frame record the stack is free. For
    // `call_on_stack`, the word at the top points at the parent's TEB
    // fields in the coroutine's header (link address at link + 24).
    // The parent's stack may never have reached that word: it is
    // committed first, as the parent's TEB fields (in the header) say.
    // SAFETY: `link` points at that frame record; the word written is free
    // parent stack.
    unsafe {
        let top = (link - 16) & !(STACK_ALIGNMENT - 1);
        let fields = *((link + 24) as *const usize) + LINK - TEB_FIELDS;
        crate::stack::make_writable_saved(fields as *mut StackTebFields, top);
        *(top as *mut usize) = fields;
        StackPointer::new_unchecked(top)
    }
}

/// The stack pointer (`sp`) where this is inlined, read directly: an
/// address of a local would not do, since a sanitizer may keep locals
/// elsewhere (ASan's fake stack).
#[inline(always)]
pub fn current_stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register; touches no memory, stack or flags.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// # Safety
/// `sp` must be 16-aligned, at most `base - STACK_HEADER_SIZE`, with free
/// stack below it, and the link must hold the parent of the coroutine that
/// trapped.
#[inline]
pub unsafe fn trap_regs(
    base: StackPointer,
    sp: usize,
    handler: TrapEntryFn,
    data: *mut u8,
) -> TrapHandlerRegs {
    let link = base.get() - LINK;
    let new_sp = sp - 16;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe { *(new_sp as *mut usize) = handler as usize };
    TrapHandlerRegs {
        pc: trap_start as *const () as u64,
        sp: new_sp as u64,
        x0: data as u64,
        x1: link as u64,
        x29: link as u64,
        lr: 0,
    }
}

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
//! Every switch swaps the TEB's stack fields (the TEB is at x18, with the
//! 64-bit layout of x64; see `windows.rs`) with the copy kept in the
//! coroutine's header, and NT_TIB.ExceptionList (`[x18]`) for Wine's sake,
//! as on x64.
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
//!                                       | link address   |  (spare, not read)
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

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

pub(super) use super::windows::MIN_STACK_SIZE;

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 64;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub pc: u64,
        pub sp: u64,
        pub x0: u64,
        pub x1: u64,
        pub x29: u64,
        pub lr: u64,
    }
}

/// Offset of the link word (the machine frame) below the stack base.
pub(super) const LINK: usize = 16;
/// The address of the current thread's TEB: x18, which the ABI reserves
/// for it.
#[inline(always)]
pub(super) fn teb() -> usize {
    let teb: usize;
    // SAFETY: copies a register; touches no memory, stack or flags.
    unsafe { asm!("mov {}, x18", out(reg) teb, options(nomem, nostack, preserves_flags)) };
    teb
}

/// Exchanges TEB field `$field` with the word (`x`) or its low half (`w`)
/// at `[$p, #$o]`, using x3 and x4.
macro_rules! swap_field {
    ($r:literal $field:ident, $p:literal, $o:literal) => {
        concat!(
            "ldr ", $r, "3, [x18, #", teb_offset!($field), "]\n",
            "ldr ", $r, "4, [", $p, ", #", $o, "]\n",
            "str ", $r, "4, [x18, #", teb_offset!($field), "]\n",
            "str ", $r, "3, [", $p, ", #", $o, "]\n",
        )
    };
}

/// Swaps the TEB stack fields with the four words at `[$p, #$o]` ..
/// (offsets `$o` .. `$o + 24`, `StackTebFields` layout), using x3 and x4.
macro_rules! swap_teb {
    ($p:literal, $o0:literal, $o1:literal, $o2:literal, $o3:literal) => {
        concat!(
            swap_field!("x" StackBase, $p, $o0),
            swap_field!("x" StackLimit, $p, $o1),
            swap_field!("x" DeallocationStack, $p, $o2),
            swap_field!("w" GuaranteedStackBytes, $p, $o3),
        )
    };
}

// `swap_header` finds the TEB fields (the bottom of the header, see
// `windows.rs`) from the link address.
const _: () = assert!(STACK_HEADER_SIZE - LINK == 48);

/// Swaps all TEB fields with the header of the coroutine whose link address
/// is in x2 (TEB fields at x2 - 48, ExceptionList at x2 - 8).
macro_rules! swap_header {
    () => {
        concat!(
            swap_teb!("x2", "-48", "-40", "-32", "-24"),
            swap_field!("x" ExceptionList, "x2", "-8"),
        )
    };
}

/// Gives the TEB back to the parent blocked in `resume` (link address in
/// x2), keeping ours in the header, and returns into its `resume`,
/// restoring its x19, x29 and lr. Uses x3 and x4.
macro_rules! return_to_parent {
    () => {
        concat!(
            swap_header!(),
            "ldr x3, [x2]\n",
            "ldr x19, [x3, #16]\n",
            "ldp x29, x30, [x3]\n",
            "add sp, x3, #32\n",
            "ret\n",
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
/// with the handler's address at `[sp]`, x29 = the header's machine frame,
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
        concat!("ldr x3, [x18, #", teb_offset!(ExceptionList), "]"),
        "str x3, [x29, #24]",
        "mov x3, #-1",
        concat!("str x3, [x18, #", teb_offset!(ExceptionList), "]"),
        "mov sp, x1",
        "blr x2",
        "ldr x3, [x29, #24]",
        concat!("str x3, [x18, #", teb_offset!(ExceptionList), "]"),
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

/// # Safety
/// See [`super::init_stack`].
#[inline]
pub(super) unsafe fn init_stack(
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
        super::windows::fresh_context(sp, coroutine_start, entry, data)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
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
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
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
            return_to_parent!(),
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
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: x1 = `end` (a small
    // number, never a context) tells the parent the coroutine has finished;
    // our final TEB fields stay in the header.
    unsafe {
        asm!(
            return_to_parent!(),
            in("x0") arg,
            in("x2") link,
            in("x1") end,
            options(noreturn),
        )
    }
}

/// Bytes kept free below the link for `parent_stack_top` (see
/// [`super::parent_stack_top`]): below the parent's frame record, the word
/// where `call_on_stack` finds the address of the stack's TEB fields
/// (rounded to the stack alignment).
pub(super) const PARENT_FRAME_BELOW_LINK: usize = 16;

current_stack_pointer_by!("mov {}, sp");

/// # Safety
/// See [`super::trap_regs`].
#[inline]
pub(super) unsafe fn trap_regs(
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

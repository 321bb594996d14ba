//! LoongArch64, LP64D/LP64S/LP64F ABIs (Linux, bare metal).
//!
//! Registers the ABI asks a callee to preserve: s0-s8 ($r23-$r31), fp
//! ($r22), sp ($r3) and, with a hardware FPU, fs0-fs7 ($f24-$f31, their low
//! 64 bits; LSX/LASX registers overlap the FP ones and are otherwise
//! caller-saved). tp ($r2) holds the thread pointer and $r21 is reserved by
//! the ABI: no function changes them, so a switch has nothing to do for
//! them. s0-s7 and fs0-fs7 are declared as clobbered by the switch asm, so
//! the compiler saves them only in functions that really hold values in
//! them; fp (frame pointer) and s8 (LLVM's base pointer) cannot be asm
//! operands and are saved by hand.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+  ◄── fp of the root frame
//!   -8       | fake return address    |  }  frame record of the root frame
//!   -16      | link                   |  }  (ra at fp-8, caller's fp at fp-16)
//!            +------------------------+ ◄── STACK_HEADER_SIZE (16)
//!            | closure (moved here)   |
//!            +------------------------+ ◄── coroutine's first sp
//!            | pad                    |
//!            | data pointer           |  +16
//!            | entry function         |  +8
//!  fresh sp  | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer `L` as
//! it was at the `resume` asm, and the parent's stack holds a frame record
//! just below it:
//!
//! ```text
//!                   link ──►  L  +----------------+  = CFA of the root frame
//!                                | return address |  L-8   (into `resume`)
//!                                | parent fp      |  L-16
//!                                | parent s8      |  L-24
//!                                | (pad)          |
//!  parent's sp while blocked ──► +----------------+  L-32
//! ```
//!
//! `[L-8]` and `[L-16]` form an ordinary LoongArch frame record whose frame
//! pointer is `L`, so frame-pointer walkers step from the coroutine's root
//! (fp = base) through the fake return address to `L` and on into the
//! parent. DWARF unwinders use the CFA expression `deref(fp - 16)` given to
//! the root frame.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp ──►  resume address | coroutine fp | coroutine s8 | pad | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `jirl $ra, …` (a call: it
//! pushes the return-address stack) and the coroutine leaves with
//! `jr $ra` to the address the call produced, so the return predictor stays
//! in step.
//!
//! DWARF numbers the integer registers $rN as N and the FP ones $fN as
//! 32+N; the CFI below uses the numbers: 1 = ra, 3 = sp, 22 = fp, 31 = s8.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// Enough to run and unwind a coroutine: the unwinder's register context
/// (64 registers) and frames take more than 4 KiB here, as on the other
/// 64-bit CPUs with as many registers (tests/stack_usage.rs measures it).
/// The smallest page is 16 KiB anyway.
pub(super) const MIN_STACK_SIZE: usize = 16384;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub pc: u64,
        pub sp: u64,
        pub a0: u64,
        pub a1: u64,
        pub fp: u64,
        pub ra: u64,
    }
}

pub(super) const LINK: usize = 16;
/// Size of every block a switch saves: three words rounded up to 16 bytes.
const FRAME: usize = 32;

// The switch asm, shared by `resume` and `suspend`, with the callee-saved
// registers the compiler must save around it declared as clobbered (fp and
// s8 are saved by the asm itself; see the module docs).
#[cfg(target_feature = "f")]
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("$s0") _, out("$s1") _, out("$s2") _, out("$s3") _,
            out("$s4") _, out("$s5") _, out("$s6") _, out("$s7") _,
            out("$fs0") _, out("$fs1") _, out("$fs2") _, out("$fs3") _,
            out("$fs4") _, out("$fs5") _, out("$fs6") _, out("$fs7") _,
            clobber_abi("C"),
        )
    };
}
#[cfg(not(target_feature = "f"))]
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("$s0") _, out("$s1") _, out("$s2") _, out("$s3") _,
            out("$s4") _, out("$s5") _, out("$s6") _, out("$s7") _,
            clobber_abi("C"),
        )
    };
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `jirl`
/// with $a0 = argument, $a1 = fresh sp, $a2 = link address, $ra = return
/// address into the parent; $sp is still the parent's (L - 32).
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: the parent's sp before `resume` (L) is
        // sp + 32, its fp/s8 are in the record `resume` just stored, and its
        // return address is still in $ra.
        ".cfi_startproc",
        ".cfi_def_cfa 3, 32",
        ".cfi_offset 22, -16",
        ".cfi_offset 31, -24",
        // Complete the parent's frame record with the return address.
        "st.d $ra, $sp, 24",
        ".cfi_offset 1, -8",
        // fp = base: the root frame record. From here on the parent is
        // described through the link: CFA = [fp - 16]
        // (DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg22 (fp) -16 =
        // 0x86 0x70, DW_OP_deref = 0x06); ra, fp, s8 stay at CFA-8, -16, -24.
        "addi.d $fp, $a2, 16",
        ".cfi_escape 0x0f, 0x03, 0x86, 0x70, 0x06",
        // Take the entry function and its data, move onto the coroutine
        // stack (16-aligned by init_stack) and call entry(arg, link, data).
        "ld.d $t0, $a1, 8",
        "ld.d $t1, $a1, 16",
        "addi.d $sp, $a1, 32",
        "move $a1, $a2",
        "move $a2, $t1",
        // The call is made by hand (ra set, then a plain jump, not a `jirl`
        // linking ra; see arch/mod.rs).
        "la.local $ra, 2f",
        "jirl $zero, $t0, 0",
        // The entry function leaves through `exit` and never returns.
        "2:",
        "break 0",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): $ra = the
/// handler's entry, $sp 16-aligned below the handler's data, fp = base,
/// $a0 = data, $a1 = link.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`:
        // CFA = [fp - 16] (DW_CFA_def_cfa_expression, 3 bytes:
        // DW_OP_breg22 (fp) -16, DW_OP_deref), the parent's ra, fp, s8 at
        // CFA-8, -16, -24.
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x03, 0x86, 0x70, 0x06",
        ".cfi_offset 1, -8",
        ".cfi_offset 22, -16",
        ".cfi_offset 31, -24",
        // Entered by a signal handler's rewrite of the context, not a call:
        // call the handler, whose address was put in $ra.
        "jirl $ra, $ra, 0",
        "break 0",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at $a1 (16-aligned), with fp-based
/// CFI so unwinders continue on the original stack.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        // A normal frame-pointer prologue (ra at fp-8, old fp at fp-16):
        // the CFA follows fp from here.
        "addi.d $sp, $sp, -16",
        ".cfi_def_cfa_offset 16",
        "st.d $ra, $sp, 8",
        "st.d $fp, $sp, 0",
        ".cfi_offset 1, -8",
        ".cfi_offset 22, -16",
        "addi.d $fp, $sp, 16",
        ".cfi_def_cfa 22, 0",
        // Switch stacks and call; $a0 (data) passes straight through.
        "move $sp, $a1",
        "jirl $ra, $a2, 0",
        // Back to the original stack.
        "addi.d $sp, $fp, -16",
        ".cfi_def_cfa 3, 16",
        "ld.d $ra, $sp, 8",
        "ld.d $fp, $sp, 0",
        ".cfi_restore 1",
        ".cfi_restore 22",
        "addi.d $sp, $sp, 16",
        ".cfi_def_cfa_offset 0",
        "jr $ra",
        ".cfi_endproc",
    )
}

/// # Safety
/// See [`super::init_stack`]; the fresh context takes 32 bytes below `sp`.
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
        // Any address inside `coroutine_start` names it for frame-pointer
        // walkers: that of its second instruction.
        *((top - 8) as *mut usize) = coroutine_start as *const () as usize + 4;
        *((top - LINK) as *mut usize) = 0;
        let fresh = sp - FRAME;
        *((fresh + 16) as *mut usize) = data as usize;
        *((fresh + 8) as *mut usize) = entry as usize;
        *(fresh as *mut usize) = coroutine_start as *const () as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine side completes the frame record with $ra, and
    // returns (`suspend` or `exit`) with fp, s8 and sp restored from it and
    // every other preserved register either untouched or declared
    // clobbered here.
    unsafe {
        switch_asm!(
            // Publish our sp as the link, store fp/s8 in a frame record
            // below it (never below sp), and call the resume address saved
            // on the coroutine stack. The other side restores fp, s8 and sp.
            "st.d $sp, $a2, 0",
            "addi.d $sp, $sp, -32",
            "st.d $fp, $sp, 16",
            "st.d $s8, $sp, 8",
            "ld.d $t0, $a1, 0",
            "jirl $ra, $t0, 0",
            inout("$a0") arg => ret_arg,
            inout("$a1") sp.get() => ret_sp,
            inout("$a2") base.get() - LINK => _,
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context (resume address, fp, s8) is what the code
    // at label 2 restores, and the parent's frame record is below [link].
    unsafe {
        switch_asm!(
            // Save our context and hand its address to the parent in $a1.
            "addi.d $sp, $sp, -32",
            "la.local $t0, 2f",
            "st.d $t0, $sp, 0",
            "st.d $fp, $sp, 8",
            "st.d $s8, $sp, 16",
            "move $a1, $sp",
            // Return into the parent's `resume`, restoring its registers and
            // its sp (which is the link value itself).
            "ld.d $t1, $a2, 0",
            "ld.d $ra, $t1, -8",
            "ld.d $fp, $t1, -16",
            "ld.d $s8, $t1, -24",
            "move $sp, $t1",
            "jr $ra",
            // Resumed: $sp is the parent's (link already published by it),
            // $a1 = our context, $ra = return address into the parent.
            // Complete its frame record, restore ourselves.
            "2:",
            "st.d $ra, $sp, 24",
            "ld.d $fp, $a1, 8",
            "ld.d $s8, $a1, 16",
            "addi.d $sp, $a1, 32",
            inout("$a0") arg => ret_arg,
            inout("$a2") link => _,
            out("$a1") _,
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: $a1 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished.
    unsafe {
        asm!(
            "ld.d $t1, $a2, 0",
            "ld.d $ra, $t1, -8",
            "ld.d $fp, $t1, -16",
            "ld.d $s8, $t1, -24",
            "move $sp, $t1",
            "jr $ra",
            in("$a0") arg,
            in("$a2") link,
            in("$a1") end,
            options(noreturn),
        )
    }
}

/// The link is the parent's stack pointer at the switch, and its frame
/// record lies below it (see [`super::parent_stack_top`]).
pub(super) const PARENT_FRAME_BELOW_LINK: usize = FRAME;

current_stack_pointer_by!("move {}, $sp");

/// # Safety
/// See [`super::trap_regs`].
#[inline]
pub(super) unsafe fn trap_regs(
    base: StackPointer,
    sp: usize,
    handler: TrapEntryFn,
    data: *mut u8,
) -> TrapHandlerRegs {
    // Nothing is written: the handler's address travels in $ra, and its
    // data lies at and above sp.
    TrapHandlerRegs {
        pc: trap_start as *const () as u64,
        sp: sp as u64,
        a0: data as u64,
        a1: (base.get() - LINK) as u64,
        fp: base.get() as u64,
        ra: handler as usize as u64,
    }
}

//! RISC-V, standard calling convention (RV64 LP64/LP64D and RV32
//! ILP32/ILP32F; Linux and bare metal).
//!
//! Registers the ABI asks a callee to preserve: s0-s11, sp, and fs0-fs11
//! when the F/D extension is in use. gp and tp are not touched by any
//! function (they hold the global and thread pointers for the whole
//! thread), so a switch has nothing to do for them. s2-s11 and fs0-fs11 are
//! declared as clobbered by the switch asm, so the compiler saves them only
//! in functions that really hold values in them; s0 (frame pointer) and s1
//! (LLVM's base pointer) cannot be asm operands and are saved by hand.
//!
//! `W` is the register size (8 on RV64, 4 on RV32) and `FRAME` = 4·W, the
//! 16-aligned size of every block the switch saves (three words and a pad).
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+  ◄── s0 of the root frame
//!   -W       | fake return address    |  }  frame record of the root frame
//!   -2W      | link                   |  }  (RISC-V layout: ra at fp-W,
//!            | (pad on RV32)          |  }   caller's fp at fp-2W)
//!            +------------------------+ ◄── STACK_HEADER_SIZE (16)
//!            | closure (moved here)   |
//!            +------------------------+ ◄── coroutine's first sp
//!            | pad                    |
//!            | data pointer           |  +2W
//!            | entry function         |  +W
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
//!                                | return address |  L-W   (into `resume`)
//!                                | parent s0      |  L-2W
//!                                | parent s1      |  L-3W
//!                                | (pad)          |
//!  parent's sp while blocked ──► +----------------+  L-FRAME
//! ```
//!
//! `[L-W]` and `[L-2W]` form an ordinary RISC-V frame record whose frame
//! pointer is `L`, so frame-pointer walkers step from the coroutine's root
//! (s0 = base) through the fake return address to `L` and on into the
//! parent. DWARF unwinders use the CFA expression `deref(s0 - 2W)` given to
//! the root frame.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp ──►  resume address | coroutine s0 | coroutine s1 | pad | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `jalr` (a call: it pushes
//! the return-address stack) and the coroutine leaves with `ret` to the
//! address the call produced, so the return predictor stays in step.

use core::arch::{asm, naked_asm};
use core::mem::size_of;

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// Enough to run and unwind a coroutine. On RV64 Linux the first unwind
/// overflows 4 KiB: glibc's unwinder frames are 1-2 KiB each (it tracks 66
/// DWARF registers) and nest several deep. RV32 targets are bare metal,
/// where there is no unwinder and memory is scarce.
pub(super) const MIN_STACK_SIZE: usize = if cfg!(target_pointer_width = "64") { 16 * 1024 } else { 4096 };

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub pc: usize,
        pub ra: usize,
        pub sp: usize,
        pub a0: usize,
        pub a1: usize,
        pub s0: usize,
    }
}

/// Register size in bytes.
const W: usize = size_of::<usize>();
/// Size of every block a switch saves: three words rounded up to 16 bytes.
const FRAME: usize = 4 * W;
pub(super) const LINK: usize = 2 * W;
/// Offsets, from the parent's blocked sp, of its frame record's slots.
const P_RA: usize = FRAME - W;
const P_S0: usize = FRAME - 2 * W;
const P_S1: usize = FRAME - 3 * W;
/// Second byte of `DW_OP_breg8 -LINK` (the SLEB128 offset fits one byte).
const SLEB_MINUS_LINK: u8 = (LINK as u8).wrapping_neg() & 0x7f;

// Word-sized load and store: the only textual difference between RV32 and
// RV64 in the asm below.
#[cfg(target_arch = "riscv64")]
macro_rules! lx {
    () => {
        "ld"
    };
}
#[cfg(target_arch = "riscv64")]
macro_rules! sx {
    () => {
        "sd"
    };
}
#[cfg(target_arch = "riscv32")]
macro_rules! lx {
    () => {
        "lw"
    };
}
#[cfg(target_arch = "riscv32")]
macro_rules! sx {
    () => {
        "sw"
    };
}

// The switch asm, shared by `resume` and `suspend`, with the callee-saved
// registers the compiler must save around it declared as clobbered (s0 and
// s1 are saved by the asm itself; see the module docs).
//
// fs0-fs11 exist only with the F extension. Stable rustc (up to at least
// 1.95) hides `target_feature = "f"`/`"d"` from `cfg` on RISC-V (they were
// unstable features; nightly shows them), so the operating systems whose
// RISC-V targets all use a hard-float ABI are named too. Naming one that had
// no F would fail to compile (fs registers need F), never miscompile. What
// stays uncovered on such a stable rustc: bare-metal F targets
// (riscv64gc-unknown-none-elf, riscv32imafc-unknown-none-elf), which keep fs
// registers safe only when built with a rustc that exposes the feature.
#[cfg(any(
    target_feature = "f",
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "fuchsia",
))]
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
            out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("fs0") _, out("fs1") _, out("fs2") _, out("fs3") _,
            out("fs4") _, out("fs5") _, out("fs6") _, out("fs7") _,
            out("fs8") _, out("fs9") _, out("fs10") _, out("fs11") _,
            clobber_abi("C"),
        )
    };
}
#[cfg(not(any(
    target_feature = "f",
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "fuchsia",
)))]
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
            out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            clobber_abi("C"),
        )
    };
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `jalr`
/// with a0 = argument, a1 = fresh sp, a2 = link address, ra = return
/// address into the parent; sp is still the parent's (L - FRAME).
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: the parent's sp before `resume` (L) is
        // sp + FRAME, its s0/s1 are in the record `resume` just stored, and
        // its return address is still in ra.
        ".cfi_startproc",
        ".cfi_def_cfa sp, {frame}",
        ".cfi_offset s0, -{p2}",
        ".cfi_offset s1, -{p3}",
        // Complete the parent's frame record with the return address.
        concat!(sx!(), " ra, {p_ra}(sp)"),
        ".cfi_offset ra, -{w}",
        // s0 = base: the root frame record. From here on the parent is
        // described through the link: CFA = [s0 - LINK]
        // (DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg8 (s0) -LINK,
        // DW_OP_deref); ra, s0, s1 stay at CFA-W, -2W, -3W.
        "addi s0, a2, {link}",
        ".cfi_escape 0x0f, 0x03, 0x78, {sleb}, 0x06",
        // Take the entry function and its data, move onto the coroutine
        // stack (16-aligned by init_stack) and call entry(arg, link, data).
        // The call is made by hand (ra set, then a plain jump; see
        // arch/mod.rs). The jump goes through t2, since a `jr` through t0
        // (x5, an alternate link register) counts as a return.
        concat!(lx!(), " t2, {w}(a1)"),
        concat!(lx!(), " t1, {w2}(a1)"),
        "addi sp, a1, {frame}",
        "mv a1, a2",
        "mv a2, t1",
        "lla ra, 2f",
        "jr t2",
        // The entry function leaves through `exit` and never returns.
        "2:",
        "unimp",
        ".cfi_endproc",
        frame = const FRAME,
        w = const W,
        w2 = const 2 * W,
        p2 = const 2 * W,
        p3 = const 3 * W,
        p_ra = const P_RA,
        link = const LINK,
        sleb = const SLEB_MINUS_LINK,
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): ra = the handler's
/// entry, sp 16-aligned below the handler's data, s0 = base, a0 = data,
/// a1 = link.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`:
        // CFA = [s0 - LINK] (DW_CFA_def_cfa_expression, 3 bytes:
        // DW_OP_breg8 (s0) -LINK, DW_OP_deref), the parent's ra, s0, s1 at
        // CFA-W, -2W, -3W.
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x03, 0x78, {sleb}, 0x06",
        ".cfi_offset ra, -{w}",
        ".cfi_offset s0, -{p2}",
        ".cfi_offset s1, -{p3}",
        // Entered by a signal handler's rewrite of the context, not a call:
        // call the handler, whose address was put in ra.
        "jalr ra",
        "unimp",
        ".cfi_endproc",
        w = const W,
        p2 = const 2 * W,
        p3 = const 3 * W,
        sleb = const SLEB_MINUS_LINK,
    )
}

/// Calls `f(data)` on the stack topped at a1 (16-aligned), with s0-based
/// CFI so unwinders continue on the original stack.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        // A normal frame-pointer prologue (ra at fp-W, old fp at fp-2W):
        // the CFA follows s0 from here.
        "addi sp, sp, -16",
        ".cfi_def_cfa_offset 16",
        concat!(sx!(), " ra, {o_ra}(sp)"),
        concat!(sx!(), " s0, {o_s0}(sp)"),
        ".cfi_offset ra, -{w}",
        ".cfi_offset s0, -{w2}",
        "addi s0, sp, 16",
        ".cfi_def_cfa s0, 0",
        // Switch stacks and call; a0 (data) passes straight through.
        "mv sp, a1",
        "jalr a2",
        // Back to the original stack.
        "addi sp, s0, -16",
        ".cfi_def_cfa sp, 16",
        concat!(lx!(), " ra, {o_ra}(sp)"),
        concat!(lx!(), " s0, {o_s0}(sp)"),
        ".cfi_restore ra",
        ".cfi_restore s0",
        "addi sp, sp, 16",
        ".cfi_def_cfa_offset 0",
        "ret",
        ".cfi_endproc",
        w = const W,
        w2 = const 2 * W,
        o_ra = const 16 - W,
        o_s0 = const 16 - 2 * W,
    )
}

/// # Safety
/// See [`super::init_stack`]; the fresh context takes `FRAME` bytes below `sp`.
#[inline]
pub(super) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: the caller guarantees the header and the FRAME bytes below `sp`
    // are writable memory of this stack.
    unsafe {
        let top = base.get();
        // Any address inside `coroutine_start` names it for frame-pointer
        // walkers; the first instruction is at least 2 bytes long.
        *((top - W) as *mut usize) = coroutine_start as *const () as usize + 2;
        *((top - LINK) as *mut usize) = 0;
        let fresh = sp - FRAME;
        *((fresh + 2 * W) as *mut usize) = data as usize;
        *((fresh + W) as *mut usize) = entry as usize;
        *(fresh as *mut usize) = coroutine_start as *const () as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine side completes the frame record with ra, and
    // returns (`suspend` or `exit`) with s0, s1 and sp restored from it and
    // every other preserved register either untouched or declared
    // clobbered here.
    unsafe {
        switch_asm!(
            // Publish our sp as the link, store s0/s1 in a frame record
            // below it (never below sp), and call the resume address saved
            // on the coroutine stack. The other side restores s0, s1 and sp.
            concat!(sx!(), " sp, 0(a2)"),
            "addi sp, sp, -{frame}",
            concat!(sx!(), " s0, {p_s0}(sp)"),
            concat!(sx!(), " s1, {p_s1}(sp)"),
            concat!(lx!(), " t0, 0(a1)"),
            "jalr t0",
            frame = const FRAME,
            p_s0 = const P_S0,
            p_s1 = const P_S1,
            inout("a0") arg => ret_arg,
            inout("a1") sp.get() => ret_sp,
            inout("a2") base.get() - LINK => _,
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context (resume address, s0, s1) is what the code
    // at label 2 restores, and the parent's frame record is below [link].
    unsafe {
        switch_asm!(
            // Save our context and hand its address to the parent in a1.
            "addi sp, sp, -{frame}",
            "lla t0, 2f",
            concat!(sx!(), " t0, 0(sp)"),
            concat!(sx!(), " s0, {w}(sp)"),
            concat!(sx!(), " s1, {w2}(sp)"),
            "mv a1, sp",
            // Return into the parent's `resume`, restoring its registers and
            // its sp (which is the link value itself).
            concat!(lx!(), " t1, 0(a2)"),
            concat!(lx!(), " ra, -{w}(t1)"),
            concat!(lx!(), " s0, -{w2}(t1)"),
            concat!(lx!(), " s1, -{w3}(t1)"),
            "mv sp, t1",
            "ret",
            // Resumed: sp is the parent's (link already published by it),
            // a1 = our context, ra = return address into the parent.
            // Complete its frame record, restore ourselves.
            "2:",
            concat!(sx!(), " ra, {p_ra}(sp)"),
            concat!(lx!(), " s0, {w}(a1)"),
            concat!(lx!(), " s1, {w2}(a1)"),
            "addi sp, a1, {frame}",
            frame = const FRAME,
            w = const W,
            w2 = const 2 * W,
            w3 = const 3 * W,
            p_ra = const P_RA,
            inout("a0") arg => ret_arg,
            inout("a2") link => _,
            out("a1") _,
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: a1 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished.
    unsafe {
        asm!(
            concat!(lx!(), " t1, 0(a2)"),
            concat!(lx!(), " ra, -{w}(t1)"),
            concat!(lx!(), " s0, -{w2}(t1)"),
            concat!(lx!(), " s1, -{w3}(t1)"),
            "mv sp, t1",
            "ret",
            w = const W,
            w2 = const 2 * W,
            w3 = const 3 * W,
            in("a0") arg,
            in("a2") link,
            in("a1") end,
            options(noreturn),
        )
    }
}

/// The link is the parent's stack pointer at the switch, and its frame
/// record lies below it (see [`super::parent_stack_top`]).
pub(super) const PARENT_FRAME_BELOW_LINK: usize = FRAME;

current_stack_pointer_by!("mv {}, sp");

/// # Safety
/// See [`super::trap_regs`].
#[inline]
pub(super) unsafe fn trap_regs(
    base: StackPointer,
    sp: usize,
    handler: TrapEntryFn,
    data: *mut u8,
) -> TrapHandlerRegs {
    // Nothing is written: the handler's address travels in ra, and its data
    // lies at and above sp.
    TrapHandlerRegs {
        pc: trap_start as *const () as usize,
        ra: handler as usize,
        sp,
        a0: data as usize,
        a1: base.get() - LINK,
        s0: base.get(),
    }
}

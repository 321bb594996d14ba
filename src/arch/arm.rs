//! 32-bit ARM, AAPCS (Linux gnueabi/gnueabihf, bare-metal eabi/eabihf), in
//! ARM state and in Thumb state: Thumb-2 (ARMv7) and Thumb-1 (ARMv6-M).
//!
//! Registers the ABI asks a callee to preserve: r4-r11, sp, and d8-d15 when
//! there is a VFP register file. r4, r5, r8-r10 (and d8-d15) are declared as
//! clobbered by the switch asm, so the compiler saves them only where they
//! hold live values. LLVM reserves r6 (base pointer) and the frame pointer,
//! which is r7 in Thumb state and r11 in ARM state; Rust cannot tell the two
//! states apart with a stable `cfg`, so the switch saves r6, r7 and r11 by
//! hand whatever the state. VFP is assumed exactly on hard-float ABIs
//! (`target_abi = "eabihf"`): soft-float targets never touch d8-d15.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 8-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -4       | fake return address    |  }  frame record of the root frame;
//!   -8       | link                   |  }  r7 and r11 point here while it runs
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |
//!     T ──►  +------------------------+  (8-aligned)
//!   T-4      | (padding)              |
//!   T-8      | data pointer           |
//!   T-12     | entry function         |
//!   T-16     | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer, which
//! points at a frame record the switch left on the parent's stack (ARM/Thumb-2
//! layout; Thumb-1 has no r11 slot, see `thumb1` below):
//!
//! ```text
//!  parent's sp at the `resume` asm ──►  +-----------------+  = CFA of the root frame
//!                                       | parent r11      |  CFA-4
//!                                       | parent r7       |  CFA-8
//!                                       | parent r6       |  CFA-12
//!                                       | return address  |  CFA-16 (into `resume`)
//!                                link ─►| parent fp (dup) |  CFA-20
//!                                       +-----------------+
//! ```
//!
//! `[link]` and `[link+4]` form an AAPCS frame record ({fp, lr}, fp being r7
//! in Thumb and r11 in ARM state), so frame-pointer walkers step from the
//! coroutine's root (fp = base-8) through the fake return address into the
//! parent. EHABI unwinders (what Rust's panics, `backtrace` and libgcc use on
//! ARM) run the root frame's custom opcodes: `vsp = r7; pop {sp}` loads the
//! link, then the parent's lr, r6, r7 and r11 are popped from it. DWARF
//! unwinders (debuggers) get the CFA expression `deref(r7) + 20`.
//!
//! A suspended coroutine's context is its stack pointer before it suspended
//! (ARM/Thumb-2: the handle points *above* the saved words):
//!
//! ```text
//!  handle-4  | r11 |  handle-8  | r7 |  handle-12 | r6 |  handle-16 | resume address |
//! ```
//!
//! A switch is asymmetric: `resume` enters with `blx` and the coroutine leaves
//! with `pop {.., pc}`, which the return-stack predictor treats as a return,
//! so the predictor stays in step. `blx`/`pop {pc}` also interwork: every code
//! address carries the Thumb bit in its low bit.
//!
//! Where the instruction set matters (the Thumb bit of a label's address and
//! which register is the frame pointer) the asm asks the assembler: a probe
//! instruction between local labels `8:` and `9:` is 2 bytes long in Thumb
//! state and 4 bytes in ARM state, and `.if 9b - 8b == 2` picks the variant.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

pub(super) const STACK_ALIGNMENT: usize = 8;
pub(super) const STACK_HEADER_SIZE: usize = 8;
/// Enough to run and unwind a coroutine (the EHABI unwinder's state is
/// small; the first forced unwind of a process is tested on this size).
pub(super) const MIN_STACK_SIZE: usize = 4096;

trap_handler_regs! {
    /// `pc` is the address without the Thumb bit: set the T bit of CPSR to
    /// `cpsr_thumb` and the E bit to `cpsr_endian` (and clear the IT bits).
    pub struct TrapHandlerRegs {
        pub pc: u32,
        pub r0: u32,
        pub r1: u32,
        pub r7: u32,
        pub r11: u32,
        pub r13: u32,
        pub r14: u32,
        pub cpsr_thumb: bool,
        pub cpsr_endian: bool,
    }
}

pub(super) const LINK: usize = 8;

/// Chooses between a Thumb-state and an ARM-state variant of some asm lines,
/// by the length of the probe instruction placed between labels `8:` and
/// `9:` earlier in the same asm block (see the module comment).
#[cfg(target_has_atomic = "ptr")]
macro_rules! if_thumb {
    ($thumb:expr, $arm:expr $(,)?) => {
        concat!(".if (9b - 8b) == 2\n", $thumb, "\n.else\n", $arm, "\n.endif")
    };
}

/// `asm!` with the registers the switch lets the compiler save declared as
/// clobbered: the `extra` ones, d8-d15 on hard-float targets, and everything
/// the C ABI already lets a call destroy.
#[cfg(target_abi = "eabihf")]
macro_rules! switch_asm {
    ([$($extra:tt)*] $($args:tt)*) => {
        resume_asm!(
            $($args)*
            $($extra)*
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            clobber_abi("C"),
        )
    };
}
#[cfg(not(target_abi = "eabihf"))]
macro_rules! switch_asm {
    ([$($extra:tt)*] $($args:tt)*) => {
        resume_asm!($($args)* $($extra)* clobber_abi("C"),)
    };
}

// ---------------------------------------------------------------------------
// ARM state and Thumb-2 (every ARM target with ldrex/strex, ARMv7 and up).
// ---------------------------------------------------------------------------
#[cfg(target_has_atomic = "ptr")]
mod isa {
    use super::*;

    sanitizer_unwind_anchor!();

    /// The context handle is the top of the saved words (see the module
    /// comment); `init_stack` lays a fresh context out the same way.
    pub(super) const HANDLE_FROM_BOTTOM: usize = 16;

    /// First code to run on a fresh coroutine. Entered by `resume`'s `blx`
    /// with r0 = argument, r1 = context handle T, r2 = link address, still on
    /// the parent's stack, which holds the parent's r6, r7, r11.
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn coroutine_start() {
        naked_asm!(
            ".fnstart",
            // DWARF rules on entry: CFA = sp + 12, above the parent's r6, r7,
            // r11; the return address is still in lr.
            ".cfi_startproc",
            ".cfi_def_cfa sp, 12",
            ".cfi_offset r11, -4",
            ".cfi_offset r7, -8",
            ".cfi_offset r6, -12",
            // Complete the parent's frame record {fp, return address}. No
            // `if_thumb!` probe here: in module-level asm LLVM cannot always
            // evaluate the probe's label difference. The return address
            // tells the state instead: its low bit is set iff the parent runs
            // in Thumb state, where the frame pointer is r7, not r11.
            "push {{r11, lr}}",
            ".cfi_adjust_cfa_offset 8",
            ".cfi_offset lr, -16",
            "tst lr, #1",
            "it ne",
            "strne r7, [sp]",
            // Publish the record through the link.
            "str sp, [r2]",
            // Root frame pointer = link address, in both r7 (Thumb fp, and
            // the register the unwind rules read) and r11 (ARM fp).
            "mov r7, r2",
            "mov r11, r2",
            // From here on the parent is described through the link:
            // CFA = [r7] + 20 (DW_CFA_def_cfa_expression, 5 bytes:
            // DW_OP_breg7 0, DW_OP_deref, DW_OP_plus_uconst 20).
            ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x14",
            // EHABI rules for the rest of the function (opcodes run in this
            // order): 0x97 vsp = r7; 0x82 0x00 pop {sp}, i.e. vsp = [link];
            // 0x00 vsp += 4 (the duplicate fp); 0x84 0x00 pop {lr};
            // 0x80 0x8c pop {r6, r7, r11}. The implicit finish sets pc = lr.
            ".unwind_raw 0, 0x97, 0x82, 0x00, 0x00, 0x84, 0x00, 0x80, 0x8c",
            // Take the entry function and its data, move onto the coroutine
            // stack (T is 8-aligned) and call entry(arg, link, data).
            "ldr r3, [r1, #-12]",
            "ldr r2, [r1, #-8]",
            "mov sp, r1",
            "mov r1, r7",
            "blx r3",
            // The entry function leaves through `exit` and never returns.
            "udf #0",
            ".cfi_endproc",
            ".fnend",
        )
    }

    /// Where a trapped coroutine continues (see `trap_regs`): r0 = data,
    /// r1 = r7 = r11 = link address, lr = handler, sp 8-aligned below data.
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn trap_start() {
        naked_asm!(
            // Same parent description as the root frame of `coroutine_start`
            // (DWARF: CFA = [r7] + 20; EHABI opcodes decoded there).
            ".fnstart",
            ".cfi_startproc",
            ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x14",
            ".cfi_offset r11, -4",
            ".cfi_offset r7, -8",
            ".cfi_offset r6, -12",
            ".cfi_offset lr, -16",
            ".unwind_raw 0, 0x97, 0x82, 0x00, 0x00, 0x84, 0x00, 0x80, 0x8c",
            // Entered by a signal handler's rewrite of the context, not a
            // call: call the handler, which never returns.
            "blx lr",
            "udf #0",
            ".cfi_endproc",
            ".fnend",
        )
    }

    /// # Safety
    /// See [`crate::arch::resume`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn resume(
        arg: Word,
        sp: StackPointer,
        base: StackPointer,
    ) -> (Word, usize) {
        let (ret_arg, ret_sp);
        // SAFETY: the coroutine context at `sp` restores every register the
        // compiler expects preserved (r6, r7, r11 here, the rest declared
        // clobbered), and returns to the instruction after `blx` with sp back
        // where it was.
        unsafe {
            switch_asm!(
                [out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _,]
                // Save what LLVM reserves, then call the resume address saved
                // in the context; the coroutine comes back with `pop {pc}`.
                "push {{r6, r7, r11}}",
                "ldr r3, [r1, #-16]",
                "blx r3",
                "pop {{r6, r7, r11}}",
                inout("r0") arg => ret_arg,
                inout("r1") sp.get() => ret_sp,
                inout("r2") base.get() - LINK => _,
            );
        }
        (ret_arg, ret_sp)
    }

    /// # Safety
    /// See [`crate::arch::suspend`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
        let ret_arg;
        // SAFETY: the saved context (resume address, r6, r7, r11) is what the
        // code at label 2 restores, and the parent's frame record is at
        // [link].
        unsafe {
            switch_asm!(
                [out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _,]
                // Thumb `adr` measures from the word-aligned pc, and LLVM
                // aligns relative to the start of this asm's fragment, not
                // the section (seen with rustc 1.95: off by 2 otherwise).
                // Aligning the fragment makes both agree; in ARM state this
                // is a no-op, in Thumb at most one 16-bit nop.
                ".balign 4",
                // r1 = our context handle; the `mov` is also the probe.
                "8: mov r1, sp",
                "9:",
                // Save our context: resume address (with the Thumb bit in
                // Thumb state) and the registers LLVM reserves.
                if_thumb!("adr r3, 2f + 1", "adr r3, 2f"),
                "push {{r3, r6, r7, r11}}",
                // Return into the parent's `resume`: drop the duplicate fp of
                // its frame record and pop the return address into pc.
                "ldr sp, [r2]",
                "pop {{r3, pc}}",
                // Resumed: on the parent's stack, lr = its return address,
                // r1 = our handle, r2 = link. Complete its frame record,
                // publish it, restore ourselves.
                "2:",
                if_thumb!("push {{r7, lr}}", "push {{r11, lr}}"),
                "str sp, [r2]",
                "ldmdb r1, {{r6, r7, r11}}",
                "mov sp, r1",
                inout("r0") arg => ret_arg,
                inout("r2") link => _,
                out("r1") _,
            );
        }
        ret_arg
    }

    /// # Safety
    /// See [`crate::arch::exit`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
        // SAFETY: as in `suspend`, minus saving a context: r1 = `end` (a small
        // number, never a context) tells the parent that the coroutine has
        // finished.
        unsafe {
            asm!(
                "ldr sp, [r2]",
                "pop {{r3, pc}}",
                in("r0") arg,
                in("r2") link,
                in("r1") end,
                options(noreturn),
            )
        }
    }

    /// Calls `f(data)` on the stack topped at r1 (8-aligned), with a frame
    /// record so that unwinders continue on the original stack.
    #[unsafe(naked)]
    pub(in crate::arch) unsafe extern "C" fn stack_call_trampoline(
        data: *mut u8,
        top: usize,
        f: StackCallFn,
    ) {
        naked_asm!(
            ".fnstart",
            ".cfi_startproc",
            // Two frame records, {r11, lr} above {r7, lr}, so that the
            // frame pointer of either state (r11 in ARM, r7 in Thumb) finds
            // one; both registers are callee-saved in either state.
            // EHABI: vsp = r7, pop {r7, lr}, pop {r11, lr}; DWARF: CFA = r7 + 16.
            "push {{r11, lr}}",
            ".save {{r11, lr}}",
            ".cfi_adjust_cfa_offset 8",
            ".cfi_offset lr, -4",
            ".cfi_offset r11, -8",
            "push {{r7, lr}}",
            ".save {{r7, lr}}",
            ".cfi_adjust_cfa_offset 8",
            ".cfi_offset r7, -16",
            "mov r7, sp",
            ".setfp r7, sp",
            ".cfi_def_cfa_register r7",
            "add r11, sp, #8",
            // Switch stacks and call; r0 (data) passes straight through.
            "mov sp, r1",
            "blx r2",
            // Back to the original stack.
            "mov sp, r7",
            "pop {{r7, lr}}",
            "pop {{r11, pc}}",
            ".cfi_endproc",
            ".fnend",
        )
    }
}

// ---------------------------------------------------------------------------
// Thumb-1 only (ARMv6-M): push/pop reach only r0-r7 (+lr/pc), no `ldmdb`, no
// sp in loads and stores, `adr` only to word-aligned labels. These cores are
// the ARM targets without compare-and-swap (the one stable `cfg` that tells
// them apart), and run only in Thumb state, where r7 is the frame pointer:
// the switch saves r6 and r7 by hand and declares r8-r11 clobbered.
// ---------------------------------------------------------------------------
#[cfg(not(target_has_atomic = "ptr"))]
mod isa {
    use super::*;

    sanitizer_unwind_anchor!();

    // The parent's stack at the switch has no r11 slot:
    //
    //   CFA-4: parent r7 | CFA-8: parent r6 | CFA-12: return address |
    //   link ─► CFA-16: parent r7 (dup)
    //
    // and the context handle points at the lowest saved word:
    //
    //   handle: resume address | +4: r6 | +8: r7

    pub(super) const HANDLE_FROM_BOTTOM: usize = 0;

    /// As the ARM/Thumb-2 `coroutine_start`, with r1 = T-16.
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn coroutine_start() {
        naked_asm!(
            ".fnstart",
            // DWARF rules on entry: CFA = sp + 8, above the parent's r6, r7.
            ".cfi_startproc",
            ".cfi_def_cfa sp, 8",
            ".cfi_offset r7, -4",
            ".cfi_offset r6, -8",
            // Complete the parent's frame record and publish it.
            "push {{r7, lr}}",
            ".cfi_adjust_cfa_offset 8",
            ".cfi_offset lr, -12",
            "mov r3, sp",
            "str r3, [r2]",
            // Root frame pointer = link address.
            "mov r7, r2",
            // CFA = [r7] + 16 (DW_CFA_def_cfa_expression, 5 bytes:
            // DW_OP_breg7 0, DW_OP_deref, DW_OP_plus_uconst 16).
            ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x10",
            // EHABI: 0x97 vsp = r7; 0x82 0x00 pop {sp}; 0x00 vsp += 4;
            // 0x84 0x00 pop {lr}; 0x80 0x0c pop {r6, r7}; finish: pc = lr.
            ".unwind_raw 0, 0x97, 0x82, 0x00, 0x00, 0x84, 0x00, 0x80, 0x0c",
            // entry(arg, link, data) on the coroutine stack, sp = T.
            "ldr r3, [r1, #4]",
            "ldr r2, [r1, #8]",
            "adds r1, #16",
            "mov sp, r1",
            "mov r1, r7",
            "blx r3",
            "udf #0",
            ".cfi_endproc",
            ".fnend",
        )
    }

    /// As the ARM/Thumb-2 `trap_start`.
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn trap_start() {
        naked_asm!(
            ".fnstart",
            ".cfi_startproc",
            ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x10",
            ".cfi_offset r7, -4",
            ".cfi_offset r6, -8",
            ".cfi_offset lr, -12",
            ".unwind_raw 0, 0x97, 0x82, 0x00, 0x00, 0x84, 0x00, 0x80, 0x0c",
            "blx lr",
            "udf #0",
            ".cfi_endproc",
            ".fnend",
        )
    }

    /// # Safety
    /// See [`crate::arch::resume`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn resume(
        arg: Word,
        sp: StackPointer,
        base: StackPointer,
    ) -> (Word, usize) {
        let (ret_arg, ret_sp);
        // SAFETY: as for the ARM/Thumb-2 `resume`, with r6 and r7 saved here.
        unsafe {
            switch_asm!(
                [out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,]
                "push {{r6, r7}}",
                "ldr r3, [r1]",
                "blx r3",
                "pop {{r6, r7}}",
                inout("r0") arg => ret_arg,
                inout("r1") sp.get() => ret_sp,
                inout("r2") base.get() - LINK => _,
            );
        }
        (ret_arg, ret_sp)
    }

    /// # Safety
    /// See [`crate::arch::suspend`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
        let ret_arg;
        // SAFETY: as for the ARM/Thumb-2 `suspend`.
        unsafe {
            switch_asm!(
                [out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,]
                // Resume address with the Thumb bit (Thumb-1 `adr` cannot
                // add it), then the context below it. `.balign 4`: see the
                // ARM/Thumb-2 `suspend`.
                ".balign 4",
                "adr r3, 2f",
                "adds r3, #1",
                "push {{r3, r6, r7}}",
                "mov r1, sp",
                // Return into the parent's `resume` (no sp loads in Thumb-1).
                "ldr r3, [r2]",
                "mov sp, r3",
                "pop {{r3, pc}}",
                // `adr` needs a word-aligned target; the padding never runs.
                ".balign 4",
                "2:",
                "push {{r7, lr}}",
                "mov r3, sp",
                "str r3, [r2]",
                "mov sp, r1",
                "pop {{r3, r6, r7}}",
                inout("r0") arg => ret_arg,
                inout("r2") link => _,
                out("r1") _,
            );
        }
        ret_arg
    }

    /// # Safety
    /// See [`crate::arch::exit`].
    #[inline(always)]
    pub(in crate::arch) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
        // SAFETY: as for the ARM/Thumb-2 `exit`.
        unsafe {
            asm!(
                "ldr r3, [r2]",
                "mov sp, r3",
                "pop {{r3, pc}}",
                in("r0") arg,
                in("r2") link,
                in("r1") end,
                options(noreturn),
            )
        }
    }

    /// As the ARM/Thumb-2 `stack_call_trampoline`, Thumb state only.
    #[unsafe(naked)]
    pub(in crate::arch) unsafe extern "C" fn stack_call_trampoline(
        data: *mut u8,
        top: usize,
        f: StackCallFn,
    ) {
        naked_asm!(
            ".fnstart",
            ".cfi_startproc",
            "push {{r7, lr}}",
            ".save {{r7, lr}}",
            ".cfi_adjust_cfa_offset 8",
            ".cfi_offset lr, -4",
            ".cfi_offset r7, -8",
            "mov r7, sp",
            ".setfp r7, sp",
            ".cfi_def_cfa_register r7",
            "mov sp, r1",
            "blx r2",
            "mov sp, r7",
            "pop {{r7, pc}}",
            ".cfi_endproc",
            ".fnend",
        )
    }
}

pub(super) use isa::{exit, resume, stack_call_trampoline, suspend};
use isa::{coroutine_start, trap_start};

/// # Safety
/// See [`super::init_stack`]; the fresh context takes 16 bytes below `sp`.
#[inline]
pub(super) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: the caller guarantees the header and the 16 bytes below `sp`
    // are writable memory of this stack.
    unsafe {
        let top = base.get();
        let start = coroutine_start as *const () as usize;
        // Any address inside `coroutine_start` (Thumb bit kept) names the
        // root for symbolizers, which look up return address - 2.
        *((top - 4) as *mut usize) = start + 4;
        *((top - LINK) as *mut usize) = 0;
        let bottom = sp - 16;
        *(bottom as *mut usize) = start;
        *((bottom + 4) as *mut usize) = entry as usize;
        *((bottom + 8) as *mut usize) = data as usize;
        StackPointer::new_unchecked(bottom + isa::HANDLE_FROM_BOTTOM)
    }
}

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
    let link = (base.get() - LINK) as u32;
    let start = trap_start as *const () as usize as u32;
    // The handler travels in lr, so nothing is written to the stack.
    TrapHandlerRegs {
        pc: start & !1,
        r0: data as u32,
        r1: link,
        r7: link,
        r11: link,
        r13: sp as u32,
        r14: handler as usize as u32,
        cpsr_thumb: start & 1 != 0,
        cpsr_endian: cfg!(target_endian = "big"),
    }
}

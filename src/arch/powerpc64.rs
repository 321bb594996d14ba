//! 64-bit PowerPC, ELFv2 ABI (powerpc64le Linux).
//!
//! Registers the ABI asks a callee to preserve: r1 (sp), r2 (TOC pointer),
//! r14-r31, f14-f31, v20-v31, the CR2-CR4 fields of the condition register,
//! and VRSAVE (plus the control bits of FPSCR/VSCR). r14-r29, f14-f31,
//! v20-v31 and cr2-cr4 are declared as clobbered by the switch asm, so the
//! compiler saves only the ones it really uses; LLVM reserves r2, r30 (base
//! pointer) and r31 (frame pointer), so those are saved by hand. r13 (thread
//! pointer) never differs between the two sides of a switch. VRSAVE and the
//! FPSCR/VSCR control bits are left alone: coroutines do not change them on
//! the caller's behalf (Linux does not use VRSAVE at all).
//!
//! PowerPC frames are chained through their first word (the *back chain*);
//! a frame's header is `[back chain, CR save, LR save, TOC save]`, and a
//! function stores its return address in the LR slot of its *caller's*
//! header. Both switch directions lay down the same 48-byte frame:
//!
//! ```text
//!   +0   back chain (previous r1)
//!   +8   (unused CR slot)
//!   +16  return address: LR slot, read by the callee / by `blr`
//!   +24  r2
//!   +32  r30
//!   +40  r31
//! ```
//!
//! On the parent's side (`resume`) this frame P sits just below the parent's
//! stack pointer S; on the coroutine's side it is a suspended context C.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +--------------------------+
//!   -16      | fake return address      |  LR slot  } header frame H
//!   -24      | (unused)                 |           } (STACK_HEADER_SIZE)
//!   -32  H   | link                     |  back chain: the parent's frame P
//!            +--------------------------+
//!            | closure (moved here)     |
//!            +--------------------------+ ◄── `sp` given to init_stack (16-aligned)
//!            | (LR slot for entry, …)   |
//!     R ──►  | back chain = H           |  root frame: r1 while entry runs
//!            +--------------------------+
//!            | data                     |  +32  } fresh context C, the shape
//!            | entry function           |  +24  } of a 48-byte switch frame
//!            | coroutine_start          |  +16  (`resume` calls through this)
//!  fresh sp  | …                        |
//!            +--------------------------+
//! ```
//!
//! While the coroutine runs, the link holds P, so back-chain walkers go from
//! the entry function's frame through R, H and P into the parent's frames
//! (showing `coroutine_start` and the parent function once more than a
//! DWARF unwinder does, since H and P carry no frame of their own).
//! DWARF unwinders use the root frame's CFA expression
//! `deref(deref(deref(r1)))`: R → H → P → S, the parent's stack pointer.
//!
//! A switch is asymmetric: `resume` enters with `bctrl` and the coroutine
//! leaves with `blr` to the address `bctrl` left in LR, so the link-stack
//! predictor stays in step.
//!
//! DWARF register numbers used below: r1 is 1 (DW_OP_breg1 = 0x71), lr 65.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 32;
/// Enough to run and unwind a coroutine: ELFv2 frames and libgcc's unwinder
/// are larger than on x86-64, so this leaves the same room as AArch64.
pub(super) const MIN_STACK_SIZE: usize = 16384;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub pc: u64,
        pub sp: u64,
        pub r3: u64,
        pub r4: u64,
        pub r12: u64,
        pub lr: u64,
    }
}

/// Offset of the link word (the header frame H) below the stack base.
pub(super) const LINK: usize = 32;

/// The switch asm, shared by `resume` and `suspend`, with the callee-saved
/// registers the compiler must save around it declared as clobbered (r2,
/// r30 and r31 are saved by the asm itself; see the module docs).
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("r14") _, out("r15") _, out("r16") _, out("r17") _,
            out("r18") _, out("r19") _, out("r20") _, out("r21") _,
            out("r22") _, out("r23") _, out("r24") _, out("r25") _,
            out("r26") _, out("r27") _, out("r28") _, out("r29") _,
            out("f14") _, out("f15") _, out("f16") _, out("f17") _,
            out("f18") _, out("f19") _, out("f20") _, out("f21") _,
            out("f22") _, out("f23") _, out("f24") _, out("f25") _,
            out("f26") _, out("f27") _, out("f28") _, out("f29") _,
            out("f30") _, out("f31") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            out("cr2") _, out("cr3") _, out("cr4") _,
            clobber_abi("C"),
        )
    };
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `bctrl`
/// with r3 = argument, r4 = fresh context C, r5 = link address (H), r1 = the
/// parent's switch frame P, LR = the return address into `resume`.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: the parent's r1 is P + 48, where `resume`
        // saved r2, r30 and r31; the return address is still in LR.
        ".cfi_startproc",
        ".cfi_def_cfa r1, 48",
        ".cfi_offset r2, -24",
        ".cfi_offset r30, -16",
        ".cfi_offset r31, -8",
        // Store the return address in P's LR slot (as any callee would) and
        // publish P through the link.
        "mflr 0",
        "std 0, 16(1)",
        ".cfi_offset lr, -32",
        "std 1, 0(5)",
        // Take the entry function and its data from C, then move onto the
        // root frame R just above C, whose back chain init_stack pointed at H.
        "ld 12, 24(4)",
        "ld 6, 32(4)",
        "addi 1, 4, 48",
        // From here on the parent is described through the back chains:
        // CFA = [[[r1]]] (DW_CFA_def_cfa_expression, 5 bytes of expression:
        // DW_OP_breg1 0, DW_OP_deref, DW_OP_deref, DW_OP_deref), and the saved
        // registers keep their offsets from it.
        ".cfi_escape 0x0f, 0x05, 0x71, 0x00, 0x06, 0x06, 0x06",
        // Call entry(arg, link, data); ELFv2 wants the callee's address in
        // r12 so its global entry point can derive its TOC pointer.
        "mr 4, 5",
        "mr 5, 6",
        "mtctr 12",
        "bctrl",
        // The entry function leaves through `exit` and never returns.
        "trap",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): r1 = a root frame
/// whose back chain is H, r3 = data, r4 = link address, r12 = the handler.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`
        // (the escape is decoded there).
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x05, 0x71, 0x00, 0x06, 0x06, 0x06",
        ".cfi_offset lr, -32",
        ".cfi_offset r2, -24",
        ".cfi_offset r30, -16",
        ".cfi_offset r31, -8",
        // Entered by a signal handler's rewrite of the context, not a call.
        "mtctr 12",
        "bctrl",
        "trap",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at `top` (16-aligned), with a back
/// chain and CFI so unwinders continue on the original stack.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        // Save our return address in the caller's LR slot, as usual.
        "mflr 0",
        "std 0, 16(1)",
        ".cfi_offset lr, 16",
        // Open a minimal frame at the new top whose back chain is our r1,
        // and move onto it (`stdu` writes r1 at r4-32 and sets r4 to it).
        "stdu 1, -32(4)",
        "mr 1, 4",
        // CFA = [r1] (DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg1 0,
        // DW_OP_deref): the back chain is the caller's r1.
        ".cfi_escape 0x0f, 0x03, 0x71, 0x00, 0x06",
        // Keep our TOC pointer in the new frame's TOC slot across the
        // indirect call; r3 (data) passes straight through.
        "std 2, 24(1)",
        "mr 12, 5",
        "mtctr 12",
        "bctrl",
        "ld 2, 24(1)",
        // Back to the original stack and return.
        "ld 1, 0(1)",
        ".cfi_def_cfa r1, 0",
        "ld 0, 16(1)",
        "mtlr 0",
        "blr",
        ".cfi_endproc",
    )
}

/// # Safety
/// See [`super::init_stack`]; the fresh context takes 80 bytes below `sp`.
#[inline]
pub(super) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: the caller guarantees the header and the 80 bytes below `sp`
    // are writable memory of this stack.
    unsafe {
        let h = base.get() - LINK;
        *(h as *mut usize) = 0;
        *((h + 16) as *mut usize) = coroutine_start as *const () as usize + 4;
        let root = sp - 32;
        *(root as *mut usize) = h;
        let fresh = root - 48;
        *((fresh + 16) as *mut usize) = coroutine_start as *const () as usize;
        *((fresh + 24) as *mut usize) = entry as usize;
        *((fresh + 32) as *mut usize) = data as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine context at `sp` restores every register the
    // compiler expects preserved (r2, r30, r31 here from the frame P, the
    // coroutine's from its own context, the rest declared clobbered), and
    // returns to the instruction after `bctrl` with r1 = P.
    unsafe {
        switch_asm!(
            // Open the switch frame P below our stack pointer and save the
            // registers LLVM keeps for itself.
            "stdu 1, -48(1)",
            "std 2, 24(1)",
            "std 30, 32(1)",
            "std 31, 40(1)",
            // Call the resume address stored in the context's LR slot; the
            // coroutine comes back with `blr`.
            "ld 12, 16(4)",
            "mtctr 12",
            "bctrl",
            "ld 2, 24(1)",
            "ld 30, 32(1)",
            "ld 31, 40(1)",
            "addi 1, 1, 48",
            inout("r3") arg => ret_arg,
            inout("r4") sp.get() => ret_sp,
            inout("r5") base.get() - LINK => _,
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context C (resume address, r2, r30, r31) is what the
    // code at label 2 restores, and the parent's switch frame is at [link].
    unsafe {
        switch_asm!(
            // Open our context frame C and save the registers LLVM keeps.
            "stdu 1, -48(1)",
            "std 2, 24(1)",
            "std 30, 32(1)",
            "std 31, 40(1)",
            // There is no PC-relative addressing before POWER10: a
            // branch-and-link to the next instruction in the `bcl 20, 31`
            // form (which the CPU keeps off its link stack) puts label 3's
            // address in LR; label 2 is a fixed distance further.
            "bcl 20, 31, 3f",
            "3:",
            "mflr 6",
            "addi 6, 6, 2f - 3b",
            "std 6, 16(1)",
            // Hand C to the parent in r4 and return into its `resume`
            // through the address it left in P's LR slot.
            "mr 4, 1",
            "ld 1, 0(5)",
            "ld 0, 16(1)",
            "mtlr 0",
            "blr",
            // Resumed: r1 = the parent's new P, r4 = C, r5 = link, LR = the
            // parent's return address. Store it, publish P, restore ourselves.
            "2:",
            "mflr 0",
            "std 0, 16(1)",
            "std 1, 0(5)",
            "ld 2, 24(4)",
            "ld 30, 32(4)",
            "ld 31, 40(4)",
            "addi 1, 4, 48",
            inout("r3") arg => ret_arg,
            inout("r5") link => _,
            out("r4") _,
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: r4 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished; `resume` restores the rest.
    unsafe {
        asm!(
            "ld 1, 0(5)",
            "ld 0, 16(1)",
            "mtlr 0",
            "blr",
            in("r3") arg,
            in("r5") link,
            in("r4") end,
            options(noreturn),
        )
    }
}

current_stack_pointer_by!("mr {}, 1");

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
    // A root frame below the handler's data, chained to the header frame.
    let root = sp - 32;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe { *(root as *mut usize) = link };
    TrapHandlerRegs {
        pc: trap_start as *const () as u64,
        sp: root as u64,
        r3: data as u64,
        r4: link as u64,
        r12: handler as usize as u64,
        // Not used by trap_start (its `bctrl` sets LR); the header's fake
        // return address, for anything that looks before then.
        lr: coroutine_start as *const () as u64 + 4,
    }
}

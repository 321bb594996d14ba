//! s390x (z/Architecture), ELF ABI (Linux).
//!
//! Registers the ABI asks a callee to preserve: r6-r13, r14 (in effect: the
//! callee returns to it), r15 (sp) and f8-f15 (plus the FPC control bits,
//! which coroutines do not change on the caller's behalf and which we
//! therefore leave alone; the access registers hold the thread pointer,
//! which never differs between the two sides of a switch). r6-r10, r12-r14
//! and f8-f15 are declared as clobbered by the switch asm, so the compiler
//! saves only the ones it really uses; LLVM reserves r11 (frame pointer) and
//! r15, which are saved by hand.
//!
//! Every caller gives its callee a 160-byte register save area at its stack
//! pointer: `0` back chain, `16 + 8*(n-2)` GPR n (so r11 at 88, r14 at 112),
//! `128..160` f0/f2/f4/f6. `resume` opens such a frame P below the parent's
//! stack pointer S, stores r11 in P's r11 slot, and the coroutine side stores
//! the parent's return address in P's r14 slot, exactly as a called function
//! would; so the parent's registers are described by the ordinary rules
//! `r11 at CFA-72, r14 at CFA-48` with CFA = S = P + 160. The back chain is
//! optional in this ABI and Rust does not keep one, so neither do we beyond
//! what the CFA expression needs.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 8-aligned):
//!
//! ```text
//!  base ──►  +--------------------------+
//!   -8   H   | link (the parent's P)    |  STACK_HEADER_SIZE
//!            +--------------------------+
//!            | closure (moved here)     |
//!            +--------------------------+ ◄── `sp` given to init_stack
//!            | save area for the entry  |
//!            | function (160 bytes)     |
//!     R ──►  | "back chain" = H         |  root frame: r15 while entry runs
//!            +--------------------------+
//!            | data                     |  +16  } fresh context C
//!            | entry function           |  +8   }
//!  fresh sp  | coroutine_start          |  +0   (`resume` calls through this)
//!            +--------------------------+
//! ```
//!
//! DWARF unwinders use the root frame's CFA expression
//! `deref(deref(r15)) + 160`: R → H → P, plus the save area, is S, and are
//! told explicitly that the parent's r15 is that CFA.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp   ──►  resume address | coroutine r11 | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `basr %r14` and the coroutine
//! leaves with `br %r14` to that address, so return prediction stays in step.
//!
//! DWARF register numbers used below: r15 is 15 (DW_OP_breg15 = 0x7f).

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 8;
pub(super) const STACK_HEADER_SIZE: usize = 8;
/// Enough to run and unwind a coroutine: every s390x frame carries a
/// 160-byte register save area, so the unwinder needs far more than on x86-64.
pub(super) const MIN_STACK_SIZE: usize = 16384;

trap_handler_regs! {
    /// `pc` is the PSW address and `sp` r15; r2 and r3 take the handler's
    /// arguments, r4 its address, and r14 is the return-address register.
    pub struct TrapHandlerRegs {
        pub pc: u64,
        pub sp: u64,
        pub r2: u64,
        pub r3: u64,
        pub r4: u64,
        pub r14: u64,
    }
}

pub(super) const LINK: usize = 8;

/// Size of the register save area a caller provides.
const SAVE_AREA: usize = 160;

/// The switch asm, shared by `resume` and `suspend`, with the callee-saved
/// registers the compiler must save around it declared as clobbered (r11
/// and r15 are saved by the asm itself; see the module docs).
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("r6") _, out("r7") _, out("r8") _, out("r9") _, out("r10") _,
            out("r12") _, out("r13") _, out("r14") _,
            out("f8") _, out("f9") _, out("f10") _, out("f11") _,
            out("f12") _, out("f13") _, out("f14") _, out("f15") _,
            clobber_abi("C"),
        )
    };
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `basr`
/// with r2 = argument, r3 = fresh context C, r4 = link address, r15 = the
/// parent's switch frame P, r14 = the return address into `resume`.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: those of any function entry (CFA = r15 +
        // 160), with r11 already in its slot of P's save area.
        ".cfi_startproc",
        ".cfi_def_cfa %r15, 160",
        ".cfi_offset %r11, -72",
        // The parent's r15 at its return address is S, the CFA itself
        // (before `resume` opened P). Unwinders do not infer r15 from the
        // CFA on this target (ordinary frames save it at CFA-40), so say it.
        ".cfi_val_offset %r15, 0",
        // Store the return address in P's r14 slot (as any callee would)
        // and publish P through the link.
        "stg %r14, 112(%r15)",
        ".cfi_offset %r14, -48",
        "stg %r15, 0(%r4)",
        // Take the entry function and its data from C, then move onto the
        // root frame R just above C, whose first word init_stack set to H.
        "lg %r1, 8(%r3)",
        "lg %r5, 16(%r3)",
        "la %r15, 24(%r3)",
        // From here on the parent is described through the link:
        // CFA = [[r15]] + 160 (DW_CFA_def_cfa_expression, 7 bytes of
        // expression: DW_OP_breg15 0, DW_OP_deref, DW_OP_deref,
        // DW_OP_plus_uconst 160 as ULEB128 0xa0 0x01); r11 and r14 keep
        // their offsets from it.
        ".cfi_escape 0x0f, 0x07, 0x7f, 0x00, 0x06, 0x06, 0x23, 0xa0, 0x01",
        // Call entry(arg, link, data), by hand (r14 set, then a plain
        // branch, not a linking `basr`; see arch/mod.rs).
        "lgr %r3, %r4",
        "lgr %r4, %r5",
        "larl %r14, 2f",
        "br %r1",
        // The entry function leaves through `exit` and never returns: an
        // all-zero halfword is an invalid instruction. (`larl` needs an
        // even address, which every instruction has.)
        "2:",
        ".short 0",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): r15 = a root frame
/// whose first word is the link address, r2 = data, r3 = link address,
/// r4 = the handler.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`
        // (the escape is decoded there).
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x07, 0x7f, 0x00, 0x06, 0x06, 0x23, 0xa0, 0x01",
        ".cfi_offset %r11, -72",
        ".cfi_offset %r14, -48",
        ".cfi_val_offset %r15, 0",
        // Entered by a signal handler's rewrite of the context, not a call.
        "basr %r14, %r4",
        ".short 0",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at `top` (8-aligned), with CFI so
/// unwinders continue on the original stack.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_def_cfa %r15, 160",
        // The caller's r15 is ours on entry, CFA - 160, throughout (see
        // coroutine_start for why this is spelled out).
        ".cfi_val_offset %r15, -160",
        // Save our return address in the caller's save area, as usual.
        "stg %r14, 112(%r15)",
        ".cfi_offset %r14, -48",
        // Give f a save area at the new top, its first word pointing back
        // at our stack pointer, and move onto it.
        "lgr %r1, %r15",
        "lay %r15, -160(%r3)",
        "stg %r1, 0(%r15)",
        // CFA = [r15] + 160 (DW_CFA_def_cfa_expression, 6 bytes:
        // DW_OP_breg15 0, DW_OP_deref, DW_OP_plus_uconst 160).
        ".cfi_escape 0x0f, 0x06, 0x7f, 0x00, 0x06, 0x23, 0xa0, 0x01",
        // r2 (data) passes straight through.
        "basr %r14, %r4",
        // Back to the original stack and return.
        "lg %r15, 0(%r15)",
        ".cfi_def_cfa %r15, 160",
        "lg %r14, 112(%r15)",
        "br %r14",
        ".cfi_endproc",
    )
}

/// # Safety
/// See [`super::init_stack`]; the fresh context takes 184 bytes below `sp`.
#[inline]
pub(super) unsafe fn init_stack(
    base: StackPointer,
    sp: usize,
    entry: EntryFn,
    data: *mut u8,
) -> StackPointer {
    // SAFETY: the caller guarantees the header and the 184 bytes below `sp`
    // are writable memory of this stack.
    unsafe {
        let link = base.get() - LINK;
        *(link as *mut usize) = 0;
        let root = sp - SAVE_AREA;
        *(root as *mut usize) = link;
        let fresh = root - 24;
        *(fresh as *mut usize) = coroutine_start as *const () as usize;
        *((fresh + 8) as *mut usize) = entry as usize;
        *((fresh + 16) as *mut usize) = data as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine context at `sp` restores every register the
    // compiler expects preserved (r11 here from P, the coroutine's from its
    // own context, the rest declared clobbered), and returns to the
    // instruction after `basr` with r15 = P.
    unsafe {
        switch_asm!(
            // Open the switch frame P (a standard save area) below our stack
            // pointer and keep r11 in its slot there.
            "aghi %r15, -160",
            "stg %r11, 88(%r15)",
            // Call the resume address saved at the context; the coroutine
            // comes back with `br %r14`.
            "lg %r1, 0(%r3)",
            "basr %r14, %r1",
            "lg %r11, 88(%r15)",
            "aghi %r15, 160",
            inout("r2") arg => ret_arg,
            inout("r3") sp.get() => ret_sp,
            inout("r4") base.get() - LINK => _,
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context (resume address, r11) is what the code at
    // label 2 restores, and the parent's switch frame is at [link].
    unsafe {
        switch_asm!(
            // Save our context: r11 and the resume address (label 2, which
            // `larl` addresses relative to the PC).
            "aghi %r15, -16",
            "stg %r11, 8(%r15)",
            "larl %r1, 2f",
            "stg %r1, 0(%r15)",
            // Hand the context to the parent in r3 and return into its
            // `resume` through the address saved in P's r14 slot.
            "lgr %r3, %r15",
            "lg %r15, 0(%r4)",
            "lg %r14, 112(%r15)",
            "br %r14",
            // Resumed: r15 = the parent's new P, r3 = our context, r4 =
            // link, r14 = the parent's return address. Store it, publish P,
            // restore ourselves.
            "2:",
            "stg %r14, 112(%r15)",
            "stg %r15, 0(%r4)",
            "lg %r11, 8(%r3)",
            "la %r15, 16(%r3)",
            inout("r2") arg => ret_arg,
            inout("r4") link => _,
            out("r3") _,
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: r3 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished; `resume` restores the rest.
    unsafe {
        asm!(
            "lg %r15, 0(%r4)",
            "lg %r14, 112(%r15)",
            "br %r14",
            in("r2") arg,
            in("r4") link,
            in("r3") end,
            options(noreturn),
        )
    }
}

current_stack_pointer_by!("lgr {}, %r15");

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
    // A root frame (the handler's save area) below its data, its first word
    // pointing at the link as in init_stack.
    let root = sp - SAVE_AREA;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe { *(root as *mut usize) = link };
    TrapHandlerRegs {
        pc: trap_start as *const () as u64,
        sp: root as u64,
        r2: data as u64,
        r3: link as u64,
        r4: handler as usize as u64,
        // Not used by trap_start (its `basr` sets r14); a return address
        // inside it, for anything that looks before then.
        r14: trap_start as *const () as u64 + 2,
    }
}

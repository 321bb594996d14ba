//! AArch64, AAPCS64 (Linux, Android, the BSDs, bare metal) and Apple's
//! arm64 variant of it (macOS, iOS).
//!
//! Registers the ABI asks a callee to preserve: x19-x28, x29 (the frame
//! pointer), sp, and the low 64 bits of v8-v15 (d8-d15). x30 (lr) is what a
//! call clobbers. x18 is the platform register: reserved on Apple (and
//! Windows), a temporary elsewhere; this file never touches it, and
//! `clobber_abi("C")` includes it only where the target lets code use it.
//! x20-x28 and v8-v15 are declared as clobbered by the switch asm, so the
//! compiler saves them only in functions that really hold values in them;
//! x19 and x29 are reserved by LLVM and are saved by hand.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -8       | fake return address    |  }  frame record of the root frame,
//!   -16      | link                   |  }  x29 points here while it runs
//!  (-24      | parent's GCS cap       |  }  stackswitch_gcs only,
//!   -32      | coroutine's GCS top)   |  }  see below
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |
//!            +------------------------+ ◄── sp given to init_stack (16-aligned)
//!            | GCS cap, or unused     |  (stackswitch_gcs, see below)
//!            | data pointer           |
//!            | entry function         |
//!  fresh sp  | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer, which
//! points at a frame record the switch left on the parent's stack:
//!
//! ```text
//!  parent's sp at the `resume` asm ──►  +----------------+  = CFA of the root frame
//!                                       | (unused)       |  CFA-8
//!                                       | parent x19     |  CFA-16  (stored by the parent)
//!                                       | parent lr      |  CFA-24  (into `resume`)  } stored by the
//!                                link ─►| parent x29     |  CFA-32                   } coroutine side
//!                                       +----------------+
//! ```
//!
//! `[link]` and `[link+8]` form an ordinary AArch64 frame record, so
//! frame-pointer walkers step from the coroutine's root (x29 = base-16)
//! through the fake return address into the parent. DWARF unwinders use the
//! CFA expression `deref(x29) + 32` given to the root frame.
//!
//! A suspended coroutine's context, at its saved stack pointer (16 bytes
//! more than strictly needed, because sp must stay 16-aligned):
//!
//! ```text
//!  sp   ──►  resume address | coroutine x19 | coroutine x29 | GCS cap or unused | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `blr` and the coroutine
//! leaves with `ret` to the parent's lr, so the return-address predictor
//! pairs every `ret` with the `blr` that it answers.
//!
//! Registers across a switch: x0 = the argument passed, x1 = the context
//! (coroutine's saved sp on the way in; on the way out its new context, or the
//! small `end` of `exit` when it has finished), x2 = address of the link word,
//! x3 scratch.
//!
//! Branch protection (`-Zbranch-protection`):
//! - `bti`: every `blr` target here starts with `bti c`: `coroutine_start`
//!   and label 2 of `suspend` (both entered by `resume`'s `blr`),
//!   `trap_start` (a pad in case the interrupted state awaited one), and
//!   `stack_call_trampoline` (called directly, but a linker veneer may reach
//!   it with `br x16`, which `bti c` also accepts). The pads are emitted only
//!   when build.rs sees `bti` in the flags (`stackswitch_bti`): `bti c` is a
//!   NOP on cores without BTI, but it would still be one more instruction
//!   on every resume of the default build.
//! - `pac-ret`: compiled functions sign lr with sp as the modifier on entry
//!   and authenticate it before returning. A switch never moves a function
//!   to another sp: every frame stays where it was on its own stack, and
//!   each side gets back exactly the sp it left with. The return addresses
//!   this file saves (the parent's lr in the frame record, the resume
//!   address) are plain, never signed, and returned to with a plain `ret`;
//!   the root frame's CFI does not toggle the RA-signed state
//!   (`DW_CFA_AARCH64_negate_ra_state`), so unwinders read them as plain
//!   addresses, which they are. The keys are per process, so a coroutine
//!   resumed by another thread would authenticate just as well (today none
//!   can be: `Coroutine` is not `Send`).
//! - `gcs` (the Guarded Control Stack, GCS: a shadow stack of return
//!   addresses that ordinary stores cannot reach, checked by every `ret`):
//!   see below.
//!
//! Guarded Control Stack. Linux enables GCS per thread only when a program
//! asks for it (glibc 2.41+ for GCS-marked binaries, or under the tunable
//! `glibc.cpu.aarch64_gcs`). Whether it is on is read at run time with
//! `chkfeat x16` (a hint: a NOP on cores without it), once per coroutine
//! creation, never per switch. What the build chooses:
//! - A default build's switch knows nothing of GCS, and cannot: a
//!   coroutine's `ret` into its parent does not match the top of the
//!   thread's one control stack. Creating a coroutine on a thread with GCS
//!   on panics, saying to build with `-Zbranch-protection=gcs`; the switch
//!   itself is untouched.
//! - Built with `-Zbranch-protection=gcs` (build.rs sets `stackswitch_gcs`),
//!   every coroutine created while GCS is on gets a control stack of its
//!   own from its `Stack` ([`Stack::shadow_stack`]: `DefaultStack` and
//!   `StackPool` stacks map one with `map_shadow_stack(2)`, with a cap token
//!   at its top, and keep it with the stack), and the switch moves between
//!   control stacks with `gcsss1`/`gcsss2`. A coroutine created without GCS
//!   gets none, and the switch skips the move (what remains is a load and
//!   a `cbz` on each side and a store on the way in), so that the same
//!   binary runs on cores without GCS.
//!
//! The control stacks (GCS grows downwards too; a cap token at address A is
//! `(A & !0xfff) | 1`, and `gcsss1 A` + `gcsss2` make the stack whose cap is
//! at A current, consuming that cap and leaving one on the stack left, whose
//! address `gcsss2` returns):
//!
//! ```text
//!  header (stackswitch_gcs):          parent's GCS          coroutine's GCS
//!   base-24 | parent cap ─────────►  | ...          |       | cap | ◄─ top-8, fresh (map_shadow_stack)
//!   base-32 | coroutine GCS top      | into resume  |       | ... |
//!                                    | cap          |       | cap | ◄─ context word 3 while suspended
//! ```
//!
//! - Resume: `resume`'s `blr` pushes its return address on the parent's
//!   GCS; then `coroutine_start` (or label 2 of `suspend`) switches to the
//!   coroutine's GCS through the cap whose address is the context's fourth
//!   word (the fresh one at the top, or the one its last suspend left),
//!   and stores the parent's new cap (just below that return address) in
//!   the header at base-24. The hand-made entry call pushes nothing: the
//!   entry never returns.
//! - Suspend: switches back through the parent's cap, saving the cap left
//!   on its own GCS in its context; the `ret` then matches the return
//!   address into `resume` on top of the parent's GCS.
//! - Exit: first pops its GCS back to the top kept at base-32 (`gcspopm`;
//!   a normal exit leaves nothing there, a trap handler's exit leaves the
//!   trapped frames' entries and its own call), so that the cap the switch
//!   leaves lands where `map_shadow_stack` put the fresh one: the control
//!   stack is ready for the next coroutine on the same stack (`StackPool`,
//!   `into_stack`). A stack whose coroutine did not exit (`force_reset`),
//!   or left more than 32 entries, is found without its cap at the next
//!   creation and gets a new control stack.
//! - Unwinding stays within one control stack: a panic or forced unwind is
//!   caught at the coroutine's root, and a GCS-aware libgcc (newer than
//!   gcc 12's, with which a caught panic crashes) pops one entry per frame
//!   it removes. `asm-unwind` lets a panic cross
//!   the root frame into the parent's frames on the coroutine's GCS, so
//!   with it a GCS thread gets the panic of a default build instead.
//! - `on_stack` (and so `maybe_grow`) runs its function on the control
//!   stack of the stack it is given, if that has one (`stack_call_trampoline`
//!   switches there and back; the call leaves it at its top, so that the
//!   cap lands back in place), so that growing segments grow the control
//!   stack too. `on_parent_stack` and `trap_start` move only the data
//!   stack: their calls and returns stay paired on the current GCS. Traps:
//!   the kernel saves GCSPR in the signal frame and restores it on return;
//!   the redirected coroutine goes on with the GCS it trapped on and leaves
//!   through `exit`.
//!
//! [`Stack::shadow_stack`]: crate::stack::Stack::shadow_stack

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
#[cfg(not(stackswitch_gcs))]
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// Two more words: the parent's GCS cap and the coroutine's GCS top.
#[cfg(stackswitch_gcs)]
pub(super) const STACK_HEADER_SIZE: usize = 32;
/// libgcc's `_Unwind_RaiseException` alone has a 3.7 KiB frame on AArch64
/// (its register tables cover the 96 DWARF registers with v0-v31); a forced
/// unwind from a minimal coroutine was measured to use 7.9 KiB of its stack
/// in a debug build (2.8 KiB on x86-64). 16 KiB leaves room for other
/// unwinders (LLVM libunwind on Apple) and is Apple's page size.
pub(super) const MIN_STACK_SIZE: usize = 16384;

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

pub(super) const LINK: usize = 16;

/// The landing pad of a `blr` target: `bti c` where the compiler's BTI is on
/// (build.rs sets `stackswitch_bti`); nothing otherwise.
#[cfg(stackswitch_bti)]
macro_rules! landing_pad {
    () => {
        "bti c"
    };
}
#[cfg(not(stackswitch_bti))]
macro_rules! landing_pad {
    () => {
        ""
    };
}

/// GCS instructions by their system-instruction encodings, which every
/// assembler takes: `gcsss1 x3` + `gcsss2 x3` switch to the control stack
/// whose cap token is at x3 and leave x3 = the cap left on the one switched
/// away from; `gcspopm x5` pops one entry.
#[cfg(stackswitch_gcs)]
macro_rules! gcs_switch_x3 {
    () => {
        "sys #3, c7, c7, #2, x3\nsysl x3, #3, c7, c7, #3"
    };
}

/// Switching in (x1 = context, x2 = link, on the parent's GCS): to the
/// coroutine's control stack if it has one (its cap in the context's
/// fourth word), keeping the parent's cap in the header (0: none).
#[cfg(stackswitch_gcs)]
macro_rules! gcs_enter {
    () => {
        concat!("ldr x3, [x1, #24]\ncbz x3, 3f\n", gcs_switch_x3!(), "\n3:\nstr x3, [x2, #-8]")
    };
}
#[cfg(not(stackswitch_gcs))]
macro_rules! gcs_enter {
    () => {
        ""
    };
}

/// Switching out in `suspend` (x2 = link; x29 and the context's fourth word
/// still to save, at [sp, #16]): back to the parent's control stack, the
/// coroutine's cap (or 0) going into its context.
#[cfg(stackswitch_gcs)]
macro_rules! save_x29_and_gcs {
    () => {
        concat!(
            "ldr x3, [x2, #-8]\ncbz x3, 4f\n",
            gcs_switch_x3!(),
            "\n4:\nstp x29, x3, [sp, #16]"
        )
    };
}
#[cfg(not(stackswitch_gcs))]
macro_rules! save_x29_and_gcs {
    () => {
        "str x29, [sp, #16]"
    };
}

/// Switching out in `exit`: pop the coroutine's control stack back to its
/// top (kept at base-32, i.e. [x2, #-16]; GCSPR_EL0 is S3_3_C2_C5_1) if it
/// is the current one and holds at most 32 entries (what `exit_with` and
/// the root leave; more, or another control stack, as after a trap in
/// `on_stack`, is left as it is, and the stack gets a new one at its next
/// creation), then back to the parent's.
#[cfg(stackswitch_gcs)]
macro_rules! gcs_leave {
    () => {
        concat!(
            "ldr x3, [x2, #-8]\ncbz x3, 3f\nldr x4, [x2, #-16]\n",
            "1:\nmrs x5, S3_3_C2_C5_1\nsub x5, x4, x5\nsub x5, x5, #1\ncmp x5, #256\nb.hs 2f\n",
            "sysl x5, #3, c7, c7, #1\nb 1b\n",
            "2:\n",
            gcs_switch_x3!(),
            "\n3:"
        )
    };
}
#[cfg(not(stackswitch_gcs))]
macro_rules! gcs_leave {
    () => {
        ""
    };
}

/// The switch asm, shared by `resume` and `suspend`, with the callee-saved
/// registers the compiler must save around it declared as clobbered (x19
/// and x29 are saved by the asm itself; see the module docs).
macro_rules! switch_asm {
    ($($args:tt)*) => {
        resume_asm!(
            $($args)*
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        )
    };
}

/// Whether GCS is on for this thread: `chkfeat x16` clears bit 0 of x16
/// when it is, and is a NOP on cores without it.
#[inline(always)]
pub(super) fn shadow_stack_active() -> bool {
    let features: usize;
    // SAFETY: a hint instruction that only clears bits of x16.
    unsafe {
        asm!(
            "mov x16, #1",
            "hint #40",
            out("x16") features,
            options(nomem, nostack, preserves_flags),
        )
    };
    features == 0
}

/// Whether this build's switch moves between control stacks, so that a
/// coroutine can run on a thread with GCS on (see the header).
pub(super) const FOLLOWS_SHADOW_STACK: bool = cfg!(all(stackswitch_gcs, not(feature = "asm-unwind")));

/// The panic of a coroutine creation on a thread with GCS on, in a build
/// whose switch cannot follow it.
#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn shadow_stack_unsupported() -> ! {
    panic!(
        "this thread runs with the Guarded Control Stack (GCS) on, and this build of stackswitch \
         cannot follow it across coroutine switches (the first switch would crash): build it \
         with nightly's -Zbranch-protection=gcs (and without the asm-unwind feature), or run \
         the program without GCS (GLIBC_TUNABLES=glibc.cpu.aarch64_gcs=0)"
    )
}

/// Gives a fresh context the control stack whose top is `shadow` (0: none,
/// GCS being off).
///
/// # Safety
/// `context` must be what `init_stack` returned for the stack whose base is
/// `base`; a non-zero `shadow` must be the top of a control stack with a
/// cap token in its top word.
#[inline(always)]
pub(super) unsafe fn set_shadow_stack(base: StackPointer, context: StackPointer, shadow: usize) {
    #[cfg(stackswitch_gcs)]
    // SAFETY: the context's fourth word and the header are this unused
    // stack's (see `init_stack`).
    unsafe {
        let top = base.get();
        *((context.get() + 24) as *mut usize) = if shadow == 0 { 0 } else { shadow - 8 };
        *((top - 24) as *mut usize) = 0;
        *((top - 32) as *mut usize) = shadow;
    }
    #[cfg(not(stackswitch_gcs))]
    let _ = (base, context, shadow);
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `blr`
/// with x0 = argument, x1 = fresh sp, x2 = link address, lr = return
/// address into `resume`; still on the parent's stack, whose x19 `resume`
/// has just stored at [sp].
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: the CFA is the parent's sp before `resume`
        // (16 above ours), the parent's x19 is at CFA-16, and the return
        // address is still in lr (the default rule for x30).
        ".cfi_startproc",
        ".cfi_def_cfa sp, 16",
        ".cfi_offset x19, -16",
        // Entered by `blr`.
        landing_pad!(),
        // Complete the parent's frame record (x29, lr) below its x19 with a
        // pre-indexed store, which moves sp in the same instruction so that
        // nothing is ever written below sp.
        "stp x29, x30, [sp, #-16]!",
        ".cfi_def_cfa_offset 32",
        ".cfi_offset x30, -24",
        ".cfi_offset x29, -32",
        // Publish the record's address through the link (sp cannot be the
        // source of a `str`, hence the copy).
        "mov x3, sp",
        "str x3, [x2]",
        // From here on the parent is described through the link:
        // CFA = [x29] + 32 (DW_CFA_def_cfa_expression, 5 bytes:
        // DW_OP_breg29 0 (0x8d 0x00), DW_OP_deref (0x06),
        // DW_OP_plus_uconst 32 (0x23 0x20)). The saved registers keep
        // their CFA-relative rules above.
        "mov x29, x2",
        ".cfi_escape 0x0f, 0x05, 0x8d, 0x00, 0x06, 0x23, 0x20",
        // Onto the coroutine's control stack, if it has one.
        gcs_enter!(),
        // Take the entry function and its data, move onto the coroutine
        // stack (16-aligned by init_stack) and call entry(arg, link, data);
        // x0 (arg) passes straight through.
        // The call is made by hand (lr set, then `br`; see arch/mod.rs). x16
        // because a `bti c` pad admits a `br` only through x16 or x17.
        "ldp x16, x2, [x1, #8]",
        "add sp, x1, #32",
        "mov x1, x29",
        "adr x30, 2f",
        "br x16",
        // The entry function leaves through `exit` and never returns. The
        // trap also keeps the return address (lr) inside this FDE.
        "2:",
        "brk #0x1",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): sp is 16-aligned
/// below the handler's data, lr = the handler, x29 = link address,
/// x0 = data, x1 = link.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`
        // (escape decoded there: CFA = [x29] + 32).
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x05, 0x8d, 0x00, 0x06, 0x23, 0x20",
        ".cfi_offset x19, -16",
        ".cfi_offset x30, -24",
        ".cfi_offset x29, -32",
        // Entered by a signal handler's rewrite of the context, not a call;
        // a pad anyway, in case the interrupted state awaited one.
        landing_pad!(),
        // Call the handler held in lr (BLR reads x30 before writing it), so
        // that its return address lies inside this FDE.
        "blr x30",
        "brk #0x1",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at x1 (16-aligned), with x29-based
/// CFI so unwinders continue on the original stack. "C-unwind": under
/// `asm-unwind` a panic in `f` passes through it.
#[cfg(not(stackswitch_gcs))]
#[unsafe(naked)]
pub(super) unsafe extern "C-unwind" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        landing_pad!(),
        // A normal frame record prologue: the CFA follows x29 from here.
        "stp x29, x30, [sp, #-16]!",
        ".cfi_def_cfa_offset 16",
        ".cfi_offset x30, -8",
        ".cfi_offset x29, -16",
        "mov x29, sp",
        ".cfi_def_cfa x29, 16",
        // Switch stacks and call; x0 (data) passes straight through.
        "mov sp, x1",
        "blr x2",
        // Back to the original stack and return.
        "mov sp, x29",
        ".cfi_def_cfa sp, 16",
        "ldp x29, x30, [sp], #16",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore x30",
        ".cfi_restore x29",
        "ret",
        ".cfi_endproc",
    )
}

/// [`stack_call_trampoline`] that also moves to the control stack whose top
/// is x3 (if not 0) for the call: the old cap is kept in the frame, and the
/// cap left on the new one (back at its top when `f` has returned) makes it
/// ready for the next call. Panics never cross it (`call_on_stack`'s root
/// catches them; `asm-unwind` is not used with GCS).
#[cfg(stackswitch_gcs)]
#[unsafe(naked)]
pub(super) unsafe extern "C-unwind" fn stack_call_trampoline(
    data: *mut u8,
    top: usize,
    f: StackCallFn,
    shadow: usize,
) {
    naked_asm!(
        ".cfi_startproc",
        landing_pad!(),
        // A frame record with the old cap above it.
        "stp x29, x30, [sp, #-32]!",
        ".cfi_def_cfa_offset 32",
        ".cfi_offset x30, -24",
        ".cfi_offset x29, -32",
        "mov x29, sp",
        ".cfi_def_cfa x29, 32",
        "cbz x3, 1f",
        "sub x3, x3, #8",
        gcs_switch_x3!(),
        "1:",
        "str x3, [x29, #16]",
        // Switch stacks and call; x0 (data) passes straight through.
        "mov sp, x1",
        "blr x2",
        // Back to the original control stack and stack, and return.
        "ldr x3, [x29, #16]",
        "cbz x3, 2f",
        gcs_switch_x3!(),
        "2:",
        "mov sp, x29",
        ".cfi_def_cfa sp, 32",
        "ldp x29, x30, [sp], #32",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore x30",
        ".cfi_restore x29",
        "ret",
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
        // Frame-pointer walkers only need this to symbolize inside
        // `coroutine_start`. They look up the return address minus 1 or 4;
        // +8 keeps both strictly inside (a lookup of the function's very
        // first byte was seen to resolve to the function before it).
        *((top - 8) as *mut usize) = coroutine_start as *const () as usize + 8;
        *((top - LINK) as *mut usize) = 0;
        // Four words, so that `add sp, x1, #32` lands back on `sp`.
        let fresh = sp - 32;
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
    // SAFETY: the coroutine context at `sp` restores every register the
    // compiler expects preserved (x19 here, x29 and sp on the coroutine
    // side, the rest declared clobbered), and returns to the instruction
    // after `blr` with sp 16 below where it was, which the `ldr` undoes.
    unsafe {
        switch_asm!(
            // Save x19 (LLVM's) with a pre-indexed store: the slot at CFA-16
            // of the root frame, and sp stays 16-aligned. Then call the
            // resume address saved at the coroutine's sp; it comes back
            // with `ret`. x3 is a scratch register of clobber_abi.
            "str x19, [sp, #-16]!",
            "ldr x3, [x1]",
            "blr x3",
            "ldr x19, [sp], #16",
            inout("x0") arg => ret_arg,
            inout("x1") sp.get() => ret_sp,
            inout("x2") base.get() - LINK => _,
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
        switch_asm!(
            // Save our context (pre-indexed: sp moves with the first store)
            // and hand its address to the parent in x1.
            "adr x3, 2f",
            "stp x3, x19, [sp, #-32]!",
            save_x29_and_gcs!(),
            "mov x1, sp",
            // Return into the parent's `resume`: restore its x29 and lr from
            // the frame record, and its sp to just above that record.
            "ldr x3, [x2]",
            "ldp x29, x30, [x3], #16",
            "mov sp, x3",
            "ret",
            // Resumed by `blr`: on the parent's stack, x1 = our context,
            // x2 = link, lr = return address into the parent. Complete its
            // frame record and publish it, as `coroutine_start` does.
            "2:",
            landing_pad!(),
            "stp x29, x30, [sp, #-16]!",
            "mov x3, sp",
            "str x3, [x2]",
            gcs_enter!(),
            // Restore ourselves: load before moving sp above the context,
            // so that the context is never below sp while it is read.
            "ldp x19, x29, [x1, #8]",
            "add sp, x1, #32",
            inout("x0") arg => ret_arg,
            inout("x2") link => _,
            out("x1") _,
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: x1 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished.
    unsafe {
        asm!(
            gcs_leave!(),
            "ldr x3, [x2]",
            "ldp x29, x30, [x3], #16",
            "mov sp, x3",
            "ret",
            in("x0") arg,
            in("x2") link,
            in("x1") end,
            options(noreturn),
        )
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
    // Nothing to write on the stack: the handler travels in lr, and
    // `trap_start` calls it with sp = `sp`.
    let link = base.get() - LINK;
    TrapHandlerRegs {
        pc: trap_start as *const () as u64,
        sp: sp as u64,
        x0: data as u64,
        x1: link as u64,
        x29: link as u64,
        lr: handler as usize as u64,
    }
}

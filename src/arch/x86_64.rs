//! x86-64, System V ABI (Linux, the BSDs, macOS, bare metal).
//!
//! Registers the ABI asks a callee to preserve: rbx, rbp, r12-r15, rsp (and
//! the control bits of MXCSR and the x87 control word, which coroutines do
//! not change on the caller's behalf and which we therefore leave alone).
//! r12-r15 are declared as clobbered by the switch asm, so the compiler saves
//! them only in functions that really hold values in them; rbx and rbp are
//! reserved by LLVM and are saved by hand.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -8       | fake return address    |  }  frame record of the root frame,
//!   -16      | link                   |  }  rbp points here while it runs
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |  (`data`: the entry's third argument)
//!            +------------------------+
//!            | coroutine_start + 2    |  (the entry's return address)
//!            | entry function         |
//!  fresh sp  | coroutine_start + 4    |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer, which
//! points at a frame record the switch left on the parent's stack:
//!
//! ```text
//!  parent's rsp at the `resume` asm ──►  +----------------+  = CFA of the root frame
//!                                        | parent rbx     |  CFA-8
//!                                        | return address |  CFA-16  (into `resume`)
//!                                 link ─►| parent rbp     |  CFA-24
//!                                        +----------------+
//! ```
//!
//! `[link]` and `[link+8]` form an ordinary frame record, so frame-pointer
//! walkers step from the coroutine's root (rbp = base-16) through the fake
//! return address into the parent. DWARF unwinders use the CFA expression
//! `deref(rbp) + 24` given to the root frame.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp   ──►  resume address | coroutine rbx | coroutine rbp | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `call` and the coroutine
//! leaves with `ret`, so the return-stack predictor stays in step.
//!
//! Control-flow protection (CET, `-Zcf-protection`): with `branch` or
//! `full`, every target of an indirect branch here starts with `endbr64`
//! (`coroutine_start` and label 2 of `suspend`, both entered by
//! `call [rsi]`, and `trap_start`; `stack_call_trampoline` is only called
//! directly), so the code works where IBT is enforced.
//! Without the flag those pads are not emitted at all.
//!
//! Shadow stacks (CET's `return` half, Linux's user shadow stack) are not
//! supported: a coroutine's `ret` into its parent does not match the top of
//! the thread's one shadow stack, so the first switch would die of a
//! control-protection fault (SIGSEGV). Linux enables the shadow stack only
//! when a program asks for it (glibc does for binaries marked SHSTK, under
//! `glibc.cpu.x86_shstk`). Creating a coroutine on a thread whose shadow
//! stack is active therefore panics with what to do instead
//! ([`shadow_stack_active`]: `rdsspq` reads the shadow-stack pointer, and is
//! a NOP leaving zero where none is active). The check runs where
//! `DefaultStack`s and `StackPool`s are made, since a shadow stack is turned
//! on when a thread starts, and at creation only on other stacks: nothing
//! on the common creation path, nothing per switch.
//!
//! The design a machine with CET would test (nothing here can run it):
//! - Each coroutine gets a shadow stack from `map_shadow_stack(2)` with
//!   `SHADOW_STACK_SET_TOKEN`, which puts a restore token in its top
//!   8 bytes; the fresh context keeps that token's address.
//! - Switching in (`coroutine_start`, label 2 of `suspend`, after
//!   `resume`'s `call` pushed the return address on the parent's shadow
//!   stack): `rstorssp [token]` makes the coroutine's shadow stack current
//!   (it checks and consumes the token and leaves a previous-SSP token
//!   there), then `saveprevssp` writes a restore token on the parent's
//!   shadow stack just below its return address; the address of that token
//!   (the old SSP minus 8) goes in a header word next to the link.
//! - Switching out (`suspend`, `exit`): `rdsspq` gives the coroutine's SSP,
//!   saved in its context (the restore token will be written just below it,
//!   at SSP - 8); `rstorssp` on the parent's token and `saveprevssp` move back,
//!   and `ret` then matches the parent's return address on its own shadow
//!   stack. `exit` first pops the coroutine's shadow stack back to its
//!   top (`incsspq` by the number of entries), so that the token written
//!   there leaves the stack fresh for the next coroutine (`StackPool`).
//! - The hand-made entry "call" (return address written, then `jmp`) pushes
//!   nothing on the shadow stack, which is right: the entry never returns.
//! - Unwinding within a coroutine: the unwinder (libgcc, built with CET)
//!   counts the frames it removes and pops as many shadow-stack entries with
//!   `incsspq`, so a caught panic or a forced unwind on drop (both caught at
//!   the coroutine's root, on its own stacks) stays balanced. With
//!   `asm-unwind` a panic crossing the root frame would pop the coroutine's
//!   shadow stack for the parent's frames: that feature and shadow stacks do
//!   not go together.
//! - Traps: the kernel saves SSP in the signal frame and restores it on
//!   `sigreturn`; a redirected trapped coroutine continues on its own shadow
//!   stack (`trap_start` calls the handler, pushing there), and its `exit`
//!   pops back to the top as above.
//! - `on_stack`, `on_parent_stack` and `maybe_grow` move only the data stack:
//!   calls and returns stay paired on the current shadow stack.
//! - Costs: `rdsspq`, two `rstorssp`/`saveprevssp` pairs and two stores per
//!   round trip, built only under a cfg like `stackswitch_ibt` (set for
//!   `-Zcf-protection=return|full`), with a run-time test of the saved token
//!   so that the same binary still runs without a shadow stack.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// Enough to run and unwind a coroutine (the first forced unwind of a
/// process is tested on a stack of this size).
pub(super) const MIN_STACK_SIZE: usize = 4096;

/// Whether this thread runs with an active shadow stack: `rdsspq` reads the
/// shadow-stack pointer where one is active and is a NOP otherwise (a CPU
/// without CET, or a shadow stack not enabled), leaving the zero.
#[inline(always)]
pub(super) fn shadow_stack_active() -> bool {
    let ssp: usize;
    // SAFETY: zeroes a register and reads the shadow-stack pointer into it
    // (a NOP without an active shadow stack); touches no memory or stack.
    unsafe {
        asm!(
            "xor {0:e}, {0:e}",
            "rdsspq {0}",
            out(reg) ssp,
            options(nomem, nostack),
        )
    };
    ssp != 0
}

/// The switch does not follow a shadow stack (see the header).
pub(super) const FOLLOWS_SHADOW_STACK: bool = false;

/// The panic of a coroutine creation on a thread with a shadow stack.
#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn shadow_stack_unsupported() -> ! {
    panic!(
        "this thread runs with a CET shadow stack, which stackswitch cannot follow across \
         coroutine switches (the first switch would crash); run the program without it: \
         GLIBC_TUNABLES=glibc.cpu.x86_shstk=off, or do not enable it (ARCH_SHSTK_ENABLE)"
    )
}

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub rip: u64,
        pub rsp: u64,
        pub rbp: u64,
        pub rdi: u64,
        pub rsi: u64,
    }
}

pub(super) const LINK: usize = 16;

/// The landing pad of an indirect-branch target: `endbr64` where the
/// compiler's IBT is on (build.rs sets `stackswitch_ibt`); nothing otherwise,
/// so that the default switch path carries no extra instruction.
#[cfg(stackswitch_ibt)]
macro_rules! landing_pad {
    () => {
        "endbr64"
    };
}
#[cfg(not(stackswitch_ibt))]
macro_rules! landing_pad {
    () => {
        ""
    };
}

/// Offset of the entry point of `coroutine_start`. Its first four bytes
/// (`nop`, `nop`, `ud2`) are where the entry function "returns" to (it
/// never does): the return address init_stack gives it, and the fake return
/// address of the root frame record, is `coroutine_start + 2`. Unwinders
/// look up a return address minus one, so the unwind rules from offset 0
/// are those of a running coroutine's root frame; and symbolizers resolve
/// offset 1 to this function (a lookup of a function's very first byte
/// was seen to resolve to the function before it).
const START_ENTRY: usize = 4;
/// Where the entry function's return address points.
const START_RETURN: usize = 2;

/// First code to run on a fresh coroutine. Entered at `START_ENTRY` by
/// `resume`'s `call`, with rdi = argument, rsi = fresh sp, rdx = stack base;
/// still on the parent's stack.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        ".cfi_startproc",
        // Offset 0, the return address of the entry function (minus one):
        // the parent is described through the link, CFA = [rbp] + 24
        // (DW_CFA_def_cfa_expression: DW_OP_breg6 0, DW_OP_deref,
        // DW_OP_plus_uconst 24), as in the body below. Two one-byte `nop`s
        // and a two-byte `ud2` make the four bytes before the entry point.
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x18",
        ".cfi_offset rip, -16",
        ".cfi_offset rbx, -8",
        ".cfi_offset rbp, -24",
        "nop",
        "nop",
        "ud2",
        // Offset 4, the entry point. Unwind rules on entry: return address
        // at [rsp], the parent's rbx above it, rbp not yet saved; the CFA is
        // the parent's rsp before `resume`.
        ".cfi_def_cfa rsp, 16",
        ".cfi_restore rbp",
        // Entered by `call [rsi]`.
        landing_pad!(),
        // Complete the parent's frame record and publish it through the link.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -24",
        "mov [rdx - 16], rsp",
        // From here on the parent is described through the link:
        // CFA = [rbp] + 24 (DW_CFA_def_cfa_expression:
        // DW_OP_breg6 0, DW_OP_deref, DW_OP_plus_uconst 24).
        "lea rbp, [rdx - 16]",
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x18",
        // Call entry(arg, link, data) on the coroutine stack, by hand (see
        // arch/mod.rs): rsp goes to the return-address word that init_stack
        // wrote (`coroutine_start + START_RETURN`), and a jump enters the
        // entry. The data (the closure) lies right above that word.
        "mov rax, [rsi + 8]",
        "lea rdx, [rsi + 24]",
        "lea rsp, [rsi + 16]",
        "mov rsi, rbp",
        "jmp rax",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): rsp is 16-aligned
/// below the handler's data and holds the handler's address, rbp = link
/// address, rdi = data, rsi = link.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`.
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x18",
        ".cfi_offset rbx, -8",
        ".cfi_offset rip, -16",
        ".cfi_offset rbp, -24",
        // Entered by a signal handler's rewrite of the context, not a call;
        // a pad anyway, in case the interrupted state awaited one.
        landing_pad!(),
        "call [rsp]",
        "ud2",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at rsi (16-aligned), with rbp-based
/// CFI so unwinders continue on the original stack. "C-unwind": under
/// `asm-unwind` a panic in `f` passes through it.
#[unsafe(naked)]
pub(super) unsafe extern "C-unwind" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        // A normal frame-pointer prologue: the CFA follows rbp from here.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        // Switch stacks and call; rdi (data) passes straight through.
        "mov rsp, rsi",
        "call rdx",
        // Back to the original stack.
        "mov rsp, rbp",
        "pop rbp",
        ".cfi_def_cfa rsp, 8",
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
        let returned = coroutine_start as *const () as usize + START_RETURN;
        *((top - 8) as *mut usize) = returned;
        // Three words below the data, so that the entry starts with rsp at
        // the third (the return address), 8 below a 16-byte boundary.
        debug_assert_eq!(data as usize, sp);
        let fresh = sp - 24;
        *((fresh + 16) as *mut usize) = returned;
        *((fresh + 8) as *mut usize) = entry as usize;
        *(fresh as *mut usize) = coroutine_start as *const () as usize + START_ENTRY;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine context at `sp` restores every register the
    // compiler expects preserved (rbx here, rbp on the coroutine side, the
    // rest declared clobbered), and returns to the instruction after `call`
    // with rsp back where it was.
    unsafe {
        resume_asm!(
            // Save rbx (LLVM's), then call the resume address saved on the
            // coroutine stack; the coroutine comes back with `ret`.
            "push rbx",
            "call [rsi]",
            "pop rbx",
            inout("rdi") arg => ret_arg,
            inout("rsi") sp.get() => ret_sp,
            inout("rdx") base.get() => _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    (ret_arg, ret_sp)
}

/// # Safety
/// See [`super::suspend`].
#[inline(always)]
pub(super) unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
    let ret_arg;
    // SAFETY: the saved context (resume address, rbx, rbp) is what the code
    // at label 2 restores, and the parent's frame record is at [link].
    unsafe {
        asm!(
            // Save our context and hand its address to the parent in rsi.
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov rsi, rsp",
            // Return into the parent's `resume`, restoring its rbp.
            "mov rsp, [rdx]",
            "pop rbp",
            "ret",
            // Resumed: on the parent's stack, rdx = stack base, rsi = our
            // context. Complete the parent's frame record, publish it in the
            // link, restore ourselves. Entered by `call [rsi]`.
            "2:",
            landing_pad!(),
            "push rbp",
            "mov [rdx - 16], rsp",
            "lea rsp, [rsi + 8]",
            "pop rbx",
            "pop rbp",
            inout("rdi") arg => ret_arg,
            inout("rdx") link => _,
            out("rsi") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: rsi = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished.
    unsafe {
        asm!(
            "mov rsp, [rdx]",
            "pop rbp",
            "ret",
            in("rdi") arg,
            in("rdx") link,
            in("rsi") end,
            options(noreturn),
        )
    }
}

current_stack_pointer_by!("mov {}, rsp");

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
    let rsp = sp - 16;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe { *(rsp as *mut usize) = handler as usize };
    TrapHandlerRegs {
        rip: trap_start as *const () as u64,
        rsp: rsp as u64,
        rbp: link as u64,
        rdi: data as u64,
        rsi: link as u64,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// `arch_prctl` codes of `<asm/prctl.h>`.
    const ARCH_SHSTK_STATUS: libc::c_int = 0x5005;
    const ARCH_SHSTK_SHSTK: u64 = 1 << 0;

    /// `rdsspq` and the kernel agree on whether the shadow stack is on
    /// (off on every machine this runs on so far: no CET CPU yet).
    #[test]
    fn shadow_stack_detection_agrees_with_the_kernel() {
        let mut features: u64 = 0;
        // SAFETY: ARCH_SHSTK_STATUS writes one u64 through the pointer.
        let status = unsafe {
            libc::syscall(libc::SYS_arch_prctl, ARCH_SHSTK_STATUS, &mut features as *mut u64)
        };
        let kernel_says = status == 0 && features & ARCH_SHSTK_SHSTK != 0;
        assert_eq!(shadow_stack_active(), kernel_says, "arch_prctl: {status}, features {features:#x}");
    }

    /// The panic says what happened and what to do.
    #[test]
    fn shadow_stack_panic_says_what_to_do() {
        let message = std::panic::catch_unwind(|| shadow_stack_unsupported()).unwrap_err();
        // A message without arguments is a `&str` payload.
        let message = *message.downcast_ref::<&str>().unwrap();
        assert!(message.contains("CET shadow stack"), "{message}");
        assert!(message.contains("GLIBC_TUNABLES=glibc.cpu.x86_shstk=off"), "{message}");
    }
}

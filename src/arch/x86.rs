//! 32-bit x86, System V i386 ABI (Linux and other ELF systems).
//!
//! Registers the ABI asks a callee to preserve: ebx, esi, edi, ebp, esp (and
//! the control bits of MXCSR and the x87 control word, which coroutines do
//! not change on the caller's behalf and which we therefore leave alone).
//! ebx and edi are declared as clobbered by the switch asm, so the compiler
//! saves them only where it really keeps values in them; LLVM reserves esi
//! (its base pointer on x86-32) and ebp, so those two are saved by hand.
//!
//! Arguments travel in registers inside this file (eax = the value handed
//! across, ecx = a context, edx = the link address). The root functions are
//! ordinary cdecl `extern "C"` functions whose arguments are on the stack:
//! the assembly stores them there before calling.
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -4       | fake return address    |  }  frame record of the root frame,
//!   -8       | link                   |  }  ebp points here while it runs
//!            +------------------------+
//!            | (padding)              |
//!            +------------------------+ ◄── STACK_HEADER_SIZE (16)
//!            | closure (moved here)   |
//!            +------------------------+ ◄── `sp` given to init_stack (16-aligned)
//!            | (padding)              |
//!            | data          (arg 3)  |  ┐  cdecl arguments of the entry
//!            | link address  (arg 2)  |  │  function, 16-aligned at the call
//!    A  ──►  | first resume  (arg 1)  |  ┘  (written by coroutine_start)
//!            | entry function         |
//!  fresh sp  | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer, which
//! points at a frame record the switch left on the parent's stack:
//!
//! ```text
//!  parent's esp at the `resume` asm ──►  +----------------+  = CFA of the root frame
//!                                        | parent esi     |  CFA-4
//!                                        | return address |  CFA-8  (into `resume`)
//!                                 link ─►| parent ebp     |  CFA-12
//!                                        +----------------+
//! ```
//!
//! `[link]` and `[link+4]` form an ordinary frame record, so frame-pointer
//! walkers step from the coroutine's root (ebp = base-8) through the fake
//! return address into the parent. DWARF unwinders use the CFA expression
//! `deref(ebp) + 12` given to the root frame.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp   ──►  resume address | coroutine esi | coroutine ebp | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `call` and the coroutine
//! leaves with `ret`, so the return-stack predictor stays in step.
//!
//! DWARF register numbers used below (i386 psABI): ebx 3, ebp 5, esi 6,
//! eip (return address column) 8.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

sanitizer_unwind_anchor!();

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 16;
/// Enough to run and unwind a coroutine (32-bit frames are smaller than
/// x86-64's, which runs in the same size).
pub(super) const MIN_STACK_SIZE: usize = 4096;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub eip: u32,
        pub esp: u32,
        pub ebp: u32,
        pub ecx: u32,
        pub edx: u32,
    }
}

pub(super) const LINK: usize = 8;

/// First code to run on a fresh coroutine. Entered by `resume`'s `call`
/// with eax = argument, ecx = fresh sp, edx = link address; still on the
/// parent's stack.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: return address at [esp], the parent's esi
        // above it; the CFA is the parent's esp before `resume`.
        ".cfi_startproc",
        ".cfi_def_cfa esp, 8",
        ".cfi_offset eip, -8",
        ".cfi_offset esi, -4",
        // Complete the parent's frame record and publish it through the link.
        "push ebp",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_offset ebp, -12",
        "mov [edx], esp",
        // From here on the parent is described through the link:
        // CFA = [ebp] + 12 (DW_CFA_def_cfa_expression, 5 bytes of expression:
        // DW_OP_breg5 (ebp) 0, DW_OP_deref, DW_OP_plus_uconst 12).
        "mov ebp, edx",
        ".cfi_escape 0x0f, 0x05, 0x75, 0x00, 0x06, 0x23, 0x0c",
        // Move onto the coroutine stack at A (16-aligned by init_stack), where
        // link and data already wait as arguments 2 and 3; store argument 1
        // and call entry(arg, link, data).
        "lea esp, [ecx + 8]",
        "mov [esp], eax",
        "call [ecx + 4]",
        // The entry function leaves through `exit` and never returns.
        "ud2",
        ".cfi_endproc",
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): esp is 16-aligned
/// with room for two arguments, ebp = link address, ecx = data, edx = the
/// handler.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`
        // (the escape is decoded there).
        ".cfi_startproc",
        ".cfi_escape 0x0f, 0x05, 0x75, 0x00, 0x06, 0x23, 0x0c",
        ".cfi_offset esi, -4",
        ".cfi_offset eip, -8",
        ".cfi_offset ebp, -12",
        // Entered by a signal handler's rewrite of the context, not a call:
        // pass handler(data, link) its cdecl arguments and call it.
        "mov [esp], ecx",
        "mov [esp + 4], ebp",
        "call edx",
        "ud2",
        ".cfi_endproc",
    )
}

/// Calls `f(data)` on the stack topped at `top` (16-aligned), with ebp-based
/// CFI so unwinders continue on the original stack.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".cfi_startproc",
        // A normal frame-pointer prologue: the CFA follows ebp from here.
        "push ebp",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_offset ebp, -8",
        "mov ebp, esp",
        ".cfi_def_cfa_register ebp",
        // Our cdecl arguments: data, top, f above the return address.
        "mov eax, [ebp + 8]",
        "mov ecx, [ebp + 12]",
        "mov edx, [ebp + 16]",
        // Switch stacks, leaving one 16-byte aligned slot for f's argument.
        "lea esp, [ecx - 16]",
        "mov [esp], eax",
        "call edx",
        // Back to the original stack.
        "mov esp, ebp",
        "pop ebp",
        ".cfi_def_cfa esp, 4",
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
        let link = top - LINK;
        *((top - 4) as *mut usize) = coroutine_start as *const () as usize + 1;
        *(link as *mut usize) = 0;
        // The argument block A is 16-aligned; argument 1 is stored by
        // coroutine_start.
        let a = sp - 16;
        *((a + 8) as *mut usize) = data as usize;
        *((a + 4) as *mut usize) = link;
        let fresh = a - 8;
        *((fresh + 4) as *mut usize) = entry as usize;
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
    // compiler expects preserved (esi here, ebp on the coroutine side, ebx and
    // edi declared clobbered), and returns to the instruction after `call`
    // with esp back where it was.
    unsafe {
        resume_asm!(
            // Save esi (LLVM's), then call the resume address saved on the
            // coroutine stack; the coroutine comes back with `ret`.
            "push esi",
            "call [ecx]",
            "pop esi",
            inout("eax") arg => ret_arg,
            inout("ecx") sp.get() => ret_sp,
            inout("edx") base.get() - LINK => _,
            out("ebx") _, out("edi") _,
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
    // SAFETY: the saved context (resume address, esi, ebp) is what the code
    // at label 2 restores, and the parent's frame record is at [link].
    unsafe {
        asm!(
            // Save our context: ebp, esi, then the resume address (label 2).
            "push ebp",
            "push esi",
            // x86-32 code cannot name its own address; a call to the very
            // next instruction pushes it (CPUs recognise this form and keep
            // it out of the return-stack predictor), and adding the distance from label 3
            // to label 2 turns it into the resume address.
            // (LLVM's Intel-syntax parser takes only one symbol per operand,
            // so the distance is named first; every copy of this block
            // gives it the same value.)
            "call 3f",
            "3:",
            ".set .Lstackswitch_resume_distance, 2f - 3b",
            "add dword ptr [esp], offset .Lstackswitch_resume_distance",
            // Hand the context's address to the parent in ecx.
            "mov ecx, esp",
            // Return into the parent's `resume`, restoring its ebp.
            "mov esp, [edx]",
            "pop ebp",
            "ret",
            // Resumed: on the parent's stack, edx = link, ecx = our context.
            // Complete its frame record, publish it, restore ourselves.
            "2:",
            "push ebp",
            "mov [edx], esp",
            "lea esp, [ecx + 4]",
            "pop esi",
            "pop ebp",
            inout("eax") arg => ret_arg,
            inout("edx") link => _,
            out("ecx") _,
            out("ebx") _, out("edi") _,
            clobber_abi("C"),
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: ecx = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished.
    unsafe {
        asm!(
            "mov esp, [edx]",
            "pop ebp",
            "ret",
            in("eax") arg,
            in("edx") link,
            in("ecx") end,
            options(noreturn),
        )
    }
}

current_stack_pointer_by!("mov {}, esp");

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
    TrapHandlerRegs {
        eip: trap_start as *const () as u32,
        // Two argument slots, keeping the 16-byte alignment of the call.
        esp: (sp - 16) as u32,
        ebp: link as u32,
        ecx: data as u32,
        edx: handler as usize as u32,
    }
}

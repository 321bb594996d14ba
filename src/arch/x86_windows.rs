//! 32-bit x86 Windows (cdecl `extern "C"`).
//!
//! Registers a callee must preserve: ebx, esi, edi, ebp, esp. ebx and edi
//! are declared as clobbered by the switch asm (the compiler saves them only
//! where it keeps values in them); LLVM reserves esi (its base pointer on
//! x86-32) and ebp, so those two are saved by hand. Inside this file values
//! travel in registers: eax = the value handed across, ecx = a context,
//! edx = the link address; the root functions are cdecl, so the asm stores
//! their arguments on the stack.
//!
//! Every switch swaps the TEB's stack fields (the TEB is at fs:0; see
//! `windows.rs`) with the copy kept in the coroutine's header, and with
//! them NT_TIB.ExceptionList (`fs:[0]`), the head of the SEH registration
//! chain, whose records live on the stack. A fresh coroutine's SEH chain is
//! one terminal record in its header whose handler is copied from the end
//! of the thread's chain (the OS's final handler, which SEHOP requires to
//! end every chain).
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -4       | fake return address    |  }  frame record of the root frame,
//!   -8       | link                   |  }  ebp points here while it runs
//!   -12      | final SEH handler      |  }  terminal SEH record
//!   -16      | 0xFFFFFFFF             |  }  (EXCEPTION_REGISTRATION_RECORD)
//!   -20      | ExceptionList          |  TEB field
//!   -24..-32 | (padding)              |
//!   -36      | GuaranteedStackBytes   |  }
//!   -40      | DeallocationStack      |  }  TEB fields (StackTebFields)
//!   -44      | StackLimit             |  }
//!   -48      | StackBase              |  }
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |
//!            +------------------------+ ◄── `sp` given to init_stack
//!            | (padding)              |
//!            | data          (arg 3)  |  ┐  cdecl arguments of the entry
//!            | link address  (arg 2)  |  │  function, 16-aligned at the
//!            | first resume  (arg 1)  |  ┘  call (written by coroutine_start)
//!            | (padding)              |
//!            | data                   |
//!            | entry function         |
//!  fresh sp  | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the address of a frame record the
//! switch left on the parent's stack:
//!
//! ```text
//!  parent's esp at the `resume` asm ──►  +----------------+  = CFA of the root frame
//!                                        | return address |  CFA-4  (into `resume`)
//!                                 link ─►| parent ebp     |  CFA-8
//!                                        | parent esi     |  CFA-12
//!                                        | link address   |  CFA-16  (spare, not read)
//!                                        +----------------+
//! ```
//!
//! `[link]` and `[link+4]` form an ordinary frame record, so frame-pointer
//! walkers step from the coroutine's root (ebp = base-8) into the parent.
//! DWARF unwinders (i686-pc-windows-gnu unwinds with DWARF CFI) use the CFA
//! expression `deref(ebp) + 8` given to the root frame. On the MSVC target
//! the CFI directives are left out (no .eh_frame there) and only the frame
//! record links the stacks.
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
//! DWARF register numbers used below (i386): ebp 5, esi 6, eip 8.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

pub(super) use super::windows::MIN_STACK_SIZE;

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 48;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub eip: u32,
        pub esp: u32,
        pub ebp: u32,
        pub eax: u32,
        pub ebx: u32,
        pub ecx: u32,
        pub edx: u32,
    }
}

pub(super) const LINK: usize = 8;
/// Offset of the terminal SEH record below the base.
const SEH_RECORD: usize = 16;

/// DWARF CFI only where the target unwinds with DWARF (the GNU target);
/// elsewhere the directives are dropped.
#[cfg(target_env = "gnu")]
macro_rules! cfi {
    ($($s:literal),* $(,)?) => { concat!($($s, "\n"),*) };
}
#[cfg(not(target_env = "gnu"))]
macro_rules! cfi {
    ($($s:literal),* $(,)?) => { "" };
}

/// The address of the current thread's TEB (NT_TIB.Self, at `fs:[0x18]`).
#[inline(always)]
pub(super) fn teb() -> usize {
    let teb: usize;
    // SAFETY: reads a field of the current thread's own TEB.
    unsafe {
        asm!(
            concat!("mov {}, dword ptr fs:[", teb_offset!(SelfTeb), "]"),
            out(reg) teb,
            options(nostack, readonly, preserves_flags),
        )
    };
    teb
}

/// Exchanges TEB field `$field` with the word at `[$p]`, using scratch
/// registers `$a` and `$b`.
macro_rules! swap_field {
    ($field:ident, $p:expr, $a:literal, $b:literal) => {
        concat!(
            "mov ", $a, ", dword ptr fs:[", teb_offset!($field), "]\n",
            "mov ", $b, ", dword ptr [", $p, "]\n",
            "mov dword ptr fs:[", teb_offset!($field), "], ", $b, "\n",
            "mov dword ptr [", $p, "], ", $a, "\n",
        )
    };
}

/// Swaps the four `StackTebFields` at `$p` with the TEB, using scratch
/// registers `$a` and `$b`.
macro_rules! swap_teb {
    ($p:literal, $a:literal, $b:literal) => {
        concat!(
            swap_field!(StackBase, $p, $a, $b),
            swap_field!(StackLimit, concat!($p, " + 4"), $a, $b),
            swap_field!(DeallocationStack, concat!($p, " + 8"), $a, $b),
            swap_field!(GuaranteedStackBytes, concat!($p, " + 12"), $a, $b),
        )
    };
}

// `swap_header` finds the TEB fields (the bottom of the header, see
// `windows.rs`) from the link address.
const _: () = assert!(STACK_HEADER_SIZE - LINK == 40);

/// Swaps all five TEB fields with the header of the coroutine whose link
/// address is in edx (TEB fields at edx - 40, ExceptionList at edx - 12),
/// using ebx and edi.
macro_rules! swap_header {
    () => {
        concat!(
            swap_teb!("edx - 40", "ebx", "edi"),
            swap_field!(ExceptionList, "edx - 12", "ebx", "edi"),
        )
    };
}

/// Gives the TEB and SEH chain back to the parent blocked in `resume` (link
/// address in edx), keeping ours in the header, and returns into its
/// `resume`, restoring its esi and ebp (esi is read before esp moves, never
/// below esp). Uses ebx and edi.
macro_rules! return_to_parent {
    () => {
        concat!(
            swap_header!(),
            "mov ebx, [edx]\n",
            "mov esi, [ebx - 4]\n",
            "mov esp, ebx\n",
            "pop ebp\n",
            "ret\n",
        )
    };
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `call`
/// with eax = argument, ecx = fresh sp, edx = link address; still on the
/// parent's stack.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        // Unwind rules on entry: return address at [esp]; the CFA is the
        // parent's esp before `resume`'s call.
        cfi!(
            ".cfi_startproc",
            ".cfi_def_cfa esp, 4",
            ".cfi_offset eip, -4",
        ),
        // Build the parent's frame record and publish it through the link.
        "push ebp",
        "push esi",
        "push edx",
        cfi!(".cfi_adjust_cfa_offset 12", ".cfi_offset ebp, -8", ".cfi_offset esi, -12"),
        "lea ebx, [esp + 8]",
        "mov [edx], ebx",
        // From here on the parent is described through the link:
        // CFA = [ebp] + 8 (DW_CFA_def_cfa_expression, 5 bytes of expression:
        // DW_OP_breg5 (ebp) 0, DW_OP_deref, DW_OP_plus_uconst 8).
        "mov ebp, edx",
        cfi!(".cfi_escape 0x0f, 0x05, 0x75, 0x00, 0x06, 0x23, 0x08"),
        // Install this stack's TEB fields and SEH chain, keeping the
        // parent's in the header.
        swap_header!(),
        // Move onto the coroutine stack (the argument area is 16-aligned by
        // init_stack), store the cdecl arguments and call
        // entry(arg, link, data).
        "mov ebx, [ecx + 4]",
        "mov edi, [ecx + 8]",
        "lea esp, [ecx + 16]",
        "mov [esp], eax",
        "mov [esp + 4], edx",
        "mov [esp + 8], edi",
        "call ebx",
        // The entry function leaves through `exit` and never returns.
        "ud2",
        cfi!(".cfi_endproc"),
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): esp is 16-aligned
/// with its two cdecl arguments (data, link) in place, ebp = link address,
/// eax = the handler, ebx = the terminal SEH record of this stack.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`
        // (the escape is decoded there).
        cfi!(
            ".cfi_startproc",
            ".cfi_escape 0x0f, 0x05, 0x75, 0x00, 0x06, 0x23, 0x08",
            ".cfi_offset eip, -4",
            ".cfi_offset ebp, -8",
            ".cfi_offset esi, -12",
        ),
        // The SEH chain may name records in the discarded frames, which the
        // handler's frames will overwrite: restart it at the terminal record.
        concat!("mov dword ptr fs:[", teb_offset!(ExceptionList), "], ebx"),
        // Entered by an exception handler's rewrite of the context, not a
        // call.
        "call eax",
        "ud2",
        cfi!(".cfi_endproc"),
    )
}

/// Calls `f(data)` on the stack topped at `top` (16-aligned), whose word at
/// `top` points at the TEB fields of that stack; they are swapped in for the
/// call and back out after it.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        cfi!(".cfi_startproc"),
        // A normal frame-pointer prologue: the CFA follows ebp from here.
        "push ebp",
        cfi!(".cfi_adjust_cfa_offset 4", ".cfi_offset ebp, -8"),
        "mov ebp, esp",
        cfi!(".cfi_def_cfa_register ebp"),
        "push ebx",
        cfi!(".cfi_offset ebx, -12"),
        // ebx (preserved by f) keeps the TEB block across the call.
        "mov ecx, [ebp + 12]",
        "mov ebx, [ecx]",
        swap_teb!("ebx", "eax", "edx"),
        // Switch stacks and call f(data) with its argument 16-aligned.
        "mov eax, [ebp + 8]",
        "mov edx, [ebp + 16]",
        "lea esp, [ecx - 16]",
        "mov [esp], eax",
        "call edx",
        swap_teb!("ebx", "eax", "edx"),
        // Back to the original stack.
        "lea esp, [ebp - 4]",
        "pop ebx",
        "pop ebp",
        cfi!(".cfi_def_cfa esp, 4"),
        "ret",
        cfi!(".cfi_endproc"),
    )
}

/// The handler of the last record of the current thread's SEH chain, or
/// `None` if the chain is empty.
fn final_seh_handler() -> Option<usize> {
    let mut record: usize;
    // SAFETY: reads the head of this thread's SEH chain from its TEB.
    unsafe {
        asm!(
            concat!("mov {}, dword ptr fs:[", teb_offset!(ExceptionList), "]"),
            out(reg) record,
            options(nostack, readonly),
        )
    };
    if record == usize::MAX {
        return None;
    }
    loop {
        // SAFETY: every record of the chain is a live
        // EXCEPTION_REGISTRATION_RECORD { Next, Handler } on this thread's
        // stacks, the last one with Next = 0xFFFFFFFF.
        let (next, handler) = unsafe { (*(record as *const usize), *((record + 4) as *const usize)) };
        if next == usize::MAX {
            return Some(handler);
        }
        record = next;
    }
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
        *((top - 4) as *mut usize) = coroutine_start as *const () as usize + 1;
        *((top - LINK) as *mut usize) = 0;
        // The coroutine's SEH chain: one terminal record, or none.
        // A zero handler marks "no record" for `trap_regs`.
        let record = top - SEH_RECORD;
        let handler = final_seh_handler().unwrap_or(0);
        *(record as *mut usize) = usize::MAX;
        *((record + 4) as *mut usize) = handler;
        let exception_list = if handler != 0 { record } else { usize::MAX };
        *((top - LINK - 12) as *mut usize) = exception_list;
        // The entry's argument area lies 16 bytes above the context.
        super::windows::fresh_context(sp, coroutine_start, entry, data)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine saves esi and ebp in the frame record it builds
    // on our stack and restores them before returning; ebx and edi are
    // declared clobbered; it returns to the instruction after `call` with
    // esp back where it was, and the TEB fields swapped back.
    unsafe {
        asm!(
            "call [ecx]",
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
            // Save our context (on our stack, TEB still ours) and hand its
            // address to the parent in ecx.
            "push ebp",
            "push esi",
            "lea ebx, [2f]",
            "push ebx",
            "mov ecx, esp",
            return_to_parent!(),
            // Resumed: on the parent's stack, edx = link, ecx = our context.
            // Build its frame record, publish it, take the TEB, restore
            // ourselves.
            "2:",
            "push ebp",
            "push esi",
            "push edx",
            "lea ebx, [esp + 8]",
            "mov [edx], ebx",
            swap_header!(),
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
    // finished. The swap leaves our final TEB fields in the header for
    // `Stack::update_teb_fields`.
    unsafe {
        asm!(
            return_to_parent!(),
            in("eax") arg,
            in("edx") link,
            in("ecx") end,
            options(noreturn),
        )
    }
}

/// Bytes kept free below the link for `parent_stack_top` (see
/// [`super::parent_stack_top`]): below the parent's frame record, the two
/// words pushed under it and the word where `call_on_stack` finds the
/// address of the stack's TEB fields.
pub(super) const PARENT_FRAME_BELOW_LINK: usize = 12;

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
    let esp = sp - 16;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe {
        *(esp as *mut usize) = data as usize;
        *((esp + 4) as *mut usize) = link;
    }
    // The chain to restart from: the terminal record, if the stack has one.
    // SAFETY: init_stack wrote the record; a zero handler means none.
    let record = base.get() - SEH_RECORD;
    let has_record = unsafe { *((record + 4) as *const usize) } != 0;
    TrapHandlerRegs {
        eip: trap_start as *const () as u32,
        esp: esp as u32,
        ebp: link as u32,
        eax: handler as usize as u32,
        ebx: if has_record { record as u32 } else { u32::MAX },
        ecx: 0,
        edx: 0,
    }
}

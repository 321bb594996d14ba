//! x86-64, Microsoft x64 ABI (Windows).
//!
//! Registers a callee must preserve: rbx, rbp, rdi, rsi, r12-r15, rsp and
//! xmm6-xmm15. rdi, rsi, r12-r15 and xmm6-xmm15 are declared as clobbered by
//! the switch asm, so the compiler saves only those it really uses; rbx and
//! rbp are reserved by LLVM and saved by hand. Callers leave 32 bytes of
//! "shadow space" above the return address for the callee.
//!
//! Every switch swaps the TEB's stack fields (the TEB is at gs:0; see
//! `windows.rs`) with the copy kept in the coroutine's header.
//!
//! Windows itself does not use NT_TIB.ExceptionList (`gs:[0]`) on x64, but
//! Wine keeps a list of its own exception frames there and, while
//! dispatching an exception, calls every frame of that list whose address
//! is below the stack pointer of the frame being examined. Parent frames
//! at addresses below a coroutine stack would then be called first, and
//! would end the dispatch. So the list is swapped as well: a coroutine
//! starts with the empty list (all ones).
//!
//! Stack of a coroutine (addresses grow upwards; `base` is 16-aligned):
//!
//! ```text
//!  base ──►  +------------------------+
//!   -8       | ExceptionList          |  TEB field, swapped too (see below)
//!   -16      | SS   (unused)          |  }
//!   -24      | RSP = link             |  }  a machine frame (UWOP_PUSH_MACHFRAME
//!   -32      | EFLAGS (unused)        |  }  layout): the unwinder loads the
//!   -40      | CS   (unused)          |  }  parent's rip and rsp from it
//!   -48      | RIP = parent_landing   |  }  ◄── rbp of the root frame (H)
//!            +------------------------+
//!   -56      | GuaranteedStackBytes   |  }
//!   -64      | DeallocationStack      |  }  TEB fields (StackTebFields)
//!   -72      | StackLimit             |  }
//!   -80      | StackBase              |  }
//!            +------------------------+ ◄── STACK_HEADER_SIZE
//!            | closure (moved here)   |
//!            +------------------------+
//!            | (pad) | data | entry   |
//!  fresh sp  | coroutine_start        |  (`resume` calls through this word)
//!            +------------------------+
//! ```
//!
//! While the coroutine runs, `link` holds the parent's stack pointer, which
//! points at a frame record the switch left on the parent's stack:
//!
//! ```text
//!  parent's rsp at the `resume` asm ──►  +----------------+
//!                                        | return address |  into `resume`
//!                                        | parent rbx     |
//!                                        | parent rbp     |
//!                                 link ─►| link address   |  (spare, not read)
//!                                        +----------------+
//! ```
//!
//! It is laid out like the frame of `parent_landing`, a function whose
//! prologue is `push rbx; push rbp; sub rsp, 8`. So the root frame's unwind
//! codes (set-frame on rbp = H, then a machine frame) make any SEH unwinder
//! continue at rip = `parent_landing`, rsp = link, and `parent_landing`'s
//! own codes restore rbp, rbx and then rip/rsp of the parent function.
//!
//! A suspended coroutine's context, at its saved stack pointer:
//!
//! ```text
//!  sp   ──►  resume address | coroutine rbx | coroutine rbp | (its frames…)
//! ```
//!
//! A switch is asymmetric: `resume` enters with `call` and the coroutine
//! leaves with `ret`, so the return-stack predictor stays in step.

use core::arch::{asm, naked_asm};

use crate::abi::{EntryFn, StackCallFn, StackPointer, TrapEntryFn, Word};

pub(super) use super::windows::MIN_STACK_SIZE;

pub(super) const STACK_ALIGNMENT: usize = 16;
pub(super) const STACK_HEADER_SIZE: usize = 80;

trap_handler_regs! {
    pub struct TrapHandlerRegs {
        pub rip: u64,
        pub rsp: u64,
        pub rbp: u64,
        pub rdi: u64,
        pub rsi: u64,
    }
}

pub(super) const LINK: usize = 24;
/// Offset of the machine frame (and of the root frame's rbp) below the base.
const MACHFRAME: usize = 48;
/// Offset of the saved ExceptionList below the base.
const EXCEPTION_LIST: usize = 8;

/// The address of the current thread's TEB (NT_TIB.Self, at `gs:[0x30]`).
#[inline(always)]
pub(super) fn teb() -> usize {
    let teb: usize;
    // SAFETY: reads a field of the current thread's own TEB.
    unsafe {
        asm!(
            concat!("mov {}, qword ptr gs:[", teb_offset!(SelfTeb), "]"),
            out(reg) teb,
            options(nostack, readonly, preserves_flags),
        )
    };
    teb
}

/// Exchanges TEB field `$field` with the word (`qword`) or its low half
/// (`dword`) at `[$p]`, through rax and r9.
macro_rules! swap_field {
    (qword $field:ident, $p:expr) => {
        concat!(
            "mov rax, qword ptr gs:[", teb_offset!($field), "]\n",
            "mov r9, qword ptr [", $p, "]\n",
            "mov qword ptr gs:[", teb_offset!($field), "], r9\n",
            "mov qword ptr [", $p, "], rax\n",
        )
    };
    (dword $field:ident, $p:expr) => {
        concat!(
            "mov eax, dword ptr gs:[", teb_offset!($field), "]\n",
            "mov r9d, dword ptr [", $p, "]\n",
            "mov dword ptr gs:[", teb_offset!($field), "], r9d\n",
            "mov dword ptr [", $p, "], eax\n",
        )
    };
}

/// Swaps the TEB stack fields with the four words at `$p` (an address
/// expression in asm syntax, `StackTebFields` layout), and with the second
/// form NT_TIB.ExceptionList with the word at `$el`. Uses rax and r9.
macro_rules! swap_teb {
    ($p:literal) => {
        concat!(
            swap_field!(qword StackBase, $p),
            swap_field!(qword StackLimit, concat!($p, " + 8")),
            swap_field!(qword DeallocationStack, concat!($p, " + 16")),
            swap_field!(dword GuaranteedStackBytes, concat!($p, " + 24")),
        )
    };
    ($p:literal, $el:literal) => {
        concat!(swap_teb!($p), swap_field!(qword ExceptionList, $el))
    };
}

// The switch asm finds the header from the link address: the TEB fields
// (the bottom of the header, see `windows.rs`) at rdx - 56 and the
// ExceptionList at rdx + 16.
const _: () = assert!(STACK_HEADER_SIZE - LINK == 56 && LINK - EXCEPTION_LIST == 16);

/// Gives the TEB back to the parent blocked in `resume` (link address in
/// rdx), keeping ours in the header, and returns into its `resume`,
/// restoring its rbp and rbx (the first word of its frame record, the link
/// address, is not needed here).
macro_rules! return_to_parent {
    () => {
        concat!(
            swap_teb!("rdx - 56", "rdx + 16"),
            "mov rsp, [rdx]\n",
            "pop rax\n",
            "pop rbp\n",
            "pop rbx\n",
            "ret\n",
        )
    };
}

/// Never runs: its unwind codes describe the frame record that entering a
/// coroutine leaves on the parent's stack (see the module docs). The root
/// frame of every coroutine "returns" to `parent_landing_pc()` with
/// rsp = link.
#[unsafe(naked)]
unsafe extern "C" fn parent_landing() {
    naked_asm!(
        ".seh_proc {name}",
        // Pushed by the coroutine's side of a switch, in this order.
        "push rbx",
        ".seh_pushreg rbx",
        "push rbp",
        ".seh_pushreg rbp",
        // The link address, pushed last (a spare word that keeps the
        // record 16-aligned).
        "sub rsp, 8",
        ".seh_stackalloc 8",
        ".seh_endprologue",
        // A body instruction before the landing address, so that lookups
        // of `pc - 1` also fall in the body.
        "nop",
        // The landing address, LANDING_OFFSET bytes in: 1 (push rbx) +
        // 1 (push rbp) + 4 (sub rsp, imm8) + 1 (nop). A label would need a
        // global symbol, which two copies of this crate could both define.
        "ud2",
        ".seh_endproc",
        name = sym parent_landing,
    )
}

/// Offset of the landing address in `parent_landing` (see there).
const LANDING_OFFSET: usize = 7;

/// The address that root frames unwind to.
#[inline]
fn parent_landing_pc() -> usize {
    parent_landing as *const () as usize + LANDING_OFFSET
}

/// First code to run on a fresh coroutine. Entered by `resume`'s `call`,
/// still on the parent's stack, with rcx = argument, rdx = link address,
/// r8 = fresh sp.
#[unsafe(naked)]
unsafe extern "C" fn coroutine_start() {
    naked_asm!(
        ".seh_proc {name}",
        // Unwind codes, undone bottom-up: rsp = rbp (= the machine frame in
        // the header), then the machine frame gives the parent's rip/rsp.
        ".seh_pushframe",
        // Build the parent's frame record and publish it through the link.
        "push rbx",
        "push rbp",
        "push rdx",
        "mov [rdx], rsp",
        "lea rbp, [rdx + {machframe_from_link}]",
        ".seh_setframe rbp, 0",
        ".seh_endprologue",
        // Install this stack's TEB fields, keeping the parent's in the header.
        swap_teb!("rdx - 56", "rdx + 16"),
        // Move onto the coroutine stack: rsp = fresh sp, 16-aligned, whose
        // 32 bytes (the words read here) become entry's shadow space; call
        // entry(arg = rcx, link = rdx, data = r8).
        "mov rax, [r8 + 8]",
        "mov rsp, r8",
        "mov r8, [r8 + 16]",
        // A call made by hand (push the return address, jump), which
        // leaves the return-stack predictor alone: see `x86_64.rs`.
        "lea r10, [rip + 2f]",
        "push r10",
        "jmp rax",
        // The entry function leaves through `exit` and never returns.
        "2:",
        "ud2",
        ".seh_endproc",
        name = sym coroutine_start,
        machframe_from_link = const LINK as isize - MACHFRAME as isize,
    )
}

/// Where a trapped coroutine continues (see `trap_regs`): rsp is 16-aligned
/// with the handler's address at [rsp + 32], rbp = the header's machine
/// frame, rdi = data, rsi = link address.
#[unsafe(naked)]
unsafe extern "C" fn trap_start() {
    naked_asm!(
        // Same parent description as the root frame of `coroutine_start`.
        ".seh_proc {name}",
        ".seh_pushframe",
        ".seh_setframe rbp, 0",
        ".seh_endprologue",
        // Entered by an exception handler's rewrite of the context, not a
        // call: call handler(data, link) with [rsp, rsp + 32) as its shadow
        // space.
        "mov rcx, rdi",
        "mov rdx, rsi",
        "call [rsp + 32]",
        "ud2",
        ".seh_endproc",
        name = sym trap_start,
    )
}

/// Calls `f(data)` on the stack topped at `top` (rdx, 16-aligned), whose
/// word at `top` points at the TEB fields of that stack; they are swapped
/// in for the call and back out after it.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn stack_call_trampoline(data: *mut u8, top: usize, f: StackCallFn) {
    naked_asm!(
        ".seh_proc {name}",
        // A frame-pointer prologue: unwinders find the caller through rbp.
        "push rbp",
        ".seh_pushreg rbp",
        "push rbx",
        ".seh_pushreg rbx",
        "sub rsp, 8",
        ".seh_stackalloc 8",
        "mov rbp, rsp",
        ".seh_setframe rbp, 0",
        ".seh_endprologue",
        // rbx (preserved by f) keeps the TEB block across the call.
        "mov rbx, [rdx]",
        swap_teb!("rbx"),
        // f runs with an empty ExceptionList (see the module docs); the
        // caller's is kept in the slot allocated above.
        concat!("mov rax, qword ptr gs:[", teb_offset!(ExceptionList), "]"),
        "mov [rbp], rax",
        concat!("mov qword ptr gs:[", teb_offset!(ExceptionList), "], -1"),
        // Switch stacks, leaving f its 32-byte shadow space below `top`;
        // rcx (data) passes straight through.
        "lea rsp, [rdx - 32]",
        "call r8",
        "mov rax, [rbp]",
        concat!("mov qword ptr gs:[", teb_offset!(ExceptionList), "], rax"),
        swap_teb!("rbx"),
        // Back to the original stack (a canonical x64 epilogue).
        "lea rsp, [rbp + 8]",
        "pop rbx",
        "pop rbp",
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
        *((top - MACHFRAME) as *mut usize) = parent_landing_pc();
        *((top - LINK) as *mut usize) = 0;
        *((top - EXCEPTION_LIST) as *mut usize) = usize::MAX;
        // 16-aligned; the 32 bytes double as entry's shadow space.
        super::windows::fresh_context(sp, coroutine_start, entry, data)
    }
}

/// # Safety
/// See [`super::resume`].
#[inline(always)]
pub(super) unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
    let (ret_arg, ret_sp);
    // SAFETY: the coroutine saves rbx and rbp in the frame record it builds
    // on our stack and restores them before returning; everything else the
    // compiler expects preserved is declared clobbered; it returns to the
    // instruction after `call` with rsp back where it was, and the TEB fields
    // swapped back.
    unsafe {
        asm!(
            "call [r8]",
            inout("rcx") arg => ret_arg,
            inout("r8") sp.get() => ret_sp,
            inout("rdx") base.get() - LINK => _,
            out("rsi") _, out("rdi") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _,
            out("xmm11") _, out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
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
    // SAFETY: the saved context (resume address, rbx, rbp) is what the code
    // at label 2 restores, and the parent's frame record is at [link].
    unsafe {
        asm!(
            // Save our context (on our stack, TEB still ours) and hand its
            // address to the parent in r8.
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov r8, rsp",
            return_to_parent!(),
            // Resumed: on the parent's stack, rdx = link, r8 = our context.
            // Build its frame record, publish it, take the TEB, restore
            // ourselves.
            "2:",
            "push rbx",
            "push rbp",
            "push rdx",
            "mov [rdx], rsp",
            swap_teb!("rdx - 56", "rdx + 16"),
            "lea rsp, [r8 + 8]",
            "pop rbx",
            "pop rbp",
            inout("rcx") arg => ret_arg,
            inout("rdx") link => _,
            out("r8") _,
            out("rsi") _, out("rdi") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _,
            out("xmm11") _, out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            clobber_abi("C"),
        );
    }
    ret_arg
}

/// # Safety
/// See [`super::exit`].
#[inline(always)]
pub(super) unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: r8 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished. The swap leaves our final TEB fields in the header for
    // `Stack::update_teb_fields`.
    unsafe {
        asm!(
            return_to_parent!(),
            in("rcx") arg,
            in("rdx") link,
            in("r8") end,
            options(noreturn),
        )
    }
}

/// Bytes kept free below the link for `parent_stack_top` (see
/// [`super::parent_stack_top`]): the parent's frame record starts at the
/// link, and the word below it is where `call_on_stack` finds the address of
/// the stack's TEB fields.
pub(super) const PARENT_FRAME_BELOW_LINK: usize = 8;

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
    // 32 bytes of shadow space, then the handler's address; 16-aligned.
    let rsp = sp - 48;
    // SAFETY: the caller guarantees free stack below `sp`.
    unsafe { *((rsp + 32) as *mut usize) = handler as usize };
    TrapHandlerRegs {
        rip: trap_start as *const () as u64,
        rsp: rsp as u64,
        rbp: (base.get() - MACHFRAME) as u64,
        rdi: data as u64,
        rsi: link as u64,
    }
}

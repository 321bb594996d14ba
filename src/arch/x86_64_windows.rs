//! x86-64, Microsoft x64 ABI (Windows).
//!
//! Registers a callee must preserve: rbx, rbp, rdi, rsi, r12-r15, rsp and
//! xmm6-xmm15. rdi, rsi, r12-r15 and xmm6-xmm15 are declared as clobbered by
//! the switch asm, so the compiler saves only those it really uses; rbx and
//! rbp are reserved by LLVM and saved by hand. Callers leave 32 bytes of
//! "shadow space" above the return address for the callee.
//!
//! Besides registers, a Windows thread has per-stack state in its Thread
//! Environment Block (TEB, at gs:0): StackBase (gs:[0x08]), StackLimit
//! (gs:[0x10]), DeallocationStack (gs:[0x1478]) and GuaranteedStackBytes
//! (gs:[0x1748], 32 bits). The OS reads them to grow a stack through its
//! guard page, to raise STATUS_STACK_OVERFLOW, and to check that exception
//! frames lie on the current stack. Every switch swaps these four fields
//! with the copy kept in the coroutine's header: while the coroutine runs
//! the header holds the parent's values, while it is suspended (or done) its
//! own (`StackTebFields` order).
//!
//! Windows itself does not use NT_TIB.ExceptionList (gs:[0]) on x64, but
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
//!                                 link ─►| link address   |  (for on_parent_stack)
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

// A panic unwinding straight through the switch would leave the TEB
// describing the coroutine's stack; panics cross as values here instead.
#[cfg(feature = "asm-unwind")]
compile_error!("the `asm-unwind` feature is not supported on Windows; use `unwind`");

use core::arch::{asm, naked_asm};

use super::Word;
use crate::abi::{StackPointer, StackTebFields};
use crate::abi::{EntryFn, StackCallFn, TrapEntryFn};

pub const STACK_ALIGNMENT: usize = 16;
pub const STACK_HEADER_SIZE: usize = 80;
/// Enough to run and unwind a coroutine: raising an SEH exception puts several CONTEXT records on the stack (8-12 KiB).
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Registers to write into the interrupted context when redirecting a trapped
/// coroutine (see [`CoroutineTrapHandler::setup_trap_handler`]).
///
/// [`CoroutineTrapHandler::setup_trap_handler`]: crate::trap::CoroutineTrapHandler::setup_trap_handler
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub struct TrapHandlerRegs {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
}

/// Offset of the link word below the stack base.
pub const LINK: usize = 24;
/// Offset of the machine frame (and of the root frame's rbp) below the base.
const MACHFRAME: usize = 48;
/// Offset of the saved ExceptionList below the base.
const EXCEPTION_LIST: usize = 8;
/// Offset of the saved TEB fields below the base.
const TEB_FIELDS: usize = 80;

/// Swaps the TEB stack fields with the four words at `$p` (an address
/// expression in asm syntax, `StackTebFields` layout). Uses rax and r9.
/// GuaranteedStackBytes is a 32-bit field: only the low half of its word
/// is exchanged.
macro_rules! swap_teb {
    ($p:literal) => {
        concat!(
            "mov rax, qword ptr gs:[0x08]\n",
            "mov r9, qword ptr [", $p, "]\n",
            "mov qword ptr gs:[0x08], r9\n",
            "mov qword ptr [", $p, "], rax\n",
            "mov rax, qword ptr gs:[0x10]\n",
            "mov r9, qword ptr [", $p, " + 8]\n",
            "mov qword ptr gs:[0x10], r9\n",
            "mov qword ptr [", $p, " + 8], rax\n",
            "mov rax, qword ptr gs:[0x1478]\n",
            "mov r9, qword ptr [", $p, " + 16]\n",
            "mov qword ptr gs:[0x1478], r9\n",
            "mov qword ptr [", $p, " + 16], rax\n",
            "mov eax, dword ptr gs:[0x1748]\n",
            "mov r9d, dword ptr [", $p, " + 24]\n",
            "mov dword ptr gs:[0x1748], r9d\n",
            "mov dword ptr [", $p, " + 24], eax\n",
        )
    };
    // The same plus NT_TIB.ExceptionList (gs:[0]), kept at `$el`.
    ($p:literal, $el:literal) => {
        concat!(
            swap_teb!($p),
            "mov rax, qword ptr gs:[0]\n",
            "mov r9, qword ptr [", $el, "]\n",
            "mov qword ptr gs:[0], r9\n",
            "mov qword ptr [", $el, "], rax\n",
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
        // The link address, pushed last, read by on_parent_stack.
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
        "mov rax, qword ptr gs:[0]",
        "mov [rbp], rax",
        "mov qword ptr gs:[0], -1",
        // Switch stacks, leaving f its 32-byte shadow space below `top`;
        // rcx (data) passes straight through.
        "lea rsp, [rdx - 32]",
        "call r8",
        "mov rax, [rbp]",
        "mov qword ptr gs:[0], rax",
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

/// The current thread's TEB stack fields (those of the stack it runs on).
#[inline]
pub fn current_teb_fields() -> StackTebFields {
    let (base, limit, deallocation, guaranteed): (usize, usize, usize, u32);
    // SAFETY: reads the current thread's own TEB.
    unsafe {
        asm!(
            "mov {base}, qword ptr gs:[0x08]",
            "mov {limit}, qword ptr gs:[0x10]",
            "mov {deallocation}, qword ptr gs:[0x1478]",
            "mov {guaranteed:e}, dword ptr gs:[0x1748]",
            base = out(reg) base,
            limit = out(reg) limit,
            deallocation = out(reg) deallocation,
            guaranteed = out(reg) guaranteed,
            options(nostack, readonly, preserves_flags),
        );
    }
    StackTebFields {
        StackBase: base,
        StackLimit: limit,
        DeallocationStack: deallocation,
        GuaranteedStackBytes: guaranteed as usize,
    }
}

/// Sets the current thread's TEB StackLimit.
///
/// # Safety
/// `limit` must be the lowest committed address of the stack the thread
/// runs on, above its guard page.
#[inline]
pub unsafe fn set_current_stack_limit(limit: usize) {
    // SAFETY: forwarded from the caller; writes the thread's own TEB.
    unsafe {
        asm!(
            "mov qword ptr gs:[0x10], {}",
            in(reg) limit,
            options(nostack, preserves_flags),
        );
    }
}

/// Address of the saved TEB fields in the header of the stack with `base`.
#[inline]
pub fn teb_fields_slot(base: StackPointer) -> *mut StackTebFields {
    (base.get() - TEB_FIELDS) as *mut StackTebFields
}

/// # Safety
/// `sp` must be 16-aligned, at most `base - STACK_HEADER_SIZE`, with at least
/// 32 writable bytes below it on the stack described by `base`.
#[inline]
pub unsafe fn init_stack(
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
        // Three words, 16-aligned; they double as entry's shadow space.
        let fresh = sp - 32;
        *((fresh + 16) as *mut usize) = data as usize;
        *((fresh + 8) as *mut usize) = entry as usize;
        *(fresh as *mut usize) = coroutine_start as *const () as usize;
        StackPointer::new_unchecked(fresh)
    }
}

/// # Safety
/// `sp` must be the context of a suspended coroutine whose stack has base
/// `base`, and this must be its only resumption.
#[inline(always)]
pub unsafe fn resume(arg: Word, sp: StackPointer, base: StackPointer) -> (Word, usize) {
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
/// Must run on the coroutine stack whose link is at `link`, with its parent
/// blocked in `resume`.
#[inline(always)]
pub unsafe fn suspend(arg: Word, link: *mut usize) -> Word {
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
            // Give the TEB back to the parent, keep ours in the header.
            swap_teb!("rdx - 56", "rdx + 16"),
            // Return into the parent's `resume`, restoring its rbp and rbx
            // (the first word is the link address, not needed here).
            "mov rsp, [rdx]",
            "pop rax",
            "pop rbp",
            "pop rbx",
            "ret",
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
/// As for [`suspend`]; the coroutine's stack must hold nothing live.
#[inline(always)]
pub unsafe fn exit(arg: Word, link: *mut usize, end: usize) -> ! {
    // SAFETY: as in `suspend`, minus saving a context: r8 = `end` (a small
    // number, never a context) tells the parent that the coroutine has
    // finished. The swap leaves our final TEB fields in the header for
    // `Stack::update_teb_fields`.
    unsafe {
        asm!(
            swap_teb!("rdx - 56", "rdx + 16"),
            "mov rsp, [rdx]",
            "pop rax",
            "pop rbp",
            "pop rbx",
            "ret",
            in("rcx") arg,
            in("rdx") link,
            in("r8") end,
            options(noreturn),
        )
    }
}

/// # Safety
/// `link` must be the link value of a running coroutine.
#[inline]
pub unsafe fn parent_stack_top(link: usize) -> StackPointer {
    // Everything below the parent's frame record is free: the parent is
    // stopped inside an asm block. For `call_on_stack`, the word at the top
    // points at the parent's TEB fields, kept in the coroutine's header,
    // whose link address is the first word of the frame record.
    // The parent's stack may never have reached that word: it is
    // committed first, as the parent's TEB fields (in the header) say.
    // SAFETY: `link` points at that frame record, and the word below it is
    // free parent stack.
    unsafe {
        let top = (link - 8) & !(STACK_ALIGNMENT - 1);
        let fields = *(link as *const usize) + LINK - TEB_FIELDS;
        crate::stack::make_writable_saved(fields as *mut StackTebFields, top);
        *(top as *mut usize) = fields;
        StackPointer::new_unchecked(top)
    }
}

/// The stack pointer (`rsp`) where this is inlined, read directly: an
/// address of a local would not do, since a sanitizer may keep locals
/// elsewhere (ASan's fake stack).
#[inline(always)]
pub fn current_stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: copies a register; touches no memory, stack or flags.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// # Safety
/// `sp` must be 16-aligned, at most `base - STACK_HEADER_SIZE`, with free
/// stack below it, and the link must hold the parent of the coroutine that
/// trapped.
#[inline]
pub unsafe fn trap_regs(
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

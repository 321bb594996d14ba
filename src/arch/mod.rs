//! The context-switch layer: one file per CPU (and ABI), one interface.
//!
//! Everything above this module is architecture-neutral. It sees a coroutine
//! as an opaque *stack pointer* (where the suspended context was saved) and a
//! *link* (a word near the top of the coroutine stack through which the
//! coroutine finds its parent). Every architecture file implements:
//!
//! | item | what it does |
//! |---|---|
//! | `STACK_ALIGNMENT` | alignment the ABI requires of the stack pointer at a call |
//! | `STACK_HEADER_SIZE` | bytes the arch reserves at the top of every coroutine stack (link and frame record); a multiple of `STACK_ALIGNMENT` |
//! | `TrapHandlerRegs` | the registers a signal handler must write to redirect a trapped coroutine |
//! | `init_stack(stack, sp, entry, data)` | lays out a fresh coroutine below `sp` so that its first resume calls `entry(arg, link, data)` |
//! | `resume(arg, sp, base)` | switches into the coroutine whose context is saved at `sp`; returns `(arg, sp)` when it suspends, `(arg, 0)` when it exits |
//! | `suspend(arg, link)` | saves the running coroutine's context and switches back to the parent recorded in `link` |
//! | `exit(arg, link)` | switches to the parent for the last time, saving nothing |
//! | `parent_stack_top(link)` | highest usable address on the parent's stack while it is blocked in `resume` |
//! | `call_on_stack(data, top, f)` | calls `f(data)` with the stack pointer at `top`, linked for unwinders |
//! | `trap_regs(base, sp, handler, data)` | prepares the stack so that, with the returned registers, the trapped coroutine calls `handler(data, link)` |
//!
//! The root frame of every coroutine carries unwind information (DWARF CFI,
//! or SEH on Windows) that reads the link, so unwinders and debuggers walk
//! from a coroutine into whoever resumed it last. Switches never write below
//! the stack pointer, so signals may arrive at any instruction.
//!
//! Adding a CPU means adding one file here and one line below.

macro_rules! select_arch {
    ($($cond:meta => $file:literal,)*) => {
        $(
            #[cfg($cond)]
            #[path = $file]
            mod imp;
        )*
    };
}

select_arch! {
    all(target_arch = "x86_64", not(windows)) => "x86_64.rs",
    target_arch = "arm" => "arm.rs",
}

pub use imp::TrapHandlerRegs;
pub(crate) use imp::{
    call_on_stack, exit, init_stack, parent_stack_top, resume, suspend, trap_regs, STACK_ALIGNMENT,
    STACK_HEADER_SIZE,
};

// The generic code relies on the header keeping everything below it aligned.
const _: () = assert!(STACK_HEADER_SIZE % STACK_ALIGNMENT == 0);

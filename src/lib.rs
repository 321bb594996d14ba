//! Fast and safe stackful coroutines.
//!
//! A [`Coroutine`] runs a function on its own stack. The function can
//! suspend itself from any depth of its call stack with
//! [`Yielder::suspend`], handing a value to whoever called
//! [`Coroutine::resume`], and receives a new value when resumed.
//!
//! ```
//! use stackswitch::{Coroutine, CoroutineResult};
//!
//! let mut coroutine = Coroutine::new(|yielder, input: i32| {
//!     let mut sum = input;
//!     for i in 0..3 {
//!         sum += yielder.suspend(i);
//!     }
//!     sum
//! });
//! assert_eq!(coroutine.resume(100), CoroutineResult::Yield(0));
//! assert_eq!(coroutine.resume(1), CoroutineResult::Yield(1));
//! assert_eq!(coroutine.resume(2), CoroutineResult::Yield(2));
//! assert_eq!(coroutine.resume(3), CoroutineResult::Return(106));
//! ```
//!
//! # Concepts
//!
//! A coroutine has three types: `Input`, what each [`resume`] passes in;
//! `Yield`, what each [`suspend`] passes out; and `Return`, what the
//! function finally returns. The code that calls `resume` is the coroutine's
//! *parent* for as long as the call lasts.
//!
//! - The first `resume` starts the function, whose arguments are a
//!   [`Yielder`] and that first input.
//! - [`suspend`] switches back to the parent: its `resume` returns
//!   [`CoroutineResult::Yield`]. The next `resume` makes `suspend` return
//!   that call's input, and the function carries on.
//! - When the function returns, its parent's `resume` returns
//!   [`CoroutineResult::Return`], and the coroutine is
//!   [`done`](Coroutine::done): resuming it again panics.
//!
//! Unlike an `async fn`, a stackful coroutine can suspend from anywhere in
//! ordinary code: deep in recursion, inside a callback, inside a library
//! that knows nothing about coroutines. Its whole call stack is kept as it
//! is while it is suspended.
//!
//! Coroutines nest: a coroutine can create and resume others, and
//! [`Yielder::on_parent_stack`] runs a closure back on the parent's stack.
//! [`on_stack`] runs a plain closure on another stack (to give deep
//! recursion room, say) without any suspending.
//!
//! Built on [`Coroutine`]:
//! - [`Generator`], an [`Iterator`] over the values a function yields;
//! - [`future::StackFuture`], which runs blocking-style code as a
//!   [`Future`](core::future::Future) that any executor can poll, with
//!   [`future::Suspender::block_on`] to wait for futures from inside it;
//! - [`ScopedCoroutine`], whose function may borrow from the code that
//!   runs it.
//!
//! # Choosing a stack
//!
//! [`Coroutine::new`] allocates a [`stack::DefaultStack`] of
//! [`DEFAULT_STACK_SIZE`](stack::DEFAULT_STACK_SIZE) (1 MiB): memory
//! reserved from the OS with a guard page below it. Only the pages the
//! coroutine touches cost memory, so the default suits most uses. For many
//! coroutines, or to bound how deep untrusted code may recurse, pass a
//! smaller one to [`Coroutine::with_stack`]. A stack must have at least
//! [`stack::MIN_STACK_SIZE`] usable bytes, which is enough to start,
//! suspend and unwind, but real code needs more, especially in debug
//! builds.
//!
//! ```
//! use stackswitch::stack::DefaultStack;
//! use stackswitch::{Coroutine, Yielder};
//!
//! let stack = DefaultStack::new(64 * 1024)?;
//! let mut small = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| 7);
//! assert_eq!(small.resume(()).as_return(), Some(7));
//! // A completed coroutine gives its stack back, to reuse it.
//! let stack = small.into_stack();
//! # let _ = stack;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Allocating a stack costs system calls; reuse stacks when coroutines are
//! short-lived: take a finished coroutine's stack back with
//! [`Coroutine::into_stack`], or lend one with `&mut stack` (a `&mut` of a
//! stack is a stack). Any other memory can serve as a stack by implementing
//! the `unsafe` [`stack::Stack`] trait; without the `default-stack`
//! feature, that is the only kind.
//!
//! Overflowing a stack hits its guard page and the process gets `SIGSEGV`
//! (or a Windows stack-overflow exception), never silent memory
//! corruption. The [`trap`] module turns that fault into an error returned
//! by the coroutine.
//!
//! # Safety model
//!
//! The safe API cannot cause undefined behaviour:
//!
//! - A running coroutine cannot be resumed or dropped: [`resume`] takes
//!   `&mut self`. (The state is still checked, and resuming a running or
//!   completed coroutine panics with a clear message.)
//! - A [`Yielder`] never leaves its coroutine's stack: it is only handed out
//!   by reference and is not `Sync`, so no other thread can get one, and
//!   [`on_parent_stack`](Yielder::on_parent_stack) takes only `Send`
//!   closures. (It is `Send`, as corosensei's is; nothing can own one to
//!   send it.)
//!
//!   ```compile_fail,E0277
//!   # use stackswitch::{Coroutine, Yielder};
//!   let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
//!       std::thread::scope(|s| {
//!           s.spawn(|| yielder.suspend(())); // error: Yielder is not Sync
//!       });
//!   });
//!   ```
//! - [`Coroutine`] is never `Send`: its stack may hold thread-bound values
//!   (an `Rc`, a `MutexGuard`) that the type system cannot see.
//! - A [`Coroutine`]'s function and values are `'static`; borrowing ones go
//!   through [`ScopedCoroutine`], which stays sound under `mem::forget`.
//! - Dropping a suspended coroutine unwinds its stack, so every destructor
//!   on it runs, before the stack is freed or given back. If the coroutine
//!   catches the forced unwind and suspends again, it is unwound again,
//!   until it completes: no frame is ever left alive on a stack that is
//!   freed or reused. Without the `unwind` feature (or with
//!   `panic = "abort"`), the process aborts with a message instead of
//!   freeing a stack with live frames on it. A panic inside a coroutine
//!   continues out of the parent's `resume`.
//! - A coroutine dropped while it runs (by the thread-local destructors that
//!   `std::process::exit` runs inside it) is not unwound, and its stack is
//!   leaked: nothing is freed that code is running on.
//! - A closure too large for the coroutine's stack is refused with a panic
//!   (see [`Coroutine::with_stack`]); guard pages never count as room.
//!
//! The `unsafe` parts are explicit: [`Coroutine::force_reset`] discards a
//! stack without running destructors, [`Coroutine::with_stack_unchecked`]
//! drops the `'static` bounds, [`stack::Stack`] implementations promise
//! valid memory, and [`trap`] handlers run in signal context.
//!
//! The floating-point environment (rounding mode, exception masks) is thread
//! state that coroutines share; a switch does not save it.
//!
//! # Cargo features
//!
//! - `default-stack` (default): [`stack::DefaultStack`], a guard-paged stack
//!   from the OS. Needs `std`.
//! - `unwind` (default): panics propagate out of coroutines, and suspended
//!   coroutines are unwound when dropped. Without it, a panic in a coroutine
//!   aborts, and so does dropping a suspended coroutine (with a message).
//!   Needs `std`.
//! - `asm-unwind` (nightly only): panics unwind directly through the
//!   context switch instead of being caught at the coroutine's root and
//!   re-raised. Implies `unwind`.
//! - `sanitizer` (nightly only): in builds with `-Zsanitizer=address` or
//!   `-Zsanitizer=thread`, tells the sanitizer about every stack switch.
//!
//! With all features off the crate is `#![no_std]`; bring your own
//! [`stack::Stack`].
//!
//! # Platforms
//!
//! The context switch is written per CPU and ABI (x86-64, x86, AArch64,
//! ARM and Thumb-2, RISC-V, LoongArch, on Unix and Windows as each
//! applies). The README's *Support* table lists the targets CI builds and
//! tests, and how.
//!
//! # Testing code that uses stackswitch under Miri
//!
//! Programs and tests that use stackswitch run under
//! [Miri](https://github.com/rust-lang/miri) (`cargo +nightly miri test`,
//! `cargo +nightly miri run`), which checks them for undefined behaviour.
//! Miri runs no inline asm, so under it the context switch is replaced by
//! one built on threads: every coroutine runs on an OS thread of its own,
//! started by its first `resume`, and a switch hands control to the other
//! side and blocks until it comes back. Exactly one side runs at a time,
//! and each hand-off is a synchronisation that Miri's data-race detector
//! sees. Every behaviour of the API is kept: values in and out, panics
//! reaching the resumer, unwinding on drop, nesting, `on_parent_stack`,
//! scoped coroutines, generators, `StackFuture`, `StackPool`. What differs:
//!
//! - Thread-locals are per coroutine: code inside a coroutine sees its
//!   thread's thread-locals, not those of the code that resumed it (so a
//!   `thread_local!` set before `resume` reads as unset inside), and
//!   `std::thread::current()` is the coroutine's thread.
//! - Stacks are plain zeroed memory from the allocator, without a guard
//!   page (Miri reports any access outside them instead). Frames live on the
//!   coroutine's thread, not in the stack: [`Yielder::remaining_stack`]
//!   reports the whole usable stack wherever it is called on it (and 0 off
//!   it, as natively), so [`Yielder::maybe_grow`] grows only when asked for
//!   more than a whole stack, and `high_water_mark` counts only what
//!   stackswitch keeps at the top (the closure and its bookkeeping).
//! - Unavailable: trap handling ([`trap::CoroutineTrapHandler::setup_trap_handler`]
//!   panics, `TrapHandlerRegs` has no fields) and the overflow reporter
//!   (`install_overflow_reporter` returns an `Unsupported` error).
//! - [`Coroutine::force_reset`] of a suspended coroutine leaves its thread
//!   blocked for ever (its frames may neither run nor be unwound): like the
//!   values on it, the thread is leaked, and Miri reports the leak at exit
//!   unless run with `-Zmiri-ignore-leaks`. A coroutine that is never
//!   resumed costs no thread.
//! - The cost: a switch is a thread hand-off, interpreted; keep the numbers
//!   of coroutines and switches in tests run under Miri small.
//! - Stack addresses travel as integers, so Miri warns about
//!   integer-to-pointer casts; `MIRIFLAGS=-Zmiri-permissive-provenance`
//!   acknowledges them. The library's own suite runs under Miri's default
//!   Stacked Borrows (`ci/miri.sh`).
//!
//! # Examples
//!
//! The `examples/` directory holds complete programs: a streaming parser
//! written as a coroutine (`parser`), a green-thread scheduler with ten
//! thousand tasks (`scheduler`), an interpreter sandbox that survives stack
//! overflows (`sandbox`), and the async bridge under tokio (`async_tokio`,
//! in the `integration` package). The README lists them with their
//! commands.
//!
//! # Migrating from corosensei
//!
//! The API is source-compatible with corosensei 0.3: rename the dependency,
//! `corosensei = { package = "stackswitch", version = "0.1" }`.
//!
//! [`resume`]: Coroutine::resume
//! [`suspend`]: Yielder::suspend

#![no_std]
#![cfg_attr(all(feature = "asm-unwind", not(miri)), feature(asm_unwind))]
// Inline asm for PowerPC is still unstable (build with nightly, or stable
// with RUSTC_BOOTSTRAP=1). s390x asm is stable and needs nothing.
#![cfg_attr(target_arch = "powerpc64", feature(asm_experimental_arch))]
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]
#![cfg_attr(
    all(feature = "sanitizer", not(miri)),
    feature(cfg_sanitize, thread_local)
)]

// Under Miri coroutines run on threads, which need std.
#[cfg(any(feature = "default-stack", feature = "unwind", miri))]
extern crate std;

// The layers, from the bottom: `abi` (shared types, a leaf), `arch` (the
// context switch), `unwind`, `sanitizer`, `overflow`, `stack`; then the
// coroutine machinery: `context` (the owner's word), `transfer` (values in
// the switch word), `header` (the stack's top), `exit`, `stack_call`,
// `yielder`, `trap`, `coroutine`; then what is built on `Coroutine`:
// `scoped`, `generator`, `future`. `ci/module-graph.py` checks that no
// module uses one above it.
mod abi;
#[macro_use]
mod arch;
mod context;
mod coroutine;
mod exit;
pub mod future;
mod generator;
mod header;
#[cfg(all(unix, feature = "default-stack", not(miri)))]
mod overflow;
mod sanitizer;
mod scoped;
pub mod stack;
mod stack_call;
mod transfer;
pub mod trap;
mod unwind;
mod yielder;

pub use coroutine::{Coroutine, CoroutineResult};
pub use generator::Generator;
pub use scoped::{ScopedCoroutine, ScopedCoroutineRef};
pub use stack_call::on_stack;
#[cfg(feature = "unwind")]
pub use unwind::{is_forced_unwind, ForcedUnwind};
pub use yielder::Yielder;

// A `Yielder` is `Send` (and, by the doctest above, not `Sync`), as
// corosensei's is.
const _: () = {
    fn send<T: Send>() {}
    let _ = send::<Yielder<(), ()>>;
};

// The README's Rust examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

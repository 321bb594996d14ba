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
//! # What you get
//!
//! - **Panic propagation**: a panic in a coroutine unwinds its stack and
//!   continues out of the `resume` that ran it.
//! - **Cleanup on drop**: dropping a suspended coroutine unwinds its stack,
//!   running every destructor on it ([`Coroutine::force_unwind`]);
//!   [`Coroutine::force_reset`] discards it instead.
//! - **Linked backtraces**: backtraces, debuggers and profilers walk from a
//!   coroutine into the code that resumed it, by DWARF CFI and by frame
//!   pointers.
//! - **Trap handling**: a signal handler can make a coroutine that faulted
//!   (say, overflowed into its guard page) return a value ([`trap`]).
//! - **Generators**: [`Generator`] iterates the values a function yields.
//! - **Async bridge**: [`future::StackFuture`] runs blocking-style code as a
//!   `Future`; inside, [`future::Suspender::block_on`] awaits futures.
//! - **Borrowing**: [`ScopedCoroutine`] for bodies that borrow locals;
//!   [`on_stack`] and [`Yielder::on_parent_stack`] to run a closure on
//!   another stack.
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
//! # Migrating from corosensei
//!
//! The API is source-compatible with corosensei 0.3: rename the dependency,
//! `corosensei = { package = "stackswitch", version = "0.1" }`.

#![no_std]
#![cfg_attr(feature = "asm-unwind", feature(asm_unwind))]
#![cfg_attr(feature = "sanitizer", feature(cfg_sanitize, thread_local))]
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

#[cfg(any(feature = "default-stack", feature = "unwind"))]
extern crate std;

#[macro_use]
mod arch;
mod coroutine;
pub mod future;
mod generator;
mod sanitizer;
mod scoped;
pub mod stack;
pub mod trap;
mod unwind;

pub use coroutine::{on_stack, Coroutine, CoroutineResult, Yielder};
pub use generator::Generator;
pub use scoped::{ScopedCoroutine, ScopedCoroutineRef};
#[cfg(feature = "unwind")]
pub use unwind::{is_forced_unwind, ForcedUnwind};

// The README's Rust examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

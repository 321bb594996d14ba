//! How panics cross from a coroutine stack to its parent.
//!
//! Three policies, chosen by cargo features, all hidden behind the same few
//! functions so the coroutine code reads the same under each:
//!
//! | features | a panic inside a coroutine | root functions are |
//! |---|---|---|
//! | neither | aborts the process (it reaches an `extern "C"` root) | `extern "C"` |
//! | `unwind` | is caught at the coroutine's root, carried to the parent as a value and re-raised there | `extern "C"` |
//! | `asm-unwind` | unwinds through the root frame's CFI and the switch asm straight into the parent | `extern "C-unwind"` |
//!
//! Under Miri, which runs no asm (each coroutine is a thread of its own),
//! `asm-unwind` gets the `unwind` policy: there is no switch to unwind
//! through, and a panic leaving a thread's root would end the process.
//!
//! Under every policy a suspended coroutine that must be destroyed is unwound
//! by making its pending `suspend` raise [`ForcedUnwind`], a payload that
//! user code can recognise with [`is_forced_unwind`].

#[cfg(feature = "unwind")]
use std::{any::Any, boxed::Box};

pub(crate) use at_root::{catch_at_root, is_caught_forced_unwind, rethrow, CaughtPanic};

/// Panics caught at a coroutine's root and carried to the parent as values:
/// the `unwind` policy (and `asm-unwind`'s under Miri).
#[cfg(all(feature = "unwind", any(not(feature = "asm-unwind"), miri)))]
mod at_root {
    use std::{any::Any, boxed::Box};

    /// What a coroutine's root hands back when a panic was caught there.
    pub(crate) type CaughtPanic = Box<dyn Any + Send>;

    /// Runs `f` at the root of a stack, catching a panic.
    #[inline(always)]
    pub(crate) fn catch_at_root<T>(f: impl FnOnce() -> T) -> Result<T, CaughtPanic> {
        std::panic::catch_unwind(core::panic::AssertUnwindSafe(f))
    }

    /// Parent side of [`catch_at_root`]: unwraps the value or continues the
    /// panic on the parent's stack.
    #[inline(always)]
    pub(crate) fn rethrow<T>(result: Result<T, CaughtPanic>) -> T {
        match result {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Whether a panic caught at a coroutine's root is a forced unwind.
    pub(crate) fn is_caught_forced_unwind(panic: &CaughtPanic) -> bool {
        super::is_forced_unwind(&**panic)
    }
}

/// Nothing caught at a coroutine's root (a panic aborts there, or unwinds
/// through the switch): the same functions, over an uninhabited panic.
#[cfg(not(all(feature = "unwind", any(not(feature = "asm-unwind"), miri))))]
mod at_root {
    pub(crate) type CaughtPanic = core::convert::Infallible;

    #[inline(always)]
    pub(crate) fn catch_at_root<T>(f: impl FnOnce() -> T) -> Result<T, CaughtPanic> {
        Ok(f())
    }

    #[inline(always)]
    pub(crate) fn rethrow<T>(result: Result<T, CaughtPanic>) -> T {
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    pub(crate) fn is_caught_forced_unwind(panic: &CaughtPanic) -> bool {
        match *panic {}
    }
}

/// Declares a function that is entered from assembly at the root of a stack.
/// Its ABI is `"C-unwind"` only when panics may unwind through the switch.
/// Under Miri too: there a coroutine's thread ends by unwinding out of its
/// root once it has exited (see `arch/miri.rs`).
macro_rules! root_fn {
    ($(#[$attr:meta])* $vis:vis unsafe fn $($rest:tt)*) => {
        #[cfg(any(feature = "asm-unwind", miri))]
        $(#[$attr])* $vis unsafe extern "C-unwind" fn $($rest)*
        #[cfg(not(any(feature = "asm-unwind", miri)))]
        $(#[$attr])* $vis unsafe extern "C" fn $($rest)*
    };
}
pub(crate) use root_fn;

/// The panic payload used to unwind a suspended coroutine that is being
/// dropped or [`force_unwind`](crate::Coroutine::force_unwind)-ed.
///
/// Code inside a coroutine that catches panics must let this one continue
/// (with [`std::panic::resume_unwind`]); see [`is_forced_unwind`].
#[cfg(feature = "unwind")]
#[derive(Debug)]
pub struct ForcedUnwind {
    _private: (),
}

/// Returns `true` if a caught panic payload is the forced unwind of a
/// suspended coroutine being destroyed, which must be re-raised.
///
/// ```
/// use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
/// use stackswitch::{is_forced_unwind, Coroutine};
///
/// let mut coroutine = Coroutine::<(), (), ()>::new(|yielder, ()| {
///     let result = catch_unwind(AssertUnwindSafe(|| yielder.suspend(())));
///     if let Err(payload) = result {
///         // Not our panic to handle: let the coroutine be torn down.
///         assert!(is_forced_unwind(&*payload));
///         resume_unwind(payload);
///     }
/// });
/// coroutine.resume(());
/// drop(coroutine); // unwinds the suspended body
/// ```
#[cfg(feature = "unwind")]
pub fn is_forced_unwind(payload: &(dyn Any + Send)) -> bool {
    payload.is::<ForcedUnwind>()
}

/// Whether this build can unwind a suspended coroutine: it needs the
/// `unwind` feature, and panics that unwind.
pub(crate) const CAN_UNWIND: bool = cfg!(all(feature = "unwind", not(panic = "abort")));

/// Raised inside a coroutine whose parent asked it to unwind.
#[cold]
pub(crate) fn start_forced_unwind() -> ! {
    #[cfg(feature = "unwind")]
    std::panic::resume_unwind(Box::new(ForcedUnwind { _private: () }));
    // The parent panics before asking for an unwind it cannot perform.
    #[cfg(not(feature = "unwind"))]
    unreachable!("forced unwind requested without the `unwind` feature");
}

/// Makes sure the unwinder has run once on a large stack before it first runs
/// on a coroutine's. Its first use can resolve lazily bound symbols, and the
/// dynamic linker's resolver saves the whole extended register state (over
/// 10 KiB with AMX) on the current stack: more than a `MIN_STACK_SIZE` stack
/// holds. Called on the parent's stack before a forced unwind, and before
/// code first runs on a small stack ([`prepare_unwinder_for`]), where it
/// may panic.
#[inline]
pub(crate) fn prepare_unwinder() {
    #[cfg(all(feature = "unwind", not(panic = "abort")))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // `resume_unwind` raises without calling the panic hook.
            let _ = std::panic::catch_unwind(|| std::panic::resume_unwind(Box::new(())));
        });
    }
}

/// Stacks with fewer usable bytes than this get [`prepare_unwinder`] before
/// code runs on them, so that the first panic of the process (whose
/// symbol binding may save the whole extended register state) fits on them:
/// when they are made (`DefaultStack`, a pool's stacks), which keeps it off
/// the path of creating a coroutine, or by `on_stack` (any stack). Larger
/// stacks have room for it and skip the call.
pub(crate) const SMALL_STACK: usize = 64 * 1024;

/// [`prepare_unwinder`] for a stack of `usable` bytes, if it is small.
#[inline(always)]
pub(crate) fn prepare_unwinder_for(usable: usize) {
    #[cold]
    #[inline(never)]
    fn prepare() {
        prepare_unwinder();
    }
    if cfg!(all(feature = "unwind", not(panic = "abort"))) && usable < SMALL_STACK {
        prepare();
    }
}

/// Runs the parent's side of a forced unwind. Under `asm-unwind` the
/// coroutine's forced-unwind panic surfaces here as a real panic; it is
/// caught and reported as `None`.
#[inline]
pub(crate) fn catch_forced_unwind<T>(f: impl FnOnce() -> T) -> Option<T> {
    #[cfg(all(feature = "asm-unwind", not(miri)))]
    return match std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) if is_forced_unwind(&*payload) => None,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    #[cfg(not(all(feature = "asm-unwind", not(miri))))]
    return Some(f());
}

/// Panics if suspended coroutines cannot be unwound in this build.
#[inline]
#[track_caller]
pub(crate) fn require_unwind_support() {
    if !CAN_UNWIND {
        panic!(
            "can't unwind a suspended coroutine without the \"unwind\" feature \
             (and `panic = \"unwind\"`)"
        );
    }
}

/// A panic put aside while a loop that must not be cut short finishes.
pub(crate) struct DeferredPanic {
    #[cfg(feature = "unwind")]
    first: Option<Box<dyn Any + Send>>,
}

impl DeferredPanic {
    pub(crate) fn new() -> Self {
        DeferredPanic {
            #[cfg(feature = "unwind")]
            first: None,
        }
    }

    /// Runs `f`; if it panics, keeps the panic (the first one only) for
    /// [`resume`](Self::resume).
    pub(crate) fn run(&mut self, f: impl FnOnce()) {
        #[cfg(feature = "unwind")]
        if let Err(payload) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
            self.first.get_or_insert(payload);
        }
        #[cfg(not(feature = "unwind"))]
        f();
    }

    /// Continues the panic kept, if any.
    pub(crate) fn resume(self) {
        #[cfg(feature = "unwind")]
        if let Some(payload) = self.first {
            std::panic::resume_unwind(payload);
        }
    }
}

/// Ends the process with a message: used where continuing would be unsound.
#[cold]
#[inline(never)]
pub(crate) fn abort(message: &str) -> ! {
    #[cfg(any(feature = "unwind", feature = "default-stack"))]
    {
        std::eprintln!("stackswitch: fatal: {message}");
        std::process::abort();
    }
    // Without std, a panic that tries to leave a non-unwinding function is
    // turned into an abort by the compiler.
    #[cfg(not(any(feature = "unwind", feature = "default-stack")))]
    {
        #[allow(improper_ctypes_definitions)]
        extern "C" fn panic_without_unwinding(message: &str) -> ! {
            panic!("stackswitch: fatal: {}", message)
        }
        panic_without_unwinding(message)
    }
}

//! How a coroutine's function ends, and how its last switch tells the
//! parent: an end ([`Context`]'s small values) in place of a context, with
//! the returned value or the caught panic in the word.

use core::mem::ManuallyDrop;

use crate::abi::Word;
use crate::arch;
use crate::context::Context;
use crate::sanitizer;
use crate::transfer;
use crate::unwind::{self, CaughtPanic};

/// How a coroutine's function ended.
pub(crate) enum Exit<Return> {
    Returned(Return),
    Panicked(CaughtPanic),
    /// Unwound on request.
    Unwound,
}

impl<Return> Exit<Return> {
    #[inline(always)]
    pub(crate) fn from_root(result: Result<Option<Return>, CaughtPanic>) -> Self {
        match result {
            Ok(Some(value)) => Exit::Returned(value),
            Ok(None) => Exit::Unwound,
            Err(panic) if unwind::is_caught_forced_unwind(&panic) => Exit::Unwound,
            Err(panic) => Exit::Panicked(panic),
        }
    }
}

/// Leaves a coroutine for the last time, telling its parent how its
/// function ended: the end in place of a context, with the returned value or
/// the panic in the word.
///
/// # Safety
/// `link` must be the running coroutine's, whose stack holds nothing live
/// but this frame.
#[inline(always)]
pub(crate) unsafe fn exit_with<Return>(
    result: Result<Option<Return>, CaughtPanic>,
    link: *mut usize,
) -> ! {
    // The values sent stay in these slots, alive to the end of this frame,
    // which is never left (the parent takes them before it can free or
    // reuse the stack).
    let mut returned: ManuallyDrop<Return>;
    let mut panicked: ManuallyDrop<CaughtPanic>;
    let (word, end) = match Exit::from_root(result) {
        Exit::Returned(value) => {
            returned = ManuallyDrop::new(value);
            // SAFETY: given up and kept in place, as above.
            (unsafe { transfer::send(&mut returned) }, Context::RETURNED)
        }
        Exit::Panicked(panic) => {
            panicked = ManuallyDrop::new(panic);
            // SAFETY: as above.
            (unsafe { transfer::send(&mut panicked) }, Context::PANICKED)
        }
        Exit::Unwound => (Word::uninit(), Context::UNWOUND),
    };
    // SAFETY: forwarded from the caller; the final switch follows.
    unsafe {
        sanitizer::exiting();
        arch::exit(word, link, end.to_switch())
    }
}

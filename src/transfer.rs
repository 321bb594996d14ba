//! How a value crosses stacks in the [`Word`] a switch carries.
//!
//! A value that fits in a word (no larger than a `usize` and no more
//! aligned) travels in the word itself: the sender moves its bytes in, the
//! receiver moves them out, and nothing touches memory. Anything larger
//! stays in the sender's frame and the word carries its address; the
//! receiver moves it out right after the switch, while the sender is still
//! blocked in it. Which way a type goes is a constant of the type, so the
//! choice costs nothing at run time; `()` and other zero-sized types cost
//! nothing at all (the register is simply left as it is).
//!
//! Why carrying bytes in the word is sound for *every* type that fits, and
//! not only for integers:
//!
//! - The value is written at offset 0 of a `MaybeUninit<usize>`, which is
//!   large and aligned enough for it. Its padding, and the bytes beyond its
//!   size, are left uninitialised. Nothing ever reads the word as an
//!   integer (that would be undefined behaviour for those bytes, which is
//!   why transmuting such a value into a `usize` is not an option).
//! - The word is only ever *moved*: by Rust, where copying a
//!   `MaybeUninit<usize>` keeps every byte as it is, initialised or not;
//!   and through the switch's inline asm, whose register operands are of
//!   type `MaybeUninit<usize>`, which asm accepts precisely so that such
//!   bytes can pass through a register (rust-lang/rust#114790, Rust 1.74).
//!   The switch moves the register to the other side and never looks at it.
//! - So the receiver's word holds the bytes the sender wrote, and reading a
//!   `T` back from offset 0 yields the sender's value, bit for bit. The
//!   sender gave it up (it was taken out of a `ManuallyDrop`), so the value
//!   has exactly one owner at every moment.
//!
//! Byte order does not matter: both sides view the same bytes in memory
//! order; only the register in between holds them as a number.

use core::mem::{self, ManuallyDrop};
use core::ptr;

pub(crate) use crate::abi::Word;

/// Whether a `T` travels in the word itself rather than by address.
const fn fits_in_word<T>() -> bool {
    mem::size_of::<T>() <= mem::size_of::<Word>() && mem::align_of::<T>() <= mem::align_of::<Word>()
}

/// The word that hands `value` to the other side of a switch.
///
/// # Safety
/// `value` is given up: it must not be used or dropped afterwards, and it
/// must stay where it is (unmoved, its frame alive) until the receiver has
/// taken it with [`receive`], since the word may be its address.
#[inline(always)]
pub(crate) unsafe fn send<T>(value: &mut ManuallyDrop<T>) -> Word {
    if fits_in_word::<T>() {
        let mut word = Word::uninit();
        // SAFETY: the word is large and aligned enough for a T (checked
        // above); the caller gives the value up, so moving it out is a move.
        unsafe {
            word.as_mut_ptr()
                .cast::<T>()
                .write(ManuallyDrop::take(value))
        };
        word
    } else {
        Word::new(value as *mut ManuallyDrop<T> as usize)
    }
}

/// Takes the value that [`send::<T>`](send) on the other side of the
/// switch put in `word`.
///
/// # Safety
/// `word` must come from `send::<T>`, through the switch that just
/// returned, and be received once.
#[inline(always)]
pub(crate) unsafe fn receive<T>(word: Word) -> T {
    if fits_in_word::<T>() {
        // SAFETY: `send` wrote a T at offset 0 of this word, whose bytes the
        // switch carried unchanged (see the module documentation).
        unsafe { word.as_ptr().cast::<T>().read() }
    } else {
        // SAFETY: `send` put the address of the sender's value in the word,
        // an initialised usize; the value is still there (the caller's
        // contract) and is moved out once.
        unsafe { ptr::read(word.assume_init() as *const T) }
    }
}

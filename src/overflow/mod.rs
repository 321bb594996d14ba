//! Reporting stack overflows in coroutines (opt-in).
//!
//! A coroutine that overflows its stack faults in the guard page below it.
//! Without help that is a bare "Segmentation fault": the thread's own guard
//! page is not involved, so the report std prints for thread stacks never
//! appears. Once [`install_overflow_reporter`] has run, every
//! [`DefaultStack`](crate::stack::DefaultStack) made afterwards registers its
//! guard page in a fixed-size, lock-free table, and a fault handler that
//! finds the fault address in it writes which coroutine stack overflowed
//! before letting the fault take its course.
//!
//! The table is touched when stacks are made and freed, never on a switch.
//! The handler reads it with plain atomic loads and formats into a buffer on
//! its own stack, so it neither locks nor allocates.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[path = "unix.rs"]
mod sys;

pub use sys::install_overflow_reporter;

/// Slots in the table; stacks made while it is full are not reported.
const SLOTS: usize = 4096;
/// Key of a free slot.
const FREE: usize = 0;
/// Key of a slot being filled in (never a guard page address).
const CLAIMED: usize = 1;

/// A registered stack. `key` (the guard page's start) is written last and
/// cleared first, so a reader that sees a real key sees the other fields.
#[derive(Debug)]
struct Slot {
    key: AtomicUsize,
    guard_end: AtomicUsize,
    stack_base: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build the array
const EMPTY: Slot = Slot {
    key: AtomicUsize::new(FREE),
    guard_end: AtomicUsize::new(0),
    stack_base: AtomicUsize::new(0),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

/// Set by `install_overflow_reporter`: until then stacks are not registered,
/// and making one costs nothing extra.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Where a stack sits in the table, to remove it when it is freed. A
/// reference, so that it takes one word in every `DefaultStack`.
#[derive(Debug)]
pub(crate) struct Registration(Option<&'static Slot>);

impl Registration {
    pub(crate) fn none() -> Self {
        Registration(None)
    }
}

/// Records a stack whose guard page spans `guard_start..guard_end` and
/// whose usable memory ends at `stack_base`, if reporting is on.
pub(crate) fn register(guard_start: usize, guard_end: usize, stack_base: usize) -> Registration {
    if !ENABLED.load(Ordering::Relaxed) {
        return Registration(None);
    }
    // Start where this address hashes to, so that concurrent registrations
    // rarely contend for the same slot.
    let start = (guard_start >> 12).wrapping_mul(0x9e37_79b9) % SLOTS;
    for i in 0..SLOTS {
        let index = (start + i) % SLOTS;
        let slot = &TABLE[index];
        let claimed =
            slot.key
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed);
        if claimed.is_ok() {
            slot.guard_end.store(guard_end, Ordering::Relaxed);
            slot.stack_base.store(stack_base, Ordering::Relaxed);
            slot.key.store(guard_start, Ordering::Release);
            return Registration(Some(slot));
        }
    }
    Registration(None)
}

/// Removes a stack from the table, before its memory is released.
pub(crate) fn unregister(registration: &Registration) {
    if let Some(slot) = registration.0 {
        slot.key.store(FREE, Ordering::Release);
    }
}

/// A registered stack's guard page and usable memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Overflowed {
    guard_start: usize,
    guard_end: usize,
    stack_base: usize,
}

/// The registered stack whose guard page holds `addr`. Async-signal-safe.
fn find(addr: usize) -> Option<Overflowed> {
    TABLE.iter().find_map(|slot| {
        let guard_start = slot.key.load(Ordering::Acquire);
        if guard_start <= CLAIMED || addr < guard_start {
            return None;
        }
        let guard_end = slot.guard_end.load(Ordering::Relaxed);
        let stack_base = slot.stack_base.load(Ordering::Relaxed);
        // A slot freed and reused meanwhile can only garble the report.
        (addr < guard_end && slot.key.load(Ordering::Relaxed) == guard_start).then_some(
            Overflowed {
                guard_start,
                guard_end,
                stack_base,
            },
        )
    })
}

/// A message formatted into a fixed buffer, for writing from a signal
/// handler. Text that does not fit is cut off.
struct Message {
    buf: [u8; 256],
    len: usize,
}

impl Message {
    fn new() -> Self {
        Message {
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_hex(&mut self, value: usize) {
        let mut digits = [0u8; 2 + 2 * core::mem::size_of::<usize>()];
        let mut at = digits.len();
        let mut rest = value;
        loop {
            at -= 1;
            digits[at] = b"0123456789abcdef"[rest & 0xf];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        digits[at - 2..at].copy_from_slice(b"0x");
        self.push(&digits[at - 2..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// "thread '`<name>`' overflowed a coroutine stack (guard page at 0x…,
/// stack 0x…-0x…)"
fn report(thread_name: &[u8], stack: Overflowed) -> Message {
    let mut message = Message::new();
    message.push(b"\nthread '");
    message.push(thread_name);
    message.push(b"' overflowed a coroutine stack (guard page at ");
    message.push_hex(stack.guard_start);
    message.push(b", stack ");
    message.push_hex(stack.guard_end);
    message.push(b"-");
    message.push_hex(stack.stack_base);
    message.push(b")\n");
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_thread_and_the_ranges() {
        let stack = Overflowed {
            guard_start: 0x7f00_0000,
            guard_end: 0x7f00_1000,
            stack_base: 0x7f01_1000,
        };
        let message = report(b"worker", stack);
        assert_eq!(
            core::str::from_utf8(message.as_bytes()).unwrap(),
            "\nthread 'worker' overflowed a coroutine stack (guard page at 0x7f000000, \
             stack 0x7f001000-0x7f011000)\n"
        );
        assert_eq!(
            report(
                b"x",
                Overflowed {
                    guard_start: 0,
                    guard_end: 0,
                    stack_base: 0
                }
            )
            .as_bytes()
            .windows(3)
            .filter(|w| w == b"0x0")
            .count(),
            3
        );
    }

    #[test]
    fn registered_guard_pages_are_found_until_unregistered() {
        ENABLED.store(true, Ordering::Relaxed);
        // Addresses no real stack has, so that parallel tests cannot clash.
        let registration = register(0x1000_0000, 0x1000_1000, 0x1002_0000);
        assert_eq!(
            find(0x1000_0ff8),
            Some(Overflowed {
                guard_start: 0x1000_0000,
                guard_end: 0x1000_1000,
                stack_base: 0x1002_0000,
            })
        );
        assert_eq!(
            find(0x1000_1000),
            None,
            "the usable stack is not the guard page"
        );
        assert_eq!(find(0x0fff_fff8), None);
        unregister(&registration);
        assert_eq!(find(0x1000_0ff8), None);
    }
}

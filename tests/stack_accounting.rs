//! How much of a stack is really there: values written to a fresh stack
//! from outside it, the room `remaining_stack` reports, the high-water mark
//! of what ran through `on_stack`, and stack sizes no pool can hold. Windows
//! grows its stacks one guard page at a time, so each of these is where its
//! accounting can part from the other targets'.
#![cfg(feature = "default-stack")]

use std::hint::black_box;
use std::io;

use stackswitch::stack::{DefaultStack, StackPool};
use stackswitch::{on_stack, Coroutine, CoroutineResult, Yielder};

/// A closure capturing `N` bytes runs on a fresh stack, and gets them all.
fn run_closure_of<const N: usize>() {
    let mut bytes = [0u8; N];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    // Unoptimised code copies the closure several times on its way in.
    let stack = DefaultStack::new(2 * 1024 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        let bytes = black_box(&bytes);
        bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8)
    });
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(true), "{N}");
}

#[test]
fn closures_of_4_to_64_kib_fit_on_a_fresh_stack() {
    // Around each page boundary the closure (plus the stack's header) may
    // cross; on Windows only the top page of a fresh stack is committed.
    macro_rules! sizes {
        ($($n:expr),*) => { $(run_closure_of::<{ $n }>();)* };
    }
    sizes!(
        4000,
        4016,
        4032,
        4064,
        4080,
        4096,
        4112,
        8000,
        8112,
        8192,
        8208,
        12288 - 96,
        12288,
        16 * 1024 - 16,
        16 * 1024 + 16,
        24 * 1024,
        32 * 1024,
        40 * 1024 + 48,
        48 * 1024,
        64 * 1024 - 96,
        64 * 1024
    );
}

#[test]
fn small_closures_with_large_alignments_fit_on_a_fresh_stack() {
    macro_rules! aligned {
        ($($name:ident: $align:literal),*) => {$(
            #[repr(align($align))]
            struct $name([u8; 40]);
            let value = $name([($align % 255) as u8 ^ 0x5a; 40]);
            let mut coroutine = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
                let value = black_box(&value);
                assert_eq!(value as *const $name as usize % $align, 0);
                value.0.iter().map(|&b| b as usize).sum::<usize>()
            });
            let expected = (($align % 255) as u8 ^ 0x5a) as usize * 40;
            assert_eq!(coroutine.resume(()).as_return(), Some(expected), "{}", $align);
        )*};
    }
    aligned!(A16: 16, A32: 32, A64: 64, A128: 128, A256: 256, A512: 512, A1024: 1024,
        A2048: 2048, A4096: 4096);
}

/// Input, yielded and returned values of `N` bytes (passed by address).
fn pass_values_of<const N: usize>() {
    let stack = DefaultStack::new(16 * 1024 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(
        stack,
        |yielder: &Yielder<[u8; N], [u8; N]>, input: [u8; N]| {
            assert!(input.iter().all(|&b| b == 1), "{N}");
            let again = yielder.suspend([2; N]);
            assert!(again.iter().all(|&b| b == 3), "{N}");
            [4; N]
        },
    );
    let yielded = coroutine.resume([1; N]).as_yield().unwrap();
    assert!(yielded.iter().all(|&b| b == 2), "{N}");
    let returned = coroutine.resume([3; N]).as_return().unwrap();
    assert!(returned.iter().all(|&b| b == 4), "{N}");
}

#[test]
fn values_of_4_to_64_kib_cross_a_fresh_stack() {
    // Unoptimised code copies each value several times on the way: give
    // the parent's side room too.
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| {
            pass_values_of::<4000>();
            pass_values_of::<4096>();
            pass_values_of::<8192>();
            pass_values_of::<{ 32 * 1024 }>();
            pass_values_of::<{ 64 * 1024 }>();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_reused_stack_takes_large_closures_again() {
    // After a coroutine has run, the committed part may have moved (and the
    // guard page with it): the next one's closure must still find memory.
    let mut stack = DefaultStack::new(2 * 1024 * 1024).unwrap();
    for size_kib in [1usize, 40, 8, 64] {
        let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
            black_box([7u8; 64 * 1024])[..size_kib * 1024].len()
        });
        assert_eq!(coroutine.resume(()).as_return(), Some(size_kib * 1024));
        stack = coroutine.into_stack();
        let big = [9u8; 48 * 1024];
        let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
            black_box(&big)[48 * 1024 - 1] as usize
        });
        assert_eq!(coroutine.resume(()).as_return(), Some(9));
        stack = coroutine.into_stack();
    }
}

#[inline(never)]
fn remaining(yielder: &Yielder<(), ()>) -> usize {
    black_box(yielder.remaining_stack())
}

#[test]
fn remaining_stack_is_at_most_the_requested_size_on_every_target() {
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let mut coroutine =
        Coroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| remaining(yielder));
    let left = coroutine.resume(()).as_return().unwrap();
    // Guard pages and reserves the OS keeps for itself are not room; the
    // header and the entry's frames take a little of the rest.
    assert!(left <= 64 * 1024, "{left}");
    assert!(left > 56 * 1024, "{left}");
}

#[test]
fn remaining_stack_on_a_pooled_stack_is_at_most_the_requested_size() {
    let pool = StackPool::new(64 * 1024).unwrap();
    let mut coroutine =
        Coroutine::with_stack(pool.get().unwrap(), |yielder: &Yielder<(), ()>, ()| {
            remaining(yielder)
        });
    let left = coroutine.resume(()).as_return().unwrap();
    assert!(left <= 64 * 1024, "{left}");
    assert!(left > 56 * 1024, "{left}");
}

/// Recursion of about 1 KiB per level that asks for a new segment whenever
/// less than `RED_ZONE` is left.
fn recurse_with_red_zone(yielder: &Yielder<(), ()>, n: u64) -> u64 {
    const RED_ZONE: usize = 8 * 1024;
    let frame = black_box([n; 128]);
    if n == 0 {
        return frame[0];
    }
    yielder.maybe_grow(RED_ZONE, 128 * 1024, || {
        1 + recurse_with_red_zone(yielder, n - 1)
    }) + frame[1]
        - n
}

#[test]
fn maybe_grow_with_a_small_red_zone_grows_before_the_stack_overflows() {
    // 2,000 levels of a kilobyte or more: a 64 KiB stack overflows unless
    // `remaining_stack` says when it is really running out.
    let stack = DefaultStack::new(64 * 1024).unwrap();
    let mut coroutine = Coroutine::with_stack(stack, |yielder: &Yielder<(), ()>, ()| {
        recurse_with_red_zone(yielder, 2_000)
    });
    assert_eq!(coroutine.resume(()).as_return(), Some(2_000));
}

#[inline(never)]
fn use_stack(bytes: usize) -> u8 {
    let mut frame = [0u8; 16 * 1024];
    frame[0] = 1;
    black_box(&mut frame);
    if bytes <= frame.len() {
        frame[0]
    } else {
        use_stack(bytes - frame.len()) + frame[frame.len() - 1]
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn high_water_mark_counts_what_ran_through_on_stack() {
    let mut stack = DefaultStack::new(1024 * 1024).unwrap();
    assert_eq!(on_stack(&mut stack, || use_stack(500 * 1024)), 1);
    let used = stack.high_water_mark();
    assert!((500 * 1024..1024 * 1024).contains(&used), "{used}");
    // And the stack is still whole: a coroutine runs there next, deeper.
    let mut coroutine =
        Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| use_stack(700 * 1024));
    assert_eq!(coroutine.resume(()).as_return(), Some(1));
    let used = coroutine.into_stack().high_water_mark();
    assert!((700 * 1024..1024 * 1024).contains(&used), "{used}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn high_water_mark_counts_what_ran_through_on_stack_inside_a_coroutine() {
    let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| {
        let mut segment = DefaultStack::new(1024 * 1024).unwrap();
        on_stack(&mut segment, || use_stack(300 * 1024));
        segment.high_water_mark()
    });
    let used = coroutine.resume(()).as_return().unwrap();
    assert!((300 * 1024..1024 * 1024).contains(&used), "{used}");
}

#[test]
fn pools_and_stacks_of_impossible_sizes_are_invalid_input() {
    for size in [usize::MAX, usize::MAX - 4095, usize::MAX / 2 + 1] {
        let pool = StackPool::new(size).err().map(|e| e.kind());
        assert_eq!(pool, Some(io::ErrorKind::InvalidInput), "{size:#x}");
        let built = StackPool::builder(size).build().err().map(|e| e.kind());
        assert_eq!(built, Some(io::ErrorKind::InvalidInput), "{size:#x}");
    }
    assert_eq!(
        DefaultStack::new(usize::MAX).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

/// A stack whose top is `shift` bytes below that of the stack it borrows,
/// to place frames at every offset within a page.
#[cfg(windows)]
struct Shifted<'a> {
    stack: &'a mut DefaultStack,
    shift: usize,
}

// SAFETY: a part of a valid stack, top lowered by a multiple of the
// alignment; the TEB fields are the stack's own but for its base.
#[cfg(windows)]
unsafe impl stackswitch::stack::Stack for Shifted<'_> {
    fn base(&self) -> stackswitch::stack::StackPointer {
        let base = self.stack.base().get() - self.shift;
        stackswitch::stack::StackPointer::new(base).unwrap()
    }
    fn limit(&self) -> stackswitch::stack::StackPointer {
        self.stack.limit()
    }
    fn usable_limit(&self) -> stackswitch::stack::StackPointer {
        self.stack.usable_limit()
    }
    fn teb_fields(&self) -> stackswitch::stack::StackTebFields {
        stackswitch::stack::StackTebFields {
            StackBase: self.base().get(),
            ..self.stack.teb_fields()
        }
    }
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        self.stack
            .update_teb_fields(stack_limit, guaranteed_stack_bytes)
    }
}

#[cfg(windows)]
#[test]
fn on_parent_stack_works_wherever_the_parent_stopped() {
    use stackswitch::stack::STACK_ALIGNMENT;
    // The parent runs on a fresh stack, so its committed part ends where
    // it stopped to resume the coroutine; across a page of shifts, that is
    // at every offset within a page, also just above its guard page.
    for shift in (0..4096).step_by(STACK_ALIGNMENT) {
        let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
            yielder.on_parent_stack(|| black_box(7u32))
        });
        let mut stack = DefaultStack::new(64 * 1024).unwrap();
        let parent = Shifted {
            stack: &mut stack,
            shift,
        };
        let result = on_stack(parent, || coroutine.resume(()));
        assert_eq!(result, CoroutineResult::Return(7), "{shift}");
    }
}

/// A user stack: a bare reservation with nothing committed yet, as its TEB
/// fields say, for Windows to grow as it grows a thread's stack.
#[cfg(windows)]
struct ReservedStack {
    bottom: usize,
    len: usize,
    stack_limit: usize,
    guarantee: usize,
}

#[cfg(windows)]
mod memory {
    use core::ffi::c_void;
    pub const MEM_RESERVE: u32 = 0x2000;
    pub const MEM_RELEASE: u32 = 0x8000;
    pub const PAGE_READWRITE: u32 = 0x04;
    #[link(name = "kernel32")]
    extern "system" {
        pub fn VirtualAlloc(
            address: *const c_void,
            size: usize,
            kind: u32,
            protect: u32,
        ) -> *mut c_void;
        pub fn VirtualFree(address: *mut c_void, size: usize, kind: u32) -> i32;
    }
}

#[cfg(windows)]
impl ReservedStack {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh reservation aliases nothing.
        let bottom = unsafe {
            memory::VirtualAlloc(
                std::ptr::null(),
                len,
                memory::MEM_RESERVE,
                memory::PAGE_READWRITE,
            )
        } as usize;
        assert_ne!(bottom, 0);
        ReservedStack {
            bottom,
            len,
            stack_limit: bottom + len,
            guarantee: 0x5000,
        }
    }
}

#[cfg(windows)]
impl Drop for ReservedStack {
    fn drop(&mut self) {
        // SAFETY: our own reservation, unused now.
        unsafe { memory::VirtualFree(self.bottom as *mut _, 0, memory::MEM_RELEASE) };
    }
}

// SAFETY: the reservation lives as long as the value; Windows commits it
// from the top as code reaches down (the TEB fields describe it), and what
// lies below the committed part faults until then.
#[cfg(windows)]
unsafe impl stackswitch::stack::Stack for ReservedStack {
    fn base(&self) -> stackswitch::stack::StackPointer {
        stackswitch::stack::StackPointer::new(self.bottom + self.len).unwrap()
    }
    fn limit(&self) -> stackswitch::stack::StackPointer {
        stackswitch::stack::StackPointer::new(self.bottom).unwrap()
    }
    fn usable_limit(&self) -> stackswitch::stack::StackPointer {
        stackswitch::stack::StackPointer::new(self.bottom + 2 * 4096 + self.guarantee).unwrap()
    }
    fn teb_fields(&self) -> stackswitch::stack::StackTebFields {
        stackswitch::stack::StackTebFields {
            StackBase: self.bottom + self.len,
            StackLimit: self.stack_limit,
            DeallocationStack: self.bottom,
            GuaranteedStackBytes: self.guarantee,
        }
    }
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        self.stack_limit = stack_limit;
        self.guarantee = guaranteed_stack_bytes;
    }
}

#[cfg(windows)]
#[test]
fn a_user_stack_with_nothing_committed_yet_runs_a_coroutine() {
    let bytes = [5u8; 10_000];
    let stack = ReservedStack::new(1024 * 1024);
    let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        let sum = black_box(&bytes).iter().map(|&b| b as usize).sum::<usize>();
        sum + use_stack(100 * 1024) as usize
    });
    assert_eq!(coroutine.resume(()).as_return(), Some(50_001));
    // What the OS committed on the way came back to the stack.
    let stack = coroutine.into_stack();
    let committed = stack.bottom + stack.len - stack.stack_limit;
    assert!(committed >= 100 * 1024, "{committed}");
}

//! [`DefaultStack`] on Windows: a reservation laid out like a Windows thread
//! stack, so the OS grows it on demand and reports its overflow.
//!
//! ```text
//!  base ──────────►  +---------------------------+
//!                    | committed (read/write)    |  initially one page
//!  StackLimit ────►  +---------------------------+
//!                    | guard page (PAGE_GUARD)   |  moved down by the OS as
//!                    +---------------------------+  the stack grows
//!                    | reserved, not committed   |
//!                    +---------------------------+
//!                    | guarantee (`guarantee`    |  when the guard page reaches
//!                    | bytes)                    |  this zone the OS commits it
//!                    +---------------------------+  and raises
//!                    | reserved, never committed |  STATUS_STACK_OVERFLOW
//!  DeallocationStack ►+--------------------------+
//! ```
//!
//! While a coroutine runs on the stack, the TEB describes it (the switch
//! code swaps the TEB fields), so the OS treats guard-page faults on it as
//! stack growth, exactly as for a thread's own stack.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::io;

use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, VirtualProtect, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_GUARD,
    PAGE_READWRITE,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};

use super::{Stack, StackPointer, StackTebFields, MIN_STACK_SIZE};

/// Size of the stack used by [`Coroutine::new`](crate::Coroutine::new) and
/// [`DefaultStack::default`].
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

/// Bytes kept in reserve for handling a stack overflow (the vectored
/// exception handlers run on the overflowed stack). Rust's std asks
/// `SetThreadStackGuarantee` for 20 KiB for its own threads; we do the same.
const GUARANTEE: usize = 0x5000;

/// A stack reserved with `VirtualAlloc`, committed on demand behind a
/// `PAGE_GUARD` page, as Windows does for thread stacks.
#[derive(Debug)]
pub struct DefaultStack {
    /// Top of the reservation (highest address, exclusive).
    base: StackPointer,
    /// Length of the reservation.
    len: usize,
    /// Lowest committed address: the TEB's StackLimit while running on it.
    stack_limit: usize,
    /// The TEB's GuaranteedStackBytes for this stack.
    guarantee: usize,
}

// SAFETY: the stack is plain memory that this value owns exclusively.
unsafe impl Send for DefaultStack {}
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: GetSystemInfo fills the structure and cannot fail.
    let size = unsafe {
        let mut info: SYSTEM_INFO = core::mem::zeroed();
        GetSystemInfo(&mut info);
        info.dwPageSize as usize
    };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

impl DefaultStack {
    /// Allocates a stack with at least `size` usable bytes (rounded up to
    /// whole pages), plus the overflow guarantee and a never-committed page
    /// below it.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if `size` is below
    /// [`MIN_STACK_SIZE`], or with the OS error if the memory cannot be had.
    ///
    /// ```
    /// use stackswitch::stack::{DefaultStack, Stack, MIN_STACK_SIZE};
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// assert!(stack.base().get() - stack.limit().get() >= 64 * 1024);
    /// assert!(DefaultStack::new(MIN_STACK_SIZE - 1).is_err());
    /// ```
    pub fn new(size: usize) -> io::Result<Self> {
        if size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stack size is below stackswitch::stack::MIN_STACK_SIZE",
            ));
        }
        let page = page_size();
        let guarantee = GUARANTEE.next_multiple_of(page);
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows");
        let usable = size.checked_next_multiple_of(page).ok_or_else(too_big)?;
        // Usable part, one guard page below it at the start, the guarantee,
        // and the hard bottom page.
        let len = usable
            .checked_add(2 * page + guarantee)
            .ok_or_else(too_big)?;

        // SAFETY: a fresh reservation aliases nothing.
        let reservation =
            unsafe { VirtualAlloc(core::ptr::null(), len, MEM_RESERVE, PAGE_READWRITE) };
        if reservation.is_null() {
            return Err(io::Error::last_os_error());
        }
        let bottom = reservation as usize;
        // From here on, dropping `stack` releases the memory.
        let mut stack = DefaultStack {
            // SAFETY: VirtualAlloc never returns a reservation at zero.
            base: unsafe { StackPointer::new_unchecked(bottom + len) },
            len,
            stack_limit: bottom + len - page,
            guarantee,
        };
        // Commit the top page and put a guard page below it.
        // SAFETY: both pages lie inside our own reservation.
        unsafe {
            if VirtualAlloc(
                stack.stack_limit as *const _,
                page,
                MEM_COMMIT,
                PAGE_READWRITE,
            )
            .is_null()
            {
                return Err(io::Error::last_os_error());
            }
            stack.arm_guard(stack.stack_limit - page)?;
        }
        Ok(stack)
    }

    /// Commits the page at `page` as a guard page: the first access raises
    /// STATUS_GUARD_PAGE_VIOLATION, which the OS turns into stack growth
    /// (or STATUS_STACK_OVERFLOW) while the TEB describes this stack.
    ///
    /// # Safety
    /// `page` must be a page of this reservation that holds nothing live.
    unsafe fn arm_guard(&mut self, page: usize) -> io::Result<()> {
        // SAFETY: forwarded from the caller.
        let ok = unsafe {
            !VirtualAlloc(page as *const _, page_size(), MEM_COMMIT, PAGE_READWRITE).is_null()
                && VirtualProtect(
                    page as *const _,
                    page_size(),
                    PAGE_READWRITE | PAGE_GUARD,
                    &mut 0,
                ) != 0
        };
        if ok {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Lowest address the stack may ever commit below the guarantee.
    fn hard_bottom(&self) -> usize {
        self.base.get() - self.len + page_size()
    }
}

impl Default for DefaultStack {
    /// A stack of [`DEFAULT_STACK_SIZE`] bytes.
    ///
    /// # Panics
    /// If the OS refuses the memory.
    fn default() -> Self {
        Self::new(DEFAULT_STACK_SIZE).expect("failed to allocate a coroutine stack")
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        // SAFETY: this is exactly the reservation made in `new`, and nothing
        // runs on it any more (coroutines borrow or own their stack).
        unsafe {
            let ret = VirtualFree((self.base.get() - self.len) as *mut _, 0, MEM_RELEASE);
            debug_assert_ne!(ret, 0, "VirtualFree of a coroutine stack failed");
        }
    }
}

// SAFETY: the reservation lives as long as `self`; at least MIN_STACK_SIZE
// bytes are usable (committed now or on first touch); below the usable part
// lie the guard page, then the guarantee (committed only on overflow, which
// the OS reports), then a page that is never committed.
unsafe impl Stack for DefaultStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        // SAFETY: inside the reservation, so not zero.
        unsafe { StackPointer::new_unchecked(self.base.get() - self.len) }
    }

    #[inline]
    fn teb_fields(&self) -> StackTebFields {
        StackTebFields {
            StackBase: self.base.get(),
            StackLimit: self.stack_limit,
            DeallocationStack: self.limit().get(),
            GuaranteedStackBytes: self.guarantee,
        }
    }

    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        let page = page_size();
        self.guarantee = guaranteed_stack_bytes.next_multiple_of(page);
        self.stack_limit = stack_limit;
        // After an overflow the OS has committed the guarantee zone and no
        // guard page is left: re-arm one at the top of that zone, as the CRT's
        // `_resetstkoflw` does, so that the next overflow is caught again.
        // The guard region sits just above the guarantee; everything in it
        // is free (no coroutine runs on the stack now).
        let rearm_at = self.hard_bottom() + self.guarantee;
        if self.stack_limit <= rearm_at && rearm_at + page < self.base.get() {
            // SAFETY: the page is inside the reservation and unused.
            if unsafe { self.arm_guard(rearm_at) }.is_ok() {
                self.stack_limit = rearm_at + page;
            }
        }
    }
}

impl DefaultStack {
    /// Bytes of the stack that code has used: the part Windows has
    /// committed as the stack grew, so a whole number of pages (at least
    /// one). This is the high-water mark of everything that ran on the stack
    /// since it was allocated.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let stack = DefaultStack::new(256 * 1024).unwrap();
    /// let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
    ///     let big = std::hint::black_box([1u8; 64 * 1024]);
    ///     big[100]
    /// });
    /// assert_eq!(coroutine.resume(()).as_return(), Some(1));
    /// assert!(coroutine.into_stack().high_water_mark() >= 64 * 1024);
    /// ```
    pub fn high_water_mark(&self) -> usize {
        self.base.get() - self.stack_limit
    }
}

/// Stacks for [`StackPool`](super::StackPool): on Windows, one reservation
/// each (a reservation cannot hold several growable stacks).
pub(crate) type PoolStack = DefaultStack;

/// Hands out the pool's stacks.
pub(crate) struct StackSource {
    stack_size: usize,
}

impl StackSource {
    pub(crate) fn new(stack_size: usize, _stacks_per_slab: usize) -> io::Result<Self> {
        if stack_size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stack size is below stackswitch::stack::MIN_STACK_SIZE",
            ));
        }
        Ok(StackSource { stack_size })
    }

    pub(crate) fn allocate(&mut self) -> io::Result<DefaultStack> {
        DefaultStack::new(self.stack_size)
    }

    /// Zeroes the stack: Windows has no cheap way to zero committed memory
    /// in place, so a fresh reservation replaces it.
    pub(crate) fn scrub(&self, stack: &mut DefaultStack) -> io::Result<()> {
        *stack = DefaultStack::new(self.stack_size)?;
        Ok(())
    }
}

/// Guard pages are never lightweight (page-table markers) on Windows.
pub(crate) fn guards_are_lightweight() -> bool {
    false
}

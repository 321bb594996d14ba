//! Windows stacks: committing any stack's top ahead of writes from outside
//! it, and [`DefaultStack`], a reservation laid out like a Windows thread
//! stack, so the OS grows it on demand and reports its overflow.
//!
//! ```text
//!  base ──────────►  +---------------------------+
//!                    | committed (read/write)    |  initially one page
//!  StackLimit ────►  +---------------------------+
//!                    | guard page (PAGE_GUARD)   |  moved down by the OS as
//!                    +---------------------------+  the stack grows
//!                    | reserved, not committed   |
//!  usable_limit ──►  +---------------------------+
//!                    | last guard page           |
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

use core::ffi::c_void;
#[cfg(feature = "default-stack")]
use core::sync::atomic::{AtomicUsize, Ordering};
#[cfg(feature = "default-stack")]
use std::io;

#[cfg(feature = "default-stack")]
use windows_sys::Win32::System::Memory::{VirtualFree, MEM_RELEASE, MEM_RESERVE};
#[cfg(feature = "default-stack")]
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};

use super::StackTebFields;
#[cfg(feature = "default-stack")]
use super::{Stack, StackPointer, MIN_STACK_SIZE};

// The few memory calls that committing needs, declared here because this
// part is built without the `default-stack` feature (and its `windows-sys`)
// too: user stacks need it as much.
const MEM_COMMIT: u32 = 0x1000;
const PAGE_READWRITE: u32 = 0x04;
const PAGE_GUARD: u32 = 0x100;
#[link(name = "kernel32")]
extern "system" {
    fn VirtualAlloc(address: *const c_void, size: usize, kind: u32, protect: u32) -> *mut c_void;
    fn VirtualProtect(address: *const c_void, size: usize, protect: u32, old: *mut u32) -> i32;
}

#[cfg(feature = "default-stack")]
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

/// Windows has 4 KiB pages on every CPU it runs on.
#[cfg(not(feature = "default-stack"))]
fn page_size() -> usize {
    4096
}

/// Commits the stack that `fields` describe from `lowest` (rounded down to
/// its page) up to its StackLimit, makes the page below a guard page, and
/// lowers StackLimit to match: what the OS does when code running on the
/// stack reaches down there one page at a time. Returns whether it changed
/// anything: not if `lowest` is committed already or outside the growable
/// part of the stack.
///
/// # Safety
/// `fields` must describe a stack laid out as Windows stacks are (reserved
/// from DeallocationStack to StackBase, committed from StackLimit up), on
/// which nothing lives below StackLimit.
///
/// # Panics
/// If the OS refuses to commit the memory.
pub(super) unsafe fn commit_down_to(fields: &mut StackTebFields, lowest: usize) -> bool {
    let page = page_size();
    let floor = lowest & !(page - 1);
    if floor >= fields.StackLimit
        || floor <= fields.DeallocationStack
        || fields.StackLimit > fields.StackBase
    {
        return false;
    }
    let len = fields.StackLimit - floor;
    // Committing leaves the old guard page (just below StackLimit) as it
    // was: the protection clears it.
    // SAFETY: forwarded from the caller: these pages are the stack's own,
    // unused.
    let committed = unsafe {
        !VirtualAlloc(floor as *const _, len, MEM_COMMIT, PAGE_READWRITE).is_null()
            && VirtualProtect(floor as *const _, len, PAGE_READWRITE, &mut 0) != 0
    };
    assert!(committed, "failed to commit coroutine stack memory");
    // A guard page below, unless that would be in the overflow reserve
    // (whose top the OS guards itself when the stack reaches it).
    let reserve = fields.GuaranteedStackBytes.max(page).next_multiple_of(page);
    let guard = floor - page;
    if guard >= fields.DeallocationStack + page + reserve {
        // SAFETY: as above. Without it an overflow still faults, in
        // reserved memory, so a failure is not fatal.
        unsafe {
            VirtualAlloc(
                guard as *const _,
                page,
                MEM_COMMIT,
                PAGE_READWRITE | PAGE_GUARD,
            )
        };
    }
    fields.StackLimit = floor;
    true
}

#[cfg(feature = "default-stack")]
/// Size of the stack used by [`Coroutine::new`](crate::Coroutine::new) and
/// [`DefaultStack::default`].
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

#[cfg(feature = "default-stack")]
/// Bytes kept in reserve for handling a stack overflow (the vectored
/// exception handlers run on the overflowed stack). Rust's std asks
/// `SetThreadStackGuarantee` for 20 KiB for its own threads; we do the same.
const GUARANTEE: usize = 0x5000;

#[cfg(feature = "default-stack")]
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

#[cfg(feature = "default-stack")]
// SAFETY: the stack is plain memory that this value owns exclusively.
unsafe impl Send for DefaultStack {}
#[cfg(feature = "default-stack")]
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

#[cfg(feature = "default-stack")]
impl DefaultStack {
    /// Allocates a stack with at least `size` usable bytes (rounded up to
    /// whole pages), plus the overflow guarantee and a never-committed page
    /// below it. A `size` below [`MIN_STACK_SIZE`] is raised to it, as
    /// corosensei does.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the size overflows the
    /// address space (corosensei panics there), or with the OS error if the
    /// memory cannot be had.
    ///
    /// ```
    /// use stackswitch::stack::{DefaultStack, Stack, MIN_STACK_SIZE};
    ///
    /// let stack = DefaultStack::new(64 * 1024).unwrap();
    /// assert!(stack.base().get() - stack.limit().get() >= 64 * 1024);
    /// let tiny = DefaultStack::new(0).unwrap();
    /// assert!(tiny.base().get() - tiny.limit().get() >= MIN_STACK_SIZE);
    /// ```
    pub fn new(size: usize) -> io::Result<Self> {
        let len = reservation_len(size)?;
        let page = page_size();
        let guarantee = GUARANTEE.next_multiple_of(page);

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

/// Length of the reservation for a stack of `size` usable bytes: the usable
/// part rounded up to pages, the guard page below it, the guarantee, and the
/// page that is never committed.
///
/// A `size` below [`MIN_STACK_SIZE`] counts as `MIN_STACK_SIZE`. Fails with
/// [`io::ErrorKind::InvalidInput`] if it is more than any address space holds.
#[cfg(feature = "default-stack")]
fn reservation_len(size: usize) -> io::Result<usize> {
    let size = size.max(MIN_STACK_SIZE);
    let page = page_size();
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size is too large");
    size.checked_next_multiple_of(page)
        .and_then(|usable| usable.checked_add(2 * page + GUARANTEE.next_multiple_of(page)))
        // No object may span more than half the address space.
        .filter(|&len| len <= isize::MAX as usize)
        .ok_or_else(too_big)
}

#[cfg(feature = "default-stack")]
impl Default for DefaultStack {
    /// A stack of [`DEFAULT_STACK_SIZE`] bytes.
    ///
    /// # Panics
    /// If the OS refuses the memory.
    fn default() -> Self {
        Self::new(DEFAULT_STACK_SIZE).expect("failed to allocate stack")
    }
}

#[cfg(feature = "default-stack")]
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

#[cfg(feature = "default-stack")]
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

    /// Above the last guard page, the guarantee and the page never
    /// committed: the OS raises STATUS_STACK_OVERFLOW when code reaches
    /// below it, so that is no room for code.
    #[inline]
    fn usable_limit(&self) -> StackPointer {
        // SAFETY: inside the reservation, so not zero.
        unsafe { StackPointer::new_unchecked(self.hard_bottom() + self.guarantee + page_size()) }
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

#[cfg(feature = "default-stack")]
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

#[cfg(feature = "default-stack")]
/// Stacks for [`StackPool`](super::StackPool): on Windows, one reservation
/// each (a reservation cannot hold several growable stacks).
pub(crate) type PoolStack = DefaultStack;

#[cfg(feature = "default-stack")]
/// Hands out the pool's stacks.
pub(crate) struct StackSource {
    stack_size: usize,
}

#[cfg(feature = "default-stack")]
impl StackSource {
    pub(crate) fn new(stack_size: usize, _stacks_per_slab: usize) -> io::Result<Self> {
        // The size is checked now, as it is where stacks share slabs; unlike
        // `DefaultStack::new`, a pool refuses a size below the minimum.
        if stack_size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stack size is below stackswitch::stack::MIN_STACK_SIZE",
            ));
        }
        reservation_len(stack_size)?;
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

#[cfg(feature = "default-stack")]
/// Guard pages are never lightweight (page-table markers) on Windows.
pub(crate) fn guards_are_lightweight() -> bool {
    false
}

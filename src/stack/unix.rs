//! [`DefaultStack`] on Unix: an anonymous private mapping whose lowest page
//! is made inaccessible. Pool stacks come from `slab`.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::io;

use super::valgrind;
use super::{Stack, StackPointer, MIN_STACK_SIZE};

mod shadow;
mod slab;
use shadow::ShadowStack;
pub(crate) use slab::{guards_are_lightweight, SlabStack as PoolStack, StackSource};

/// Size of the stack used by [`Coroutine::new`](crate::Coroutine::new) and
/// [`DefaultStack::default`].
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

/// A stack allocated with `mmap`, with a guard page below it.
///
/// Memory is reserved, not committed: pages cost RAM only once touched.
#[derive(Debug)]
pub struct DefaultStack {
    /// Top of the mapping (highest address, exclusive).
    base: StackPointer,
    /// Just above the guard page, which is the mapping's first page.
    usable_limit: StackPointer,
    /// Its guard page's entry for the overflow reporter, if that is on.
    overflow_registration: crate::overflow::Registration,
    /// The id Valgrind gave the stack (0 when not running under Valgrind).
    valgrind_id: usize,
    /// Its control stack, where the switch follows one (empty elsewhere).
    shadow: ShadowStack,
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
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

impl DefaultStack {
    /// Allocates a stack with at least `size` usable bytes (rounded up to
    /// whole pages) plus one guard page. A `size` below [`MIN_STACK_SIZE`]
    /// is raised to it, as corosensei does.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the size overflows the
    /// address space (corosensei panics there), or with the OS error if the
    /// memory cannot be had.
    ///
    /// # Panics
    /// On a thread with a hardware shadow stack that this build's switch
    /// cannot follow (x86-64 CET; AArch64 GCS without
    /// `-Zbranch-protection=gcs`): a coroutine on the stack would crash at
    /// its first switch.
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
        super::refuse_unfollowed_shadow_stack();
        let size = size.max(MIN_STACK_SIZE);
        let page = page_size();
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows");
        let usable = size.checked_next_multiple_of(page).ok_or_else(too_big)?;
        let mmap_len = usable.checked_add(page).ok_or_else(too_big)?;

        // SAFETY: a fresh anonymous mapping aliases nothing.
        let mapping = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                mmap_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // From here on, dropping `stack` unmaps the memory.
        let mut stack = DefaultStack {
            // SAFETY: mmap never returns a mapping at address zero here.
            base: unsafe { StackPointer::new_unchecked(mapping as usize + mmap_len) },
            // SAFETY: inside the mapping, so not zero.
            usable_limit: unsafe { StackPointer::new_unchecked(mapping as usize + page) },
            overflow_registration: crate::overflow::Registration::none(),
            valgrind_id: valgrind::register_stack(mapping as usize, mapping as usize + mmap_len),
            shadow: ShadowStack::new(),
        };
        // SAFETY: the guard page is the first page of our own mapping.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let guard = mapping as usize;
        if usable < crate::unwind::SMALL_STACK {
            crate::unwind::prepare_unwinder();
        }
        stack.overflow_registration =
            crate::overflow::register(guard, guard + page, stack.base.get());
        Ok(stack)
    }
}

impl DefaultStack {
    /// Bytes of the stack that code has used: from the base down to the
    /// lowest non-zero word. Memory from the OS starts out zeroed, so this is
    /// the high-water mark of everything that ran on the stack since it was
    /// allocated. It may fall short by the zero bytes the deepest frame
    /// wrote, or by pages the OS has swapped out.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let stack = DefaultStack::new(1024 * 1024).unwrap();
    /// assert_eq!(stack.high_water_mark(), 0);
    /// let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
    ///     let big = std::hint::black_box([1u8; 64 * 1024]);
    ///     big[100]
    /// });
    /// assert_eq!(coroutine.resume(()).as_return(), Some(1));
    /// let used = coroutine.into_stack().high_water_mark();
    /// // (A debug build may hold the array twice.)
    /// assert!(used >= 64 * 1024 && used < 256 * 1024, "{used}");
    /// ```
    pub fn high_water_mark(&self) -> usize {
        let usable_start = self.usable_limit.get();
        // SAFETY: the usable part of our mapping; `&self` means no coroutine
        // runs on it (coroutines own or mutably borrow their stack).
        unsafe { used_bytes(usable_start, self.base.get()) }
    }
}

/// How many entries `mincore` writes for one of our pages, or `None` if it
/// cannot be trusted. A kernel writes one. Under qemu-user the call is passed
/// to the host kernel, which answers per host page: a 16 KiB guest page on a
/// 4 KiB host gets four entries, so a vector sized by our page count would
/// overflow and the indices would mean host pages. Measured once, by letting
/// `mincore` fill a buffer of sentinel bytes for one page at `probe`.
///
/// # Safety
/// `probe` must be the page-aligned start of one mapped page.
unsafe fn mincore_entries_per_page(probe: usize) -> Option<usize> {
    const UNKNOWN: usize = 0;
    const UNTRUSTED: usize = usize::MAX;
    static ENTRIES: AtomicUsize = AtomicUsize::new(UNKNOWN);
    let cached = match ENTRIES.load(Ordering::Relaxed) {
        UNKNOWN => {
            // Entries are 0 or 1 with a few flag bits, never 0xff.
            let mut sentinel = [0xffu8; MAX_ENTRIES_PER_PAGE + 1];
            // SAFETY: one mapped page (caller); the buffer holds more
            // entries than any host/guest page-size ratio we accept.
            let ret = unsafe {
                libc::mincore(
                    probe as *mut _,
                    page_size(),
                    sentinel.as_mut_ptr() as *mut _,
                )
            };
            let written = sentinel.iter().take_while(|&&b| b != 0xff).count();
            let entries =
                if ret == 0 && written.is_power_of_two() && written <= MAX_ENTRIES_PER_PAGE {
                    written
                } else {
                    UNTRUSTED
                };
            ENTRIES.store(entries, Ordering::Relaxed);
            entries
        }
        known => known,
    };
    (cached != UNTRUSTED).then_some(cached)
}

/// The largest ratio of our page size to the kernel's that `used_bytes`
/// accepts (64 KiB guest pages on a 4 KiB host).
const MAX_ENTRIES_PER_PAGE: usize = 16;

/// Bytes from `top` down to the lowest non-zero word in `low..top`, which
/// must be page-aligned, readable memory of a private anonymous mapping.
/// Pages never touched are skipped without being read (`mincore`), so this
/// costs little on a large, mostly unused stack.
///
/// # Safety
/// `low..top` must be readable memory of one stack that nothing runs on.
unsafe fn used_bytes(low: usize, top: usize) -> usize {
    let page = page_size();
    let mut residency = [0u8; 256];
    let mut first_touched = top;
    // SAFETY: `low` starts a mapped page (caller).
    match unsafe { mincore_entries_per_page(low) } {
        // Cannot tell which pages were touched: read them all.
        None => first_touched = low,
        Some(entries_per_page) => {
            let mut addr = low;
            while addr < top {
                let pages = ((top - addr) / page).min(residency.len() / entries_per_page);
                // SAFETY: a range of our mapping, and a vector with room for
                // `entries_per_page` entries per page.
                let ret = unsafe {
                    libc::mincore(
                        addr as *mut _,
                        pages * page,
                        residency.as_mut_ptr() as *mut _,
                    )
                };
                if ret != 0 {
                    first_touched = low;
                    break;
                }
                let entries = &residency[..pages * entries_per_page];
                if let Some(i) = entries.iter().position(|&r| r & 1 != 0) {
                    first_touched = addr + i / entries_per_page * page;
                    break;
                }
                addr += pages * page;
            }
        }
    }
    if first_touched == top {
        // No page reported resident: either nothing ran on the stack or
        // `mincore` misreports. Reading them all is right in both cases.
        first_touched = low;
    }
    // The frames that ran here are gone, but the tools that check memory
    // accesses still keep their memory off limits: tell them.
    // SAFETY: nothing runs on the range (caller).
    unsafe { crate::sanitizer::scanning_unused_stack(first_touched, top) };
    valgrind::make_mem_defined(first_touched, top - first_touched);
    let word = core::mem::size_of::<usize>();
    let mut p = first_touched;
    while p < top {
        // SAFETY: readable, aligned, and written by nobody meanwhile (caller).
        if unsafe { core::ptr::read_volatile(p as *const usize) } != 0 {
            return top - p;
        }
        p += word;
    }
    0
}

impl Default for DefaultStack {
    /// A stack of [`DEFAULT_STACK_SIZE`] bytes.
    ///
    /// # Panics
    /// If the OS refuses the memory.
    fn default() -> Self {
        Self::new(DEFAULT_STACK_SIZE).expect("failed to allocate stack")
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        crate::overflow::unregister(&self.overflow_registration);
        valgrind::deregister_stack(self.valgrind_id);
        // SAFETY: this is exactly the mapping made in `new`, and nothing runs
        // on it any more (coroutines borrow or own their stack).
        unsafe {
            let start = self.limit().get();
            let ret = libc::munmap(start as *mut _, self.base.get() - start);
            debug_assert_eq!(ret, 0, "munmap of a coroutine stack failed");
        }
    }
}

// SAFETY: the mapping lives as long as `self`, holds at least MIN_STACK_SIZE
// usable bytes, and its lowest page is PROT_NONE.
unsafe impl Stack for DefaultStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        // SAFETY: inside a mapping, so not zero.
        unsafe { StackPointer::new_unchecked(self.usable_limit.get() - page_size()) }
    }

    #[inline]
    fn usable_limit(&self) -> StackPointer {
        self.usable_limit
    }

    const SHADOW_STACK_REFUSED_WHEN_MADE: bool = true;

    #[inline]
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        self.shadow.prepare(self.base.get() - self.limit().get())
    }
}

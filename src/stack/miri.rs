//! [`DefaultStack`] and the pool's stacks under Miri: zeroed memory from the
//! global allocator, with no guard page (Miri has no pages to protect; it
//! reports any access outside the allocation as undefined behaviour
//! instead, which is a stricter guard).
//!
//! Under Miri a coroutine's frames live on its own thread, never in its
//! stack, which holds only what stackswitch keeps at the top (the closure,
//! the stack state, the link). So `high_water_mark` counts just those bytes.

use std::alloc::{self, Layout};
use std::io;

use super::{Stack, StackPointer, MIN_STACK_SIZE, STACK_ALIGNMENT};

/// Size of the stack used by [`Coroutine::new`](crate::Coroutine::new) and
/// [`DefaultStack::default`].
pub const DEFAULT_STACK_SIZE: usize = 1024 * 1024;

/// A stack allocated from the global allocator (under Miri only).
///
/// It has no guard page: Miri itself reports any access outside it.
#[derive(Debug)]
pub struct DefaultStack {
    /// Lowest address of the allocation.
    start: *mut u8,
    len: usize,
}

// SAFETY: the stack is plain memory that this value owns exclusively.
unsafe impl Send for DefaultStack {}
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

fn layout(size: usize) -> io::Result<Layout> {
    if size < MIN_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "stack size is below stackswitch::stack::MIN_STACK_SIZE",
        ));
    }
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows");
    let size = size
        .checked_next_multiple_of(STACK_ALIGNMENT)
        .ok_or_else(too_big)?;
    Layout::from_size_align(size, STACK_ALIGNMENT).map_err(|_| too_big())
}

impl DefaultStack {
    /// Allocates a stack of at least `size` usable bytes, zeroed. A `size`
    /// below [`MIN_STACK_SIZE`] is raised to it, as elsewhere.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the size overflows, or
    /// with [`io::ErrorKind::OutOfMemory`].
    pub fn new(size: usize) -> io::Result<Self> {
        let layout = layout(size.max(MIN_STACK_SIZE))?;
        // SAFETY: the layout's size is at least MIN_STACK_SIZE, not zero.
        let start = unsafe { alloc::alloc_zeroed(layout) };
        if start.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // The generic code reaches the stack through addresses: expose the
        // allocation's provenance so that those addresses may be used.
        let _ = start as usize;
        Ok(DefaultStack {
            start,
            len: layout.size(),
        })
    }

    /// Bytes of the stack that have been written, from the base down to the
    /// lowest non-zero word. Under Miri frames never use the stack, so this
    /// counts only what stackswitch itself kept at its top for the
    /// coroutines that ran on it (closure, state, entry).
    pub fn high_water_mark(&self) -> usize {
        // SAFETY: our allocation; `&self` means no coroutine runs on it.
        unsafe { used_bytes(self.start, self.len) }
    }
}

/// Bytes from the end of `start..start + len` down to its lowest non-zero
/// word.
///
/// # Safety
/// The range must be one initialised allocation that nothing writes to
/// meanwhile.
unsafe fn used_bytes(start: *mut u8, len: usize) -> usize {
    let word = core::mem::size_of::<usize>();
    let mut offset = 0;
    while offset < len {
        // SAFETY: within the allocation, aligned (the allocation is
        // STACK_ALIGNMENT-aligned), zeroed at allocation time and since
        // written only with whole values, the lowest of which (the entry
        // words of `init_stack`) have no padding.
        if unsafe { core::ptr::read_volatile(start.add(offset) as *const usize) } != 0 {
            return len - offset;
        }
        offset += word;
    }
    0
}

impl Default for DefaultStack {
    /// A stack of [`DEFAULT_STACK_SIZE`] bytes.
    ///
    /// # Panics
    /// If the allocator refuses the memory.
    fn default() -> Self {
        Self::new(DEFAULT_STACK_SIZE).expect("failed to allocate a coroutine stack")
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        // SAFETY: exactly the allocation made in `new`, with its layout.
        unsafe {
            alloc::dealloc(
                self.start,
                Layout::from_size_align_unchecked(self.len, STACK_ALIGNMENT),
            )
        }
    }
}

// SAFETY: the allocation lives as long as `self` and holds at least
// MIN_STACK_SIZE bytes; Miri reports any access outside it, which stands in
// for a guard page.
unsafe impl Stack for DefaultStack {
    #[inline]
    fn base(&self) -> StackPointer {
        // SAFETY: the end of an allocation is not zero.
        unsafe { StackPointer::new_unchecked(self.start as usize + self.len) }
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        // SAFETY: an allocation does not start at zero.
        unsafe { StackPointer::new_unchecked(self.start as usize) }
    }

    // Under Miri no TEB describes the stack (the switch is a hand-off
    // between threads): the fields only say where the allocation lies.
    #[cfg(windows)]
    fn teb_fields(&self) -> super::StackTebFields {
        super::StackTebFields {
            StackBase: self.base().get(),
            StackLimit: self.limit().get(),
            DeallocationStack: self.limit().get(),
            GuaranteedStackBytes: 0,
        }
    }

    #[cfg(windows)]
    fn update_teb_fields(&mut self, _stack_limit: usize, _guaranteed_stack_bytes: usize) {}
}

/// A pool's stack under Miri: an allocation of its own.
pub(crate) struct PoolStack(DefaultStack);

impl PoolStack {
    pub(crate) fn high_water_mark(&self) -> usize {
        self.0.high_water_mark()
    }
}

// SAFETY: as for `DefaultStack`.
unsafe impl Stack for PoolStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.0.base()
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.0.limit()
    }

    #[cfg(windows)]
    fn teb_fields(&self) -> super::StackTebFields {
        self.0.teb_fields()
    }

    #[cfg(windows)]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        self.0
            .update_teb_fields(stack_limit, guaranteed_stack_bytes)
    }
}

/// Hands out the pool's stacks: one allocation each (no slabs under Miri).
pub(crate) struct StackSource {
    size: usize,
}

impl StackSource {
    pub(crate) fn new(stack_size: usize, _stacks_per_slab: usize) -> io::Result<Self> {
        layout(stack_size)?;
        Ok(StackSource { size: stack_size })
    }

    pub(crate) fn allocate(&mut self) -> io::Result<PoolStack> {
        DefaultStack::new(self.size).map(PoolStack)
    }

    /// Zeroes the stack.
    pub(crate) fn scrub(&self, stack: &mut PoolStack) -> io::Result<()> {
        // SAFETY: our allocation, which nothing runs on.
        unsafe { core::ptr::write_bytes(stack.0.start, 0, stack.0.len) };
        Ok(())
    }
}

/// Under Miri stacks have no guard pages at all.
pub(crate) fn guards_are_lightweight() -> bool {
    false
}

//! [`StackPool`]: guard-paged stacks recycled without system calls.

use core::cell::{RefCell, UnsafeCell};
use core::mem::ManuallyDrop;
use std::io;
use std::rc::Rc;
use std::vec::Vec;

use super::sys::{self, PoolStack, StackSource};
use super::{Stack, StackPointer};

/// A cache of stacks of one size, for one thread.
///
/// [`get`](Self::get) hands out an owned [`PooledStack`] that goes back to
/// the pool when dropped, so a coroutine takes one by value and returns it
/// when it is dropped, with no `unsafe` anywhere:
///
/// ```
/// use stackswitch::stack::StackPool;
/// use stackswitch::{Coroutine, Yielder};
///
/// let pool = StackPool::new(64 * 1024).unwrap();
/// for i in 0..3 {
///     let stack = pool.get().unwrap();
///     let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<u32, ()>, x: u32| x + 1);
///     assert_eq!(coroutine.resume(i).as_return(), Some(i + 1));
/// } // each coroutine's stack goes back to the pool here
/// assert_eq!(pool.idle(), 1);
/// ```
///
/// Taking a stack from the pool and giving it back are a few loads and
/// stores: no system call, no lock (the pool belongs to one thread: it is
/// neither `Send` nor `Sync`, like coroutines themselves; keep one per
/// thread, in a `thread_local!` for instance).
///
/// When the pool is empty, new stacks are carved out of *slabs*, large
/// mappings that each hold many stacks, every one with its own guard page.
/// On Linux 6.13 and later the guard pages are page-table markers
/// (`MADV_GUARD_INSTALL`), so a slab stays one mapping: a process can hold
/// millions of guarded stacks under the default `vm.max_map_count`. On older
/// kernels and other Unixes each guard page is `mprotect`ed and counts as a
/// mapping of its own (so about 32,000 live stacks fit under the default
/// limit); on Windows every stack is its own reservation. See
/// [`lightweight_guards`](Self::lightweight_guards).
///
/// The pool keeps at most [`max_idle`](StackPoolBuilder::max_idle) stacks;
/// stacks returned beyond that are freed. With
/// [`scrub`](StackPoolBuilder::scrub) every returned stack is zeroed, so
/// that no data can pass from one coroutine to the next (for running
/// mutually distrusting tenants).
#[derive(Clone)]
pub struct StackPool {
    shared: Rc<Shared>,
}

struct Shared {
    /// Touched only by `take_idle`, `put_idle` and `idle`, which call no
    /// code that could reach the pool again while they hold it.
    idle: UnsafeCell<Vec<PoolStack>>,
    source: RefCell<StackSource>,
    max_idle: usize,
    scrub: bool,
}

/// Settings for a [`StackPool`], from [`StackPool::builder`].
#[derive(Clone, Debug)]
pub struct StackPoolBuilder {
    stack_size: usize,
    max_idle: usize,
    stacks_per_slab: usize,
    scrub: bool,
}

impl StackPoolBuilder {
    /// Most stacks the pool keeps while they are not in use (default 64).
    /// Stacks given back beyond that are freed.
    pub fn max_idle(mut self, max_idle: usize) -> Self {
        self.max_idle = max_idle;
        self
    }

    /// How many stacks each mapping holds (default 16). Larger slabs mean
    /// fewer mappings; a slab is unmapped only once all its stacks are freed.
    pub fn stacks_per_slab(mut self, stacks_per_slab: usize) -> Self {
        self.stacks_per_slab = stacks_per_slab;
        self
    }

    /// Whether to zero every stack given back to the pool (default `false`).
    /// The memory is handed back to the OS, which supplies zeroed pages when
    /// the stack is next used.
    pub fn scrub(mut self, scrub: bool) -> Self {
        self.scrub = scrub;
        self
    }

    /// Makes the pool. No memory is allocated until the first
    /// [`get`](StackPool::get).
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the stack size is below
    /// [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE) or too large.
    ///
    /// # Panics
    /// On a thread with a hardware shadow stack that this build's switch
    /// cannot follow, as [`DefaultStack::new`](super::DefaultStack::new).
    pub fn build(self) -> io::Result<StackPool> {
        super::refuse_unfollowed_shadow_stack();
        let source = StackSource::new(self.stack_size, self.stacks_per_slab)?;
        Ok(StackPool {
            shared: Rc::new(Shared {
                idle: UnsafeCell::new(Vec::with_capacity(self.max_idle.min(1024))),
                source: RefCell::new(source),
                max_idle: self.max_idle,
                scrub: self.scrub,
            }),
        })
    }
}

impl StackPool {
    /// A pool of stacks with at least `stack_size` usable bytes each, with
    /// default settings (see [`builder`](Self::builder)).
    ///
    /// ```
    /// use stackswitch::stack::{StackPool, MIN_STACK_SIZE};
    /// assert!(StackPool::new(MIN_STACK_SIZE - 1).is_err());
    /// ```
    pub fn new(stack_size: usize) -> io::Result<Self> {
        Self::builder(stack_size).build()
    }

    /// Settings for a pool of stacks with at least `stack_size` usable bytes
    /// each.
    ///
    /// ```
    /// use stackswitch::stack::StackPool;
    ///
    /// let pool = StackPool::builder(32 * 1024)
    ///     .max_idle(1000)
    ///     .stacks_per_slab(256)
    ///     .scrub(true)
    ///     .build()
    ///     .unwrap();
    /// let stack = pool.get().unwrap();
    /// drop(stack);
    /// assert_eq!(pool.idle(), 1);
    /// ```
    pub fn builder(stack_size: usize) -> StackPoolBuilder {
        StackPoolBuilder {
            stack_size,
            max_idle: 64,
            stacks_per_slab: 16,
            scrub: false,
        }
    }

    /// A stack from the pool, or a new one if the pool is empty.
    ///
    /// Fails only if a new stack is needed and the OS refuses the memory.
    #[inline]
    pub fn get(&self) -> io::Result<PooledStack> {
        let stack = match self.shared.take_idle() {
            Some(stack) => stack,
            None => self.shared.source.borrow_mut().allocate()?,
        };
        Ok(PooledStack {
            stack: ManuallyDrop::new(stack),
            pool: Rc::clone(&self.shared),
        })
    }

    /// How many stacks the pool holds, ready to be handed out.
    pub fn idle(&self) -> usize {
        // SAFETY: see `Shared::idle`; `len` runs no other code.
        unsafe { (*self.shared.idle.get()).len() }
    }

    /// Whether guard pages are lightweight page-table markers (Linux 6.13
    /// and later), so that a slab of stacks is a single mapping whatever its
    /// number of guard pages. Known once a stack has been allocated.
    ///
    /// ```
    /// use stackswitch::stack::StackPool;
    ///
    /// let pool = StackPool::new(16 * 1024).unwrap();
    /// let _stack = pool.get().unwrap();
    /// println!("lightweight guard pages: {}", StackPool::lightweight_guards());
    /// ```
    pub fn lightweight_guards() -> bool {
        sys::guards_are_lightweight()
    }
}

impl Shared {
    #[inline]
    fn take_idle(&self) -> Option<PoolStack> {
        // SAFETY: the pool is neither Send nor Sync, so only this thread
        // reaches `idle`, and `pop` calls no code that could reach it again.
        unsafe { (*self.idle.get()).pop() }
    }

    #[inline]
    fn give_back(&self, mut stack: PoolStack) {
        // SAFETY: as in `take_idle`; `len` runs no other code.
        if unsafe { (*self.idle.get()).len() } >= self.max_idle {
            return; // `stack` is freed here
        }
        if self.scrub && self.source.borrow().scrub(&mut stack).is_err() {
            return; // could not be zeroed: free it instead
        }
        // SAFETY: as in `take_idle`; `push` may reallocate the vector, which
        // runs the allocator but nothing that reaches the pool.
        unsafe { (*self.idle.get()).push(stack) }
    }
}

/// A stack from a [`StackPool`], which it goes back to when dropped.
///
/// It is the pool's until then: the pool stays alive as long as any of its
/// stacks does.
pub struct PooledStack {
    stack: ManuallyDrop<PoolStack>,
    pool: Rc<Shared>,
}

impl PooledStack {
    /// Bytes of the stack that code has used since it was allocated or last
    /// [scrubbed](StackPoolBuilder::scrub): its high-water mark. On Unix,
    /// from the base down to the lowest non-zero word (it may fall short by
    /// the zero bytes the deepest frame wrote); on Windows, the committed
    /// part, in whole pages. Under Miri, where frames live on the
    /// coroutine's thread, only what stackswitch keeps at the top.
    ///
    /// ```
    /// use stackswitch::stack::StackPool;
    /// use stackswitch::{Coroutine, Yielder};
    ///
    /// let pool = StackPool::builder(256 * 1024).scrub(true).build().unwrap();
    /// let mut coroutine = Coroutine::with_stack(pool.get().unwrap(), |_: &Yielder<(), ()>, ()| {
    ///     std::hint::black_box([7u8; 100 * 1024])[0]
    /// });
    /// assert_eq!(coroutine.resume(()).as_return(), Some(7));
    /// # // Under Miri frames live on the coroutine's thread, not in its stack.
    /// # #[cfg(not(miri))]
    /// assert!(coroutine.into_stack().high_water_mark() >= 100 * 1024);
    /// ```
    pub fn high_water_mark(&self) -> usize {
        self.stack.high_water_mark()
    }
}

impl Drop for PooledStack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: taken once, here; `self.stack` is never used again.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        self.pool.give_back(stack);
    }
}

impl core::fmt::Debug for PooledStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PooledStack")
            .field("base", &self.stack.base())
            .field("limit", &self.stack.limit())
            .finish()
    }
}

// SAFETY: the pool's stack types uphold the contract; this value owns its
// stack until dropped, and the pool hands each stack to one owner at a time.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.stack.base()
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.stack.limit()
    }

    #[inline]
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        self.stack.shadow_stack()
    }

    // Checked when the pool was built.
    const SHADOW_STACK_REFUSED_WHEN_MADE: bool = true;

    #[inline]
    fn usable_limit(&self) -> StackPointer {
        self.stack.usable_limit()
    }

    #[cfg(windows)]
    #[inline]
    fn teb_fields(&self) -> super::StackTebFields {
        self.stack.teb_fields()
    }

    #[cfg(windows)]
    #[inline]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        self.stack
            .update_teb_fields(stack_limit, guaranteed_stack_bytes)
    }
}

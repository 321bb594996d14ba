//! Stacks carved out of large mappings ("slabs"), for [`StackPool`].
//!
//! One `mmap` holds many stacks, each with a guard page below it:
//!
//! ```text
//!  slab start ─► | guard | stack 0 | guard | stack 1 | … | guard | stack n-1 | ◄─ slab end
//! ```
//!
//! How the guard pages are made decides how many stacks fit in a process:
//!
//! - Linux 6.13 and later: `madvise(MADV_GUARD_INSTALL)` marks the page in
//!   the page tables. The slab stays one mapping however many guards it
//!   has, so a million stacks take a few hundred mappings.
//! - Older kernels, other Unixes, and emulators that accept the `madvise`
//!   without acting on it: `mprotect(PROT_NONE)` per guard page. Each one
//!   splits the mapping, so every stack costs two mappings and
//!   `vm.max_map_count` (65530 by default on Linux) caps a process at about
//!   32,000 live stacks.
//!
//! Which one works is found out once per process by installing a guard and
//! checking that the kernel refuses to read through it.
//!
//! A slab is unmapped when the last of its stacks is dropped.
//!
//! [`StackPool`]: crate::stack::StackPool

use core::sync::atomic::{AtomicU8, Ordering};
use std::io;
use std::rc::Rc;

use super::{page_size, used_bytes, ShadowStack};
use crate::stack::valgrind;
use crate::stack::{Stack, StackPointer, MIN_STACK_SIZE};

/// `MADV_GUARD_INSTALL` from Linux's `mman-common.h` (not yet in `libc`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// One anonymous mapping holding many stacks.
struct Slab {
    start: usize,
    len: usize,
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `StackSource::new_slab`; the last
        // stack in it is being dropped, so nothing runs on it.
        let ret = unsafe { libc::munmap(self.start as *mut _, self.len) };
        debug_assert_eq!(ret, 0, "munmap of a stack slab failed");
    }
}

/// A stack inside a slab: owns its slot and keeps the slab mapped.
pub(crate) struct SlabStack {
    base: StackPointer,
    /// Usable bytes (above the guard page).
    usable: usize,
    /// The id Valgrind gave the stack (0 when not running under Valgrind),
    /// so that it sees switches to it as stack switches.
    valgrind_id: usize,
    /// Its control stack, where the switch follows one (empty elsewhere):
    /// it stays with the stack while the pool keeps it.
    shadow: ShadowStack,
    _slab: Rc<Slab>,
}

impl Drop for SlabStack {
    fn drop(&mut self) {
        valgrind::deregister_stack(self.valgrind_id);
    }
}

impl SlabStack {
    /// Bytes of the stack that have been written since it was carved or
    /// last scrubbed.
    pub(crate) fn high_water_mark(&self) -> usize {
        // SAFETY: the usable part of our slot is mapped and not in use (we
        // are borrowed, so no coroutine runs on it).
        unsafe { used_bytes(self.base.get() - self.usable, self.base.get()) }
    }
}

// SAFETY: the slot lives as long as the slab, which this value keeps mapped;
// it holds at least MIN_STACK_SIZE usable bytes above a guard page.
unsafe impl Stack for SlabStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        // SAFETY: inside a mapping, so not zero.
        unsafe { StackPointer::new_unchecked(self.base.get() - self.usable - page_size()) }
    }

    #[inline]
    fn shadow_stack(&mut self) -> Option<StackPointer> {
        self.shadow.prepare(self.usable)
    }

    #[inline]
    fn usable_limit(&self) -> StackPointer {
        // SAFETY: just above the guard page, inside a mapping: not zero.
        unsafe { StackPointer::new_unchecked(self.base.get() - self.usable) }
    }
}

/// Hands out stacks of one size, carving a new slab when the current one is
/// used up.
pub(crate) struct StackSource {
    usable: usize,
    slot_len: usize,
    stacks_per_slab: usize,
    /// The slab being carved and the index of its next free slot.
    current: Option<(Rc<Slab>, usize)>,
}

impl StackSource {
    pub(crate) fn new(stack_size: usize, stacks_per_slab: usize) -> io::Result<Self> {
        if stack_size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stack size is below stackswitch::stack::MIN_STACK_SIZE",
            ));
        }
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows");
        let page = page_size();
        let usable = stack_size
            .checked_next_multiple_of(page)
            .ok_or_else(too_big)?;
        let slot_len = usable.checked_add(page).ok_or_else(too_big)?;
        let stacks_per_slab = stacks_per_slab.max(1);
        if usable < crate::unwind::SMALL_STACK {
            crate::unwind::prepare_unwinder();
        }
        slot_len.checked_mul(stacks_per_slab).ok_or_else(too_big)?;
        Ok(StackSource {
            usable,
            slot_len,
            stacks_per_slab,
            current: None,
        })
    }

    pub(crate) fn allocate(&mut self) -> io::Result<SlabStack> {
        let (slab, index) = match self.current.take() {
            Some((slab, index)) if index < self.stacks_per_slab => (slab, index),
            _ => (Rc::new(self.new_slab()?), 0),
        };
        let slot = slab.start + index * self.slot_len;
        install_guard(slot)?;
        let stack = SlabStack {
            // SAFETY: inside a mapping, so not zero.
            base: unsafe { StackPointer::new_unchecked(slot + self.slot_len) },
            usable: self.usable,
            valgrind_id: valgrind::register_stack(slot, slot + self.slot_len),
            shadow: ShadowStack::new(),
            _slab: Rc::clone(&slab),
        };
        self.current = Some((slab, index + 1));
        Ok(stack)
    }

    fn new_slab(&self) -> io::Result<Slab> {
        let len = self.slot_len * self.stacks_per_slab;
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let start = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Slab {
            start: start as usize,
            len,
        })
    }

    /// Zeroes the stack, so that nothing a coroutine left on it can be read
    /// by the next one, and gives its memory back to the OS.
    pub(crate) fn scrub(&self, stack: &mut SlabStack) -> io::Result<()> {
        let start = stack.base.get() - stack.usable;
        // SAFETY: the usable part of a slot we own and nothing runs on.
        unsafe { discard(start, stack.usable) }
    }
}

// How guard pages are made, decided once per process.
const UNKNOWN: u8 = 0;
const MADVISE: u8 = 1;
const MPROTECT: u8 = 2;
static GUARD_METHOD: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Makes the page at `addr` (inside one of our slabs) fault on any access.
fn install_guard(addr: usize) -> io::Result<()> {
    make_guard(addr)?;
    // Valgrind 3.19 passes `MADV_GUARD_INSTALL` to the kernel without
    // knowing what it does, so memcheck would take the guard for ordinary
    // memory: it would not report an overflow into it, and its leak check,
    // which reads all memory it believes accessible, would fault on every
    // word of every guard page (minutes for a large slab). Told, it does
    // neither. (Falling back to `mprotect` under Valgrind is no answer:
    // every guard would split the mapping, and Valgrind's table of mappings
    // is fixed: 20,000 such stacks overflow it, "VG_N_SEGMENTS is too low".)
    valgrind::make_mem_noaccess(addr, page_size());
    Ok(())
}

/// `install_guard` without telling Valgrind.
fn make_guard(addr: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let method = GUARD_METHOD.load(Ordering::Relaxed);
        // CI sets `stackswitch_mprotect_guards` to test the fallback that
        // kernels before 6.13 take, on a kernel that has the lightweight one.
        if method != MPROTECT && !cfg!(stackswitch_mprotect_guards) {
            // SAFETY: a page of our own private anonymous mapping.
            let ret = unsafe { libc::madvise(addr as *mut _, page_size(), MADV_GUARD_INSTALL) };
            if method == MADVISE && ret == 0 {
                return Ok(());
            }
            // First time: trust the guard only if the kernel refuses to read
            // through it (an emulator may accept the advice and ignore it).
            if method == UNKNOWN {
                let works = ret == 0 && !readable(addr);
                GUARD_METHOD.store(if works { MADVISE } else { MPROTECT }, Ordering::Relaxed);
                if works {
                    return Ok(());
                }
            } else {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // SAFETY: a page of our own mapping.
    if unsafe { libc::mprotect(addr as *mut _, page_size(), libc::PROT_NONE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    GUARD_METHOD.store(MPROTECT, Ordering::Relaxed);
    Ok(())
}

/// Whether guard pages are lightweight `madvise` guards (`true`) or
/// `mprotect`ed pages (`false`) in this process; known once a slab stack has
/// been allocated.
pub(crate) fn guards_are_lightweight() -> bool {
    GUARD_METHOD.load(Ordering::Relaxed) == MADVISE
}

/// Whether the kernel can read a byte at `addr`, asked without touching it:
/// a `write` from it into a pipe fails with `EFAULT` if it cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn readable(addr: usize) -> bool {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls on descriptors we create and close.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            // Cannot tell: assume the worst, so mprotect is used.
            return true;
        }
        let written = libc::write(fds[1], addr as *const _, 1);
        libc::close(fds[0]);
        libc::close(fds[1]);
        written == 1
    }
}

/// Replaces the memory at `start..start + len` with zero pages.
///
/// # Safety
/// The range must be page-aligned memory of our own private anonymous
/// mappings that nothing uses.
unsafe fn discard(start: usize, len: usize) -> io::Result<()> {
    // Linux's MADV_DONTNEED frees private anonymous pages, which then read
    // as zeroes; trust it once checked (an emulator may ignore it).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if dontneed_zeroes() {
        // SAFETY: forwarded from the caller.
        if unsafe { libc::madvise(start as *mut _, len, libc::MADV_DONTNEED) } == 0 {
            return Ok(());
        }
    }
    // Everywhere: map fresh zero pages over the range.
    // SAFETY: forwarded from the caller: replacing the range harms nothing.
    let ret = unsafe {
        libc::mmap(
            start as *mut _,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if ret == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `MADV_DONTNEED` really zeroes private anonymous memory here,
/// tested once on a page of our own.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn dontneed_zeroes() -> bool {
    const YES: u8 = 1;
    const NO: u8 = 2;
    static DONTNEED: AtomicU8 = AtomicU8::new(UNKNOWN);
    match DONTNEED.load(Ordering::Relaxed) {
        YES => return true,
        NO => return false,
        _ => {}
    }
    let page = page_size();
    // SAFETY: a fresh private page, written, advised and unmapped here.
    let works = unsafe {
        let p = libc::mmap(
            core::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANON,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        let word = p as *mut usize;
        word.write_volatile(usize::MAX);
        let works = libc::madvise(p, page, libc::MADV_DONTNEED) == 0 && word.read_volatile() == 0;
        libc::munmap(p, page);
        works
    };
    DONTNEED.store(if works { YES } else { NO }, Ordering::Relaxed);
    works
}

//! `StackPool`: reuse, bounds, scrubbing between tenants, high-water marks,
//! and many guarded stacks carved from one slab.
#![cfg(feature = "default-stack")]
// The secret scan reads memory ASan keeps poisoned (see `count_secret_words`).
#![cfg_attr(stackswitch_asan, feature(sanitize))]

use std::hint::black_box;

use stackswitch::stack::{Stack, StackPool};
use stackswitch::{Coroutine, CoroutineResult, Yielder};

#[cfg(unix)]
mod common;

fn page_size() -> usize {
    4096.max(usable_guard())
}

/// Bytes at the bottom of a pool stack that are not usable: the guard page
/// on Unix; on Windows the reserve below a stack (uncommitted until it
/// grows), which scans simply skip.
#[cfg(unix)]
fn usable_guard() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}
#[cfg(windows)]
fn usable_guard() -> usize {
    64 * 1024
}

/// The part of a pool stack that can be read: everything above the guard
/// page on Unix; the committed part on Windows (the rest is reserved only).
fn readable_part(stack: &stackswitch::stack::PooledStack) -> (usize, usize) {
    let top = stack.base().get();
    if cfg!(windows) {
        (top - stack.high_water_mark(), top)
    } else {
        (stack.limit().get() + usable_guard(), top)
    }
}

#[test]
fn stacks_return_to_the_pool_and_are_reused() {
    let pool = StackPool::new(64 * 1024).unwrap();
    let first = pool.get().unwrap();
    let base = first.base();
    assert_eq!(pool.idle(), 0);
    drop(first);
    assert_eq!(pool.idle(), 1);
    let again = pool.get().unwrap();
    assert_eq!(again.base(), base);
    assert_eq!(pool.idle(), 0);
    assert!(again.base().get() - again.limit().get() >= 64 * 1024);
}

#[test]
fn idle_stacks_are_bounded() {
    let pool = StackPool::builder(16 * 1024).max_idle(2).build().unwrap();
    let stacks: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    let mut bases: Vec<_> = stacks.iter().map(|s| s.base()).collect();
    bases.sort();
    bases.dedup();
    assert_eq!(bases.len(), 5, "every stack handed out is distinct");
    drop(stacks);
    assert_eq!(pool.idle(), 2);
}

#[test]
fn suspended_coroutines_give_their_stack_back_when_dropped() {
    let pool = StackPool::new(64 * 1024).unwrap();
    let mut coroutines: Vec<Coroutine<u32, u32, u32, _>> = (0..10)
        .map(|_| {
            Coroutine::with_stack(pool.get().unwrap(), |yielder: &Yielder<u32, u32>, x| {
                let y = yielder.suspend(x * 2);
                x + y
            })
        })
        .collect();
    for (i, c) in coroutines.iter_mut().enumerate() {
        assert_eq!(c.resume(i as u32), CoroutineResult::Yield(2 * i as u32));
    }
    assert_eq!(pool.idle(), 0);
    // Half finish, half are dropped while suspended (and unwound, with
    // `unwind`; without it a dropped suspended coroutine aborts, so finish
    // them all).
    let keep_suspended = if cfg!(feature = "unwind") { 5 } else { 0 };
    for (i, c) in coroutines.iter_mut().enumerate().skip(keep_suspended) {
        assert_eq!(c.resume(1), CoroutineResult::Return(i as u32 + 1));
    }
    drop(coroutines);
    assert_eq!(pool.idle(), 10);
}

/// A recognisable secret, 32 KiB of it, written on the coroutine's stack.
const SECRET: u64 = 0x5EC2_E7D0_0DF0_0D42;

#[inline(never)]
fn write_secret() -> u64 {
    let secret = black_box([SECRET; 4096]);
    secret.iter().fold(0, |a, &b| a ^ b)
}

/// Runs one tenant that leaves a secret on a pool stack, then takes the
/// recycled stack as the next tenant and counts the secret words on it.
fn secret_words_seen_by_next_tenant(pool: &StackPool) -> usize {
    let mut tenant = Coroutine::with_stack(pool.get().unwrap(), |_: &Yielder<(), ()>, ()| {
        write_secret()
    });
    assert_eq!(tenant.resume(()), CoroutineResult::Return(0));
    let base = tenant.into_stack().base();
    // The stack went back to the pool: the next tenant gets the same one
    // (on Windows scrubbing replaces the reservation, maybe elsewhere).
    let recycled = pool.get().unwrap();
    if cfg!(unix) {
        assert_eq!(recycled.base(), base);
    }
    // Scan all of its readable memory, from inside the next tenant.
    let (low, top) = readable_part(&recycled);
    let mut next = Coroutine::with_stack(recycled, move |_: &Yielder<(), ()>, ()| {
        // SAFETY: usable memory of the stack this coroutine runs on;
        // nothing else writes to it meanwhile.
        unsafe { count_secret_words(low, top) }
    });
    next.resume(()).as_return().unwrap()
}

/// How many words of `low..top` hold `SECRET`.
///
/// The scan reads what dead frames left, and the redzones of live ones,
/// which AddressSanitizer keeps poisoned: under it, this function is not
/// instrumented (its reads are plain loads, not calls to instrumented
/// functions). Memcheck is told in ci/valgrind.supp.
///
/// # Safety
/// `low..top` must be readable memory that nothing writes meanwhile.
#[cfg_attr(stackswitch_asan, sanitize(address = "off"))]
#[inline(never)]
unsafe fn count_secret_words(low: usize, top: usize) -> usize {
    let mut count = 0;
    let mut p = low;
    while p < top {
        // SAFETY: forwarded from the caller; `p` is aligned for u64.
        if unsafe { *(p as *const u64) } == SECRET {
            count += 1;
        }
        // Step by u64's alignment: it is 4 bytes on some 32-bit targets.
        p += std::mem::align_of::<u64>();
    }
    count
}

#[test]
fn scrubbed_stacks_leak_nothing_between_tenants() {
    let pool = StackPool::builder(256 * 1024).scrub(true).build().unwrap();
    assert_eq!(secret_words_seen_by_next_tenant(&pool), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn unscrubbed_stacks_do_keep_old_data() {
    // The control for the test above: the scan does find the secret when
    // the pool does not scrub, so its zero count means something.
    let pool = StackPool::new(256 * 1024).unwrap();
    assert!(secret_words_seen_by_next_tenant(&pool) >= 4096);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "under Miri a coroutine's frames live on its thread, not in its stack memory"
)]
fn high_water_mark_tracks_the_deepest_use() {
    let pool = StackPool::builder(512 * 1024).scrub(true).build().unwrap();
    let fresh = pool.get().unwrap();
    let at_start = fresh.high_water_mark();
    assert!(at_start < page_size() * 2, "{at_start}");

    let mut small = Coroutine::with_stack(fresh, |_: &Yielder<(), ()>, ()| 1 + 1);
    small.resume(());
    let small_use = small.into_stack().high_water_mark();
    assert!(small_use > 0 && small_use < 32 * 1024, "{small_use}");

    // Scrubbed on return, then used deeply.
    let mut deep = Coroutine::with_stack(pool.get().unwrap(), |_: &Yielder<(), ()>, ()| {
        write_secret() + black_box([1u8; 200 * 1024])[7] as u64
    });
    assert_eq!(deep.resume(()), CoroutineResult::Return(1));
    let deep_use = deep.into_stack().high_water_mark();
    assert!((200 * 1024..512 * 1024).contains(&deep_use), "{deep_use}");
}

/// Many stacks from one slab: each a guard page below it, all in one
/// mapping when the kernel has lightweight guards.
#[cfg(unix)]
mod slab {
    use super::*;

    const COUNT: usize = 20_000;
    const CHILD: &str = "STACKSWITCH_SLAB_OVERFLOW_CHILD";

    type SlabCoroutine = Coroutine<bool, usize, u64, stackswitch::stack::PooledStack>;

    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn recurse_forever(depth: u64) -> u64 {
        let frame = black_box([depth; 32]);
        recurse_forever(depth + 1) + frame[31]
    }

    /// `COUNT` suspended coroutines on stacks of one slab, with each stack's
    /// limit (where its guard page is). Resumed with `true`, a coroutine
    /// recurses into its guard page; with `false` it returns its index.
    fn suspended_coroutines(pool: &StackPool) -> Vec<(SlabCoroutine, usize)> {
        (0..COUNT)
            .map(|i| {
                let stack = pool.get().unwrap();
                let limit = stack.limit().get();
                let mut c =
                    Coroutine::with_stack(stack, move |yielder: &Yielder<bool, usize>, _| {
                        if yielder.suspend(i) {
                            recurse_forever(0)
                        } else {
                            i as u64
                        }
                    });
                assert_eq!(c.resume(false), CoroutineResult::Yield(i));
                (c, limit)
            })
            .collect()
    }

    fn slab_pool() -> StackPool {
        StackPool::builder(16 * 1024)
            .stacks_per_slab(COUNT)
            .max_idle(0)
            .build()
            .unwrap()
    }

    fn mappings() -> usize {
        std::fs::read_to_string("/proc/self/maps")
            .map(|m| m.lines().count())
            .unwrap_or(0)
    }

    /// Whether the kernel can read the byte at `addr` (a `write` from it
    /// fails with EFAULT otherwise): asks without faulting.
    fn readable(addr: usize) -> bool {
        let mut fds = [0; 2];
        // SAFETY: plain syscalls on descriptors we create and close.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let written = libc::write(fds[1], addr as *const _, 1);
            libc::close(fds[0]);
            libc::close(fds[1]);
            written == 1
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "20,000 coroutines (threads under Miri) and guard pages"
    )]
    fn twenty_thousand_guarded_coroutines_from_one_slab() {
        let pool = slab_pool();
        let before = mappings();
        let mut coroutines = suspended_coroutines(&pool);
        let added = mappings().saturating_sub(before);
        if StackPool::lightweight_guards() {
            assert!(added < 50, "{COUNT} stacks took {added} new mappings");
        } else {
            eprintln!("no lightweight guard pages here: {added} new mappings");
        }
        // Every guard page is inaccessible, and the stack just above it is
        // accessible (under an emulator the kernel does not see the guest's
        // protections, so only the host can tell).
        if std::env::var_os("STACKSWITCH_TEST_RUNNER").is_none_or(|r| r.is_empty()) {
            let page = usable_guard();
            for (i, (_, limit)) in coroutines.iter().enumerate() {
                assert!(!readable(*limit), "guard page of stack {i} is readable");
                assert!(
                    !readable(limit + page - 1),
                    "guard page of stack {i} is short"
                );
                assert!(readable(limit + page), "stack {i} is not readable");
            }
        }
        for (i, (c, _)) in coroutines.iter_mut().enumerate() {
            assert_eq!(c.resume(false), CoroutineResult::Return(i as u64));
        }
    }

    /// In a child process: overflows the coroutine at the index given in
    /// the environment, among `COUNT` suspended ones.
    #[test]
    #[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
    fn overflowing_a_slab_stack_hits_its_guard_page() {
        if let Some(index) = std::env::var_os(CHILD) {
            let index: usize = index.to_str().unwrap().parse().unwrap();
            let pool = slab_pool();
            let mut coroutines = suspended_coroutines(&pool);
            coroutines[index].0.resume(true);
            unreachable!("the overflow did not fault");
        }
        for index in [0, COUNT / 2, COUNT - 1] {
            let status = common::this_test_binary()
                .args([
                    "--exact",
                    "slab::overflowing_a_slab_stack_hits_its_guard_page",
                    "--test-threads=1",
                ])
                .env(CHILD, index.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(libc::SIGSEGV),
                "stack {index}: {status:?}"
            );
        }
    }
}

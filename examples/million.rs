//! One million suspended coroutines in one process, each on its own stack
//! with a guard page below it, and what they cost in memory.
//!
//! The stacks come from a `StackPool` that carves them out of large slabs.
//! With Linux 6.13's lightweight guard pages a slab is one mapping however
//! many guard pages it holds, so this stays far below the default
//! `vm.max_map_count` (65530). On older kernels every guard page is a
//! mapping of its own, and the example stops with an error when the kernel
//! refuses more: pass a smaller count there (`cargo run --release --example
//! million -- 20000`).
//!
//! Prints the peak resident memory per coroutine: the floor is one touched
//! 4 KiB page each (the top of its stack, where it is suspended).

use stackswitch::stack::{PooledStack, StackPool};
use stackswitch::{Coroutine, CoroutineResult, Yielder};

/// How many coroutines, unless the first argument says otherwise.
const DEFAULT_COROUTINES: usize = 1_000_000;

/// A kernel status field of this process, in KiB (Linux `/proc`).
fn status_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mappings() -> Option<usize> {
    Some(
        std::fs::read_to_string("/proc/self/maps")
            .ok()?
            .lines()
            .count(),
    )
}

fn main() -> std::io::Result<()> {
    let count = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the argument is a number of coroutines"),
        None => DEFAULT_COROUTINES,
    };
    let pool = StackPool::builder(16 * 1024)
        .stacks_per_slab(4096)
        .max_idle(0)
        .build()?;
    let rss_before = status_kib("VmRSS:").unwrap_or(0);

    let mut coroutines: Vec<Coroutine<u64, (), u64, PooledStack>> = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let mut coroutine =
            Coroutine::with_stack(pool.get()?, move |yielder: &Yielder<u64, ()>, x| {
                let y = yielder.suspend(());
                x + y + i
            });
        coroutine.resume(1);
        coroutines.push(coroutine);
    }
    let maps = mappings();
    let rss_peak = status_kib("VmHWM:").unwrap_or(0);
    let suspended = coroutines
        .iter()
        .filter(|c| c.started() && !c.done())
        .count();

    let mut sum = 0;
    for coroutine in &mut coroutines {
        match coroutine.resume(1) {
            CoroutineResult::Return(value) => sum += value,
            CoroutineResult::Yield(()) => unreachable!(),
        }
    }
    let expected: u64 = (0..count as u64).map(|i| i + 2).sum();
    assert_eq!(sum, expected, "every coroutine finished with its own value");
    drop(coroutines);

    println!("suspended coroutines: {suspended}");
    println!(
        "guard pages: {}",
        if StackPool::lightweight_guards() {
            "madvise(MADV_GUARD_INSTALL)"
        } else {
            "mprotect"
        }
    );
    if let Some(maps) = maps {
        println!("mappings while suspended: {maps}");
    }
    let per_coroutine = (rss_peak.saturating_sub(rss_before)) * 1024 / count;
    println!("peak RSS per coroutine: {per_coroutine} bytes");
    println!("all {count} coroutines finished");
    Ok(())
}

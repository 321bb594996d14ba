//! Creating, running and dropping a coroutine on a stack from a
//! `StackPool`, against doing so on a fresh `DefaultStack` (mmap, mprotect
//! and munmap each time).

use criterion::{criterion_group, criterion_main, Criterion};
use stackswitch::stack::{DefaultStack, StackPool};
use stackswitch::{Coroutine, Yielder};
use std::hint::black_box;

const STACK_SIZE: usize = 1024 * 1024;

fn body(_: &Yielder<usize, ()>, input: usize) -> usize {
    black_box(input) + 1
}

fn pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("create+run+drop");
    group.bench_function("fresh DefaultStack", |b| {
        b.iter(|| {
            let stack = DefaultStack::new(STACK_SIZE).unwrap();
            black_box(Coroutine::with_stack(stack, body).resume(black_box(0)))
        })
    });
    let pool = StackPool::new(STACK_SIZE).unwrap();
    group.bench_function("StackPool", |b| {
        b.iter(|| black_box(Coroutine::with_stack(pool.get().unwrap(), body).resume(black_box(0))))
    });
    let scrubbing = StackPool::builder(STACK_SIZE).scrub(true).build().unwrap();
    group.bench_function("StackPool, scrubbed", |b| {
        b.iter(|| {
            black_box(Coroutine::with_stack(scrubbing.get().unwrap(), body).resume(black_box(0)))
        })
    });
    group.finish();

    c.bench_function("StackPool get+drop", |b| {
        b.iter(|| drop(black_box(pool.get().unwrap())))
    });
}

criterion_group!(benches, pool);
criterion_main!(benches);

//! The two benchmarks the specification reports.
//!
//! - `coroutine switch`: resume a suspended coroutine and have it suspend
//!   again (one round trip).
//! - `coroutine call`: create a coroutine on a reused stack, run it to
//!   completion and drop it.

use criterion::{criterion_group, criterion_main, Criterion};
use stackswitch::stack::DefaultStack;
use stackswitch::{Coroutine, ScopedCoroutine};
use std::hint::black_box;

fn coroutine_switch(c: &mut Criterion) {
    let mut coroutine = Coroutine::<usize, usize, ()>::new(|yielder, mut input| loop {
        input = yielder.suspend(input);
    });
    c.bench_function("coroutine switch", |b| {
        b.iter(|| black_box(coroutine.resume(black_box(0))))
    });
}

fn coroutine_call(c: &mut Criterion) {
    let mut stack = DefaultStack::default();
    c.bench_function("coroutine call", |b| {
        b.iter(|| {
            ScopedCoroutine::<usize, (), usize, _>::with_stack(&mut stack, |_, input| input)
                .scope(|mut coroutine| black_box(coroutine.resume(black_box(0))))
        })
    });
}

criterion_group!(benches, coroutine_switch, coroutine_call);
criterion_main!(benches);

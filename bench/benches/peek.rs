use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
fn sw(c: &mut Criterion) {
    let mut a = stackswitch::Coroutine::<usize, usize, ()>::new(|y, mut i| loop {
        i = y.suspend(i);
    });
    let mut b = corosensei::Coroutine::<usize, usize, ()>::new(|y, mut i| loop {
        i = y.suspend(i);
    });
    for _ in 0..3 {
        c.bench_function("stackswitch switch", |x| {
            x.iter(|| black_box(a.resume(black_box(0))))
        });
        c.bench_function("corosensei switch", |x| {
            x.iter(|| black_box(b.resume(black_box(0))))
        });
    }
}
criterion_group!(g, sw);
criterion_main!(g);

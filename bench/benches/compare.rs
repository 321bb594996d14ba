//! stackswitch side by side with its peers, in one run: for each operation
//! every library in turn, then the next operation (so that all libraries of
//! one operation see the same machine state). The operations and each
//! library's code are in `src/lib.rs`; `bench/run.sh` turns the results into
//! `bench/results/compare.md`.
//!
//! Criterion ids are `compare/<operation>/<library>`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use stackswitch_bench::{with_operation, Operation, Visit, LIBRARIES, OPERATIONS};

/// Benchmarks the operation it is given as `library` in `group`.
struct Measure<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, criterion::measurement::WallTime>,
    library: &'static str,
}

impl Visit for Measure<'_, '_> {
    type Output = ();
    fn visit<O: Operation>(self, mut operation: O) {
        let mut i = 0usize;
        self.group.bench_function(self.library, |b| {
            b.iter(|| {
                operation.run(black_box(i));
                i = i.wrapping_add(1);
            })
        });
    }
}

fn compare(c: &mut Criterion) {
    for operation in OPERATIONS {
        let mut group = c.benchmark_group(format!("compare/{operation}"));
        for library in LIBRARIES {
            let measure = Measure {
                group: &mut group,
                library,
            };
            if with_operation(library, operation, measure).is_none() {
                println!("compare/{operation}/{library}: no equivalent, skipped");
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Modest times: the whole comparison (25 benchmarks) takes ~2 minutes.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = compare
}
criterion_main!(benches);

//! Benchmark package: see `benches/`.

//! Fuzzes random programs of nested coroutines against the reference model
//! of stackswitch's stress test (`tests/stress/`): the input bytes are the
//! generator's choices.
//!
//! ```sh
//! cargo +nightly fuzz run programs -- -max_total_time=60
//! ```
#![no_main]

#[path = "../../tests/stress/mod.rs"]
mod stress;

libfuzzer_sys::fuzz_target!(|data: &[u8]| stress::check_bytes(data));

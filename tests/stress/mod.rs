//! Random programs of nested coroutines, run for real and checked against a
//! reference model. Shared by the `random_programs` test and the fuzz
//! target (`fuzz/fuzz_targets/programs.rs`).
//!
//! A program is a tree of blocks whose steps spawn, resume, drop, unwind and
//! reset child coroutines (on stacks of random sizes, down to
//! `MIN_STACK_SIZE`), suspend, run blocks on the parent's stack, panic and
//! catch panics. Running it records a trace: every value a resume returned,
//! every destructor that ran, in order, and how the program ended. The model
//! computes the trace the program must produce.

#![allow(dead_code)]

pub mod interpreter;
pub mod model;
pub mod program;

use std::fmt::Write;

use stackswitch::CoroutineResult;

use program::{Config, Program};

/// One observable thing a program did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A guard's destructor ran.
    Dropped(u32),
    /// A resume returned; `started`: whether the child had run before.
    Resumed {
        started: bool,
        result: CoroutineResult<u64, u64>,
    },
    /// A resume was skipped because the child was done.
    AlreadyDone,
    /// A `Catch` stopped `StressPanic(id)`.
    Caught(u32),
    /// A `Catch` saw a forced unwind (and let it continue).
    CaughtForcedUnwind,
    End(Outcome),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Returned(u64),
    Panicked(u32),
    /// Any other panic: always a failure.
    Other(String),
}

/// The payload of the programs' own panics.
#[derive(Debug)]
pub struct StressPanic(pub u32);

/// Starting value of a script coroutine's accumulator, mixed with its first
/// input.
pub const SCRIPT_SEED: u64 = 0x5eed;

/// Folds a value into an accumulator, so that a value lost or swapped
/// anywhere changes every later one.
pub fn mix(acc: u64, value: u64) -> u64 {
    (acc ^ value)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

/// What this build can run: unwinding needs the `unwind` feature.
pub fn config() -> Config {
    Config {
        unwind: cfg!(feature = "unwind"),
        max_steps: 200,
    }
}

/// Runs `program` and compares its trace with the model's; the error
/// describes the first difference.
pub fn check(program: &Program, config: Config) -> Result<(), String> {
    let expected = model::expected_trace(program, config.unwind);
    let actual = interpreter::run(program, config.unwind);
    if expected == actual {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(&actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let mut report = String::new();
    writeln!(report, "traces differ at event {first}:").unwrap();
    for (i, event) in expected
        .iter()
        .enumerate()
        .skip(first.saturating_sub(3))
        .take(6)
    {
        writeln!(report, "  expected[{i}] {event:?}").unwrap();
    }
    for (i, event) in actual
        .iter()
        .enumerate()
        .skip(first.saturating_sub(3))
        .take(6)
    {
        writeln!(report, "  actual[{i}]   {event:?}").unwrap();
    }
    Err(report)
}

/// Shrinks a failing program: removes steps while it still fails.
pub fn shrink(mut program: Program, config: Config) -> (Program, String) {
    let mut report = check(&program, config).expect_err("shrinking a passing program");
    'smaller: loop {
        for candidate in program::smaller(&program) {
            if let Err(candidate_report) = check(&candidate, config) {
                program = candidate;
                report = candidate_report;
                continue 'smaller;
            }
        }
        return (program, report);
    }
}

/// The fuzz target's body: any bytes make a program, which must pass.
pub fn check_bytes(data: &[u8]) {
    let program = program::generate(&mut program::Bytes(data), config());
    if let Err(report) = check(&program, config()) {
        panic!("{report}\nprogram: {program:#?}");
    }
}

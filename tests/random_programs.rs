//! Thousands of random programs of nested coroutines (resume, suspend,
//! `on_parent_stack`, panics, drops, `force_unwind`, `force_reset`, forced
//! unwinds swallowed by code that suspends again, on
//! stacks of random sizes), each checked step by step against a reference
//! model; see `stress/mod.rs`.
//!
//! - `STACKSWITCH_STRESS_CASES`: how many programs (default 1000, which
//!   suits emulated targets; CI runs many more natively; 48 under Miri).
//! - `STACKSWITCH_STRESS_SEED`: the first program's seed (default 0); case
//!   `i` uses seed + i. A failure prints its seed and the shrunk program.
//! - `STACKSWITCH_STRESS_VERBOSE=1`: print each seed before running it, to
//!   find the one that crashed the process.
#![cfg(feature = "default-stack")]

mod stress;

use stress::program::{generate, Rng};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a started coroutine on purpose (force_reset): Miri reports its thread, blocked for ever; ci/miri.sh runs it with -Zmiri-ignore-leaks"
)]
fn random_programs_match_the_model() {
    // Under Miri (ci/miri.sh), where a program takes seconds: fewer.
    let default_cases = if cfg!(miri) { 48 } else { 1000 };
    let cases = env_u64("STACKSWITCH_STRESS_CASES", default_cases);
    let first_seed = env_u64("STACKSWITCH_STRESS_SEED", 0);
    let verbose = std::env::var_os("STACKSWITCH_STRESS_VERBOSE").is_some();
    let config = stress::config();
    for seed in first_seed..first_seed + cases {
        if verbose {
            eprintln!("seed {seed}");
        }
        let program = generate(&mut Rng::new(seed), config);
        if stress::check(&program, config).is_err() {
            let (shrunk, report) = stress::shrink(program, config);
            panic!(
                "program of seed {seed} (rerun: STACKSWITCH_STRESS_SEED={seed} \
                 STACKSWITCH_STRESS_CASES=1) does not match the model\n{report}\n\
                 shrunk program: {shrunk:#?}"
            );
        }
    }
    eprintln!("{cases} programs from seed {first_seed} match the model");
}

/// Programs that once found bugs or cover corner cases, kept as a corpus.
#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a started coroutine on purpose (force_reset): Miri reports its thread, blocked for ever; ci/miri.sh runs it with -Zmiri-ignore-leaks"
)]
fn fixed_programs_match_the_model() {
    use stress::program::{Body, Child, Leaf, Program, Step};
    let config = stress::config();
    let min = stackswitch::stack::MIN_STACK_SIZE;
    let leaf = |guard, suspends, panic| {
        Step::Spawn(Box::new(Child {
            stack_size: min,
            body: Body::Leaf(Leaf {
                guard,
                suspends,
                panic,
            }),
        }))
    };
    let script = |steps| {
        Step::Spawn(Box::new(Child {
            stack_size: stress::program::script_stack_min(),
            body: Body::Script(steps),
        }))
    };
    let resume = |child| Step::Resume { child, input: 7 };
    let programs = [
        // A suspended child holding a suspended grandchild is dropped.
        Program {
            main: vec![
                script(vec![
                    Step::Guard(1),
                    leaf(2, 3, None),
                    resume(0),
                    Step::Suspend(5),
                ]),
                resume(0),
                Step::Drop { child: 0 },
                Step::Guard(3),
            ],
        },
        // A leaf on the smallest stack runs to the end, and is resumed
        // once more (skipped).
        Program {
            main: vec![leaf(1, 2, None), resume(0), resume(0), resume(0), resume(0)],
        },
        // Reset with a suspended grandchild: no destructor runs.
        Program {
            main: vec![
                script(vec![leaf(2, 1, None), resume(0), Step::Suspend(1)]),
                resume(0),
                Step::ForceReset { child: 0 },
                resume(0),
            ],
        },
    ];
    // A panic caught inside a child, and a forced unwind passing through a
    // `Catch` (which must let it continue) when the child is dropped.
    let unwinding = [
        Program {
            main: vec![
                script(vec![
                    Step::Catch(vec![Step::Guard(1), Step::Panic(2)]),
                    Step::Catch(vec![Step::Guard(3), Step::Suspend(4)]),
                ]),
                resume(0),
                Step::Drop { child: 0 },
            ],
        },
        // A child that swallows the forced unwind and suspends again, with
        // a suspended grandchild and guards below and above: unwound to the
        // end, and its stack (lent by the test's pool) reused by the next.
        Program {
            main: vec![
                script(vec![
                    Step::Guard(1),
                    leaf(2, 3, None),
                    resume(0),
                    Step::Catch(vec![Step::Guard(3), Step::StubbornSuspend(4, 7)]),
                ]),
                resume(0),
                Step::ForceUnwind { child: 0 },
                script(vec![Step::Guard(5), Step::Suspend(6)]),
                resume(0),
                resume(1),
            ],
        },
    ];
    let unwinding = if config.unwind { &unwinding[..] } else { &[] };
    for program in programs.iter().chain(unwinding) {
        if let Err(report) = stress::check(program, config) {
            panic!("{report}\nprogram: {program:#?}");
        }
    }
}

/// The fuzz target's body (`fuzz/fuzz_targets/programs.rs`) over inputs of
/// every length, so it runs wherever the tests run, without cargo-fuzz.
#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a started coroutine on purpose (force_reset): Miri reports its thread, blocked for ever; ci/miri.sh runs it with -Zmiri-ignore-leaks"
)]
fn fuzz_body_accepts_any_bytes() {
    let mut rng = Rng::new(0xf022);
    // Under Miri (ci/miri.sh), where a program takes seconds: every 32nd.
    let step = if cfg!(miri) { 32 } else { 1 };
    for len in (0..512).step_by(step) {
        let data: Vec<u8> = (0..len)
            .map(|_| stress::program::Source::below(&mut rng, 256) as u8)
            .collect();
        stress::check_bytes(&data);
    }
}

//! Runs one operation N times, for counting instructions per operation with
//! callgrind: `icount <library> <operation> <n> [inline|outlined]` (names as
//! in `stackswitch_bench::LIBRARIES` and `OPERATIONS`, or the library
//! `baseline`). Two runs with different N cancel start-up costs:
//! (I(n2) - I(n1)) / (n2 - n1).
//!
//! `inline` (the default) runs the operation in a loop into which it is
//! inlined, as the criterion bench does; `outlined` calls it through a
//! function of its own each time (`run_outlined`).
//!
//! Exits with status 2 (printing "n/a") if the library has no equivalent of
//! the operation.

use std::hint::black_box;
use std::process::ExitCode;

use stackswitch_bench::{run_outlined, with_operation, Operation, Visit};

/// Runs the operation `n` times, inlined into the loop or not.
struct Repeat {
    n: usize,
    outlined: bool,
}

impl Visit for Repeat {
    type Output = ();
    fn visit<O: Operation>(self, mut operation: O) {
        if self.outlined {
            for i in 0..self.n {
                run_outlined(&mut operation, black_box(i));
            }
        } else {
            for i in 0..self.n {
                operation.run(black_box(i));
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (library, operation, n, mode) = match &args[1..] {
        [l, o, n] => (l, o, n, "inline"),
        [l, o, n, m] => (l, o, n, m.as_str()),
        _ => {
            eprintln!("usage: icount <library> <operation> <n> [inline|outlined]");
            return ExitCode::FAILURE;
        }
    };
    let n: usize = n.parse().expect("n must be a number");
    let outlined = match mode {
        "inline" => false,
        "outlined" => true,
        other => panic!("unknown mode {other}"),
    };
    match with_operation(library, operation, Repeat { n, outlined }) {
        Some(()) => ExitCode::SUCCESS,
        None => {
            println!("n/a");
            ExitCode::from(2)
        }
    }
}

//! Runs one operation N times, for counting instructions per operation with
//! callgrind: `icount <library> <operation> <n>`. Two runs with different N
//! cancel start-up costs: (I(n2) - I(n1)) / (n2 - n1).
//!
//! operations: `switch` (resume + suspend, a word each way),
//! `switch-unit` (the same with `()`), `call` (create on a reused
//! stack, run to completion, drop).

use std::hint::black_box;

macro_rules! ops {
    ($lib:ident) => {{
        fn switch(n: usize) {
            let mut c = $lib::Coroutine::<usize, usize, ()>::new(|y, mut x| loop {
                x = y.suspend(x);
            });
            for i in 0..n {
                black_box(c.resume(black_box(i)));
            }
        }
        fn switch_unit(n: usize) {
            let mut c = $lib::Coroutine::<(), (), ()>::new(|y, ()| loop {
                y.suspend(());
            });
            for _ in 0..n {
                black_box(c.resume(()));
            }
        }
        fn call(n: usize) {
            let mut stack = $lib::stack::DefaultStack::new(64 * 1024).unwrap();
            for i in 0..n {
                let r =
                    $lib::ScopedCoroutine::<usize, (), usize, _>::with_stack(&mut stack, |_, x| x)
                        .scope(|mut c| c.resume(black_box(i)));
                black_box(r);
            }
        }
        [switch as fn(usize), switch_unit, call]
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[3].parse().unwrap();
    let [switch, switch_unit, call] = match args[1].as_str() {
        "stackswitch" => ops!(stackswitch),
        "corosensei" => ops!(corosensei),
        other => panic!("unknown library {other}"),
    };
    match args[2].as_str() {
        "switch" => switch(n),
        "switch-unit" => switch_unit(n),
        "call" => call(n),
        other => panic!("unknown operation {other}"),
    }
}

//! `Generator`: a coroutine as an iterator.
#![cfg(feature = "default-stack")]

use stackswitch::{Coroutine, Generator, Yielder};

#[test]
fn yields_then_keeps_the_return_value() {
    let mut generator = Generator::new(|y| {
        for i in 0..4u32 {
            y.suspend(i * i);
        }
        "done"
    });
    assert_eq!(generator.by_ref().collect::<Vec<_>>(), [0, 1, 4, 9]);
    assert_eq!(generator.next(), None, "fused");
    assert_eq!(generator.into_return_value(), Some("done"));
}

#[test]
fn recursive_walk_yields_from_any_depth() {
    fn permutations(prefix: &mut Vec<u8>, rest: &[u8], y: &Yielder<(), Vec<u8>>) {
        if rest.is_empty() {
            y.suspend(prefix.clone());
        }
        for i in 0..rest.len() {
            prefix.push(rest[i]);
            let remaining: Vec<u8> = rest
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &b)| b)
                .collect();
            permutations(prefix, &remaining, y);
            prefix.pop();
        }
    }
    let all: Vec<Vec<u8>> = Generator::new(|y| permutations(&mut Vec::new(), b"abc", y)).collect();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], b"abc");
    assert_eq!(all[5], b"cba");
}

// Needs `unwind`: drops a suspended generator.
#[cfg(feature = "unwind")]
#[test]
fn from_a_coroutine_and_lazy() {
    let coroutine = Coroutine::<(), u8, (), _>::new(|y, ()| {
        y.suspend(1);
        y.suspend(2);
    });
    let mut generator: Generator<u8> = coroutine.into();
    assert_eq!(generator.next(), Some(1));
    // Dropping it half-way unwinds the rest.
    drop(generator);
}

#[cfg(feature = "unwind")]
#[test]
fn iterator_adapters_compose() {
    let fib = Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    let evens: Vec<u64> = fib.filter(|n| n % 2 == 0).take(5).collect();
    assert_eq!(evens, [0, 2, 8, 34, 144]);
}

//! `Generator`: a coroutine as an iterator.
#![cfg(feature = "default-stack")]

use stackswitch::{Generator, Yielder};

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
    let coroutine = stackswitch::Coroutine::<(), u8, (), _>::new(|y, ()| {
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

/// A value whose alignment is a page: checked at every hand-over.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(align(4096))]
struct PageAligned(u64);

impl PageAligned {
    fn check(self) -> u64 {
        assert_eq!(std::ptr::from_ref(&self) as usize % 4096, 0);
        self.0
    }
}

#[test]
fn values_of_any_size_and_alignment() {
    // Zero-sized yields and return.
    let mut units = Generator::new(|y| {
        for _ in 0..3 {
            y.suspend(());
        }
    });
    assert_eq!(units.by_ref().count(), 3);
    assert_eq!(units.return_value(), Some(&()));

    // Page-aligned yields and return.
    let mut aligned = Generator::new(|y| {
        for i in 0..3 {
            y.suspend(PageAligned(i));
        }
        PageAligned(99)
    });
    assert_eq!(aligned.by_ref().map(PageAligned::check).sum::<u64>(), 3);
    assert_eq!(
        aligned.into_return_value().map(PageAligned::check),
        Some(99)
    );

    // 256 KiB values, boxed and not, on a stack with room for them.
    let stack = stackswitch::stack::DefaultStack::new(4 * 1024 * 1024).unwrap();
    let mut big = Generator::with_stack(stack, |y| {
        for i in 0..3u8 {
            y.suspend([i; 256 * 1024]);
        }
        Box::new([7u8; 256 * 1024])
    });
    for i in 0..3u8 {
        let value = big.next().unwrap();
        assert!(value.iter().all(|&b| b == i));
    }
    assert_eq!(big.next(), None);
    assert!(big.return_value().unwrap().iter().all(|&b| b == 7));
}

#[cfg(feature = "unwind")]
#[test]
fn a_panic_exhausts_the_generator() {
    let mut generator = Generator::new(|y| {
        y.suspend(1);
        panic!("in the generator");
    });
    assert_eq!(generator.next(), Some(1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| generator.next()));
    assert!(caught.is_err());
    assert_eq!(generator.next(), None, "exhausted after the panic");
    assert_eq!(generator.return_value(), None);
}

#[cfg(feature = "unwind")]
#[test]
fn a_yielded_value_that_panics_when_dropped() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropped");
        }
    }
    let mut generator = Generator::new(|y| {
        y.suspend(PanicsOnDrop);
        y.suspend(PanicsOnDrop);
    });
    let first = generator.next().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(first)));
    assert!(caught.is_err());
    // The generator is untouched by the panic on the parent's side.
    let second = generator.next().unwrap();
    std::mem::forget(second);
    assert!(generator.next().is_none());
}

#[cfg(feature = "unwind")]
#[test]
fn a_generator_that_reaches_itself_through_an_rc_cycle() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let shared: Rc<RefCell<Option<Generator<bool>>>> = Rc::new(RefCell::new(None));
    let inside = shared.clone();
    // The generator owns an Rc to the cell that owns it: a cycle.
    *shared.borrow_mut() = Some(Generator::new(move |y| loop {
        // Resuming itself while it runs: the RefCell refuses.
        y.suspend(inside.try_borrow_mut().is_err());
    }));
    for _ in 0..3 {
        let next = shared.borrow_mut().as_mut().unwrap().next();
        assert_eq!(next, Some(true));
    }
    // Breaking the cycle drops the suspended generator, which unwinds its
    // stack and drops its Rc (while the cell is mutably borrowed: `take`
    // has returned by then, so the drop happens outside the borrow).
    let generator = shared.borrow_mut().take();
    drop(generator);
    assert_eq!(Rc::strong_count(&shared), 1);
}

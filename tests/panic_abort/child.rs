//! Built by `tests/panic_abort.rs` with `-C panic=abort` (and the library
//! too): does what its argument says to a suspended coroutine.
use stackswitch::{Coroutine, Generator};

fn main() {
    let what = std::env::args().nth(1).expect("what to do");
    // An unstarted coroutine needs no unwinding: its closure is dropped.
    let unstarted = Coroutine::<(), (), ()>::new(|_, ()| {});
    drop(unstarted);
    let mut coroutine = Coroutine::<(), (), ()>::new(|yielder, ()| yielder.suspend(()));
    coroutine.resume(());
    let mut generator = Generator::new(|yielder: &stackswitch::Yielder<(), u8>| {
        yielder.suspend(1);
    });
    assert_eq!(generator.next(), Some(1));
    match what.as_str() {
        "drop" => drop(coroutine),
        "drop-generator" => drop(generator),
        "force_unwind" => coroutine.force_unwind(),
        _ => panic!("unknown: {what}"),
    }
    println!("survived");
}

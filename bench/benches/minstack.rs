fn main() {
    use corosensei::{stack::DefaultStack, Coroutine};
    let stack = DefaultStack::new(4096).unwrap();
    let mut c = Coroutine::<(), (), ()>::with_stack(stack, |y, ()| {
        y.suspend(());
    });
    c.resume(());
    drop(c);
    println!("corosensei survived");
}

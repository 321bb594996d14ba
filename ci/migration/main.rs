//! A program written for corosensei 0.3, against its documented API only.
//! ci/migration.sh builds it twice, against corosensei itself and against
//! stackswitch under the name `corosensei`, and compares what it prints.

use std::cell::Cell;
use std::rc::Rc;

use corosensei::stack::{DefaultStack, Stack, StackPointer, MIN_STACK_SIZE, STACK_ALIGNMENT};
use corosensei::trap::{CoroutineTrapHandler, TrapHandlerRegs};
use corosensei::{on_stack, Coroutine, CoroutineResult, ScopedCoroutine, Yielder};

fn basics() {
    let mut coroutine = Coroutine::new(|yielder: &Yielder<i32, i32>, input: i32| {
        let mut total = input;
        for i in 0..3 {
            total += yielder.suspend(i);
        }
        total
    });
    assert!(!coroutine.started());
    let mut input = 100;
    loop {
        match coroutine.resume(input) {
            CoroutineResult::Yield(i) => println!("yielded {i}"),
            CoroutineResult::Return(total) => {
                println!("returned {total}");
                break;
            }
        }
        input += 1;
    }
    assert!(coroutine.started() && coroutine.done());

    // as_yield / as_return.
    let mut c = Coroutine::new(|y: &Yielder<(), &'static str>, ()| {
        y.suspend("one");
        "two"
    });
    println!("as_yield {:?}", c.resume(()).as_yield());
    println!("as_return {:?}", c.resume(()).as_return());
}

fn stacks() {
    assert!(STACK_ALIGNMENT.is_power_of_two());
    let stack = DefaultStack::new(128 * 1024).unwrap();
    let base: StackPointer = stack.base();
    let limit: StackPointer = stack.limit();
    assert!(base.get() - limit.get() >= 128 * 1024);
    assert_eq!(base.get() % STACK_ALIGNMENT, 0);
    assert!(DefaultStack::new(MIN_STACK_SIZE).is_ok());
    // A size below the minimum is raised to it.
    let tiny = DefaultStack::new(0).unwrap();
    assert!(tiny.base().get() - tiny.limit().get() >= MIN_STACK_SIZE);
    let mut c = Coroutine::with_stack(tiny, |_: &Yielder<(), ()>, ()| 7);
    println!("tiny stack {:?}", c.resume(()).as_return());

    let mut c = Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, x| y.suspend(x * 2) + 1);
    println!("with_stack {:?}", c.resume(21));
    println!("with_stack {:?}", c.resume(41));
    let mut stack = c.into_stack();

    // on_stack, on a borrowed stack.
    let depth = on_stack(&mut stack, || {
        fn recurse(n: u64) -> u64 {
            if n == 0 {
                0
            } else {
                1 + recurse(n - 1)
            }
        }
        recurse(1000)
    });
    println!("on_stack recursion depth {depth}");

    // on_parent_stack from a small coroutine.
    let small = DefaultStack::new(16 * 1024).unwrap();
    let mut c = Coroutine::with_stack(small, |y: &Yielder<(), ()>, ()| {
        y.on_parent_stack(|| {
            let big = [3u8; 64 * 1024];
            big.iter().map(|&b| u64::from(b)).sum::<u64>()
        })
    });
    println!("on_parent_stack {:?}", c.resume(()).as_return());
}

struct Guard(Rc<Cell<u32>>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn cleanup() {
    let drops = Rc::new(Cell::new(0));

    let d = drops.clone();
    let mut c = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = Guard(d);
        y.suspend(());
    });
    c.resume(());
    c.force_unwind();
    assert!(c.done());
    println!("force_unwind dropped {}", drops.get());

    let d = drops.clone();
    let mut c = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = Guard(d);
        y.suspend(());
    });
    c.resume(());
    drop(c);
    println!("drop unwound, drops {}", drops.get());

    let d = drops.clone();
    let mut c = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = Guard(d);
        y.suspend(());
    });
    c.resume(());
    unsafe { c.force_reset() };
    assert!(c.done());
    let _stack: DefaultStack = c.into_stack();
    println!("force_reset leaked, drops {}", drops.get());

    // A panic inside continues out of resume.
    let mut c = Coroutine::new(|_: &Yielder<(), ()>, ()| panic!("inside"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.resume(())));
    println!("panic propagated: {}", result.is_err());
}

fn scoped() {
    let mut sum = 0;
    let coroutine = ScopedCoroutine::new(|y: &Yielder<i32, ()>, mut x: i32| loop {
        sum += x;
        x = y.suspend(());
        if x == 0 {
            break;
        }
    });
    coroutine.scope(|mut c| {
        for x in [1, 2, 3, 0] {
            let result = c.as_mut().resume(x);
            let _ = (c.started(), c.done(), result);
        }
        let _handler = c.trap_handler();
    });
    println!("scoped sum {sum}");

    // (corosensei's `ScopedCoroutine::into_stack` panics on a coroutine that
    // never ran, and a scoped one cannot run outside `scope`, which consumes
    // it; so it is left out.)
    let on_own_stack =
        ScopedCoroutine::with_stack(DefaultStack::default(), |_: &Yielder<(), ()>, ()| 5);
    println!(
        "scoped with_stack {:?}",
        on_own_stack.scope(|mut c| c.resume(()))
    );
    let mut force = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(()));
    force = {
        let f = force;
        f.scope(|mut c| {
            c.resume(());
            c.force_unwind();
            assert!(c.done());
        });
        ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| y.suspend(()))
    };
    force.scope(|mut c| {
        c.resume(());
        unsafe { c.force_reset() };
    });
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod traps {
    use super::*;

    thread_local! {
        static HANDLER: Cell<Option<CoroutineTrapHandler<u64>>> = const { Cell::new(None) };
    }

    unsafe extern "C" fn on_segv(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
        let uc = uc as *mut libc::ucontext_t;
        let gregs = unsafe { &mut (*uc).uc_mcontext.gregs };
        let sp = gregs[libc::REG_RSP as usize] as usize;
        let handler = HANDLER.with(|h| h.get()).unwrap();
        assert!(handler.stack_ptr_in_bounds(sp));
        let regs: TrapHandlerRegs = unsafe { handler.setup_trap_handler(|| 0xdead) };
        let TrapHandlerRegs {
            rip,
            rsp,
            rbp,
            rdi,
            rsi,
        } = regs;
        gregs[libc::REG_RIP as usize] = rip as i64;
        gregs[libc::REG_RSP as usize] = rsp as i64;
        gregs[libc::REG_RBP as usize] = rbp as i64;
        gregs[libc::REG_RDI as usize] = rdi as i64;
        gregs[libc::REG_RSI as usize] = rsi as i64;
    }

    pub fn run() {
        unsafe {
            let alt = Box::leak(vec![0u8; 128 * 1024].into_boxed_slice());
            let ss = libc::stack_t {
                ss_sp: alt.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: alt.len(),
            };
            libc::sigaltstack(&ss, std::ptr::null_mut());
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_segv as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
        }
        #[inline(never)]
        fn overflow(n: u64) -> u64 {
            let frame = [n; 64];
            std::hint::black_box(&frame);
            overflow(n + 1) + frame[1]
        }
        let stack = DefaultStack::new(64 * 1024).unwrap();
        let mut c = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| overflow(0));
        HANDLER.with(|h| h.set(Some(c.trap_handler())));
        let result = c.resume(());
        HANDLER.with(|h| h.set(None));
        println!(
            "stack overflow trapped: {:?}",
            result.as_return().map(|v| format!("{v:#x}"))
        );
    }
}

/// What a `#[should_panic(expected = ...)]` test would match: the messages
/// of misuse panics, printed so that both builds must agree on them.
fn panic_messages() {
    fn message(f: impl FnOnce()) -> String {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        match payload.downcast::<&str>() {
            Ok(s) => s.to_string(),
            Err(payload) => *payload.downcast::<String>().unwrap(),
        }
    }
    let mut done = Coroutine::<(), (), ()>::new(|_, ()| {});
    done.resume(());
    println!("panic: {}", message(|| drop(done.resume(()))));
    let mut suspended = Coroutine::<(), (), ()>::new(|y, ()| y.suspend(()));
    suspended.resume(());
    println!("panic: {}", message(|| drop(suspended.into_stack())));
}

fn main() {
    basics();
    stacks();
    cleanup();
    panic_messages();
    scoped();
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    traps::run();
    println!("done");
}

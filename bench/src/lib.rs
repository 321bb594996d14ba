//! The operations measured side by side, for every library, shared by the
//! criterion bench (`benches/compare.rs`) and the instruction counter
//! (`src/bin/icount.rs`) so that both measure exactly the same code.
//!
//! Each library is one module with one type per operation; a type is built
//! once (outside the measurement) and [`Operation::run`] performs the
//! operation once. Where a library has no equivalent of an operation,
//! [`with_operation`] says so with `None`.
//!
//! Every peer is used through its idiomatic API; `context` (a port of
//! Boost.Context's `fcontext`) has nothing but `unsafe` functions, so its
//! module is the only one with `unsafe` code.

use std::hint::black_box;

/// The libraries, in the order in which they are measured and reported.
pub const LIBRARIES: [&str; 5] = [
    "stackswitch",
    "corosensei",
    "context",
    "generator",
    "wasmtime-fiber",
];

/// The operations, in the order in which they are measured and reported.
pub const OPERATIONS: [&str; 5] = ["switch", "switch-unit", "call", "call-owned", "create"];

/// What one operation does, for the report.
pub fn describe(operation: &str) -> &'static str {
    match operation {
        "switch" => "resume + suspend round trip, a word in and a word out",
        "switch-unit" => "resume + suspend round trip with `()` both ways",
        "call" => "create on a reused stack, run to completion (a word in and out), drop",
        "call-owned" => "as `call`, with the stack moved into the coroutine and taken back",
        "create" => "as `call`, with a new default stack allocated (and freed) every time",
        _ => "?",
    }
}

/// One operation of one library, ready to run.
pub trait Operation {
    /// Performs the operation once; `input` is the word passed in (ignored
    /// by the `()` operations).
    fn run(&mut self, input: usize);
}

/// Runs `operation` once from a function of its own, as a user's code that
/// does one switch per call would: unlike in a loop that inlines `run`, the
/// registers the switch clobbers are saved and restored every time.
#[inline(never)]
pub fn run_outlined<O: Operation>(operation: &mut O, input: usize) {
    operation.run(input)
}

/// An operation that does nothing: what a measuring loop costs by itself,
/// to subtract from instruction counts.
pub struct Baseline;

impl Operation for Baseline {
    #[inline]
    fn run(&mut self, input: usize) {
        black_box(input);
    }
}

/// A consumer of an [`Operation`] of any type (generic, so that the
/// measuring loop calls `run` directly).
pub trait Visit {
    /// What the visit returns.
    type Output;
    /// Called with the operation.
    fn visit<O: Operation>(self, operation: O) -> Self::Output;
}

/// Builds `operation` of `library` and hands it to `visit`; `None` if the
/// library has no equivalent of that operation. The library `baseline`
/// gives [`Baseline`] for every operation.
///
/// # Panics
/// On an unknown library or operation name.
pub fn with_operation<V: Visit>(library: &str, operation: &str, visit: V) -> Option<V::Output> {
    macro_rules! dispatch {
        ($lib:ident) => {
            match operation {
                "switch" => $lib::switch().map(|o| visit.visit(o)),
                "switch-unit" => $lib::switch_unit().map(|o| visit.visit(o)),
                "call" => $lib::call().map(|o| visit.visit(o)),
                "call-owned" => $lib::call_owned().map(|o| visit.visit(o)),
                "create" => $lib::create().map(|o| visit.visit(o)),
                other => panic!("unknown operation {other}"),
            }
        };
    }
    match library {
        "stackswitch" => dispatch!(stackswitch_ops),
        "corosensei" => dispatch!(corosensei_ops),
        "context" => dispatch!(context_ops),
        "generator" => dispatch!(generator_ops),
        "wasmtime-fiber" => dispatch!(wasmtime_fiber_ops),
        "baseline" => Some(visit.visit(Baseline)),
        other => panic!("unknown library {other}"),
    }
}

/// stackswitch and corosensei have the same API: one body for both.
macro_rules! corosensei_api_ops {
    ($module:ident, $lib:ident) => {
        mod $module {
            use super::{black_box, Operation};
            use $lib::stack::DefaultStack;
            use $lib::{Coroutine, ScopedCoroutine};

            pub struct Switch(Coroutine<usize, usize, ()>);
            impl Operation for Switch {
                #[inline]
                fn run(&mut self, input: usize) {
                    black_box(self.0.resume(input));
                }
            }
            pub fn switch() -> Option<Switch> {
                Some(Switch(Coroutine::new(|yielder, mut value| loop {
                    value = yielder.suspend(value);
                })))
            }

            pub struct SwitchUnit(Coroutine<(), (), ()>);
            impl Operation for SwitchUnit {
                #[inline]
                fn run(&mut self, _: usize) {
                    black_box(self.0.resume(()));
                }
            }
            pub fn switch_unit() -> Option<SwitchUnit> {
                Some(SwitchUnit(Coroutine::new(|yielder, ()| loop {
                    yielder.suspend(());
                })))
            }

            /// A `Coroutine` owns its stack and is `'static`: borrowing a
            /// stack takes a `ScopedCoroutine`.
            pub struct Call(DefaultStack);
            impl Operation for Call {
                #[inline]
                fn run(&mut self, input: usize) {
                    ScopedCoroutine::<usize, (), usize, _>::with_stack(&mut self.0, |_, x| x)
                        .scope(|mut coroutine| black_box(coroutine.resume(input)));
                }
            }
            pub fn call() -> Option<Call> {
                Some(Call(DefaultStack::default()))
            }

            pub struct CallOwned(Option<DefaultStack>);
            impl Operation for CallOwned {
                #[inline]
                fn run(&mut self, input: usize) {
                    let stack = self.0.take().expect("the stack is back after each run");
                    let mut coroutine =
                        Coroutine::<usize, (), usize, _>::with_stack(stack, |_, x| x);
                    black_box(coroutine.resume(input));
                    self.0 = Some(coroutine.into_stack());
                }
            }
            pub fn call_owned() -> Option<CallOwned> {
                Some(CallOwned(Some(DefaultStack::default())))
            }

            pub struct Create;
            impl Operation for Create {
                #[inline]
                fn run(&mut self, input: usize) {
                    let mut coroutine = Coroutine::<usize, (), usize>::new(|_, x| x);
                    black_box(coroutine.resume(input));
                }
            }
            pub fn create() -> Option<Create> {
                Some(Create)
            }
        }
    };
}

corosensei_api_ops!(stackswitch_ops, stackswitch);
corosensei_api_ops!(corosensei_ops, corosensei);

/// `context`: Boost.Context's `fcontext` (make/jump), every call `unsafe`.
/// A context transfers one word; there is no notion of completion, panics
/// or unwinding: a body "completes" by jumping back for the last time, and
/// its frames (which hold nothing to drop) are abandoned on the stack.
mod context_ops {
    use super::{black_box, Operation};
    use context::stack::ProtectedFixedSizeStack;
    use context::{Context, Transfer};

    /// Jumps back with whatever it was given, forever.
    extern "C" fn echo(mut transfer: Transfer) -> ! {
        loop {
            // SAFETY: `transfer.context` is the suspended parent, resumed once.
            transfer = unsafe { transfer.context.resume(transfer.data) };
        }
    }

    /// Jumps back once with what it was given, and is never resumed.
    extern "C" fn identity(transfer: Transfer) -> ! {
        // SAFETY: as in `echo`.
        unsafe { transfer.context.resume(transfer.data) };
        unreachable!("a finished context was resumed");
    }

    /// A started `echo` context and its stack; `context` is always `Some`
    /// between runs (an `Option` only to move it out and back).
    pub struct Switch {
        context: Option<Context>,
        _stack: ProtectedFixedSizeStack,
    }
    impl Switch {
        fn new() -> Self {
            let stack = ProtectedFixedSizeStack::default();
            // SAFETY: the stack outlives the context (both live in `Switch`,
            // and the context is never resumed after it is dropped).
            let fresh = unsafe { Context::new(&stack, echo) };
            // SAFETY: a fresh context, started once.
            let started = unsafe { fresh.resume(0) };
            Switch {
                context: Some(started.context),
                _stack: stack,
            }
        }
        #[inline]
        fn round_trip(&mut self, input: usize) -> usize {
            // SAFETY: `context` is Some between runs (see the type).
            let context = unsafe { self.context.take().unwrap_unchecked() };
            // SAFETY: the suspended `echo`, resumed once; it jumps back.
            let transfer = unsafe { context.resume(input) };
            self.context = Some(transfer.context);
            transfer.data
        }
    }
    impl Operation for Switch {
        #[inline]
        fn run(&mut self, input: usize) {
            black_box(self.round_trip(input));
        }
    }
    pub fn switch() -> Option<Switch> {
        Some(Switch::new())
    }

    /// fcontext always transfers a word: `()` is a word left unused.
    pub struct SwitchUnit(Switch);
    impl Operation for SwitchUnit {
        #[inline]
        fn run(&mut self, _: usize) {
            self.0.round_trip(0);
        }
    }
    pub fn switch_unit() -> Option<SwitchUnit> {
        Some(SwitchUnit(Switch::new()))
    }

    /// A context only borrows its stack.
    pub struct Call(ProtectedFixedSizeStack);
    impl Operation for Call {
        #[inline]
        fn run(&mut self, input: usize) {
            // SAFETY: nothing runs on the stack (the last body finished and
            // holds nothing), and it outlives the context.
            let context = unsafe { Context::new(&self.0, identity) };
            // SAFETY: a fresh context; `identity` jumps back once.
            black_box(unsafe { context.resume(input) }.data);
        }
    }
    pub fn call() -> Option<Call> {
        Some(Call(ProtectedFixedSizeStack::default()))
    }

    /// A context never owns its stack: nothing to move in and out.
    pub fn call_owned() -> Option<Call> {
        None
    }

    pub struct Create;
    impl Operation for Create {
        #[inline]
        fn run(&mut self, input: usize) {
            let stack = ProtectedFixedSizeStack::default();
            // SAFETY: a new stack, which outlives the context.
            let context = unsafe { Context::new(&stack, identity) };
            // SAFETY: a fresh context; `identity` jumps back once.
            black_box(unsafe { context.resume(input) }.data);
        }
    }
    pub fn create() -> Option<Create> {
        Some(Create)
    }
}

/// `generator` (the may runtime's): a generator owns its stack for life; a
/// finished one can be given a new body (`scoped_init`), which is its way
/// of reusing a stack. Values go through `Option` slots in the generator.
mod generator_ops {
    use super::{black_box, Operation};
    use generator::{Generator, Gn};

    pub struct Switch(Generator<'static, usize, usize>);
    impl Operation for Switch {
        #[inline]
        fn run(&mut self, input: usize) {
            black_box(self.0.send(input));
        }
    }
    pub fn switch() -> Option<Switch> {
        let mut generator = Gn::<usize>::new_scoped(|mut scope| {
            let mut value = scope.get_yield().expect("started by send");
            loop {
                value = scope.yield_(value).expect("resumed by send");
            }
        });
        generator.send(0);
        Some(Switch(generator))
    }

    pub struct SwitchUnit(Generator<'static, (), ()>);
    impl Operation for SwitchUnit {
        #[inline]
        fn run(&mut self, _: usize) {
            black_box(self.0.resume());
        }
    }
    pub fn switch_unit() -> Option<SwitchUnit> {
        let mut generator = Gn::<()>::new_scoped(|mut scope| loop {
            scope.yield_with(());
        });
        generator.resume();
        Some(SwitchUnit(generator))
    }

    /// A finished generator, given a new body each run.
    pub struct Call(Generator<'static, usize, usize>);
    impl Operation for Call {
        #[inline]
        fn run(&mut self, input: usize) {
            self.0
                .scoped_init(|mut scope| scope.get_yield().expect("started by send"));
            black_box(self.0.send(input));
        }
    }
    pub fn call() -> Option<Call> {
        let mut generator =
            Gn::<usize>::new_scoped(|mut scope| scope.get_yield().expect("started by send"));
        generator.send(0);
        Some(Call(generator))
    }

    /// A generator's stack cannot be moved in or out.
    pub fn call_owned() -> Option<Call> {
        None
    }

    pub struct Create;
    impl Operation for Create {
        #[inline]
        fn run(&mut self, input: usize) {
            let mut generator =
                Gn::<usize>::new_scoped(|mut scope| scope.get_yield().expect("started by send"));
            black_box(generator.send(input));
        }
    }
    pub fn create() -> Option<Create> {
        Some(Create)
    }
}

/// `wasmtime-fiber`: a `Fiber` owns its stack (taken back with
/// `into_stack`), so a reused stack is always moved in and out. Its crate
/// has no default size; wasmtime's default async stack is 2 MiB.
mod wasmtime_fiber_ops {
    use super::{black_box, Operation};
    use wasmtime_fiber::{Fiber, FiberStack, Suspend};

    const STACK_SIZE: usize = 2 << 20;

    fn new_stack() -> FiberStack {
        FiberStack::new(STACK_SIZE, false).expect("failed to allocate a fiber stack")
    }

    pub struct Switch(Fiber<'static, usize, usize, ()>);
    impl Operation for Switch {
        #[inline]
        fn run(&mut self, input: usize) {
            let _ = black_box(self.0.resume(input));
        }
    }
    pub fn switch() -> Option<Switch> {
        let fiber = Fiber::new(new_stack(), |mut value, suspend: &mut Suspend<_, _, ()>| {
            loop {
                value = suspend.suspend(value);
            }
        })
        .expect("failed to create a fiber");
        let _ = fiber.resume(0);
        Some(Switch(fiber))
    }

    pub struct SwitchUnit(Fiber<'static, (), (), ()>);
    impl Operation for SwitchUnit {
        #[inline]
        fn run(&mut self, _: usize) {
            let _ = black_box(self.0.resume(()));
        }
    }
    pub fn switch_unit() -> Option<SwitchUnit> {
        let fiber = Fiber::new(new_stack(), |(), suspend: &mut Suspend<_, _, ()>| loop {
            suspend.suspend(());
        })
        .expect("failed to create a fiber");
        let _ = fiber.resume(());
        Some(SwitchUnit(fiber))
    }

    pub struct CallOwned(Option<FiberStack>);
    impl Operation for CallOwned {
        #[inline]
        fn run(&mut self, input: usize) {
            let stack = self.0.take().expect("the stack is back after each run");
            let fiber =
                Fiber::<usize, (), usize>::new(stack, |x, _| x).expect("failed to create a fiber");
            let _ = black_box(fiber.resume(input));
            self.0 = Some(fiber.into_stack());
        }
    }

    /// A fiber cannot borrow a stack: reuse is `call_owned`.
    pub fn call() -> Option<CallOwned> {
        call_owned()
    }
    pub fn call_owned() -> Option<CallOwned> {
        Some(CallOwned(Some(new_stack())))
    }

    pub struct Create;
    impl Operation for Create {
        #[inline]
        fn run(&mut self, input: usize) {
            let fiber = Fiber::<usize, (), usize>::new(new_stack(), |x, _| x)
                .expect("failed to create a fiber");
            let _ = black_box(fiber.resume(input));
        }
    }
    pub fn create() -> Option<Create> {
        Some(Create)
    }
}

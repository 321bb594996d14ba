//! Runs a program on real coroutines and records what happens.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use stackswitch::stack::{DefaultStack, Stack, StackPointer};
use stackswitch::{Coroutine, CoroutineResult, Yielder};

use super::program::{Body, Child, Leaf, Program, Step};
use super::{mix, Event, Outcome, StressPanic, SCRIPT_SEED};

type Coro = Coroutine<u64, Yielded, u64, PooledStack>;

/// What a coroutine yields: a value, and maybe a guard, dropped (and
/// recorded) if the parent drops the value instead of taking it, as
/// `force_unwind` does with what a coroutine yields while being unwound.
pub struct Yielded {
    value: u64,
    guard: Option<Guard>,
}

impl Yielded {
    fn plain(value: u64) -> Self {
        Yielded { value, guard: None }
    }

    /// Takes the value; the guard goes without a record.
    fn take(mut self) -> u64 {
        std::mem::forget(self.guard.take());
        self.value
    }
}

#[cfg(not(miri))]
thread_local! {
    static TRACE: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

// Under Miri every coroutine runs on a thread of its own, with its own
// thread-locals: there the trace and the pool are process-wide, and
// programs run one at a time (`RUNNING`).
#[cfg(miri)]
static TRACE: ProgramWide<Vec<Event>> = ProgramWide(std::sync::Mutex::new(None));
#[cfg(miri)]
static POOL: ProgramWide<Pool> = ProgramWide(std::sync::Mutex::new(None));
#[cfg(miri)]
static RUNNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(miri)]
struct ProgramWide<T>(std::sync::Mutex<Option<RefCell<T>>>);

#[cfg(miri)]
impl<T: Default> ProgramWide<T> {
    fn with<R>(&self, f: impl FnOnce(&RefCell<T>) -> R) -> R {
        let mut value = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(value.get_or_insert_with(Default::default))
    }
}

fn record(event: Event) {
    TRACE.with(|trace| trace.borrow_mut().push(event));
}

/// Runs `program` and returns its trace. `unwind`: whether suspended
/// coroutines can be unwound (else they are reset before being dropped).
pub fn run(program: &Program, unwind: bool) -> Vec<Event> {
    #[cfg(miri)]
    let _one_at_a_time = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    TRACE.with(|trace| {
        let mut trace = trace.borrow_mut();
        trace.clear();
        // Pushing must not allocate on a coroutine's smallest stack.
        trace.reserve(4096);
    });
    let mut acc = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_block(&program.main, &mut acc, None, unwind)
    }));
    let outcome = match result {
        Ok(()) => Outcome::Returned(acc),
        Err(payload) => match payload.downcast_ref::<StressPanic>() {
            Some(StressPanic(id)) => Outcome::Panicked(*id),
            None => Outcome::Other(panic_message(&*payload)),
        },
    };
    record(Event::End(outcome));
    // Stacks of coroutines leaked by `force_reset` are reclaimed here:
    // nothing runs on them any more.
    POOL.with(|pool| pool.borrow_mut().release_all());
    TRACE.with(|trace| std::mem::take(&mut *trace.borrow_mut()))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with an unknown payload".to_string()
    }
}

/// Records its drop.
pub struct Guard(u32);

impl Drop for Guard {
    fn drop(&mut self) {
        record(Event::Dropped(self.0));
    }
}

enum Entry {
    Guard(#[allow(dead_code)] Guard),
    Child(Option<Coro>),
}

/// What a block owns; dropped newest first, like locals.
struct Scope {
    entries: Vec<Entry>,
    children: Vec<usize>,
    unwind: bool,
}

impl Scope {
    fn child_entry(&self, child: u32) -> Option<usize> {
        let newest_first = self.children.iter().rev();
        newest_first.cycle().nth(child as usize).copied()
    }

    fn child(&mut self, child: u32) -> Option<&mut Coro> {
        let index = self.child_entry(child)?;
        match &mut self.entries[index] {
            Entry::Child(coroutine) => coroutine.as_mut(),
            Entry::Guard(_) => unreachable!(),
        }
    }

    fn take_child(&mut self, child: u32) -> Option<Coro> {
        let index = self.child_entry(child)?;
        match &mut self.entries[index] {
            Entry::Child(coroutine) => coroutine.take(),
            Entry::Guard(_) => unreachable!(),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        while let Some(entry) = self.entries.pop() {
            if let Entry::Child(Some(mut coroutine)) = entry {
                finish_for_drop(&mut coroutine, self.unwind);
            }
        }
    }
}

/// Without unwinding, a suspended coroutine cannot be dropped: reset it.
fn finish_for_drop(coroutine: &mut Coro, unwind: bool) {
    if !unwind && coroutine.started() && !coroutine.done() {
        // SAFETY: nothing on a test coroutine's stack needs its destructor
        // (guards only record, and the trace expects them not to).
        unsafe { coroutine.force_reset() };
    }
}

fn run_block(steps: &[Step], acc: &mut u64, yielder: Option<&Yielder<u64, Yielded>>, unwind: bool) {
    let mut scope = Scope {
        entries: Vec::new(),
        children: Vec::new(),
        unwind,
    };
    for step in steps {
        match step {
            Step::Guard(id) => scope.entries.push(Entry::Guard(Guard(*id))),
            Step::Spawn(child) => {
                scope.children.push(scope.entries.len());
                scope.entries.push(Entry::Child(Some(spawn(child, unwind))));
            }
            Step::Resume { child, input } => {
                if let Some(coroutine) = scope.child(*child) {
                    if coroutine.done() {
                        record(Event::AlreadyDone);
                    } else {
                        let started = coroutine.started();
                        let result = match coroutine.resume(*input) {
                            CoroutineResult::Yield(y) => CoroutineResult::Yield(y.take()),
                            CoroutineResult::Return(v) => CoroutineResult::Return(v),
                        };
                        let value = match result {
                            CoroutineResult::Yield(v) | CoroutineResult::Return(v) => v,
                        };
                        record(Event::Resumed { started, result });
                        *acc = mix(*acc, value);
                    }
                }
            }
            Step::Drop { child } => {
                if let Some(mut coroutine) = scope.take_child(*child) {
                    finish_for_drop(&mut coroutine, unwind);
                    drop(coroutine);
                }
            }
            Step::ForceUnwind { child } => {
                if let Some(coroutine) = scope.child(*child) {
                    if unwind || !coroutine.started() {
                        coroutine.force_unwind();
                    } else {
                        finish_for_drop(coroutine, unwind);
                    }
                }
            }
            Step::ForceReset { child } => {
                if let Some(coroutine) = scope.child(*child) {
                    // SAFETY: see `finish_for_drop`; the leaked stacks are
                    // reclaimed by the pool once the program has finished.
                    unsafe { coroutine.force_reset() };
                }
            }
            Step::Suspend(value) => {
                let yielder = yielder.expect("Suspend outside a coroutine");
                let input = yielder.suspend(Yielded::plain(mix(*acc, *value)));
                *acc = mix(*acc, input);
            }
            Step::StubbornSuspend(value, guard) => {
                let yielder = yielder.expect("StubbornSuspend outside a coroutine");
                let sent = Yielded::plain(mix(*acc, *value));
                match catch_unwind(AssertUnwindSafe(|| yielder.suspend(sent))) {
                    Ok(input) => *acc = mix(*acc, input),
                    Err(_forced_unwind) => {
                        record(Event::CaughtForcedUnwind);
                        // Wrong on purpose: suspends instead of unwinding.
                        // This suspend raises the forced unwind again.
                        yielder.suspend(Yielded {
                            value: 0,
                            guard: Some(Guard(*guard)),
                        });
                        unreachable!("a coroutine being unwound was resumed normally");
                    }
                }
            }
            Step::OnParentStack(block) => {
                let yielder = yielder.expect("OnParentStack outside a coroutine");
                let block = block.clone();
                let start = *acc;
                *acc = yielder.on_parent_stack(move || {
                    let mut acc = start;
                    run_block(&block, &mut acc, None, unwind);
                    acc
                });
            }
            Step::Catch(block) => {
                let result =
                    catch_unwind(AssertUnwindSafe(|| run_block(block, acc, yielder, unwind)));
                if let Err(payload) = result {
                    caught(payload, acc);
                }
            }
            Step::Panic(id) => resume_unwind(Box::new(StressPanic(*id))),
        }
    }
}

#[cfg(feature = "unwind")]
fn caught(payload: Box<dyn std::any::Any + Send>, acc: &mut u64) {
    if stackswitch::is_forced_unwind(&*payload) {
        record(Event::CaughtForcedUnwind);
        resume_unwind(payload);
    }
    match payload.downcast_ref::<StressPanic>() {
        Some(StressPanic(id)) => {
            record(Event::Caught(*id));
            *acc = mix(*acc, *id as u64);
        }
        None => resume_unwind(payload),
    }
}

#[cfg(not(feature = "unwind"))]
fn caught(payload: Box<dyn std::any::Any + Send>, _acc: &mut u64) {
    resume_unwind(payload);
}

fn spawn(child: &Child, unwind: bool) -> Coro {
    let stack = PooledStack::take(child.stack_size);
    match &child.body {
        Body::Leaf(leaf) => {
            let leaf = *leaf;
            Coroutine::with_stack(stack, move |yielder, input| run_leaf(leaf, yielder, input))
        }
        Body::Script(block) => {
            let block = block.clone();
            Coroutine::with_stack(stack, move |yielder, input| {
                let mut acc = mix(SCRIPT_SEED, input);
                run_block(&block, &mut acc, Some(yielder), unwind);
                acc
            })
        }
    }
}

fn run_leaf(leaf: Leaf, yielder: &Yielder<u64, Yielded>, input: u64) -> u64 {
    let _guard = Guard(leaf.guard);
    let mut acc = mix(leaf.guard as u64, input);
    for _ in 0..leaf.suspends {
        acc = mix(acc, yielder.suspend(Yielded::plain(acc)));
    }
    if let Some(id) = leaf.panic {
        resume_unwind(Box::new(StressPanic(id)));
    }
    acc
}

/// Stacks reused across coroutines and programs: mapping fresh ones each
/// time would dominate the run time, and a stack whose coroutine was leaked
/// by `force_reset` is reclaimed once its program is over.
#[derive(Default)]
struct Pool {
    stacks: Vec<DefaultStack>,
    in_use: Vec<bool>,
    free_by_size: HashMap<usize, Vec<usize>>,
    size_of: Vec<usize>,
}

impl Pool {
    fn take(&mut self, size: usize) -> usize {
        if let Some(index) = self.free_by_size.get_mut(&size).and_then(Vec::pop) {
            self.in_use[index] = true;
            return index;
        }
        self.stacks
            .push(DefaultStack::new(size).expect("coroutine stack"));
        self.in_use.push(true);
        self.size_of.push(size);
        self.stacks.len() - 1
    }

    fn release(&mut self, index: usize) {
        if std::mem::replace(&mut self.in_use[index], false) {
            self.free_by_size
                .entry(self.size_of[index])
                .or_default()
                .push(index);
        }
    }

    fn release_all(&mut self) {
        for index in 0..self.stacks.len() {
            self.release(index);
        }
    }
}

/// A stack lent by the pool.
struct PooledStack {
    index: usize,
    base: StackPointer,
    limit: StackPointer,
    usable_limit: StackPointer,
}

impl PooledStack {
    fn take(size: usize) -> Self {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let index = pool.take(size);
            let stack = &pool.stacks[index];
            PooledStack {
                index,
                base: stack.base(),
                limit: stack.limit(),
                usable_limit: stack.usable_limit(),
            }
        })
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        POOL.with(|pool| pool.borrow_mut().release(self.index));
    }
}

// SAFETY: the pool keeps the memory mapped for the life of the thread and
// lends each stack to one `PooledStack` at a time; a stack is lent again
// only after its borrower was dropped, or once the program that leaked it
// (with `force_reset`, which never touches the stack again) has finished.
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        self.base
    }

    fn limit(&self) -> StackPointer {
        self.limit
    }

    fn shadow_stack(&mut self) -> Option<StackPointer> {
        POOL.with(|pool| pool.borrow_mut().stacks[self.index].shadow_stack())
    }

    #[inline]
    fn usable_limit(&self) -> StackPointer {
        self.usable_limit
    }

    #[cfg(windows)]
    fn teb_fields(&self) -> stackswitch::stack::StackTebFields {
        POOL.with(|pool| pool.borrow().stacks[self.index].teb_fields())
    }

    #[cfg(windows)]
    fn update_teb_fields(&mut self, stack_limit: usize, guaranteed_stack_bytes: usize) {
        POOL.with(|pool| {
            pool.borrow_mut().stacks[self.index]
                .update_teb_fields(stack_limit, guaranteed_stack_bytes)
        })
    }
}

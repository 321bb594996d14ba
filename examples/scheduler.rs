//! A round-robin scheduler of green threads on a virtual clock.
//!
//! Each task is a coroutine. It makes "system calls" (yield, sleep, send a
//! message, receive one) by suspending with a request; the scheduler decides
//! which task runs next and resumes it with the answer. Tasks are ordinary
//! blocking-style code and may make these calls from any depth of their
//! own call stack.
//!
//! Time is virtual: running code takes no time, and when every task is
//! blocked the clock jumps to the next sleeper's wake-up time. With a FIFO
//! run queue and ties broken by arrival order, every run is the same.
//!
//! Ten thousand tasks pass a token around a ring, three times, sleeping on
//! the way; a few timers tick alongside. Finished tasks give their stacks
//! back to a pool for new tasks.
//!
//! Run with `cargo run --example scheduler`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use stackswitch::stack::DefaultStack;
use stackswitch::{Coroutine, CoroutineResult, Yielder};

type TaskId = usize;

/// What a task asks the scheduler for.
enum Syscall {
    Yield,
    Sleep(u64),
    Send { to: TaskId, message: u64 },
    Receive,
}

/// What the scheduler resumes a task with.
enum Wake {
    Start,
    Ready,
    Message(u64),
}

/// A task's handle on the scheduler: blocking calls that suspend the task.
struct Ctx<'y> {
    id: TaskId,
    yielder: &'y Yielder<Wake, Syscall>,
}

impl Ctx<'_> {
    fn yield_now(&self) {
        self.yielder.suspend(Syscall::Yield);
    }

    fn sleep(&self, ticks: u64) {
        self.yielder.suspend(Syscall::Sleep(ticks));
    }

    fn send(&self, to: TaskId, message: u64) {
        self.yielder.suspend(Syscall::Send { to, message });
    }

    fn receive(&self) -> u64 {
        match self.yielder.suspend(Syscall::Receive) {
            Wake::Message(message) => message,
            _ => unreachable!("task {} woken from receive without a message", self.id),
        }
    }
}

type Task = Coroutine<Wake, Syscall, u64>;

/// Stack size of every task: small, since tasks are many.
const TASK_STACK_SIZE: usize = 32 * 1024;

#[derive(Default)]
struct Scheduler {
    tasks: Vec<Option<Task>>,
    results: Vec<Option<u64>>,
    /// Tasks ready to run, and what to resume each with.
    ready: VecDeque<(TaskId, Wake)>,
    /// Sleeping tasks by wake-up time, then by when they went to sleep.
    sleeping: BinaryHeap<Reverse<(u64, u64, TaskId)>>,
    sleeps: u64,
    mailboxes: Vec<VecDeque<u64>>,
    receiving: Vec<bool>,
    /// Stacks of finished tasks, reused by new ones.
    stack_pool: Vec<DefaultStack>,
    stacks_allocated: usize,
    now: u64,
    switches: u64,
}

impl Scheduler {
    fn spawn(&mut self, body: impl FnOnce(&Ctx<'_>) -> u64 + 'static) -> TaskId {
        let id = self.tasks.len();
        let stack = self.stack_pool.pop().unwrap_or_else(|| {
            self.stacks_allocated += 1;
            DefaultStack::new(TASK_STACK_SIZE).expect("task stack")
        });
        let task = Coroutine::with_stack(stack, move |yielder, _start: Wake| {
            body(&Ctx { id, yielder })
        });
        self.tasks.push(Some(task));
        self.results.push(None);
        self.mailboxes.push(VecDeque::new());
        self.receiving.push(false);
        self.ready.push_back((id, Wake::Start));
        id
    }

    /// Runs until every task has finished. Fails, naming them, if the
    /// remaining tasks all wait for messages that can never come.
    fn run(&mut self) -> Result<(), Vec<TaskId>> {
        loop {
            let Some((id, wake)) = self.ready.pop_front() else {
                // Everyone is blocked: jump to the next wake-up time.
                let Some(Reverse((time, _, id))) = self.sleeping.pop() else {
                    break;
                };
                self.now = time;
                self.ready.push_back((id, Wake::Ready));
                continue;
            };
            self.switches += 1;
            let task = self.tasks[id].as_mut().expect("a ready task exists");
            match task.resume(wake) {
                CoroutineResult::Yield(Syscall::Yield) => self.ready.push_back((id, Wake::Ready)),
                CoroutineResult::Yield(Syscall::Sleep(ticks)) => {
                    self.sleeps += 1;
                    self.sleeping
                        .push(Reverse((self.now + ticks, self.sleeps, id)));
                }
                CoroutineResult::Yield(Syscall::Send { to, message }) => {
                    if self.receiving[to] {
                        self.receiving[to] = false;
                        self.ready.push_back((to, Wake::Message(message)));
                    } else {
                        self.mailboxes[to].push_back(message);
                    }
                    self.ready.push_back((id, Wake::Ready));
                }
                CoroutineResult::Yield(Syscall::Receive) => match self.mailboxes[id].pop_front() {
                    Some(message) => self.ready.push_back((id, Wake::Message(message))),
                    None => self.receiving[id] = true,
                },
                CoroutineResult::Return(result) => {
                    self.results[id] = Some(result);
                    let task = self.tasks[id].take().unwrap();
                    self.stack_pool.push(task.into_stack());
                }
            }
        }
        let blocked: Vec<TaskId> = (0..self.tasks.len())
            .filter(|&id| self.tasks[id].is_some())
            .collect();
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(blocked)
        }
    }
}

const RING: usize = 10_000;
const LAPS: u64 = 3;

/// Forwards the token after a pause, from `depth` calls down: a green
/// thread suspends from anywhere in its call stack.
fn forward(ctx: &Ctx<'_>, depth: u32, to: TaskId, token: u64) {
    if depth > 0 {
        return forward(ctx, depth - 1, to, token);
    }
    if token % 1000 == 999 {
        ctx.sleep(1);
    }
    ctx.send(to, token + 1);
}

fn main() {
    let mut scheduler = Scheduler::default();

    // Timers, so that the clock visibly moves. They print as they tick.
    for (name, period) in [("fast", 2), ("slow", 5)] {
        scheduler.spawn(move |ctx| {
            for _ in 0..3 {
                ctx.sleep(period);
                println!("timer {name} (every {period}) ticked");
            }
            0
        });
    }

    // The ring: each member receives the token and forwards it to the next,
    // `LAPS` times round; the last hop goes to the collector.
    let first = scheduler.tasks.len();
    let collector = first + RING;
    for i in 0..RING {
        scheduler.spawn(move |ctx| {
            // Staggered start: most members are asleep when the token first
            // comes round, so it waits in their mailboxes.
            ctx.sleep((i % 7) as u64);
            let mut seen = 0;
            for lap in 0..LAPS {
                let token = ctx.receive();
                seen += token;
                let last_hop = i == RING - 1 && lap == LAPS - 1;
                let next = if last_hop {
                    collector
                } else {
                    first + (i + 1) % RING
                };
                forward(ctx, (i % 8) as u32, next, token);
            }
            seen
        });
    }
    let collector_id = scheduler.spawn(move |ctx| {
        ctx.yield_now();
        ctx.send(first, 0);
        ctx.receive()
    });
    assert_eq!(collector_id, collector);

    scheduler.run().expect("no task is left blocked");

    let hops = LAPS * RING as u64;
    let token = scheduler.results[collector].unwrap();
    assert_eq!(token, hops, "every hop adds one to the token");
    // Member i saw the token with values i, i + RING, i + 2 * RING.
    for i in 0..RING {
        let expected = (0..LAPS)
            .map(|lap| lap * RING as u64 + i as u64)
            .sum::<u64>();
        assert_eq!(scheduler.results[first + i], Some(expected));
    }
    println!(
        "{} tasks finished: token made {hops} hops and came back as {token}",
        scheduler.tasks.len()
    );
    println!("virtual time at the end: {}", scheduler.now);
    println!("context switches: {}", scheduler.switches);
    println!(
        "stacks allocated: {} (all returned to the pool: {})",
        scheduler.stacks_allocated,
        scheduler.stack_pool.len() == scheduler.stacks_allocated
    );

    // A finished scheduler's pool serves the next batch of tasks.
    let mut second = Scheduler {
        stack_pool: std::mem::take(&mut scheduler.stack_pool),
        ..Scheduler::default()
    };
    let a = second.spawn(|ctx| ctx.receive());
    let b = second.spawn(move |ctx| {
        ctx.sleep(10);
        ctx.send(a, 42);
        0
    });
    second.run().unwrap();
    println!(
        "second run: task {a} received {} from task {b} at time {}, new stacks: {}",
        second.results[a].unwrap(),
        second.now,
        second.stacks_allocated
    );

    // A task waiting for a message nobody sends is reported, not hung on.
    let mut stuck = Scheduler::default();
    let waiting = stuck.spawn(|ctx| ctx.receive());
    assert_eq!(stuck.run(), Err(vec![waiting]));
    println!("deadlock detected: tasks {:?} wait forever", [waiting]);
}

//! Random programs of nested coroutines: their syntax, a generator driven by
//! any source of choices (a seeded PRNG for tests, raw bytes for the fuzzer),
//! and a shrinker that makes a failing program smaller.

use stackswitch::stack::MIN_STACK_SIZE;

/// One step of a block. A step names a child by its age among the `Spawn`s
/// of the block that runs it, newest first (0 is the newest), modulo how
/// many there are; a step naming no child (none spawned yet, or dropped)
/// does nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Pushes a value whose destructor records `Dropped(id)`.
    Guard(u32),
    /// Creates a child coroutine (not started).
    Spawn(Box<Child>),
    /// Resumes a child unless it is done; records what it returned.
    Resume { child: u32, input: u64 },
    /// Drops a child (unwinding it if it is suspended).
    Drop { child: u32 },
    /// `Coroutine::force_unwind` on a child.
    ForceUnwind { child: u32 },
    /// `Coroutine::force_reset` on a child: its destructors never run.
    ForceReset { child: u32 },
    /// `Yielder::suspend` (only where a yielder is in reach).
    Suspend(u64),
    /// `Yielder::suspend` under a `catch_unwind` that swallows a forced
    /// unwind and suspends again (wrong, but safe code can do it: the
    /// forced unwind is raised again, and the coroutine unwound to the end),
    /// yielding a value with a guard that the parent drops.
    StubbornSuspend(u64, u32),
    /// Runs a block on the parent's stack (`Yielder::on_parent_stack`).
    OnParentStack(Vec<Step>),
    /// Runs a block under `catch_unwind`; forced unwinds are re-raised.
    Catch(Vec<Step>),
    /// Raises a panic with a `StressPanic(id)` payload.
    Panic(u32),
}

/// A child coroutine: its stack size and what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub stack_size: usize,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A tiny fixed body that fits the smallest stack.
    Leaf(Leaf),
    /// A block run by the interpreter (which needs a roomier stack).
    Script(Vec<Step>),
}

/// Holds guard `guard`, suspends `suspends` times, then returns or panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub guard: u32,
    pub suspends: u32,
    pub panic: Option<u32>,
}

/// A whole program: the block run on the test's own stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub main: Vec<Step>,
}

/// Where the generator's choices come from.
pub trait Source {
    /// A number in `0..bound` (`bound > 0`).
    fn below(&mut self, bound: u32) -> u32;
    fn value(&mut self) -> u64;
}

/// SplitMix64: small, seeded, and the same on every target.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Source for Rng {
    fn below(&mut self, bound: u32) -> u32 {
        (self.next() % bound as u64) as u32
    }

    fn value(&mut self) -> u64 {
        self.next()
    }
}

/// Choices read from fuzzer input; zeros once it runs out, which ends every
/// block, so any input makes a finite program.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

impl Source for Bytes<'_> {
    fn below(&mut self, bound: u32) -> u32 {
        self.byte() as u32 % bound
    }

    fn value(&mut self) -> u64 {
        u64::from_le_bytes([self.byte(), self.byte(), 0, 0, 0, 0, 0, 0])
    }
}

/// What programs may contain: without the `unwind` feature no panics, and
/// suspended coroutines are reset rather than unwound.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub unwind: bool,
    /// Upper bound on steps in a whole program.
    pub max_steps: u32,
}

/// Smallest stack given to script coroutines: the interpreter's debug-build
/// frames, a few nested blocks deep, plus a block run from a child by
/// `on_parent_stack`, plus unwinding.
pub fn script_stack_min() -> usize {
    (128 * 1024).max(8 * MIN_STACK_SIZE)
}

struct Generator<'s, S: Source> {
    source: &'s mut S,
    config: Config,
    steps_left: u32,
    next_id: u32,
}

/// Where a block runs, which decides the steps it may contain.
#[derive(Clone, Copy)]
struct Place {
    /// A `Yielder` is in reach (inside a coroutine, not on its parent's stack).
    can_suspend: bool,
    /// Nesting of coroutine bodies.
    coroutine_depth: u32,
    /// Nesting of `Catch`/`OnParentStack` blocks.
    block_depth: u32,
}

pub fn generate(source: &mut impl Source, config: Config) -> Program {
    let mut generator = Generator {
        source,
        config,
        steps_left: config.max_steps,
        next_id: 1,
    };
    let main = generator.block(Place {
        can_suspend: false,
        coroutine_depth: 0,
        block_depth: 0,
    });
    Program { main }
}

impl<S: Source> Generator<'_, S> {
    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn block(&mut self, place: Place) -> Vec<Step> {
        let mut steps = Vec::new();
        // Nested blocks are short, so the budget is spread over many.
        let limit = match (place.coroutine_depth, place.block_depth) {
            (0, 0) => 48,
            (_, 0) => 16,
            _ => 6,
        };
        while self.steps_left > 0 && steps.len() < limit {
            self.steps_left -= 1;
            // 0 ends any block (so exhausted fuzzer input ends the program);
            // the main block runs until the step budget is spent. Resumes
            // are the most common step: they make things run.
            let nested = place.coroutine_depth > 0 || place.block_depth > 0;
            let step = match self.source.below(64) {
                0 => break,
                1..=2 if nested => break,
                3..=6 => Step::Guard(self.id()),
                7..=14 => Step::Spawn(Box::new(self.child(place))),
                35..=36 => Step::Drop {
                    child: self.source.below(3),
                },
                37..=38 => Step::ForceUnwind {
                    child: self.source.below(3),
                },
                39 => Step::ForceReset {
                    child: self.source.below(3),
                },
                46..=47 if place.can_suspend && self.config.unwind => {
                    Step::StubbornSuspend(self.source.value(), self.id())
                }
                40..=47 if place.can_suspend => Step::Suspend(self.source.value()),
                48..=49 if place.can_suspend && place.block_depth < 2 => {
                    Step::OnParentStack(self.block(Place {
                        can_suspend: false,
                        block_depth: place.block_depth + 1,
                        ..place
                    }))
                }
                50..=53 if self.config.unwind && place.block_depth < 2 => {
                    Step::Catch(self.block(Place {
                        block_depth: place.block_depth + 1,
                        ..place
                    }))
                }
                54..=55 if self.config.unwind && nested => Step::Panic(self.id()),
                _ => Step::Resume {
                    child: self.source.below(3),
                    input: self.source.value(),
                },
            };
            steps.push(step);
        }
        steps
    }

    fn child(&mut self, place: Place) -> Child {
        let page = 4096;
        if place.coroutine_depth < 3 && self.source.below(2) == 0 {
            let stack_size = script_stack_min() + page * self.source.below(16) as usize;
            let body = self.block(Place {
                can_suspend: true,
                coroutine_depth: place.coroutine_depth + 1,
                block_depth: 0,
            });
            Child {
                stack_size,
                body: Body::Script(body),
            }
        } else {
            let stack_size = MIN_STACK_SIZE + page * [0, 0, 1, 3][self.source.below(4) as usize];
            let panic = (self.config.unwind && self.source.below(4) == 0).then(|| self.id());
            Child {
                stack_size,
                body: Body::Leaf(Leaf {
                    guard: self.id(),
                    suspends: self.source.below(12),
                    panic,
                }),
            }
        }
    }
}

/// Programs one step smaller than `program` (a step removed, anywhere in
/// the tree), for shrinking a failing case.
pub fn smaller(program: &Program) -> Vec<Program> {
    let mut out = Vec::new();
    for block in smaller_blocks(&program.main) {
        out.push(Program { main: block });
    }
    out
}

fn smaller_blocks(block: &[Step]) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    for i in 0..block.len() {
        let mut without = block.to_vec();
        without.remove(i);
        out.push(without);
        let inner: Vec<Step> = match &block[i] {
            Step::OnParentStack(b) | Step::Catch(b) => b.clone(),
            Step::Spawn(child) => match &child.body {
                Body::Script(b) => b.clone(),
                Body::Leaf(_) => continue,
            },
            _ => continue,
        };
        for smaller_inner in smaller_blocks(&inner) {
            let mut copy = block.to_vec();
            copy[i] = match &block[i] {
                Step::OnParentStack(_) => Step::OnParentStack(smaller_inner),
                Step::Catch(_) => Step::Catch(smaller_inner),
                Step::Spawn(child) => Step::Spawn(Box::new(Child {
                    stack_size: child.stack_size,
                    body: Body::Script(smaller_inner),
                })),
                _ => unreachable!(),
            };
            out.push(copy);
        }
    }
    out
}

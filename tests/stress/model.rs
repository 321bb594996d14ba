//! The reference: what a program must do, computed without coroutines.
//!
//! A coroutine is an explicit stack of block frames (step index, what the
//! block owns); resuming it runs steps until it suspends, returns or
//! panics. Unwinding pops frames, dropping what they own newest first, up
//! to a `Catch` frame.

use stackswitch::CoroutineResult;

use super::program::{Body, Leaf, Program, Step};
use super::{mix, Event, Outcome, SCRIPT_SEED};

/// Why a model stack is unwinding.
#[derive(Clone, Copy, Debug)]
enum Unwinding {
    Panic(u32),
    /// A suspended coroutine is being dropped or `force_unwind`-ed.
    Forced,
}

/// How running a stack of frames stopped.
enum Flow {
    Suspended(u64),
    Finished,
    Unwound(Unwinding),
}

#[derive(Clone, Copy)]
enum Owned {
    Guard(u32),
    /// A child coroutine (index into `Model::coroutines`), until dropped.
    Child(Option<usize>),
}

struct Frame<'p> {
    steps: &'p [Step],
    next: usize,
    catches: bool,
    owned: Vec<Owned>,
}

impl<'p> Frame<'p> {
    fn new(steps: &'p [Step], catches: bool) -> Self {
        Frame {
            steps,
            next: 0,
            catches,
            owned: Vec::new(),
        }
    }

    fn child(&self, child: u32) -> Option<usize> {
        let children = self.owned.iter().enumerate();
        let children: Vec<usize> = (children.filter(|(_, owned)| matches!(owned, Owned::Child(_))))
            .map(|(index, _)| index)
            .collect();
        let newest_first = children
            .len()
            .checked_sub(1 + child as usize % children.len().max(1))?;
        Some(children[newest_first])
    }
}

enum State<'p> {
    Fresh,
    Leaf { suspends_left: u32, acc: u64 },
    Script { frames: Vec<Frame<'p>>, acc: u64 },
    Done,
}

struct ModelCoroutine<'p> {
    body: &'p Body,
    started: bool,
    state: State<'p>,
}

struct Model<'p> {
    coroutines: Vec<ModelCoroutine<'p>>,
    trace: Vec<Event>,
    unwind: bool,
}

/// The trace `program` must produce.
pub fn expected_trace(program: &Program, unwind: bool) -> Vec<Event> {
    let mut model = Model {
        coroutines: Vec::new(),
        trace: Vec::new(),
        unwind,
    };
    let mut frames = vec![Frame::new(&program.main, false)];
    let mut acc = 0;
    let outcome = match model.run(&mut frames, &mut acc) {
        Flow::Finished => Outcome::Returned(acc),
        Flow::Unwound(Unwinding::Panic(id)) => Outcome::Panicked(id),
        Flow::Suspended(_) | Flow::Unwound(Unwinding::Forced) => unreachable!(),
    };
    model.trace.push(Event::End(outcome));
    model.trace
}

impl<'p> Model<'p> {
    /// Runs frames until the innermost suspends or the outermost ends.
    fn run(&mut self, frames: &mut Vec<Frame<'p>>, acc: &mut u64) -> Flow {
        loop {
            let Some(frame) = frames.last_mut() else {
                return Flow::Finished;
            };
            let Some(step) = frame.steps.get(frame.next) else {
                let frame = frames.pop().unwrap();
                self.drop_owned(frame.owned);
                continue;
            };
            frame.next += 1;
            let result = match step {
                Step::Guard(id) => {
                    frame.owned.push(Owned::Guard(*id));
                    Ok(())
                }
                Step::Spawn(child) => {
                    self.coroutines.push(ModelCoroutine {
                        body: &child.body,
                        started: false,
                        state: State::Fresh,
                    });
                    frame
                        .owned
                        .push(Owned::Child(Some(self.coroutines.len() - 1)));
                    Ok(())
                }
                Step::Resume { child, input } => match frame.child(*child) {
                    Some(slot) => match frame.owned[slot] {
                        Owned::Child(Some(id)) => self.resume(id, *input, acc),
                        _ => Ok(()),
                    },
                    None => Ok(()),
                },
                Step::Drop { child } => {
                    if let Some(slot) = frame.child(*child) {
                        if let Owned::Child(Some(id)) = frame.owned[slot] {
                            frame.owned[slot] = Owned::Child(None);
                            self.finish(id);
                        }
                    }
                    Ok(())
                }
                Step::ForceUnwind { child } => {
                    if let Some(Owned::Child(Some(id))) =
                        frame.child(*child).map(|s| frame.owned[s])
                    {
                        self.finish(id);
                    }
                    Ok(())
                }
                Step::ForceReset { child } => {
                    if let Some(Owned::Child(Some(id))) =
                        frame.child(*child).map(|s| frame.owned[s])
                    {
                        let coroutine = &mut self.coroutines[id];
                        coroutine.started = true;
                        coroutine.state = State::Done;
                    }
                    Ok(())
                }
                Step::Suspend(value) | Step::StubbornSuspend(value, _) => {
                    return Flow::Suspended(mix(*acc, *value))
                }
                Step::OnParentStack(block) => {
                    let mut inner = vec![Frame::new(block, false)];
                    let mut inner_acc = *acc;
                    match self.run(&mut inner, &mut inner_acc) {
                        Flow::Finished => {
                            *acc = inner_acc;
                            Ok(())
                        }
                        Flow::Unwound(why) => Err(why),
                        Flow::Suspended(_) => unreachable!("suspend on the parent's stack"),
                    }
                }
                Step::Catch(block) => {
                    frames.push(Frame::new(block, true));
                    Ok(())
                }
                Step::Panic(id) => Err(Unwinding::Panic(*id)),
            };
            if let Err(why) = result {
                if let Some(escaped) = self.unwind_frames(frames, acc, why) {
                    return Flow::Unwound(escaped);
                }
            }
        }
    }

    /// Unwinds to the innermost `Catch` that stops `why`; returns `why` if
    /// none does (the frames are then all gone).
    fn unwind_frames(
        &mut self,
        frames: &mut Vec<Frame<'p>>,
        acc: &mut u64,
        why: Unwinding,
    ) -> Option<Unwinding> {
        while let Some(frame) = frames.pop() {
            self.drop_owned(frame.owned);
            if frame.catches {
                match why {
                    Unwinding::Forced => self.trace.push(Event::CaughtForcedUnwind),
                    Unwinding::Panic(id) => {
                        self.trace.push(Event::Caught(id));
                        *acc = mix(*acc, id as u64);
                        return None;
                    }
                }
            }
        }
        Some(why)
    }

    fn drop_owned(&mut self, owned: Vec<Owned>) {
        for owned in owned.into_iter().rev() {
            match owned {
                Owned::Guard(id) => self.trace.push(Event::Dropped(id)),
                Owned::Child(Some(id)) => self.finish(id),
                Owned::Child(None) => {}
            }
        }
    }

    /// What dropping or `force_unwind`-ing a coroutine does.
    fn finish(&mut self, id: usize) {
        let coroutine = &mut self.coroutines[id];
        let state = std::mem::replace(&mut coroutine.state, State::Done);
        match state {
            // Its closure is dropped; it owns no guards yet.
            State::Fresh => coroutine.started = true,
            State::Done => {}
            // Reset instead: nothing on its stack is dropped.
            _ if !self.unwind => {}
            State::Leaf { .. } => {
                let Body::Leaf(leaf) = coroutine.body else {
                    unreachable!()
                };
                self.trace.push(Event::Dropped(leaf.guard));
            }
            State::Script {
                mut frames,
                mut acc,
            } => {
                // Suspended in a `StubbornSuspend`: it catches the forced
                // unwind and suspends again, yielding a guard that
                // `force_unwind` drops; that suspend raises it again.
                let innermost = frames.last().unwrap();
                if let Some(Step::StubbornSuspend(_, guard)) =
                    innermost.steps.get(innermost.next - 1)
                {
                    self.trace.push(Event::CaughtForcedUnwind);
                    self.trace.push(Event::Dropped(*guard));
                }
                let escaped = self.unwind_frames(&mut frames, &mut acc, Unwinding::Forced);
                assert!(escaped.is_some(), "a forced unwind cannot be stopped");
            }
        }
    }

    fn resume(&mut self, id: usize, input: u64, acc: &mut u64) -> Result<(), Unwinding> {
        let coroutine = &mut self.coroutines[id];
        if let State::Done = coroutine.state {
            self.trace.push(Event::AlreadyDone);
            return Ok(());
        }
        let started = std::mem::replace(&mut coroutine.started, true);
        let body = coroutine.body;
        let state = std::mem::replace(&mut coroutine.state, State::Done);
        let (flow, new_state) = match (state, body) {
            (State::Fresh, Body::Leaf(leaf)) => {
                self.run_leaf(leaf, leaf.suspends, mix(leaf.guard as u64, input))
            }
            (State::Leaf { suspends_left, acc }, Body::Leaf(leaf)) => {
                self.run_leaf(leaf, suspends_left, mix(acc, input))
            }
            (State::Fresh, Body::Script(block)) => {
                let frames = vec![Frame::new(block, false)];
                self.run_script(frames, mix(SCRIPT_SEED, input))
            }
            (State::Script { frames, acc }, Body::Script(_)) => {
                self.run_script(frames, mix(acc, input))
            }
            _ => unreachable!(),
        };
        self.coroutines[id].state = new_state;
        let result = match flow {
            Exit::Yield(value) => CoroutineResult::Yield(value),
            Exit::Return(value) => CoroutineResult::Return(value),
            Exit::Unwound(why) => return Err(why),
        };
        let (CoroutineResult::Yield(value) | CoroutineResult::Return(value)) = result;
        self.trace.push(Event::Resumed { started, result });
        *acc = mix(*acc, value);
        Ok(())
    }

    fn run_leaf(&mut self, leaf: &Leaf, suspends_left: u32, acc: u64) -> (Exit, State<'p>) {
        if suspends_left > 0 {
            let state = State::Leaf {
                suspends_left: suspends_left - 1,
                acc,
            };
            return (Exit::Yield(acc), state);
        }
        self.trace.push(Event::Dropped(leaf.guard));
        match leaf.panic {
            Some(id) => (Exit::Unwound(Unwinding::Panic(id)), State::Done),
            None => (Exit::Return(acc), State::Done),
        }
    }

    fn run_script(&mut self, mut frames: Vec<Frame<'p>>, mut acc: u64) -> (Exit, State<'p>) {
        match self.run(&mut frames, &mut acc) {
            Flow::Suspended(value) => (Exit::Yield(value), State::Script { frames, acc }),
            Flow::Finished => (Exit::Return(acc), State::Done),
            Flow::Unwound(why) => (Exit::Unwound(why), State::Done),
        }
    }
}

/// How a resume of a model coroutine ended.
enum Exit {
    Yield(u64),
    Return(u64),
    Unwound(Unwinding),
}

//! Signals arriving at any instruction of a switch must not corrupt
//! anything: the switch code may never keep data below the stack pointer,
//! where a signal handler's frame goes.
//!
//! Worker threads that switch between coroutines each arm a 10 kHz timer
//! that signals that very thread (Linux's `SIGEV_THREAD_ID`); the handler fills and checks a few hundred bytes of its own
//! frame (so it overwrites whatever lies below the interrupted stack
//! pointer), and the workers check every value passed through a switch and
//! every coroutine's own state.
//!
//! `STACKSWITCH_SIGNAL_STORM_SWITCHES`: round trips per coroutine thread
//! (default 5 000, for emulated targets; CI runs more natively).
#![cfg(all(target_os = "linux", feature = "default-stack"))]

use std::hint::black_box;
use std::ptr::{read_volatile, write_volatile};
use std::sync::atomic::{AtomicU64, Ordering};

use stackswitch::stack::DefaultStack;
use stackswitch::{Coroutine, CoroutineResult, Yielder};

const SIGNAL: libc::c_int = libc::SIGUSR2;
const WORKERS: usize = 3;
const COROUTINES_PER_WORKER: usize = 4;
/// Timer period: 10 kHz.
const SIGNAL_PERIOD_NS: i64 = 100_000;
/// Each worker goes on switching until its thread has taken this many
/// signals, so the storm is real even where switching is fast.
const MIN_SIGNALS_PER_WORKER: u64 = 500;

static HANDLER_CORRUPTIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static SIGNALS_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

extern "C" fn on_signal(_: libc::c_int) {
    // A frame of a few hundred bytes below the interrupted stack pointer,
    // written and read back.
    let mut scratch = [0u64; 48];
    for (i, word) in scratch.iter_mut().enumerate() {
        // SAFETY: a plain local.
        unsafe { write_volatile(word, (i as u64) ^ 0xa5a5_5a5a_f00d_cafe) };
    }
    for (i, word) in scratch.iter().enumerate() {
        // SAFETY: a plain local.
        if unsafe { read_volatile(word) } != (i as u64) ^ 0xa5a5_5a5a_f00d_cafe {
            HANDLER_CORRUPTIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
    black_box(&scratch);
    SIGNALS_HERE.with(|n| n.set(n.get() + 1));
}

fn install_handler() {
    // SAFETY: a zeroed, then filled, sigaction for a handler that only
    // touches its own frame, atomics and a const thread-local.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(SIGNAL, &action, std::ptr::null_mut()), 0);
    }
}

/// A timer that sends `SIGNAL` to the calling thread every
/// `SIGNAL_PERIOD_NS`, until dropped.
struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    fn start() -> Self {
        // SAFETY: plain system calls on zeroed, then filled, structs.
        unsafe {
            let mut event: libc::sigevent = std::mem::zeroed();
            event.sigev_notify = libc::SIGEV_THREAD_ID;
            event.sigev_signo = SIGNAL;
            event.sigev_notify_thread_id = libc::gettid();
            let mut timer: libc::timer_t = std::mem::zeroed();
            assert_eq!(
                libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer),
                0,
                "timer_create: {}",
                std::io::Error::last_os_error()
            );
            let period = libc::timespec {
                tv_sec: 0,
                tv_nsec: SIGNAL_PERIOD_NS as _,
            };
            let spec = libc::itimerspec {
                it_interval: period,
                it_value: period,
            };
            assert_eq!(
                libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()),
                0
            );
            ThreadTimer(timer)
        }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: our own timer, deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}

fn mix(a: u64, b: u64) -> u64 {
    (a ^ b).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23)
}

/// A coroutine that checks each input against the sequence it expects,
/// keeps a block of its own state on its stack and checks it after every
/// switch, and yields a value the worker can predict.
fn checked_coroutine(id: u64) -> Coroutine<u64, u64, u64> {
    let stack = DefaultStack::new(64 * 1024).unwrap();
    Coroutine::with_stack(stack, move |yielder: &Yielder<u64, u64>, first: u64| {
        let mut state = [0u64; 24];
        for (i, word) in state.iter_mut().enumerate() {
            *word = mix(id, i as u64);
        }
        let mut expected_input = first;
        let mut round = 0u64;
        loop {
            let sum = state.iter().fold(0, |acc, &w| mix(acc, w));
            let input = yielder.suspend(mix(expected_input, sum));
            if input == u64::MAX {
                return round;
            }
            assert_eq!(
                input,
                mix(expected_input, 1),
                "coroutine {id}: input corrupted"
            );
            for (i, word) in state.iter_mut().enumerate() {
                assert_eq!(
                    *word,
                    mix(id, i as u64 + round),
                    "coroutine {id}: its state was corrupted"
                );
                *word = mix(id, i as u64 + round + 1);
            }
            expected_input = input;
            round += 1;
        }
    })
}

fn expected_yield(id: u64, input: u64, round: u64) -> u64 {
    let sum = (0..24).fold(0, |acc, i| mix(acc, mix(id, i + round)));
    mix(input, sum)
}

/// Returns (rounds, signals taken).
fn worker(worker: u64, switches: u64) -> (u64, u64) {
    let mut coroutines: Vec<_> = (0..COROUTINES_PER_WORKER as u64)
        .map(|i| (worker * 100 + i, checked_coroutine(worker * 100 + i)))
        .collect();
    let mut inputs: Vec<u64> = coroutines.iter().map(|(id, _)| mix(*id, 77)).collect();
    let timer = ThreadTimer::start();
    let mut rounds = 0u64;
    while rounds < switches || SIGNALS_HERE.with(|n| n.get()) < MIN_SIGNALS_PER_WORKER {
        for ((id, coroutine), input) in coroutines.iter_mut().zip(inputs.iter_mut()) {
            let result = coroutine.resume(*input);
            assert_eq!(
                result,
                CoroutineResult::Yield(expected_yield(*id, *input, rounds)),
                "worker {worker}: value from coroutine {id} corrupted in round {rounds}"
            );
            *input = mix(*input, 1);
        }
        rounds += 1;
    }
    drop(timer);
    for (_, coroutine) in &mut coroutines {
        assert_eq!(
            coroutine.resume(u64::MAX),
            CoroutineResult::Return(rounds - 1)
        );
    }
    (rounds, SIGNALS_HERE.with(|n| n.get()))
}

#[test]
#[cfg_attr(
    miri,
    ignore = "needs signals and guard-page faults (Miri has neither)"
)]
fn a_storm_of_signals_corrupts_no_switch() {
    let switches = std::env::var("STACKSWITCH_SIGNAL_STORM_SWITCHES")
        .map(|v| v.parse().expect("a number"))
        // Small by default: every emulated target runs this too, several
        // times; ci/stress.sh asks for millions of switches natively.
        .unwrap_or(5_000u64);
    install_handler();
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|w| std::thread::spawn(move || worker(w, switches)))
        .collect();
    let results: Vec<(u64, u64)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(
        HANDLER_CORRUPTIONS.load(Ordering::Relaxed),
        0,
        "a handler's frame was corrupted"
    );
    let switches: Vec<u64> = results
        .iter()
        .map(|r| r.0 * COROUTINES_PER_WORKER as u64 * 2)
        .collect();
    let taken: Vec<u64> = results.iter().map(|r| r.1).collect();
    eprintln!("signals taken per worker {taken:?}; switches per worker {switches:?}");
}

//! `trap::install_overflow_reporter`: a coroutine that overflows its stack
//! says so on stderr, and the process still dies of the fault. Each case
//! runs in a child process (this test binary again).
#![cfg(all(unix, feature = "default-stack"))]

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use stackswitch::stack::{DefaultStack, Stack};
use stackswitch::{Coroutine, Yielder};

mod common;

// The trap tests' fault handler (Unix part), which recovers a faulting
// coroutine through the trap API; it needs `classify` and `recovery_for`.
// (Named so that ci/valgrind.supp's entry for its signal stacks applies.)
#[allow(dead_code)]
#[cfg(not(miri))]
#[path = "trap/unix.rs"]
mod trap_platform;
/// Under Miri there are no signals, so no handler to install (and
/// `TrapHandlerRegs` has no registers to write): the tests are ignored.
#[cfg(miri)]
mod trap_platform {
    pub fn prepare_thread() {
        unreachable!("no signals under Miri");
    }
}

thread_local! {
    /// The coroutine this thread runs under the trap handler.
    static RUNNING: std::cell::Cell<Option<stackswitch::trap::CoroutineTrapHandler<bool>>> =
        const { std::cell::Cell::new(None) };
}

/// The trap handler's view of a fault: whether it hit the running
/// coroutine's stack.
#[cfg_attr(miri, allow(dead_code))]
fn classify(addr: usize) -> bool {
    RUNNING.with(|r| r.get().is_some_and(|h| h.stack_ptr_in_bounds(addr)))
}

/// Registers that make the running coroutine return `overflowed`.
#[cfg_attr(miri, allow(dead_code))]
fn recovery_for(sp: usize, overflowed: bool) -> Option<stackswitch::trap::TrapHandlerRegs> {
    let handler = RUNNING
        .with(|r| r.get())
        .filter(|h| h.stack_ptr_in_bounds(sp))?;
    // SAFETY: the fault happened in this thread's running coroutine, whose
    // body owns nothing; the caller writes the registers back.
    Some(unsafe { handler.setup_trap_handler(move || overflowed) })
}

const CHILD: &str = "STACKSWITCH_OVERFLOW_CHILD";

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = [depth; 32];
    black_box(&frame);
    recurse_forever(depth + 1) + frame[31]
}

/// In the child: overflows a coroutine stack, first printing where its
/// guard page is for the parent to compare.
fn overflow_a_coroutine() {
    stackswitch::trap::install_overflow_reporter().unwrap();
    let stack = DefaultStack::new(64 * 1024).unwrap();
    eprintln!(
        "expect: guard below {:#x}, base {:#x}",
        stack.limit().get(),
        stack.base().get()
    );
    let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse_forever(0));
    coroutine.resume(());
}

fn run_child(test: &str) -> Output {
    let mut child = common::this_test_binary();
    child
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    // Under AddressSanitizer the child runs without ASan's SIGSEGV handler:
    // the reporter passes faults on to the handler it found, and ASan's
    // would turn the death by the signal, which these tests check, into an
    // exit with its own report. Without it std also gives each thread the
    // signal stack that the reporter needs after an overflow.
    #[cfg(stackswitch_asan)]
    child.env(
        "ASAN_OPTIONS",
        std::env::var("ASAN_OPTIONS").unwrap_or_default() + ":handle_segv=0",
    );
    child.output().unwrap()
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The child died of SIGSEGV (or SIGBUS) after reporting the overflow of
/// the stack it announced, on a thread of the given name.
fn assert_reported(output: &Output, thread: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.signal(), Some(libc::SIGSEGV | libc::SIGBUS)),
        "child should die of the fault, got {:?}; stderr:\n{stderr}",
        output.status
    );
    let expect = stderr
        .lines()
        .find_map(|line| line.strip_prefix("expect: guard below "))
        .unwrap_or_else(|| panic!("child did not announce its stack; stderr:\n{stderr}"));
    let (limit, base) = expect.split_once(", base ").unwrap();
    let wanted =
        format!("thread '{thread}' overflowed a coroutine stack (guard page at {limit}, stack ");
    let line = stderr
        .lines()
        .find(|line| line.starts_with(&wanted))
        .unwrap_or_else(|| panic!("no report of the overflow; stderr:\n{stderr}"));
    assert!(
        line.ends_with(&format!("-{base})")),
        "wrong stack range in {line:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn overflow_on_a_named_thread_is_reported() {
    if in_child() {
        std::thread::Builder::new()
            .name("overflower".into())
            .spawn(overflow_a_coroutine)
            .unwrap()
            .join()
            .unwrap();
        return;
    }
    let output = run_child("overflow_on_a_named_thread_is_reported");
    assert_reported(&output, "overflower");
}

#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn other_faults_are_not_reported_and_still_kill() {
    if in_child() {
        stackswitch::trap::install_overflow_reporter().unwrap();
        let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| {
            // SAFETY: faults on purpose.
            unsafe { std::ptr::read_volatile(black_box(0x20usize) as *const u64) }
        });
        coroutine.resume(());
        return;
    }
    let output = run_child("other_faults_are_not_reported_and_still_kill");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "stderr:\n{stderr}"
    );
    assert!(!stderr.contains("overflowed"), "stderr:\n{stderr}");
}

#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn an_overflow_recovered_through_the_trap_api_is_not_reported() {
    if in_child() {
        // The sandbox's order: its recovering handler first, the reporter
        // after it.
        trap_platform::prepare_thread();
        stackswitch::trap::install_overflow_reporter().unwrap();
        let stack = DefaultStack::new(64 * 1024).unwrap();
        let mut coroutine = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
            recurse_forever(0);
            false
        });
        RUNNING.with(|r| r.set(Some(coroutine.trap_handler())));
        assert_eq!(coroutine.resume(()).as_return(), Some(true));
        RUNNING.with(|r| r.set(None));
        eprintln!("recovered");
        return;
    }
    let output = run_child("an_overflow_recovered_through_the_trap_api_is_not_reported");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{:?}; stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains("recovered"), "stderr:\n{stderr}");
    assert!(!stderr.contains("overflowed"), "stderr:\n{stderr}");
}

//! `std::process::exit` called inside a coroutine that a `thread_local!`
//! owns: the C library's `exit` runs the thread's TLS destructors, which
//! drop the coroutine while it runs on its own stack. The process must exit
//! with the status asked for: nothing unwound, no fault, no abort. Each case
//! runs in a child process (this test binary again); `cargo test` and
//! `cargo test --release` cover both builds.
#![cfg(all(unix, feature = "default-stack"))]

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;

use stackswitch::Coroutine;

mod common;

const CHILD: &str = "STACKSWITCH_EXIT_CHILD";

thread_local! {
    static KEPT: RefCell<Option<Coroutine<(), u32, ()>>> = const { RefCell::new(None) };
}

fn exit_inside_a_kept_coroutine(suspend_first: bool) {
    KEPT.with(|kept| {
        *kept.borrow_mut() = Some(Coroutine::new(move |yielder, ()| {
            let _frame_value = String::from("never dropped: its stack is leaked");
            if suspend_first {
                yielder.suspend(1);
            }
            std::process::exit(42);
        }));
        let mut kept = kept.borrow_mut();
        let coroutine = kept.as_mut().unwrap();
        if suspend_first {
            assert_eq!(coroutine.resume(()).as_yield(), Some(1));
        }
        coroutine.resume(());
    });
    unreachable!("exit returned");
}

fn run_child(test: &str) {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let output = common::this_test_binary()
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        None,
        "the child died of a signal; stderr:\n{stderr}"
    );
    assert_eq!(output.status.code(), Some(42), "stderr:\n{stderr}");
    assert!(!stderr.contains("stackswitch"), "stderr:\n{stderr}");
}

#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn exit_in_a_thread_local_coroutine_on_its_first_run() {
    run_child("exit_in_a_thread_local_coroutine_on_its_first_run");
    if std::env::var_os(CHILD).is_some() {
        exit_inside_a_kept_coroutine(false);
    }
}

#[test]
#[cfg_attr(miri, ignore = "starts a child process (Miri runs none)")]
fn exit_in_a_thread_local_coroutine_after_a_suspend() {
    run_child("exit_in_a_thread_local_coroutine_after_a_suspend");
    if std::env::var_os(CHILD).is_some() {
        exit_inside_a_kept_coroutine(true);
    }
}

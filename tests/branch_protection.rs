//! BTI landing pads at every indirect-branch target of the switch code,
//! checked where the CPU enforces them: AArch64 Linux (or qemu-aarch64 with
//! `-cpu max`) with the crate built under `-Zbranch-protection=bti`, which
//! makes build.rs set `stackswitch_bti`.
//!
//! A loader enforces BTI only for code whose ELF carries the BTI property,
//! which a linker gives an executable only if every object in it has it (the
//! C start files of most distributions do not). So this test guards its own
//! code pages the way the loader would, with `mprotect(PROT_BTI)`, inside a
//! child process: the test is meant for a build where every Rust object has
//! landing pads (`-Zbuild-std`), and the child never returns into the C
//! start files. An indirect branch to anything but a landing pad then raises
//! SIGILL.
#![cfg(all(stackswitch_bti, target_arch = "aarch64", target_os = "linux"))]

use std::arch::naked_asm;
use std::fs;

use stackswitch::{Coroutine, CoroutineResult};

/// `PROT_BTI` of `<asm/mman.h>` on AArch64 Linux: the pages are guarded.
const PROT_BTI: libc::c_int = 0x10;

/// Makes every executable mapping of this program's own file guarded.
fn guard_own_code() {
    let exe = fs::read_link("/proc/self/exe").expect("/proc/self/exe");
    let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let mut guarded = 0;
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].contains('x') || fields[5] != exe.to_str().unwrap() {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = usize::from_str_radix(start, 16).unwrap();
        let end = usize::from_str_radix(end, 16).unwrap();
        // SAFETY: the range is a mapping of our own code; only its
        // protection changes, to the same access plus the BTI guard.
        let status = unsafe {
            libc::mprotect(
                start as *mut libc::c_void,
                end - start,
                libc::PROT_READ | libc::PROT_EXEC | PROT_BTI,
            )
        };
        assert_eq!(status, 0, "mprotect(PROT_BTI) failed: {line}");
        guarded += 1;
    }
    assert!(guarded > 0, "no executable mapping of {exe:?} found");
}

/// Runs `f` in a child process with the code guarded and returns how the
/// child ended (a `waitpid` status). The child leaves with `_exit`, so it
/// never reaches the unguarded C start files' exit code.
fn in_guarded_child(f: fn()) -> libc::c_int {
    // SAFETY: the test binary runs this on one thread at a time (the only
    // test in this file), and the child only runs `f` and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        guard_own_code();
        let passed = std::panic::catch_unwind(f).is_ok();
        // SAFETY: ends the child without running exit handlers.
        unsafe { libc::_exit(if passed { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

/// A function without a landing pad (naked functions get none from the
/// compiler), to show that the guard is enforced.
#[unsafe(naked)]
extern "C" fn without_landing_pad() {
    naked_asm!("ret")
}

/// Calls `without_landing_pad` through a pointer, with `blr`.
fn branch_to_code_without_landing_pad() {
    let f: extern "C" fn() = std::hint::black_box(without_landing_pad);
    f();
}

/// Starts, suspends, resumes, finishes, unwinds and drops coroutines, and
/// runs code on the parent's stack: every indirect branch of the switch.
fn use_every_switch_path() {
    let mut coroutine = Coroutine::new(|yielder, first: u32| {
        let mut sum = first;
        for i in 0..3 {
            sum += yielder.suspend(i);
        }
        sum += yielder.on_parent_stack(|| 100);
        sum
    });
    assert_eq!(coroutine.resume(1), CoroutineResult::Yield(0));
    assert_eq!(coroutine.resume(2), CoroutineResult::Yield(1));
    assert_eq!(coroutine.resume(3), CoroutineResult::Yield(2));
    assert_eq!(coroutine.resume(4), CoroutineResult::Return(110));

    // A panic unwinds out of the coroutine (its message silenced).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panicking = Coroutine::<(), (), ()>::new(|_, ()| panic!("expected"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking.resume(())));
    std::panic::set_hook(hook);
    assert!(caught.is_err());

    // A suspended coroutine is unwound when dropped.
    let mut suspended = Coroutine::<(), (), ()>::new(|yielder, ()| {
        let _keep = String::from("on the coroutine stack");
        yielder.suspend(());
    });
    assert_eq!(suspended.resume(()), CoroutineResult::Yield(()));
    drop(suspended);
}

#[test]
fn landing_pads_under_bti() {
    // The control: the guard really is enforced here.
    let status = in_guarded_child(branch_to_code_without_landing_pad);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGILL,
        "a branch to code without a landing pad did not raise SIGILL \
         (status {status:#x}): BTI is not enforced, so this test proves nothing"
    );

    // The switch code under the same guard.
    let status = in_guarded_child(use_every_switch_path);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the switch code failed under BTI (status {status:#x}, \
         signal {}: SIGILL means a landing pad is missing)",
        if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        }
    );
}

//! Backtraces taken inside a coroutine continue into whoever resumed it.
#![cfg(feature = "default-stack")]

use stackswitch::stack::DefaultStack;
use stackswitch::{on_stack, Coroutine, Yielder};

/// Symbol names of the current call stack, innermost first.
fn symbol_names() -> Vec<String> {
    let mut names = Vec::new();
    backtrace::trace(|frame| {
        backtrace::resolve_frame(frame, |symbol| {
            if let Some(name) = symbol.name() {
                names.push(format!("{name:#}"));
            }
        });
        names.len() < 200
    });
    names
}

/// Index of the first frame whose name contains `needle`.
fn position(names: &[String], needle: &str) -> usize {
    names
        .iter()
        .position(|n| n.contains(needle))
        .unwrap_or_else(|| panic!("no frame `{needle}` in:\n{}", names.join("\n")))
}

#[inline(never)]
fn resumer_marker(coroutine: &mut Coroutine<(), (), Vec<String>>) -> Vec<String> {
    let names = coroutine.resume(()).as_return().unwrap();
    std::hint::black_box(names)
}

#[inline(never)]
fn inside_marker() -> Vec<String> {
    std::hint::black_box(symbol_names())
}

#[test]
#[cfg_attr(
    miri,
    ignore = "walks stack frames with a native unwinder (not under Miri)"
)]
fn backtrace_crate_walks_into_the_resumer() {
    let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| inside_marker());
    let names = resumer_marker(&mut coroutine);
    let inside = position(&names, "inside_marker");
    let resumer = position(&names, "resumer_marker");
    // The test's own frame is the last one named after it (its closure,
    // running in the coroutine, is named after it too).
    let test = names
        .iter()
        .rposition(|n| n.ends_with("backtrace_crate_walks_into_the_resumer"))
        .unwrap();
    assert!(inside < resumer && resumer < test, "{names:#?}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "walks stack frames with a native unwinder (not under Miri)"
)]
fn backtrace_after_suspending_follows_the_latest_resumer() {
    #[inline(never)]
    fn second_resumer_marker(
        coroutine: &mut Coroutine<(), Vec<String>, Vec<String>>,
    ) -> Vec<String> {
        coroutine.resume(()).as_return().unwrap()
    }
    let mut coroutine = Coroutine::new(|y: &Yielder<(), Vec<String>>, ()| {
        y.suspend(inside_marker());
        inside_marker()
    });
    let first = coroutine.resume(()).as_yield().unwrap();
    assert!(!first.iter().any(|n| n.contains("second_resumer_marker")));
    let second = second_resumer_marker(&mut coroutine);
    assert!(position(&second, "inside_marker") < position(&second, "second_resumer_marker"));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "walks stack frames with a native unwinder (not under Miri)"
)]
fn std_backtrace_walks_into_the_resumer() {
    let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| {
        vec![std::backtrace::Backtrace::force_capture().to_string()]
    });
    let text = resumer_marker(&mut coroutine).remove(0);
    let resumer = text.find("resumer_marker").expect(&text);
    let test = text
        .rfind("std_backtrace_walks_into_the_resumer")
        .expect(&text);
    assert!(resumer < test, "{text}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "walks stack frames with a native unwinder (not under Miri)"
)]
fn backtraces_cross_on_stack_and_on_parent_stack() {
    #[inline(never)]
    fn on_stack_caller_marker() -> Vec<String> {
        on_stack(DefaultStack::new(128 * 1024).unwrap(), inside_marker)
    }
    let names = on_stack_caller_marker();
    assert!(position(&names, "inside_marker") < position(&names, "on_stack_caller_marker"));

    let mut coroutine = Coroutine::new(|y: &Yielder<(), ()>, ()| {
        #[inline(never)]
        fn in_coroutine_marker(y: &Yielder<(), ()>) -> Vec<String> {
            // black_box keeps this frame: without it AArch64 (whose sret
            // pointer need not be returned) turns the call into a tail call.
            std::hint::black_box(y.on_parent_stack(inside_marker))
        }
        in_coroutine_marker(y)
    });
    let names = resumer_marker(&mut coroutine);
    let order = [
        position(&names, "inside_marker"),
        position(&names, "in_coroutine_marker"),
        position(&names, "resumer_marker"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{names:#?}");
}

/// Frame-pointer unwinders (perf, eBPF profilers) see the same linked chain.
/// Built by CI with `-C force-frame-pointers=yes --cfg stackswitch_fp_test`.
#[cfg(all(
    stackswitch_fp_test,
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
#[cfg_attr(
    miri,
    ignore = "walks stack frames with a native unwinder (not under Miri)"
)]
fn frame_pointer_chain_reaches_the_resumer() {
    /// Return addresses along the frame-pointer chain, up to the resumer's frame.
    #[inline(never)]
    fn walk_frame_pointers() -> Vec<String> {
        let mut fp: usize;
        // SAFETY: reads the frame pointer.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("mov {}, rbp", out(reg) fp)
        };
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            std::arch::asm!("mov {}, x29", out(reg) fp)
        };
        let mut names = Vec::new();
        for _ in 0..64 {
            // SAFETY: with frame pointers forced, every frame up to the
            // resumer's (where the walk stops) has a record [prev rbp, ra].
            let (prev, ra) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
            backtrace::resolve((ra - 1) as *mut std::ffi::c_void, |symbol| {
                if let Some(name) = symbol.name() {
                    names.push(format!("{name:#}"));
                }
            });
            if names.iter().any(|n| n.ends_with("resumer_marker")) || prev == 0 {
                break;
            }
            fp = prev;
        }
        names
    }
    let mut coroutine = Coroutine::new(|_: &Yielder<(), ()>, ()| walk_frame_pointers());
    let names = resumer_marker(&mut coroutine);
    assert!(
        names.iter().any(|n| n.contains("coroutine_start")),
        "{names:#?}"
    );
    assert!(
        names.last().unwrap().ends_with("resumer_marker"),
        "{names:#?}"
    );
}

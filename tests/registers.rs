//! Every callee-saved register survives a switch, in both directions.
//!
//! `arch::with_pattern(seed, f, data, after)` (one file per ABI under
//! `registers/`) saves the caller's callee-saved registers, sets every
//! callee-saved integer, floating-point and vector register `i` (in the order
//! of `arch::REGISTERS`; vector registers count once per 64-bit half) to
//! `seed + i + 1`, calls `f(data)`, stores what those registers hold
//! afterwards into `after[i]`, and restores the caller's registers.
//! Parent and coroutine use different seeds, so a register the switch fails
//! to save shows up as holding the other side's pattern.

use stackswitch::{Coroutine, CoroutineResult, Yielder};

#[cfg(all(target_arch = "x86_64", not(windows)))]
#[path = "registers/x86_64.rs"]
mod arch;
#[cfg(target_arch = "riscv64")]
#[path = "registers/riscv64.rs"]
mod arch;
#[cfg(target_arch = "loongarch64")]
#[path = "registers/loongarch64.rs"]
mod arch;
#[cfg(all(target_arch = "x86_64", windows))]
#[path = "registers/x86_64_windows.rs"]
mod arch;
#[cfg(all(target_arch = "x86", windows))]
#[path = "registers/x86_windows.rs"]
mod arch;
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[path = "registers/arm.rs"]
mod arch;
#[cfg(target_arch = "aarch64")]
#[path = "registers/aarch64.rs"]
mod arch;
#[cfg(all(target_arch = "x86", not(windows)))]
#[path = "registers/x86.rs"]
mod arch;
#[cfg(target_arch = "powerpc64")]
#[path = "registers/powerpc64.rs"]
mod arch;
#[cfg(target_arch = "s390x")]
#[path = "registers/s390x.rs"]
mod arch;

const PARENT_SEED: u64 = 0x5a5a_0000_0000_0000;
const COROUTINE_SEED: u64 = 0x3c3c_0000_0000_0000;

type Thunk = unsafe extern "C" fn(*mut u8);

/// Runs `f(data)` with the pattern for `seed` live; returns the registers
/// that lost their value.
fn clobbered_by(seed: u64, f: Thunk, data: *mut u8) -> Vec<&'static str> {
    let mut after = [0u64; 128];
    assert!(arch::REGISTERS.len() <= after.len());
    // SAFETY: `f` follows the thunk ABI and `after` has room for every register.
    unsafe { arch::with_pattern(seed, f, data, after.as_mut_ptr()) };
    (0..arch::REGISTERS.len())
        .filter(|&i| after[i] != seed + i as u64 + 1)
        .map(|i| arch::REGISTERS[i])
        .collect()
}

unsafe extern "C" fn suspend_three_times(data: *mut u8) {
    // SAFETY: `data` is the running coroutine's yielder.
    let yielder = unsafe { &*(data as *const Yielder<(), ()>) };
    for _ in 0..3 {
        yielder.suspend(());
    }
}

unsafe extern "C" fn resume_once(data: *mut u8) {
    // SAFETY: `data` is the test's coroutine, not otherwise borrowed now.
    let coroutine = unsafe { &mut *(data as *mut Coroutine<(), (), Vec<&str>>) };
    assert!(coroutine.resume(()).as_yield().is_some());
}

#[test]
#[cfg_attr(miri, ignore = "inline asm in the test itself (Miri runs none)")]
fn callee_saved_registers_survive_switches() {
    let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
        let data = yielder as *const Yielder<(), ()> as *mut u8;
        clobbered_by(COROUTINE_SEED, suspend_three_times, data)
    });
    // Each resume runs with the parent's pattern live in every register.
    for round in 0..3 {
        let data = &mut coroutine as *mut Coroutine<(), (), Vec<&str>> as *mut u8;
        let lost = clobbered_by(PARENT_SEED + round * 0x1000, resume_once, data);
        assert!(
            lost.is_empty(),
            "parent registers clobbered by a resume: {lost:?}"
        );
    }
    match coroutine.resume(()) {
        CoroutineResult::Return(lost) => {
            assert!(
                lost.is_empty(),
                "coroutine registers clobbered across a suspend: {lost:?}"
            )
        }
        CoroutineResult::Yield(()) => panic!("the coroutine should have finished"),
    }
}

#[test]
#[cfg_attr(miri, ignore = "inline asm in the test itself (Miri runs none)")]
fn the_pattern_check_detects_a_clobber() {
    // The check itself must be able to fail: a thunk that overwrites every
    // pattern register must be reported (this is what a broken switch does).
    // `clobber` breaks the callee-saved contract only towards
    // `with_pattern`, which restores the caller's registers itself.
    let lost = clobbered_by(PARENT_SEED, arch::clobber, std::ptr::null_mut());
    assert_eq!(lost, arch::REGISTERS);
}

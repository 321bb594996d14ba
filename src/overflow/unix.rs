//! The overflow reporter on Unix: a SIGSEGV/SIGBUS handler that reports a
//! fault in a registered guard page, then hands the signal to whatever
//! handler was there before (std's, usually), or to the default action.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;
use std::io;
use std::sync::Once;

use super::{find, report, Message, ENABLED};

/// The signals a guard page fault raises (SIGBUS on some BSDs and macOS).
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The actions installed before ours, one per entry of `SIGNALS`. Written
/// once, before our handler is installed; read-only afterwards.
struct Previous(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written only inside `INSTALL.call_once`, before any handler that
// reads it exists; shared reads afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([MaybeUninit::uninit(); 2]));
static INSTALL: Once = Once::new();

/// Makes stack overflows in coroutines report themselves before the process
/// dies.
///
/// After this call, a fault in the guard page of a
/// [`DefaultStack`](crate::stack::DefaultStack) made after it writes, to
/// standard error,
///
/// ```text
/// thread 'main' overflowed a coroutine stack (guard page at 0x7f…, stack 0x7f…-0x7f…)
/// ```
///
/// when the fault is about to kill the process, which dies of the signal as
/// before. The fault goes first to the handler that was installed before
/// the call, if any (Rust's own, which reports overflows of thread stacks
/// and restores the default action for other faults). The report is
/// written only if there was no such handler, or if it returns having
/// restored the default action: a handler that recovers (see
/// [`CoroutineTrapHandler`](crate::trap::CoroutineTrapHandler)) gets no
/// false report, and one that ends the process itself gets none either.
/// Stacks made before the call, and stacks of other types, are not
/// reported; call it early in `main`. Calling it again does nothing.
///
/// The handler runs on the thread's alternate signal stack (std gives every
/// thread it starts one), uses only async-signal-safe calls and never
/// allocates. At most 4096 stacks are tracked at once; overflows of others
/// are not reported. Unix only.
///
/// ```
/// stackswitch::trap::install_overflow_reporter().unwrap();
/// let mut coroutine = stackswitch::Coroutine::<(), (), u32>::new(|_, ()| 7);
/// assert_eq!(coroutine.resume(()).as_return(), Some(7));
/// ```
pub fn install_overflow_reporter() -> io::Result<()> {
    let mut result = Ok(());
    INSTALL.call_once(|| result = install());
    result
}

fn install() -> io::Result<()> {
    // SAFETY: `PREVIOUS` is ours alone until a handler is installed, and
    // the sigaction structs are fully initialised before use.
    unsafe {
        let previous = &mut *PREVIOUS.0.get();
        for (signal, previous) in SIGNALS.iter().zip(previous.iter_mut()) {
            if libc::sigaction(*signal, core::ptr::null(), previous.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Register from now on, before the handler can look.
        ENABLED.store(true, Ordering::SeqCst);
        for signal in SIGNALS {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, core::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

unsafe extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler,
    // and SIGSEGV/SIGBUS carry the fault address.
    let overflowed = find(unsafe { fault_address(info) });
    // SAFETY: `PREVIOUS` was filled in before this handler was installed.
    let previous = unsafe {
        let index = SIGNALS.iter().position(|&s| s == signal).unwrap_or(0);
        (*PREVIOUS.0.get())[index].assume_init_ref()
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Returning re-runs the faulting instruction, which now gets the
        // default action: the process dies of this signal, as it would have
        // (a fault's signal cannot be ignored).
        if let Some(stack) = overflowed {
            write_report(stack);
        }
        // SAFETY: `signal` is async-signal-safe.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
        return;
    }
    // The earlier handler goes first: it may recover (rewrite the
    // interrupted context, as the trap API does, or map the memory), or
    // never return (longjmp, exit). Only when it returns having put the
    // default action back (Rust's does so for faults not its own) does
    // the fault recur and kill the process.
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO handler has this signature; we pass on what
        // the kernel gave us.
        unsafe {
            let handler: unsafe extern "C" fn(
                libc::c_int,
                *mut libc::siginfo_t,
                *mut libc::c_void,
            ) = core::mem::transmute(handler);
            handler(signal, info, context)
        }
    } else {
        // SAFETY: a plain handler takes the signal number only.
        unsafe {
            let handler: unsafe extern "C" fn(libc::c_int) = core::mem::transmute(handler);
            handler(signal)
        }
    }
    if let Some(stack) = overflowed {
        if action_is_default(signal) {
            write_report(stack);
        }
    }
}

/// Whether `signal`'s action is now the default one (or ignoring it, which
/// for a fault amounts to the same). Async-signal-safe.
fn action_is_default(signal: libc::c_int) -> bool {
    let mut current = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: sigaction(2) is async-signal-safe; with a null new action it
    // only fills in `current`.
    let current = unsafe {
        if libc::sigaction(signal, core::ptr::null(), current.as_mut_ptr()) != 0 {
            return false;
        }
        current.assume_init()
    };
    current.sa_sigaction == libc::SIG_DFL || current.sa_sigaction == libc::SIG_IGN
}

fn write_report(stack: super::Overflowed) {
    let mut name = [0u8; 32];
    write_stderr(&report(thread_name(&mut name), stack));
}

/// # Safety
/// `info` must be the siginfo of a SIGSEGV or SIGBUS.
unsafe fn fault_address(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: forwarded.
    unsafe { (*info).si_addr() as usize }
}

fn write_stderr(message: &Message) {
    let mut bytes = message.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: write(2) is async-signal-safe; the buffer is valid.
        let written = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if written <= 0 {
            return;
        }
        bytes = &bytes[written as usize..];
    }
}

/// The current thread's name, as std reports it: "main" for the main
/// thread, else the name the kernel keeps (which std sets, cut to 15 bytes).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn thread_name(buf: &mut [u8; 32]) -> &[u8] {
    // SAFETY: gettid, getpid and prctl(PR_GET_NAME) are plain system calls;
    // PR_GET_NAME writes at most 16 bytes, NUL included.
    unsafe {
        if libc::gettid() == libc::getpid() {
            return b"main";
        }
        if libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) != 0 {
            return b"<unnamed>";
        }
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..len]
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn thread_name(_buf: &mut [u8; 32]) -> &[u8] {
    b"<unknown>"
}

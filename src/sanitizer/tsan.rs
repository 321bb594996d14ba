//! ThreadSanitizer's fiber interface (`sanitizer/tsan_interface.h`), as the
//! hooks in `fibers.rs` call it. Empty, inlined functions unless the crate
//! is built with `-Zsanitizer=thread`.

#[cfg(sanitize = "thread")]
mod imp {
    use core::ffi::{c_uint, c_void};
    use core::sync::atomic::{AtomicUsize, Ordering};

    extern "C" {
        fn __tsan_get_current_fiber() -> *mut c_void;
        fn __tsan_create_fiber(flags: c_uint) -> *mut c_void;
        fn __tsan_destroy_fiber(fiber: *mut c_void);
        fn __tsan_switch_to_fiber(fiber: *mut c_void, flags: c_uint);
    }

    /// # Safety
    /// None; `unsafe` only to match the other hooks.
    #[inline]
    pub(in crate::sanitizer) unsafe fn create_fiber() -> *mut c_void {
        // SAFETY: no preconditions.
        unsafe { __tsan_create_fiber(0) }
    }

    /// # Safety
    /// None; `unsafe` only to match the other hooks.
    #[inline]
    pub(in crate::sanitizer) unsafe fn current_fiber() -> *mut c_void {
        // SAFETY: no preconditions.
        unsafe { __tsan_get_current_fiber() }
    }

    /// Inlined: the caller must return on the fiber it started on (see
    /// the module documentation).
    ///
    /// # Safety
    /// A switch to the stack that `fiber` runs on must follow at once, in
    /// the same function.
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn switch_to_fiber(fiber: *mut c_void) {
        // SAFETY: forwarded to the caller. Flags 0: the switch synchronises.
        unsafe { __tsan_switch_to_fiber(fiber, 0) }
    }

    /// Runs the signal handlers that TSan holds back for the current fiber.
    ///
    /// TSan defers an asynchronous signal to the thread's next interceptor
    /// or atomic operation, and queues it on the fiber that was current
    /// when it arrived: a parked fiber's signals wait until it runs again
    /// (forever, if it never does), however busy the thread is. An atomic
    /// operation delivers them, so the hooks make one just before every
    /// switch away and just after every switch in.
    #[inline(always)]
    pub(in crate::sanitizer) fn deliver_deferred_signals() {
        static PROBE: AtomicUsize = AtomicUsize::new(0);
        core::hint::black_box(PROBE.load(Ordering::Relaxed));
    }

    /// # Safety
    /// `fiber` (if not null) must not be current and never be used again.
    #[inline]
    pub(in crate::sanitizer) unsafe fn destroy_fiber(fiber: *mut c_void) {
        if !fiber.is_null() {
            // SAFETY: forwarded to the caller.
            unsafe { __tsan_destroy_fiber(fiber) }
        }
    }
}

#[cfg(not(sanitize = "thread"))]
mod imp {
    use core::ffi::c_void;
    use core::ptr;

    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn create_fiber() -> *mut c_void {
        ptr::null_mut()
    }
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn current_fiber() -> *mut c_void {
        ptr::null_mut()
    }
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn switch_to_fiber(_fiber: *mut c_void) {}
    #[inline(always)]
    pub(in crate::sanitizer) fn deliver_deferred_signals() {}
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn destroy_fiber(_fiber: *mut c_void) {}
}

pub(super) use imp::*;

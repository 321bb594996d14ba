//! AddressSanitizer's fiber interface (`sanitizer/common_interface_defs.h`),
//! as the hooks in `fibers.rs` call it. Empty, inlined functions unless the
//! crate is built with `-Zsanitizer=address`.

#[cfg(sanitize = "address")]
mod imp {
    use core::ffi::c_void;
    use core::ptr;

    use crate::sanitizer::StackBounds;

    extern "C" {
        fn __sanitizer_start_switch_fiber(
            fake_stack_save: *mut *mut c_void,
            bottom: *const c_void,
            size: usize,
        );
        fn __sanitizer_finish_switch_fiber(
            fake_stack_save: *mut c_void,
            bottom_old: *mut *const c_void,
            size_old: *mut usize,
        );
        fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    }

    /// # Safety
    /// A switch to `target` must follow.
    #[inline]
    pub(in crate::sanitizer) unsafe fn start_switch_fiber(
        save: &mut *mut c_void,
        target: StackBounds,
    ) {
        // SAFETY: forwarded to the caller.
        unsafe { __sanitizer_start_switch_fiber(save, target.bottom, target.size) }
    }

    /// Like `start_switch_fiber`, for a fiber that will never run again:
    /// ASan destroys its fake stack.
    ///
    /// # Safety
    /// As for `start_switch_fiber`, and nothing may use the fake stack.
    #[inline]
    pub(in crate::sanitizer) unsafe fn start_switch_fiber_for_good(target: StackBounds) {
        // SAFETY: forwarded to the caller.
        unsafe { __sanitizer_start_switch_fiber(ptr::null_mut(), target.bottom, target.size) }
    }

    /// # Safety
    /// Must follow a switch that `start_switch_fiber` announced; `saved` is
    /// what the fiber now running parked when it last switched away.
    #[inline]
    pub(in crate::sanitizer) unsafe fn finish_switch_fiber(
        saved: *mut c_void,
        left: Option<&mut StackBounds>,
    ) {
        let (bottom, size) = match left {
            Some(bounds) => (&mut bounds.bottom as *mut _, &mut bounds.size as *mut _),
            None => (ptr::null_mut(), ptr::null_mut()),
        };
        // SAFETY: forwarded to the caller; the out-pointers are valid.
        unsafe { __sanitizer_finish_switch_fiber(saved, bottom, size) }
    }

    /// Destroys the parked fake stack of a fiber that will never run again.
    ///
    /// ASan only destroys a fake stack when its fiber switches away for
    /// good, so this pretends to switch into that fiber and out of it again
    /// without leaving the current stack. No code runs in between.
    ///
    /// # Safety
    /// `fake_stack` must be parked (or null) and never be reinstated.
    #[inline(never)]
    pub(in crate::sanitizer) unsafe fn destroy_fake_stack(fake_stack: *mut c_void) {
        if fake_stack.is_null() {
            return;
        }
        let mut own_fake_stack = ptr::null_mut();
        let mut own = StackBounds::UNKNOWN;
        // SAFETY: each start is followed by its finish; the bounds of the
        // current stack, learnt from the first finish, are reinstated by
        // the second, and so is our own fake stack.
        unsafe {
            start_switch_fiber(&mut own_fake_stack, StackBounds::UNKNOWN);
            finish_switch_fiber(fake_stack, Some(&mut own));
            start_switch_fiber_for_good(own);
            finish_switch_fiber(own_fake_stack, None);
        }
    }

    /// # Safety
    /// The memory must be ours and unused.
    #[inline]
    pub(in crate::sanitizer) unsafe fn unpoison(addr: *const c_void, size: usize) {
        // SAFETY: forwarded to the caller.
        unsafe { __asan_unpoison_memory_region(addr, size) }
    }
}

#[cfg(not(sanitize = "address"))]
mod imp {
    use core::ffi::c_void;

    use crate::sanitizer::StackBounds;

    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn start_switch_fiber(
        _save: &mut *mut c_void,
        _target: StackBounds,
    ) {
    }
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn start_switch_fiber_for_good(_target: StackBounds) {}
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn finish_switch_fiber(
        _saved: *mut c_void,
        _left: Option<&mut StackBounds>,
    ) {
    }
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn destroy_fake_stack(_fake_stack: *mut c_void) {}
    #[inline(always)]
    pub(in crate::sanitizer) unsafe fn unpoison(_addr: *const c_void, _size: usize) {}
}

pub(super) use imp::*;

//! The control stack (GCS) that goes with a coroutine stack, where the
//! switch follows one (AArch64 Linux, built with `-Zbranch-protection=gcs`:
//! see `arch/aarch64.rs`). Elsewhere it is an empty type that has none.

use super::super::StackPointer;

#[cfg(all(stackswitch_gcs, target_arch = "aarch64", target_os = "linux"))]
pub(crate) use self::gcs::ShadowStack;

#[cfg(all(stackswitch_gcs, target_arch = "aarch64", target_os = "linux"))]
mod gcs {
    use super::StackPointer;

    /// `map_shadow_stack(2)` (the same number on every Linux arch).
    const SYS_MAP_SHADOW_STACK: libc::c_long = 453;
    /// Its flag that puts a cap token in the top word.
    const SHADOW_STACK_SET_TOKEN: libc::c_ulong = 1;

    /// A control stack mapped on first use, unmapped when dropped.
    #[derive(Debug)]
    pub(crate) struct ShadowStack {
        /// Highest address (exclusive); 0 while none is mapped.
        top: usize,
        len: usize,
    }

    /// The cap token that `gcsss1` accepts at `address`.
    fn cap_token(address: usize) -> usize {
        (address & !0xfff) | 1
    }

    impl ShadowStack {
        /// None mapped yet.
        pub(crate) const fn new() -> Self {
            ShadowStack { top: 0, len: 0 }
        }

        /// The top of a control stack with its cap in the top word, for a
        /// coroutine on a stack of `stack_len` bytes: mapped on the first
        /// call, and again if the cap is gone (a coroutine left without
        /// exiting). `None` if the kernel refuses.
        pub(crate) fn prepare(&mut self, stack_len: usize) -> Option<StackPointer> {
            if self.top != 0 {
                // SAFETY: our mapping, readable (GCS pages refuse only
                // ordinary stores), and no coroutine runs on it: the stack
                // it goes with is borrowed mutably by the caller.
                let cap = unsafe { core::ptr::read_volatile((self.top - 8) as *const usize) };
                if cap == cap_token(self.top - 8) {
                    return StackPointer::new(self.top);
                }
                self.unmap();
            }
            // Every frame that calls takes at least 16 bytes of data stack
            // and one 8-byte entry here: half the data stack always fits.
            let len = (stack_len / 2).next_multiple_of(super::super::page_size());
            // SAFETY: asks for a fresh mapping; reads no memory of ours.
            let address =
                unsafe { libc::syscall(SYS_MAP_SHADOW_STACK, 0usize, len, SHADOW_STACK_SET_TOKEN) };
            if address == -1 {
                return None;
            }
            self.top = address as usize + len;
            self.len = len;
            StackPointer::new(self.top)
        }

        fn unmap(&mut self) {
            if self.top != 0 {
                // SAFETY: exactly the mapping made by `prepare`; the stack it
                // goes with runs nothing (we are borrowed mutably or
                // dropped).
                let ret = unsafe { libc::munmap((self.top - self.len) as *mut _, self.len) };
                debug_assert_eq!(ret, 0, "munmap of a control stack failed");
                self.top = 0;
            }
        }
    }

    impl Drop for ShadowStack {
        fn drop(&mut self) {
            self.unmap();
        }
    }
}

/// No shadow stack where the switch follows none.
#[cfg(not(all(stackswitch_gcs, target_arch = "aarch64", target_os = "linux")))]
#[derive(Debug)]
pub(crate) struct ShadowStack;

#[cfg(not(all(stackswitch_gcs, target_arch = "aarch64", target_os = "linux")))]
impl ShadowStack {
    pub(crate) const fn new() -> Self {
        ShadowStack
    }

    #[inline(always)]
    pub(crate) fn prepare(&mut self, _stack_len: usize) -> Option<StackPointer> {
        None
    }
}

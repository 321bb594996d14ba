//! Telling Valgrind where coroutine stacks are.
//!
//! [`ValgrindStackRegistration`] registers memory of a custom
//! [`Stack`](super::Stack) as a stack for as long as it lives;
//! [`DefaultStack`](super::DefaultStack) and the stacks of a
//! [`StackPool`](super::StackPool) register themselves.
//!
//! Valgrind watches the stack pointer; a jump of it to another region looks
//! like a huge stack allocation ("client switching stacks?") unless both
//! regions are registered stacks. A client request is a special no-op
//! instruction sequence that Valgrind's JIT recognises; on a real CPU it
//! does nothing and returns the default value. Only x86-64 has it here;
//! elsewhere the requests are empty.

/// `VG_USERREQ__STACK_REGISTER` and `VG_USERREQ__STACK_DEREGISTER` from
/// `valgrind.h` (`'S' << 8` plus 1 and 2).
const STACK_REGISTER: usize = 0x1501;
const STACK_DEREGISTER: usize = 0x1502;
/// `VG_USERREQ__MAKE_MEM_NOACCESS`, `VG_USERREQ__MAKE_MEM_UNDEFINED` and
/// `VG_USERREQ__MAKE_MEM_DEFINED` from `memcheck.h` (`'M' << 24 | 'C' <<
/// 16`, plus 0, 1 and 2). Other tools ignore them.
const MAKE_MEM_NOACCESS: usize = 0x4d43_0000;
const MAKE_MEM_UNDEFINED: usize = 0x4d43_0001;
const MAKE_MEM_DEFINED: usize = 0x4d43_0002;

/// Makes a client request and returns Valgrind's answer, or `default` when
/// not running under Valgrind.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn client_request(default: usize, request: [usize; 6]) -> usize {
    let result;
    // SAFETY: four rotations of rdi by 128 bits in all leave it unchanged,
    // and `xchg rbx, rbx` changes nothing either; only the flags change.
    // Under Valgrind, the sequence reads the request block at rax and puts
    // the answer in rdx.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") request.as_ptr(),
            inout("rdx") default => result,
            options(nostack, readonly),
        );
    }
    result
}

/// Elsewhere (and under Miri, which is not Valgrind and runs no inline
/// asm) there is no Valgrind to ask.
#[cfg(any(not(target_arch = "x86_64"), miri))]
#[inline(always)]
fn client_request(default: usize, _request: [usize; 6]) -> usize {
    default
}

/// Registers a region of memory as a stack with Valgrind until dropped, so
/// that switching to and from it is not taken for a huge stack allocation.
/// Outside Valgrind (and on CPUs other than x86-64) it does nothing.
///
/// ```
/// use stackswitch::stack::valgrind::ValgrindStackRegistration;
///
/// let mut memory = vec![0u8; 64 * 1024];
/// let registration = ValgrindStackRegistration::new(memory.as_mut_ptr(), memory.len());
/// // ... run coroutines on a `Stack` made of `memory` ...
/// drop(registration); // before the memory goes
/// ```
#[derive(Debug)]
pub struct ValgrindStackRegistration {
    id: usize,
}

impl ValgrindStackRegistration {
    /// Registers the `len` bytes at `addr` as a stack.
    #[inline]
    pub fn new(addr: *mut u8, len: usize) -> Self {
        let start = addr as usize;
        ValgrindStackRegistration {
            id: register_stack(start, start.wrapping_add(len)),
        }
    }
}

impl Drop for ValgrindStackRegistration {
    /// Deregisters the stack.
    #[inline]
    fn drop(&mut self) {
        deregister_stack(self.id);
    }
}

/// Registers `[limit, base)` as a stack; returns its Valgrind id (0 when
/// not under Valgrind).
#[inline]
pub(in crate::stack) fn register_stack(limit: usize, base: usize) -> usize {
    client_request(0, [STACK_REGISTER, limit, base, 0, 0, 0])
}

/// Forgets a stack registered by [`register_stack`].
#[inline]
pub(in crate::stack) fn deregister_stack(id: usize) {
    client_request(0, [STACK_DEREGISTER, id, 0, 0, 0, 0]);
}

#[cfg_attr(any(not(all(unix, feature = "default-stack")), miri), allow(dead_code))]
/// Tells memcheck that `start..start + len` must not be accessed (a guard
/// page it cannot know of).
#[inline]
pub(in crate::stack) fn make_mem_noaccess(start: usize, len: usize) {
    client_request(0, [MAKE_MEM_NOACCESS, start, len, 0, 0, 0]);
}

#[cfg_attr(any(not(all(unix, feature = "default-stack")), miri), allow(dead_code))]
/// Tells memcheck that `start..start + len` holds defined values, before a
/// stack scan reads it. Memcheck marks a stack's memory inaccessible as the
/// frames on it return, so reading what they left is an error otherwise;
/// the scan reads it on purpose, and whatever is there is now its value.
#[inline]
pub(in crate::stack) fn make_mem_defined(start: usize, len: usize) {
    client_request(0, [MAKE_MEM_DEFINED, start, len, 0, 0, 0]);
}

/// Tells memcheck that `start..start + len` may be written, before the
/// stack it belongs to is written from outside (a large closure put on a
/// reused stack): memcheck took what lies below the last frames that
/// returned there for dead stack, and writing it would be an error.
#[inline]
pub(crate) fn make_mem_undefined(start: usize, len: usize) {
    client_request(0, [MAKE_MEM_UNDEFINED, start, len, 0, 0, 0]);
}

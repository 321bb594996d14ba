//! s390x: r6-r13 and f8-f15 are callee-saved (r14 and r15 are the return
//! address and the stack pointer, exercised by every switch).

use std::arch::naked_asm;

pub const REGISTERS: &[&str] = &[
    "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "f8", "f9", "f10", "f11", "f12", "f13",
    "f14", "f15",
];

/// See `registers.rs`. r2 = seed, r3 = f, r4 = data, r5 = after.
#[unsafe(naked)]
pub unsafe extern "C" fn with_pattern(
    seed: u64,
    f: unsafe extern "C" fn(*mut u8),
    data: *mut u8,
    after: *mut u64,
) {
    naked_asm!(
        // Save the caller's r6-r15 in its save area (as any function does), then
        // open a frame: +160 f8-f15, +224 after.
        "stmg %r6, %r15, 48(%r15)",
        "aghi %r15, -232",
        "std %f8, 160(%r15)",
        "std %f9, 168(%r15)",
        "std %f10, 176(%r15)",
        "std %f11, 184(%r15)",
        "std %f12, 192(%r15)",
        "std %f13, 200(%r15)",
        "std %f14, 208(%r15)",
        "std %f15, 216(%r15)",
        "stg %r5, 224(%r15)",
        // Register i gets seed + i + 1.
        "la %r6, 1(%r2)",
        "la %r7, 2(%r2)",
        "la %r8, 3(%r2)",
        "la %r9, 4(%r2)",
        "la %r10, 5(%r2)",
        "la %r11, 6(%r2)",
        "la %r12, 7(%r2)",
        "la %r13, 8(%r2)",
        "la %r0, 9(%r2)",
        "ldgr %f8, %r0",
        "la %r0, 10(%r2)",
        "ldgr %f9, %r0",
        "la %r0, 11(%r2)",
        "ldgr %f10, %r0",
        "la %r0, 12(%r2)",
        "ldgr %f11, %r0",
        "la %r0, 13(%r2)",
        "ldgr %f12, %r0",
        "la %r0, 14(%r2)",
        "ldgr %f13, %r0",
        "la %r0, 15(%r2)",
        "ldgr %f14, %r0",
        "la %r0, 16(%r2)",
        "ldgr %f15, %r0",
        // f(data)
        "lgr %r1, %r3",
        "lgr %r2, %r4",
        "basr %r14, %r1",
        // Record what the registers hold now.
        "lg %r5, 224(%r15)",
        "stmg %r6, %r13, 0(%r5)",
        "std %f8, 64(%r5)",
        "std %f9, 72(%r5)",
        "std %f10, 80(%r5)",
        "std %f11, 88(%r5)",
        "std %f12, 96(%r5)",
        "std %f13, 104(%r5)",
        "std %f14, 112(%r5)",
        "std %f15, 120(%r5)",
        // Restore the caller's registers and return.
        "ld %f8, 160(%r15)",
        "ld %f9, 168(%r15)",
        "ld %f10, 176(%r15)",
        "ld %f11, 184(%r15)",
        "ld %f12, 192(%r15)",
        "ld %f13, 200(%r15)",
        "ld %f14, 208(%r15)",
        "ld %f15, 216(%r15)",
        "lmg %r6, %r15, 280(%r15)",
        "br %r14",
    )
}

/// Overwrites every pattern register, as a broken switch would.
#[unsafe(naked)]
pub unsafe extern "C" fn clobber(_data: *mut u8) {
    naked_asm!(
        "lghi %r6, -1",
        "lghi %r7, -1",
        "lghi %r8, -1",
        "lghi %r9, -1",
        "lghi %r10, -1",
        "lghi %r11, -1",
        "lghi %r12, -1",
        "lghi %r13, -1",
        "ldgr %f8, %r6",
        "ldgr %f9, %r6",
        "ldgr %f10, %r6",
        "ldgr %f11, %r6",
        "ldgr %f12, %r6",
        "ldgr %f13, %r6",
        "ldgr %f14, %r6",
        "ldgr %f15, %r6",
        "br %r14",
    )
}

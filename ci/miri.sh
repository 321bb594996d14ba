#!/usr/bin/env bash
# The test suite under Miri (nightly), which checks every memory access,
# every hand-off between threads (each coroutine runs on a thread of its
# own there: src/arch/miri.rs) and the aliasing rules. Fails if a test
# fails or if Miri reports anything at all (undefined behaviour, a data
# race, a leak, an unsupported operation, even a warning).
#
# Tests that cannot run under Miri are ignored next to their definition,
# with the reason (`#[cfg_attr(miri, ignore = "...")]`): signals and guard
# pages, child processes, native backtraces, register checks, addresses of
# frames inside stack memory, and tests that leak a started coroutine on
# purpose (force_reset), which the second pass below runs with leak checks
# off.
#
# Aliasing model: Stacked Borrows, Miri's default, so that this checks what
# users get from a plain `cargo miri test` of their own code; it is also
# the stricter model for the reference patterns here (the integration
# tests pass under `-Zmiri-tree-borrows` too).
#
# MIRIFLAGS:
# - `-Zmiri-permissive-provenance`: the generic code (and the `Stack`
#   trait) deals in stack addresses as integers, as the asm backends need,
#   and casts them back to pointers. Memory the library hands out as an
#   address has its provenance exposed first, so those casts are defined
#   (exposed provenance); this flag only silences Miri's warning that it
#   then checks them less precisely.
# - Isolation stays on (no `-Zmiri-disable-isolation`): nothing here needs
#   the host.
#
#   ci/miri.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

ci/setup.sh miri

export MIRIFLAGS="-Zmiri-permissive-provenance ${MIRIFLAGS:-}"
failed=0

# Any report from Miri fails the run, even where the test itself passed.
no_reports() {
    # The name run_tests gives its log.
    local log="$CI_LOG_DIR/$(echo "$1" | tr -c 'A-Za-z0-9_.-' '_').log"
    if grep -nE '^(error|warning)(\[|:)|Undefined Behavior|data race' "$log"; then
        echo "FAILED: Miri reported the above in $1"
        CI_TOTAL_FAILED=$((CI_TOTAL_FAILED + 1))
        return 1
    fi
}

start=$(date +%s)
# Unit, integration and doc tests (examples are built, not run).
run_tests miri-tests cargo +nightly miri test --no-fail-fast || failed=1
no_reports miri-tests || failed=1

# Tests that leak a started coroutine on purpose (`force_reset`, and the
# random programs, which use it): its thread stays blocked for ever, which
# Miri reports like any leak. Everything else is still checked. (A
# coroutine that swallows its forced unwind is unwound again until it
# completes, so those tests run in the first pass, leak checks on.)
MIRIFLAGS="$MIRIFLAGS -Zmiri-ignore-leaks" run_tests miri-leaking \
    cargo +nightly miri test --test coroutine --test random_programs -- \
    --ignored force_reset_skips programs_match fuzz_body \
    || failed=1
no_reports miri-leaking || failed=1

# Miri interprets other targets too: a Windows one, where the OS hooks of
# the asm backends (the TEB's stack fields) must stay out of the Miri
# build. The core tests, interpreted as x86_64 Windows.
run_tests miri-windows cargo +nightly miri test --target x86_64-pc-windows-gnu \
    --target-dir target/miri-windows --test coroutine --test unwind || failed=1
no_reports miri-windows || failed=1

# The features that change how panics and stacks are handled natively
# (`asm-unwind`: panics through the switch; `sanitizer`: ASan/TSan hooks)
# fall back to what Miri can run; the core tests check that under each.
for feature in asm-unwind sanitizer; do
    run_tests "miri-$feature" cargo +nightly miri test --features "$feature" \
        --target-dir "target/miri-$feature" --test coroutine --test unwind || failed=1
    no_reports "miri-$feature" || failed=1
done

# A user's program: creates, resumes, drops, panics through and nests
# coroutines.
step "miri-example: cargo +nightly miri run --example miri_check"
if cargo +nightly miri run --example miri_check >"$CI_LOG_DIR/miri-example_.log" 2>&1; then
    CI_TOTAL_PASSED=$((CI_TOTAL_PASSED + 1))
    no_reports miri-example || failed=1
else
    tail -n 40 "$CI_LOG_DIR/miri-example_.log"
    CI_TOTAL_FAILED=$((CI_TOTAL_FAILED + 1))
    failed=1
fi

echo "miri: $CI_TOTAL_PASSED passed, $CI_TOTAL_FAILED failed, $(( $(date +%s) - start )) s"
exit $failed

#!/usr/bin/env bash
# The test suite under AddressSanitizer and ThreadSanitizer (nightly), with
# the `sanitizer` feature telling them about every stack switch. Fails if a
# test fails or if a sanitizer reports anything at all, in the test binaries
# or in the child processes some tests start (reports go to log files, so
# that tests reading a child's stderr are not disturbed).
#
#   ci/sanitizers.sh              both
#   ci/sanitizers.sh address      only ASan (or: thread)
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

host=x86_64-unknown-linux-gnu
# -Zbuild-std (nightly's rust-src): the standard library must be
# instrumented too (rustc refuses to mix sanitized and unsanitized crates).
ci/setup.sh host

sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address thread)

# Tests that cannot pass under a sanitizer, with the reason:
# - Locals whose address is taken live on ASan's fake stack (a heap-like
#   area, for catching use-after-return), so these tests, which check that
#   a local is on a given stack (or that a 16 KiB one uses 16 KiB of it),
#   run in a second pass without it.
fake_stack_sensitive=(on_stack_runs_a_closure_on_another_stack on_parent_stack_runs_on_the_parent_stack
    remaining_stack_counts_down_from_the_stack_size high_water_mark_counts_what_ran_through_on_stack)
fake_stack_tests=(--test coroutine --test stack_usage --test stack_accounting)

# - The `force_reset` doc test leaks on purpose (its documented behaviour),
#   so it runs in a third pass without leak checking. rustdoc splits test
#   arguments at spaces: "force_reset (line" skips it without touching the
#   test binaries' `force_reset_*` tests, "force_reset" alone selects it.
#   So do the children of tests/process_exit.rs, which call
#   `std::process::exit` from a coroutine inside a test thread: exit runs
#   no destructor, and what the test harness holds is then reported.
leaks_on_purpose=force_reset
exits_on_purpose=exit_in_a_thread_local_coroutine

# - TSan only: TSan maps a shadow call stack and a trace for every fiber,
#   so every coroutine (one fiber each) adds two mappings, which this test
#   counts to check that 20,000 pooled stacks take few.
tsan_skips=(slab::twenty_thousand_guarded_coroutines_from_one_slab)
# - TSan: TSan's own fatal-signal handler would pre-empt the overflow
#   reporter that these check, so they run in a second pass without it
#   (handle_segv=0), by themselves: there, a fault inside the TSan runtime
#   would run an instrumented handler and could deadlock.
tsan_own_fault_handler=(overflow_on_a_named_thread_is_reported other_faults_are_not_reported_and_still_kill)

skips() { local t; for t in "$@"; do printf -- '--skip\n%s\n' "$t"; done; }

status=0
for sanitizer in "${sanitizers[@]}"; do
    reports="$CI_LOG_DIR/sanitizer-$sanitizer"
    rm -rf "$reports"
    mkdir -p "$reports"
    # Every process writes its reports to $reports/report.<pid>; none may
    # appear. Leak checking stays on; ci/lsan.supp lists the leaks tests
    # make on purpose. use_sigaltstack=0: the trap tests install their own
    # signal stack, which ASan would otherwise try to unmap at thread exit.
    common="log_path=$reports/report:halt_on_error=1"
    asan="$common:detect_leaks=1:use_sigaltstack=0:check_initialization_order=1:strict_init_order=1"
    export LSAN_OPTIONS="suppressions=$PWD/ci/lsan.supp:print_suppressions=0"
    export TSAN_OPTIONS="$common"
    export RUSTFLAGS="-Zsanitizer=$sanitizer" RUSTDOCFLAGS="-Zsanitizer=$sanitizer"
    # Tests that cannot work under ASan say so (`stackswitch_asan`).
    [ "$sanitizer" = address ] && RUSTFLAGS="$RUSTFLAGS --cfg stackswitch_asan"
    # A deadlock inside a sanitizer's runtime (seen once under TSan) must
    # fail the step, not hang CI: 20 minutes covers a cold -Zbuild-std.
    cargo_test=(timeout -k 30 1200 cargo +nightly test -Zbuild-std --target "$host" --features sanitizer
        --target-dir "target/sanitizer-$sanitizer" --no-fail-fast)
    if [ "$sanitizer" = address ]; then
        mapfile -t skip_args < <(skips "${fake_stack_sensitive[@]}" "$leaks_on_purpose (line" "$exits_on_purpose")
    else
        # TSan has no fake stack and no leak checker: only its own skips.
        mapfile -t skip_args < <(skips "${tsan_skips[@]}" "${tsan_own_fault_handler[@]}")
    fi
    start=$SECONDS
    ASAN_OPTIONS="$asan:detect_stack_use_after_return=1" run_tests "$sanitizer sanitizer" \
        "${cargo_test[@]}" -- "${skip_args[@]}" || status=1
    if [ "$sanitizer" = address ]; then
        ASAN_OPTIONS="$asan:detect_stack_use_after_return=0" run_tests "$sanitizer sanitizer, no fake stack" \
            "${cargo_test[@]}" "${fake_stack_tests[@]}" -- "${fake_stack_sensitive[@]}" || status=1
        ASAN_OPTIONS="$asan:detect_leaks=0" run_tests "$sanitizer sanitizer, no leak check" \
            "${cargo_test[@]}" --doc -- "$leaks_on_purpose" || status=1
        ASAN_OPTIONS="$asan:detect_leaks=0" run_tests "$sanitizer sanitizer, exits without leak check" \
            "${cargo_test[@]}" --test process_exit -- "$exits_on_purpose" || status=1
    else
        TSAN_OPTIONS="$common:handle_segv=0:handle_sigbus=0" run_tests "$sanitizer sanitizer, own fault handlers" \
            "${cargo_test[@]}" --test overflow_report -- "${tsan_own_fault_handler[@]}" || status=1
    fi
    if [ -n "$(ls -A "$reports")" ]; then
        echo "FAILED: the $sanitizer sanitizer reported:"
        for report in "$reports"/*; do
            echo "--- $report"
            head -n 60 "$report"
        done
        status=1
    else
        echo "    no $sanitizer sanitizer reports"
    fi
    echo "    $sanitizer sanitizer: $((SECONDS - start)) s"
    unset ASAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS RUSTFLAGS RUSTDOCFLAGS
done
exit $status

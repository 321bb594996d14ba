#!/usr/bin/env bash
# Long runs of the stress tests (native debug build), then a short fuzzing
# session over the same random programs (cargo-fuzz, from ci/setup.sh).
#
#   ci/stress.sh                 everything
#   FUZZ_SECONDS=0 ci/stress.sh  skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

# A test that must run and pass: `cargo test` exits 0 when a filter matches
# nothing, so the passed count is checked too.
must_pass() {
    local test=$1
    shift
    local log
    log=$(mktemp)
    if ! "$@" cargo test --test "$test" -- --nocapture >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAILED: $test"
        return 1
    fi
    grep -E 'match the model|signals taken' "$log" || true
    grep -q '^test result: ok\. [1-9]' "$log" || { tail -n 30 "$log"; echo "FAILED: $test ran nothing"; return 1; }
}

# ~200 000 random programs (about 40 s here).
must_pass random_programs env STACKSWITCH_STRESS_CASES="${STRESS_CASES:-200000}"
# ~5 million switches under a 10 kHz signal storm per thread.
must_pass signal_storm env STACKSWITCH_SIGNAL_STORM_SWITCHES="${SIGNAL_STORM_SWITCHES:-200000}"

fuzz_seconds=${FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" -gt 0 ]; then
    ci/setup.sh fuzz
    # No sanitizer: ASan cannot follow stack switches (it needs fiber
    # annotations) and its larger frames overflow MIN_STACK_SIZE stacks.
    # `cargo fuzz run` exits non-zero on a crash or a mismatch with the
    # model (pipefail passes that on through `tail`).
    (cd fuzz && cargo +nightly fuzz run -s none programs -- -max_total_time="$fuzz_seconds" 2>&1 | tail -n 3)
fi

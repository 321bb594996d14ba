#!/usr/bin/env bash
# The full test suite: installs what it needs (idempotently), then builds and
# runs every test on every supported target. This is what CI runs.
#
#   ci/test-all.sh            everything
#   ci/test-all.sh host       only the native x86_64 Linux part
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(all)
wants_all() { local g; for g in "${groups[@]}"; do [ "$g" = all ] && return 0; done; return 1; }
wants() { wants_all && return 0; local g; for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }

status=0
fail() { status=1; }

if wants host; then
    ci/setup-host.sh || fail
    # The feature combinations the specification names, each in debug and
    # release: no features (no_std, build only), `default-stack` without
    # `unwind`, and the defaults.
    run_checked "no_std build" cargo build --lib --no-default-features || fail
    run_checked "no_std build (release)" cargo build --lib --no-default-features --release || fail
    for profile in debug release; do
        flag=""; [ "$profile" = release ] && flag=--release
        run_tests "host $profile default-stack" test $flag --no-default-features --features default-stack || fail
        run_tests "host $profile default" test $flag || fail
        run_checked "host $profile examples" ci/examples.sh $flag || fail
    done
    # The async bridge under tokio and the futures executor.
    run_tests "host executors" test -p stackswitch-integration || fail
    # Panics unwinding straight through the switch (nightly's asm_unwind).
    for flag in "" --release; do
        run_tests "host nightly asm-unwind $flag" +nightly test $flag --features asm-unwind --target-dir target/nightly || fail
    done
    # Frame-pointer unwinders follow the chain into the resumer.
    RUSTFLAGS="-C force-frame-pointers=yes --cfg stackswitch_fp_test" \
        run_tests "host frame pointers" test --test backtrace --target-dir target/frame-pointers || fail
    run_checked "two versions in one binary" ci/two-versions.sh || fail
    run_checked "gdb backtrace" ci/gdb-backtrace.sh || fail
    run_checked "benches compile" cargo check -p stackswitch-bench --benches || fail
fi

step "summary"
echo "$CI_TOTAL_PASSED passed, $CI_TOTAL_FAILED failed"
exit $status

#!/usr/bin/env bash
# The full test suite: installs what it needs (idempotently), then builds and
# runs every test on every supported target. This is what CI runs.
#
#   ci/test-all.sh            everything
#   ci/test-all.sh host       only the native x86_64 Linux part
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
rm -f "$CI_FAILURES_FILE"

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(all)
wants_all() { local g; for g in "${groups[@]}"; do [ "$g" = all ] && return 0; done; return 1; }
wants() { wants_all && return 0; local g; for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }

status=0
fail() { status=1; }

if wants host; then
    ci/setup.sh host || fail
    # The feature combinations the specification names, each in debug and
    # release: no features (no_std, build only), `default-stack` without
    # `unwind`, and the defaults.
    # Every module uses only modules below it: no cycles.
    run_checked "module graph" python3 ci/module-graph.py || fail
    run_checked "no_std build" cargo build --lib --no-default-features || fail
    run_checked "no_std build (release)" cargo build --lib --no-default-features --release || fail
    for profile in debug release; do
        flag=""; [ "$profile" = release ] && flag=--release
        run_tests "host $profile default-stack" cargo test $flag --no-default-features --features default-stack || fail
        run_tests "host $profile default" cargo test $flag || fail
        run_checked "host $profile examples" ci/examples.sh $flag || fail
    done
    # The async bridge under tokio and the futures executor.
    run_tests "host executors" cargo test -p stackswitch-integration || fail
    # Panics unwinding straight through the switch (nightly's asm_unwind).
    for flag in "" --release; do
        run_tests "host nightly asm-unwind $flag" cargo +nightly test $flag --features asm-unwind --target-dir target/nightly || fail
    done
    # Frame-pointer unwinders follow the chain into the resumer.
    RUSTFLAGS="-C force-frame-pointers=yes --cfg stackswitch_fp_test" \
        run_tests "host frame pointers" cargo test --test backtrace --target-dir target/frame-pointers || fail
    # Landing pads under x86 IBT and AArch64 BTI/pac-ret (nightly; about 7
    # minutes from cold, mostly an AArch64 -Zbuild-std).
    run_checked "control-flow protection" ci/cfi-protect.sh || fail
    # AArch64 shadow stacks (GCS) under a qemu that has them.
    run_checked "shadow stacks (AArch64 GCS)" ci/gcs.sh || fail
    run_checked "stack pool guard pages, both kinds" ci/stack-pool.sh || fail
    run_checked "two versions in one binary" ci/two-versions.sh || fail
    # The example gallery (outputs compared) and warning-free API docs.
    run_checked "gallery and docs" ci/gallery.sh || fail
    # A corosensei program, unchanged, against stackswitch.
    run_checked "migration from corosensei" ci/migration.sh || fail
    run_checked "gdb backtrace" ci/gdb-backtrace.sh || fail
    # Random programs against a model, a signal storm, and fuzzing.
    run_checked "stress" ci/stress.sh || fail
    # The suite under ASan and TSan (nightly, `sanitizer` feature), and
    # under Valgrind's memcheck; each fails on any report.
    run_checked "sanitizers" ci/sanitizers.sh || fail
    run_checked "valgrind" ci/valgrind.sh || fail
    # The suite under Miri (a thread per coroutine there), failing on any
    # report.
    run_checked "miri" ci/miri.sh || fail
    run_checked "benches compile" cargo check -p stackswitch-bench --benches --bins || fail
    run_checked "bench smoke (icount under callgrind)" ci/bench-smoke.sh || fail
fi

# The other targets, from ci/targets (which says what each row's `tests`
# means): those whose tests run here, under an emulator or wine, and those
# that are only built or checked.
mapfile -t RUN_TARGETS < <(ci_targets tests=run)
mapfile -t NO_STD_TARGETS < <(ci_targets tests=no_std)
mapfile -t CHECK_TARGETS < <(ci_targets tests=check)
mapfile -t APPLE_TARGETS < <(ci_targets tests=apple)

if wants cross; then
    mapfile -t setup_groups < <(for t in $(ci_targets); do ci_target_field "$t" setup; done | awk '!seen[$0]++')
    run_checked "cross set-up" ci/setup.sh "${setup_groups[@]}" || fail
    source ci/env.sh
    for target in "${RUN_TARGETS[@]}"; do
        # Children of a test binary must be started through the emulator
        # too (no binfmt here); wine starts them by itself.
        runner_var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUNNER"
        export STACKSWITCH_TEST_RUNNER="${!runner_var:-}"
        case "$target" in *-windows-*) STACKSWITCH_TEST_RUNNER= ; stackswitch_ci_wine_up ;; esac
        for profile in debug release; do
            flag=""; [ "$profile" = release ] && flag=--release
            run_tests "$target $profile default" stackswitch_ci_cargo "$target" test $flag || fail
            run_tests "$target $profile default-stack" \
                stackswitch_ci_cargo "$target" test $flag --no-default-features --features default-stack || fail
            run_checked "$target $profile examples" ci/examples.sh --target "$target" $flag || fail
        done
    done
    unset STACKSWITCH_TEST_RUNNER
    stackswitch_ci_wine_down
    for target in "${NO_STD_TARGETS[@]}"; do
        run_checked "$target no_std build" stackswitch_ci_cargo "$target" build --lib --no-default-features || fail
    done
    for target in "${CHECK_TARGETS[@]}"; do
        run_checked "$target check" stackswitch_ci_cargo "$target" check --all-targets || fail
        run_checked "$target build" stackswitch_ci_cargo "$target" build --lib || fail
    done
    for target in "${APPLE_TARGETS[@]}"; do
        run_checked "$target check" stackswitch_ci_cargo "$target" check --all-targets || fail
        run_checked "$target build" stackswitch_ci_cargo "$target" build --lib --release || fail
    done
fi

step "summary"
ci_print_failures
echo "$CI_TOTAL_PASSED passed, $CI_TOTAL_FAILED failed"
exit $status

#!/usr/bin/env bash
# Every test binary (debug, default features) under Valgrind's memcheck,
# child processes included. Fails if a test fails or if memcheck reports any
# error in any process: invalid accesses, uses of uninitialised values, and
# definite leaks (ci/valgrind.supp lists what tests do on purpose).
# DefaultStack and the pool register their stacks with Valgrind, so switches
# between them are not mistaken for wild stack-pointer jumps; the pool tells
# memcheck about the guard pages it cannot see (MADV_GUARD_INSTALL), and
# stack scans (high-water marks) tell it they read dead frames on purpose.
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

ci/setup.sh valgrind

logs="$CI_LOG_DIR/valgrind"
rm -rf "$logs"
mkdir -p "$logs"
start=$SECONDS

# The test harnesses among the artifacts (not the examples).
binaries=$(cargo test --no-run --message-format=json 2>/dev/null |
    grep '"test":true' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
[ -n "$binaries" ] || { echo "FAILED: no test binaries"; exit 1; }

# One log per process (%p); the tests start children through
# STACKSWITCH_TEST_RUNNER, so they run under Valgrind too.
valgrind=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --suppressions="$PWD/ci/valgrind.supp" --log-file="$logs/%p.log")
export STACKSWITCH_TEST_RUNNER="${valgrind[*]}"

status=0
total=0
for binary in $binaries; do
    name=$(basename "$binary")
    out="$logs/$name.out"
    "${valgrind[@]}" "$binary" >"$out" 2>&1
    code=$?
    result=$(grep '^test result:' "$out")
    passed=$(echo "$result" | grep -o '[0-9]* passed' | cut -d' ' -f1)
    echo "    $name: ${result:-no test result} (exit $code)"
    if [ "$code" -ne 0 ] || ! echo "$result" | grep -q '^test result: ok'; then
        tail -n 40 "$out"
        status=1
    fi
    total=$((total + ${passed:-0}))
done

# Every process, children included, must have ended with no errors.
processes=$(ls "$logs"/*.log | wc -l)
clean=$(grep -l 'ERROR SUMMARY: 0 errors' "$logs"/*.log | wc -l)
echo "    $total tests passed; $clean of $processes processes clean under memcheck"
if [ "$clean" -ne "$processes" ]; then
    for log in $(grep -L 'ERROR SUMMARY: 0 errors' "$logs"/*.log); do
        echo "--- $log"
        head -n 60 "$log"
    done
    status=1
fi
echo "    valgrind: $((SECONDS - start)) s"
exit $status

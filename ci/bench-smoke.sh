#!/usr/bin/env bash
# Smoke test of the comparison benchmarks' instruction counter: every
# operation of stackswitch runs under callgrind, and its count per operation
# is positive (the full comparison is bench/run.sh). Then issue 5's target:
# in every operation, inlined in a loop or called as its own function,
# stackswitch takes no more instructions than corosensei. About 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh valgrind
cargo build --release -p stackswitch-bench --bin icount
icount=${CARGO_TARGET_DIR:-target}/release/icount

instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$icount" "$@" 2>&1 |
        awk '/Collected :/ { print $4 }'
}

status=0
for operation in switch switch-unit call call-owned create; do
    small=$(instructions stackswitch "$operation" 1000)
    large=$(instructions stackswitch "$operation" 2000)
    per_op=$(( (large - small) / 1000 ))
    echo "stackswitch $operation: $per_op instructions per operation (loop included)"
    if [ -z "$small" ] || [ -z "$large" ] || [ "$per_op" -le 0 ]; then
        echo "FAILED: icount stackswitch $operation (counts: '$small', '$large')"
        status=1
    fi
done

# Counts are exact, so any excess is a regression, not noise.
for mode in inline outlined; do
    for operation in switch switch-unit call call-owned create; do
        ours=$(( $(instructions stackswitch "$operation" 2000 "$mode") - $(instructions stackswitch "$operation" 1000 "$mode") ))
        theirs=$(( $(instructions corosensei "$operation" 2000 "$mode") - $(instructions corosensei "$operation" 1000 "$mode") ))
        echo "$operation ($mode), per 1000 operations: stackswitch $ours, corosensei $theirs"
        if [ "$ours" -gt "$theirs" ]; then
            echo "FAILED: stackswitch takes more instructions than corosensei for $operation ($mode)"
            status=1
        fi
    done
done
exit $status

#!/usr/bin/env bash
# Measures stackswitch side by side with its peers and writes the report:
#
#   bench/run.sh
#
# 1. instruction counts per operation under callgrind (src/bin/icount.rs),
#    for every library and operation, inlined in a loop and called through a
#    function of its own;
# 2. the criterion comparison (benches/compare.rs), all in one run;
# 3. bench/results/compare.md (table, machine, command) and compare.svg
#    (bar chart), by bench/report.py.
#
# Takes about 5 minutes on 2 cores once built. Installs valgrind if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
results=bench/results
mkdir -p "$results"

if ! command -v valgrind >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends valgrind
fi

libraries=(stackswitch corosensei context generator wasmtime-fiber)
operations=(switch switch-unit call call-owned create)
# Callgrind counts are exact, so N only has to make start-up noise vanish
# (it is identical for both runs anyway).
n1=5000
n2=10000

echo "=== building"
nice -n 10 cargo build --release -p stackswitch-bench --bin icount
nice -n 10 cargo bench -p stackswitch-bench --bench compare --no-run
icount=target/release/icount

# Instructions of one run: prints the count, or "n/a" if the library has no
# equivalent of the operation (icount exits with 2).
instructions() {
    local out status=0
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$icount" "$@" 2>&1) || status=$?
    if [ "$status" -eq 2 ]; then
        echo n/a
        return
    fi
    if [ "$status" -ne 0 ]; then
        echo "icount $* failed:" >&2
        echo "$out" >&2
        return 1
    fi
    echo "$out" | awk '/Collected :/ { print $4 }'
}

echo "=== instruction counts (callgrind)"
tsv="$results/icount.tsv"
: >"$tsv"
for mode in inline outlined; do
    for operation in "${operations[@]}"; do
        for library in baseline "${libraries[@]}"; do
            small=$(instructions "$library" "$operation" $n1 $mode)
            if [ "$small" = n/a ]; then
                per_op=n/a
            else
                large=$(instructions "$library" "$operation" $n2 $mode)
                per_op=$(awk -v a="$small" -v b="$large" -v n=$((n2 - n1)) 'BEGIN { printf "%.2f", (b - a) / n }')
            fi
            printf '%s\t%s\t%s\t%s\n' "$library" "$operation" "$mode" "$per_op" | tee -a "$tsv"
        done
    done
done

echo "=== criterion"
rm -rf target/criterion/compare_*
cargo bench -p stackswitch-bench --bench compare

echo "=== report"
python3 bench/report.py target/criterion "$tsv" "$results" "bench/run.sh"
echo "wrote $results/compare.md and $results/compare.svg"

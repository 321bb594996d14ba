# Shared helpers for the CI scripts. Source it; it defines functions and the
# running counts of passed and failed steps.

# Sourcing it again (ci/env.sh does) keeps the counts so far.
CI_TOTAL_PASSED=${CI_TOTAL_PASSED:-0}
CI_TOTAL_FAILED=${CI_TOTAL_FAILED:-0}
CI_LOG_DIR=${CI_LOG_DIR:-${TMPDIR:-/tmp}/stackswitch-ci-logs}
mkdir -p "$CI_LOG_DIR"

step() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }

# run_tests LABEL COMMAND...
# Runs a `cargo test` command, shows its result lines, and fails unless every
# test binary (and the doc tests) printed a passing `test result:` line. This
# catches runners that exit 0 without running anything (wine does).
run_tests() {
    local label=$1
    shift
    local log="$CI_LOG_DIR/$(echo "$label" | tr -c 'A-Za-z0-9_.-' '_').log"
    step "$label: $*"
    local status=0
    "$@" >"$log" 2>&1 || status=$?
    grep -E '^(test result:|     Running|   Doc-tests)' "$log" | sed 's/^/    /'
    local binaries results passed failed
    binaries=$(grep -cE '^(     Running|   Doc-tests)' "$log" || true)
    results=$(grep -c '^test result: ' "$log" || true)
    passed=$(grep -o '^test result: [a-zA-Z]*\. [0-9]* passed' "$log" | awk '{s+=$4} END {print s+0}')
    failed=$(grep -o '[0-9]* failed;' "$log" | awk '{s+=$1} END {print s+0}')
    CI_TOTAL_PASSED=$((CI_TOTAL_PASSED + passed))
    CI_TOTAL_FAILED=$((CI_TOTAL_FAILED + failed))
    if [ "$status" -ne 0 ] || [ "$results" -ne "$binaries" ] || [ "$binaries" -eq 0 ] || [ "$failed" -ne 0 ]; then
        ci_record_failure "$label (exit $status, $results results for $binaries test binaries)" "$log"
        CI_TOTAL_FAILED=$((CI_TOTAL_FAILED + 1))
        return 1
    fi
    echo "    ok: $passed passed"
}

# Every failure's label and excerpt, printed again by `ci_print_failures`
# at the end of the run, where a reader of only the end of the log sees them.
CI_FAILURES_FILE="$CI_LOG_DIR/failures"

# ci_record_failure LABEL [LOG]: prints and records a failed step. With a
# `cargo test` log, the excerpt is what explains the failure: the
# `failures:` sections (each failed test's own output, such as a doc test's
# exit status and stderr) when there are some, else the log's last lines
# (a build error, a crashed test binary).
ci_record_failure() {
    local label=$1 log=${2:-}
    {
        echo "FAILED: $label"
        if [ -z "$log" ]; then
            :
        elif grep -q '^failures:$' "$log"; then
            sed -n '/^failures:$/,/^test result:/p' "$log" | head -n 60
        else
            tail -n 40 "$log"
        fi
    } | tee -a "$CI_FAILURES_FILE"
}

# ci_print_failures: the failures recorded so far, with their excerpts.
ci_print_failures() {
    [ -s "$CI_FAILURES_FILE" ] || return 0
    echo "failed steps, with their excerpts:"
    cat "$CI_FAILURES_FILE"
}

# run_checked LABEL COMMAND...: a command that must succeed.
run_checked() {
    local label=$1
    shift
    step "$label: $*"
    if "$@"; then
        CI_TOTAL_PASSED=$((CI_TOTAL_PASSED + 1))
    else
        ci_record_failure "$label"
        CI_TOTAL_FAILED=$((CI_TOTAL_FAILED + 1))
        return 1
    fi
}

# ci_targets [COLUMN=VALUE]... : the triples of ci/targets whose columns
# (tests, setup, linker, runner) have the given values, in table order.
ci_targets() {
    local dir
    dir=$(dirname "${BASH_SOURCE[0]}")
    awk -v filters="$*" '
        BEGIN { n = split("triple tests setup linker runner", names, " ")
                for (i = 1; i <= n; i++) col[names[i]] = i
                m = split(filters, f, " ") }
        /^[[:space:]]*(#|$)/ { next }
        { ok = 1
          for (i = 1; i <= m; i++) { split(f[i], kv, "="); if ($(col[kv[1]]) != kv[2]) ok = 0 }
          if (ok) print $1 }' "$dir/targets"
}

# ci_target_field TRIPLE COLUMN: one cell of ci/targets.
ci_target_field() {
    local dir
    dir=$(dirname "${BASH_SOURCE[0]}")
    awk -v t="$1" -v c="$2" '
        BEGIN { split("triple tests setup linker runner", names, " ")
                for (i in names) col[names[i]] = i }
        $1 == t { print $(col[c]) }' "$dir/targets"
}

#!/usr/bin/env bash
# Guard against a false pass: under wine (and any broken runner) a test
# binary can print nothing and exit 0, so `cargo test` "succeeds" with no test
# run.  Given a captured `cargo test` log (stdout+stderr, 2>&1), check that
#   - there is at least one `Running` / `Doc-tests` section,
#   - every section is followed by its own `test result:` line,
#   - #sections == #result lines, and no result says FAILED,
#   - (optional) at least STACKSWITCH_CI_MIN_TESTS tests passed in total.
#
# Usage:  ci/check-test-output.sh LOG        (exit 0 = ok)
#    or:  . ci/check-test-output.sh; stackswitch_ci_check_test_output LOG
stackswitch_ci_check_test_output() {
    local log="$1"
    [ -r "$log" ] || { echo "check-test-output: cannot read $log" >&2; return 2; }
    # Strip ANSI colour codes and CRs (wine's console may emit \r\n).
    sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r$//' "$log" | awk -v min="${STACKSWITCH_CI_MIN_TESTS:-0}" '
        function close_section() {
            if (open != "" && !got) { printf "check-test-output: NO \"test result:\" line for: %s\n", open; bad = 1 }
        }
        /^[ \t]+(Running|Doc-tests)[ \t]/ {
            close_section()
            sub(/^[ \t]+/, ""); open = $0; got = 0; sections++; next
        }
        /^test result: / {
            results++
            if (open == "") { print "check-test-output: result line outside any section: " $0; bad = 1 }
            else if (got) { print "check-test-output: second result line in section " open; bad = 1 }
            got = 1
            if ($0 !~ /^test result: ok\./) { print "check-test-output: FAILED section " open ": " $0; bad = 1 }
            for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) passed += $i
            next
        }
        END {
            close_section()
            if (sections == 0) { print "check-test-output: no Running/Doc-tests section at all"; bad = 1 }
            if (sections != results) { printf "check-test-output: %d sections but %d result lines\n", sections, results; bad = 1 }
            if (passed < min) { printf "check-test-output: only %d tests passed, expected >= %d\n", passed, min; bad = 1 }
            printf "check-test-output: %d sections, %d result lines, %d passed -> %s\n", sections, results, passed, bad ? "BAD" : "ok"
            exit bad
        }
    ' >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    [ $# -eq 1 ] || { echo "usage: $0 CARGO_TEST_LOG" >&2; exit 2; }
    stackswitch_ci_check_test_output "$1"
fi

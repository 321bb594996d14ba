#!/usr/bin/env bash
# Runs the three examples of the specification and checks what they print.
# Usage: ci/examples.sh [cargo args such as --release or --target T]
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(cargo run -q "$@" --example basic)
diff -u ci/expected/basic.txt <(printf '%s\n' "$out")

out=$(RUST_BACKTRACE=0 cargo run -q "$@" --example panic 2>/dev/null)
diff -u ci/expected/panic.txt <(printf '%s\n' "$out")

# The trace must go from the coroutine through `sub_function` to `main`.
out=$(cargo run -q "$@" --example backtrace)
printf '%s\n' "$out" | awk '
    /backtrace::main::\{\{closure\}\}/ { if (!c) c = NR }
    /backtrace::sub_function/          { if (!s) s = NR }
    /backtrace::main$/                 { if (!m) m = NR }
    END { if (!(c && s && m && c < s && s < m)) { print "backtrace not linked"; exit 1 } }'
echo "examples ok"

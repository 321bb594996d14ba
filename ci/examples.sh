#!/usr/bin/env bash
# Runs the three examples of the specification and checks what they print.
# Usage: ci/examples.sh [--release] [--target TRIPLE]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=() target=""
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=(--release) ;;
        --target) target=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

example() {
    if [ -n "$target" ]; then
        source ci/env.sh
        stackswitch_ci_cargo "$target" run -q "${profile[@]}" --example "$1" 2>/dev/null
    else
        cargo run -q "${profile[@]}" --example "$1" 2>/dev/null
    fi
}

diff -u ci/expected/basic.txt <(example basic)
diff -u ci/expected/panic.txt <(RUST_BACKTRACE=0 example panic)

# The trace must go from the coroutine through `sub_function` to `main`.
example backtrace | awk '
    /backtrace::main::\{+closure/       { if (!c) c = NR }
    /backtrace::sub_function/          { if (!s) s = NR }
    /backtrace::main$/                 { if (!m) m = NR }
    END { if (!(c && s && m && c < s && s < m)) { print "backtrace not linked"; exit 1 } }'
echo "examples ok"

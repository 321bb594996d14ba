#!/usr/bin/env bash
# A debugger's backtrace from inside a coroutine reaches the resumer and
# `main`, through the root frame's CFI (the same information panics use).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh gdb
cargo build -q --example basic "$@"
dir=${CARGO_TARGET_DIR:-target}/debug; [[ " $* " == *" --release "* ]] && dir=${CARGO_TARGET_DIR:-target}/release
line=$(grep -n 'yielding {}' examples/basic.rs | cut -d: -f1)
out=$(gdb -batch -nx -ex "break basic.rs:$line" -ex run -ex bt "$dir/examples/basic" 2>&1)
printf '%s\n' "$out" | grep -E '^#' | sed 's/^/    /'
printf '%s\n' "$out" | awk '
    /^#/ && /basic::main::\{closure/ { if (!c) c = NR }
    /^#/ && /coroutine_start/        { if (!t) t = NR }
    /^#/ && / basic::main \(/        { if (!m) m = NR }
    END { if (!(c && t && m && c < t && t < m)) { print "gdb backtrace not linked"; exit 1 } }'
echo "gdb backtrace linked"

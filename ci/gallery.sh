#!/usr/bin/env bash
# The example gallery and the API documentation.
#
# Runs each gallery example and compares what it prints with
# ci/expected/<name>.txt (the examples also assert their own invariants, and
# exit non-zero when one breaks), then builds the docs with every rustdoc
# warning an error.
# Usage: ci/gallery.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=()
case "${1:-}" in
    --release) profile=(--release) ;;
    "") ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
esac

check() {
    local name=$1
    shift
    echo "--- example $name"
    local out
    out=$(cargo run -q "${profile[@]}" "$@" --example "$name")
    diff -u "ci/expected/$name.txt" - <<<"$out"
}

check parser
check scheduler
check sandbox
check async_tokio -p stackswitch-integration

echo "--- cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --lib
echo "gallery ok"

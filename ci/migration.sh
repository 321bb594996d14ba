#!/usr/bin/env bash
# Proves the README's "Migrating from corosensei" section: a program written
# for corosensei 0.3 (ci/migration/main.rs) builds and runs against
# stackswitch with only the dependency renamed. It is built against
# corosensei too, and both runs must print the same.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One crate per dependency; the same main.rs, byte for byte.
make_crate() {
    local dir=$1 dependency=$2
    mkdir -p "$dir/src"
    cp "$repo/ci/migration/main.rs" "$dir/src/main.rs"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "corosensei-user"
version = "0.0.0"
edition = "2021"

[dependencies]
$dependency
libc = "0.2"

[workspace]
TOML
    # The workspace's lock file pins corosensei and libc to versions the CI
    # machine already has.
    cp "$repo/Cargo.lock" "$dir/Cargo.lock"
}
make_crate "$work/original" 'corosensei = "0.3"'
make_crate "$work/migrated" "corosensei = { package = \"stackswitch\", path = \"$repo\" }"

run() {
    if ! CARGO_TARGET_DIR="$work/target-$1" cargo run -q --manifest-path "$work/$1/Cargo.toml" \
        2>"$work/$1.log"; then
        echo "FAILED: the corosensei program against the $1 crate" >&2
        cat "$work/$1.log" >&2
        return 1
    fi
}
original=$(run original)
migrated=$(run migrated)
echo "$migrated"
diff -u <(echo "$original") <(echo "$migrated")
grep -qx done <<<"$migrated"
echo "migration ok: the corosensei program runs unchanged on stackswitch"

#!/usr/bin/env bash
# Links two semver-incompatible copies of the crate into one binary and runs
# coroutines of both, nested in each other. A crate whose asm defines global
# symbols fails to link here (duplicate symbol); ours names its asm entry
# points through Rust's mangling, so both copies coexist.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/v2" "$work/app/src"
cp -r "$repo/src" "$repo/Cargo.toml" "$work/v2/"
# Same code, published as an incompatible version; drop the workspace table
# and the examples' (not copied).
sed -i -e '0,/^version = .*/s//version = "0.2.0"/' -e '/^\[workspace\]/,/^$/d' \
    -e '/^\[\[example\]\]/,/^$/d' "$work/v2/Cargo.toml"
cat >"$work/app/Cargo.toml" <<TOML
[package]
name = "two-versions"
version = "0.0.0"
edition = "2021"

[dependencies]
one = { package = "stackswitch", path = "$repo" }
two = { package = "stackswitch", path = "$work/v2" }

[workspace]
TOML
cat >"$work/app/src/main.rs" <<'RS'
fn main() {
    let mut outer = one::Coroutine::<u32, u32, u32>::new(|y1, x| {
        let mut inner = two::Coroutine::<u32, u32, u32>::new(|y2, x| y2.suspend(x + 1) * 2);
        let a = inner.resume(x).as_yield().unwrap();
        let b = y1.suspend(a);
        inner.resume(b).as_return().unwrap()
    });
    assert_eq!(outer.resume(1).as_yield(), Some(2));
    assert_eq!(outer.resume(20).as_return(), Some(40));
    println!("two versions linked and ran");
}
RS
CARGO_TARGET_DIR="$work/target" cargo run -q --manifest-path "$work/app/Cargo.toml" "$@"

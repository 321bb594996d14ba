#!/usr/bin/env bash
# The switch code under the compiler's control-flow protection (nightly):
#
# - x86_64, `-Zcf-protection=full`: the whole suite runs natively (no CPU or
#   kernel here enforces IBT for user code), and the binaries are checked
#   statically: every indirect-branch target of the switch starts with
#   `endbr64`, our objects carry the IBT property, and the executable does
#   not (the prebuilt std lacks it, and a linker keeps the bit only if every
#   object has it). A default build must have no pads at all.
# - AArch64, `-Zbranch-protection=bti,pac-ret`, std rebuilt with the same
#   flags (-Zbuild-std): the whole suite under qemu-aarch64 -cpu max (BTI
#   and PAC emulated; tests/branch_protection.rs guards its code pages with
#   PROT_BTI, as a loader would), the `bti c` pads checked statically, and a
#   negative control: with the pads removed, that test must die of SIGILL.
#
# Took 410 s from an empty target dir on 2 shared cores (crates already
# downloaded): about 2.5 min for x86_64, 4.5 min for the AArch64 build
# (most of it rebuilding std in release) and 1 min under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

ci/setup.sh cfi

target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
status=0
fail() { status=1; }

# The newest test binary built for `name` (not the .d files) in a deps dir.
test_binary() { ls -t "$1"/deps/"$2"-* | grep -v '\.d$' | head -n 1; }

# ---------------------------------------------------------------- x86_64 --
x86_dir=$target_dir/cf-protection
RUSTFLAGS="-Zcf-protection=full" RUSTDOCFLAGS="-Zcf-protection=full" \
    run_tests "x86_64 -Zcf-protection=full" cargo +nightly test --target-dir "$x86_dir" || fail
run_checked "x86_64 endbr64 at every indirect-branch target" \
    ci/landing-pads.py x86_64 "$(test_binary "$x86_dir/debug" coroutine)" || fail
run_checked "x86_64 endbr64 at trap_start" \
    ci/landing-pads.py x86_64 "$(test_binary "$x86_dir/debug" trap)" --require trap_start || fail
step "x86_64 GNU property notes"
objects=$(mktemp -d)
(cd "$objects" && ar x "$(ls -t "$x86_dir"/debug/deps/libstackswitch-*.rlib | head -n 1)")
without=0
for o in "$objects"/*.o; do
    readelf -n "$o" | grep -q 'x86 feature: IBT' || { echo "    no IBT property: $o"; without=1; }
done
rm -rf "$objects"
if [ "$without" = 0 ]; then
    echo "    every object of the crate has the IBT property"
else
    echo "FAILED: objects of the crate without the IBT property"; fail
fi
if readelf -n "$(test_binary "$x86_dir/debug" coroutine)" | grep -q 'x86 feature:.*IBT'; then
    echo "FAILED: the executable claims IBT although the prebuilt std lacks it"; fail
else
    echo "    the executable has no IBT property (the prebuilt std objects lack it)"
fi
# The default build: no pads, so nothing added to the switch path.
cargo test --no-run --test coroutine >/dev/null 2>&1 || { echo "FAILED: default build"; fail; }
run_checked "default build: no landing pads" \
    ci/landing-pads.py x86_64 "$(test_binary "$target_dir/debug" coroutine)" --absent || fail

# --------------------------------------------------------------- AArch64 --
a64=aarch64-unknown-linux-gnu
a64_dir=$target_dir/branch-protection
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib"
# Tests that run themselves again in a child process go through the runner.
export STACKSWITCH_TEST_RUNNER=$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER
a64_cargo() {
    # rustdoc takes its flags apart; it refuses to mix branch protection.
    RUSTFLAGS="-Zbranch-protection=bti,pac-ret" RUSTDOCFLAGS="-Zbranch-protection=bti,pac-ret" \
        cargo +nightly "$1" --release -Zbuild-std --target $a64 --target-dir "$a64_dir" "${@:2}"
}
# Release: a debug build's tests take over 10 minutes under qemu (the
# backtrace symbolization); the suite runs in debug under qemu elsewhere.
run_tests "aarch64 -Zbranch-protection=bti,pac-ret (qemu -cpu max)" a64_cargo test || fail
run_checked "aarch64 bti c at every indirect-branch target" \
    ci/landing-pads.py aarch64 "$(test_binary "$a64_dir/$a64/release" coroutine)" || fail
run_checked "aarch64 bti c at trap_start" \
    ci/landing-pads.py aarch64 "$(test_binary "$a64_dir/$a64/release" trap)" --require trap_start || fail
# For the record: the executables carry no BTI property, because the C start
# files of the distribution's glibc lack it; hence tests/branch_protection.rs
# guarding its pages itself.
if aarch64-linux-gnu-readelf -n "$(test_binary "$a64_dir/$a64/release" coroutine)" | grep -q 'AArch64 feature:.*BTI'; then
    echo "    the executables have the BTI property: the loader guards them"
else
    echo "    the executables have no BTI property (C start files without it)"
fi

# Negative control: the same crate without its pads must fault.
step "aarch64 negative control: pads removed"
# The copy sits one level down in a workspace of its own: cargo hashes a
# path package by its place in the workspace, and at the same place the copy
# would overwrite the real build's artifacts in the shared target dir (which
# is shared so that std is not built twice).
copy=$(mktemp -d)
mkdir "$copy"/without-pads
cp -r Cargo.toml build.rs src tests examples "$copy"/without-pads/
cp Cargo.lock "$copy"/
# The same profiles as the real build, or std would be built again.
{ printf '[workspace]\nmembers = ["without-pads"]\nresolver = "2"\n\n'
  sed -n '/^\[profile\.release\]/,/^$/p' Cargo.toml; } >"$copy"/Cargo.toml
sed -i 's/"bti c"/"nop"/' "$copy"/without-pads/src/arch/aarch64.rs
sed -i '/^\[workspace\]/,/^default-members/d; /^\[profile/,/^$/d' "$copy"/without-pads/Cargo.toml
if grep -q '"bti c"' "$copy"/without-pads/src/arch/aarch64.rs || ! grep -q '"nop"' "$copy"/without-pads/src/arch/aarch64.rs; then
    echo "FAILED: could not remove the landing pads"; fail
fi
log=$(mktemp)
if (cd "$copy"/without-pads && a64_cargo test --test branch_protection) >"$log" 2>&1; then
    echo "FAILED: the switch ran under BTI without landing pads"; tail -n 20 "$log"; fail
elif grep -q 'the switch code failed under BTI (status 0x4,' "$log"; then
    echo "    without pads the guarded child died of SIGILL, as it must"
else
    echo "FAILED: the negative control failed for another reason"; tail -n 30 "$log"; fail
fi
rm -rf "$copy" "$log"

exit $status

#!/usr/bin/env bash
# AArch64 Guarded Control Stack (GCS) under qemu-user, with nightly's
# `-Zbranch-protection=gcs` (build.rs sets `stackswitch_gcs`):
#
# - the whole AArch64 suite (unit, integration and doc tests) in processes
#   with GCS on: glibc 2.41+ enables it at start-up under the tunable
#   glibc.cpu.aarch64_gcs=3 ("override": on even though the prebuilt std
#   objects, and so the executables, lack the GCS marking), and
#   STACKSWITCH_EXPECT_GCS=1 makes tests/shadow_stack.rs fail if it is off;
# - a default build under GCS: creating a coroutine panics with what to do
#   (tests/shadow_stack.rs), and its switch has no GCS instruction;
# - a negative control: the same crate with the switch's GCS instructions
#   replaced by NOPs must die of SIGSEGV at the first switch.
#
# Needs a qemu with GCS and a glibc and libgcc_s that know it, from Debian
# sid: `ci/setup.sh gcs` extracts them (never installs them) and checks them
# with a probe.
#
# Usage: ci/gcs.sh            (from anywhere; about 3 min on 2 shared cores
#                              with crates downloaded, half of it building)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

# Installs the qemu and the sysroot below (ci/setup.sh, group gcs).
ci/setup.sh gcs
STACKSWITCH_CI_DIR="${STACKSWITCH_CI_DIR:-$HOME/.cache/stackswitch-ci}"
gcs_dir=$STACKSWITCH_CI_DIR/gcs
qemu=$gcs_dir/qemu/usr/bin/qemu-aarch64
sysroot=$gcs_dir/sysroot/usr/aarch64-linux-gnu
a64=aarch64-unknown-linux-gnu

target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
status=0
fail() { status=1; }
test_binary() { ls -t "$1"/deps/"$2"-* | grep -v '\.d$' | head -n 1; }

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
runner="$qemu -cpu max -L $sysroot -E LD_LIBRARY_PATH=$sysroot/lib"
gcs_on="-E GLIBC_TUNABLES=glibc.cpu.aarch64_gcs=3 -E STACKSWITCH_EXPECT_GCS=1"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner $gcs_on"
# Tests that run themselves again in a child process go through the runner.
export STACKSWITCH_TEST_RUNNER=$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER

gcs_dir_build=$target_dir/gcs
# The prebuilt std has no branch protection, which rustc calls an ABI
# mismatch. GCS changes no calling convention, only the marking of objects,
# and unmarked code runs under GCS (the tunable's override mode is for
# that): allowed, rather than rebuilding std (-Zbuild-std) for a marking
# that the distribution's C start files would still lack.
gcs_flags="-Zbranch-protection=gcs -Cunsafe-allow-abi-mismatch=branch-protection"
gcs_cargo() {
    RUSTFLAGS="$gcs_flags" RUSTDOCFLAGS="$gcs_flags" \
        cargo +nightly "$1" --target $a64 --target-dir "$gcs_dir_build" "${@:2}"
}
run_tests "aarch64 -Zbranch-protection=gcs, GCS on (qemu -cpu max)" gcs_cargo test || fail

# A default build: no GCS instruction anywhere in the switch, and a clear
# panic at creation under GCS.
default_dir=$target_dir/gcs-default
run_tests "aarch64 default build, GCS on: creation panics with what to do" \
    cargo +nightly test --target $a64 --target-dir "$default_dir" --test shadow_stack || fail
step "aarch64 default build: no GCS instruction in the switch"
# objdump of binutils 2.40 prints gcsss1/gcsss2/gcspopm as sys/sysl #3, C7, C7;
# newer ones by name. Only the mnemonic column is searched (symbol names
# mention gcs too), and the GCS build must match, or the search is wrong.
gcs_instructions() {
    aarch64-linux-gnu-objdump -d "$1" | grep -ciE $'^ +[0-9a-f]+:\t[0-9a-f]+ \t(sysl?\t.*#3, *c7, *c7,|gcs)' || true
}
in_default=$(gcs_instructions "$(test_binary "$default_dir/$a64/debug" shadow_stack)")
in_gcs=$(gcs_instructions "$(test_binary "$gcs_dir_build/$a64/debug" shadow_stack)")
if [ "$in_default" != 0 ] || [ "$in_gcs" = 0 ]; then
    echo "FAILED: GCS instructions: $in_default in the default build, $in_gcs in the GCS build"; fail
else
    echo "    none (and $in_gcs in the GCS build's test binary)"
fi

# Negative control: the same crate with the GCS switch instructions gone.
step "aarch64 negative control: GCS stack switch removed"
# One level down in a workspace of its own (see ci/cfi-protect.sh), so that
# the copy's artifacts do not overwrite the real build's in the shared dir.
copy=$(mktemp -d)
mkdir "$copy"/without-gcs-switch
cp -r Cargo.toml build.rs src tests examples "$copy"/without-gcs-switch/
cp Cargo.lock "$copy"/
{ printf '[workspace]\nmembers = ["without-gcs-switch"]\nresolver = "2"\n\n'
  sed -n '/^\[profile\./,/^$/p' Cargo.toml; } >"$copy"/Cargo.toml
sed -i 's/"sys #3, c7, c7, #2, x3\\nsysl x3, #3, c7, c7, #3"/"nop\\nnop"/' \
    "$copy"/without-gcs-switch/src/arch/aarch64.rs
sed -i '/^\[workspace\]/,/^default-members/d; /^\[profile/,/^$/d' "$copy"/without-gcs-switch/Cargo.toml
if grep -q 'sysl x3, #3, c7, c7, #3' "$copy"/without-gcs-switch/src/arch/aarch64.rs; then
    echo "FAILED: could not remove the GCS switch"; fail
fi
log=$(mktemp)
if (cd "$copy"/without-gcs-switch && gcs_cargo test --test shadow_stack every_switch_path) >"$log" 2>&1; then
    echo "FAILED: the switch ran under GCS without moving between control stacks"; tail -n 20 "$log"; fail
elif grep -q 'the switch failed under GCS (status 0x8b, signal 11' "$log" \
    || grep -q 'the switch failed under GCS (status 0xb, signal 11' "$log"; then
    echo "    without the GCS switch the child died of SIGSEGV, as it must"
else
    echo "FAILED: the negative control failed for another reason"; tail -n 30 "$log"; fail
fi
rm -rf "$copy" "$log"

echo
echo "gcs: $CI_TOTAL_PASSED passed, $CI_TOTAL_FAILED failed"
exit $status

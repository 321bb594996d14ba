# shellcheck shell=bash
# Source me (after ci/setup.sh):   . ci/env.sh
#
# Exports per-target CARGO_TARGET_<TRIPLE>_{LINKER,RUNNER,RUSTFLAGS} and the
# wine environment.  Nothing is written to .cargo/config.toml, so ordinary
# builds of the crate are unaffected.  Runners are single strings (cargo
# concatenates *arrays* from config files in parent directories).
#
# Linkers and runners come from ci/targets. Also defines:
#   stackswitch_ci_toolchain <triple>          -> stable | nightly
#   stackswitch_ci_cargo <triple> <cmd> [args] -> cargo +tc <cmd> --target <triple> ...
#                                                 with the per-target extras
#                                                 (-Zbuild-std, RUSTDOCFLAGS,
#                                                 RUSTC_BOOTSTRAP, target dir)

STACKSWITCH_CI_DIR="${STACKSWITCH_CI_DIR:-$HOME/.cache/stackswitch-ci}"
export STACKSWITCH_CI_DIR

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# qemu-user emulates a guest's fork (and the vfork of posix_spawn) with a
# host fork, in which glib's slice allocator (glib before 2.76, as in
# Debian 12) is not fork-safe: when another guest thread was translating
# code at that moment, the child blocks for ever on a lock of it. Seen once
# in CI, a test spawning itself from tests/pool.rs under qemu-aarch64: the
# child hung in g_slice_alloc under tcg_tb_insert. With this, glib takes
# its memory from malloc, which fork makes safe. (Newer glib ignores it.)
export G_SLICE=always-malloc

# --- gcc-linked targets: Linux under qemu-user (or native), Windows under wine
# -E LD_LIBRARY_PATH matters: with host 32-bit libs in /lib32, qemu-i386
# without it mixed the cross loader with the host libc and hung. (i686 runs
# natively, its table row says so: qemu-i386 delivered signals to the wrong
# thread and hung under the trap tests.)
for _triple in $(ci_targets); do
    _prefix=$(ci_target_field "$_triple" linker)
    _runner=$(ci_target_field "$_triple" runner)
    case "$_prefix" in -|zig) continue ;; esac
    _var=$(echo "$_triple" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${_var}_LINKER=$_prefix-gcc"
    # for build scripts using the cc crate (CC_<triple_lowercase>)
    export "CC_${_triple//-/_}=$_prefix-gcc" "AR_${_triple//-/_}=$_prefix-ar"
    case "$_runner" in
        qemu-*) export "CARGO_TARGET_${_var}_RUNNER=$_runner -L /usr/$_prefix -E LD_LIBRARY_PATH=/usr/$_prefix/lib" ;;
        wine) export "CARGO_TARGET_${_var}_RUNNER=wine" ;;
    esac
done
unset _triple _prefix _runner _var

# --- LoongArch64 musl: nightly -Zbuild-std, zig cc, qemu-loongarch64 --------
# qemu 7.2 has no LSX -> SIGILL without -lsx.  rustdoc ignores target
# rustflags, so stackswitch_ci_cargo also puts these in RUSTDOCFLAGS.
STACKSWITCH_CI_LOONGARCH_FLAGS="-C target-feature=-lsx -C link-self-contained=no"
export CARGO_TARGET_LOONGARCH64_UNKNOWN_LINUX_MUSL_LINKER="$STACKSWITCH_CI_DIR/bin/loongarch64-linux-musl-zigcc"
export CARGO_TARGET_LOONGARCH64_UNKNOWN_LINUX_MUSL_RUNNER="qemu-loongarch64"
export CARGO_TARGET_LOONGARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$STACKSWITCH_CI_LOONGARCH_FLAGS"
export CC_loongarch64_unknown_linux_musl="$STACKSWITCH_CI_DIR/bin/loongarch64-linux-musl-zigcc"
export AR_loongarch64_unknown_linux_musl="$STACKSWITCH_CI_DIR/bin/loongarch64-linux-musl-zigar"
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$STACKSWITCH_CI_DIR/zig-cache}"
export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-$STACKSWITCH_CI_DIR/zig-cache}"

# --- wine (wine64 8.0; 32-bit via experimental WoW64) ------------------------
export WINEPREFIX="$STACKSWITCH_CI_DIR/wineprefix"
export WINEDLLPATH="$STACKSWITCH_CI_DIR/wine-dllpath"
export WINEDEBUG="-all"
export WINEDLLOVERRIDES="mscoree,mshtml="

# One wine session for all the Windows runs. Debian's `wineserver` wrapper
# starts the server with -p0: with no server running, each wine process
# starts one, and wineboot's services with it (services.exe, winedevice,
# rpcss...), and the whole session ends as soon as the last process exits.
# Harnesses that run many short processes (rustdoc runs each doc test as
# one; tests spawn themselves) then pay a session start-up per process, and
# a process may start while the session of the one before is ending. Also,
# the services inherit the stdout of the process that started them, so a
# harness reading that to its end waits for the whole session. Here the
# server persists, and its services are started once with their output on
# /dev/null.
stackswitch_ci_wine_up() {
    wineserver -k >/dev/null 2>&1 || true
    wineserver -w >/dev/null 2>&1 || true
    wineserver -p </dev/null >/dev/null 2>&1
    wine wineboot </dev/null >/dev/null 2>&1
}

stackswitch_ci_wine_down() {
    wineserver -k >/dev/null 2>&1 || true
    wineserver -w >/dev/null 2>&1 || true
}

stackswitch_ci_toolchain() {
    case "$1" in
        loongarch64-*) echo nightly ;;
        *) echo stable ;;
    esac
}

# stackswitch_ci_cargo <triple> <cargo-subcommand> [args...]
# Runs in a subshell so the per-target variables do not leak.
#   STACKSWITCH_CI_TARGET_DIR_BASE: base for per-kind target dirs
#     (default: $CARGO_TARGET_DIR or ./target)
stackswitch_ci_cargo() {
    local triple="$1" sub="$2"; shift 2
    local tc extra=()
    tc="$(stackswitch_ci_toolchain "$triple")"
    (
        base="${STACKSWITCH_CI_TARGET_DIR_BASE:-${CARGO_TARGET_DIR:-target}}"
        case "$triple" in
            loongarch64-*)
                extra=(-Zbuild-std)
                export RUSTDOCFLAGS="${RUSTDOCFLAGS:+$RUSTDOCFLAGS }$STACKSWITCH_CI_LOONGARCH_FLAGS"
                # RUSTFLAGS / CARGO_ENCODED_RUSTFLAGS, when set, REPLACE
                # target.<triple>.rustflags: carry the flags over.
                if [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
                    CARGO_ENCODED_RUSTFLAGS="$CARGO_ENCODED_RUSTFLAGS$(printf '\x1f%s' $STACKSWITCH_CI_LOONGARCH_FLAGS)"
                    export CARGO_ENCODED_RUSTFLAGS
                elif [ -n "${RUSTFLAGS:-}" ]; then
                    export RUSTFLAGS="$RUSTFLAGS $STACKSWITCH_CI_LOONGARCH_FLAGS"
                fi
                export CARGO_TARGET_DIR="$base/ci-nightly"
                ;;
            powerpc64le-*|s390x-*)
                # inline asm on these is behind asm_experimental_arch; no
                # nightly rust-std here, so stable + RUSTC_BOOTSTRAP, in its
                # own target dir (else stable rebuilds everything after it).
                export RUSTC_BOOTSTRAP=1
                export CARGO_TARGET_DIR="$base/ci-bootstrap"
                ;;
        esac
        set -x
        cargo "+$tc" "$sub" --target "$triple" "${extra[@]}" "$@"
    )
}

# shellcheck shell=bash
# Source me (after ci/setup.sh):   . ci/env.sh
#
# Exports per-target CARGO_TARGET_<TRIPLE>_{LINKER,RUNNER,RUSTFLAGS} and the
# wine environment.  Nothing is written to .cargo/config.toml, so ordinary
# builds of the crate are unaffected.  Runners are single strings (cargo
# concatenates *arrays* from config files in parent directories).
#
# Also defines:
#   stackswitch_ci_toolchain <triple>          -> stable | nightly
#   stackswitch_ci_cargo <triple> <cmd> [args] -> cargo +tc <cmd> --target <triple> ...
#                                                 with the per-target extras
#                                                 (-Zbuild-std, RUSTDOCFLAGS,
#                                                 RUSTC_BOOTSTRAP, target dir)
#   STACKSWITCH_CI_RUN_TARGETS                 -> targets that can run tests here

STACKSWITCH_CI_DIR="${STACKSWITCH_CI_DIR:-$HOME/.cache/stackswitch-ci}"
export STACKSWITCH_CI_DIR

# --- Linux gnu targets under qemu-user --------------------------------------
# -E LD_LIBRARY_PATH matters: with host 32-bit libs in /lib32, qemu-i386
# without it mixed the cross loader with the host libc and hung.
_stackswitch_ci_qemu() { # <TRIPLE_ENV> <gcc-prefix> <qemu-arch>
    export "CARGO_TARGET_$1_LINKER=$2-gcc"
    export "CARGO_TARGET_$1_RUNNER=qemu-$3 -L /usr/$2 -E LD_LIBRARY_PATH=/usr/$2/lib"
    # for build scripts using the cc crate (CC_<triple_lowercase>)
    local lc="${1,,}"
    export "CC_$lc=$2-gcc" "AR_$lc=$2-ar"
}
_stackswitch_ci_qemu I686_UNKNOWN_LINUX_GNU              i686-linux-gnu         i386
# i686 runs natively (ci/setup.sh installs the host's 32-bit libc): qemu-i386
# delivered signals to the wrong thread and hung under the trap tests.
unset CARGO_TARGET_I686_UNKNOWN_LINUX_GNU_RUNNER
_stackswitch_ci_qemu AARCH64_UNKNOWN_LINUX_GNU           aarch64-linux-gnu      aarch64
_stackswitch_ci_qemu ARMV7_UNKNOWN_LINUX_GNUEABIHF       arm-linux-gnueabihf    arm
_stackswitch_ci_qemu THUMBV7NEON_UNKNOWN_LINUX_GNUEABIHF arm-linux-gnueabihf    arm
_stackswitch_ci_qemu RISCV64GC_UNKNOWN_LINUX_GNU         riscv64-linux-gnu      riscv64
_stackswitch_ci_qemu POWERPC64LE_UNKNOWN_LINUX_GNU       powerpc64le-linux-gnu  ppc64le
_stackswitch_ci_qemu S390X_UNKNOWN_LINUX_GNU             s390x-linux-gnu        s390x
unset -f _stackswitch_ci_qemu

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

# --- Windows gnu under wine (wine64 8.0; 32-bit via experimental WoW64) -----
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="x86_64-w64-mingw32-gcc"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="wine"
export CARGO_TARGET_I686_PC_WINDOWS_GNU_LINKER="i686-w64-mingw32-gcc"
export CARGO_TARGET_I686_PC_WINDOWS_GNU_RUNNER="wine"
export CC_x86_64_pc_windows_gnu="x86_64-w64-mingw32-gcc" AR_x86_64_pc_windows_gnu="x86_64-w64-mingw32-ar"
export CC_i686_pc_windows_gnu="i686-w64-mingw32-gcc" AR_i686_pc_windows_gnu="i686-w64-mingw32-ar"
export WINEPREFIX="$STACKSWITCH_CI_DIR/wineprefix"
export WINEDLLPATH="$STACKSWITCH_CI_DIR/wine-dllpath"
export WINEDEBUG="-all"
export WINEDLLOVERRIDES="mscoree,mshtml="

STACKSWITCH_CI_LINUX_TARGETS="i686-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu powerpc64le-unknown-linux-gnu s390x-unknown-linux-gnu"
STACKSWITCH_CI_RUN_TARGETS="$STACKSWITCH_CI_LINUX_TARGETS loongarch64-unknown-linux-musl x86_64-pc-windows-gnu i686-pc-windows-gnu"
STACKSWITCH_CI_BUILD_ONLY_TARGETS="thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf x86_64-pc-windows-msvc i686-pc-windows-msvc aarch64-pc-windows-msvc x86_64-apple-darwin aarch64-apple-darwin aarch64-apple-ios"
export STACKSWITCH_CI_LINUX_TARGETS STACKSWITCH_CI_RUN_TARGETS STACKSWITCH_CI_BUILD_ONLY_TARGETS

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

#!/usr/bin/env bash
# Install what is needed to build and RUN `cargo test` of stackswitch for the
# cross targets.  Idempotent: every step checks whether it is already done.
#
#   ci/setup.sh <group>...
#
# Groups: host (nightly, rust-src), cfi (control-flow protection), valgrind,
# gdb, fuzz, miri, linux-cross, loongarch, wine, build-only, gcs; `all` is every
# one.
# This is the only script that installs anything: the others call it with
# the groups they need. The cross targets come from ci/targets.
#
# Non-interactive, must run as root (apt).  Generated files (zig wrapper, wine
# prefix, stub DLL, extracted i386 wine DLLs) live under
#   STACKSWITCH_CI_DIR  (default: $HOME/.cache/stackswitch-ci)
# Afterwards:  source ci/env.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
CI_DIR="${STACKSWITCH_CI_DIR:-$HOME/.cache/stackswitch-ci}"
ZIGLANG_VERSION="${STACKSWITCH_ZIGLANG_VERSION:-0.14.1}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
run() { log "+ $*"; "$@" </dev/null; }

# ---------------------------------------------------------------- helpers --
APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        run apt-get -o DPkg::Lock::Timeout=600 update -q
        APT_UPDATED=1
    fi
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

apt_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        log "apt: already installed: $*"
        return 0
    fi
    apt_update_once
    run apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

# rustup_targets <toolchain> <target>...   (adds only missing ones)
rustup_targets() {
    local tc="$1"; shift
    local installed missing=() t
    installed="$(rustup +"$tc" target list --installed)"
    for t in "$@"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
    if [ ${#missing[@]} -eq 0 ]; then
        log "rustup($tc): targets already installed: $*"
        return 0
    fi
    run rustup +"$tc" target add "${missing[@]}"
}

rustup_component() {
    local tc="$1" comp="$2"
    if rustup +"$tc" component list --installed | grep -q "^$comp"; then
        log "rustup($tc): component $comp already installed"
    else
        run rustup +"$tc" component add "$comp"
    fi
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"; }

# ------------------------------------------------------------------- host --
need_nightly() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        run rustup toolchain install nightly --profile minimal
    fi
}
group_host() {
    # asm-unwind and the sanitizers (-Zbuild-std) need nightly and its source.
    need_nightly
    rustup_component nightly rust-src
    # ci/module-graph.py.
    command -v python3 >/dev/null || { need_root; apt_install python3; }
}

# -------------------------------------------------------------------- cfi --
group_cfi() {
    need_root
    need_nightly
    # readelf/objdump for the static checks, qemu for the AArch64 suite.
    apt_install binutils python3 qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    rustup_targets nightly aarch64-unknown-linux-gnu
    rustup_component nightly rust-src
}

# --------------------------------------------------------- valgrind, gdb --
group_valgrind() {
    need_root
    apt_install valgrind
}

group_gdb() {
    need_root
    apt_install gdb
}

# ------------------------------------------------------------------- miri --
group_miri() {
    need_nightly
    rustup_component nightly miri
    rustup_component nightly rust-src
    # Builds Miri's sysroot once (it says so when it is already there).
    run cargo +nightly miri setup
}

# ------------------------------------------------------------------- fuzz --
group_fuzz() {
    need_nightly
    if command -v cargo-fuzz >/dev/null; then
        log "cargo-fuzz already installed"
    else
        run cargo install cargo-fuzz --locked
    fi
}

# ------------------------------------------------------------ linux-cross --
group_linux_cross() {
    need_root
    # i686 runs natively (qemu-i386 mishandles signals across threads):
    # the host needs the 32-bit loader, libc and libgcc_s.
    apt_install qemu-user \
        gcc-i686-linux-gnu libc6-dev-i386-cross libc6-i386 lib32gcc-s1 \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
        gcc-riscv64-linux-gnu libc6-dev-riscv64-cross \
        gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross \
        gcc-s390x-linux-gnu libc6-dev-s390x-cross
    # nightly has no rust-std for most of these here: stable serves all.
    mapfile -t targets < <(ci_targets setup=linux-cross)
    rustup_targets stable "${targets[@]}"
}

# -------------------------------------------------------------- loongarch --
group_loongarch() {
    need_root
    apt_install qemu-user
    rustup_component nightly rust-src

    local pkgdir="$CI_DIR/ziglang-$ZIGLANG_VERSION"
    if [ -x "$pkgdir/ziglang/zig" ]; then
        log "ziglang $ZIGLANG_VERSION already in $pkgdir"
    else
        local py
        py="$(command -v python3 || true)"
        [ -n "$py" ] || { apt_install python3 python3-pip; py=python3; }
        if ! "$py" -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
        mkdir -p "$CI_DIR"
        rm -rf "$pkgdir.tmp"
        # --target keeps it out of the system/user site-packages;
        # --break-system-packages is needed for Debian's python3 (PEP 668).
        local extra=()
        if "$py" -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
            extra=(--break-system-packages)
        fi
        run "$py" -m pip install -q --disable-pip-version-check --no-deps \
            "${extra[@]}" --target "$pkgdir.tmp" "ziglang==$ZIGLANG_VERSION"
        mv "$pkgdir.tmp" "$pkgdir"
    fi

    mkdir -p "$CI_DIR/bin" "$CI_DIR/zig-cache"
    local wrapper="$CI_DIR/bin/loongarch64-linux-musl-zigcc"
    local want
    want="$(cat <<EOF
#!/usr/bin/env bash
# generated by stackswitch ci/setup.sh: zig cc as a linker for
# loongarch64-unknown-linux-musl; drops the flags zig rejects.
export ZIG_GLOBAL_CACHE_DIR="\${ZIG_GLOBAL_CACHE_DIR:-$CI_DIR/zig-cache}"
export ZIG_LOCAL_CACHE_DIR="\${ZIG_LOCAL_CACHE_DIR:-$CI_DIR/zig-cache}"
# Also drops -L <dir> for directories that do not exist (rustc passes the
# rust-std lib dir, absent with -Zbuild-std): zig warns about it on stderr,
# which rustc reports as a linker_messages warning (an error under -D warnings).
if [ -n "\${STACKSWITCH_CI_ZIGCC_LOG:-}" ]; then printf '%q ' "\$@" >>"\$STACKSWITCH_CI_ZIGCC_LOG"; echo >>"\$STACKSWITCH_CI_ZIGCC_LOG"; fi
args=()
skip_next=0
for a in "\$@"; do
    if [ "\$skip_next" = 1 ]; then
        skip_next=0
        [ -d "\$a" ] && args+=(-L "\$a")
        continue
    fi
    case "\$a" in
        --target=*|-march=*|-mabi=*) ;;
        -L) skip_next=1 ;;
        -Wl,*)
            # zig warns "ignoring deprecated linker optimization setting"
            # for -O1, and turns --strip-debug (cargo's release default
            # strip="debuginfo") into a FULL strip: no symbols, so every
            # backtrace frame is <unknown>.  Drop both.
            IFS=, read -r -a parts <<<"\${a#-Wl,}"
            kept=()
            for p in "\${parts[@]}"; do
                case "\$p" in -O[0-9]*|--strip-debug|-S) ;; *) kept+=("\$p") ;; esac
            done
            if [ \${#kept[@]} -gt 0 ]; then
                joined="\$(IFS=,; echo "\${kept[*]}")"
                args+=("-Wl,\$joined")
            fi
            ;;
        -L*) [ -d "\${a#-L}" ] && args+=("\$a") ;;
        *) args+=("\$a") ;;
    esac
done
exec "$pkgdir/ziglang/zig" cc -target loongarch64-linux-musl "\${args[@]}"
EOF
)"
    if [ -x "$wrapper" ] && [ "$(cat "$wrapper")" = "$want" ]; then
        log "zig wrapper up to date: $wrapper"
    else
        log "writing zig wrapper $wrapper"
        printf '%s\n' "$want" >"$wrapper"
        chmod +x "$wrapper"
    fi
    # `zig ar` for build scripts using the cc crate (AR_loongarch64_...)
    local arw="$CI_DIR/bin/loongarch64-linux-musl-zigar"
    want="$(printf '#!/bin/sh\n# generated by stackswitch ci/setup.sh\nexec "%s" ar "$@"\n' "$pkgdir/ziglang/zig")"
    if [ -x "$arw" ] && [ "$(cat "$arw")" = "$want" ]; then
        log "zig ar wrapper up to date: $arw"
    else
        log "writing zig ar wrapper $arw"
        printf '%s\n' "$want" >"$arw"
        chmod +x "$arw"
    fi
    command -v qemu-loongarch64 >/dev/null || die "qemu-loongarch64 missing after installing qemu-user"
}

# ------------------------------------------------------------------- wine --
WINE_PREFIX_DIR() { echo "$CI_DIR/wineprefix"; }

build_stub_dll() {
    # bcryptprimitives.dll with ProcessPrng -> SystemFunction036 (RtlGenRandom).
    # Wine 8.0 lacks it; Rust std >= 1.78 imports it, so every .exe dies
    # with exit code 53 before main without this.
    local dir="$CI_DIR/stub-dll"
    mkdir -p "$dir"
    cat >"$dir/bcryptprimitives.c.new" <<'EOF'
#include <windows.h>
typedef BOOLEAN (WINAPI *rtlgenrandom_t)(PVOID, ULONG);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    static rtlgenrandom_t fn;
    if (!fn) {
        HMODULE h = LoadLibraryA("advapi32.dll");
        if (!h) return FALSE;
        fn = (rtlgenrandom_t)GetProcAddress(h, "SystemFunction036");
        if (!fn) return FALSE;
    }
    while (len) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!fn(data, chunk)) return FALSE;
        data += chunk; len -= chunk;
    }
    return TRUE;
}
BOOL WINAPI DllMain(HINSTANCE h, DWORD r, LPVOID p) { (void)h; (void)r; (void)p; return TRUE; }
EOF
    # i686: stdcall decoration would export ProcessPrng@8; the .def pins the plain name.
    cat >"$dir/bcryptprimitives.def.new" <<'EOF'
LIBRARY bcryptprimitives.dll
EXPORTS
ProcessPrng = ProcessPrng@8
EOF
    cat >"$dir/bcryptprimitives64.def.new" <<'EOF'
LIBRARY bcryptprimitives.dll
EXPORTS
ProcessPrng
EOF
    local f changed=0
    for f in bcryptprimitives.c bcryptprimitives.def bcryptprimitives64.def; do
        if cmp -s "$dir/$f.new" "$dir/$f"; then rm "$dir/$f.new"; else mv "$dir/$f.new" "$dir/$f"; changed=1; fi
    done
    if [ $changed = 1 ] || [ ! -f "$dir/x64/bcryptprimitives.dll" ]; then
        mkdir -p "$dir/x64"
        run x86_64-w64-mingw32-gcc -O2 -shared -s -o "$dir/x64/bcryptprimitives.dll" \
            "$dir/bcryptprimitives.c" "$dir/bcryptprimitives64.def"
    else
        log "stub dll (x64) up to date"
    fi
    if [ $changed = 1 ] || [ ! -f "$dir/x86/bcryptprimitives.dll" ]; then
        mkdir -p "$dir/x86"
        run i686-w64-mingw32-gcc -O2 -shared -s -Wl,--kill-at -o "$dir/x86/bcryptprimitives.dll" \
            "$dir/bcryptprimitives.c" "$dir/bcryptprimitives.def"
    else
        log "stub dll (x86) up to date"
    fi
}

# Private WINEDLLPATH with i386-windows PE DLLs from libwine:i386 so wine64
# (8.0, no wine32:i386 installable) runs 32-bit .exe in its WoW64 mode.
setup_wine_i386_dlls() {
    local ver dest="$CI_DIR/wine-i386" dllpath="$CI_DIR/wine-dllpath"
    ver="$(dpkg-query -W -f='${Version}' libwine)"
    if [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$ver" ] \
        && [ -d "$dest/root/usr/lib/i386-linux-gnu/wine/i386-windows" ]; then
        log "libwine:i386 $ver already extracted in $dest"
    else
        local st="$CI_DIR/apt-i386"
        rm -rf "$st" "$dest"
        mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$dest"
        : >"$st/status"
        local aptopts=(
            -o APT::Architecture=i386 -o APT::Architectures::=i386
            -o Dir::State::status="$st/status"
            -o Dir::State::Lists="$st/lists"
            -o Dir::Cache="$st/cache"
            -o Dir::Cache::archives="$st/cache/archives"
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root
            -o Acquire::Retries=3
        )
        # An index that fails (e.g. a mirror mid-sync) is not fatal as long
        # as the one holding libwine:i386=$ver is there: the download decides.
        run apt-get "${aptopts[@]}" update -q || log "WARNING: private i386 apt-get update reported errors; trying the download anyway"
        ( cd "$st" && run apt-get "${aptopts[@]}" download "libwine:i386=$ver" )
        local deb
        deb="$(ls "$st"/libwine_*_i386.deb | head -n1)"
        [ -f "$deb" ] || die "libwine:i386 download failed"
        run dpkg-deb -x "$deb" "$dest/root"
        echo "$ver" >"$dest/.version"
        rm -rf "$st"
    fi
    local want_i386="$dest/root/usr/lib/i386-linux-gnu/wine/i386-windows"
    local want_unix="/usr/lib/x86_64-linux-gnu/wine/x86_64-unix"
    [ -d "$want_i386" ] || die "no $want_i386 in libwine:i386"
    [ -d "$want_unix" ] || die "no $want_unix (libwine amd64 not installed?)"
    mkdir -p "$dllpath"
    ln -sfn "$want_i386" "$dllpath/i386-windows"
    ln -sfn "$want_unix" "$dllpath/x86_64-unix"
    log "WINEDLLPATH dir: $dllpath"
}

group_wine() {
    need_root
    apt_install wine wine64 libwine gcc-mingw-w64-x86-64 gcc-mingw-w64-i686
    rustup_targets stable x86_64-pc-windows-gnu i686-pc-windows-gnu
    build_stub_dll
    setup_wine_i386_dlls

    local prefix
    prefix="$(WINE_PREFIX_DIR)"
    export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLPATH="$CI_DIR/wine-dllpath"
    # no gecko/mono download prompts, no display needed
    export WINEDLLOVERRIDES="mscoree,mshtml="
    unset DISPLAY
    if [ -f "$prefix/system.reg" ] && [ -d "$prefix/drive_c/windows/system32" ]; then
        log "wine prefix exists: $prefix"
    else
        rm -rf "$prefix"
        mkdir -p "$(dirname "$prefix")"
        run wine wineboot -i
        run wineserver -w
    fi
    local d
    for d in system32 syswow64; do
        mkdir -p "$prefix/drive_c/windows/$d"
    done
    local src64="$CI_DIR/stub-dll/x64/bcryptprimitives.dll" src32="$CI_DIR/stub-dll/x86/bcryptprimitives.dll"
    if ! cmp -s "$src64" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"; then
        run cp "$src64" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"
    fi
    if ! cmp -s "$src32" "$prefix/drive_c/windows/syswow64/bcryptprimitives.dll"; then
        run cp "$src32" "$prefix/drive_c/windows/syswow64/bcryptprimitives.dll"
    fi
    log "stub bcryptprimitives.dll installed in $prefix"
}

# ------------------------------------------------------------- build-only --
group_build_only() {
    mapfile -t targets < <(ci_targets setup=build-only)
    rustup_targets stable "${targets[@]}"
}

# -------------------------------------------------------------------- gcs --
# AArch64 GCS (ci/gcs.sh): a qemu with GCS (10.1 and later; bookworm's 7.2
# and bookworm-backports' 10.0 have none) and a glibc with GCS support and a
# GCS-aware libgcc_s (unwinding pops the control stack). Both come from
# Debian sid, extracted (never installed) into $CI_DIR/gcs with a private
# apt state, and are checked with a probe before use.

# The URI of the Debian archive in this system's apt sources.
debian_archive() {
    local uri
    uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || die "no Debian archive in this system's apt sources"
    echo "$uri"
}

GCS_DIR=$CI_DIR/gcs
GCS_QEMU=$GCS_DIR/qemu/usr/bin/qemu-aarch64
GCS_SYSROOT=$GCS_DIR/sysroot/usr/aarch64-linux-gnu

# Builds the probes: a static one that turns GCS on by hand and checks it
# with chkfeat (it checks qemu), and a dynamic one that only checks, run
# with glibc turning GCS on from the tunable (it checks the sysroot).
gcs_probes() {
    mkdir -p "$GCS_DIR"
    [ -x "$GCS_DIR/probe" ] && [ -x "$GCS_DIR/dyn-probe" ] && return 0
    cat >"$GCS_DIR/probe.c" <<'EOF'
/* Exits 0 if GCS can be enabled and then works (a call and return). The
   prctl is a raw system call: a libc wrapper would return through a
   control stack that has no entry for it. */
#include <unistd.h>
static long gcs_enable(void) {
    register long x8 __asm__("x8") = 167; /* prctl */
    register long x0 __asm__("x0") = 75;  /* PR_SET_SHADOW_STACK_STATUS */
    register long x1 __asm__("x1") = 1;   /* PR_SHADOW_STACK_ENABLE */
    register long x2 __asm__("x2") = 0, x3 __asm__("x3") = 0, x4 __asm__("x4") = 0;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}
__attribute__((noinline)) static int on(void) {
    register unsigned long x16 __asm__("x16") = 1;
    __asm__ volatile("hint #40" : "+r"(x16)); /* chkfeat x16 */
    return x16 == 0;
}
int main(void) {
    if (gcs_enable() != 0) _exit(2);
    _exit(on() ? 0 : 3); /* never return: main's caller is not on the GCS */
}
EOF
    run aarch64-linux-gnu-gcc -O1 -static "$GCS_DIR/probe.c" -o "$GCS_DIR/probe"
    cat >"$GCS_DIR/dyn-probe.c" <<'EOF'
int main(void) {
    register unsigned long x16 __asm__("x16") = 1;
    __asm__ volatile("hint #40" : "+r"(x16)); /* chkfeat x16 */
    return x16 == 0 ? 0 : 3;
}
EOF
    run aarch64-linux-gnu-gcc -O1 "$GCS_DIR/dyn-probe.c" -o "$GCS_DIR/dyn-probe"
}

gcs_qemu_works() { [ -x "$GCS_QEMU" ] && "$GCS_QEMU" -cpu max "$GCS_DIR/probe"; }
gcs_sysroot_works() {
    "$GCS_QEMU" -cpu max -L "$GCS_SYSROOT" -E LD_LIBRARY_PATH="$GCS_SYSROOT/lib" \
        -E GLIBC_TUNABLES=glibc.cpu.aarch64_gcs=3 "$GCS_DIR/dyn-probe"
}

# fetch_sid DIR PACKAGE...: Debian sid's packages, extracted into DIR, with a
# private apt state.
fetch_sid() {
    local into=$1
    shift
    local apt=$GCS_DIR/apt
    rm -rf "$apt" "$into"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$into"
    # The suite sid of the Debian archive this system's apt already uses.
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_archive) sid main" \
        >"$apt/sources.list"
    local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
        -o Dir::State::status=/dev/null -o APT::Architecture=amd64
        -o Acquire::Languages=none -o APT::Sandbox::User=root)
    run apt-get "${opts[@]}" update -q >/dev/null
    (cd "$apt/debs" && run apt-get "${opts[@]}" download "$@" >/dev/null)
    local deb
    for deb in "$apt"/debs/*.deb; do dpkg-deb -x "$deb" "$into"; done
    rm -rf "$apt"
}

group_gcs() {
    need_root
    need_nightly
    apt_install binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    rustup_targets nightly aarch64-unknown-linux-gnu
    gcs_probes
    if gcs_qemu_works 2>/dev/null; then
        log "qemu with GCS already in $GCS_DIR/qemu"
    else
        log "fetching Debian sid's qemu-user"
        fetch_sid "$GCS_DIR/qemu" qemu-user
        gcs_qemu_works || die "$("$GCS_QEMU" --version | head -n 1) cannot enable GCS (the probe failed)"
    fi
    log "$("$GCS_QEMU" --version | head -n 1): GCS enabled by the probe"
    if gcs_sysroot_works 2>/dev/null; then
        log "sysroot with GCS already in $GCS_DIR/sysroot"
    else
        log "fetching Debian sid's libc6-arm64-cross and libgcc-s1-arm64-cross"
        fetch_sid "$GCS_DIR/sysroot" libc6-arm64-cross libgcc-s1-arm64-cross
        gcs_sysroot_works || die "the glibc in $GCS_SYSROOT does not enable GCS under glibc.cpu.aarch64_gcs=3"
    fi
    log "$(ls "$GCS_SYSROOT"/lib/libc.so.* "$GCS_SYSROOT"/lib/libgcc_s.so.* | xargs -n1 basename | tr '\n' ' ')"
}

# ------------------------------------------------------------------- main --
all_groups=(host cfi valgrind gdb fuzz miri linux-cross loongarch wine build-only gcs)
[ $# -gt 0 ] || die "usage: $0 <${all_groups[*]}|all>..."
command -v rustup >/dev/null || die "rustup not found"
mkdir -p "$CI_DIR"
log "STACKSWITCH_CI_DIR=$CI_DIR"
groups=()
for g in "$@"; do
    case "$g" in
        all) groups+=("${all_groups[@]}") ;;
        *) groups+=("$g") ;;
    esac
done
for g in "${groups[@]}"; do
    log "=== group $g ==="
    case "$g" in
        host)        group_host ;;
        cfi)         group_cfi ;;
        valgrind)    group_valgrind ;;
        gdb)         group_gdb ;;
        fuzz)        group_fuzz ;;
        miri)        group_miri ;;
        linux-cross) group_linux_cross ;;
        loongarch)   group_loongarch ;;
        wine)        group_wine ;;
        build-only)  group_build_only ;;
        gcs)         group_gcs ;;
        *) die "unknown group: $g" ;;
    esac
done
log "done: ${groups[*]}"

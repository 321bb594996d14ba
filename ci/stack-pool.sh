#!/usr/bin/env bash
# The pool's two kinds of guard page, both on every run:
#
# - Lightweight guards (`MADV_GUARD_INSTALL`, Linux 6.13 and later):
#   examples/million holds one million suspended coroutines, each with a
#   guard page, in one process, and what it prints is checked: all of them
#   suspended at once, page-table guards (a few mappings instead of two per
#   stack), and a peak RSS per coroutine close to the floor of one 4 KiB
#   page. Takes about 10-25 s (mostly the kernel zeroing 4 GB of pages).
#   A kernel without them says so and runs the smaller count below instead.
# - The `mprotect` fallback of older kernels, forced by the internal cfg
#   `stackswitch_mprotect_guards`: the pool tests, then a count of
#   coroutines that fits the default `vm.max_map_count` with one mapping
#   per guard page.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

fallback_count=20000

# check_million OUTPUT COUNT GUARDS: what examples/million printed.
check_million() {
    echo "$1" | sed 's/^/    /'
    echo "$1" | awk -v count="$2" -v guards="$3" '
        /^suspended coroutines: /    { suspended = $3 }
        /^guard pages: /             { kind = $3 }
        /^mappings while suspended: / { maps = $4 }
        /^peak RSS per coroutine: /  { rss = $5 }
        $0 == "all " count " coroutines finished" { finished = 1 }
        END {
            bad = 0
            if (suspended != count) { print "not all coroutines were suspended at once"; bad = 1 }
            if (index(kind, guards) != 1) { print "guard pages are " kind ", not " guards; bad = 1 }
            # Lightweight guards: a slab is one mapping. The fallback: one
            # more mapping per guard page (and a split of its slab).
            limit = guards == "madvise" ? 2000 : 2 * count + 2000
            if (maps == "" || maps > limit) { print "too many mappings: " maps; bad = 1 }
            if (guards == "madvise" && (rss == "" || rss < 4096 || rss > 6144)) {
                print "peak RSS per coroutine out of range: " rss; bad = 1
            }
            if (!finished) { print "the coroutines did not all finish"; bad = 1 }
            exit bad
        }'
}

kernel=$(uname -r)
major=${kernel%%.*}; rest=${kernel#*.}; minor=${rest%%[!0-9]*}
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 13 ]; }; then
    step "lightweight guards: kernel $kernel has no MADV_GUARD_INSTALL; $fallback_count coroutines on the mprotect fallback"
    check_million "$(cargo run -q --release --example million -- "$fallback_count")" "$fallback_count" mprotect
else
    step "lightweight guards: one million coroutines"
    check_million "$(cargo run -q --release --example million)" 1000000 madvise
fi

fallback=(env RUSTFLAGS="--cfg stackswitch_mprotect_guards" cargo)
fallback_dir=(--target-dir "${CARGO_TARGET_DIR:-target}/mprotect-guards")
run_tests "pool tests, mprotect guards forced" "${fallback[@]}" test --test pool "${fallback_dir[@]}"
step "mprotect guards forced: $fallback_count coroutines"
check_million "$("${fallback[@]}" run -q --release --example million "${fallback_dir[@]}" -- "$fallback_count")" \
    "$fallback_count" mprotect
echo "stack pool ok"

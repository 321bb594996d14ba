#!/usr/bin/env bash
# Runs examples/million (one million suspended coroutines, each with a guard
# page, in one process) and checks what it prints: all of them suspended at
# once, page-table guard pages on Linux >= 6.13 (so a few mappings instead of
# two per stack), and a peak RSS per coroutine close to the floor of one
# 4 KiB page. Takes about 10-25 s (mostly the kernel zeroing 4 GB of pages).
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(cargo run -q --release --example million)
echo "$out" | sed 's/^/    /'

kernel=$(uname -r)
major=${kernel%%.*}; rest=${kernel#*.}; minor=${rest%%[!0-9]*}
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 13 ]; }; then
    echo "kernel $kernel has no MADV_GUARD_INSTALL: the example cannot hold a million guarded stacks" >&2
    exit 1
fi

echo "$out" | awk '
    /^suspended coroutines: /    { suspended = $3 }
    /^guard pages: /             { guards = $3 }
    /^mappings while suspended: / { maps = $4 }
    /^peak RSS per coroutine: /  { rss = $5 }
    /^all 1000000 coroutines finished$/ { finished = 1 }
    END {
        bad = 0
        if (suspended != 1000000) { print "not all coroutines were suspended at once"; bad = 1 }
        if (guards !~ /^madvise/)  { print "guard pages are not lightweight on this kernel"; bad = 1 }
        if (maps == "" || maps > 2000) { print "too many mappings: " maps; bad = 1 }
        if (rss == "" || rss < 4096 || rss > 6144) { print "peak RSS per coroutine out of range: " rss; bad = 1 }
        if (!finished) { print "the coroutines did not all finish"; bad = 1 }
        exit bad
    }'
echo "million ok"

#!/usr/bin/env python3
"""Writes bench/results/compare.md and compare.svg from the criterion
estimates of `benches/compare.rs` and the instruction counts that
`bench/run.sh` collected (bench/results/icount.tsv). Standard library only.

usage: report.py CRITERION_DIR ICOUNT_TSV OUT_DIR COMMAND
"""

import datetime
import html
import json
import math
import os
import platform
import subprocess
import sys

LIBRARIES = ["stackswitch", "corosensei", "context", "generator", "wasmtime-fiber"]
OPERATIONS = {
    "switch": "resume + suspend round trip, a word in and a word out",
    "switch-unit": "resume + suspend round trip with `()` both ways",
    "call": "create on a reused stack, run to completion (a word in and out), drop",
    "call-owned": "as `call`, with the stack moved into the coroutine and taken back",
    "create": "as `call`, with a new default stack allocated (and freed) every time",
}
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]

NOTES = """\
- **Ratios** are peer / stackswitch: above 1.00× stackswitch is faster (or
  runs fewer instructions).
- **Time** is criterion's estimate (slope of the linear fit, or the mean where
  criterion sampled flat), one run, all libraries of an operation measured one
  after another. On a shared machine (see the load average) times can be off
  by tens of per cent (wasmtime-fiber's call and call-owned run the same
  code); the instruction counts are exact and repeatable.
- **Instructions** are counted by callgrind (`src/bin/icount.rs`): the
  operation is run n and 2n times, per op = (I(2n) − I(n)) / n, minus the same
  figure for an empty operation (the loop's own cost). *loop*: the operation
  inlined into a hot loop, as in the criterion bench (registers the switch
  clobbers are saved once, outside the loop); *own fn*: called through a
  function of its own each time (`run_outlined`), which saves and restores
  them per call. Kernel work (mmap, page faults) is not counted.
- **APIs**: stackswitch, corosensei, generator and wasmtime-fiber through
  their safe APIs; `context` (Boost.Context's fcontext) has only `unsafe`
  functions, no completion, panic propagation or unwinding: its "call" is a
  jump in and a jump back, abandoning the finished frame.
- **call** is `ScopedCoroutine::with_stack(&mut stack)` for stackswitch and
  corosensei (a `'static` `Coroutine` cannot borrow a stack), `Context::new`
  on a borrowed stack for context, re-initialising a finished generator
  (`scoped_init`) for generator, and for wasmtime-fiber, which cannot borrow
  a stack, the same code as **call-owned** (`Fiber::new(stack)` +
  `into_stack`).
- **call-owned** is `Coroutine::with_stack(stack)` + `into_stack` (the only
  sound way with a `'static` `Coroutine`); context and generator have no
  equivalent (a context never owns its stack; a generator owns its stack for
  life).
- **create** uses each library's default stack: stackswitch and corosensei
  1 MiB, context 8 pages (`ProtectedFixedSizeStack::default()`), generator
  32 KiB (its `DEFAULT_STACK_SIZE`), wasmtime-fiber 2 MiB (wasmtime's default
  async stack size; the crate has no default). All are mmap'd with a guard
  page; generator also writes a sentinel at its stack's bottom.
"""


def criterion_ns(criterion_dir, operation, library):
    path = os.path.join(criterion_dir, f"compare_{operation}", library, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        estimates = json.load(f)
    chosen = estimates.get("slope") or estimates["mean"]
    return chosen["point_estimate"]


def read_icounts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            library, operation, mode, value = line.split()
            counts[(library, operation, mode)] = None if value == "n/a" else float(value)
    return counts


def net_icount(counts, library, operation, mode):
    raw = counts.get((library, operation, mode))
    base = counts.get(("baseline", operation, mode))
    if raw is None or base is None:
        return None
    return raw - base


def fmt_time(ns):
    if ns is None:
        return "—"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.2f} ns"


def fmt_count(n):
    if n is None:
        return "—"
    return f"{n:.0f}" if abs(n - round(n)) < 0.05 else f"{n:.1f}"


def fmt_ratio(value, reference):
    if value is None or reference is None or reference <= 0:
        return "—"
    return f"{value / reference:.2f}×"


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        cpus = os.cpu_count()
        cpu = f"{cpu} ({cpus} logical CPUs)"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "CPU": cpu,
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "rustc": rustc,
        "valgrind": valgrind,
        # Other work on the machine makes times noisy (not counts).
        "load average at the end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def write_markdown(path, times, counts, command):
    lines = ["# stackswitch side by side with its peers", ""]
    lines.append(f"Generated by `{command}` on {datetime.date.today().isoformat()}.")
    lines.append("")
    for key, value in machine().items():
        lines.append(f"- {key}: {value}")
    lines.append("")
    lines.append("Operations:")
    lines.append("")
    for operation, description in OPERATIONS.items():
        lines.append(f"- **{operation}**: {description}")
    lines.append("")
    lines.append(
        "| operation | library | time | × | instructions (loop) | × | instructions (own fn) | × |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for operation in OPERATIONS:
        ref_time = times.get((operation, "stackswitch"))
        ref_loop = net_icount(counts, "stackswitch", operation, "inline")
        ref_own = net_icount(counts, "stackswitch", operation, "outlined")
        for library in LIBRARIES:
            t = times.get((operation, library))
            loop = net_icount(counts, library, operation, "inline")
            own = net_icount(counts, library, operation, "outlined")
            if t is None and loop is None:
                cells = ["n/a"] + ["—"] * 5
            else:
                cells = [
                    fmt_time(t),
                    fmt_ratio(t, ref_time),
                    fmt_count(loop),
                    fmt_ratio(loop, ref_loop),
                    fmt_count(own),
                    fmt_ratio(own, ref_own),
                ]
            name = f"**{library}**" if library == "stackswitch" else library
            lines.append(f"| {operation} | {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("![time per operation, log scale](compare.svg)")
    lines.append("")
    lines.append(NOTES)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_svg(path, times):
    """A grouped bar chart of time per operation, on a log scale."""
    width, height = 960, 440
    left, right, top, bottom = 70, 20, 50, 90
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for v in times.values() if v]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    span = math.log10(hi) - math.log10(lo)

    def y(ns):
        return top + plot_h * (1 - (math.log10(ns) - math.log10(lo)) / span)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="16">'
        "Time per operation (log scale, lower is better)</text>",
    ]
    decade = lo
    while decade <= hi * 1.0001:
        yy = y(decade)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt_time(decade)}</text>'
        )
        decade *= 10
    group_w = plot_w / len(OPERATIONS)
    bar_w = group_w * 0.8 / len(LIBRARIES)
    for g, operation in enumerate(OPERATIONS):
        gx = left + g * group_w + group_w * 0.1
        for b, library in enumerate(LIBRARIES):
            ns = times.get((operation, library))
            x = gx + b * bar_w
            if not ns:
                out.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4}" '
                    'text-anchor="middle" font-size="9" fill="#888">n/a</text>'
                )
                continue
            yy = y(ns)
            title = html.escape(f"{operation} / {library}: {fmt_time(ns)}")
            out.append(
                f'<rect x="{x:.1f}" y="{yy:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{top + plot_h - yy:.1f}" fill="{COLORS[b]}"><title>{title}</title></rect>'
            )
            out.append(
                f'<text x="{x + bar_w / 2 - 1:.1f}" y="{yy - 3:.1f}" text-anchor="middle" '
                f'font-size="8">{fmt_time(ns).replace(" ", "")}</text>'
            )
        out.append(
            f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{top + plot_h + 18}" '
            f'text-anchor="middle">{operation}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="black"/>'
    )
    legend_x = left
    for b, library in enumerate(LIBRARIES):
        out.append(
            f'<rect x="{legend_x}" y="{height - 34}" width="12" height="12" fill="{COLORS[b]}"/>'
        )
        out.append(f'<text x="{legend_x + 16}" y="{height - 24}">{library}</text>')
        legend_x += 150
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    criterion_dir, icount_tsv, out_dir, command = sys.argv[1:5]
    times = {}
    for operation in OPERATIONS:
        for library in LIBRARIES:
            ns = criterion_ns(criterion_dir, operation, library)
            if ns is not None:
                times[(operation, library)] = ns
    if not times:
        sys.exit(f"no criterion results for the comparison under {criterion_dir}")
    counts = read_icounts(icount_tsv)
    write_markdown(os.path.join(out_dir, "compare.md"), times, counts, command)
    write_svg(os.path.join(out_dir, "compare.svg"), times)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks the landing pads of the switch code in a linked binary, statically.

    ci/landing-pads.py x86_64|aarch64 BINARY [--absent] [--require ENTRY]

Every indirect-branch target of the switch code must start with the landing
pad (x86_64: `endbr64`; AArch64: `bti c`): the entry of `coroutine_start`
and `trap_start` (and, on AArch64, `stack_call_trampoline`), and every resume
address a `suspend` saves (found by the instructions that save it). With
`--absent` (a default build) none of them may have one: the pads must cost
nothing there. Fails unless it finds `coroutine_start` (and the entry named
by `--require`) and at least one resume address.
"""
import re
import subprocess
import sys

ARCHES = {
    "x86_64": {
        "objdump": ["objdump", "-d", "--no-show-raw-insn", "-M", "intel"],
        "pad": "endbr64",
        # (name, offset of the entry point): `coroutine_start` is entered
        # past the four bytes its entry function "returns" to (START_ENTRY
        # in src/arch/x86_64.rs).
        "entries": [("coroutine_start", 4), ("trap_start", 0)],
        # lea rax,[rip+0x..]  # <target>, push rax, mov rsi,rsp
        "save": [r"lea\s+rax,\[rip\+0x[0-9a-f]+\]\s+# ([0-9a-f]+)", r"push\s+rax$", r"mov\s+rsi,rsp$"],
    },
    "aarch64": {
        "objdump": ["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn"],
        "pad": "bti\tc",
        "entries": [("coroutine_start", 0), ("trap_start", 0), ("stack_call_trampoline", 0)],
        # adr x3, <target>; stp x3, x19, [sp, #-32]!
        "save": [r"adr\s+x3, ([0-9a-f]+)", r"stp\s+x3, x19, \[sp, #-32\]!"],
    },
}


def main():
    arch, binary = sys.argv[1], sys.argv[2]
    absent = "--absent" in sys.argv[3:]
    spec = ARCHES[arch]
    text = subprocess.run(spec["objdump"] + [binary], check=True, capture_output=True, text=True).stdout
    # address -> instruction text, in order; and symbol name -> address.
    insns, symbols = [], {}
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            symbols[m.group(2)] = int(m.group(1), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*?)\s*$", line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2)))
    at = dict(insns)
    targets = []
    for entry, offset in spec["entries"]:
        # Legacy (`...4arch3imp15coroutine_start17h...E`) and v0 mangling.
        pattern = re.compile(r"stackswitch.*4arch3imp%d%s" % (len(entry), entry))
        for name, addr in symbols.items():
            if pattern.search(name):
                targets.append((entry, addr + offset))
    required = ["coroutine_start"]
    if "--require" in sys.argv:
        required.append(sys.argv[sys.argv.index("--require") + 1])
    for entry in required:
        if not any(t[0] == entry for t in targets):
            sys.exit(f"{binary}: {entry} not found")
    save = [re.compile(p) for p in spec["save"]]
    resumes = set()
    for i in range(len(insns) - len(save) + 1):
        m = save[0].search(insns[i][1])
        if m and all(save[k].search(insns[i + k][1]) for k in range(1, len(save))):
            resumes.add(int(m.group(1), 16))
    if not resumes:
        sys.exit(f"{binary}: no resume address found")
    targets += [("resume address", a) for a in sorted(resumes)]
    bad = []
    for what, addr in targets:
        has_pad = at.get(addr, "").replace(" ", "\t").startswith(spec["pad"])
        if has_pad == absent:
            bad.append(f"  {what} at {addr:#x}: {at.get(addr)!r}")
    state = "without" if absent else "with"
    if bad:
        sys.exit(f"{binary}: targets not {state} `{spec['pad']}`:\n" + "\n".join(bad))
    print(f"{binary}: {len(targets)} indirect-branch targets, all {state} a landing pad "
          f"({len(resumes)} resume addresses)")


main()

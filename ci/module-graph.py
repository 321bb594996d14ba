#!/usr/bin/env python3
"""The crate's module graph, and a check that it has no cycles.

Reads every `.rs` file under `src/`, maps it to its module path, and collects
the paths it names through `crate::` (in `use` trees too) and `super::`.
Comments are skipped, so intra-doc links do not count.

The check: within every module, the graph among its child modules (each
standing for its whole subtree) must be acyclic. A module naming one of its
own ancestors is not an edge (a child may use its parent's items: that is
what nesting is for); everything else is.

    ci/module-graph.py            check; print the top-level graph
    ci/module-graph.py --all      print every edge, with the names used
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.getcwd(), "src")  # run from the repository root


def module_of(path):
    rel = os.path.relpath(path, ROOT)[: -len(".rs")].split(os.sep)
    if rel == ["lib"]:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def strip_test_modules(text):
    """Drops `#[cfg(test)]`-only modules: unit tests may use the whole crate,
    and are not part of the library's graph."""
    while True:
        m = re.search(r"#\[cfg\((?:all\()?test\b[^\]]*\]\s*mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, pos = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            pos += 1
        text = text[: m.start()] + text[pos:]


def strip_comments(text):
    # Line comments (doc comments too) and block comments; strings are rare
    # enough in paths not to matter, but are blanked so that a "//" inside
    # one does not cut a line.
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def use_tree_paths(text, start):
    """The paths of the `use` tree (or plain path) that begins at `start`,
    right after `crate::`: `a::b`, `{a::b, c::{d, e}}`."""
    paths = []

    def parse(pos, prefix):
        # Skip whitespace.
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text) and text[pos] == "{":
            pos += 1
            while True:
                while pos < len(text) and text[pos] in " \t\n,":
                    pos += 1
                if pos >= len(text) or text[pos] == "}":
                    return pos + 1
                after = parse(pos, prefix)
                # Not a path (a macro's `$name`, say): step over it.
                pos = after if after > pos else pos + 1
        m = re.compile(IDENT).match(text, pos)
        if not m:
            paths.append(prefix)
            return pos
        name = m.group(0)
        pos = m.end()
        if text.startswith("::", pos):
            return parse(pos + 2, prefix + (name,))
        paths.append(prefix + (name,))
        # Skip an `as alias`.
        m = re.compile(r"\s+as\s+" + IDENT).match(text, pos)
        return m.end() if m else pos

    parse(start, ())
    return paths


def main():
    files = {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                files[module_of(path)] = path
    modules = set(files)

    # What the crate root re-exports (`pub use a::{B, c::D}`), so that a
    # path through the root (`crate::B`) counts as naming `a`.
    root_text = strip_comments(open(files[()], encoding="utf-8").read())
    reexports = {}
    for m in re.finditer(r"\bpub use\s+(?:crate::)?", root_text):
        for path in use_tree_paths(root_text, m.end()):
            if len(path) > 1:
                reexports[path[-1]] = path

    def resolve(path):
        """The deepest known module that `path` (from the crate root) names."""
        for n in range(len(path), 0, -1):
            if path[:n] in modules:
                return path[:n]
        return ()

    # edges[a][b] = names a uses from b
    edges = defaultdict(lambda: defaultdict(set))
    for mod, path in files.items():
        text = strip_test_modules(strip_comments(open(path, encoding="utf-8").read()))
        refs = []
        for m in re.finditer(r"\bcrate::", text):
            refs += use_tree_paths(text, m.end())
        for m in re.finditer(r"\b((?:super::)+)", text):
            up = m.group(1).count("super::")
            # A file `a/b.rs` (module a::b) is a child of `a`; `super` of a
            # `mod.rs` file's module is its parent too.
            base = mod[: len(mod) - up]
            refs += [base + p for p in use_tree_paths(text, m.end())]
        for ref in refs:
            if len(ref) == 1 and ref[0] in reexports:
                ref = reexports[ref[0]]
            target = resolve(ref)
            if target == mod or mod[: len(target)] == target:
                continue  # itself or an ancestor
            edges[mod][target].add("::".join(ref[len(target):]) or "(module)")

    def children(parent):
        return sorted(m for m in modules if len(m) == len(parent) + 1 and m[:-1] == parent)

    def sibling_graph(parent):
        kids = children(parent)
        graph = defaultdict(lambda: defaultdict(set))
        for src, targets in edges.items():
            if src[: len(parent)] != parent or len(src) <= len(parent):
                continue
            a = src[: len(parent) + 1]
            for dst, names in targets.items():
                if dst[: len(parent)] != parent or len(dst) <= len(parent):
                    continue
                b = dst[: len(parent) + 1]
                if a != b:
                    graph[a][b] |= names
        return kids, graph

    def cycles(kids, graph):
        # Tarjan's strongly connected components.
        index, low, stack, on, out = {}, {}, [], set(), []
        counter = [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in graph[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

        for v in kids:
            if v not in index:
                visit(v)
        return out

    name = lambda m: "::".join(m) or "crate"
    show_all = "--all" in sys.argv
    failed = False
    for parent in sorted(modules, key=lambda m: (len(m), m)):
        kids, graph = sibling_graph(parent)
        if not kids:
            continue
        if parent == () or show_all:
            print(f"{name(parent)}:")
            for a in kids:
                targets = sorted(graph[a])
                if show_all:
                    for b in targets:
                        print(f"  {name(a)} -> {name(b)}: {', '.join(sorted(graph[a][b]))}")
                else:
                    print(f"  {name(a)} -> {', '.join(name(b) for b in targets) or '(nothing)'}")
        for comp in cycles(kids, graph):
            failed = True
            print(f"CYCLE among the children of {name(parent)}: {', '.join(name(m) for m in comp)}")
            for a in comp:
                for b in comp:
                    if b in graph[a]:
                        print(f"  {name(a)} -> {name(b)}: {', '.join(sorted(graph[a][b]))}")
    if failed:
        sys.exit(1)
    print("no cycles")


main()

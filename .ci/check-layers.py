#!/usr/bin/env python3
"""Checks the layering of Sources/Spindle (docs/architecture.md, "Layers").

Every top-level type or function a file declares belongs to the file's folder. A file that
names a declaration of another folder makes its folder depend on that one. The check fails
when a folder depends on one it may not use (ALLOWED below, the table in docs/architecture.md)
or when a file is longer than 400 lines without saying why in its header ("Longer than 400
lines because ..."). Names are matched as identifiers after comments and strings are removed;
nested declarations are not counted (only declarations at column 0).

Usage: .ci/check-layers.py [--edges]   (from the repository root; --edges prints every edge)
"""
import collections, os, re, sys

ROOT = "Sources/Spindle"
ALLOWED = {
    "Support": set(),
    "Timers": {"Support"},
    "Reactor": {"Support"},
    "Pool": {"Support"},
    "Core": {"Support", "Timers", "Reactor", "Pool"},
    "Scheduler": {"Support", "Timers", "Reactor", "Pool", "Core"},
    "EventLoop": {"Support", "Timers", "Reactor", "Pool", "Core"},
    "Sync": {"Support"},
    "Time": {"Support", "Timers", "Core", "Scheduler", "EventLoop"},
    "IO": {"Support", "Timers", "Reactor", "Pool", "Core", "Scheduler", "EventLoop", "Time", "Sync"},
    "Blocking": {"Support", "Pool", "Core", "Scheduler", "EventLoop"},
    "Global": {"Support", "Timers", "Reactor", "Pool", "Core", "Scheduler", "EventLoop"},
}
MAX_LINES = 400

DECL = re.compile(
    r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate|final|"
    r"nonisolated|indirect|open)\s+)*(?:class|struct|enum|protocol|actor|typealias|func)\s+([A-Za-z_]\w*)",
    re.M)


def strip(source):
    source = re.sub(r"//[^\n]*", "", source)
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', source)


def main():
    files = {}
    for directory, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".swift"):
                path = os.path.join(directory, name)
                with open(path) as f:
                    files[path] = f.read()
    folder = {p: os.path.relpath(p, ROOT).split(os.sep)[0] for p in files}
    problems = []
    for path, f in folder.items():
        if f not in ALLOWED:
            problems.append(f"{path}: folder {f} is not in the layer table (.ci/check-layers.py, docs/architecture.md)")
    owner = {}
    for path, source in files.items():
        for match in DECL.finditer(strip(source)):
            owner.setdefault(match.group(1), path)
    edges = collections.defaultdict(set)
    for path, source in files.items():
        for token in set(re.findall(r"\b[A-Za-z_]\w*\b", strip(source))):
            target = owner.get(token)
            if target and folder[target] != folder[path]:
                edges[(folder[path], folder[target])].add(f"{os.path.basename(path)} -> {token}")
    for (a, b), uses in sorted(edges.items()):
        if "--edges" in sys.argv:
            print(f"{a} -> {b}: {', '.join(sorted(uses))}")
        if a in ALLOWED and b not in ALLOWED[a]:
            problems.append(f"{a} may not use {b}: {', '.join(sorted(uses))}")
    for path, source in files.items():
        lines = source.count("\n")
        if lines > MAX_LINES and "Longer than 400 lines because" not in source[:3000]:
            problems.append(f"{path}: {lines} lines, and its header does not say why")
    for problem in problems:
        print("layers:", problem)
    print(f"layers: {len(files)} files, {len(edges)} folder edges, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

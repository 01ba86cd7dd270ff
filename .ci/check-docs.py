#!/usr/bin/env python3
"""Every public symbol declared in our sources has a doc comment.

Run after `swift package generate-documentation --target ...`: it reads the symbol graphs the
docc plugin extracted (<scratch>/<triple>/extracted-symbols/<package>/<Target>/*.symbols.json)
and lists each public symbol whose declaration is in this package's Sources/ and that has no
doc comment of its own. A symbol with no source location (a default implementation a protocol
of the standard library provides: Sequence's `map`, `!=`, `hashValue`, SetAlgebra's `insert`)
is not ours and is skipped; a symbol declared here whose only comment is inherited from the
protocol requirement it implements (a `description`, a `makeAsyncIterator`) counts as
undocumented, because docc shows the other module's text (or nothing) for it.

Usage: python3 .ci/check-docs.py [--scratch-path .build] Target...
Exits 1 listing the symbols (file:line, path, kind), 2 when a target's symbol graph is missing.
"""
import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = os.path.join(ROOT, "Sources") + os.sep


def graphs(scratch, target):
    """The target's symbol graphs (its own, and Target@Other for extensions of other modules'
    types) from the newest extraction, if several package folders hold one."""
    pattern = os.path.join(scratch, "*", "extracted-symbols", "*", target, f"{target}.symbols.json")
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not found:
        return []
    folder = os.path.dirname(found[-1])
    return [found[-1]] + sorted(glob.glob(os.path.join(folder, f"{target}@*.symbols.json")))


def path_of(uri):
    return uri[len("file://"):] if uri.startswith("file://") else uri


def undocumented(graph_file, module):
    graph = json.load(open(graph_file))
    for symbol in graph["symbols"]:
        location = symbol.get("location")
        if not location or symbol.get("accessLevel") not in ("public", "open"):
            continue
        path = os.path.realpath(path_of(location["uri"]))
        if not path.startswith(os.path.realpath(SOURCES)):
            continue
        comment = symbol.get("docComment")
        own = comment is not None and comment.get("module", module) == module
        text = "".join(line.get("text", "") for line in (comment or {}).get("lines", []))
        if own and text.strip():
            continue
        yield (
            os.path.relpath(path, ROOT),
            location["position"]["line"] + 1,
            ".".join(symbol["pathComponents"]),
            symbol["kind"]["displayName"],
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch-path", default=os.path.join(ROOT, ".build"))
    parser.add_argument("targets", nargs="+")
    arguments = parser.parse_args()
    problems, missing = [], []
    for target in arguments.targets:
        files = graphs(arguments.scratch_path, target)
        if not files:
            missing.append(target)
        for graph_file in files:
            problems.extend((target,) + p for p in undocumented(graph_file, target))
    for target in missing:
        print(f"check-docs: no symbol graph for {target} under {arguments.scratch_path} "
              "(run swift package generate-documentation first)", file=sys.stderr)
    if missing:
        return 2
    for target, path, line, name, kind in sorted(set(problems)):
        print(f"{path}:{line}: {target}.{name} ({kind}) is public and has no doc comment")
    if problems:
        print(f"check-docs: {len(set(problems))} undocumented public symbols", file=sys.stderr)
        return 1
    print(f"check-docs: every public symbol of {', '.join(arguments.targets)} is documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fails (exit 1, naming file and line) when an include runs against the layers.

    base    include/dataloader/{error,diagnostics,result}.hpp, include/dataloader/detail/
    text    include/dataloader/{text,json}.hpp, src/base/
    loader  include/dataloader/loader/, include/dataloader/dataloader.hpp
    pg      include/dataloader/pg/, src/pg/
    store   include/dataloader/store/, src/store/
    http    include/dataloader/http/, src/http/
    cli     src/cli/

A layer may include itself and the layers listed for it below; the loader stays
Boost-only and header-only, so it names neither libpq nor nlohmann; nothing under the
HTTP layer names Beast. Run by the build (target dataloader_layering).
"""
import os
import re
import sys

ALLOWED = {
    "base": {"base"},
    "text": {"base", "text"},
    "loader": {"base", "loader"},
    "pg": {"base", "text", "pg"},
    "store": {"base", "text", "loader", "pg", "store"},
    "http": {"base", "text", "loader", "pg", "store", "http"},
    "cli": {"base", "text", "loader", "pg", "store", "http", "cli"},
}
FORBIDDEN_SYSTEM = {
    "base": ("nlohmann/", "libpq", "boost/beast"),
    "loader": ("nlohmann/", "libpq", "boost/beast"),
    "text": ("libpq", "boost/beast"),
    "pg": ("boost/beast",),
    "store": ("boost/beast", "libpq"),
}


def layer_of(rel):
    rel = rel.replace(os.sep, "/")
    parts = rel.split("/")
    if parts[0] == "include" and len(parts) >= 3 and parts[1] == "dataloader":
        if len(parts) == 3:
            name = parts[2]
            if name in ("text.hpp", "json.hpp"):
                return "text"
            if name == "dataloader.hpp":
                return "loader"
            return "base"
        return "base" if parts[2] == "detail" else parts[2]
    if parts[0] == "src" and len(parts) >= 2:
        return {"base": "text"}.get(parts[1], parts[1])
    return None


def main(root):
    include_re = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
    problems = []
    for top in ("include", "src"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if not f.endswith((".hpp", ".cpp", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                layer = layer_of(rel)
                if layer not in ALLOWED:
                    continue
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    m = include_re.match(line)
                    if not m:
                        continue
                    kind, name = m.groups()
                    if name.startswith("dataloader/"):
                        target = layer_of("include/" + name)
                    elif kind == '"':
                        target = layer_of(os.path.relpath(os.path.join(dirpath, name), root))
                    else:
                        target = None
                        if any(name.startswith(p) for p in FORBIDDEN_SYSTEM.get(layer, ())):
                            problems.append(f"{rel}:{n}: the {layer} layer may not include <{name}>")
                    if target is not None and target not in ALLOWED[layer]:
                        problems.append(f"{rel}:{n}: the {layer} layer may not include {name} ({target} layer)")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))

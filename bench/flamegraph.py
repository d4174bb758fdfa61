#!/usr/bin/env python3
"""Where dataloader-server's CPU goes under the prefetch load: perf samples of the server
folded into stacks and drawn as a flame graph (an SVG with a tooltip per frame).

  python3 bench/flamegraph.py --url DATABASE_URL [--binary build/dataloader-server]
                              [--seconds 5] [--out docs/flame-prefetch.svg]

Starts the server on a free port (default threads), loads it with wrk at 64 connections
(bench/http/prefetch.lua over 100,000 seeded users), records `perf record --call-graph
dwarf` of the server process only, then folds `perf script` output itself (no external
FlameGraph scripts) and prints the largest self and inclusive shares.
"""
import argparse, collections, html, os, re, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from service import Server  # noqa: E402


def short(name):
    """Drops template arguments and parameter lists: the graph is read, not grepped."""
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    out, depth = [], 0
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    s = "".join(out).strip()
    return s[:120] or name[:120]


def fold(perf_script):
    stacks = collections.Counter()
    for block in perf_script.split("\n\n"):
        lines = [l.strip() for l in block.strip().splitlines()]
        if len(lines) < 2:
            continue
        frames = []
        for l in lines[1:]:
            parts = l.split(None, 1)
            if len(parts) < 2:
                continue
            sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0])
            if sym != "[unknown]":  # frames the unwinder could not name add only noise
                frames.append(short(sym))
        if frames:
            stacks[";".join(reversed(frames))] += 1
    return stacks


def svg(stacks, title, width=1200, row=16):
    root = {"n": 0, "c": {}}
    for stack, n in stacks.items():
        node = root
        node["n"] += n
        for f in stack.split(";"):
            node = node["c"].setdefault(f, {"n": 0, "c": {}})
            node["n"] += n
    total = root["n"] or 1
    rects, depth_max = [], 0

    def walk(node, name, x, depth):
        nonlocal depth_max
        w = node["n"] / total * width
        if w < 2.0:  # narrower than two pixels: unreadable, and keeps the file small enough to commit
            return
        depth_max = max(depth_max, depth)
        rects.append((x, depth, w, name, node["n"]))
        cx = x
        for child_name, child in sorted(node["c"].items(), key=lambda kv: -kv[1]["n"]):
            walk(child, child_name, cx, depth + 1)
            cx += child["n"] / total * width

    walk(root, "all", 0.0, 0)
    height = (depth_max + 1) * row + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
           f'<text x="4" y="16" font-size="13">{html.escape(title)}</text>']
    for x, depth, w, name, n in rects:
        y = height - (depth + 1) * row - 4
        hue = 20 + (hash(name) % 40)
        label = f"{name} ({n / total:.1%})"
        out.append(f'<g><title>{html.escape(label)}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                   f'fill="hsl({hue},85%,60%)" stroke="white" stroke-width="0.3"/>')
        if w > 40:
            chars = int(w / 6.6)
            text = label if len(label) <= chars else label[:max(0, chars - 2)] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def shares(stacks, top=15):
    total = sum(stacks.values()) or 1
    own, incl = collections.Counter(), collections.Counter()
    for stack, n in stacks.items():
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return ([(f, n / total) for f, n in own.most_common(top)], [(f, n / total) for f, n in incl.most_common(top * 2)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "dataloader-server"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "flame-prefetch.svg"))
    a = ap.parse_args()
    script = os.path.join(ROOT, "bench", "http", "prefetch.lua")
    env = {**os.environ, "USERS": str(a.users)}
    srv = Server(a.binary, a.url, threads=None)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        try:
            load = subprocess.Popen(["wrk", "-t2", "-c64", f"-d{a.seconds + 3}s", "-s", script, srv.base],
                                    stdout=subprocess.DEVNULL, env=env)
            time.sleep(1.5)
            subprocess.run(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(srv.proc.pid),
                            "-o", data, "--", "sleep", str(a.seconds)], check=True, capture_output=True)
            load.wait()
        finally:
            srv.stop()
        text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym"], check=True,
                              capture_output=True, text=True).stdout
    stacks = fold(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(svg(stacks, f"dataloader-server, GET prefetch at 64 connections: {sum(stacks.values())} samples"))
    own, incl = shares(stacks)
    print("self:", *(f"{p:6.1%} {f}" for f, p in own), sep="\n  ")
    print("inclusive:", *(f"{p:6.1%} {f}" for f, p in incl), sep="\n  ")
    print("wrote", a.out)


if __name__ == "__main__":
    main()

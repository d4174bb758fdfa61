#!/usr/bin/env python3
"""Loader core figures, side by side in one run:
  - ns per load (median of repeats) from loader_bench (Google Benchmark);
  - instructions and heap allocations per load from valgrind, as the difference between
    two fixed runs of different length (so start-up and tear-down cancel out);
  - graphql/dataloader 2.2.3 on Node.js running the same loop, when node and npm are there.
Prints a markdown table and writes JSON to the path given with --json.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

def google_benchmark(binary, repeats):
    out = run([binary, f"--benchmark_repetitions={repeats}", "--benchmark_report_aggregates_only=true",
               "--benchmark_format=json"]).stdout
    medians = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].replace("/real_time", "")
            medians[name] = b["ns_per_load"] * 1e9
    return medians

def valgrind_per_load(binary, coroutines, short, long_, mode="--fixed"):
    def totals(loads_each):
        with tempfile.TemporaryDirectory() as tmp:
            cg = run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", binary,
                      mode, str(coroutines), str(loads_each)]).stderr
            ir = int(re.search(r"Collected : (\d+)", cg).group(1))
        mc = run(["valgrind", "--tool=memcheck", "--leak-check=no", binary,
                  mode, str(coroutines), str(loads_each)]).stderr
        allocs = int(re.search(r"total heap usage: ([\d,]+) allocs", mc).group(1).replace(",", ""))
        return ir, allocs
    ir1, a1 = totals(short)
    ir2, a2 = totals(long_)
    loads = coroutines * (long_ - short)
    return (ir2 - ir1) / loads, (a2 - a1) / loads

def valgrind_table(binary):
    """Instructions and allocations per load at 10, 100 and 1000 coroutines, and the same
    for the Asio floor at 100 (key "floor_100"): their ratio is the loader's own cost."""
    table = {}
    for c in (10, 100, 1000):
        instr, allocs = valgrind_per_load(binary, c, 2000 // c if c < 1000 else 2, 6000 // c if c < 1000 else 6)
        table[c] = {"instructions_per_load": instr, "allocations_per_load": allocs}
    instr, allocs = valgrind_per_load(binary, 100, 20, 60, "--fixed-floor")
    table["floor_100"] = {"instructions_per_load": instr, "allocations_per_load": allocs}
    return table

def graphql_dataloader(repeats):
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".node")
    if not os.path.isdir(os.path.join(cache, "node_modules", "dataloader")):
        os.makedirs(cache, exist_ok=True)
        try:
            run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", cache, "dataloader@2.2.3"])
        except subprocess.CalledProcessError:
            return None
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "graphql_dataloader.js")
    out = run(["node", script, str(repeats)], env={**os.environ, "NODE_PATH": os.path.join(cache, "node_modules")}).stdout
    return {int(d["coroutines"]): d["ns_per_load"] for d in map(json.loads, out.splitlines())}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/bench/loader_bench")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no valgrind")
    ap.add_argument("--json")
    a = ap.parse_args()
    repeats = 2 if a.quick else a.repeats
    gb = google_benchmark(a.binary, repeats)
    result = {"repeats": repeats, "ns_per_load": gb}
    if not a.quick:
        result["valgrind"] = valgrind_table(a.binary)
    result["graphql_dataloader_ns_per_load"] = None if a.quick else graphql_dataloader(repeats)

    print("| workload | ns per load (median) | instructions per load | allocations per load | graphql/dataloader 2.2.3 ns | ratio |")
    print("|---|---|---|---|---|---|")
    for c in (10, 100, 1000):
        ns = gb[f"BM_load_distinct/{c}"]
        vg = result.get("valgrind", {}).get(c, {})
        js = (result["graphql_dataloader_ns_per_load"] or {}).get(c)
        print(f"| {c} coroutines, distinct keys | {ns:.1f} | {vg.get('instructions_per_load', float('nan')):.0f} | "
              f"{vg.get('allocations_per_load', float('nan')):.3f} | {js if js is None else f'{js:.1f}'} | "
              f"{'' if js is None else f'{js / ns:.2f}x'} |")
    print(f"| load_many of 100 keys (per key) | {gb['BM_load_many_100']:.1f} | | | | |")
    print(f"| cache hit | {gb['BM_cache_hit']:.1f} | | | | |")
    floor = result.get("valgrind", {}).get("floor_100", {})
    print(f"| floor: bare asio use_awaitable op, 100 coroutines | {gb['BM_asio_awaitable_floor/100']:.1f} | "
          f"{floor.get('instructions_per_load', float('nan')):.0f} | {floor.get('allocations_per_load', float('nan')):.3f} | | |")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)

if __name__ == "__main__":
    sys.exit(main())

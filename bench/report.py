#!/usr/bin/env python3
"""Markdown tables from a results JSON; with --readme, replaces the README's benchmark
section (between <!-- bench:start --> and <!-- bench:end -->)."""
import json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prefetch_table(title, points):
    """One prefetch table (a row per connections x coalesce) and its on/off throughput ratios."""
    out = [title, "",
           "| connections | coalesce | requests/s | p50 ms | p99 ms | statements/request | round trips/request | server CPU µs/request |",
           "|---|---|---|---|---|---|---|---|"]
    for x in sorted(points, key=lambda x: (x["connections"], x["coalesce"] != "on")):
        out.append(f'| {x["connections"]} | {x["coalesce"]} | {x["requests_per_s"]:,.0f} | {x["p50_ms"]:.2f} | {x["p99_ms"]:.2f} | '
                   f'{x["statements_per_request"]:.3f} | {x["round_trips_per_request"]:.3f} | {x["server_cpu_us_per_request"]:.0f} |')
    by = {(x["connections"], x["coalesce"]): x for x in points}
    ratios = [f'{c}: {by[(c, "on")]["requests_per_s"] / by[(c, "off")]["requests_per_s"]:.2f}x'
              for c in sorted({x["connections"] for x in points}) if (c, "on") in by and (c, "off") in by]
    return out + ["", "Throughput, coalesce on / off, by connections: " + ", ".join(ratios) + ".", ""]


def ceiling_and_peer(r):
    """The prefetch statement's own ceiling (pgbench), the service at 64 connections against
    it, and the Node.js graphql/dataloader peer in its best measured configuration."""
    st, peers = r.get("pg_statement"), r.get("node_peer") or []
    ours = next((x for x in r["http_prefetch"] if x["connections"] == 64 and x["coalesce"] == "on"), None)
    if not st or not ours:
        return []
    out = ["### Against PostgreSQL's ceiling and the Node.js peer (prefetch, 64 connections)", "",
           "| | requests/s (users/s) | server CPU µs/request |", "|---|---|---|",
           f'| the prefetch statement alone, pgbench, {st["ceiling_clients"]} clients (64 users per execution; '
           f'{st["us_per_user"]:.1f} µs per user with one client) | {st["ceiling_users_per_s"]:,} | |',
           f'| dataloader-server, one run | {ours["requests_per_s"]:,.0f} | {ours["server_cpu_us_per_request"]:.0f} |']
    # The same configuration's median from the interleaved batching rounds: steadier than one run.
    median = next((x for x in r.get("batching") or [] if x["connections"] == 64 and x["mode"] == "smart"), None)
    if median:
        out.append(f'| dataloader-server, median of {median.get("rounds", 1)} interleaved rounds | '
                   f'{median["requests_per_s"]:,.0f} | {median["server_cpu_us_per_request"]:.0f} |')
    for p in peers:
        out.append(f'| Node.js: graphql/dataloader 2.2.3 + pg, {p["workers"]} process{"es" if p["workers"] > 1 else ""}, '
                   f'pool {p["pool"]} | {p["requests_per_s"]:,.0f} | {p["server_cpu_us_per_request"]:.0f} |')
    best = max(peers, key=lambda p: p["requests_per_s"]) if peers else None
    served = [ours["requests_per_s"]] + ([median["requests_per_s"]] if median else [])
    line = ("dataloader-server serves " + " / ".join(f'{x / st["ceiling_users_per_s"]:.0%}' for x in served)
            + " of the statement's ceiling")
    if best:
        line += " and " + " / ".join(f'{x / best["requests_per_s"]:.1f}x' for x in served) + " the best Node.js configuration"
    if median:
        line += " (one run / interleaved median)"
    return out + ["", line + " (service, PostgreSQL and wrk share the cores). Where the service's CPU goes: "
                  "[flame graph](docs/flame-prefetch.svg) (`python3 bench/flamegraph.py`).", ""]


def batching_table(points):
    """Smart batching against the end of the tick and fixed windows, by connections."""
    if not points:
        return []
    modes = list(dict.fromkeys(x["mode"] for x in points))
    rounds = points[0].get("rounds", 1)
    out = ["### How batches are formed (prefetch): requests/s, statements/request, p99 ms"
           + (f" (medians of {rounds} interleaved rounds)" if rounds > 1 else ""), "",
           "| connections | " + " | ".join(modes) + " |", "|---" * (len(modes) + 1) + "|"]
    by = {(x["connections"], x["mode"]): x for x in points}
    for c in sorted({x["connections"] for x in points}):
        cells = [f'{by[(c, m)]["requests_per_s"]:,.0f}, {by[(c, m)]["statements_per_request"]:.3f}, {by[(c, m)]["p99_ms"]:.1f}'
                 if (c, m) in by else "" for m in modes]
        out.append(f"| {c} | " + " | ".join(cells) + " |")
    return out + ["", "Smart batching (the default): a batch ready at the end of its tick goes at once while a pool "
                  "connection can take it, and keeps gathering keys while every connection has two round trips in flight. "
                  "`tick`: `--smart-batching off`; windows: `--smart-batching off --batch-window-us N`.", ""]


def report(r):
    m = r["machine"]
    out = [f'Measured {m["date"]} on {m["cores"]} cores ({m["cpu"]}), PostgreSQL {m["postgresql"]} on the same '
           f'machine (private server, durability off{", shared_buffers " + m["shared_buffers"] if "shared_buffers" in m else ""}), load from `{m["wrk"].split(" [")[0]}` on the same cores. '
           f'Reproduce with `python3 bench/run.py`; every figure is in `bench/results/`.', ""]
    out += prefetch_table("### HTTP: `GET /v1/users/{random user}/prefetch`, 100,000 seeded users", r["http_prefetch"])
    remote = r.get("http_prefetch_remote") or []
    if remote:
        rtt = 2 * remote[0]["one_way_delay_us"] / 1000
        out += prefetch_table(f"### The same, PostgreSQL {rtt:g} ms away (round trip through a delaying relay)", remote)
    out += ["![throughput](docs/http-throughput.svg) ![p99](docs/http-p99.svg) ![statements](docs/statements-per-request.svg)", ""]
    out += ceiling_and_peer(r)
    out += batching_table(r.get("batching") or [])
    out += ["### HTTP: `POST /v1/memories`, 1–10 items per request", "",
            "| connections | coalesce | requests/s | items saved/s | p99 ms | statements/request | statements/saved item |",
            "|---|---|---|---|---|---|---|"]
    for x in r["http_save"]:
        items = x["naive_statements_per_request"]  # one statement per item is the naive count
        out.append(f'| {x["connections"]} | {x["coalesce"]} | {x["requests_per_s"]:,.0f} | {x["requests_per_s"] * items:,.0f} | '
                   f'{x["p99_ms"]:.2f} | {x["statements_per_request"]:.3f} | {x["statements_per_request"] / items:.3f} |')
    if r.get("batch_settings"):
        out += ["", "### Batch settings, prefetch at 64 connections", "",
                "| settings | requests/s | p99 ms | statements/request |", "|---|---|---|---|"]
        for x in r["batch_settings"]:
            out.append(f'| `{x["settings"]}` | {x["requests_per_s"]:,.0f} | {x["p99_ms"]:.2f} | {x["statements_per_request"]:.3f} |')

    s, o = r["saves"], r.get("saves_overwrite")
    out += ["", f'### Saving {s["records"]:,} memories (median of {s["repeats"]}; every strategy starts from the same vacuumed state)', ""]
    if o:
        out += ["| strategy | new records ms | vs one per record | overwriting ms | vs one per record |", "|---|---|---|---|---|"]
    else:
        out += ["| strategy | ms | vs one per record |", "|---|---|---|"]
    for n in ("one_per_record", "chunks_of_100", "pipelined_chunks", "single_statement", "coalesced"):
        row = f'| {n.replace("_", " ")} | {s[n + "_ms"]:.1f} | {s["one_per_record_ms"] / s[n + "_ms"]:.1f}x |'
        if o:
            row += f' {o[n + "_ms"]:.1f} | {o["one_per_record_ms"] / o[n + "_ms"]:.1f}x |'
        out.append(row)
    out += ["", "![save strategies](docs/save-strategies.svg)", "", "### Prefetch of N users in one tick, naive (coalesce off) vs batched", "",
            "| users | naive statements | batched statements | queries_saved | saved | efficiency_gain | naive ms | batched ms |",
            "|---|---|---|---|---|---|---|---|"]
    for x in r["prefetch_naive_vs_batched"]:
        saved = x["naive_statements"] - x["batched_statements"]  # the store's /stats definitions
        out.append(f'| {x["users"]} | {x["naive_statements"]} | {x["batched_statements"]} | {saved} | {saved / x["naive_statements"]:.0%} | '
                   f'{saved / x["batched_statements"]:.2f} | {x["naive_ms"]:.2f} | {x["batched_ms"]:.2f} |')
    out += ["", "### PostgreSQL access patterns (N profile lookups)", "",
            "| N | sequential ms | pipelined ms | one `= ANY` ms | raw libpq pipeline ms | sequential / ANY | pipelined / raw |", "|---|---|---|---|---|---|---|"]
    for x in r["pg_access_patterns"]:
        out.append(f'| {x["n"]} | {x["sequential_ms"]:.3f} | {x["pipelined_ms"]:.3f} | {x["any_ms"]:.3f} | {x["libpq_floor_ms"]:.3f} | '
                   f'{x["sequential_ms"] / x["any_ms"]:.1f}x | {x["pipelined_ms"] / x["libpq_floor_ms"]:.2f}x |')
    L = r["loader"]
    out += ["", "### Loader core (cache off, trivial batch function)", "",
            "| workload | ns/load | instructions/load | allocations/load | graphql/dataloader 2.2.3 ns |", "|---|---|---|---|---|"]
    for c in (10, 100, 1000):
        vg = (L.get("valgrind") or {}).get(str(c)) or (L.get("valgrind") or {}).get(c) or {}
        js = (L.get("graphql_dataloader_ns_per_load") or {})
        jsv = js.get(str(c)) or js.get(c)
        out.append(f'| {c} coroutines | {L["ns_per_load"][f"BM_load_distinct/{c}"]:.1f} | {vg.get("instructions_per_load", 0):.0f} | '
                   f'{vg.get("allocations_per_load", 0):.3f} | {"" if jsv is None else f"{jsv:.1f}"} |')
    out.append(f'| load_many of 100 (per key) | {L["ns_per_load"]["BM_load_many_100"]:.1f} | | | |')
    out.append(f'| cache hit | {L["ns_per_load"]["BM_cache_hit"]:.1f} | | | |')
    floor = (L.get("valgrind") or {}).get("floor_100") or {}
    out.append(f'| floor: bare `use_awaitable` op, 100 coroutines | {L["ns_per_load"]["BM_asio_awaitable_floor/100"]:.1f} | '
               f'{floor.get("instructions_per_load", 0):.0f} | {floor.get("allocations_per_load", 0):.3f} | |')
    return "\n".join(out) + "\n"


def main():
    r = json.load(open(sys.argv[1]))
    text = report(r)
    if "--readme" in sys.argv:
        path = os.path.join(ROOT, "README.md")
        readme = open(path).read()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start in readme:
            a = readme.index(start) + len(start)
            b = readme.index(end)
            readme = readme[:a] + "\n" + text + readme[b:]
        else:
            readme = readme.replace("## Layout", "## Benchmarks\n\n" + start + "\n" + text + end + "\n\n## Layout")
        open(path, "w").write(readme)
    print(text)


if __name__ == "__main__":
    main()

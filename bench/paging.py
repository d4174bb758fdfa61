#!/usr/bin/env python3
"""Keyset paging at depth (issue 16): page 1 against page 1,000 of a user with 50,000
memories (50 per page), through the service, taking turns; per page, the statement's mean
execution time as PostgreSQL's pg_stat_statements records it and the request's latency as
the client sees it. For contrast, the same pages read with OFFSET (what keyset paging
replaces), timed by EXPLAIN ANALYZE on the same server.

  python3 bench/paging.py [--build build-bench] [--rounds R] [--requests N]

Writes bench/results/paging-<date>.json and prints a table.
"""
import argparse, json, os, re, statistics, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from scenario import Scenario, medians  # noqa: E402
from service import Server, request  # noqa: E402

MEMORIES, PAGE = 50_000, 50
DEEP = "deep-user"
FILL = f"""
INSERT INTO memories (user_id, category, key, value, created_at, updated_at)
SELECT '{DEEP}', (ARRAY['FACT','INTEREST','GOAL','EXPERIENCE','PREFERENCE'])[1 + g % 5], 'memory ' || g,
       repeat('v', 100), now() - g * interval '1 second', now() - g * interval '1 second'
FROM generate_series(1, {MEMORIES}) g ON CONFLICT DO NOTHING"""
# The page statement's entry in pg_stat_statements (sql.hpp: store_memory_pages).
PAGES_STATEMENT = "%WITH TIES%"
OFFSET = (f"SELECT category, key, value, created_at, updated_at FROM memories WHERE user_id = '{DEEP}' "
          f"ORDER BY updated_at DESC, category, key LIMIT {PAGE} OFFSET %d")


def page_path(after):
    return f"/v1/users/{DEEP}/memories?limit={PAGE}" + (f"&after={after}" if after else "")


def cursors(srv):
    """The `after` of every page: [None, cursor of page 2, ...]."""
    out, after = [None], None
    while True:
        status, body, _ = request(srv.port, "GET", page_path(after))
        assert status == 200, body
        after = body["next"]
        if after is None:
            return out
        out.append(after)


def timed_pages(sc, srv, after, n):
    """Mean statement time (pg_stat_statements) and median request latency of n reads of one page."""
    sc.psql("SELECT pg_stat_statements_reset()")
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        status, body, _ = request(srv.port, "GET", page_path(after))
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200 and len(body["memories"]) == PAGE, body
    calls, mean_ms, rows = sc.psql(
        "SELECT sum(calls), sum(total_exec_time) / sum(calls), sum(rows) / sum(calls) FROM pg_stat_statements "
        f"WHERE query LIKE '{PAGES_STATEMENT}'").strip().split("|")
    return {"calls": int(calls), "statement_mean_ms": float(mean_ms), "rows_per_call": float(rows),
            "request_p50_ms": statistics.median(latencies)}


def offset_ms(sc, offset, n):
    """Median execution time of the OFFSET query, by EXPLAIN ANALYZE."""
    times = []
    for _ in range(n):
        plan = sc.psql("EXPLAIN (ANALYZE, TIMING OFF) " + OFFSET % offset)
        times.append(float(re.search(r"Execution Time: ([0-9.]+) ms", plan).group(1)))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300)
    a = ap.parse_args()
    with Scenario("paging", a.build, 1000, memories=MEMORIES, page=PAGE, rounds=a.rounds, requests=a.requests) as sc:
        sc.psql(FILL)
        sc.psql("VACUUM ANALYZE memories")
        srv = Server(sc.binary, sc.url, threads=2)
        try:
            pages = cursors(srv)
            assert len(pages) == MEMORIES // PAGE, len(pages)
            runs = {1: [], len(pages): []}
            for _ in range(a.rounds):
                for number in runs:
                    runs[number].append(timed_pages(sc, srv, pages[number - 1], a.requests))
        finally:
            srv.stop()
        sc.results["keyset"] = [{"page": number, **medians(rs)}
                                for number, rs in runs.items()]
        sc.results["offset"] = [{"page": number, "execution_ms": offset_ms(sc, (number - 1) * PAGE, 21)}
                                for number in runs]
    print(json.dumps(sc.results, indent=2))
    print(report(sc.results))


def report(r):
    first, deep = r["keyset"]
    off_first, off_deep = r["offset"]
    lines = [f"| {r['memories']:,} memories, {r['page']} per page | statement mean ms (pg_stat_statements) | "
             "rows read per call | request p50 ms | OFFSET instead: execution ms |", "|---|---|---|---|---|"]
    for k, o in ((first, off_first), (deep, off_deep)):
        lines.append(f"| page {k['page']:,} | {k['statement_mean_ms']:.3f} | {k['rows_per_call']:.0f} | "
                     f"{k['request_p50_ms']:.2f} | {o['execution_ms']:.3f} |")
    lines.append(f"\nPage {deep['page']:,} costs {deep['statement_mean_ms'] / first['statement_mean_ms']:.2f}x page 1 "
                 f"with keyset paging, {off_deep['execution_ms'] / off_first['execution_ms']:.0f}x with OFFSET.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The cache across requests (issue 15), cache on against cache off side by side in one
run: prefetch of users chosen by a Zipf law (s = 0.8, 1.0, 1.2 over the seeded users),
95 % reads and 5 % profile writes, 64 connections; the modes take turns, medians of the
rounds. Then the write path's cost of the invalidation triggers (saves/s with the
triggers enabled and disabled, taking turns).

  python3 bench/cache.py [--build build-bench] [--users N] [--rounds R] [--seconds S]
  python3 bench/cache.py --quick --build build    # the suite's form: checks, not speed

Steady state, as in a service that has run for a while: each server first reads every
user's prefetch once (walk_users.lua; with the cache on this fills it, in both modes it
warms PostgreSQL's buffers), then 3 s of the mix, then the measured S seconds.

The mix is bench/http/zipf_load.cpp, which checks every read against the writes it
made: a read sent after a write of its user was acknowledged must show that write or a
newer one (never two writes of a user in flight, so "newer" is well defined). Its probe
users are written through A and through a second instance B and read through A: with
B's token at once, and without one within the notification's latency, which it times.
A round with a stale or failed read fails the benchmark.

Per configuration: requests/s, p50/p99, cache hit rate, statements per request, and the
CPU time per request (user + system, from /proc) of the service and of the load
generator: the figures that decide the requests/s when service, PostgreSQL and the load
share the cores. For scale, the floor: the service's CPU time per /healthz request, an
answer with no work behind it; and the ceiling: the s = 1.0 mix without writes, where
every read is a hit once the cache is filled, cache on against off (the most any cache
could give on this machine). Writes bench/results/cache-<date>.json.
"""
import argparse, json, os, signal, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from run import cpu_seconds, get_json, parse_wrk, postgres_behind_delay, sh  # noqa: E402
from scenario import Scenario, medians  # noqa: E402
from service import Server  # noqa: E402

SAVE = os.path.join(ROOT, "bench", "http", "save.lua")
WALK = os.path.join(ROOT, "bench", "http", "walk_users.lua")


def wrk(url, script, seconds, env):
    """wrk's report of `seconds` at 64 connections: of `script`, or of GET `url` without one."""
    with_script = ("-s", script) if script else ()
    return sh("wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", *with_script, url, env={**os.environ, **env})


def walk_every_user(server, users):
    """Every user's prefetch read once, at 64 connections."""
    before = server.stats()["total_operations"]
    walk = subprocess.Popen(["wrk", "-t2", "-c64", "-d600s", "-s", WALK, server.base], stdout=subprocess.DEVNULL,
                            env={**os.environ, "USERS": str(users), "THREADS": "2"})
    try:
        deadline = time.time() + 600
        while server.stats()["total_operations"] - before < users and time.time() < deadline:
            time.sleep(0.2)
    finally:
        walk.send_signal(signal.SIGINT)
        walk.wait()


def measured(server, url, script, seconds, env):
    """wrk's report (see wrk()), with the server's CPU time (user + system) per request."""
    cpu0 = cpu_seconds(server.proc.pid)
    r = parse_wrk(wrk(url, script, seconds, env))
    r["service_cpu_us_per_request"] = (cpu_seconds(server.proc.pid) - cpu0) * 1e6 / max(1, r["requests"])
    return r


def zipf_load(build, a, b, s, users, seconds, write_percent, warmup_seconds=3):
    """zipf_load's report of the mix against A (probes through B when given), with the
    CPU time per request of the service A and of the load generator itself."""
    cmd = [os.path.join(build, "bench", "zipf_load"), "--port", str(a.port), "--users", str(users),
           "--zipf-s", str(s), "--write-percent", str(write_percent), "--seconds", str(seconds),
           "--warmup-seconds", str(warmup_seconds)]
    if b:
        cmd += ["--probe-port", str(b.port)]
    cpu0, own0 = cpu_seconds(a.proc.pid), os.times()
    # The generator has no deadline of its own for an answer: a server that stops answering
    # fails the round here instead of hanging it.
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup_seconds + 120)
    cpu1, own1 = cpu_seconds(a.proc.pid), os.times()
    if not run.stdout.strip():
        raise RuntimeError(f"zipf_load failed: {run.stderr}")
    r = json.loads(run.stdout)
    if run.returncode != 0:
        raise RuntimeError(f"zipf_load: stale or failed reads: {run.stdout}")
    # Both processes ran for the warmup too, at the same rate: per request of the whole run.
    served = max(1, r["requests"]) * (seconds + warmup_seconds) / seconds
    r["requests_with_warmup"] = served
    r["service_cpu_us_per_request"] = (cpu1 - cpu0) * 1e6 / served
    load_cpu = (own1.children_user - own0.children_user) + (own1.children_system - own0.children_system)
    r["load_cpu_us_per_request"] = load_cpu * 1e6 / served
    return r


def mixed_load(build, primary, cache, s, users, seconds, write_percent=5, relay=None):
    """One round of the mix; with write_percent 0 no one writes (no probes either). With
    `relay`, the pid of the relay that puts `primary` across a network, its CPU time per
    request too."""
    binary = os.path.join(build, "dataloader-server")
    extra = ("--cache-entries", str(users)) if cache else ()
    a = Server(binary, primary, *extra, threads=None)
    b = Server(binary, primary, *extra, threads=1) if write_percent else None
    try:
        walk_every_user(a, users)
        s0 = get_json(a.base + "/stats")
        relay0 = cpu_seconds(relay) if relay else 0
        r = zipf_load(build, a, b, s, users, seconds, write_percent)
        s1 = get_json(a.base + "/stats")
        served = r.pop("requests_with_warmup")
        if relay:
            r["relay_cpu_us_per_request"] = (cpu_seconds(relay) - relay0) * 1e6 / served
        hits = s1["cache"]["hits"] - s0["cache"]["hits"]
        misses = s1["cache"]["misses"] - s0["cache"]["misses"]
        r.update({"hit_rate": hits / max(1, hits + misses),
                  "statements_per_request": (s1["queries"] - s0["queries"]) / served,
                  "cache_entries": s1["cache"]["entries"], "cache_bytes": s1["cache"]["bytes"]})
        return r
    finally:
        a.stop()
        if b:
            b.stop()


# Counts that add up over the rounds rather than take their median: every round's reads count.
SUMMED = ("stale", "failed", "checked_reads", "reads_after_a_write", "unconverged", "notifications_timed")


def side_by_side(a, url, s, relay=None, write_percent=5):
    """The mix at Zipf s, cache off and on taking turns for a.rounds rounds: medians."""
    runs = {False: [], True: []}
    for _ in range(a.rounds):
        for cache in (False, True):
            runs[cache].append(mixed_load(a.build, url, cache, s, a.users, a.seconds, write_percent, relay))
    out = []
    for cache, rs in runs.items():
        r = medians(rs, skip=SUMMED)
        r.update({k: sum(x[k] for x in rs) for k in SUMMED})
        r.update({"zipf_s": s, "cache": cache})
        out.append(r)
        print(json.dumps(r), flush=True)
    return out


def floor(binary, primary, seconds):
    """/healthz: what an answer costs the service with no work behind it."""
    srv = Server(binary, primary, threads=None)
    try:
        wrk(srv.base + "/healthz", None, 1, {})
        return measured(srv, srv.base + "/healthz", None, seconds, {})
    finally:
        srv.stop()


def save_rate(binary, primary, triggers, seconds):
    sh("psql", "-X", "-q", "-d", primary, "-c",
       f"ALTER TABLE memories {'ENABLE' if triggers else 'DISABLE'} TRIGGER USER")
    srv = Server(binary, primary, threads=None)
    try:
        wrk(srv.base, SAVE, 1, {"USERS": "100000"})
        return parse_wrk(wrk(srv.base, SAVE, seconds, {"USERS": "100000"}))
    finally:
        srv.stop()
        sh("psql", "-X", "-q", "-d", primary, "-c", "ALTER TABLE memories ENABLE TRIGGER USER")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true",
                    help="the suite's form: 2,000 users, one short round of s = 1.0, checks only (no results file)")
    a = ap.parse_args()
    zipf = (0.8, 1.0, 1.2)
    if a.quick:
        a.users, a.rounds, a.seconds, zipf = 2000, 1, 2, (1.0,)
    with Scenario("cache", a.build, a.users, save=not a.quick, connections=64, rounds=a.rounds, seconds=a.seconds,
                  write_percent=5) as sc:
        binary, primary, results = sc.binary, sc.url, sc.results
        results["mixed"] = []
        for s in zipf:
            results["mixed"] += side_by_side(a, primary, s)
        # As deployed, PostgreSQL is across a network: the s = 1.0 mix again through a relay
        # that delays each direction by 0.25 ms (its CPU time is taken from the same cores).
        with postgres_behind_delay(a.build, primary, 250) as (remote_url, relay):
            results["remote"] = {"one_way_delay_us": 250, "mixed": side_by_side(a, remote_url, 1.0, relay)}
        # The most any cache could give here: the s = 1.0 mix without writes, every read a
        # hit once the walk has filled the cache.
        results["no_writes"] = side_by_side(a, primary, 1.0, write_percent=0)
        results["healthz"] = medians([floor(binary, primary, a.seconds) for _ in range(a.rounds)])
        print(json.dumps(results["healthz"]), flush=True)
        saves = {True: [], False: []}
        for _ in range(a.rounds):
            for triggers in (True, False):
                saves[triggers].append(save_rate(binary, primary, triggers, a.seconds)["requests_per_s"])
        results["saves_per_s"] = {"triggers": statistics.median(saves[True]),
                                  "no_triggers": statistics.median(saves[False])}
        print(json.dumps(results["saves_per_s"]), flush=True)
    print(report(results))
    if a.quick:
        check_quick(results)


def check_quick(results):
    """What the suite asserts of the quick form: the load checked reads that followed its
    own writes and found none stale (zipf_load itself fails a round on a stale or failed
    read), every probe write converged, and the cache served hits."""
    on = next(r for r in results["mixed"] if r["cache"])
    problems = []
    rounds = [("", r) for r in results["mixed"]] + [(" (remote)", r) for r in results["remote"]["mixed"]]
    for where, r in rounds:
        mode = ("cache on" if r["cache"] else "cache off") + where
        if r["reads_after_a_write"] == 0:
            problems.append(f"{mode}: no read followed a write of its user, so nothing was really checked")
        if r["notifications_timed"] == 0 or r["unconverged"]:
            problems.append(f"{mode}: {r['notifications_timed']} probe writes through B converged on A, "
                            f"{r['unconverged']} did not within 2 s")
        if r["stale"] or r["failed"]:
            problems.append(f"{mode}: {r['stale']} stale and {r['failed']} failed reads")
    if on["hit_rate"] < 0.5:
        problems.append(f"cache on: hit rate {on['hit_rate']:.1%}")
    if problems:
        sys.exit("cache.py --quick: " + "; ".join(problems))
    print("cache.py --quick: ok")


def report(r):
    lines = ["| Zipf s | cache | requests/s | p50 ms | p99 ms | hit rate | statements/request | service CPU µs/request | "
             "checked reads (after a write) | stale | notification ms p50 / p99 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["mixed"]:
        note = (f'{c["notification_ms_p50"]:.1f} / {c["notification_ms_p99"]:.1f}'
                if c.get("notification_ms_p50") is not None else "")
        lines.append(f'| {c["zipf_s"]} | {"on" if c["cache"] else "off"} | {c["requests_per_s"]:,.0f} | '
                     f'{c["p50_ms"]:.2f} | {c["p99_ms"]:.2f} | {c["hit_rate"]:.1%} | {c["statements_per_request"]:.3f} | '
                     f'{c.get("service_cpu_us_per_request", float("nan")):.1f} | '
                     f'{c["checked_reads"]:,} ({c["reads_after_a_write"]:,}) | {c["stale"]} | {note} |')
    for s in sorted({c["zipf_s"] for c in r["mixed"]}):
        on = next(c for c in r["mixed"] if c["zipf_s"] == s and c["cache"])
        off = next(c for c in r["mixed"] if c["zipf_s"] == s and not c["cache"])
        cpu = ""
        if "service_cpu_us_per_request" in on:
            cpu = (f" A request cost the service {on['service_cpu_us_per_request']:.1f} µs of CPU against "
                   f"{off['service_cpu_us_per_request']:.1f} µs ({off['service_cpu_us_per_request'] / on['service_cpu_us_per_request']:.2f}x less).")
        lines.append(f"\ns = {s}: cache on serves {on['requests_per_s'] / off['requests_per_s']:.2f}x the requests/s of cache off.{cpu}")
    rm = r.get("remote")
    if rm:
        on = next(c for c in rm["mixed"] if c["cache"])
        off = next(c for c in rm["mixed"] if not c["cache"])
        lines.append(f'\nPostgreSQL {2 * rm["one_way_delay_us"] / 1000:g} ms away (round trip), s = 1.0: cache on '
                     f'{on["requests_per_s"]:,.0f} requests/s (p99 {on["p99_ms"]:.2f} ms, hit rate {on["hit_rate"]:.1%}, '
                     f'{on["stale"]} stale of {on["checked_reads"]:,}) against {off["requests_per_s"]:,.0f} '
                     f'(p99 {off["p99_ms"]:.2f} ms, {off["stale"]} stale of {off["checked_reads"]:,}), '
                     f'{on["requests_per_s"] / off["requests_per_s"]:.2f}x. The relay took '
                     f'{on["relay_cpu_us_per_request"]:.1f} and {off["relay_cpu_us_per_request"]:.1f} µs of CPU per request.')
    nw = r.get("no_writes")
    if nw:
        on = next(c for c in nw if c["cache"])
        off = next(c for c in nw if not c["cache"])
        lines.append(f'\nCeiling: the s = 1.0 mix without writes (every read a hit once the cache is filled: '
                     f'{on["hit_rate"]:.1%}): cache on {on["requests_per_s"]:,.0f} requests/s '
                     f'({on["service_cpu_us_per_request"]:.1f} µs of service CPU per request) against '
                     f'{off["requests_per_s"]:,.0f} ({off["service_cpu_us_per_request"]:.1f} µs), '
                     f'{on["requests_per_s"] / off["requests_per_s"]:.2f}x.')
    h = r.get("healthz")
    if h:
        lines.append(f'\nFloor: `/healthz` (no work behind the answer) at 64 connections: {h["requests_per_s"]:,.0f} '
                     f'requests/s, {h["service_cpu_us_per_request"]:.1f} µs of service CPU per request.')
    sv = r.get("saves_per_s")
    if sv:
        lines.append(f'\nSaves (`POST /v1/memories`, 1–10 items, 64 connections, medians): {sv["triggers"]:,.0f} requests/s '
                     f'with the invalidation triggers, {sv["no_triggers"]:,.0f} without '
                     f'({sv["triggers"] / sv["no_triggers"] - 1:+.1%}).')
    return "\n".join(lines)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The cache across requests (issue 15), cache on against cache off side by side in one
run: prefetch of users chosen by a Zipf law (s = 0.8, 1.0, 1.2 over the seeded users),
95 % reads and 5 % profile writes, 64 connections; the modes take turns, medians of the
rounds. Then the write path's cost of the invalidation triggers (saves/s with the
triggers enabled and disabled, taking turns).

  python3 bench/cache.py [--build build-bench] [--users N] [--rounds R] [--seconds S]

Steady state, as in a service that has run for a while: each server first reads every
user's prefetch once (walk_users.lua; with the cache on this fills it, in both modes it
warms PostgreSQL's buffers), then 3 s of the mix, then the measured S seconds.

Per configuration: requests/s, p50/p99, cache hit rate, statements per request, and the
service's CPU time per request (user + system, from /proc: the figure that decides the
requests/s when service, PostgreSQL and wrk share the cores). For scale, the floor: the
service's CPU time per /healthz request, an answer with no work behind it; and the
ceiling: the s = 1.0 mix without writes, where every read is a hit once the cache is
filled, cache on against off (the most any cache could give on this machine).

While wrk loads instance A, checker threads write their own users and read them back,
checking every read against the writes they made: through A without a token (A's own
write), and through A with the token of a write made through a second instance B; with
the cache on they also time how long B's write takes to reach A's cache without a token
(the notification's latency, read by polling). Every read older than the checker's
latest acknowledged write is counted stale (must be 0). Writes
bench/results/cache-<date>.json.
"""
import argparse, json, os, signal, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from run import cpu_seconds, get_json, parse_wrk, sh  # noqa: E402
from scenario import Scenario, medians  # noqa: E402
from service import Server, request  # noqa: E402

MIX = os.path.join(ROOT, "bench", "http", "zipf_mix.lua")
SAVE = os.path.join(ROOT, "bench", "http", "save.lua")
WALK = os.path.join(ROOT, "bench", "http", "walk_users.lua")


def wrk(url, script, seconds, env):
    """wrk's report of `seconds` at 64 connections: of `script`, or of GET `url` without one."""
    with_script = ("-s", script) if script else ()
    return sh("wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", *with_script, url, env={**os.environ, **env})


class Checker:
    """Threads that write their own users and check every read of them."""

    def __init__(self, a, b, threads=2, latency=True):
        self.a, self.b, self.latency = a, b, latency
        self.done = threading.Event()
        self.stale = self.reads = self.writes = self.unconverged = 0
        self.latencies_ms = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def read_profile(self, user, headers=None):
        status, body, _ = request(self.a.port, "GET", f"/v1/users/{user}/prefetch", headers=headers)
        return body.get("profile") if status == 200 else None

    def check(self, got, version):
        with self.lock:
            self.reads += 1
            if got is None or not got.isdigit() or int(got) < version:
                self.stale += 1

    def run(self, t):
        users = [f"checker-{t}-{i}" for i in range(5)]
        version = 0
        while not self.done.is_set():
            for user in users:
                version += 1
                # A's own write: A's next read must show it, token or not.
                if request(self.a.port, "PUT", f"/v1/users/{user}/profile", {"profile": str(version)})[0] == 200:
                    self.writes += 1
                    self.check(self.read_profile(user), version)
                    self.check(self.read_profile(user), version)  # the second read may be a hit
                version += 1
                status, _, h = request(self.b.port, "PUT", f"/v1/users/{user}/profile", {"profile": str(version)})
                if status != 200:
                    continue
                self.writes += 1
                self.check(self.read_profile(user, {"Dataloader-Min-LSN": h["Dataloader-LSN"]}), version)
                if self.latency:
                    # Without a token A converges once B's notification reached it.
                    started = time.perf_counter()
                    while time.perf_counter() - started < 2:
                        if self.read_profile(user) == str(version):
                            with self.lock:
                                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                            break
                        # Polled, not spun: a busy loop here took service CPU from the
                        # measured load in the cache-on runs only.
                        time.sleep(0.0005)
                    else:
                        self.unconverged += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        for t in self.threads:
            t.join()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else None


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


def mixed_load(binary, primary, cache, s, users, seconds, write_percent=5):
    """One round of the mix; with write_percent 0 no one writes (no checker either)."""
    extra = ("--cache-entries", str(users)) if cache else ()
    a = Server(binary, primary, *extra, threads=None)
    b = Server(binary, primary, *extra, threads=1) if write_percent else None
    try:
        env = {"USERS": str(users), "ZIPF_S": str(s), "WRITE_PERCENT": str(write_percent)}
        walk_every_user(a, users)
        wrk(a.base, MIX, 3, env)
        s0 = get_json(a.base + "/stats")
        if b:
            with Checker(a, b, latency=cache) as checker:
                r = measured(a, a.base, MIX, seconds, env)
            r.update({"checked_reads": checker.reads, "checker_writes": checker.writes, "stale": checker.stale,
                      "notification_ms_p50": percentile(checker.latencies_ms, 50),
                      "notification_ms_p99": percentile(checker.latencies_ms, 99),
                      "unconverged": checker.unconverged})
        else:
            r = measured(a, a.base, MIX, seconds, env)
        s1 = get_json(a.base + "/stats")
        served = max(1, r["requests"])
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
    a = ap.parse_args()
    with Scenario("cache", a.build, a.users, connections=64, rounds=a.rounds, seconds=a.seconds,
                  write_percent=5) as sc:
        binary, primary, results = sc.binary, sc.url, sc.results
        results["mixed"] = []
        for s in (0.8, 1.0, 1.2):
            runs = {False: [], True: []}
            for _ in range(a.rounds):
                for cache in (False, True):
                    runs[cache].append(mixed_load(binary, primary, cache, s, a.users, a.seconds))
            for cache, rs in runs.items():
                r = medians(rs, skip=("stale", "checked_reads", "unconverged"))
                for k in ("stale", "checked_reads", "unconverged"):
                    r[k] = sum(x[k] for x in rs)  # every round's reads count
                r.update({"zipf_s": s, "cache": cache})
                results["mixed"].append(r)
                print(json.dumps(r), flush=True)
        # The most any cache could give here: the s = 1.0 mix without writes, every read a
        # hit once the walk has filled the cache.
        ceiling = {False: [], True: []}
        for _ in range(a.rounds):
            for cache in (False, True):
                ceiling[cache].append(mixed_load(binary, primary, cache, 1.0, a.users, a.seconds, write_percent=0))
        results["no_writes"] = [{**medians(rs), "zipf_s": 1.0, "cache": cache} for cache, rs in ceiling.items()]
        for r in results["no_writes"]:
            print(json.dumps(r), flush=True)
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


def report(r):
    lines = ["| Zipf s | cache | requests/s | p50 ms | p99 ms | hit rate | statements/request | service CPU µs/request | "
             "checked reads | stale | notification ms p50 / p99 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["mixed"]:
        note = (f'{c["notification_ms_p50"]:.1f} / {c["notification_ms_p99"]:.1f}'
                if c.get("notification_ms_p50") is not None else "")
        lines.append(f'| {c["zipf_s"]} | {"on" if c["cache"] else "off"} | {c["requests_per_s"]:,.0f} | '
                     f'{c["p50_ms"]:.2f} | {c["p99_ms"]:.2f} | {c["hit_rate"]:.1%} | {c["statements_per_request"]:.3f} | '
                     f'{c.get("service_cpu_us_per_request", float("nan")):.1f} | '
                     f'{c["checked_reads"]:,} | {c["stale"]} | {note} |')
    for s in sorted({c["zipf_s"] for c in r["mixed"]}):
        on = next(c for c in r["mixed"] if c["zipf_s"] == s and c["cache"])
        off = next(c for c in r["mixed"] if c["zipf_s"] == s and not c["cache"])
        cpu = ""
        if "service_cpu_us_per_request" in on:
            cpu = (f" A request cost the service {on['service_cpu_us_per_request']:.1f} µs of CPU against "
                   f"{off['service_cpu_us_per_request']:.1f} µs ({off['service_cpu_us_per_request'] / on['service_cpu_us_per_request']:.2f}x less).")
        lines.append(f"\ns = {s}: cache on serves {on['requests_per_s'] / off['requests_per_s']:.2f}x the requests/s of cache off.{cpu}")
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

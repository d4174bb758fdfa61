#!/usr/bin/env python3
"""Reads through nginx to two instances, with and without a streaming replica, side by
side in one run (issue 14): prefetch of random users at 64 connections, the
configurations taking turns, medians of the rounds.

  python3 bench/cluster.py [--build build-bench] [--users N] [--rounds R] [--seconds S]

Reports per configuration: requests/s, p50/p99, statements per request on each server
(pool counters of both instances, the replica probes included), the share of reads the
replica served, and the instances' CPU per request. Then the routing's own cost: one
instance straight (no nginx) with and without a replica, CPU per request. Then
read-your-writes under load: writers on instance A hand each write's Dataloader-LSN to
readers on instance B, who read the same user with it; every answer older than its token
is counted (must be 0), with how many reads the token kept on the primary.

Everything shares this machine's cores (2 here): more processes cannot add throughput,
they divide it. Writes bench/results/cluster-<date>.json.
"""
import argparse, json, os, statistics, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from run import cpu_seconds, get_json, parse_wrk, wrk  # noqa: E402
from service import Nginx, Server, request  # noqa: E402
from scenario import Scenario, medians  # noqa: E402

PREFETCH = os.path.join(ROOT, "bench", "http", "prefetch.lua")


def host_totals(instances):
    """Statements per server (summed over instances) and reads per server."""
    stats = [get_json(s.base + "/stats") for s in instances]
    n = len(stats[0]["db"]["hosts"])
    return ([sum(st["db"]["hosts"][i]["statements"] for st in stats) for i in range(n)],
            [sum(st["db"]["hosts"][i]["reads"] for st in stats) for i in range(n)])


def load(front, instances, users, conns, seconds):
    """wrk's prefetch load through `front` (nginx or an instance); per-server figures."""
    wrk(front.base, PREFETCH, users, conns, 1)  # warm-up
    statements0, reads0 = host_totals(instances)
    cpu0 = sum(cpu_seconds(s.proc.pid) for s in instances)
    r = parse_wrk(wrk(front.base, PREFETCH, users, conns, seconds))
    cpu1 = sum(cpu_seconds(s.proc.pid) for s in instances)
    statements1, reads1 = host_totals(instances)
    served = max(1, r["requests"])
    statements = [b - a for a, b in zip(statements0, statements1)]
    reads = [b - a for a, b in zip(reads0, reads1)]
    r.update({"statements_per_request_by_server": [x / served for x in statements],
              "replica_share_of_reads": (sum(reads[1:]) / max(1, sum(reads))) if len(reads) > 1 else 0.0,
              "server_cpu_us_per_request": (cpu1 - cpu0) * 1e6 / served})
    return r


def tokens_under_load(a, b, users, seconds, writers=4, readers=4):
    """Writers on `a` (each its own users, so a user's values are ordered), readers on `b`
    with the writers' tokens: an answer older than its token is stale."""
    done = threading.Event()
    handed = []  # (user, version, token)
    lock = threading.Lock()
    stale, reads, writes = [0], [0], [0]

    def writer(w):
        n = 0
        while not done.is_set():
            n += 1
            user = f"user{(n * writers + w) % users + 1}"
            status, _, h = request(a.port, "PUT", f"/v1/users/{user}/profile", {"profile": f"{n}"})
            if status == 200:
                writes[0] += 1
                with lock:
                    handed.append((user, n, h["Dataloader-LSN"]))

    def reader():
        while not done.is_set():
            with lock:
                item = handed.pop() if handed else None
            if item is None:
                time.sleep(0.001)
                continue
            user, version, token = item
            status, body, _ = request(b.port, "GET", f"/v1/users/{user}/prefetch", headers={"Dataloader-Min-LSN": token})
            reads[0] += 1
            got = body.get("profile", "") if status == 200 else ""
            if not got.isdigit() or int(got) < version:
                stale[0] += 1

    held0 = get_json(b.base + "/stats")["db"]["reads_held_to_primary"]
    replica0 = get_json(b.base + "/stats")["db"]["hosts"][1]["reads"]
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)] + \
              [threading.Thread(target=reader) for _ in range(readers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    done.set()
    for t in threads:
        t.join()
    st = get_json(b.base + "/stats")
    return {"writes": writes[0], "reads_with_tokens": reads[0], "stale": stale[0],
            "held_to_primary": st["db"]["reads_held_to_primary"] - held0,
            "served_by_replica": st["db"]["hosts"][1]["reads"] - replica0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    with Scenario("cluster", a.build, a.users, connections=64, rounds=a.rounds, seconds=a.seconds) as sc:
        binary, primary, results = sc.binary, sc.url, sc.results
        replica = sc.replica()
        time.sleep(2)  # the replica replays the seed
        configs = {"nginx, 2 instances, no replica": [], "nginx, 2 instances, replica": []}
        direct = {"1 instance, no replica": [], "1 instance, replica": []}
        runs = {k: [] for k in list(configs) + list(direct)}
        for _ in range(a.rounds):
            for name in configs:
                extra = ("--replica-url", replica) if "no replica" not in name else ()
                instances = [Server(binary, primary, *extra, threads=1) for _ in range(2)]
                front = Nginx([f"127.0.0.1:{s.port}" for s in instances])
                try:
                    runs[name].append(load(front, instances, a.users, 64, a.seconds))
                finally:
                    front.stop()
                    for s in instances:
                        s.stop()
            for name in direct:
                extra = ("--replica-url", replica) if "no replica" not in name else ()
                srv = Server(binary, primary, *extra, threads=None)
                try:
                    runs[name].append(load(srv, [srv], a.users, 64, a.seconds))
                finally:
                    srv.stop()
        results["configurations"] = []
        for name, rs in runs.items():
            r = medians(rs)
            r["statements_per_request_by_server"] = [statistics.median(x["statements_per_request_by_server"][i] for x in rs)
                                                     for i in range(len(rs[0]["statements_per_request_by_server"]))]
            r["name"] = name
            results["configurations"].append(r)
            print(json.dumps(r), flush=True)

        a_srv = Server(binary, primary, "--replica-url", replica)
        b_srv = Server(binary, primary, "--replica-url", replica)
        try:
            results["tokens"] = tokens_under_load(a_srv, b_srv, a.users, 10)
        finally:
            a_srv.stop()
            b_srv.stop()
        print(json.dumps(results["tokens"]), flush=True)
    print(report(results))


def report(r):
    lines = ["| configuration (prefetch, 64 connections) | requests/s | p50 ms | p99 ms | statements/request: primary, replica | "
             "replica share of reads | instances' CPU µs/request |", "|---|---|---|---|---|---|---|"]
    for c in r["configurations"]:
        per = ", ".join(f"{x:.3f}" for x in c["statements_per_request_by_server"])
        lines.append(f'| {c["name"]} | {c["requests_per_s"]:,.0f} | {c["p50_ms"]:.2f} | {c["p99_ms"]:.2f} | {per} | '
                     f'{c["replica_share_of_reads"]:.0%} | {c["server_cpu_us_per_request"]:.0f} |')
    t = r.get("tokens")
    if t:
        lines += ["", f'Read-your-writes under load ({r["cores"]} cores, 10 s): {t["writes"]:,} writes on instance A, '
                  f'{t["reads_with_tokens"]:,} reads of the same users on instance B with A\'s tokens: {t["stale"]} stale; '
                  f'{t["held_to_primary"]:,} kept on the primary by their token, {t["served_by_replica"]:,} served by the replica.']
    return "\n".join(lines)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Slow-header attack ("slowloris") against dataloader-server, side by side with a normal
client: the normal client's latency alone, then while 2,000 connections dribble their
request heads one byte at a time and reconnect as soon as they are cut off.

  python3 bench/slowloris.py [--server build/dataloader-server] [--attackers 2000] [--seconds 30]
  python3 bench/slowloris.py --quick     (the test suite: 300 attackers, 1 s head timeout,
                                          checks that the normal client got every answer and
                                          that the attackers were cut off; no timing checks)

Without --database-url it starts a private PostgreSQL in a temporary directory. Writes
bench/results/slowloris-<date>.json (not in --quick) and prints a table.
"""
import argparse
import asyncio
import datetime
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from service import PgControl, Server, raise_file_limit  # noqa: E402

ATTACK_HEAD = b"GET /v1/users/victim/prefetch HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class NormalClient(threading.Thread):
    """One keep-alive connection, one request after another, timing each."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.latencies_ms, self.failures = [], []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/v1/users/victim/prefetch")
                res = conn.getresponse()
                res.read()
                if res.status != 200:
                    self.failures.append(f"status {res.status}")
                else:
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            time.sleep(0.002)  # a steady, modest rate: latency, not throughput, is measured
        conn.close()


async def attacker(port, interval, stop, lifetimes, refused):
    """Dribbles a request head a byte per `interval`; when cut off, notes how long it
    lasted and starts again."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            refused.append(1)
            await asyncio.sleep(interval)
            continue
        opened = time.monotonic()
        try:
            for i in range(len(ATTACK_HEAD)):
                if stop.is_set():
                    break
                writer.write(ATTACK_HEAD[i:i + 1])
                await writer.drain()
                try:  # the server closing (or answering, never expected) ends this round
                    if await asyncio.wait_for(reader.read(1), timeout=interval) is not None:
                        break
                except asyncio.TimeoutError:
                    pass
        except OSError:
            pass
        if not stop.is_set():
            lifetimes.append(time.monotonic() - opened)
        writer.close()


def attack(port, attackers, interval, stop, lifetimes, refused):
    async def main():
        async def wait_stop():
            while not stop.is_set():
                await asyncio.sleep(0.1)
        tasks = [asyncio.create_task(attacker(port, interval, stop, lifetimes, refused)) for _ in range(attackers)]
        await wait_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.run(main())


def phase(srv, seconds, attackers=0, interval=1.0):
    stop = threading.Event()
    lifetimes, refused = [], []
    attack_thread = None
    if attackers:
        attack_thread = threading.Thread(target=attack, args=(srv.port, attackers, interval, stop, lifetimes, refused),
                                         daemon=True)
        attack_thread.start()
        time.sleep(min(2.0, seconds / 4))  # let the attackers connect
    client = NormalClient(srv.port, stop)
    client.start()
    peak_connections = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak_connections = max(peak_connections, srv.stats()["http"]["connections"])
        time.sleep(0.5)
    stop.set()
    client.join()
    if attack_thread:
        attack_thread.join(timeout=30)
    lat = client.latencies_ms
    return {"answers": len(lat), "failures": len(client.failures), "failure_examples": client.failures[:3],
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "max_ms": max(lat, default=float("nan")),
            "attacker_connections_cut": len(lifetimes),
            "attacker_lifetime_median_s": statistics.median(lifetimes) if lifetimes else None,
            "attacker_lifetime_max_s": max(lifetimes, default=None),
            "attacker_connects_refused": len(refused), "peak_open_connections": peak_connections}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "dataloader-server"), help="the built binary")
    ap.add_argument("--database-url")
    ap.add_argument("--attackers", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.attackers, args.seconds = 300, 6
    head_timeout_ms = 1000 if args.quick else 10_000  # the server's default outside --quick
    interval = 0.2 if args.quick else 1.0
    raise_file_limit()

    with tempfile.TemporaryDirectory(prefix="dataloader-slowloris-") as tmp:
        pg = None
        url = args.database_url
        if not url:
            os.chmod(tmp, 0o755)
            pg = PgControl(os.path.join(tmp, "pg"))
            url = pg.start()
        srv = Server(args.server, url,
                     env={"DATALOADER_HEADER_TIMEOUT_MS": str(head_timeout_ms)})
        try:
            srv.request("PUT", "/v1/users/victim/profile", {"profile": "under attack"})
            items = [{"user_id": "victim", "category": "FACT", "key": f"k{i}", "value": f"v{i}"} for i in range(20)]
            srv.request("POST", "/v1/memories", {"memories": items})
            quiet = phase(srv, args.seconds)
            attacked = phase(srv, args.seconds, args.attackers, interval)
            after = srv.stats()["http"]
        finally:
            srv.stop()
            if pg:
                pg.run("destroy")

    result = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "cores": os.cpu_count(),
              "attackers": args.attackers, "seconds_per_phase": args.seconds, "head_timeout_ms": head_timeout_ms,
              "byte_interval_s": interval, "quiet": quiet, "attacked": attacked,
              "server_timed_out_connections": after["timed_out_connections"]}
    print(f"{'phase':<22}{'answers':>9}{'failures':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, r in (("alone", quiet), (f"{args.attackers} attackers", attacked)):
        print(f"{name:<22}{r['answers']:>9}{r['failures']:>9}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}")
    print(f"attackers cut off: {attacked['attacker_connections_cut']} times, median after "
          f"{attacked['attacker_lifetime_median_s'] or 0:.2f} s (head timeout {head_timeout_ms / 1000:.1f} s); "
          f"peak open connections {attacked['peak_open_connections']}")
    if not args.quick:
        out = os.path.join(ROOT, "bench", "results", f"slowloris-{result['date'][:10]}.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"written {os.path.relpath(out, ROOT)}")
        return 0
    # The suite's checks: correctness only (speed is never asserted).
    problems = []
    if attacked["failures"] or quiet["failures"]:
        problems.append(f"the normal client saw failures: {attacked['failure_examples'] or quiet['failure_examples']}")
    if attacked["answers"] == 0:
        problems.append("the normal client got no answer during the attack")
    if attacked["attacker_connections_cut"] < args.attackers:
        problems.append(f"only {attacked['attacker_connections_cut']} attacker connections were cut off")
    if (attacked["attacker_lifetime_max_s"] or 0) > head_timeout_ms / 1000 + 5:
        problems.append(f"an attacker held its connection {attacked['attacker_lifetime_max_s']:.1f} s")
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

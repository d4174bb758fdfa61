#!/usr/bin/env python3
"""Soak: mixed load on dataloader-server for a long time while its PostgreSQL is restarted
over and over; then every acknowledged write is looked up in the database.

  python3 bench/soak.py [--server build/dataloader-server] [--minutes 10] [--restart-every 120] [--clients 4]
  python3 bench/soak.py --quick     (the test suite: 30 s, restarts at 10 s and 20 s,
                                     samples every 5 s; fails on a lost acknowledged write,
                                     a 5xx other than 503, or no recovery after a restart)

Load: prefetch, profile lookups, memory saves, deletes of saved keys and category searches
from --clients keep-alive connections. Reported per sample (a minute, or 5 s in --quick):
the server's RSS and open descriptors, the pool's connections, requests and responses by
status. After each restart: how long until a read is answered 200 again. Writes whose
answer was not 200 (503 while PostgreSQL restarts; their outcome may be unknown) are not
acknowledged and not checked. Starts its own PostgreSQL in a temporary directory.
Writes bench/results/soak-<date>.json (not in --quick).
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from service import PgControl, Server  # noqa: E402

CATEGORIES = ["FACT", "INTEREST", "GOAL", "EXPERIENCE", "PREFERENCE"]


class Ledger:
    """What the server acknowledged (200), so it can be checked in the database."""

    def __init__(self):
        self.lock = threading.Lock()
        self.saved = {}       # (user, category, key) -> value, acknowledged and not deleted since
        self.deleted = set()  # (user, category, key) whose delete was acknowledged
        self.uncertain = set()  # a delete not acknowledged: either state is correct
        self.profiles = {}    # user -> profile acknowledged
        self.statuses = collections.Counter()


class Client(threading.Thread):
    def __init__(self, index, port, ledger, stop, users):
        super().__init__(daemon=True)
        self.index, self.port, self.ledger, self.stop, self.users = index, port, ledger, stop, users
        self.rng = random.Random(index)
        self.conn = None
        self.sequence = 0
        self.mine = []  # keys this client saved and may delete

    def call(self, method, path, body=None):
        for _ in range(2):  # a connection closed between requests is reopened once
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers={"Content-Type": "application/json"})
                res = self.conn.getresponse()
                data = res.read()
                with self.ledger.lock:
                    self.ledger.statuses[res.status] += 1
                return res.status, data
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
        with self.ledger.lock:
            self.ledger.statuses["connection error"] += 1
        return None, b""

    def run(self):
        while not self.stop.is_set():
            user = f"soak-{self.rng.randrange(self.users)}"
            op = self.rng.random()
            if op < 0.35:
                self.call("GET", f"/v1/users/{user}/prefetch")
            elif op < 0.50:
                self.call("GET", "/v1/profiles?ids=" + ",".join(f"soak-{self.rng.randrange(self.users)}" for _ in range(5)))
            elif op < 0.75:
                items = []
                for _ in range(self.rng.randint(1, 5)):
                    self.sequence += 1
                    items.append({"user_id": user, "category": self.rng.choice(CATEGORIES),
                                  "key": f"c{self.index}-{self.sequence}", "value": f"v{self.sequence}-{time.time():.3f}"})
                status, _ = self.call("POST", "/v1/memories", {"memories": items})
                if status == 200:
                    with self.ledger.lock:
                        for m in items:
                            self.ledger.saved[(m["user_id"], m["category"], m["key"])] = m["value"]
                    self.mine += [(m["user_id"], m["category"], m["key"]) for m in items]
            elif op < 0.82 and self.mine:
                user, category, key = self.mine.pop(self.rng.randrange(len(self.mine)))
                status, _ = self.call("POST", f"/v1/users/{user}/memories/delete", {"keys": [key], "category": category})
                with self.ledger.lock:
                    self.ledger.saved.pop((user, category, key), None)
                    (self.ledger.deleted if status == 200 else self.ledger.uncertain).add((user, category, key))
            elif op < 0.90:
                self.sequence += 1
                profile = f"p{self.index}-{self.sequence}"
                user = f"soak-profile-{self.index}-{self.sequence}"  # one writer per user: last ack wins
                status, _ = self.call("PUT", f"/v1/users/{user}/profile", {"profile": profile})
                if status == 200:
                    with self.ledger.lock:
                        self.ledger.profiles[user] = profile
            else:
                self.call("POST", f"/v1/users/{user}/memories/search",
                          {"categories": self.rng.sample(CATEGORIES, 2), "limit_per_category": 5})
        if self.conn:
            self.conn.close()


def sample(srv, ledger, previous, started):
    stats = srv.stats()
    with ledger.lock:
        current = collections.Counter(ledger.statuses)
    delta = current - previous
    return {"t_s": round(time.monotonic() - started), "rss_mib": round(srv.rss_kib() / 1024, 1),
            "fds": srv.open_fds(), "pool_connected": stats["db"]["connected"], "pool_size": stats["db"]["pool_size"],
            "requests": sum(delta.values()), "by_status": {str(k): v for k, v in sorted(delta.items(), key=str)},
            "_statuses": current}


def first_200_after(srv, since, limit_s=30):
    """Seconds from `since` until a read is answered 200."""
    while time.monotonic() - since < limit_s:
        try:
            if srv.request("GET", "/v1/users/soak-probe/prefetch", timeout=5)[0] == 200:
                return time.monotonic() - since
        except OSError:
            pass
        time.sleep(0.01)
    return None


def rows(url, sql):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-F", "\t", "-d", url, "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def verify(url, ledger):
    memories = {(u, c, k): v for u, c, k, v in rows(url, "SELECT user_id, category, key, value FROM memories "
                                                         "WHERE user_id LIKE 'soak-%'")}
    profiles = dict(rows(url, "SELECT user_id, profile FROM profiles WHERE user_id LIKE 'soak-profile-%'"))
    missing = [k for k, v in ledger.saved.items() if k not in ledger.uncertain and memories.get(k) != v]
    resurrected = [k for k in ledger.deleted if k in memories]
    lost_profiles = [u for u, p in ledger.profiles.items() if profiles.get(u) != p]
    return {"acknowledged_saves_checked": len(ledger.saved), "acknowledged_deletes_checked": len(ledger.deleted),
            "acknowledged_profiles_checked": len(ledger.profiles),
            "missing_saves": len(missing), "deleted_but_present": len(resurrected), "missing_profiles": len(lost_profiles),
            "examples": [list(x) for x in (missing[:3] + resurrected[:3])] + lost_profiles[:3]}


def growth_after_warmup(samples, key, sample_every):
    """Percent change of `key` from the start of minute 2 to the end, each end the median of
    three samples: a descriptor or two in flux (a pool connection reconnecting, a client
    between connections) is not growth, a leak is."""
    warm = [s[key] for s in samples if s["t_s"] >= 2 * sample_every - 5]
    if len(warm) < 6:
        return None
    first, last = sorted(warm[:3])[1], sorted(warm[-3:])[1]
    return round((last - first) / first * 100, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "dataloader-server"), help="the built binary")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--restart-every", type=float, default=120)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    duration, sample_every = args.minutes * 60, 60.0
    if args.quick:
        duration, sample_every, args.restart_every = 30, 5.0, 10

    with tempfile.TemporaryDirectory(prefix="dataloader-soak-") as tmp:
        os.chmod(tmp, 0o755)
        pg = PgControl(os.path.join(tmp, "pg"))
        url = pg.start()
        srv = Server(args.server, url)
        ledger, stop = Ledger(), threading.Event()
        clients = [Client(i, srv.port, ledger, stop, users=1000) for i in range(args.clients)]
        samples, restarts = [], []
        try:
            started = time.monotonic()
            for c in clients:
                c.start()
            next_sample, next_restart = started + sample_every, started + args.restart_every
            previous = collections.Counter()
            while not samples or samples[-1]["t_s"] < duration - 1:
                now = time.monotonic()
                if now >= next_restart and now - started < duration - 2:
                    pg.run("restart")  # pg_ctl restart -m fast: backends terminated, then up again
                    back = first_200_after(srv, time.monotonic())
                    restarts.append({"at_s": round(now - started, 1), "serving_again_after_s": back})
                    next_restart += args.restart_every
                if time.monotonic() >= next_sample or time.monotonic() - started >= duration:
                    samples.append(sample(srv, ledger, previous, started))
                    previous = samples[-1].pop("_statuses")
                    s = samples[-1]
                    print(f"{s['t_s']:>5}s  rss {s['rss_mib']:>6} MiB  fds {s['fds']:>4}  pool {s['pool_connected']}/"
                          f"{s['pool_size']}  requests {s['requests']:>7}  {s['by_status']}", flush=True)
                    next_sample += sample_every
                time.sleep(0.05)
        finally:
            stop.set()
            for c in clients:
                c.join(timeout=70)
            exit_status = srv.stop()
        check = verify(url, ledger)
        pg.run("destroy")

    statuses = dict(ledger.statuses)
    growth = lambda key: growth_after_warmup(samples, key, sample_every)  # noqa: E731
    result = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "cores": os.cpu_count(),
              "seconds": duration, "restart_every_s": args.restart_every, "clients": args.clients,
              "samples": samples, "restarts": restarts, "responses": {str(k): v for k, v in statuses.items()},
              "rss_growth_pct_after_warmup": growth("rss_mib"), "fd_growth_pct_after_warmup": growth("fds"),
              "verification": check, "server_exit_status": exit_status}
    print(f"restarts: {[(r['at_s'], r['serving_again_after_s']) for r in restarts]}")
    print(f"responses: {statuses}")
    print(f"growth after warm-up: RSS {result['rss_growth_pct_after_warmup']}%, descriptors "
          f"{result['fd_growth_pct_after_warmup']}%")
    print(f"verification: {check}")

    problems = []
    if check["missing_saves"] or check["deleted_but_present"] or check["missing_profiles"]:
        problems.append(f"acknowledged writes lost: {check}")
    if not check["acknowledged_saves_checked"]:
        problems.append("no write was acknowledged")
    bad = {k: v for k, v in statuses.items() if isinstance(k, int) and k >= 500 and k != 503}
    if bad:
        problems.append(f"responses other than 503 among the 5xx: {bad}")
    if any(r["serving_again_after_s"] is None for r in restarts) or not restarts:
        problems.append(f"not serving again after a restart: {restarts}")
    if exit_status != 0:
        problems.append(f"the server exited with {exit_status}")
    if not args.quick:
        out = os.path.join(ROOT, "bench", "results", f"soak-{result['date'][:10]}.json")
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"written {os.path.relpath(out, ROOT)}")
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

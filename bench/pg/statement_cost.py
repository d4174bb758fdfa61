#!/usr/bin/env python3
"""What one prefetched user costs PostgreSQL: pgbench running the exact statement the store
sends (read from src/store/sql.hpp), prepared, 64 random users per execution.

  python3 bench/pg/statement_cost.py URL [--users N] [--statement user_snapshots] [--sql FILE]
                                         [--search-path S] [--seconds 4] [--repeats 5]

Prints JSON: µs per user with one client (the statement's own latency from pgbench -r,
median of the repeats) and the ceiling in users/s (the best of 1, 2 and 4 clients).
The users are user1 … userN, as seed-demo names them; each execution draws 64 of them
at random in a separate statement (\\gset) whose time is not counted.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def statement_sql(name):
    """The SQL text of `name` in src/store/sql.hpp: its adjacent C string literals, joined."""
    src = open(os.path.join(ROOT, "src", "store", "sql.hpp")).read()
    m = re.search(r'inline const pg::statement ' + re.escape(name) + r'\{"[^"]+",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}', src)
    if not m:
        raise SystemExit(f"statement {name} not found in src/store/sql.hpp")
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))).replace('\\"', '"')


def script(sql, users, search_path):
    # pgbench turns :name into a parameter of the prepared statement, as the store sends $1, $2.
    body = sql.replace("$1", ":users").replace("$2", ":lims")
    return (f"SET search_path = {search_path};\n"
            f"SELECT array_agg('user' || (1 + floor(random() * {users}))::int) AS users, "
            f"array_fill(20, ARRAY[64]) AS lims FROM generate_series(1, 64) \\gset\n"
            f"{body}\n")


def pgbench(url, path, clients, seconds):
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-r", "-T", str(seconds), "-c", str(clients),
                          "-j", str(clients), "-f", path, url],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PGOPTIONS": "-c TimeZone=UTC -c DateStyle=ISO"}).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency_ms = float([l for l in out.splitlines() if l.strip()][-1].split()[0])  # the measured statement
    return tps, latency_ms


def measure(url, sql, users=100000, search_path="public", seconds=4, repeats=5):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script(sql, users, search_path))
    try:
        pgbench(url, f.name, 1, 1)  # warm the cache and the plan
        per_user = statistics.median(pgbench(url, f.name, 1, seconds)[1] * 1000 / 64 for _ in range(repeats))
        ceiling = {c: statistics.median(pgbench(url, f.name, c, seconds)[0] * 64 for _ in range(max(1, repeats // 2)))
                   for c in (1, 2, 4)}
    finally:
        os.unlink(f.name)
    best = max(ceiling, key=ceiling.get)
    return {"us_per_user": round(per_user, 1), "ceiling_users_per_s": round(ceiling[best]),
            "ceiling_clients": best, "users_per_s_by_clients": {str(c): round(v) for c, v in ceiling.items()},
            "users_per_execution": 64, "repeats": repeats}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--statement", default="user_snapshots")
    ap.add_argument("--sql", help="a file with another statement to measure the same way ($1 users, $2 limits)")
    ap.add_argument("--search-path", default="public")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    sql = open(a.sql).read().strip() if a.sql else statement_sql(a.statement)
    print(json.dumps(measure(a.url, sql, a.users, a.search_path, a.seconds, a.repeats)))


if __name__ == "__main__":
    sys.exit(main())

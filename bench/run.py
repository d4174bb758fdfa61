#!/usr/bin/env python3
"""The whole benchmark, side by side in one run on this machine:

  python3 bench/run.py            full run (about 10 minutes): writes bench/results/<date>.json,
                                  draws docs/*.svg and refreshes the README's table
  python3 bench/run.py --quick    smoke mode (under a minute; run by the test suite)

It builds a Release tree (build-bench), starts a private PostgreSQL the same way the
tests do, seeds it, runs the C++ benchmarks, then dataloader-server under wrk with
coalescing on and off. Every comparison is measured in the same run; figures are medians.
"""
import argparse, contextlib, datetime, json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "loader"))
sys.path.insert(0, os.path.join(ROOT, "bench", "pg"))
sys.path.insert(0, os.path.join(ROOT, "bench", "node"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from service import Server, free_port  # noqa: E402
import statement_cost  # noqa: E402
import peer  # noqa: E402


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def get_json(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def machine(url):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "postgresql": sh("psql", "-X", "-t", "-A", "-d", url, "-c", "SHOW server_version").strip(),
            "shared_buffers": sh("psql", "-X", "-t", "-A", "-d", url, "-c", "SHOW shared_buffers").strip(),
            "wrk": (subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0].strip(),
            "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z"}


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def postgres_behind_delay(build, url, one_way_delay_us):
    """PostgreSQL at `url` as if across a network: the URL of a relay (bench/net/
    delay_proxy.cpp) that delays each direction by `one_way_delay_us`, and the relay's pid
    (its CPU time is the simulated network's, taken from the same cores)."""
    pg_port = re.search(r"port=(\d+)", url).group(1)
    pg_user = re.search(r"user=([^&]+)", url).group(1)
    proxy_port = free_port()
    proxy = subprocess.Popen([os.path.join(build, "bench", "delay_proxy"), str(proxy_port), pg_port,
                              str(one_way_delay_us)], stdout=subprocess.PIPE, text=True)
    try:
        proxy.stdout.readline()  # "ready"
        yield f"postgresql://{pg_user}@127.0.0.1:{proxy_port}/postgres", proxy.pid
    finally:
        proxy.terminate()
        proxy.wait()


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def ms(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests_per_s": rps, "p50_ms": ms(50), "p99_ms": ms(99), "requests": total,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def wrk(base, script, users, conns, seconds):
    """wrk's report of `seconds` of `script` at `conns` connections."""
    threads = f"-t{min(2, conns)}"  # wrk wants at least one connection per thread
    return sh("wrk", threads, f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, base,
              env={**os.environ, "USERS": str(users)})


def warm_up(base, script, users, conns):
    """One second of the same load first: connections, prepared statements, caches."""
    wrk(base, script, users, conns, 1)


def node_peer_load(url, script, users, conns, seconds, workers, pool):
    """The Node.js graphql/dataloader peer under the same wrk load."""
    srv = peer.NodeServer(free_port(), url, workers=workers, pool=pool)
    try:
        warm_up(srv.base, script, users, conns)
        pids = srv.pids()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        r = parse_wrk(wrk(srv.base, script, users, conns, seconds))
        cpu1 = sum(cpu_seconds(p) for p in pids)
    finally:
        srv.stop()
    r.update({"connections": conns, "workers": workers, "pool": pool,
              "server_cpu_us_per_request": (cpu1 - cpu0) * 1e6 / max(1, r["requests"])})
    return r


def http_load(binary, url, script, users, conns, seconds, server_args, pg_url):
    srv = Server(binary, url, *server_args, threads=None)  # the default: one per core
    try:
        warm_up(srv.base, script, users, conns)
        before, cpu0 = get_json(srv.base + "/stats"), cpu_seconds(srv.proc.pid)
        sh("psql", "-X", "-q", "-d", pg_url, "-c", "SELECT pg_stat_statements_reset()")
        out = wrk(srv.base, script, users, conns, seconds)
        cpu1, after = cpu_seconds(srv.proc.pid), get_json(srv.base + "/stats")
        counted = int(sh("psql", "-X", "-t", "-A", "-d", pg_url, "-c",
                         "SELECT coalesce(sum(calls),0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'").strip())
    finally:
        srv.stop()
    r = parse_wrk(out)
    served = max(1, after["http"]["requests"] - before["http"]["requests"] - 1)
    r.update({
        "statements_per_request": (after["queries"] - before["queries"]) / served,
        "pg_stat_statements_per_request": counted / served,
        "round_trips_per_request": (after["db"]["round_trips"] - before["db"]["round_trips"]) / served,
        "server_cpu_us_per_request": (cpu1 - cpu0) * 1e6 / served,
        "naive_statements_per_request": (after.get("queries", 0) + after["queries_saved"] - before["queries"] - before["queries_saved"]) / served,
    })
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--build", help="use this already-built tree (with benchmarks) instead of building build-bench")
    a = ap.parse_args()
    quick = a.quick
    build = a.build or os.path.join(ROOT, "build-bench")  # its own tree: demo.sh builds build-release without benchmarks
    if not a.build:
        subprocess.run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DDATALOADER_TESTS=OFF",
                        "-DDATALOADER_BENCH=ON"], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count())], check=True, capture_output=True)
    server_bin = os.path.join(build, "dataloader-server")

    pgdir = tempfile.mkdtemp(prefix="asio-dataloader-bench.")
    url = sh(os.path.join(ROOT, "scripts", "pg-server.sh"), "start", pgdir, "--fast").strip()
    # Room for the seeded tables and indexes (~280 MB) in PostgreSQL's own cache, as a
    # production server would have; the default 128 MB re-reads pages from the OS cache.
    sh("psql", "-X", "-q", "-d", url, "-c", "ALTER SYSTEM SET shared_buffers = '1GB'")
    sh(os.path.join(ROOT, "scripts", "pg-server.sh"), "restart", pgdir)
    results = {"quick": quick}
    try:
        results["machine"] = machine(url)
        print("machine:", json.dumps(results["machine"]), flush=True)

        import measure  # bench/loader/measure.py
        loader_bin = os.path.join(build, "bench", "loader_bench")
        gb = measure.google_benchmark(loader_bin, 2 if quick else 5)
        results["loader"] = {"ns_per_load": gb}
        if not quick:
            results["loader"]["valgrind"] = measure.valgrind_table(loader_bin)
            results["loader"]["graphql_dataloader_ns_per_load"] = measure.graphql_dataloader(5)
        print("loader:", json.dumps(results["loader"]), flush=True)

        extra = ["--quick"] if quick else []
        results["pg_access_patterns"] = [json.loads(l) for l in sh(os.path.join(build, "bench", "pg_access_patterns"), url, *extra).splitlines()]
        print("pg:", json.dumps(results["pg_access_patterns"]), flush=True)
        lines = [json.loads(l) for l in sh(os.path.join(build, "bench", "store_save_strategies"), url, *extra).splitlines()]
        results["saves"] = next(l for l in lines if l["kind"] == "saves")
        results["saves_overwrite"] = next(l for l in lines if l["kind"] == "saves_overwrite")
        results["prefetch_naive_vs_batched"] = [l for l in lines if l["kind"] == "prefetch"]
        print("store:", json.dumps(lines), flush=True)

        users = 2000 if quick else 100000
        t0 = time.time()
        subprocess.run([server_bin, "seed-demo", "--database-url", url, "--users", str(users)], check=True, capture_output=True)
        results["seed_demo"] = {"users": users, "memories_per_user": 10, "seconds": round(time.time() - t0, 2)}
        sh("psql", "-X", "-q", "-d", url, "-c", "VACUUM ANALYZE")

        # What PostgreSQL can do: the prefetch statement alone under pgbench.
        results["pg_statement"] = statement_cost.measure(url, statement_cost.statement_sql("user_snapshots"), users,
                                                         seconds=1 if quick else 4, repeats=1 if quick else 5)
        print("pg statement:", json.dumps(results["pg_statement"]), flush=True)

        seconds = 1 if quick else 10
        conns_list = [16] if quick else [1, 16, 64, 256]
        prefetch = os.path.join(ROOT, "bench", "http", "prefetch.lua")

        def on_off(label, script, server_url, conns_list, **extra):
            """Each connection count with coalescing on, then off, on freshly started servers."""
            points = []
            for conns in conns_list:
                for mode in ("on", "off"):
                    r = http_load(server_bin, server_url, script, users, conns, seconds, ["--coalesce", mode], url)
                    r.update({"connections": conns, "coalesce": mode, **extra})
                    points.append(r)
                    print(label + ":", json.dumps(r), flush=True)
            return points

        results["http_prefetch"] = on_off("prefetch", prefetch, url, conns_list)

        # The Node.js peer: graphql/dataloader 2.2.3 + node-postgres. Its best configuration
        # is searched: node-postgres's default pool (10), larger pools, one process and two.
        results["node_peer"] = []
        if peer.available():
            for workers, pool in ([(1, 10)] if quick else [(1, 10), (1, 32), (1, 64), (2, 16)]):
                r = node_peer_load(url, prefetch, users, 16 if quick else 64, seconds, workers, pool)
                results["node_peer"].append(r)
                print("node peer:", json.dumps(r), flush=True)

        # How batches are formed, at every load: smart batching (the default) against the
        # end of the tick and fixed windows. The modes take turns, three rounds, medians:
        # single runs on shared cores swing by a third between neighbours.
        results["batching"] = []
        modes = {"smart": [], "tick": ["--smart-batching", "off"],
                 "window 200 us": ["--smart-batching", "off", "--batch-window-us", "200"],
                 "window 1000 us": ["--smart-batching", "off", "--batch-window-us", "1000"]}
        if quick:
            modes = dict(list(modes.items())[:2])
        rounds = 1 if quick else 3
        for conns in conns_list:
            runs = {mode: [] for mode in modes}
            for _ in range(rounds):
                for mode, args in modes.items():
                    runs[mode].append(http_load(server_bin, url, prefetch, users, conns, 1 if quick else 5, args, url))
            for mode, rs in runs.items():
                r = {k: statistics.median(x[k] for x in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))}
                r.update({"connections": conns, "mode": mode, "rounds": rounds})
                results["batching"].append(r)
                print("batching:", json.dumps(r), flush=True)

        # The same with PostgreSQL "across a network": a relay delaying each direction.
        delay_us = 250
        with postgres_behind_delay(build, url, delay_us) as (remote_url, _):
            results["http_prefetch_remote"] = on_off("prefetch remote", prefetch, remote_url, conns_list[:-1] or conns_list,
                                                     one_way_delay_us=delay_us)
        save = os.path.join(ROOT, "bench", "http", "save.lua")
        results["http_save"] = on_off("save", save, url, [16 if quick else 64])
        results["batch_settings"] = []
        if not quick:
            for args in (["--max-batch-size", "10"], ["--max-batch-size", "100"], ["--max-batch-size", "1000"]):
                r = http_load(server_bin, url, prefetch, users, 64, seconds, args, url)
                r.update({"connections": 64, "settings": " ".join(args)})
                results["batch_settings"].append(r)
                print("settings:", json.dumps(r), flush=True)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "pg-server.sh"), "destroy", pgdir], capture_output=True)

    out = a.out or os.path.join(ROOT, "bench", "results", ("quick-" if quick else "") + datetime.date.today().isoformat() + ".json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print("wrote", out)
    if not quick:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "plot.py"), out], check=True)
        if not a.no_readme:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "report.py"), out, "--readme"], check=True)
    else:
        # The smoke run checks that every part produced its figures.
        assert results["http_prefetch"] and all(r["requests"] > 0 for r in results["http_prefetch"])
        assert results["http_prefetch_remote"] and all(r["requests"] > 0 for r in results["http_prefetch_remote"])
        assert all(r["non_2xx"] == 0 for r in results["http_prefetch"] + results["http_prefetch_remote"] + results["http_save"]
                   + results["batching"] + results["node_peer"])
        assert results["pg_statement"]["us_per_user"] > 0 and results["batching"]
        print("quick benchmark: all parts ran")


if __name__ == "__main__":
    main()

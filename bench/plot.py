#!/usr/bin/env python3
"""Draws the benchmark's SVG plots into docs/ from a results JSON, with gnuplot."""
import json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main(path):
    r = json.load(open(path))
    docs = os.path.join(ROOT, "docs")
    os.makedirs(docs, exist_ok=True)
    tmp = tempfile.mkdtemp()
    # One data file per series: local on/off, and through the delaying relay when measured.
    series = {"on": r["http_prefetch"], "off": r["http_prefetch"],
              "remote_on": r.get("http_prefetch_remote") or [], "remote_off": r.get("http_prefetch_remote") or []}
    for name, rows in series.items():
        mode = name.split("_")[-1]
        with open(os.path.join(tmp, f"{name}.dat"), "w") as f:
            for x in sorted((x for x in rows if x["coalesce"] == mode), key=lambda x: x["connections"]):
                f.write(f'{x["connections"]} {x["requests_per_s"]} {x["p99_ms"]} {x["statements_per_request"]} {x["p50_ms"]}\n')
    remote = r.get("http_prefetch_remote")
    rtt = f'{2 * remote[0]["one_way_delay_us"] / 1000:g} ms' if remote else ""
    remote_lines = (f', remote_on using 1:{{col}} with linespoints lw 2 dt 2 title "coalesce on, PostgreSQL {rtt} away", '
                    f'remote_off using 1:{{col}} with linespoints lw 2 dt 2 title "coalesce off, PostgreSQL {rtt} away"') if remote else ""
    common = f'''set terminal svg size 640,460 dynamic font "sans,12" background "white"
set logscale x 2
set xlabel "concurrent connections (wrk)"
set key below
set grid
on = "{tmp}/on.dat"; off = "{tmp}/off.dat"; remote_on = "{tmp}/remote_on.dat"; remote_off = "{tmp}/remote_off.dat"
'''
    gnuplot(common + f'''set output "{docs}/http-throughput.svg"
set title "GET /v1/users/{{id}}/prefetch: throughput ({r["machine"]["cores"]} cores, PostgreSQL {r["machine"]["postgresql"].split()[0]})"
set ylabel "requests / s"
plot on using 1:2 with linespoints lw 2 title "coalesce on", off using 1:2 with linespoints lw 2 title "coalesce off (N+1)"{remote_lines.format(col=2)}
''')
    gnuplot(common + f'''set output "{docs}/http-p99.svg"
set title "GET /v1/users/{{id}}/prefetch: p99 latency"
set ylabel "p99 (ms)"
set logscale y
plot on using 1:3 with linespoints lw 2 title "coalesce on", off using 1:3 with linespoints lw 2 title "coalesce off (N+1)"{remote_lines.format(col=3)}
''')
    gnuplot(common + f'''set output "{docs}/statements-per-request.svg"
set title "SQL statements per prefetch request"
set ylabel "statements / request"
set logscale y
plot on using 1:4 with linespoints lw 2 title "coalesce on", off using 1:4 with linespoints lw 2 title "coalesce off (N+1)"
''')
    saves, overwrite = r["saves"], r.get("saves_overwrite") or r["saves"]
    names = ["one_per_record", "chunks_of_100", "pipelined_chunks", "single_statement", "coalesced"]
    with open(os.path.join(tmp, "saves.dat"), "w") as f:
        for i, n in enumerate(names):
            f.write(f'{i} "{n.replace("_", " ")}" {saves[n + "_ms"]} {overwrite[n + "_ms"]}\n')
    gnuplot(f'''set terminal svg size 640,400 dynamic font "sans,12" background "white"
set output "{docs}/save-strategies.svg"
set title "Saving {saves["records"]} memories (median of {saves["repeats"]})"
set ylabel "milliseconds (log)"
set logscale y
set style fill solid 0.6
set boxwidth 0.35
set grid ytics
set key top right
set xtics rotate by -20
plot "{tmp}/saves.dat" using ($1-0.18):3:xtic(2) with boxes title "new records", "" using ($1+0.18):4 with boxes title "overwriting"
''')
    batching = r.get("batching") or []
    if batching:
        modes = list(dict.fromkeys(x["mode"] for x in batching))
        for i, m in enumerate(modes):
            with open(os.path.join(tmp, f"batching{i}.dat"), "w") as f:
                for x in sorted((x for x in batching if x["mode"] == m), key=lambda x: x["connections"]):
                    f.write(f'{x["connections"]} {x["requests_per_s"]} {x["statements_per_request"]}\n')
        lines = ", ".join(f'"{tmp}/batching{i}.dat" using 1:2 with linespoints lw 2 title "{m}"' for i, m in enumerate(modes))
        gnuplot(common + f'''set output "{docs}/batching.svg"
set title "prefetch: smart batching vs the end of the tick and fixed windows"
set ylabel "requests / s"
plot {lines}
''')
    print("plots written to docs/")


if __name__ == "__main__":
    main(sys.argv[1])

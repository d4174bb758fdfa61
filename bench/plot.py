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
    rows = r["http_prefetch"]
    for mode in ("on", "off"):
        with open(os.path.join(tmp, f"{mode}.dat"), "w") as f:
            for x in sorted((x for x in rows if x["coalesce"] == mode), key=lambda x: x["connections"]):
                f.write(f'{x["connections"]} {x["requests_per_s"]} {x["p99_ms"]} {x["statements_per_request"]} {x["p50_ms"]}\n')
    common = f'''set terminal svg size 640,400 dynamic font "sans,12" background "white"
set logscale x 2
set xlabel "concurrent connections (wrk)"
set key top left
set grid
on = "{tmp}/on.dat"; off = "{tmp}/off.dat"
'''
    gnuplot(common + f'''set output "{docs}/http-throughput.svg"
set title "GET /v1/users/{{id}}/prefetch: throughput ({r["machine"]["cores"]} cores, PostgreSQL {r["machine"]["postgresql"]})"
set ylabel "requests / s"
plot on using 1:2 with linespoints lw 2 title "coalesce on", off using 1:2 with linespoints lw 2 title "coalesce off (N+1)"
''')
    gnuplot(common + f'''set output "{docs}/http-p99.svg"
set title "GET /v1/users/{{id}}/prefetch: p99 latency"
set ylabel "p99 (ms)"
set logscale y
plot on using 1:3 with linespoints lw 2 title "coalesce on", off using 1:3 with linespoints lw 2 title "coalesce off (N+1)"
''')
    gnuplot(common + f'''set output "{docs}/statements-per-request.svg"
set title "SQL statements per prefetch request"
set ylabel "statements / request"
set logscale y
plot on using 1:4 with linespoints lw 2 title "coalesce on", off using 1:4 with linespoints lw 2 title "coalesce off (N+1)"
''')
    saves = r["saves"]
    names = ["one_per_record", "chunks_of_100", "pipelined_chunks", "single_statement", "coalesced"]
    with open(os.path.join(tmp, "saves.dat"), "w") as f:
        for i, n in enumerate(names):
            f.write(f'{i} "{n.replace("_", " ")}" {saves[n + "_ms"]}\n')
    gnuplot(f'''set terminal svg size 640,400 dynamic font "sans,12" background "white"
set output "{docs}/save-strategies.svg"
set title "Saving {saves["records"]} memories (median of {saves["repeats"]})"
set ylabel "milliseconds (log)"
set logscale y
set style fill solid 0.6
set boxwidth 0.6
set grid ytics
unset key
set xtics rotate by -20
plot "{tmp}/saves.dat" using 1:3:xtic(2) with boxes
''')
    print("plots written to docs/")


if __name__ == "__main__":
    main(sys.argv[1])

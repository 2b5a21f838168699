#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""ctld-bpf overhead benchmark: ctld-bpf side by side with direct spawn, ssh
and its own polling fallback, in one run, reported as ratios.

    make bench         full run (~10 minutes, 5 of them section 7); writes bench/results/
    make bench-quick   reduced run (~2 minutes, most of it section 7); prints the headline ratios

Sections (each a function of measure.py, in this order):
  1. command overhead     30 consecutive /bin/echo runs x 20, variants interleaved
  2. listen detection     listen() return -> PortListening: eBPF, eBPF while a
                          job forks, polling;
                          daemon CPU while idle with 100 watched ports
  3. interference         BPF cost per program call (bpf_stats) under fork and
                          TCP storms; storm throughput with vs without the daemon
  4. footprint            binary size, exec -> ready, RSS idle
  5. scale                1000 concurrent jobs, 64 concurrent clients,
                          ring buffer pushed hard while the daemon is stopped
  6. time to ready        redis-server, memcached, nginx via sh -c: ctl run
                          --wait-port and --wait-log against a protocol poll
                          (100 ms), a connect loop (10 ms) and a 1 s poll
  7. scale_nodes          one command on 64 nodes (network namespaces) vs one
                          node, vs clush and pdsh over ssh; controller CPU, RSS

bench.py is the driver (options, order, results files); measure.py
measures (measure_ready.py section 6, measure_scale.py section 7), procs.py starts and stops what is
measured, report.py writes the JSON's table, notes and plots
(report_ready.py section 6, report_scale.py section 7). bench/README.md explains the method.
"""
import argparse
import datetime
import json
import os
import signal
import sys
import time

import measure
import measure_ready
import measure_scale
import procs
from procs import ROOT, say
import report_ready
from report import TARGETS, headline, machine, markdown, plot

# ---------------------------------------------------------------- main

SECTIONS = ["command_overhead", "listen", "idle_cpu", "interference", "footprint", "scale",
            "time_to_ready", "scale_nodes"]


def config(args):
    c = argparse.Namespace(quick=args.quick, no_ssh=args.no_ssh, scale_nodes=args.nodes)
    if args.quick:
        c.reps, c.runs = 5, 30
        c.listen_trials = 50
        c.idle_seconds = 2
        c.cost_seconds, c.storm_seconds, c.storm_reps = 0.5, 0.5, 3
        c.starts = 3
        c.true_runs = 40
        c.jobs, c.job_seconds, c.client_runs, c.ring_forks = 200, 1, 3, 20000
        c.ready_reps = 2
        c.scale_reps = 3
    else:
        c.reps, c.runs = 20, 30
        c.listen_trials = 200
        c.idle_seconds = 10
        c.cost_seconds, c.storm_seconds, c.storm_reps = 2, 1, 10
        c.starts = 7
        c.true_runs = 200
        c.jobs, c.job_seconds, c.client_runs, c.ring_forks = 1000, 2, 20, 20000
        c.ready_reps = 10
        c.scale_reps = 20
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="reduced run (~2 min)")
    ap.add_argument("--out", help="results directory (default bench/results, or "
                    "BUILD/bench/results-quick with --quick)")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--no-ssh", action="store_true", help="skip the ssh baselines")
    ap.add_argument("--nodes", type=int, default=64, choices=range(1, 251), metavar="N",
                    help="nodes of the scale_nodes section (default 64, at most 250)")
    ap.add_argument("--report", metavar="JSON",
                    help="only rewrite latest.md and latest.png (next to JSON) from a results file")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            res = json.load(f)
        out_dir = os.path.dirname(os.path.abspath(args.report))
        with open(os.path.join(out_dir, "latest.md"), "w") as f:
            f.write(markdown(res, os.path.relpath(os.path.abspath(args.report), ROOT)))
        plot(res, os.path.join(out_dir, "latest.png"))
        report_ready.plot(res, os.path.join(out_dir, "latest-ready.png"))
        return
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (eBPF, sshd, bpf_stats)")
    procs.init(args.build)
    out_dir = args.out or (os.path.join(procs.P.tools, "results-quick") if args.quick
                           else os.path.join(ROOT, "bench", "results"))
    cfg = config(args)
    sections = args.only.split(",") if args.only else SECTIONS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench.py: SIGTERM"))
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {"format": 1, "started": started.isoformat(timespec="seconds"),
           "command": ("make bench-quick" if args.quick else "make bench") if not args.only
           else " ".join(["bench/bench.py"] + sys.argv[1:]),
           "argv": sys.argv, "quick": args.quick, "config": vars(cfg),
           "machine": machine(), "targets": TARGETS, "results": {}}
    t0 = time.monotonic()
    funcs = {"command_overhead": measure.command_overhead, "listen": measure.listen_detection,
             "idle_cpu": measure.idle_cpu, "interference": measure.interference,
             "footprint": measure.footprint, "scale": measure.scale,
             "time_to_ready": measure_ready.time_to_ready,
             "scale_nodes": measure_scale.scale_nodes}
    try:
        for name in sections:
            res["results"][name] = funcs[name](cfg)
    finally:
        procs.cleanup()
    res["duration_s"] = time.monotonic() - t0
    with open("/proc/loadavg") as f:
        res["machine"]["loadavg_at_end"] = f.read().split()[:3]
    os.makedirs(out_dir, exist_ok=True)
    json_name = started.strftime("%Y%m%dT%H%M%SZ") + ".json"
    with open(os.path.join(out_dir, json_name), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    md = markdown(res, os.path.relpath(os.path.join(out_dir, json_name), ROOT))
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write(md)
    plots = (("latest.png", plot), ("latest-ready.png", report_ready.plot))
    plotted = [name for name, draw in plots if draw(res, os.path.join(out_dir, name))]
    say("")
    if args.quick:
        lines = headline(res)
        width = max((len(k) for k, _ in lines), default=0)
        for k, v in lines:
            say("  %-*s  %s" % (width, k, v))
    else:
        say(md)
    say("results: %s/{%s} (%.0f s)"
        % (out_dir, ",".join([json_name, "latest.md"] + plotted), res["duration_s"]))


if __name__ == "__main__":
    main()

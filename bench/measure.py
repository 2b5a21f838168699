# SPDX-License-Identifier: BSD-2-Clause
"""The benchmark's measurements, one function per section of bench.py; each
returns a dict for the results JSON. The measuring itself is done by small
C tools (bench/*.c); these functions drive them side by side and compute
the statistics (section 6, time to ready, is measure_ready.py). See
bench/README.md for the method."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from procs import (OWNED, P, SshServer, daemon, free_ports, proc_cpu, proc_pss,  # noqa: F401
                   proc_status, rss_by_mapping, run_tool, say, tool)

# ---------------------------------------------------------------- statistics

def pct(values, p):
    """Percentile p (0..100) with linear interpolation."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values, scale=1.0):
    """median, p10/p90 spread, p99, min/max; values divided by scale."""
    v = [x / scale for x in values]
    if not v:
        return {"n": 0}
    return {"n": len(v), "median": pct(v, 50), "p10": pct(v, 10), "p90": pct(v, 90),
            "p99": pct(v, 99), "min": min(v), "max": max(v), "mean": sum(v) / len(v)}


# ---------------------------------------------------------------- 1. command overhead

def command_overhead(cfg):
    """N consecutive /bin/echo runs, repeated R times, every variant once per
    repetition (the order rotates each repetition to spread drift)."""
    say("== 1. command overhead: %d x %d /bin/echo, variants interleaved"
        % (cfg.reps, cfg.runs))
    d_bpf = daemon(bpf=True)
    d_poll = daemon(bpf=False)
    spawn = os.path.join(P.tools, "spawn_bench")
    client = os.path.join(P.tools, "client_bench")
    variants = [
        ("direct", "posix_spawn + waitpid", [spawn, "--", "/bin/echo", "x"]),
        ("ctld_unix", "ctld-bpf, persistent client, unix socket",
         [client, d_bpf.socket, "echo"]),
        ("ctld_tcp", "ctld-bpf, persistent client, TCP", [client, d_bpf.tcp, "echo"]),
        ("ctld_nobpf", "ctld-bpf --no-bpf, persistent client, unix socket",
         [client, d_poll.socket, "echo"]),
        ("ctl_run", "`ctl run` CLI (process start included)",
         [spawn, "--", P.ctl, "-S", d_bpf.socket, "run", "--", "/bin/echo", "x"]),
    ]
    ssh = ssh_error = None
    if not cfg.no_ssh:
        try:
            ssh = SshServer()
        except Exception as e:  # the ctld-bpf variants still mean something
            ssh_error = str(e)
            say("   ssh baselines skipped: %s" % e)
    if ssh:
        OWNED.append(ssh)
        variants.append(("ssh_mux", "ssh localhost, ControlMaster multiplexing",
                         [spawn, "--"] + ssh.argv(True)))
        if not cfg.quick:
            variants.append(("ssh_fresh", "ssh localhost, new connection each",
                             [spawn, "--"] + ssh.argv(False)))
    tools = [(key, desc, tool(argv, key)) for key, desc, argv in variants]
    # the daemon behind each variant: its own CPU time and wake-ups per command
    served_by = {"ctld_unix": d_bpf, "ctld_tcp": d_bpf, "ctld_nobpf": d_poll, "ctl_run": d_bpf}
    daemon_cpu = {key: [0, 0] for key in served_by}
    for key, _, t in tools:  # warm-up: page cache, ssh master connection
        if t.batch(3)["failed"]:
            raise RuntimeError("%s: warm-up runs failed" % key)
    batches = {key: [] for key, _, _ in tools}
    runs = {key: [] for key, _, _ in tools}
    failed = {key: 0 for key, _, _ in tools}
    for rep in range(cfg.reps):
        order = tools[rep % len(tools):] + tools[:rep % len(tools)]
        for key, _, t in order:
            before = proc_cpu(served_by[key].pid) if key in served_by else None
            r = t.batch(cfg.runs)
            if before:
                after = proc_cpu(served_by[key].pid)
                daemon_cpu[key][0] += after[0] - before[0]
                daemon_cpu[key][1] += after[1] - before[1]
            batches[key].append(r["total_ns"] / cfg.runs)
            runs[key].extend(r["runs"])
            failed[key] += r["failed"]
        say("   rep %2d/%d: %s" % (rep + 1, cfg.reps, "  ".join(
            "%s %.2f ms" % (k, batches[k][-1] / 1e6) for k, _, _ in tools)))
    for _, _, t in tools:
        t.close()
    out = {"runs_per_batch": cfg.runs, "batches": cfg.reps, "variants": {}}
    direct = summary(batches["direct"])["median"]
    for key, desc, _ in tools:
        s = summary(batches[key], 1e6)
        paired = [b / a for a, b in zip(batches["direct"], batches[key])]
        out["variants"][key] = {
            "description": desc, "per_command_ms": s, "single_run_ms": summary(runs[key], 1e6),
            "ratio_to_direct": summary(batches[key])["median"] / direct,
            "paired_ratio": summary(paired), "failed": failed[key],
            "batch_means_ms": [b / 1e6 for b in batches[key]]}
        if key in daemon_cpu:
            n = cfg.reps * cfg.runs
            out["variants"][key]["daemon_cpu_us_per_command"] = daemon_cpu[key][0] / n / 1e3
            out["variants"][key]["daemon_wakeups_per_command"] = daemon_cpu[key][1] / n
    out["ssh_version"] = ssh.version() if ssh else None
    out["ssh_error"] = ssh_error
    if ssh:
        ssh.stop()
    d_bpf.stop()
    d_poll.stop()
    return out


# ---------------------------------------------------------------- 2. listen detection, idle CPU

NOISE = ["sh", "-c", "while :; do /bin/true; sleep 0.01; done"]  # ~200 forks/s


def listen_detection(cfg):
    """listen() returns -> the client holds PortListening: eBPF, eBPF while a
    job of the same daemon forks in the background (its fork/exit records
    share the ring with LISTEN), and polling. Chunks interleaved."""
    say("== 2. listen detection: %d trials per mode, chunks interleaved" % cfg.listen_trials)
    d_bpf = daemon(bpf=True)
    d_fork = daemon(bpf=True)
    d_poll = daemon(bpf=False)
    lb = os.path.join(P.tools, "listen_bench")
    jitter_us = "20000"  # one poll interval: a uniformly random phase against the poller
    modes = [("ebpf", d_bpf, tool([lb, d_bpf.socket, jitter_us], "listen ebpf")),
             ("ebpf_forking", d_fork, tool([lb, d_fork.socket, jitter_us], "listen forking")),
             ("polling", d_poll, tool([lb, d_poll.socket, jitter_us], "listen polling"))]
    lat = {m: [] for m, _, _ in modes}
    k2c = {m: [] for m, _, _ in modes}
    failed = {m: 0 for m, _, _ in modes}
    forks = 0
    chunk = 25
    done = 0
    with d_fork.client() as noise_client:
        while done < cfg.listen_trials:
            n = min(chunk, cfg.listen_trials - done)
            for m, d, t in modes:
                noise = noise_client.run(NOISE) if m == "ebpf_forking" else None
                r = t.batch(n)
                if noise:
                    noise_client.signal(noise, signal.SIGKILL)
                lat[m] += r["lat_ns"]
                k2c[m] += [x for x in r["kern_to_client_ns"] if x]
                failed[m] += r["failed"]
            done += n
        forks = noise_client.stats().ring_received
    for _, _, t in modes:
        t.close()
    out = {}
    for m, _, _ in modes:
        out[m] = {"latency_us": summary(lat[m], 1e3), "failed": failed[m],
                  "kernel_transition_to_client_us": summary(k2c[m], 1e3),
                  "samples_us": [x / 1e3 for x in lat[m]]}
        s = out[m]["latency_us"]
        say("   %-12s p50 %8.1f us  p99 %8.1f us  (%d trials, %d failed)"
            % (m, s["median"], s["p99"], s["n"], failed[m]))
    out["ebpf_forking"]["ring_records"] = forks
    # the floor: a delivery wakes the daemon, then the client
    wake = run_tool([os.path.join(P.tools, "storm"), "wake", str(cfg.listen_trials)])
    out["wake_floor_us"] = summary(wake["wake_ns"], 1e3)
    say("   wake-up floor (pipe, one way) p50 %.1f us  p99 %.1f us"
        % (out["wake_floor_us"]["median"], out["wake_floor_us"]["p99"]))
    out["poll_interval_ms"] = 20
    out["jitter_us"] = int(jitter_us)
    for d in (d_bpf, d_fork, d_poll):
        d.stop()
    return out


def idle_cpu(cfg):
    """Both daemons idle side by side for the same window, 100 ports watched each."""
    say("== 2b. idle CPU: %g s with 100 watched ports" % cfg.idle_seconds)
    out = {}
    ds = {"ebpf": daemon(bpf=True), "polling": daemon(bpf=False)}
    clients = {}
    for m, d in ds.items():
        c = d.client()
        clients[m] = c
        for port in free_ports(100):
            c.request(watch_port=P.pb.WatchPort(port=port))
    time.sleep(0.5)
    before = {m: proc_cpu(d.pid) for m, d in ds.items()}
    csw = {m: proc_status(d.pid)["voluntary_ctxt_switches"] for m, d in ds.items()}
    t0 = time.monotonic()
    time.sleep(cfg.idle_seconds)
    wall = time.monotonic() - t0
    for m, d in ds.items():
        after = proc_cpu(d.pid)
        cpu_ns = after[0] - before[m][0]
        out[m] = {"seconds": wall, "watched_ports": 100, "cpu_ms": cpu_ns / 1e6,
                  "cpu_pct": 100.0 * cpu_ns / 1e9 / wall,
                  "ticks": after[2] - before[m][2],
                  "wakeups_per_s": (after[1] - before[m][1]) / wall,
                  "voluntary_switches": proc_status(d.pid)["voluntary_ctxt_switches"] - csw[m]}
        say("   %-8s %.3f ms CPU in %.1f s (%.4f %%), %.1f wake-ups/s"
            % (m, out[m]["cpu_ms"], wall, out[m]["cpu_pct"], out[m]["wakeups_per_s"]))
    for c in clients.values():
        c.close()
    for d in ds.values():
        d.stop()
    return out


# ---------------------------------------------------------------- 3. interference

def bpf_stats_set(value):
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("%d\n" % value)


def prog_counters(d):
    with d.client() as c:
        return {p.name: (p.run_count, p.run_time_ns) for p in c.stats().programs}


def storm_argv(kind, seconds):
    """Storms run pinned to the last CPU: unpinned, where the scheduler puts
    parent and child varies their throughput by 30 %, far above the effect."""
    return ["taskset", "-c", str(os.cpu_count() - 1), os.path.join(P.tools, "storm"), kind,
            str(seconds)]


def storm(kind, seconds):
    """(ops per second, ops per CPU second of the storm and its children)."""
    r = run_tool(storm_argv(kind, seconds))
    return r["ops"] / (r["ns"] / 1e9), r["ops"] / (r["cpu_ns"] / 1e9)


def watch_ports(d, n):
    """A client holding n port watches (closed by the caller)."""
    c = d.client()
    for port in free_ports(n):
        c.request(watch_port=P.pb.WatchPort(port=port))
    return c


def interference(cfg):
    say("== 3. interference: storms with and without the daemon, BPF cost per call")
    out = {"storm_seconds": cfg.storm_seconds, "reps": cfg.storm_reps}
    # 3a. cost per program call: kernel.bpf_stats_enabled=1 only for this part.
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        previous = int(f.read())
    d = daemon(bpf=True)
    watcher = watch_ports(d, 100)  # a realistic watched_ports map
    costs = {}
    try:
        bpf_stats_set(1)
        for name, run in (("fork_storm", lambda: storm("fork", cfg.cost_seconds)[0]),
                          ("tcp_storm", lambda: storm("tcp", cfg.cost_seconds)[0]),
                          ("tracked_fork_storm", lambda: tracked_storm(d, cfg.cost_seconds))):
            before = prog_counters(d)
            ops = run()
            after = prog_counters(d)
            costs[name] = {"ops_per_s": ops, "programs": {}}
            for prog, (cnt, ns) in after.items():
                dc, dn = cnt - before[prog][0], ns - before[prog][1]
                costs[name]["programs"][prog] = {
                    "calls": dc, "run_time_ns": dn, "ns_per_call": dn / dc if dc else None}
            say("   %-18s %s" % (name, "  ".join(
                "%s %s ns/call (%d calls)" % (p, "%.0f" % v["ns_per_call"]
                                              if v["ns_per_call"] else "-", v["calls"])
                for p, v in sorted(costs[name]["programs"].items()))))
    finally:
        bpf_stats_set(previous)
    out["bpf_stats_previous"] = previous
    out["cost"] = costs
    watcher.close()
    d.stop()
    # 3b. throughput, daemon running vs not (bpf_stats back off), alternating.
    tput = {k: {"on": [], "off": [], "on_cpu": [], "off_cpu": []} for k in ("fork", "tcp")}
    daemon_cpu_ns = 0
    for rep in range(cfg.storm_reps):
        for state in (("off", "on") if rep % 2 == 0 else ("on", "off")):
            d = watcher = None
            if state == "on":
                d = daemon(bpf=True)
                watcher = watch_ports(d, 100)
                time.sleep(0.2)  # let start-up work (BTF parsing, frees) settle
                before = proc_cpu(d.pid)[0]
            for kind in ("fork", "tcp"):
                wall, cpu = storm(kind, cfg.storm_seconds)
                tput[kind][state].append(wall)
                tput[kind][state + "_cpu"].append(cpu)
            if d:
                daemon_cpu_ns += proc_cpu(d.pid)[0] - before
                watcher.close()
                d.stop()
        say("   rep %d/%d: fork off %.0f on %.0f /s   tcp off %.0f on %.0f /s"
            % (rep + 1, cfg.storm_reps, tput["fork"]["off"][-1], tput["fork"]["on"][-1],
               tput["tcp"]["off"][-1], tput["tcp"]["on"][-1]))
    out["daemon_cpu_ms_during_storms"] = daemon_cpu_ns / 1e6
    out["throughput"] = {}
    for kind, t in tput.items():
        r = {}
        for unit, on, off in (("", t["on"], t["off"]), ("cpu_", t["on_cpu"], t["off_cpu"])):
            son, soff = summary(on), summary(off)
            r[unit + "on_ops_per_s"] = son
            r[unit + "off_ops_per_s"] = soff
            r[unit + "ratio"] = son["median"] / soff["median"]
            r[unit + "slowdown_pct"] = 100.0 * (1 - son["median"] / soff["median"])
            r[unit + "paired_ratio"] = summary([a / b for a, b in zip(on, off)])
        out["throughput"][kind] = r
    say("   ratio on/off: fork %.3f (per CPU s %.3f), tcp %.3f (per CPU s %.3f); "
        "daemon CPU during all 'on' storms: %.2f ms"
        % (out["throughput"]["fork"]["ratio"], out["throughput"]["fork"]["cpu_ratio"],
           out["throughput"]["tcp"]["ratio"], out["throughput"]["tcp"]["cpu_ratio"],
           out["daemon_cpu_ms_during_storms"]))
    return out


def tracked_storm(d, seconds):
    """The same fork storm as a job of the daemon: every fork and exit is
    tracked and submitted to the ring buffer. Returns the job's ops/s."""
    with d.client() as c:
        out, _, ev = c.run_and_wait(storm_argv("fork", seconds), timeout=seconds + 60)
    if ev.WhichOneof("kind") != "exited" or ev.exited.exit_code != 0:
        raise RuntimeError("tracked storm failed: %s" % ev)
    r = json.loads(out.decode().strip().splitlines()[-1])
    return r["ops"] / (r["ns"] / 1e9)


# ---------------------------------------------------------------- 4. footprint

def footprint(cfg):
    say("== 4. footprint and start-up")
    out = {"binary_bytes": os.path.getsize(P.ctld)}
    size = subprocess.run(["size", P.ctld], capture_output=True, text=True).stdout.split("\n")[1]
    text, data, bss = (int(x) for x in size.split()[:3])
    out.update(text_bytes=text, data_bytes=data, bss_bytes=bss)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "ctld-bpf")
        subprocess.run(["strip", "-o", stripped, P.ctld], check=True)
        out["stripped_bytes"] = os.path.getsize(stripped)
    out["shared_libraries"] = [line.split()[0] for line in subprocess.run(
        ["ldd", P.ctld], capture_output=True, text=True).stdout.splitlines() if "=>" in line]
    out["ctl_shared_libraries"] = [line.split()[0] for line in subprocess.run(
        ["ldd", P.ctl], capture_output=True, text=True).stdout.splitlines() if "=>" in line]
    ready = {"ebpf": [], "polling": []}
    self_ms = {"ebpf": [], "polling": []}
    attach_ms = []
    phases = {k: [] for k in BPF_PHASES}
    rss = {"ebpf": [], "polling": []}
    by_mapping = {}
    for i in range(cfg.starts):
        for mode in ("ebpf", "polling"):
            d = daemon(bpf=(mode == "ebpf"))
            ready[mode].append(d.ready_ns / 1e6)
            self_ms[mode].append(d.log_ms(r"ready in ([0-9.]+) ms"))
            if mode == "ebpf":
                attach_ms.append(d.log_ms(r"programs attached in ([0-9.]+) ms"))
                for k, v in bpf_phases(d.log()).items():
                    phases[k].append(v)
            time.sleep(0.2)  # idle, one client came and went (the Hello check)
            rss[mode].append(dict(proc_status(d.pid), **proc_pss(d.pid)))
            by_mapping[mode] = rss_by_mapping(d.pid)
            d.stop()
    for mode in ready:
        out["ready_ms_" + mode] = summary(ready[mode])
        out["self_reported_ready_ms_" + mode] = summary([x for x in self_ms[mode] if x])
        out["idle_rss_kib_" + mode] = summary([s["VmRSS"] for s in rss[mode]])
        out["idle_rss_detail_kib_" + mode] = {k: rss[mode][-1].get(k) for k in
                                              ("VmRSS", "RssAnon", "RssFile", "RssShmem",
                                               "Pss", "Pss_Anon", "Pss_File", "VmData")}
    out["bpf_attach_ms"] = summary([x for x in attach_ms if x])
    out["bpf_phases_ms"] = {k: summary(v) for k, v in phases.items() if v}
    out["ctl_vs_true"] = ctl_vs_true(cfg)
    out["idle_rss_by_mapping_kib"] = by_mapping  # [rss, pss] of the last start
    out["idle_rss_kib_sleep"], by_mapping["sleep"] = sleep_rss(cfg.starts)
    say("   binary %d bytes (stripped %d); ready eBPF %.1f ms, polling %.1f ms; "
        "idle RSS eBPF %d KiB (anon %d, file %d)"
        % (out["binary_bytes"], out["stripped_bytes"], out["ready_ms_ebpf"]["median"],
           out["ready_ms_polling"]["median"], out["idle_rss_kib_ebpf"]["median"],
           out["idle_rss_detail_kib_ebpf"]["RssAnon"], out["idle_rss_detail_kib_ebpf"]["RssFile"]))
    return out


def sleep_rss(starts):
    """/bin/sleep's RSS, measured as the daemon's: the floor under any
    dynamically linked program on this machine that does nothing (libc's
    pages it maps at start, by fault-around, count whether used or not)."""
    rss, by_mapping = [], {}
    for _ in range(starts):
        p = subprocess.Popen(["/bin/sleep", "60"])
        try:
            time.sleep(0.2)
            rss.append(proc_status(p.pid)["VmRSS"])
            by_mapping = rss_by_mapping(p.pid)
        finally:
            p.kill()
            p.wait()
    return summary(rss), by_mapping


# The daemon's own account of its eBPF start-up (bpf_setup.c's phases in
# bpf_events.c's log line); "index_ahead" and "core" ran in a start-up
# thread, and "index_wait" is what of them the main thread waited for.
BPF_PHASES = ("fetch", "index_ahead", "core", "probe", "index_wait", "open", "load", "verifier",
              "attach", "pin")
PHASES_RE = re.compile(r"attached in [0-9.]+ ms \(kernel BTF fetch ([0-9.]+) by [a-z_]+ for "
                       r"the probe and [0-9]+ load\(s\), index ahead ([0-9.]+) of [0-9]+ types, "
                       r"CO-RE BTF ahead ([0-9.]+) of [0-9]+ types, probe ([0-9.]+), index wait "
                       r"([0-9.]+), open ([0-9.]+), load ([0-9.]+) of which "
                       r"verifier ([0-9.]+), attach ([0-9.]+), pin ([0-9.]+);")


def bpf_phases(log):
    m = PHASES_RE.search(log)
    return dict(zip(BPF_PHASES, (float(x) for x in m.groups()))) if m else {}


def ctl_vs_true(cfg):
    """`ctl run -- /bin/true` against `/bin/true` itself, one run of each in
    turn (cfg.true_runs pairs), both started by posix_spawn and waited for."""
    d = daemon(bpf=True)
    spawn = os.path.join(P.tools, "spawn_bench")
    tools = {"true": tool([spawn, "--", "/bin/true"], "true"),
             "ctl_run": tool([spawn, "--", P.ctl, "-S", d.socket, "run", "--", "/bin/true"],
                             "ctl_run_true")}
    runs = {k: [] for k in tools}
    failed = 0
    for t in tools.values():  # warm-up: page cache
        t.batch(3)
    for i in range(cfg.true_runs):
        for k in (("true", "ctl_run") if i % 2 == 0 else ("ctl_run", "true")):
            r = tools[k].batch(1)
            runs[k].extend(r["runs"])
            failed += r["failed"]
    for t in tools.values():
        t.close()
    d.stop()
    out = {k: summary(v, 1e6) for k, v in runs.items()}
    out["ratio"] = out["ctl_run"]["median"] / out["true"]["median"]
    out["failed"] = failed
    say("   ctl run -- /bin/true %.2f ms, /bin/true %.2f ms: %.2f×"
        % (out["ctl_run"]["median"], out["true"]["median"], out["ratio"]))
    return out


# ---------------------------------------------------------------- 5. scale

def scale(cfg):
    say("== 5. scale")
    out = {}
    cb = os.path.join(P.tools, "client_bench")
    modes = [("ebpf", True)] + ([] if cfg.quick else [("polling", False)])
    for mode, bpf in modes:
        d = daemon(bpf=bpf, extra=["--max-jobs", str(cfg.jobs + 100)])
        r = run_tool([cb, d.socket, "jobs", str(cfg.jobs), str(cfg.job_seconds)],
                     timeout=cfg.job_seconds + 120)
        r["job_seconds"] = cfg.job_seconds
        r["exit_drain_ms"] = (r["all_exited_ns"] - r["all_launched_ns"]) / 1e6 \
            - cfg.job_seconds * 1e3
        out["jobs_" + mode] = r
        say("   %-8s %d jobs: all launched in %.0f ms, RSS %d KiB with them live, "
            "all %d Exited %.0f ms after the last launch + %d s"
            % (mode, cfg.jobs, r["all_launched_ns"] / 1e6, r["rss_kb"], r["exited"],
               r["exit_drain_ms"], cfg.job_seconds))
        d.stop()
    d = daemon(bpf=True)
    r = run_tool([cb, d.socket, "clients", "64", str(cfg.client_runs)], timeout=300)
    out["clients_64"] = {"clients": 64, "runs_each": cfg.client_runs, "failed": r["failed"],
                         "wall_ms": r["wall_ns"] / 1e6,
                         "runs_per_s": len(r["runs"]) / (r["wall_ns"] / 1e9),
                         "latency_ms": summary(r["runs"], 1e6)}
    say("   64 clients x %d runs: %.0f runs/s, latency p50 %.1f ms p99 %.1f ms, %d failed"
        % (cfg.client_runs, out["clients_64"]["runs_per_s"],
           out["clients_64"]["latency_ms"]["median"], out["clients_64"]["latency_ms"]["p99"],
           r["failed"]))
    d.stop()
    out["ring_pressure"] = ring_pressure(cfg)
    return out


def ring_pressure(cfg):
    """A job forks N children while the daemon is stopped (SIGSTOP): 2N+1
    records against a 1 MiB ring buffer. Every record must be either
    received or counted as dropped, and the job's Exited must still come."""
    d = daemon(bpf=True)
    n = cfg.ring_forks
    with d.client() as c:
        s0 = c.stats()
        job = c.run([os.path.join(P.tools, "storm"), "forkn", "300", str(n)])
        ev = c.next_event(10)
        assert ev.WhichOneof("kind") == "launched", ev
        pid = ev.launched.pid
        os.kill(d.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 120:  # until the job is a zombie
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
                time.sleep(0.02)
        finally:
            os.kill(d.pid, signal.SIGCONT)
        terminal = None
        for ev in c.events(job, timeout=60):
            terminal = ev
        deadline = time.monotonic() + 10
        while True:  # let the daemon drain what is in the ring
            s1 = c.stats()
            if s1.ring_received - s0.ring_received >= s1.ring_events - s0.ring_events \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    out = {"forks": n, "records_expected": 2 * n + 1,
           "ring_events": s1.ring_events - s0.ring_events,
           "ring_drops": s1.ring_drops - s0.ring_drops,
           "ring_received": s1.ring_received - s0.ring_received,
           "exited": terminal is not None and terminal.WhichOneof("kind") == "exited"
           and terminal.exited.exit_code == 0}
    out["accounted"] = out["ring_events"] + out["ring_drops"]
    out["none_silent"] = out["accounted"] == out["records_expected"] \
        and out["ring_received"] == out["ring_events"]
    say("   ring buffer: %d records expected, %d submitted, %d dropped (counted), "
        "%d received; Exited %s"
        % (out["records_expected"], out["ring_events"], out["ring_drops"],
           out["ring_received"], "arrived" if out["exited"] else "MISSING"))
    d.stop()
    return out

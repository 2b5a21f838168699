#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""ctld-bpf overhead benchmark: ctld-bpf side by side with direct spawn, ssh
and its own polling fallback, in one run, reported as ratios.

    make bench         full run (a few minutes); writes bench/results/
    make bench-quick   reduced run (< 1 minute); prints the headline ratios

Sections (each a function below, in this order):
  1. command overhead     30 consecutive /bin/echo runs x 20, variants interleaved
  2. listen detection     listen() return -> PortListening, eBPF vs polling;
                          daemon CPU while idle with 100 watched ports
  3. interference         BPF cost per program call (bpf_stats) under fork and
                          TCP storms; storm throughput with vs without the daemon
  4. footprint            binary size, exec -> ready, RSS idle
  5. scale                1000 concurrent jobs, 64 concurrent clients,
                          ring buffer pushed hard while the daemon is stopped

The measuring is done by small C tools (bench/*.c, built into BUILD/bench/);
this script starts daemons and sshd, drives the tools, and writes the JSON,
the markdown table and the plot. bench/README.md explains the method.
"""
import argparse
import datetime
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# Filled in by main() from --build.
BUILD = TOOLS = CTLD = CTL = None
Client = pb = None

# Targets from the issue; "measure, do not assert": they only set a status.
TARGETS = {
    "persistent_ratio": 1.10,    # ctld-bpf via a persistent client / direct spawn
    "ssh_mux_factor": 10.0,      # multiplexed ssh / ctld-bpf persistent client
    "listen_p50_us": 100.0,
    "idle_cpu_pct": 0.1,         # "near zero": under 0.1 % of one CPU
    "bpf_ns_per_call": 200.0,
    "storm_slowdown_pct": 2.0,
    "idle_rss_kib": 2048,
}

SSH_USER = "ctldbench"


def say(text):
    print(text, flush=True)


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


# ---------------------------------------------------------------- processes we own

class Tool:
    """A measuring tool that reads a count per line and answers one JSON line."""

    def __init__(self, argv, name):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def batch(self, n):
        self.proc.stdin.write("%d\n" % n)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("%s: tool ended (exit %s)" % (self.name, self.proc.wait()))
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_tool(argv, timeout=300):
    """Runs a one-shot tool; returns its last stdout line as JSON."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], out.returncode, out.stderr[-2000:]))
    return json.loads(lines[-1])


def proc_status(pid):
    """Fields of /proc/PID/status in kB (VmRSS, RssAnon, RssFile, ...)."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            parts = val.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[key] = int(parts[0])
            elif key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                fields[key] = int(parts[0])
    return fields


def proc_pss(pid):
    """Proportional set size (kB): shared library pages split among their users."""
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key.startswith("Pss"):
                fields[key] = int(val.split()[0])
    return fields


def rss_by_mapping(pid, top=8):
    """The largest contributors to RSS: {mapping: [rss KiB, pss KiB]}."""
    rss = {}
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":") or "-" in parts[0]:
                cur = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
                rss.setdefault(cur, [0, 0])
            elif parts[0] == "Rss:":
                rss[cur][0] += int(parts[1])
            elif parts[0] == "Pss:":
                rss[cur][1] += int(parts[1])
    return dict(sorted(rss.items(), key=lambda kv: -kv[1][0])[:top])


def proc_cpu(pid):
    """(on-CPU ns from schedstat, timeslices, utime+stime ticks)."""
    with open("/proc/%d/schedstat" % pid) as f:
        run_ns, _wait, slices = (int(x) for x in f.read().split())
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return run_ns, slices, int(rest[11]) + int(rest[12])


class Daemon:
    """A ctld-bpf of ours: own socket, ephemeral TCP port, unique pin dir.
    Started through `spawn_bench --ready`, which times exec -> ready file."""
    count = 0

    def __init__(self, bpf=True, extra=()):
        Daemon.count += 1
        self.bpf = bpf
        self.dir = tempfile.mkdtemp(prefix="ctld-bench-")
        self.socket = os.path.join(self.dir, "ctld.sock")
        self.ready_file = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.pin_dir = "/sys/fs/bpf/ctld-bench-%d-%d" % (os.getpid(), Daemon.count)
        argv = [CTLD, "--socket", self.socket, "--listen", "127.0.0.1:0",
                "--ready-file", self.ready_file, "--pin-dir", self.pin_dir] + list(extra)
        if not bpf:
            argv.append("--no-bpf")
        self.launcher = subprocess.Popen(
            [os.path.join(TOOLS, "spawn_bench"), "--ready", self.ready_file,
             "--log", self.log_path, "--"] + argv, stdout=subprocess.PIPE, text=True)
        line = self.launcher.stdout.readline()
        if not line:
            self.launcher.wait()
            raise RuntimeError("daemon did not start:\n" + self.log())
        started = json.loads(line)
        self.ready_ns = started["ready_ns"]
        self.pid = started["pid"]
        with open(self.ready_file) as f:
            pid, port = f.read().split()
        assert int(pid) == self.pid
        self.port = int(port)
        self.tcp = "127.0.0.1:%d" % self.port
        with self.client() as c:
            if c.hello_reply.bpf != bpf:
                self.stop()
                raise RuntimeError("daemon bpf=%s, wanted %s:\n%s"
                                   % (c.hello_reply.bpf, bpf, self.log()))

    def client(self):
        return Client(unix=self.socket, name="bench.py")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def log_ms(self, pattern):
        """A number in the daemon's log, e.g. 'ready in ([0-9.]+) ms'."""
        m = re.search(pattern, self.log())
        return float(m.group(1)) if m else None

    def stop(self):
        if self.launcher is None:
            return
        if self.launcher.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.launcher.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.launcher.wait()
        self.launcher = None
        if os.path.isdir(self.pin_dir):  # a clean stop removes them; a kill does not
            for p in glob.glob(os.path.join(self.pin_dir, "*")):
                os.unlink(p)
            os.rmdir(self.pin_dir)
        shutil.rmtree(self.dir, ignore_errors=True)


OWNED = []  # daemons, tools and the sshd to stop on the way out, whatever happens


def daemon(*args, **kw):
    d = Daemon(*args, **kw)
    OWNED.append(d)
    return d


def tool(argv, name):
    t = Tool(argv, name)
    OWNED.append(t)
    return t


def free_ports(n):
    """n loopback ports that nothing listens on now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ---------------------------------------------------------------- sshd of our own

class SshServer:
    """sshd on 127.0.0.1:<free port> with throw-away host and user keys and a
    user with /bin/sh; everything lives in a temp dir removed by stop()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ctld-bench-ssh-")
        os.chmod(self.dir, 0o755)  # sshd reads authorized_keys as the user
        self.proc = None
        self.created_user = False
        self.created_privsep = False
        try:
            pwd.getpwnam(SSH_USER)
        except KeyError:
            # '*': no password, yet not "locked" ('!'), which UsePAM=no refuses
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", SSH_USER], check=True)
            self.created_user = True
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
            self.created_privsep = True
        self.host_key = os.path.join(self.dir, "host_ed25519")
        self.user_key = os.path.join(self.dir, "user_ed25519")
        for key in (self.host_key, self.user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        shutil.copy(self.user_key + ".pub", os.path.join(self.dir, "authorized_keys"))
        os.chmod(os.path.join(self.dir, "authorized_keys"), 0o644)
        self.port = free_ports(1)[0]
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port, "ListenAddress 127.0.0.1",
                "HostKey " + self.host_key, "PidFile " + os.path.join(self.dir, "sshd.pid"),
                "AuthorizedKeysFile " + os.path.join(self.dir, "authorized_keys"),
                "AllowUsers " + SSH_USER, "StrictModes no", "UsePAM no",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes", "PermitRootLogin no", "UseDNS no",
                "PrintMotd no", "PrintLastLog no", "X11Forwarding no",
                "MaxStartups 200", "MaxSessions 200", "LogLevel ERROR", ""]))
        self.log = open(os.path.join(self.dir, "sshd.log"), "w")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start: " + open(self.log.name).read())
                time.sleep(0.05)
        self.control = os.path.join(self.dir, "cm-%r@%h:%p")

    def argv(self, mux):
        a = ["/usr/bin/ssh", "-F", "/dev/null", "-i", self.user_key, "-p", str(self.port),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if mux:
            a += ["-o", "ControlMaster=auto", "-o", "ControlPath=" + self.control,
                  "-o", "ControlPersist=300"]
        return a + [SSH_USER + "@127.0.0.1", "/bin/echo", "x"]

    def version(self):
        return subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()

    def stop(self):
        if self.proc is not None:
            # the multiplexing master is a child of an ssh we ran: ask it to exit
            subprocess.run(self.argv(True)[:-3] + ["-O", "exit", SSH_USER + "@127.0.0.1"],
                           capture_output=True, timeout=10)
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.created_user:
            subprocess.run(["userdel", "-r", SSH_USER], capture_output=True)
            self.created_user = False
        if self.created_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
            self.created_privsep = False


# ---------------------------------------------------------------- 1. command overhead

def command_overhead(cfg):
    """N consecutive /bin/echo runs, repeated R times, every variant once per
    repetition (the order rotates each repetition to spread drift)."""
    say("== 1. command overhead: %d x %d /bin/echo, variants interleaved"
        % (cfg.reps, cfg.runs))
    d_bpf = daemon(bpf=True)
    d_poll = daemon(bpf=False)
    spawn = os.path.join(TOOLS, "spawn_bench")
    client = os.path.join(TOOLS, "client_bench")
    variants = [
        ("direct", "posix_spawn + waitpid", [spawn, "--", "/bin/echo", "x"]),
        ("ctld_unix", "ctld-bpf, persistent client, unix socket",
         [client, d_bpf.socket, "echo"]),
        ("ctld_tcp", "ctld-bpf, persistent client, TCP", [client, d_bpf.tcp, "echo"]),
        ("ctld_nobpf", "ctld-bpf --no-bpf, persistent client, unix socket",
         [client, d_poll.socket, "echo"]),
        ("ctl_run", "`ctl run` CLI (process start included)",
         [spawn, "--", CTL, "-S", d_bpf.socket, "run", "--", "/bin/echo", "x"]),
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

def listen_detection(cfg):
    say("== 2. listen detection: %d trials per mode, chunks interleaved" % cfg.listen_trials)
    d_bpf = daemon(bpf=True)
    d_poll = daemon(bpf=False)
    lb = os.path.join(TOOLS, "listen_bench")
    jitter_us = "20000"  # one poll interval: a uniformly random phase against the poller
    modes = [("ebpf", tool([lb, d_bpf.socket, jitter_us], "listen ebpf")),
             ("polling", tool([lb, d_poll.socket, jitter_us], "listen polling"))]
    lat = {m: [] for m, _ in modes}
    k2c = {m: [] for m, _ in modes}
    failed = {m: 0 for m, _ in modes}
    chunk = 25
    done = 0
    while done < cfg.listen_trials:
        n = min(chunk, cfg.listen_trials - done)
        for m, t in modes:
            r = t.batch(n)
            lat[m] += r["lat_ns"]
            k2c[m] += [x for x in r["kern_to_client_ns"] if x]
            failed[m] += r["failed"]
        done += n
    for _, t in modes:
        t.close()
    out = {}
    for m, _ in modes:
        out[m] = {"latency_us": summary(lat[m], 1e3), "failed": failed[m],
                  "kernel_transition_to_client_us": summary(k2c[m], 1e3),
                  "samples_us": [x / 1e3 for x in lat[m]]}
        s = out[m]["latency_us"]
        say("   %-8s p50 %8.1f us  p99 %8.1f us  (%d trials, %d failed)"
            % (m, s["median"], s["p99"], s["n"], failed[m]))
    out["poll_interval_ms"] = 20
    out["jitter_us"] = int(jitter_us)
    d_bpf.stop()
    d_poll.stop()
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
            c.request(watch_port=pb.WatchPort(port=port))
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
    return ["taskset", "-c", str(os.cpu_count() - 1), os.path.join(TOOLS, "storm"), kind,
            str(seconds)]


def storm(kind, seconds):
    """(ops per second, ops per CPU second of the storm and its children)."""
    r = run_tool(storm_argv(kind, seconds))
    return r["ops"] / (r["ns"] / 1e9), r["ops"] / (r["cpu_ns"] / 1e9)


def watch_ports(d, n):
    """A client holding n port watches (closed by the caller)."""
    c = d.client()
    for port in free_ports(n):
        c.request(watch_port=pb.WatchPort(port=port))
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
    out = {"binary_bytes": os.path.getsize(CTLD)}
    size = subprocess.run(["size", CTLD], capture_output=True, text=True).stdout.split("\n")[1]
    text, data, bss = (int(x) for x in size.split()[:3])
    out.update(text_bytes=text, data_bytes=data, bss_bytes=bss)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "ctld-bpf")
        subprocess.run(["strip", "-o", stripped, CTLD], check=True)
        out["stripped_bytes"] = os.path.getsize(stripped)
    out["shared_libraries"] = [line.split()[0] for line in subprocess.run(
        ["ldd", CTLD], capture_output=True, text=True).stdout.splitlines() if "=>" in line]
    ready = {"ebpf": [], "polling": []}
    self_ms = {"ebpf": [], "polling": []}
    attach_ms = []
    rss = {"ebpf": [], "polling": []}
    by_mapping = {}
    for i in range(cfg.starts):
        for mode in ("ebpf", "polling"):
            d = daemon(bpf=(mode == "ebpf"))
            ready[mode].append(d.ready_ns / 1e6)
            self_ms[mode].append(d.log_ms(r"ready in ([0-9.]+) ms"))
            if mode == "ebpf":
                attach_ms.append(d.log_ms(r"programs attached in ([0-9.]+) ms"))
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
    out["idle_rss_by_mapping_kib"] = by_mapping  # [rss, pss] of the last start
    say("   binary %d bytes (stripped %d); ready eBPF %.1f ms, polling %.1f ms; "
        "idle RSS eBPF %d KiB (anon %d, file %d)"
        % (out["binary_bytes"], out["stripped_bytes"], out["ready_ms_ebpf"]["median"],
           out["ready_ms_polling"]["median"], out["idle_rss_kib_ebpf"]["median"],
           out["idle_rss_detail_kib_ebpf"]["RssAnon"], out["idle_rss_detail_kib_ebpf"]["RssFile"]))
    return out


# ---------------------------------------------------------------- 5. scale

def scale(cfg):
    say("== 5. scale")
    out = {}
    cb = os.path.join(TOOLS, "client_bench")
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
        job = c.run([os.path.join(TOOLS, "storm"), "forkn", "300", str(n)])
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


# ---------------------------------------------------------------- machine description

def cmd_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine():
    def first(path, prefix):
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        return None

    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats = int(f.read())
    others = 0
    for exe in glob.glob("/proc/[0-9]*/exe"):
        try:
            if os.path.basename(os.readlink(exe)) == "ctld-bpf":
                others += 1
        except OSError:
            pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    git = cmd_out(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return {
        "kernel": os.uname().release, "arch": os.uname().machine,
        "cpu_model": first("/proc/cpuinfo", "model name"), "nproc": os.cpu_count(),
        "hypervisor": "hypervisor" in (first("/proc/cpuinfo", "flags") or "").split(),
        "memory_kib": int(first("/proc/meminfo", "MemTotal").split()[0]),
        "gcc": (cmd_out(["gcc", "--version"]) or "").splitlines()[0],
        "clang": (cmd_out(["clang", "--version"]) or "").splitlines()[0],
        "libbpf": cmd_out(["pkg-config", "--modversion", "libbpf"]),
        "bpftool": (cmd_out(["bpftool", "version"]) or "").splitlines()[0],
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "python": sys.version.split()[0],
        "bpf_stats_enabled_before": stats,
        "loadavg_at_start": load,
        "other_ctld_bpf_processes_at_start": others,
        "git_commit": git, "git_dirty": bool(dirty),
    }


# ---------------------------------------------------------------- report

def fmt_ms(ms):
    return "%.2f ms" % ms if ms < 100 else "%.0f ms" % ms


def fmt_us(us):
    return "%.1f µs" % us if us < 1000 else "%.1f ms" % (us / 1e3)


def status(ok, missed):
    return "met" if ok else "missed by " + missed


# The programs a storm is about (the others run a handful of times by chance).
STORM_PROGRAMS = {"fork_storm": ("handle_fork", "handle_exit"),
                  "tcp_storm": ("handle_sock_state",),
                  "tracked_fork_storm": ("handle_fork", "handle_exit")}


def table(res):
    """Rows of (measurement, value, ratio/target, status) for the markdown table."""
    rows = []
    T = TARGETS
    co = res.get("command_overhead")
    if co:
        v = co["variants"]
        direct = v["direct"]["per_command_ms"]["median"]
        for key, d in v.items():
            s = d["per_command_ms"]
            value = "%s (p10–p90 %.2f–%.2f)" % (fmt_ms(s["median"]), s["p10"], s["p90"])
            ratio = "%.2f× direct" % d["ratio_to_direct"]
            st = "—"
            if key in ("ctld_unix", "ctld_tcp"):
                r = d["ratio_to_direct"]
                ratio += " (target ≤ %.2f×)" % T["persistent_ratio"]
                st = status(r <= T["persistent_ratio"], "%.2f× (%.0f µs per command)" % (
                    r - T["persistent_ratio"], (s["median"] - direct * T["persistent_ratio"]) * 1e3))
            if d["failed"]:
                st += "; %d runs FAILED" % d["failed"]
            rows.append(("/bin/echo: " + d["description"], value, ratio, st))
        if "ssh_mux" in v:
            f = v["ssh_mux"]["per_command_ms"]["median"] / v["ctld_unix"]["per_command_ms"]["median"]
            rows.append(("ssh multiplexed ÷ ctld-bpf persistent client (unix)",
                         "%.1f×" % f, "target ≥ %.0f×" % T["ssh_mux_factor"],
                         status(f >= T["ssh_mux_factor"], "%.1f×" % (T["ssh_mux_factor"] - f))))
    ld = res.get("listen")
    if ld:
        for m, label in (("ebpf", "eBPF"), ("polling", "polling every %d ms" % ld["poll_interval_ms"])):
            s = ld[m]["latency_us"]
            target = st = "—"
            if m == "ebpf":
                target = "p50 target < %.0f µs" % T["listen_p50_us"]
                st = status(s["median"] < T["listen_p50_us"],
                            "%.0f µs" % (s["median"] - T["listen_p50_us"]))
            rows.append(("listen() returns → client holds PortListening, %s (%d trials)"
                         % (label, s["n"]), "p50 %s, p99 %s" % (fmt_us(s["median"]),
                                                                fmt_us(s["p99"])), target, st))
    idle = res.get("idle_cpu")
    if idle:
        for m in ("ebpf", "polling"):
            i = idle[m]
            target = st = "—"
            if m == "ebpf":
                target = "target ≈ 0 (< %.1f %% of a CPU)" % T["idle_cpu_pct"]
                st = status(i["cpu_pct"] < T["idle_cpu_pct"],
                            "%.3f %% of a CPU" % (i["cpu_pct"] - T["idle_cpu_pct"]))
            rows.append(("daemon CPU while idle %.0f s with 100 watched ports, %s"
                         % (i["seconds"], m), "%.2f ms = %.3f %% of a CPU, %.1f wake-ups/s"
                         % (i["cpu_ms"], i["cpu_pct"], i["wakeups_per_s"]), target, st))
    it = res.get("interference")
    if it:
        for name, label in (("fork_storm", "fork/exit storm"),
                            ("tcp_storm", "TCP connect/accept storm"),
                            ("tracked_fork_storm", "fork/exit storm inside a job")):
            for prog in STORM_PROGRAMS[name]:
                p = it["cost"][name]["programs"].get(prog)
                if not p or not p["calls"]:
                    continue
                ns = p["ns_per_call"]
                target = "target < %.0f ns" % T["bpf_ns_per_call"]
                st = status(ns < T["bpf_ns_per_call"], "%.0f ns (%.1f×)" % (
                    ns - T["bpf_ns_per_call"], ns / T["bpf_ns_per_call"]))
                if name == "tracked_fork_storm":  # every call submits an event: no target
                    target, st = "— (each call submits a record)", "—"
                rows.append(("BPF %s per call, %s" % (prog, label),
                             "%.0f ns (%d calls)" % (ns, p["calls"]), target, st))
        for kind, label in (("fork", "fork/exit"), ("tcp", "TCP connect/accept")):
            t = it["throughput"][kind]
            for unit, what in (("", "ops per second"), ("cpu_", "ops per CPU second")):
                slow = t[unit + "slowdown_pct"]
                pr = t[unit + "paired_ratio"]
                rows.append((
                    "%s storm, %s, daemon running ÷ not (%d × %g s, pinned to one CPU)"
                    % (label, what, it["reps"], it["storm_seconds"]),
                    "%.0f ÷ %.0f" % (t[unit + "on_ops_per_s"]["median"],
                                     t[unit + "off_ops_per_s"]["median"]),
                    "%.3f× = %.1f %% %s (pairs p10–p90 %.3f–%.3f); target < %.0f %% slower"
                    % (t[unit + "ratio"], abs(slow), "slower" if slow >= 0 else "faster",
                       pr["p10"], pr["p90"], T["storm_slowdown_pct"]),
                    status(slow < T["storm_slowdown_pct"],
                           "%.1f points" % (slow - T["storm_slowdown_pct"]))))
        c = it["cost"]
        rows.append(("fork/exit storm inside a job (tracked) ÷ outside (bpf_stats on)",
                     "%.0f ÷ %.0f per s" % (c["tracked_fork_storm"]["ops_per_s"],
                                            c["fork_storm"]["ops_per_s"]),
                     "%.3f×" % (c["tracked_fork_storm"]["ops_per_s"] / c["fork_storm"]["ops_per_s"]),
                     "—"))
    fp = res.get("footprint")
    if fp:
        for m in ("ebpf", "polling"):
            r = fp["idle_rss_kib_" + m]["median"]
            det = fp["idle_rss_detail_kib_" + m]
            rows.append(("RSS idle, %s" % m, "%d KiB (anon %d, file %d; PSS %d)" % (
                r, det["RssAnon"], det["RssFile"], det["Pss"]), "target < %d KiB" % T["idle_rss_kib"],
                status(r < T["idle_rss_kib"], "%d KiB (%.2f×)" % (r - T["idle_rss_kib"],
                                                                  r / T["idle_rss_kib"]))))
        rows.append(("binary size (ctld-bpf)", "%d KiB; stripped %d KiB (text %d KiB)" % (
            fp["binary_bytes"] // 1024, fp["stripped_bytes"] // 1024, fp["text_bytes"] // 1024),
            "—", "—"))
        for m in ("ebpf", "polling"):
            s = fp["ready_ms_" + m]
            extra = ""
            if m == "ebpf" and fp["bpf_attach_ms"].get("n"):
                extra = "; BPF load + attach %.1f ms" % fp["bpf_attach_ms"]["median"]
            rows.append(("exec → ready (ready file written), %s, %d starts" % (m, s["n"]),
                         "%.1f ms (p10–p90 %.1f–%.1f%s)" % (s["median"], s["p10"], s["p90"],
                                                             extra), "—", "—"))
    sc = res.get("scale")
    if sc:
        for m in ("ebpf", "polling"):
            j = sc.get("jobs_" + m)
            if not j:
                continue
            ok = j["exited"] == j["jobs"] and not j["failed"]
            rows.append(("%d concurrent `sleep %d` jobs, %s" % (j["jobs"], j["job_seconds"], m),
                         "all launched in %.0f ms; RSS %d KiB while they live; last Exited "
                         "%.0f ms after last launch + %d s" % (
                             # a job may end a hair before "launch + N s" by this clock
                             j["all_launched_ns"] / 1e6, j["rss_kb"], max(0.0, j["exit_drain_ms"]),
                             j["job_seconds"]),
                         "%d/%d Exited" % (j["exited"] - j["failed"], j["jobs"]),
                         "ok" if ok else "FAILED"))
        c = sc["clients_64"]
        rows.append(("64 clients at once, %d /bin/echo runs each" % c["runs_each"],
                     "%.0f runs/s; per run p50 %s, p99 %s" % (
                         c["runs_per_s"], fmt_ms(c["latency_ms"]["median"]),
                         fmt_ms(c["latency_ms"]["p99"])),
                     "%d failed" % c["failed"], "ok" if not c["failed"] else "FAILED"))
        r = sc["ring_pressure"]
        rows.append(("ring buffer pushed hard: %d forks in a job, daemon stopped" % r["forks"],
                     "%d records: %d delivered, %d dropped and counted" % (
                         r["records_expected"], r["ring_received"], r["ring_drops"]),
                     "silent losses: %s; Exited %s" % ("none" if r["none_silent"] else
                                                       "%d" % (r["records_expected"] - r["accounted"]),
                                                       "arrived" if r["exited"] else "MISSING"),
                     "ok" if r["none_silent"] and r["exited"] else "FAILED"))
    return rows


def notes(res):
    """Facts from this run that explain the misses (the why is in bench/README.md)."""
    out = []
    co = res.get("command_overhead", {}).get("variants", {})
    if "ctld_unix" in co and "daemon_cpu_us_per_command" in co["ctld_unix"]:
        out.append("ctld-bpf's own CPU per command: %.0f µs with eBPF, %.0f µs with --no-bpf "
                   "(%.1f / %.1f wake-ups per command); direct spawn takes %s in all."
                   % (co["ctld_unix"]["daemon_cpu_us_per_command"],
                      co["ctld_nobpf"]["daemon_cpu_us_per_command"],
                      co["ctld_unix"]["daemon_wakeups_per_command"],
                      co["ctld_nobpf"]["daemon_wakeups_per_command"],
                      fmt_ms(co["direct"]["per_command_ms"]["median"])))
    if "ssh_mux" in co:
        out.append("Multiplexed ssh is %.1f× direct spawn on this machine, so no daemon can be "
                   "%.0f× faster than it here: that would take a command below %s, faster than "
                   "posix_spawn itself." % (co["ssh_mux"]["ratio_to_direct"], TARGETS["ssh_mux_factor"],
                                            fmt_ms(co["ssh_mux"]["per_command_ms"]["median"]
                                                   / TARGETS["ssh_mux_factor"])))
    fp = res.get("footprint")
    if fp and fp.get("idle_rss_by_mapping_kib", {}).get("ebpf"):
        out.append("Idle RSS with eBPF by mapping (KiB, rss/pss): " + ", ".join(
            "%s %d/%d" % (k, v[0], v[1]) for k, v in fp["idle_rss_by_mapping_kib"]["ebpf"].items()))
    return out


def markdown(res, json_path):
    m = res["machine"]
    lines = [
        "<!-- generated by bench/bench.py; do not edit -->",
        "Measured %s with `%s` (raw data: `%s`)." % (res["started"][:10], res["command"], json_path),
        "Machine: %s, %d vCPU%s, %d MiB, Linux %s, %s; kernel.bpf_stats_enabled was %d "
        "(turned on only while measuring BPF cost per call); load average at start %s; "
        "commit %s%s." % (
            m["cpu_model"], m["nproc"], " (VM)" if m["hypervisor"] else "",
            m["memory_kib"] // 1024, m["kernel"], m["libbpf"] and "libbpf " + m["libbpf"],
            m["bpf_stats_enabled_before"], " ".join(m["loadavg_at_start"]),
            (m["git_commit"] or "?")[:12], " + local changes" if m["git_dirty"] else ""),
        "",
        "| measurement | value | ratio/target | status |",
        "|---|---|---|---|",
    ]
    for row in table(res["results"]):
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |")
    n = notes(res["results"])
    if n:
        lines += [""] + ["- " + x for x in n]
    lines.append("")
    return "\n".join(lines)


def plot(res, path):
    """Command-overhead bars (median, p10/p90 whiskers, log scale) and the
    listen-detection latency distributions, with gnuplot."""
    co = res["results"].get("command_overhead")
    ld = res["results"].get("listen")
    if not co or not shutil.which("gnuplot"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        bars = os.path.join(tmp, "bars.dat")
        with open(bars, "w") as f:
            for key, d in co["variants"].items():
                s = d["per_command_ms"]
                r = d["ratio_to_direct"]
                f.write('"%s" %g %g %g "%s×"\n' % (key.replace("_", " "), s["median"], s["p10"],
                                                   s["p90"], "%.2f" % r if r < 10 else "%.0f" % r))
        script = [
            "set terminal pngcairo size 1200,520 font 'sans,10'",
            "set output '%s'" % path,
            "set multiplot layout 1,2",
            "set title 'Command overhead: /bin/echo, median of %d×%d (p10–p90)'"
            % (co["batches"], co["runs_per_batch"]),
            "set logscale y", "set ylabel 'ms per command'", "set yrange [0.5:*]",
            "set style fill solid 0.6", "set boxwidth 0.7", "set xtics rotate by -25",
            "set bars small",
            "set grid ytics", "unset key",
            "plot '%s' using 0:2:xtic(1) with boxes lc rgb '#4878a8', "
            "'' using 0:3:(0):($4-$3) with vectors nohead lc rgb 'black' lw 1.5, "
            "'' using 0:($4*1.25):5 with labels" % bars,
        ]
        if ld:
            for m in ("ebpf", "polling"):
                v = sorted(ld[m]["samples_us"])
                with open(os.path.join(tmp, m + ".dat"), "w") as f:
                    for i, x in enumerate(v):
                        f.write("%g %g\n" % (x, (i + 1) / len(v)))
            script += [
                "unset logscale", "set logscale x", "set xtics norotate", "set key top left",
                "set title 'listen() → PortListening at the client (%d trials each)'"
                % ld["ebpf"]["latency_us"]["n"],
                "set xlabel 'latency (µs)'", "set ylabel 'fraction of trials'",
                "set yrange [0:1]", "set xrange [1:*]",
                "plot '%s' using 1:2 with steps lw 2 title 'eBPF', "
                "'%s' using 1:2 with steps lw 2 title 'polling (20 ms)'"
                % (os.path.join(tmp, "ebpf.dat"), os.path.join(tmp, "polling.dat")),
            ]
        script.append("unset multiplot")
        p = subprocess.run(["gnuplot"], input="\n".join(script), text=True, capture_output=True)
        if p.returncode:
            say("gnuplot failed: " + p.stderr)
            return False
    return True


def headline(res):
    """The short table bench-quick prints."""
    r = res["results"]
    out = []
    co = r.get("command_overhead", {}).get("variants", {})
    for key in co:
        out.append(("%s / direct" % key, "%.2f×" % co[key]["ratio_to_direct"]))
    if "ssh_mux" in co:
        out.append(("ssh_mux / ctld_unix", "%.1f×" % (co["ssh_mux"]["per_command_ms"]["median"]
                                                      / co["ctld_unix"]["per_command_ms"]["median"])))
    if "listen" in r:
        out.append(("listen p50 eBPF / polling", "%.1f µs / %.0f µs" % (
            r["listen"]["ebpf"]["latency_us"]["median"],
            r["listen"]["polling"]["latency_us"]["median"])))
    if "interference" in r:
        for kind in ("fork", "tcp"):
            out.append(("%s storm on / off" % kind,
                        "%.3f×" % r["interference"]["throughput"][kind]["ratio"]))
    if "footprint" in r:
        out.append(("idle RSS (eBPF)", "%d KiB" % r["footprint"]["idle_rss_kib_ebpf"]["median"]))
    return out


# ---------------------------------------------------------------- main

SECTIONS = ["command_overhead", "listen", "idle_cpu", "interference", "footprint", "scale"]


def config(args):
    c = argparse.Namespace(quick=args.quick, no_ssh=args.no_ssh)
    if args.quick:
        c.reps, c.runs = 5, 30
        c.listen_trials = 50
        c.idle_seconds = 2
        c.cost_seconds, c.storm_seconds, c.storm_reps = 0.5, 0.5, 3
        c.starts = 3
        c.jobs, c.job_seconds, c.client_runs, c.ring_forks = 200, 1, 3, 20000
    else:
        c.reps, c.runs = 20, 30
        c.listen_trials = 200
        c.idle_seconds = 10
        c.cost_seconds, c.storm_seconds, c.storm_reps = 2, 1, 10
        c.starts = 7
        c.jobs, c.job_seconds, c.client_runs, c.ring_forks = 1000, 2, 20, 20000
    return c


def main():
    global BUILD, TOOLS, CTLD, CTL, Client, pb
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="reduced run (< 1 min)")
    ap.add_argument("--out", help="results directory (default bench/results, or "
                    "BUILD/bench/results-quick with --quick)")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--no-ssh", action="store_true", help="skip the ssh baselines")
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
        return
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (eBPF, sshd, bpf_stats)")
    BUILD = os.path.abspath(os.path.join(ROOT, args.build))
    TOOLS = os.path.join(BUILD, "bench")
    CTLD = os.path.join(BUILD, "ctld-bpf")
    CTL = os.path.join(BUILD, "ctl")
    sys.path.insert(0, os.path.join(BUILD, "python"))
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
    import ctld_client
    Client, pb = ctld_client.Client, ctld_client.pb
    out_dir = args.out or (os.path.join(TOOLS, "results-quick") if args.quick
                           else os.path.join(ROOT, "bench", "results"))
    cfg = config(args)
    sections = args.only.split(",") if args.only else SECTIONS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench.py: SIGTERM"))
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {"format": 1, "started": started.isoformat(timespec="seconds"),
           "command": "make bench-quick" if args.quick else "make bench",
           "argv": sys.argv, "quick": args.quick, "config": vars(cfg),
           "machine": machine(), "targets": TARGETS, "results": {}}
    t0 = time.monotonic()
    funcs = {"command_overhead": command_overhead, "listen": listen_detection,
             "idle_cpu": idle_cpu, "interference": interference, "footprint": footprint,
             "scale": scale}
    try:
        for name in sections:
            res["results"][name] = funcs[name](cfg)
    finally:
        for thing in reversed(OWNED):
            try:
                (thing.close if isinstance(thing, Tool) else thing.stop)()
            except Exception as e:  # keep cleaning up
                say("cleanup: %s" % e)
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
    plotted = plot(res, os.path.join(out_dir, "latest.png"))
    say("")
    if args.quick:
        width = max(len(k) for k, _ in headline(res))
        for k, v in headline(res):
            say("  %-*s  %s" % (width, k, v))
    else:
        say(md)
    say("results: %s/{%s,latest.md%s} (%.0f s)"
        % (out_dir, json_name, ",latest.png" if plotted else "", res["duration_s"]))


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: BSD-2-Clause
"""Section 6 of the benchmark, time to ready: redis-server, memcached and
nginx started through `sh -c`, waited for five ways, side by side (see
bench/README.md, "Time to ready").

Every trial has a fresh port and a passive WatchPort (once) on it from a
client of the same daemon: its PortListening carries the kernel's LISTEN
transition time, the truth every method is compared with. All times are
taken by this process: the start command is issued at t0, the method says
ready at t1 (ctl: its `ready` JSON line is read; a loop: it returns), both
on CLOCK_MONOTONIC for the time to ready, and t1 on CLOCK_REALTIME too for
the answer's distance from the kernel event: the daemon turns the kernel's
CLOCK_MONOTONIC record (bpf_ktime_get_ns) into CLOCK_REALTIME when it
reports it, so both sides of that difference are on the same clock."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

from procs import OWNED, P, daemon, free_ports, say
from ctld.servers import nginx_args  # on the path procs sets
from measure import summary

REDIS = "/usr/bin/redis-server"
MEMCACHED = "/usr/bin/memcached"
NGINX = "/usr/sbin/nginx"

WAIT_S = 20      # a wait that has not seen ready after this is a miss
ANSWER_S = 2     # the one request after "ready": its reply must come within this


class Server:
    """One server program: how `sh -c` starts it (line(port, tmp): its files,
    if any, are written under tmp), the request that proves it answers (the
    start of a good reply), and its own ready line (None: it prints none;
    `no_log` says why; `log_note`: what it takes)."""

    def __init__(self, name, line, request, reply, log=None, no_log=None, log_note=None):
        self.name, self.line, self.request, self.reply = name, line, request, reply
        self.log, self.no_log, self.log_note = log, no_log, log_note
        self.last = None

    def command(self, port, tmp):
        """The `sh -c` line for a start on port (the last one is in the results)."""
        self.last = self.line(port, tmp)
        return self.last


def redis_line(port, tmp):
    return ("%s --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir %s"
            % (REDIS, port, tmp))


def memcached_line(port, tmp):
    return "%s -l 127.0.0.1 -p %d -U 0 -u nobody" % (MEMCACHED, port)


def nginx_line(port, tmp):
    """In the foreground (daemon off), as the e2e tests run it."""
    return " ".join([NGINX] + nginx_args(port, tmp))


SERVERS = [
    Server("redis-server", redis_line, b"PING\r\n", b"+PONG\r\n",
           log="Ready to accept connections"),
    Server("memcached", memcached_line, b"version\r\n", b"VERSION ",
           no_log="memcached prints nothing when it starts, at its default verbosity and "
                  "with -v; only -vv (debug: every connection and command) prints "
                  "'<N server listening (auto-negotiate)'"),
    Server("nginx", nginx_line, b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", b"HTTP/1.",
           log="start worker processes",
           log_note="at `error_log ... notice`, as configured here; at nginx's default level, "
                    "error, it prints nothing"),
]


def now():
    """(CLOCK_MONOTONIC ns, CLOCK_REALTIME ns), read back to back."""
    return time.monotonic_ns(), time.clock_gettime_ns(time.CLOCK_REALTIME)


# ---------------------------------------------------------------- the server's answer

def answers(server, port):
    """One request on a fresh connection, no retry: True when the reply
    starts as it should. It may wait in the listen backlog like any
    client's request; refused, reset, closed or a wrong reply is False."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_S) as s:
            s.sendall(server.request)
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(server.reply)
    except OSError:
        return False


def port_free(port, timeout=10):
    """Waits until nothing listens on port (SO_REUSEADDR: TIME_WAIT
    connections left by our requests do not count, as for the servers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                time.sleep(0.01)
    return False


# ---------------------------------------------------------------- ctl run --wait-*

def via_ctl(d, wait_args):
    """ctl --json run --wait-... -- sh -c LINE: ready when its `ready` line
    is read. Returns (t1 or None, answered, the Ready event's first
    condition or None, stop())."""
    def start(server, port, tmp):
        argv = [P.ctl, "-S", d.socket, "--json", "run", *wait_args(server, port),
                "--timeout", "%ds" % WAIT_S, "--", "sh", "-c", server.command(port, tmp)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t1 = ready = None
        for line in p.stdout:  # ends when ctl does: --timeout bounds it
            stamp = now()
            if line.startswith(b'{"event":"ready"'):
                t1, ready = stamp, json.loads(line)
                break
        answered = ready is not None and answers(server, port)  # before ctl's exit is awaited
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if not ready:
            say("   %s: ctl exited %s without ready: %s"
                % (server.name, p.returncode, err.decode(errors="replace").strip()[-500:]))

        def stop():
            if ready:
                subprocess.run([P.ctl, "-S", d.socket, "kill", "--signal", "KILL",
                                str(ready["job"])], capture_output=True, timeout=30)
            port_free(port)
        return t1, answered, ready["conditions"][0] if ready else None, stop
    return start


def wait_port_args(server, port):
    return ["--wait-port", str(port)]


def wait_log_args(server, port):
    return ["--wait-log", server.log]


# ---------------------------------------------------------------- what people write

def connect_ok(server, port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def via_loop(probe, interval):
    """sh -c LINE started directly (its own process group), then `probe`
    every `interval` s until it succeeds. Returns as via_ctl does."""
    def start(server, port, tmp):
        srv = subprocess.Popen(["sh", "-c", server.command(port, tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        group = ProcessGroup(srv)
        OWNED.append(group)
        deadline = time.monotonic() + WAIT_S
        t1 = None
        while True:
            if probe(server, port):
                t1 = now()
                break
            if time.monotonic() + interval > deadline or srv.poll() is not None:
                break
            time.sleep(interval)
        answered = t1 is not None and answers(server, port)

        def stop():
            group.stop()
            OWNED.remove(group)
            port_free(port)
        return t1, answered, None, stop
    return start


class ProcessGroup:
    """A server started by a loop method, with its children (nginx's
    worker): SIGKILL to the whole group, whatever happens."""

    def __init__(self, proc):
        self.proc = proc

    def stop(self):
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


METHODS = [
    ("ctl_wait_port", lambda d: via_ctl(d, wait_port_args)),
    ("ctl_wait_log", lambda d: via_ctl(d, wait_log_args)),
    ("protocol_poll_100ms", lambda d: via_loop(answers, 0.1)),
    ("connect_poll_10ms", lambda d: via_loop(connect_ok, 0.01)),
    ("connect_poll_1s", lambda d: via_loop(connect_ok, 1.0)),
]


# ---------------------------------------------------------------- one trial

def kernel_listen(watcher, watch):
    """The kernel's LISTEN time (CLOCK_REALTIME ns) of the trial's watch,
    or None when nothing listened."""
    try:
        while True:
            ev = watcher.next_event(timeout=5)
            if ev.HasField("port_listening") and ev.port_listening.watch == watch:
                return ev.port_listening.time_ns or None
    except TimeoutError:
        watcher.request(unwatch_port=P.pb.UnwatchPort(watch=watch))
        return None


def trial(watcher, server, start, tmp):
    """One start of `server` waited for by `start`: the row of samples."""
    port = free_ports(1)[0]
    watch = watcher.request(watch_port=P.pb.WatchPort(port=port, addr="127.0.0.1",
                                                      once=True)).watch.watch
    t0 = now()
    t1, answered, cond, stop = start(server, port, tmp)
    stop()
    listen_ns = kernel_listen(watcher, watch)
    row = {"ready": t1 is not None, "answered": answered, "listen_ns": listen_ns}
    if cond:  # the daemon's time of the condition: LISTEN, or the read of the log line
        row["ready_cond_ns"], row["ready_cond_kind"] = cond.get("time_ns"), cond["kind"]
    if t1:
        row["time_ms"] = (t1[0] - t0[0]) / 1e6
        # --wait-port: the truth is the Ready event's own condition time
        truth = row["ready_cond_ns"] if cond and cond["kind"] == "port" else listen_ns
        if truth:
            row["after_listen_ms"] = (t1[1] - truth) / 1e6
    if listen_ns:
        row["listen_ms"] = (listen_ns - t0[1]) / 1e6
    return row


def time_to_ready(cfg):
    """Every server x method, cfg.ready_reps times; the server order and
    the method order rotate per repetition."""
    say("== 6. time to ready: %s via sh -c, %d repetitions per method"
        % (", ".join(s.name for s in SERVERS), cfg.ready_reps))
    d = daemon(bpf=True)
    methods = [(name, make(d)) for name, make in METHODS]
    rows = {s.name: {m: [] for m, _ in methods if m != "ctl_wait_log" or s.log}
            for s in SERVERS}
    with tempfile.TemporaryDirectory(prefix="ctld-bench-ready-") as tmp, d.client() as watcher:
        for server in SERVERS:  # warm-up, not counted: ctl, sh and the server in the page cache
            trial(watcher, server, methods[0][1], tmp)
        for rep in range(cfg.ready_reps):
            k = rep % len(SERVERS)
            for server in SERVERS[k:] + SERVERS[:k]:
                mine = [(m, fn) for m, fn in methods if m in rows[server.name]]
                j = rep % len(mine)
                for name, fn in mine[j:] + mine[:j]:
                    rows[server.name][name].append(trial(watcher, server, fn, tmp))
    d.stop()
    return {"servers": {s.name: server_result(s, rows[s.name]) for s in SERVERS},
            "methods": [m for m, _ in METHODS], "reps": cfg.ready_reps,
            "wait_s": WAIT_S, "answer_s": ANSWER_S}


def server_result(server, rows):
    """Statistics per method of one server, ratios to ctl --wait-port."""
    out = {"command": server.last, "request": server.request.decode(),
           "log_regex": server.log, "no_log": server.no_log, "log_note": server.log_note,
           "methods": {}}
    for name, rs in rows.items():
        ok = [r for r in rs if r["ready"] and r["answered"]]
        m = {"time_ms": summary([r["time_ms"] for r in ok]),
             "after_listen_ms": summary([r["after_listen_ms"] for r in rs
                                         if "after_listen_ms" in r]),
             "listen_ms": summary([r["listen_ms"] for r in rs if "listen_ms" in r]),
             "missed": sum(not r["ready"] for r in rs),
             "false_ready": sum(r["ready"] and not r["answered"] for r in rs),
             "samples": rs}
        # --wait-port: the Ready event and the passive watch saw the same
        # LISTEN record (0); --wait-log: the daemon read the line this long
        # after the server listened
        m["condition_minus_listen_ms"] = summary([(r["ready_cond_ns"] - r["listen_ns"]) / 1e6
                                                  for r in rs if r.get("ready_cond_ns") and
                                                  r["listen_ns"]])
        out["methods"][name] = m
        s, a = m["time_ms"], m["after_listen_ms"]
        say("   %-12s %-19s p50 %7.1f ms  p90 %7.1f ms  answer-LISTEN p50 %8.3f ms  "
            "(%d ok, %d missed, %d false ready)"
            % (server.name, name, s.get("median") or 0, s.get("p90") or 0,
               a.get("median") or 0, s["n"], m["missed"], m["false_ready"]))
    base = out["methods"]["ctl_wait_port"]["time_ms"].get("median")
    for m in out["methods"].values():
        med = m["time_ms"].get("median")
        m["ratio_to_ctl_wait_port"] = med / base if med and base else None
    return out

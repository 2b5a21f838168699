# SPDX-License-Identifier: BSD-2-Clause
"""What the daemon reports, checked against an independent record of what
the kernel did: bpftrace (Debian's) on tracepoint:sock:inet_sock_set_state,
syscalls:sys_exit_listen and sched:sched_process_exit, running beside the
daemon while jobs make a few hundred listens -- most succeed, some fail with
EADDRINUSE, some are in another network namespace, some on an address a
watch does not want, some on IPv6, from a server started through bash --
and end with various statuses, while another job forks all along.

Every successful listen the kernel saw on a watched {netns, port, address}
must be reported exactly once, with the right pid, port and address, and
closed once; nothing else may be reported; every job's exit status must be
the kernel's. Without eBPF (sock_diag polling) listeners are held longer
than the poll interval, so the same exactness is required.
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import MODE, PY, DaemonTestCase, free_port, pb, scaled

BPFTRACE = "/usr/bin/bpftrace"
TCP_LISTEN = 10

SCRIPT = r"""
BEGIN { printf("READY\n"); }
tracepoint:sock:inet_sock_set_state
/args->newstate == 10 || args->oldstate == 10/
{
  $sk = (struct sock *)args->skaddr;
  printf("STATE %d %d %d %d %d %u %d %s %s\n", pid, tid, args->oldstate, args->newstate,
         args->sport, $sk->__sk_common.skc_net.net->ns.inum, args->family,
         ntop(args->saddr), ntop(args->saddr_v6));
}
tracepoint:syscalls:sys_exit_listen { printf("LISTENRET %d %d %d\n", pid, tid, args->ret); }
tracepoint:sched:sched_process_exit /(uint64)args->pid == pid/
{
  printf("EXIT %d %d\n", pid, curtask->exit_code);
}
"""

# Where bpftrace cannot make C definitions from the kernel's BTF (0.17 on
# 5.10: "unknown type name 'pid_t'", "'s64'", for the tracepoints' own
# argument structs too), the same with those typedefs given in a header and
# without struct sock: each listen's netns is then told by the listening
# process (the test knows which of its jobs runs in the other namespace),
# and the test says so.
KERNEL_TYPEDEFS = "".join("typedef %s %s;\n" % t for t in (
    ("int", "pid_t"), ("long long", "s64"), ("unsigned long long", "u64"), ("int", "s32"),
    ("unsigned int", "u32"), ("short", "s16"), ("unsigned short", "u16")))
SCRIPT_NO_SOCK = SCRIPT.replace(
    "  $sk = (struct sock *)args->skaddr;\n", "").replace(
    "$sk->__sk_common.skc_net.net->ns.inum", "(uint32)0").replace(
    # nor struct task_struct: an exit's status is then exit_group()'s
    # argument where it called it, unknown (-1) where a signal ended it
    "curtask->exit_code", "-1") + """
tracepoint:syscalls:sys_enter_exit_group { printf("EXITCODE %d %d\\n", pid, args->error_code); }
"""

# A job that carries out a plan (a JSON file): [[kind, host, port, hold], ...]
# per thread.
# "ok": bind, listen, hold, close. "inuse": two SO_REUSEADDR sockets on the
# same address; the first listens, the second's listen() fails (EADDRINUSE).
WORKLOAD = r"""
import errno, json, os, socket, sys, threading, time
def listener(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    return s
def run(items):
    try:
        for kind, host, port, hold in items:
            try:
                a = listener(host, port)
                b = listener(host, port) if kind == "inuse" else None
            except OSError as e:  # the port was taken meanwhile (an ephemeral port)
                print("workload: bind %s:%d: %s" % (host, port, e), file=sys.stderr, flush=True)
                continue
            a.listen()
            if b:
                try:
                    b.listen()
                    raise AssertionError("listen() did not fail")
                except OSError as e:
                    assert e.errno == errno.EADDRINUSE, e
                b.close()
            time.sleep(hold)
            a.close()
    except BaseException as e:
        print("workload:", repr(e), file=sys.stderr, flush=True)
        os._exit(1)
threads = [threading.Thread(target=run, args=(g,)) for g in json.load(open(sys.argv[1]))]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def parse_record(text, netns_of_pid=None):
    """(successful listens, failed listens, closes, exits) of the record:
    listens as (pid, port, netns, addr); exits as {pid: exit_code}. With
    netns_of_pid, a record without the netns (0) gets the process's."""
    pending, ok, failed, closes, exits, codes = {}, [], [], [], {}, {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "STATE":
            pid, tid, old, new, port, ns, family = map(int, f[1:8])
            if ns == 0 and netns_of_pid:
                ns = netns_of_pid(pid)
            addr = f[8] if family == 2 else f[9]
            rec = (pid, port, ns, addr)
            if new == TCP_LISTEN:
                pending[tid] = rec
            elif old == TCP_LISTEN and tid not in pending:
                closes.append(rec)  # (inside a listen() that fails: not a close)
        elif f[0] == "LISTENRET":
            pid, tid, ret = map(int, f[1:4])
            rec = pending.pop(tid, None)
            if rec:
                (ok if ret == 0 else failed).append(rec)
        elif f[0] == "EXITCODE":
            codes[int(f[1])] = (int(f[2]) & 0xff) << 8
        elif f[0] == "EXIT":
            exits[int(f[1])] = int(f[2]) if int(f[2]) >= 0 else codes.get(int(f[1]), -1)
    return ok, failed, closes, exits


def without_pid(counter):
    """A Counter of (pid, ...) keys as one of the keys without their pid."""
    out = collections.Counter()
    for key, n in counter.items():
        out[key[1:]] += n
    return out


class RecorderFailed(AssertionError):
    pass


class Recorder:
    """bpftrace running the script, its output collected."""

    def __init__(self, script=SCRIPT):
        if not os.path.isdir("/sys/kernel/tracing/events"):
            subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
                           check=True)
        # stderr to a file: a pipe nobody reads could block bpftrace
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([BPFTRACE, "-B", "line", "-e", script],
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        # bpftrace compiles its script with LLVM first: ~1 s here, over a
        # minute in an emulated guest whose CPUs are shared; one that gave
        # up is not waited for
        deadline = time.monotonic() + scaled(60)
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RecorderFailed("bpftrace did not start (%s): %s" % (
                    "exit status %d" % self.proc.returncode if self.proc.returncode > 0
                    else "not within %.0f s" % scaled(60),
                    self.errors() or "(nothing on stderr)"))

    @classmethod
    def start(cls):
        """A Recorder, and whether its record has each socket's netns."""
        try:
            return cls(), True
        except RecorderFailed as e:
            if "unknown type name" not in str(e):
                raise
            sys.stderr.write("\n  note: %s\n  the netns of each listen is then that of the "
                             "process (bpftrace without struct sock)\n" % str(e).strip())
            header = tempfile.NamedTemporaryFile("w", suffix=".h", prefix="ctld-bpftrace-")
            header.write(KERNEL_TYPEDEFS)
            header.flush()
            try:
                return cls('#include "%s"\n%s' % (header.name, SCRIPT_NO_SOCK)), False
            finally:
                header.close()  # bpftrace has read it once it started

    def read(self):
        for line in self.proc.stdout:
            if line.startswith("READY"):
                self.ready.set()
            self.lines.append(line)

    def errors(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        """Its record (each line was flushed as it came)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=scaled(15))
        except subprocess.TimeoutExpired:
            self.proc.kill()  # bpftrace 0.17 sometimes hangs detaching
            self.proc.wait()
        self.reader.join(10)
        err = self.errors()
        if "Lost" in err:
            raise AssertionError("bpftrace lost events: " + err)
        return "".join(self.lines)


class KernelRecordTest(DaemonTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ctld-record-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.script = os.path.join(self.tmp, "workload.py")
        with open(self.script, "w") as f:
            f.write(WORKLOAD)
        self.ns = "ctldrec-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.ns])
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)

    def write_plan(self, name, plan):
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(plan, f)
        return path

    def plan(self, hold):
        """Plans for three jobs (here, here on filtered ports, another netns)
        and what each watch must report: {watch key: Counter of (port, addr)}."""
        anyaddr = [free_port() for _ in range(20)]
        filtered = [free_port() for _ in range(5)]
        here = []
        for i, port in enumerate(anyaddr):
            items = [["ok", "127.0.0.1", port, hold]] * 8 + [["inuse", "127.0.0.1", port, hold]] * 2
            if i < 5:
                items += [["ok", "::1", port, hold]] * 2
            here.append(items)
        for port in filtered:
            here.append([["ok", "127.0.0.1", port, hold], ["ok", "127.0.0.2", port, hold]] * 4)
        other = [[["ok", "127.0.0.1", port, hold]] * 3 for port in anyaddr[:10]]
        return anyaddr, filtered, here, other

    def test_listens_and_exits_match_the_kernel(self):
        hold = 0.003 if MODE == "bpf" else 0.25  # polling sees what outlives its 20 ms
        anyaddr, filtered, here, other = self.plan(hold)
        rec, self.record_has_netns = Recorder.start()
        try:
            with self.d.client() as c:
                watches = {}
                for port in anyaddr:
                    watches[c.request(watch_port=pb.WatchPort(port=port)).watch.watch] = (port, "")
                for port in filtered:
                    w = c.request(watch_port=pb.WatchPort(port=port, addr="127.0.0.1")).watch.watch
                    watches[w] = (port, "127.0.0.1")
                # the way people start things, and a neighbour that forks all along
                noise = c.run(["sh", "-c", "while :; do /bin/true; sleep 0.01; done"])
                jobs = [c.run(["bash", "-c", "%s %s %s; echo done"
                               % (PY, self.script, self.write_plan("here", here))]),
                        c.run(["ip", "netns", "exec", self.ns, PY, self.script,
                               self.write_plan("other", other)])]
                self.other_job = jobs[1]  # `ip netns exec` execs python: one pid
                # and jobs that only end, in every way
                for i in range(20):
                    jobs.append(c.run(["sh", "-c", "exit %d" % (i * 13 % 256)]))
                for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1, signal.SIGINT):
                    jobs.append(c.run(["sh", "-c", "kill -%d $$" % sig]))
                listening, closed, exited = self.collect(c, watches, jobs, anyaddr, filtered)
                c.signal(noise, signal.SIGKILL)
        finally:
            record = rec.stop()
        try:
            self.compare(record, watches, listening, closed, exited)
        except AssertionError as e:
            lag = [l for l in self.d.log(1 << 22).splitlines() if "port poll " in l]
            raise AssertionError("%s\n(the daemon's slow polls: %s)" % (e, lag[-10:])) from None

    def collect(self, c, watches, jobs, anyaddr, filtered):
        """Events until every job ended and the reports have stopped coming."""
        listening, closed, exited = collections.defaultdict(list), collections.defaultdict(list), {}
        self.output = {}
        deadline = time.monotonic() + scaled(120)
        quiet_until = None
        while time.monotonic() < deadline:
            try:
                ev = c.next_event(timeout=0.5)
            except TimeoutError:
                if len(exited) == len(jobs):
                    if quiet_until is None:
                        quiet_until = time.monotonic() + scaled(1.0)
                    elif time.monotonic() > quiet_until:
                        break
                continue
            kind = ev.WhichOneof("kind")
            if kind == "port_listening":
                p = ev.port_listening
                listening[p.watch].append((p.pid, p.port, p.addr, p.already))
            elif kind == "port_closed":
                closed[ev.port_closed.watch].append((ev.port_closed.pid, ev.port_closed.port))
            elif kind == "output":
                self.output[ev.output.job] = self.output.get(ev.output.job, b"") + ev.output.data
            elif kind in ("exited", "exec_failed") and getattr(ev, kind).job in jobs:
                exited[getattr(ev, kind).job] = ev
        self.assertEqual(len(exited), len(jobs), "not every job ended")
        for ev in exited.values():
            self.assertTrue(ev.HasField("exited"), ev)
        for job in jobs[:2]:
            self.assertEqual(exited[job].exited.exit_code, 0,
                             "workload job failed: %s" % self.output.get(job, b"").decode())
        return listening, closed, exited

    def compare(self, record, watches, listening, closed, exited):
        netns = os.stat("/proc/self/ns/net").st_ino
        other_pid = exited[self.other_job].exited.pid
        other_ns = os.stat("/run/netns/" + self.ns).st_ino
        ok, failed, closes, exits = parse_record(
            record, None if self.record_has_netns else
            lambda pid: other_ns if pid == other_pid else netns)
        # the workload did what it says: a few hundred listens of each kind
        self.assertGreaterEqual(len(ok), 270)
        self.assertGreaterEqual(len(failed), 35)
        self.assertGreaterEqual(len([r for r in ok if r[2] != netns]), 25)
        for w, (port, addr) in watches.items():
            want = collections.Counter(
                (pid, p, a, False) for pid, p, ns, a in ok
                if p == port and ns == netns and (not addr or a == addr))
            got = collections.Counter(listening[w])
            what = "watch of port %d%s: reported vs the kernel's record" % (
                port, "@" + addr if addr else "")
            if MODE != "bpf":
                # Polling learns a listener's owner from /proc after seeing
                # it: one gone by then is reported with pid 0, unknown (never
                # another pid). Every listen is still reported, once.
                self.assertEqual(without_pid(got), without_pid(want), what)
                self.assertLessEqual({k[0] for k in got} - {0}, {k[0] for k in want}, what)
            else:
                self.assertEqual(got, want, what)
            want_closed = collections.Counter(
                (pid, p) for pid, p, ns, a in closes
                if p == port and ns == netns and (not addr or a == addr))
            got_closed = collections.Counter(closed[w])
            if MODE != "bpf":  # the same: who opened it may be unknown (0)
                self.assertEqual(without_pid(got_closed), without_pid(want_closed),
                                 "PortClosed of port %d" % port)
                self.assertLessEqual({k[0] for k in got_closed} - {0},
                                     {k[0] for k in want_closed}, "PortClosed of port %d" % port)
            else:
                self.assertEqual(got_closed, want_closed, "PortClosed of port %d" % port)
        for ev in exited.values():
            e = ev.exited
            status = exits.get(e.pid)
            self.assertIsNotNone(status, "the kernel saw no exit of pid %d" % e.pid)
            if status < 0:  # a record without exit_code: a signal's end is only seen
                self.assertNotEqual(e.signal, 0, "job %d (pid %d) called no exit_group()"
                                    % (e.job, e.pid))
                continue
            self.assertEqual((e.exit_code, e.signal), ((status >> 8) & 0xff, status & 0x7f),
                             "job %d (pid %d): Exited vs the kernel's exit_code %#x"
                             % (e.job, e.pid, status))


if __name__ == "__main__":
    unittest.main()

# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end test harness: starts a real ctld-bpf on a private socket and an
ephemeral TCP port, hands out Python clients and runs the real `ctl`.

Environment:
  CTLD_BUILD      build directory (default: build)
  CTLD_TEST_MODE  "bpf" (default) or "nobpf". In bpf mode a daemon that could
                  not load its eBPF programs FAILS the test: the kernel path is
                  what is under test, so it must never be skipped silently.
  CTLD_VALGRIND   "1": run the daemon under valgrind memcheck (slow)
  CTLD_TIME_FACTOR  how much slower than a normal host this machine is (default
                  1; tests/kernels sets 8 in its qemu TCG guests): scaled()
                  multiplies timeouts and grace periods by it. The harness's
                  own waits (wait_for, Daemon start/stop, Daemon.ctl, and the
                  timeout of clients from Daemon.client/tcp_client) scale
                  themselves; wrap the other timing numbers of a test in
                  scaled() -- never a correctness assertion.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.path.join(ROOT, os.environ.get("CTLD_BUILD", "build")))
sys.path.insert(0, os.path.join(BUILD, "python"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import ctld.testing  # noqa: E402
import ctld_client  # noqa: E402,F401
from ctld_client import Client, CtldError, pb  # noqa: E402,F401

PY = "/usr/bin/python3"  # Debian's: the scripts jobs run import nothing else
CTLD = os.path.join(BUILD, "ctld-bpf")
CTL = os.path.join(BUILD, "ctl")
MODE = os.environ.get("CTLD_TEST_MODE", "bpf")
VALGRIND = os.environ.get("CTLD_VALGRIND") == "1"
TIME_FACTOR = float(os.environ.get("CTLD_TIME_FACTOR", "1"))

# ctl keeps TLS session tickets under $XDG_RUNTIME_DIR, else ~/.cache: the
# tests' ctl processes keep theirs in a directory of this run, not the user's.
_RUNTIME_DIR = tempfile.mkdtemp(prefix="ctld-e2e-runtime-")
os.environ["XDG_RUNTIME_DIR"] = _RUNTIME_DIR
atexit.register(shutil.rmtree, _RUNTIME_DIR, True)


def scaled(seconds):
    """A duration (timeout, grace period, time or CPU-time bound) scaled by CTLD_TIME_FACTOR."""
    return seconds * TIME_FACTOR


# ------------------------------------------------------------ sockets, events
def free_port():
    """A TCP port free on every IPv4 address now (the kernel's choice).
    Chosen on the wildcard address: a port free on 127.0.0.1 alone may be
    held on 127.0.0.5 (a TIME_WAIT client socket of an earlier test), and a
    test that then binds 0.0.0.0 to it fails with EADDRINUSE."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def listening_socket(port, host="127.0.0.1", family=socket.AF_INET, reuse=False):
    """A socket bound to host:port; the caller decides when it listens."""
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    return s


def expect_event(c, kind, timeout=5):
    """The client's next event must be of this kind; returns its body."""
    ev = c.next_event(timeout=timeout)
    if ev.WhichOneof("kind") != kind:
        raise AssertionError("expected %s, got %s" % (kind, ev))
    return getattr(ev, kind)


def expect_silence(c, seconds):
    """No event arrives for this long."""
    try:
        ev = c.next_event(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError("unexpected event: %s" % ev)


def json_lines(text):
    """Every line of text must be one JSON object."""
    return [json.loads(line) for line in text.splitlines()]


def make_certs(directory, *extra):
    """A CA, a server and a client certificate in directory (tests/make_certs.sh,
    what `make certs` runs); returns the script's output."""
    p = subprocess.run([os.path.join(ROOT, "tests", "make_certs.sh")] + list(extra) + [directory],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("make_certs.sh failed (%d):\n%s%s"
                             % (p.returncode, p.stdout, p.stderr))
    return p.stdout


def make_pki(directory, certs):
    """Two CAs ("ca", "other-ca") and, for each (name, ca) in certs, NAME.pem /
    NAME.key (EC P-256, CN=NAME) signed by that CA, in directory, made with the
    openssl command: for tests that need certificates of different trust."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=directory, check=True, capture_output=True)

    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                "-subj", "/CN=" + name)
    for name, ca in certs:
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                ca + ".key", "-CAcreateserial", "-out", name + ".pem", "-days", "2")


# ------------------------------------------------------------ jobs
# A job that forks children (each sleeps 60 s) until 100 exist or a fork
# fails; prints "<children> <errno of the failed fork, or 0>", then sleeps.
FORKER = r"""
import os, sys, time
n, err = 0, 0
while n < 100:
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
print(n, err, flush=True)
time.sleep(60)
"""


# ------------------------------------------------------------ /proc helpers
def status_kib(pid, field):
    """A KiB field of /proc/PID/status (VmRSS, RssAnon, ...)."""
    for line in proc_text(pid, "status").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def proc_text(pid, name):
    """/proc/PID/NAME as text ("" when the process is gone); the file is closed."""
    try:
        with open("/proc/%d/%s" % (pid, name)) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def children(pid):
    """Direct children of pid, from /proc/PID/task/*/children."""
    kids = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return kids
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return kids


def job_children(d):
    """The daemon's children but its spawner helper: jobs and adopted orphans."""
    return [p for p in children(d.pid) if p != d.spawner_pid]


def zombies_of(ppid):
    """Zombie processes whose parent is ppid."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] == "Z" and st[1] == ppid:
                found.append(int(name))
    return found


def alive(pid, starttime=None):
    """The process exists and is not a zombie (and, given its start time,
    is the same process, not a recycled pid)."""
    st = proc_stat(pid)
    return (st is not None and st[0] not in ("Z", "X")
            and (starttime is None or st[2] == starttime))


def kill_pids(pids):
    """SIGKILLs the given pids (processes a test started and that outlived
    their daemon, e.g. after kill -9); those already gone are skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(pred, timeout=5.0, what="condition", step=0.01):
    """Polls pred until it is truthy (returned) or fails after timeout (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


def preload(name):
    """The environment that loads tests/progs/NAME.c (built as NAME.so) into
    the daemon: a kernel facility taken away (see the library's comment)."""
    return {"LD_PRELOAD": os.path.join(BUILD, "tests", "progs", name + ".so")}


def _sanitized():
    """Whether the daemon was built with AddressSanitizer (make SAN=1)."""
    try:
        with open(CTLD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized()


def not_under_sanitizers(why):
    """Marks a test whose subject the sanitizer build changes: ASan keeps
    freed memory in a quarantine and shadows the heap, so the daemon's RSS
    is the sanitizer's. Such tests still run in the normal pass."""
    return unittest.skipIf(SANITIZED, "with sanitizers: " + why)


def not_under_valgrind(why):
    """Marks a test whose subject valgrind cannot reproduce (it emulates the
    vfork child up to exec, has fds and limits of its own, and is ~50x
    slower). Such tests still run in the normal and sanitizer passes."""
    return unittest.skipIf(VALGRIND, "under valgrind: " + why)


def slow_machine_daemon_args():
    """Under emulation (CTLD_TIME_FACTOR > 1) a server started through a
    shell takes longer than the daemon's 3 s to listen beside a holder of the
    other address (memcached took 3.4 s in the 5.10 guest): its grace is
    scaled as the tests' waits are. A test's own option comes later and wins."""
    if scaled(1) > 1 and ctld.testing._knows_option(CTLD, "--port-taken-grace"):
        return ["--port-taken-grace", "%gs" % scaled(3)]
    return []


class Daemon(ctld.testing.Daemon):
    """A running ctld-bpf for a test (ctld.testing.Daemon, with this test
    run's mode and, with CTLD_VALGRIND=1, under valgrind). Use as a context
    manager or call stop()."""

    def __init__(self, *extra, mode=None, start=True, env=None, pass_fds=(), stderr=None):
        self.mode = mode or MODE
        super().__init__(CTLD, "-v", *slow_machine_daemon_args(), *extra, bpf=self.mode != "nobpf",
                         env=env, start=False,
                         name="ctld-e2e", pass_fds=pass_fds, stderr=stderr)
        self.valgrind_log = os.path.join(self.dir, "valgrind.log") if VALGRIND else None
        if VALGRIND:
            self.prefix = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                           "--suppressions=" + os.path.join(ROOT, "tests", "valgrind.supp"),
                           "--show-leak-kinds=definite,indirect",
                           "--errors-for-leak-kinds=definite,indirect",
                           "--log-file=" + self.valgrind_log]
        if start:
            self.start()

    def start(self, timeout=20):
        super().start(scaled(timeout) * (10 if VALGRIND else 1))
        with self.client() as c:
            if self.mode == "bpf" and not c.hello_reply.bpf:
                raise AssertionError("CTLD_TEST_MODE=bpf but the daemon runs without eBPF "
                                     "(tests need root and BTF):\n" + self.log())
            self.spawner_pid = c.stats().spawner_pid
        return self

    def client(self, **kw):
        kw["timeout"] = scaled(kw.get("timeout", 10.0))  # 10 s: ctld_client's default
        return super().client(**kw)

    def tcp_client(self, **kw):
        kw["timeout"] = scaled(kw.get("timeout", 10.0))
        return super().tcp_client(**kw)

    def ctl(self, *args, input=None, timeout=60, env=None, target=None, check=None):
        """Runs the real CLI against this daemon; returns CompletedProcess (text)."""
        cmd = [CTL] + (target if target is not None else ["-S", self.socket]) + list(args)
        full_env = dict(os.environ)
        full_env.pop("CTLD_SOCKET", None)
        full_env.pop("CTLD_HOST", None)
        if env:
            full_env.update(env)
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=scaled(timeout),
                           env=full_env, text=not isinstance(input, bytes))
        if check is not None and p.returncode != check:
            raise AssertionError("ctl %s exited %d, expected %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(args), p.returncode, check, p.stdout, p.stderr))
        return p

    def stop(self, sig=signal.SIGTERM, timeout=15):
        rc = super().stop(sig, scaled(timeout) * (10 if VALGRIND else 1))
        if VALGRIND and rc == 99:
            with open(self.valgrind_log) as f:
                raise AssertionError("valgrind found errors:\n" + f.read()[-20000:])
        return rc

    def cleanup(self):
        """Stops the daemon; a clean stop must exit 0 (sanitizer reports,
        leaks under valgrind or a crash at shutdown fail the test)."""
        log = self.log()
        rc = super().cleanup()
        if rc not in (0, None):
            raise AssertionError("daemon exited %s at shutdown:\n%s" % (rc, log))

    def __exit__(self, exc_type, *exc):
        try:
            self.cleanup()
        except AssertionError:
            if exc_type is None:  # do not hide the test's own failure
                raise


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class; tests assert it is still alive afterwards."""
    daemon_args = ()
    daemon_env = None  # extra environment for the daemon (e.g. a preload)

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, **cls.daemon_env) if cls.daemon_env else None
        cls.d = Daemon(*cls.daemon_args, env=env)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def tearDown(self):
        if not self.d.alive():
            self.fail("the daemon died during this test:\n" + self.d.log())
        # the daemon logs "bug: ..." where it caught itself breaking a rule
        bugs = [line for line in self.d.log(tail=1 << 22).splitlines() if " bug: " in line]
        if bugs:
            self.fail("the daemon logged a bug:\n" + "\n".join(bugs[:20]))

    def assertDaemonServes(self):
        """A fresh client can still run a command: the daemon serves everyone else."""
        with self.d.client() as c:
            out, _, ev = c.run_and_wait(["echo", "still-serving"], timeout=10)
            self.assertEqual(out, b"still-serving\n")
            self.assertEqual(ev.exited.exit_code, 0)


class PkiTestCase(unittest.TestCase):
    """A TLS daemon per class with certificates from make_pki(certs): the
    daemon's is "server", signed by "ca", which it trusts."""
    certs = (("server", "ca"), ("client", "ca"), ("stranger", "other-ca"))

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ctld-pki-")
        make_pki(cls.dir, cls.certs)
        cls.d = Daemon("--tls-cert", cls.path("server.pem"), "--tls-key",
                       cls.path("server.key"), "--tls-ca", cls.path("ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def tls_args(self, who):
        return ["--tls-cert", self.path(who + ".pem"), "--tls-key", self.path(who + ".key"),
                "--tls-ca", self.path("ca.pem")]


class DaemonsTestCase(unittest.TestCase):
    """daemon_count daemons per test class (cls.daemons, their TCP
    addresses in cls.nodes): several nodes on loopback. Tests assert they
    are all still alive afterwards."""
    daemon_count = 3

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        try:
            for _ in range(cls.daemon_count):
                cls.daemons.append(Daemon())
        except BaseException:
            cls.tearDownClass()
            raise
        cls.nodes = [d.tcp for d in cls.daemons]

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.cleanup()

    def tearDown(self):
        for d in self.daemons:
            if not d.alive():
                self.fail("a daemon died during this test:\n" + d.log())

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
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.path.join(ROOT, os.environ.get("CTLD_BUILD", "build")))
sys.path.insert(0, os.path.join(BUILD, "python"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import ctld_client  # noqa: E402
from ctld_client import Client, CtldError, pb  # noqa: E402,F401

CTLD = os.path.join(BUILD, "ctld-bpf")
CTL = os.path.join(BUILD, "ctl")
MODE = os.environ.get("CTLD_TEST_MODE", "bpf")
VALGRIND = os.environ.get("CTLD_VALGRIND") == "1"
TIME_FACTOR = float(os.environ.get("CTLD_TIME_FACTOR", "1"))
_counter = [0]


def scaled(seconds):
    """A duration (timeout, grace period, time or CPU-time bound) scaled by CTLD_TIME_FACTOR."""
    return seconds * TIME_FACTOR


# ------------------------------------------------------------ /proc helpers
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


def not_under_valgrind(why):
    """Marks a test whose subject valgrind cannot reproduce (it emulates the
    vfork child up to exec, has fds and limits of its own, and is ~50x
    slower). Such tests still run in the normal and sanitizer passes."""
    return unittest.skipIf(VALGRIND, "under valgrind: " + why)


class Daemon:
    """A running ctld-bpf. Use as a context manager or call stop()."""

    def __init__(self, *extra, mode=None, start=True, env=None):
        self.mode = mode or MODE
        _counter[0] += 1
        self.dir = tempfile.mkdtemp(prefix="ctld-e2e-")
        os.chmod(self.dir, 0o700)
        self.socket = os.path.join(self.dir, "ctld.sock")
        self.ready_file = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.pin_dir = "/sys/fs/bpf/ctld-e2e-%d-%d" % (os.getpid(), _counter[0])
        self.args = [CTLD, "--socket", self.socket, "--listen", "127.0.0.1:0",
                     "--ready-file", self.ready_file, "--pin-dir", self.pin_dir, "-v"]
        if self.mode == "nobpf":
            self.args.append("--no-bpf")
        self.args += list(extra)
        self.env = env
        self.proc = None
        self.tcp_port = None
        self.pid = None
        if start:
            self.start()

    def start(self, timeout=20):
        cmd = list(self.args)
        if VALGRIND:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--suppressions=" + os.path.join(ROOT, "tests", "valgrind.supp"),
                   "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                   "--log-file=" + os.path.join(self.dir, "valgrind.log")] + cmd
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, env=self.env,
                                     start_new_session=True)
        deadline = time.monotonic() + scaled(timeout) * (10 if VALGRIND else 1)
        while time.monotonic() < deadline:
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    pid, port = f.read().split()
                self.pid, self.tcp_port = int(pid), int(port)
                break
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %s at start-up:\n%s"
                                     % (self.proc.returncode, self.log()))
            time.sleep(0.01)
        else:
            raise AssertionError("daemon not ready within %ss:\n%s" % (timeout, self.log()))
        if self.mode == "bpf":
            with self.client() as c:
                if not c.hello_reply.bpf:
                    raise AssertionError("CTLD_TEST_MODE=bpf but the daemon runs without eBPF "
                                         "(tests need root and BTF):\n" + self.log())
        return self

    @property
    def tcp(self):
        return "127.0.0.1:%d" % self.tcp_port

    def client(self, **kw):
        kw["timeout"] = scaled(kw.get("timeout", 10.0))  # 10 s: ctld_client's default
        return Client(unix=self.socket, **kw)

    def tcp_client(self, **kw):
        kw["timeout"] = scaled(kw.get("timeout", 10.0))
        return Client(tcp=self.tcp, **kw)

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

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(timeout) * (10 if VALGRIND else 1))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop within %ss:\n%s" % (timeout, self.log()))
        rc = self.proc.returncode
        self.logf.close()
        if VALGRIND:
            vlog = os.path.join(self.dir, "valgrind.log")
            if rc == 99:
                with open(vlog) as f:
                    raise AssertionError("valgrind found errors:\n" + f.read()[-20000:])
        self.proc = None
        return rc

    def cleanup(self):
        """Stops the daemon; a clean stop must exit 0 (sanitizer reports,
        leaks under valgrind or a crash at shutdown fail the test)."""
        rc = self.stop()
        log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("daemon exited %s at shutdown:\n%s" % (rc, log))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            self.cleanup()
        except AssertionError:
            if exc_type is None:  # do not hide the test's own failure
                raise


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class; tests assert it is still alive afterwards."""
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(*cls.daemon_args)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        shutil.rmtree(cls.d.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("daemon exited %s at shutdown:\n%s" % (rc, cls.d.log()))

    def tearDown(self):
        if not self.d.alive():
            self.fail("the daemon died during this test:\n" + self.d.log())

    def assertDaemonServes(self):
        """A fresh client can still run a command: the daemon serves everyone else."""
        with self.d.client() as c:
            out, _, ev = c.run_and_wait(["echo", "still-serving"], timeout=10)
            self.assertEqual(out, b"still-serving\n")
            self.assertEqual(ev.exited.exit_code, 0)

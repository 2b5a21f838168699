# SPDX-License-Identifier: BSD-2-Clause
"""A ctld-bpf of one's own, for tests and benchmarks.

    from ctld.testing import Daemon
    with Daemon("build/ctld-bpf", bpf=False) as d:
        with d.client() as c:
            c.run_and_wait(["true"])

Each daemon gets a private directory (its unix socket, ready file and log),
an ephemeral loopback TCP port and a unique BPF pin directory, so any number
can run side by side. The project's end-to-end tests (tests/e2e/harness.py)
and the benchmark (bench/procs.py) build on this class.
"""
import functools
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

_count = [0]


@functools.lru_cache(maxsize=None)
def _knows_option(ctld, option):
    """Whether the daemon binary's --help lists option."""
    p = subprocess.run([ctld, "--help"], capture_output=True, text=True, timeout=10)
    return option in p.stdout


class Daemon:
    """ctld: the daemon binary. extra: more daemon options. prefix: argv words
    to run it under (valgrind, a timing launcher). capture_stdout: the
    launcher's stdout is a pipe for the caller (self.proc.stdout) instead of
    going to the log. stderr: a descriptor for the daemon's stderr instead of
    the log file (self.log() is then empty)."""

    def __init__(self, ctld, *extra, bpf=True, prefix=(), env=None, capture_stdout=False,
                 start=True, name="ctld", pass_fds=(), stderr=None):
        _count[0] += 1
        self.bpf = bpf
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        os.chmod(self.dir, 0o700)
        self.socket = os.path.join(self.dir, "ctld.sock")
        self.ready_file = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.pin_dir = "/sys/fs/bpf/%s-%d-%d" % (name, os.getpid(), _count[0])
        self.state_dir = os.path.join(self.dir, "state")  # survives stop() and start()
        self.args = [ctld, "--socket", self.socket, "--listen", "127.0.0.1:0",
                     "--ready-file", self.ready_file, "--pin-dir", self.pin_dir]
        if _knows_option(ctld, "--state-dir"):  # older builds (before/after comparisons)
            self.args += ["--state-dir", self.state_dir]
        if not bpf:
            self.args.append("--no-bpf")
        self.args += list(extra)
        self.prefix = list(prefix)
        self.env = env
        self.capture_stdout = capture_stdout
        self.pass_fds = tuple(pass_fds)  # descriptors the daemon inherits (tests)
        self.stderr = stderr
        self.proc = None
        self.logf = None
        self.pid = None
        self.tcp_port = None
        if start:
            self.start()

    # ------------------------------------------------------------ life
    def start(self, timeout=20):
        """Starts the daemon and waits for its ready file ("PID TCP-PORT")."""
        if os.path.exists(self.ready_file):  # an earlier instance's
            os.unlink(self.ready_file)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.prefix + self.args, env=self.env, start_new_session=True,
            stdout=subprocess.PIPE if self.capture_stdout else self.logf,
            stderr=self.logf if self.stderr is None else self.stderr,
            pass_fds=self.pass_fds)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                self.logf.close()
                raise AssertionError("daemon exited with %s at start-up:\n%s" % (rc, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("daemon not ready within %ss:\n%s" % (timeout, self.log()))
            time.sleep(0.01)
        with open(self.ready_file) as f:
            pid, port = f.read().split()
        self.pid, self.tcp_port = int(pid), int(port)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the daemon (a stopped one is continued first) and waits
        for it; returns its exit status, or None if it was not running. A
        daemon that does not stop within timeout is killed, and that is an
        error (AssertionError)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            for s in (signal.SIGCONT, sig):
                try:
                    os.kill(self.pid or self.proc.pid, s)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop within %ss:\n%s"
                                     % (timeout, self.log()))
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        self._remove_pins()
        return rc

    def upgrade(self, timeout=20):
        """SIGUSR2: the daemon upgrades in place (executes its program file
        again in the same process). Waits for the new image's ready file."""
        if os.path.exists(self.ready_file):
            os.unlink(self.ready_file)
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %s during the upgrade:\n%s"
                                     % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("no ready file within %ss of SIGUSR2:\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.01)
        with open(self.ready_file) as f:
            pid, port = f.read().split()
        return int(pid), int(port)

    def kill9(self):
        """Kills the daemon with SIGKILL, as a crash would: its jobs, pins and
        state directory stay. start() brings up a new instance."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.logf.close()

    def _remove_pins(self):
        """A clean stop removes the pins; a killed daemon leaves them."""
        if os.path.isdir(self.pin_dir):
            for p in glob.glob(os.path.join(self.pin_dir, "*")):
                os.unlink(p)
            os.rmdir(self.pin_dir)

    def cleanup(self):
        """Stops the daemon and removes its directory; returns its exit
        status. Pins a killed instance left (kill9() with no start() after
        it) are removed here; a running daemon's are its own to remove at its
        clean stop, so a test can still see it fail to."""
        try:
            if self.proc is None:
                self._remove_pins()
            return self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------ use
    @property
    def tcp(self):
        return "127.0.0.1:%d" % self.tcp_port

    def client(self, **kw):
        from ctld_client import Client
        return Client(unix=self.socket, **kw)

    def tcp_client(self, **kw):
        from ctld_client import Client
        return Client(tcp=self.tcp, **kw)

    def log(self, tail=20000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

# SPDX-License-Identifier: BSD-2-Clause
"""netlab - a small network of namespaces for multi-node end-to-end tests
and experiments: every node runs its own ctld-bpf, the controller runs ctl,
and links can be cut and daemons stopped while a command is under way.

    from netlab import NetLab
    with NetLab(["a", "b", "c", "d"]) as lab:   # or: self.addCleanup(lab.close)
        lab.start_daemons()                     # ctld-bpf on each node, TLS, 10.77.0.N:7878
        p = lab.ctl("run", "--", "uname", "-n") # ctl in the controller, -H every node
        lab.cut("c"); lab.heal("c")             # c's link to the bridge down / up
        lab.freeze("b"); lab.thaw("b")          # SIGSTOP / SIGCONT b's daemon
        with lab.client("a") as c:              # Python client (TLS) from the controller
            c.ping()

Topology. Each member (the controller "ctl" and every node) is a network
namespace with one interface, eth0, whose veth peer is a port of the
bridge br0; the bridge lives in a namespace of its own, so nothing of the
lab exists in the host's namespace and the host never routes a lab
address (10.77.0.0/24: the controller is .1, the nodes .2, .3, ... in the
order given). Namespaces are named ctldlab<pid>x<n>-<member>, so parallel
runs and several labs in one run do not clash; in the bridge namespace
member M's port is v-M.

    ctl  10.77.0.1 eth0 ══ v-ctl ─┐
    a    10.77.0.2 eth0 ══ v-a   ─┤ br0   (namespace ...-br)
    b    10.77.0.3 eth0 ══ v-b   ─┘

Faults. cut(member) sets its bridge port down: its packets are dropped
without any error to either side, as behind a real partition (TCP learns
nothing until its own timers fire); heal() sets it up again. freeze(node)
SIGSTOPs the node's daemon: its kernel still acknowledges TCP, only the
daemon is silent. Daemons are the harness's Daemon (this run's mode, the
valgrind prefix when asked) started with `ip netns exec NS`, which keeps
the pid; each also serves its unix socket, reachable from the host's
namespace (lab.node(name).daemon.client()), which is how a test looks at
a node it has cut off.

Cleanup. close() (also on __exit__, and safe to call twice) continues
frozen daemons, kills the ctl processes it started (by process group: each
runs in a session of its own), stops the daemons by pid (a shutdown that
does not exit 0 is reported), and deletes the namespaces, even when a step
fails; the first error is raised at the end. A lab whose construction
fails cleans up what it had made.

Needs root, iproute2 (ip netns, veth, bridge) and util-linux.
"""
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import CTL, ROOT, Client, Daemon, scaled

SUBNET = "10.77.0"
PREFIX_LEN = 24
PORT = 7878
CONTROLLER = "ctl"
CLONE_NEWNET = 0x40000000
_ids = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args):
    """Runs `ip ARGS`; a failure raises with ip's own message."""
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if p.returncode:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))


def in_netns(ns, fn):
    """Calls fn() in a thread that has joined network namespace ns and
    returns its result: sockets it creates belong to ns for good, so they
    can be used from any thread afterwards. The caller's namespace is
    never changed."""
    out = {}

    def body():
        try:
            with open("/run/netns/" + ns) as f:
                if _libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, "setns %s: %s" % (ns, os.strerror(err)))
            out["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    t = threading.Thread(target=body, name="netns-" + ns)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class CtlProcess:
    """A ctl running in the background: its output is collected as it
    comes (so a test can wait for a line), signals go to its pid, and
    kill() ends its whole process group (ctl and a wrapper such as
    timeout(1))."""

    def __init__(self, argv, env):
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self._out = {"stdout": b"", "stderr": b""}
        self._lock = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name, f), daemon=True)
                         for name, f in (("stdout", self.proc.stdout),
                                         ("stderr", self.proc.stderr))]
        for t in self._readers:
            t.start()

    def _read(self, name, f):
        for chunk in iter(lambda: f.read1(1 << 16), b""):
            with self._lock:
                self._out[name] += chunk
                self._lock.notify_all()

    @property
    def stdout(self):
        with self._lock:
            return self._out["stdout"].decode(errors="replace")

    @property
    def stderr(self):
        with self._lock:
            return self._out["stderr"].decode(errors="replace")

    def wait_output(self, text, timeout=10, stream="stdout"):
        """Waits (scaled timeout) until text has appeared on the stream."""
        want = text.encode()
        deadline = time.monotonic() + scaled(timeout)
        with self._lock:
            while want not in self._out[stream]:
                left = deadline - time.monotonic()
                ended = not any(t.is_alive() for t in self._readers)
                if left <= 0 or ended:
                    raise AssertionError("ctl never wrote %r to %s (exit %s)\nstdout: %s\n"
                                         "stderr: %s" % (text, stream, self.proc.poll(),
                                                         self._out["stdout"], self._out["stderr"]))
                self._lock.wait(min(left, 0.1))

    def signal(self, sig):
        os.kill(self.pid, sig)

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """Its exit status once it ends; a ctl still running after timeout
        seconds (scaled) is killed and that is an AssertionError: a test
        fails, it does not hang."""
        try:
            rc = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ctl did not exit within %.1f s: %s\nstdout: %s\nstderr: %s"
                                 % (scaled(timeout), " ".join(self.argv), self.stdout,
                                    self.stderr)) from None
        self._join_readers()
        return rc

    def _join_readers(self):
        for t in self._readers:
            t.join(scaled(5))

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._join_readers()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class Node:
    """One member of the lab: its namespace, address and (nodes) daemon."""

    def __init__(self, name, ns, addr):
        self.name, self.ns, self.addr = name, ns, addr
        self.daemon = None

    @property
    def target(self):
        return "%s:%d" % (self.addr, PORT)


class NetLab:
    """nodes: names of the nodes (short: [a-z0-9], at most 10 characters);
    tls: daemons require mutual TLS with certificates made for the lab by
    tests/make_certs.sh (else --insecure)."""

    def __init__(self, nodes, tls=True):
        if os.geteuid() != 0:
            raise unittest.SkipTest("netlab needs root (network namespaces)")
        names = list(nodes)
        for n in names:
            if not re.fullmatch(r"[a-z0-9]{1,10}", n) or n == CONTROLLER:
                raise ValueError("bad node name %r" % n)
        if len(set(names)) != len(names) or len(names) > 250:
            raise ValueError("node names must be unique, at most 250")
        self.id = "ctldlab%dx%d" % (os.getpid(), next(_ids))
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix=self.id + "-")
        self.bridge_ns = self.id + "-br"
        self.controller = Node(CONTROLLER, self.id + "-" + CONTROLLER, SUBNET + ".1")
        self.nodes = {n: Node(n, "%s-%s" % (self.id, n), "%s.%d" % (SUBNET, i + 2))
                      for i, n in enumerate(names)}
        self._namespaces = []
        self._ctls = []
        self._closed = False
        try:
            self._build()
            if tls:
                self.certs = os.path.join(self.dir, "certs")
                subprocess.run([os.path.join(ROOT, "tests", "make_certs.sh"), self.certs],
                               check=True, capture_output=True, timeout=60)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ topology
    def _add_ns(self, ns):
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _build(self):
        self._add_ns(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for m in self.members():
            self._add_ns(m.ns)
            port = self._port(m.name)
            # made inside the bridge namespace, the peer straight in the member's:
            # no interface of the lab ever exists in the host's namespace
            _ip("-n", self.bridge_ns, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", m.ns)
            _ip("-n", self.bridge_ns, "link", "set", port, "master", "br0")
            _ip("-n", self.bridge_ns, "link", "set", port, "up")
            _ip("-n", m.ns, "addr", "add", "%s/%d" % (m.addr, PREFIX_LEN), "dev", "eth0")
            _ip("-n", m.ns, "link", "set", "eth0", "up")

    @staticmethod
    def _port(name):
        return "v-" + name

    def members(self):
        """The controller, then the nodes in order."""
        return [self.controller] + list(self.nodes.values())

    def member(self, name):
        return self.controller if name == CONTROLLER else self.nodes[name]

    def node(self, name):
        return self.nodes[name]

    # ------------------------------------------------------------ daemons
    def tls_args(self):
        """ctl's TLS options for this lab ([] without TLS)."""
        if not self.tls:
            return []
        return ["--tls-cert", self.certs + "/client.pem", "--tls-key", self.certs + "/client.key",
                "--tls-ca", self.certs + "/ca.pem"]

    def client_tls(self):
        """The tls= argument of ctld_client.Client for this lab (None without TLS)."""
        return ((self.certs + "/client.pem", self.certs + "/client.key", self.certs + "/ca.pem")
                if self.tls else None)

    def start_daemons(self, *extra, nodes=None):
        """Starts ctld-bpf on the nodes (all by default) inside their
        namespaces, listening on ADDR:7878 (TLS, or --insecure) besides its
        unix socket; extra: more daemon options."""
        for name in nodes or self.nodes:
            n = self.nodes[name]
            if self.tls:
                sec = ["--tls-cert", self.certs + "/server.pem",
                       "--tls-key", self.certs + "/server.key", "--tls-ca", self.certs + "/ca.pem"]
            else:
                sec = ["--insecure"]
            d = Daemon("--listen", n.target, *sec, *extra, start=False)
            d.prefix = ["ip", "netns", "exec", n.ns] + d.prefix
            n.daemon = d
            d.start()

    def freeze(self, name):
        """SIGSTOP the node's daemon: the node answers TCP, the daemon nothing."""
        os.kill(self.nodes[name].daemon.pid, signal.SIGSTOP)

    def thaw(self, name):
        os.kill(self.nodes[name].daemon.pid, signal.SIGCONT)

    # ------------------------------------------------------------ links
    def cut(self, name):
        """The member's bridge port goes down: a silent partition."""
        _ip("-n", self.bridge_ns, "link", "set", self._port(name), "down")

    def heal(self, name):
        _ip("-n", self.bridge_ns, "link", "set", self._port(name), "up")

    def reset(self):
        """Every link up, every daemon running (between tests)."""
        for m in self.members():
            self.heal(m.name)
        for n in self.nodes.values():
            if n.daemon and n.daemon.alive():
                self.thaw(n.name)

    # ------------------------------------------------------------ clients
    def targets(self, nodes=None):
        """"10.77.0.2:7878,10.77.0.3:7878" for -H."""
        return ",".join(self.nodes[n].target for n in (nodes or self.nodes))

    def ctl_argv(self, *args, nodes=None, where=CONTROLLER, wrapper=(), hosts=None):
        """The command line of ctl run in member `where` against nodes
        (all by default; or hosts: a -H value such as a node set), under
        wrapper (e.g. ["timeout", "5"])."""
        return (["ip", "netns", "exec", self.member(where).ns] + list(wrapper)
                + [CTL, "-H", hosts or self.targets(nodes)] + self.tls_args()
                + self.slow_machine_ctl_args() + list(args))

    @staticmethod
    def slow_machine_ctl_args():
        """Under emulation (CTLD_TIME_FACTOR > 1) ctl's Hello wait, 5 s, is
        too short for eight TLS handshakes at once; a test's own
        --connect-timeout comes later and wins."""
        return ["--connect-timeout", "%gs" % scaled(5)] if scaled(1) > 1 else []

    def _ctl_env(self, env):
        full = {k: v for k, v in os.environ.items()
                if k not in ("CTLD_SOCKET", "CTLD_HOST", "CTLD_LIVENESS")}
        full.update(env or {})
        return full

    def start_ctl(self, *args, nodes=None, where=CONTROLLER, wrapper=(), env=None, hosts=None):
        """ctl in the background (a CtlProcess, killed at close() if still running)."""
        p = CtlProcess(self.ctl_argv(*args, nodes=nodes, where=where, wrapper=wrapper,
                                     hosts=hosts), self._ctl_env(env))
        self._ctls.append(p)
        return p

    def ctl(self, *args, timeout=30, **kw):
        """Runs ctl to its end: (exit status, stdout, stderr). One that has
        not ended after timeout seconds (scaled) is killed: AssertionError."""
        p = self.start_ctl(*args, **kw)
        rc = p.wait(timeout)
        return rc, p.stdout, p.stderr

    def client(self, node, where=CONTROLLER, **kw):
        """A ctld_client.Client connected from member `where` to the node's
        TCP listener (TLS when the lab has it)."""
        n = self.nodes[node]
        kw.setdefault("timeout", scaled(10))
        return in_netns(self.member(where).ns,
                        lambda: Client(tcp=n.target, tls=self.client_tls(), **kw))

    def logs(self):
        """Every daemon's log tail, for failure messages."""
        return "\n".join("--- %s\n%s" % (n.name, n.daemon.log(4000))
                         for n in self.nodes.values() if n.daemon)

    # ------------------------------------------------------------ cleanup
    def close(self):
        if self._closed:
            return
        self._closed = True
        errors = []

        def attempt(fn, *args):
            try:
                fn(*args)
            except Exception as e:  # keep cleaning up; report the first afterwards
                errors.append(e)

        for p in self._ctls:
            attempt(p.kill)
        for n in self.nodes.values():
            if n.daemon:
                attempt(n.daemon.cleanup)  # SIGCONT first, then SIGTERM, by pid
        for ns in reversed(self._namespaces):
            attempt(_ip, "netns", "del", ns)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

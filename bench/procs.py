# SPDX-License-Identifier: BSD-2-Clause
"""Process handling for the benchmark: the paths of what `make` built, the
measuring tools (bench/*.c) as subprocesses, daemons and an sshd of our
own, /proc readings, and cleaning up whatever was started."""
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import ctld.testing  # noqa: E402

SSH_USER = "ctldbench"


class Paths:
    """What make built; filled in by init()."""
    build = tools = ctld = ctl = None
    Client = pb = None


P = Paths()


def init(build):
    P.build = os.path.abspath(os.path.join(ROOT, build))
    P.tools = os.path.join(P.build, "bench")
    P.ctld = os.path.join(P.build, "ctld-bpf")
    P.ctl = os.path.join(P.build, "ctl")
    sys.path.insert(0, os.path.join(P.build, "python"))
    import ctld_client
    P.Client, P.pb = ctld_client.Client, ctld_client.pb


def say(text):
    print(text, flush=True)


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


class Daemon(ctld.testing.Daemon):
    """A ctld-bpf of ours (ctld.testing.Daemon) started through
    `spawn_bench --ready`, which times exec -> ready file."""

    def __init__(self, bpf=True, extra=()):
        super().__init__(P.ctld, *extra, bpf=bpf, capture_stdout=True, start=False,
                         name="ctld-bench")
        self.prefix = [os.path.join(P.tools, "spawn_bench"), "--ready", self.ready_file,
                       "--log", self.log_path, "--"]
        self.start()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("daemon did not start:\n" + self.log())
        started = json.loads(line)
        self.ready_ns = started["ready_ns"]
        assert started["pid"] == self.pid
        self.port = self.tcp_port
        with self.client() as c:
            if c.hello_reply.bpf != bpf:
                self.cleanup()
                raise RuntimeError("daemon bpf=%s, wanted %s:\n%s"
                                   % (c.hello_reply.bpf, bpf, self.log()))

    def client(self):
        return super().client(name="bench.py")

    def log_ms(self, pattern):
        """A number in the daemon's log, e.g. 'ready in ([0-9.]+) ms'."""
        m = re.search(pattern, self.log())
        return float(m.group(1)) if m else None

    def stop(self, *args, **kw):
        """Stops the daemon and removes its directory (a daemon is not
        restarted here); a daemon that will not stop is reported, not fatal."""
        try:
            return super().stop(*args, **kw)
        except AssertionError as e:
            say("daemon: %s" % e)
            return None
        finally:
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

class SshKeys:
    """Throw-away host and user keys, authorized_keys and the user
    ctldbench (shell /bin/sh, created if missing): what any number of sshds
    of one run share. Everything lives in a temp dir removed by stop(),
    which also removes the user (and /run/sshd) when it made them."""

    def __init__(self):
        # the pid in the name: what a run left behind can be told apart
        self.dir = tempfile.mkdtemp(prefix="ctld-bench-ssh-%d-" % os.getpid())
        os.chmod(self.dir, 0o755)  # sshd reads authorized_keys as the user
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
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        shutil.copy(self.user_key + ".pub", self.authorized_keys)
        os.chmod(self.authorized_keys, 0o644)

    def client_options(self):
        """ssh options for a client of these servers: this key only, no
        prompts, no known_hosts, no user configuration."""
        return ["-F", "/dev/null", "-i", self.user_key, "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR"]

    def stop(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.created_user:
            subprocess.run(["userdel", "-r", SSH_USER], capture_output=True)
            self.created_user = False
        if self.created_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
            self.created_privsep = False


def tcp_listening(pid, port):
    """Whether a socket of the network namespace process pid lives in
    listens on TCP port (its /proc/PID/net/tcp: that namespace's table)."""
    try:
        with open("/proc/%d/net/tcp" % pid) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


class SshServer:
    """sshd on address:port (default 127.0.0.1 and a free port) with key
    authentication for SSH_USER; netns: started in that network namespace
    (`ip netns exec`, which keeps the pid). keys: an SshKeys shared with
    other servers (the caller stops it), else one of its own."""

    def __init__(self, address="127.0.0.1", port=None, netns=None, keys=None):
        self.own_keys = keys is None
        self.keys = keys or SshKeys()
        self.address, self.port = address, port or free_ports(1)[0]
        self.dir = tempfile.mkdtemp(prefix="sshd-", dir=self.keys.dir)
        self.proc = None
        try:
            self._start(netns)
        except BaseException:
            self.stop()
            raise
        self.control = os.path.join(self.dir, "cm-%r@%h:%p")

    def _start(self, netns):
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "Port %d" % self.port, "ListenAddress " + self.address,
                "HostKey " + self.keys.host_key, "PidFile " + os.path.join(self.dir, "sshd.pid"),
                "AuthorizedKeysFile " + self.keys.authorized_keys,
                "AllowUsers " + SSH_USER, "StrictModes no", "UsePAM no",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes", "PermitRootLogin no", "UseDNS no",
                "PrintMotd no", "PrintLastLog no", "X11Forwarding no",
                "MaxStartups 200", "MaxSessions 200", "LogLevel ERROR", ""]))
        self.log = open(os.path.join(self.dir, "sshd.log"), "w")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = subprocess.Popen(prefix + ["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while not tcp_listening(self.proc.pid, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sshd did not start: " + open(self.log.name).read())
            time.sleep(0.02)

    def argv(self, mux):
        a = ["/usr/bin/ssh"] + self.keys.client_options() + ["-p", str(self.port)]
        if mux:
            a += ["-o", "ControlMaster=auto", "-o", "ControlPath=" + self.control,
                  "-o", "ControlPersist=300"]
        return a + [SSH_USER + "@" + self.address, "/bin/echo", "x"]

    def version(self):
        return subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()

    def stop(self):
        if self.proc is not None:
            # the multiplexing master is a child of an ssh we ran: ask it to exit
            subprocess.run(self.argv(True)[:-3] + ["-O", "exit", SSH_USER + "@" + self.address],
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
        if self.own_keys:
            self.keys.stop()


def cleanup():
    """Stops every tool, daemon and sshd started, newest first."""
    for thing in reversed(OWNED):
        try:
            (thing.close if isinstance(thing, Tool) else thing.stop)()
        except Exception as e:  # keep cleaning up
            say("cleanup: %s" % e)
    OWNED.clear()

# SPDX-License-Identifier: BSD-2-Clause
"""ctl across many daemons, as clush: node sets in -H, -b (identical outputs
gathered under their folded node set), --summary (a table of node sets per
status, the largest status wins), --fanout (at most N connections at once,
seen from the daemons), and 1000 targets in one ctl with a small fd limit.

Every daemon listens on its own loopback port, so node names carry the
port: "127.0.0.1:[7001-7008]". Expected node sets are folded by
ClusterShell itself (Debian's python3 package, clustershell in DEB_PACKAGES).
"""
import os
import resource
import shutil
import subprocess
import tempfile
import unittest

from harness import CTL, Daemon, VALGRIND, free_port, json_lines, scaled, wait_for
from ClusterShell.NodeSet import NodeSet

NODES = 8  # daemons in the shared tests (each one is a real ctld-bpf)
SEP = "-" * 15


def fold(names):
    return str(NodeSet.fromlist(names))


def words(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().split()


def run_ctl(args, timeout=60, **kw):
    env = dict(os.environ)
    env.pop("CTLD_HOST", None)
    env.pop("CTLD_SOCKET", None)
    return subprocess.run(args, capture_output=True, text=True, timeout=scaled(timeout), env=env,
                          **kw)


class Nodes(unittest.TestCase):
    """NODES daemons; the job environment says which one ($NODE)."""

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        try:
            for i in range(NODES):
                cls.daemons.append(Daemon(env=dict(os.environ, NODE=str(i))))
        except BaseException:
            cls.tearDownClass()
            raise
        cls.names = ["127.0.0.1:%d" % d.tcp_port for d in cls.daemons]
        cls.nodeset = fold(cls.names)

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.cleanup()

    def ctl(self, *args, hosts=None, timeout=60):
        return run_ctl([CTL, "-H", hosts or self.nodeset] + list(args), timeout)

    def name_of(self, node):
        return self.names[node]

    def test_gather_identical_outputs(self):
        """-b: one block for all nodes, headed as clush -b heads it."""
        p = self.ctl("-b", "run", "--", "echo", "hello")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s\n%s (%d)\n%s\nhello\n" % (SEP, self.nodeset, NODES, SEP))

    def test_gather_groups_outputs(self):
        """-b: nodes with the same output share a block, in the order of -H."""
        p = self.ctl("--gather", "run", "--", "sh", "-c", "echo group $((NODE % 2)); echo end")
        self.assertEqual(p.returncode, 0, p.stderr)
        order = list(NodeSet(self.nodeset))  # -H order: the expansion
        groups = {}
        for name in order:
            groups.setdefault(self.names.index(name) % 2, []).append(name)
        want = ""
        for parity in sorted(groups, key=lambda g: order.index(groups[g][0])):
            want += "%s\n%s (%d)\n%s\ngroup %d\nend\n" % (SEP, fold(groups[parity]),
                                                          len(groups[parity]), SEP, parity)
        self.assertEqual(p.stdout, want)

    def test_gather_keeps_at_most_64k_per_node(self):
        """-b: a node's stdout beyond 64 KiB is dropped, and each such node is named."""
        p = self.ctl("-b", "run", "--", "sh", "-c", "head -c 70000 /dev/zero | tr '\\0' a",
                     hosts=fold(self.names[:2]))
        self.assertEqual(p.returncode, 0, p.stderr)
        header = "%s\n%s (2)\n%s\n" % (SEP, fold(self.names[:2]), SEP)
        self.assertEqual(p.stdout, header + "a" * 65536 + "\n")
        for name in self.names[:2]:
            self.assertIn("ctl: %s: output beyond 64 KiB is not gathered (-b)" % name, p.stderr)
            self.assertIn("ctl: %s: its gathered output above was cut at 64 KiB" % name,
                          p.stderr)

    def test_stdin_with_hosts_waiting_their_turn(self):
        """stdin goes to the running jobs only: with more hosts than --fanout,
        --stdin is refused and the default does not forward it."""
        hosts = fold(self.names[:3])
        p = run_ctl([CTL, "-H", hosts, "--fanout", "2", "run", "--stdin", "--", "cat"],
                    input="x\n")
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("--stdin: 3 hosts but --fanout 2", p.stderr)
        p = run_ctl([CTL, "-H", hosts, "--fanout", "2", "run", "--", "cat"], input="x\n")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        p = run_ctl([CTL, "-H", hosts, "--fanout", "3", "run", "--", "cat"], input="x\n")
        self.assertEqual(sorted(p.stdout.splitlines()), sorted(n + ": x" for n in self.names[:3]))

    def test_summary_table_and_largest_status(self):
        """--summary: node sets per status (a job killed, one failing, one node
        refusing), each failure named, ctl exits with the largest status."""
        refused = "127.0.0.1:%d" % free_port()
        p = self.ctl("--summary", "run", "--", "sh", "-c",
                     "case $NODE in 1) kill -9 $$;; 2) exit 3;; esac; echo ok",
                     hosts=self.nodeset + "," + refused)
        self.assertEqual(p.returncode, 137, p.stderr)
        rest = [n for i, n in enumerate(self.names) if i not in (1, 2)]
        table = [line for line in p.stderr.splitlines()
                 if line.startswith(("ctl: exit", "ctl: unreachable"))]
        self.assertEqual(table, [
            "ctl: exit 0: %s (%d)" % (fold(rest), NODES - 2),
            "ctl: exit 3: %s (1)" % self.name_of(2),
            "ctl: unreachable (connection refused): %s (1)" % refused,
            "ctl: exit 137: %s (1)" % self.name_of(1),
        ])
        self.assertIn("cannot connect to %s: Connection refused" % refused, p.stderr)

    def test_hosts_file_and_json(self):
        """-H @FILE: one node set per line, comments skipped; --json names
        the node on every line."""
        with tempfile.NamedTemporaryFile("w", prefix="ctld-nodes-", delete=False) as f:
            f.write("# the first three\n%s\n\n  %s  # and one more\n"
                    % (fold(self.names[:3]), self.names[5]))
        self.addCleanup(os.unlink, f.name)
        p = self.ctl("--json", "run", "--", "true", hosts="@" + f.name)
        self.assertEqual(p.returncode, 0, p.stderr)
        exited = [e for e in json_lines(p.stdout) if e["event"] == "exited"]
        self.assertEqual(sorted(e["host"] for e in exited),
                         sorted(self.names[:3] + [self.names[5]]))

    def test_node_set_errors_are_usage_errors(self):
        """A set too large, a bad range or a missing file: exit 64, why."""
        for hosts, why in (("n[1-70000]:1", "node set too large (more than 65536 nodes)"),
                           ("n[3-1]:1", "bad range '3-1'"),
                           ("@/nonexistent/nodes", "-H @/nonexistent/nodes: No such file")):
            p = self.ctl("list", hosts=hosts)
            self.assertEqual(p.returncode, 64, p.stderr)
            self.assertIn(why, p.stderr)

    def test_fanout_bounds_connections(self):
        """--fanout 3: the daemons never run more than 3 of the jobs at once.
        The first three block on a fifo; while they do, exactly three
        daemons run a job (no timing: nothing can end before the release)."""
        tmp = tempfile.mkdtemp(prefix="ctld-fanout-")
        self.addCleanup(shutil.rmtree, tmp, True)
        log, gate = os.path.join(tmp, "log"), os.path.join(tmp, "gate")
        os.mkfifo(gate)
        proc = subprocess.Popen(
            [CTL, "-H", self.nodeset, "--fanout", "3", "run", "--", "sh", "-c",
             "echo $NODE >> %s; cat %s >/dev/null; echo done" % (log, gate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        released = []

        def release():  # wakes the blocked readers; later jobs read a plain file
            if released:
                return
            released.append(True)
            fd = os.open(gate, os.O_RDWR | os.O_NONBLOCK)
            os.unlink(gate)
            open(gate, "w").close()
            os.close(fd)

        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.addCleanup(release)

        def started():
            if proc.poll() is not None:
                raise AssertionError("ctl ended early: %s" % proc.communicate()[1])
            return len(words(log)) == 3

        wait_for(started, timeout=30, what="three jobs started")
        running = []
        for d in self.daemons:
            with d.client() as c:
                running.append(c.stats().jobs_running)
        self.assertEqual(sorted(running), [0] * (NODES - 3) + [1] * 3)
        self.assertEqual(len(words(log)), 3)
        release()
        out, err = proc.communicate(timeout=scaled(60))
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(sorted(words(log)), sorted(str(i) for i in range(NODES)))
        self.assertEqual(out.count(": done\n"), NODES)


@unittest.skipIf(VALGRIND, "three more daemons and 1000 connections: long under valgrind")
class ThousandTargets(unittest.TestCase):
    """1000 targets in one ctl: 3 daemons and 997 ports that refuse, all in a
    network namespace of the test's own (its loopback has nothing else), ctl
    limited to 64 fds with --fanout 32. Every failure is named."""

    @classmethod
    def setUpClass(cls):
        cls.ns = "ctld-fanout-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", cls.ns], check=True)
        cls.enter = ["nsenter", "--net=/run/netns/" + cls.ns]
        cls.daemons = []
        try:
            subprocess.run(["ip", "-n", cls.ns, "link", "set", "lo", "up"], check=True)
            for _ in range(3):
                d = Daemon(start=False)
                d.prefix = cls.enter + d.prefix
                cls.daemons.append(d)
                d.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.cleanup()
        subprocess.run(["ip", "netns", "del", cls.ns])

    def test_thousand_targets_with_bounded_fds(self):
        ports = sorted(d.tcp_port for d in self.daemons)
        good = ["127.0.0.1:%d" % p for p in ports]
        hosts = "%s,127.0.0.1:[20001-20997]" % fold(good)

        def small_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        p = run_ctl(self.enter + [CTL, "-H", hosts, "--fanout", "32", "--summary", "run", "--",
                                  "echo", "hi"], timeout=120, preexec_fn=small_fd_limit)
        self.assertEqual(p.returncode, 69, p.stderr[-3000:])
        self.assertEqual(sorted(p.stdout.splitlines()), ["%s: hi" % n for n in good])
        for port in range(20001, 20998):
            self.assertIn("cannot connect to 127.0.0.1:%d: Connection refused\n" % port, p.stderr)
        table = [line for line in p.stderr.splitlines()
                 if line.startswith(("ctl: exit", "ctl: unreachable"))]
        self.assertEqual(table, [
            "ctl: exit 0: %s (3)" % fold(good),
            "ctl: unreachable (connection refused): 127.0.0.1:[20001-20997] (997)",
        ])


if __name__ == "__main__":
    unittest.main()

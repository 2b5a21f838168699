# SPDX-License-Identifier: BSD-2-Clause
"""ClusterShell (Debian's clustershell) through ctld daemons: `clush -R
ctld` with node names that carry ports, gathered output (-b), exit codes
(-S), stderr per node, an unreachable node, a command timeout (-u) that
leaves nothing running, --copy and --rcopy (ctl put / get), and ClusterShell's
Python Task API with the WorkerCtld worker.

The worker comes from the tree (PYTHONPATH=clients/clustershell:
clients/python, found through the package ctld) and runs the ctl under test.
Client-side: these pass against an older daemon too.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from harness import CTL, ROOT, DaemonsTestCase, free_port, scaled

WORKER_DIR = os.path.join(ROOT, "clients", "clustershell")
sys.path.insert(0, WORKER_DIR)

from ClusterShell.NodeSet import NodeSet  # noqa: E402
from ClusterShell.Task import task_self  # noqa: E402

import Ctld  # noqa: E402


class ClushTestCase(DaemonsTestCase):
    daemon_count = 2

    def clush(self, *args, nodes=None):
        env = dict(os.environ, CTLD_CTL=CTL,
                   PYTHONPATH=os.pathsep.join([WORKER_DIR,
                                               os.path.join(ROOT, "clients", "python")]))
        env.pop("CTLD_OPTIONS", None)
        cmd = ["clush", "-R", "ctld", "-w", ",".join(nodes or self.nodes)] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=scaled(60))

    def test_gathered_output(self):
        p = self.clush("-b", "echo same; echo err-$CTLD_NODE >&2")
        self.assertEqual(p.returncode, 0, p.stderr)
        folded = str(NodeSet(",".join(self.nodes)))
        self.assertEqual(p.stdout, "-" * 15 + "\n%s (2)\n" % folded + "-" * 15 + "\nsame\n")
        for n in self.nodes:
            self.assertIn("%s: err-%s\n" % (n, n), p.stderr)

    def test_per_node_output_and_exit_codes(self):
        """CTLD_RANK is the node's rank: each node exits with its own code;
        -S makes clush's status the largest. A '%' reaches the shell as it is."""
        p = self.clush("-S", "echo rank-$CTLD_RANK 100%; exit $((3 + CTLD_RANK))")
        self.assertEqual(p.returncode, 4, p.stderr)
        ranked = list(NodeSet(",".join(self.nodes)))
        for rank, n in enumerate(ranked):
            self.assertIn("%s: rank-%d 100%%\n" % (n, rank), p.stdout)
            self.assertIn("clush: %s: exited with exit code %d" % (n, 3 + rank), p.stderr)

    def test_unreachable_node(self):
        dead = "127.0.0.1:%d" % free_port()
        p = self.clush("-S", "echo up", nodes=self.nodes + [dead])
        self.assertEqual(p.returncode, 69, p.stderr)
        self.assertIn("%s: ctl: cannot connect to %s: Connection refused" % (dead, dead), p.stderr)
        for n in self.nodes:
            self.assertIn("%s: up\n" % n, p.stdout)

    def test_timeout_kills_the_job(self):
        d = self.daemons[0]
        with d.client() as c:
            before = {j.job for j in c.list()}
        p = self.clush("-u", "1", "sleep 60; echo late", nodes=[d.tcp])
        self.assertIn("clush: %s: command timeout" % d.tcp, p.stderr)
        self.assertNotIn("late", p.stdout)
        with d.client() as c:
            [job] = [j.job for j in c.list() if j.job not in before]
            ev = c.wait(job, timeout=scaled(10))  # the daemon killed it when ctl went
        self.assertEqual(ev.exited.signal, signal.SIGKILL)

    def test_copy_and_rcopy(self):
        """--copy puts a file into a directory on every node (ctl put), --rcopy
        fetches it back into DEST/<node>/ (ctl get): same bytes, same mode."""
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "conf.txt")
            with open(src, "wb") as f:
                f.write(os.urandom(70000))
            os.chmod(src, 0o600)
            remote, back = os.path.join(d, "remote"), os.path.join(d, "back")
            os.mkdir(remote)
            os.mkdir(back)
            p = self.clush("--copy", src, "--dest", remote)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            placed = os.path.join(remote, "conf.txt")
            self.assertEqual(os.stat(placed).st_mode & 0o777, 0o600)
            p = self.clush("--rcopy", placed, "--dest", back)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(src, "rb") as f:
                want = f.read()
            for n in self.nodes:
                with open(os.path.join(back, n, "conf.txt"), "rb") as f:
                    self.assertEqual(f.read(), want, n)

    def test_installed_where_clustershell_looks(self):
        """`make install-python` puts the package and the worker where `clush
        -R ctld` finds them without PYTHONPATH tricks: here into a copy of
        Debian's ClusterShell (DESTDIR and CLUSH_WORKER_DIR), never the
        system's."""
        import ClusterShell
        tmp = tempfile.mkdtemp(prefix="ctld-install-")
        try:
            shutil.copytree(os.path.dirname(ClusterShell.__file__),
                            os.path.join(tmp, "lib", "ClusterShell"))
            worker_dir = os.path.join(tmp, "lib", "ClusterShell", "Worker")
            p = subprocess.run(["make", "-s", "-C", ROOT, "install-python", "PREFIX=/usr",
                                "DESTDIR=" + tmp, "CLUSH_WORKER_DIR=/lib/ClusterShell/Worker"],
                               capture_output=True, text=True, timeout=scaled(120))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue(os.path.isfile(os.path.join(worker_dir, "Ctld.py")))
            site = os.path.join(tmp, "usr", "lib", "python3", "dist-packages")
            self.assertTrue(os.path.isfile(os.path.join(site, "ctld", "ctld_pb2.py")))
            env = dict(os.environ, CTLD_CTL=CTL, PYTHONPATH=os.pathsep.join(
                [os.path.join(tmp, "lib"), site]))
            p = subprocess.run(["clush", "-R", "ctld", "-w", ",".join(self.nodes), "-b", "-S",
                                "echo installed"], capture_output=True, text=True, env=env,
                               cwd=tmp, stdin=subprocess.DEVNULL, timeout=scaled(60))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.endswith("\ninstalled\n"), p.stdout)
            probe = ("import ClusterShell.Worker.Ctld as w, ctld.proto as p; "
                     "print(w.__file__); print(p.pb.__name__)")
            p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               env=env, cwd=tmp, timeout=scaled(60))
            self.assertEqual(p.stdout.split(), [os.path.join(worker_dir, "Ctld.py"),
                                                "ctld.ctld_pb2"], p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_task_api(self):
        task = task_self()
        task.set_info("ctld_path", CTL)
        try:
            w = Ctld.WorkerCtld(",".join(self.nodes), handler=None, timeout=scaled(30),
                                command="echo out-$CTLD_NODE; echo err >&2; exit 5", stderr=True)
            task.schedule(w)
            task.resume()
            self.assertEqual([(rc, sorted(nodes)) for rc, nodes in w.iter_retcodes()],
                             [(5, sorted(self.nodes))])
            for n in self.nodes:
                self.assertEqual(bytes(w.node_buffer(n)), ("out-%s" % n).encode())
                self.assertEqual(bytes(w.node_error_buffer(n)), b"err")
            # the task's default distant worker, as clush -R sets it
            task.set_default("distant_worker", Ctld.WORKER_CLASS)
            w2 = task.shell("hostname", nodes=",".join(self.nodes), timeout=scaled(30))
            task.resume()
            self.assertEqual(sorted(n for _, ns in w2.iter_retcodes() for n in ns),
                             sorted(self.nodes))
            self.assertEqual({rc for rc, _ in w2.iter_retcodes()}, {0})
        finally:
            task.set_info("ctld_path", None)


if __name__ == "__main__":
    unittest.main()

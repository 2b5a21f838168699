# SPDX-License-Identifier: BSD-2-Clause
"""bench/bench.py's section 7, one command on many nodes (scale_nodes), on
a lab of 3 nodes: every variant (ctl on one node and on all, with -b,
ctld.Cluster, and over ssh: ssh, clush, pdsh when installed) runs and
succeeds every time, the results file has the ratios and the report the
target rows; and what the run built (network namespaces, daemons, sshds,
temp dirs) is gone afterwards, also when it is stopped with SIGTERM while
its commands run. Needs root (namespaces)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, PY, scaled
from netlab import CtlProcess

BENCH = os.path.join(ROOT, "bench", "bench.py")
NODES = 3
SSH_TOOLS = ("clush", "pdsh", "/usr/sbin/sshd")


def have_ssh_tools():
    return all(shutil.which(t) for t in SSH_TOOLS)


def bench_argv(out):
    argv = [PY, BENCH, "--build", BUILD, "--only", "scale_nodes", "--nodes", str(NODES),
            "--quick", "--out", out]
    return argv + ([] if have_ssh_tools() else ["--no-ssh"])


def leftovers(pid):
    """What a bench run of pid left: its lab's namespaces, processes
    started with its lab's or its sshd's files, its temp dirs."""
    lab, ssh = "ctldlab%dx" % pid, "ctld-bench-ssh-%d-" % pid
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                        check=True).stdout
    found = [line.split()[0] for line in ns.splitlines() if line.startswith(lab)]
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if lab in cmd or ssh in cmd:
            found.append("process %s: %s" % (path.split("/")[2], cmd))
    found += glob.glob(os.path.join(tempfile.gettempdir(), lab + "*"))
    found += glob.glob(os.path.join(tempfile.gettempdir(), ssh + "*"))
    return found


@unittest.skipIf(os.geteuid() != 0, "needs root (network namespaces)")
class BenchScaleTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="ctld-bench-scale-test-")
        self.addCleanup(shutil.rmtree, self.out, True)

    def test_every_variant_runs_and_the_report_has_the_targets(self):
        p = CtlProcess(bench_argv(self.out), dict(os.environ))
        self.addCleanup(p.kill)
        rc = p.wait(scaled(300))
        self.assertEqual(rc, 0, p.stdout[-3000:] + p.stderr[-3000:])
        [name] = [f for f in os.listdir(self.out) if f.endswith(".json")]
        with open(os.path.join(self.out, name)) as f:
            sc = json.load(f)["results"]["scale_nodes"]
        want = {"ctl_1", "ctl_N", "ctl_N_gather", "ctl_1_cold", "ctl_N_cold", "python_N"}
        if have_ssh_tools():
            want |= {"ssh_1", "clush_N", "pdsh_N"}
        self.assertEqual(sc["left_out"], {})
        self.assertEqual(set(sc["variants"]), want)
        for key, v in sc["variants"].items():
            self.assertEqual(v["failed"], 0, key)
            self.assertEqual(v["wall_ms"]["n"], 3, key)  # --quick: 3 repetitions
            self.assertGreater(v["cpu_ms"]["median"], 0, key)
            self.assertGreater(v["max_rss_kib"]["median"], 0, key)
        self.assertIn("ctl_N_over_ctl_1", sc["ratios"])
        self.assertIn("ctl_N_cold_over_ctl_1_cold", sc["ratios"])
        with open(os.path.join(self.out, "latest.md")) as f:
            md = f.read()
        self.assertIn("| ctl on %d nodes ÷ ctl on 1 node |" % NODES, md)
        if have_ssh_tools():
            self.assertIn("| clush over ssh ÷ ctl, %d nodes |" % NODES, md)
            self.assertIn("target ≥ 10×", md)
        self.assertEqual(leftovers(p.pid), [])

    def test_sigterm_while_commands_run_leaves_nothing(self):
        p = CtlProcess(bench_argv(self.out), dict(os.environ))
        self.addCleanup(p.kill)
        p.wait_output("lab: ", timeout=scaled(120))  # built; the warm-up runs start now
        self.assertNotEqual(leftovers(p.pid), [])  # the lab is there to be removed
        p.signal(signal.SIGTERM)
        rc = p.wait(scaled(60))
        self.assertEqual(rc, 1, p.stderr)
        self.assertIn("bench.py: SIGTERM", p.stderr)
        self.assertEqual(leftovers(p.pid), [])

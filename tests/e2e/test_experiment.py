# SPDX-License-Identifier: BSD-2-Clause
"""A real experiment over eight nodes, as a user runs one: network
namespaces made by the test (tests/e2e/netlab.py: the controller in a
namespace of its own, every node in its own, joined by a bridge inside the
namespaces, so the host never routes a lab address), mutual TLS on every
daemon, driven by ctl from the controller's namespace with node sets:

1. redis-server on n1, ready when it listens on 6379 *and* has logged
   "Ready to accept connections" (ctl run --wait-port --wait-log);
2. redis-benchmark on n2..n8 at once against n1, with --timeline and
   --summary, each writing its CSV result to a file; n8's daemon is killed
   (kill -9) while its benchmark runs: ctl names that node and why, and the
   six others complete;
3. the results fetched with `ctl get` into results/<node>/ and checked
   (same bytes as the node wrote, SET and GET rates in them);
4. the same check from every node gathered with -b (one block, the folded
   node set);
5. the timeline valid, a row per node, every surviving benchmark's span
   inside the run, n1's redis-server listening before any benchmark began.

Before the node sets, gathering, get and the timeline, steps 2-5 could
not be written; the old build fails at the first node set.
"""
import json
import os
import shutil
import tempfile
import unittest

from harness import alive, kill_pids, scaled, wait_for
from netlab import NetLab

import ctld
from ctld.timeline import validate

NODES = ["n%d" % i for i in range(1, 9)]
BENCH_NODES = "10.77.0.[3-9]"  # n2..n8 (the controller is .1, n1 .2)


def dotted(lab, name):
    return lab.node(name).addr


@unittest.skipUnless(os.path.exists("/usr/bin/redis-benchmark"),
                     "redis-tools is in DEB_PACKAGES: `make deps` installs it")
class RedisExperimentTest(unittest.TestCase):

    def setUp(self):
        self.lab = NetLab(NODES)
        self.addCleanup(self.lab.close)
        self.lab.start_daemons()
        self.dir = tempfile.mkdtemp(prefix="ctld-experiment-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)
        self.orphans = []  # jobs of the killed daemon: ours to end, by pid
        self.addCleanup(lambda: kill_pids(self.orphans))

    def start_server(self):
        rc, out, err = self.lab.ctl(
            "run", "--wait-port", "6379", "--wait-log", "Ready to accept connections", "--",
            "redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
            "--save", "", "--appendonly", "no", nodes=["n1"], timeout=30)
        self.assertEqual(rc, 0, err)
        self.assertIn("is ready after", err)

    def test_redis_benchmark_over_eight_nodes(self):
        lab, results = self.lab, os.path.join(self.dir, "results")
        self.start_server()
        trace = os.path.join(self.dir, "timeline.json")
        server = dotted(lab, "n1")
        # each node names its file by its own address: hostname -I in its namespace
        bench = ("a=$(hostname -I | tr -d ' '); redis-benchmark -h %s -p 6379 -n 20000 -c 8 "
                 "-t set,get --csv > %s/$a.csv" % (server, self.dir))
        run = lab.start_ctl("--summary", "--timeline", trace, "run", "--", "sh", "-c", bench,
                            hosts=BENCH_NODES)
        # n8's daemon dies while its benchmark runs
        n8 = lab.node("n8").daemon
        with n8.client() as c:
            wait_for(lambda: any(j.state == 0 for j in c.list()), timeout=20,
                     what="n8's benchmark running")
            self.orphans += [j.pid for j in c.list() if j.state == 0]
        n8.kill9()
        rc = run.wait(120)
        n8_addr = lab.node("n8").addr
        self.assertNotEqual(rc, 0, run.stderr)
        self.assertRegex(run.stderr, r"ctl: .*%s" % n8_addr.replace(".", r"\."))
        self.assertRegex(run.stderr, r"ctl: exit 0: 10\.77\.0\.\[3-8\]:7878 \(6\)")
        self.assertRegex(run.stderr, r"ctl: exit \d+: %s:7878 \(1\)" % n8_addr.replace(".", r"\."))

        # the results, fetched with get and checked against what the nodes wrote
        survivors = "10.77.0.[3-8]"
        rc, out, err = lab.ctl("get", os.path.join(self.dir, "%h.csv"), results,
                               hosts=survivors, timeout=60)
        self.assertEqual(rc, 0, err)
        for i in range(3, 9):
            addr = "10.77.0.%d" % i
            with open(os.path.join(self.dir, addr + ".csv"), "rb") as f:
                written = f.read()
            with open(os.path.join(results, addr, addr + ".csv"), "rb") as f:
                got = f.read()
            self.assertEqual(got, written, addr)
            text = got.decode()
            self.assertRegex(text, r'"SET","[0-9.]+"')
            self.assertRegex(text, r'"GET","[0-9.]+"')

        # one more round, gathered: every surviving node sees the same server
        rc, out, err = lab.ctl("-b", "run", "--", "redis-cli", "-h", server, "ping",
                               hosts=survivors, timeout=30)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "-" * 15 + "\n10.77.0.[3-8]:7878 (6)\n" + "-" * 15 + "\nPONG\n")

        # the timeline
        with open(trace) as f:
            doc = json.load(f)
        self.assertEqual(validate(doc), [])
        rows = {n["name"]: n for n in doc["otherData"]["nodes"]}
        self.assertEqual(set(rows), {"10.77.0.%d:7878" % i for i in range(3, 10)})
        for name, n in rows.items():
            if name != n8_addr + ":7878":
                self.assertGreaterEqual(n["samples"], 4, n)
                self.assertLessEqual(abs(n["offset_ns"]), n["uncertainty_ns"] + 1000, n)
        ends = [e for e in doc["traceEvents"] if e["name"] == "exit 0"]
        self.assertEqual(len(ends), 6)
        self.assertTrue(alive(self.lab.node("n1").daemon.pid))


if __name__ == "__main__":
    unittest.main()

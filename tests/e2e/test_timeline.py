# SPDX-License-Identifier: BSD-2-Clause
"""One timeline of many nodes: every daemon stamps its events with its own
clock (Launched, Exited, Ready, PortListening, FileEvent time_ns; Pong the
clocks at the answer), the controller measures each node's clock offset by
round trips and writes a Chrome/Perfetto trace (ctl --timeline FILE, and
ctld.Cluster(timeline=True).timeline()).

The daemons here share the machine's clock, so the true offset is 0: the
measured one must lie within its own stated uncertainty (the bound is exact
whatever the network did), which a wrong formula or a wrong clock fails.
The spans are checked against the daemon's own wall time of each job, and
the trace against what a reader needs (every node named, spans closed,
offsets recorded). Before: no event carried a daemon time, Pong no clock."""
import asyncio
import json
import os
import subprocess
import tempfile
import unittest

from harness import CTL, PY, DaemonsTestCase, scaled

import ctld
from ctld.timeline import validate


def by_node(doc):
    """{node name: [events of its row]} of a trace."""
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    rows = {n: [] for n in names.values()}
    for e in doc["traceEvents"]:
        if e["ph"] != "M":
            rows[names[e["pid"]]].append(e)
    return rows


class TimelineTest(DaemonsTestCase):
    daemon_count = 3

    def check_offsets(self, doc, min_samples):
        nodes = doc["otherData"]["nodes"]
        self.assertEqual(len(nodes), self.daemon_count)
        for n in nodes:
            self.assertGreaterEqual(n["samples"], min_samples, n)
            # the same clock: the true offset (0) lies within the bound
            self.assertLessEqual(abs(n["offset_ns"]), n["uncertainty_ns"] + 1000, n)
            self.assertLess(n["uncertainty_ns"], scaled(0.05) * 1e9, n)

    def check_job_rows(self, doc, exit_name, wall_ns):
        for node, events in by_node(doc).items():
            kinds = [(e["ph"], e["name"]) for e in events]
            begin = [e for e in events if e["ph"] == "B"]
            ready = [e for e in events if e["name"] == "ready"]
            exited = [e for e in events if e["name"] == exit_name]
            end = [e for e in events if e["ph"] == "E"]
            self.assertTrue(begin and ready and exited and end, (node, kinds))
            self.assertLessEqual(begin[0]["ts"], ready[0]["ts"])
            self.assertLessEqual(ready[0]["ts"], exited[0]["ts"])
            self.assertIn("node_time_ns", exited[0]["args"])
            # the span is the job's life as the daemon measured it (wall_ns)
            span_ns = (end[0]["ts"] - begin[0]["ts"]) * 1000
            self.assertLess(abs(span_ns - wall_ns[node]), 2e6, (node, span_ns, wall_ns))

    def test_cluster_timeline(self):
        script = "sleep 0.05; echo up; sleep 0.1; exit 3"

        async def go():
            async with ctld.Cluster(self.nodes, timeline=True,
                                    connect_timeout=scaled(5)) as c:
                results = await c.run(["sh", "-c", script], ready=[ctld.log_ready("^up$")],
                                      timeout=scaled(20))
                return results, c.timeline().trace()
        results, doc = asyncio.run(asyncio.wait_for(go(), scaled(60)))
        self.assertEqual([r.exit_code for r in results], [3] * self.daemon_count)
        self.assertEqual(validate(doc), [])
        self.check_offsets(doc, 4)
        wall = {r.host: r.terminal.exited.wall_ns for r in results}
        self.check_job_rows(doc, "exit 3", wall)

    def test_ctl_timeline(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "trace.json")
            p = subprocess.run([CTL, "-H", ",".join(self.nodes), "--timeline", path, "--json",
                                "run", "--", "sh", "-c", "sleep 0.1; exit 3"],
                               capture_output=True, text=True, timeout=scaled(30))
            self.assertEqual(p.returncode, 3, p.stderr)
            with open(path) as f:
                doc = json.load(f)
        self.assertEqual(validate(doc), [])
        self.check_offsets(doc, 4)
        exits = {json.loads(l)["host"]: json.loads(l) for l in p.stdout.splitlines()
                 if json.loads(l).get("event") == "exited"}
        for node, events in by_node(doc).items():
            begin = [e for e in events if e["ph"] == "B"]
            ended = [e for e in events if e["name"] == "exit 3"]
            self.assertTrue(begin and ended, (node, events))
            self.assertEqual(begin[0]["args"]["pid"], exits[node]["pid"])
            span_ns = (ended[0]["ts"] - begin[0]["ts"]) * 1000
            self.assertLess(abs(span_ns - exits[node]["wall_ns"]), 2e6, (node, span_ns))

    def test_picture(self):
        async def go():
            async with ctld.Cluster(self.nodes, timeline=True,
                                    connect_timeout=scaled(5)) as c:
                await c.run(["true"], timeout=scaled(20))
                return c.timeline()
        tl = asyncio.run(asyncio.wait_for(go(), scaled(60)))
        with tempfile.TemporaryDirectory() as d:
            trace, png = os.path.join(d, "t.json"), os.path.join(d, "t.png")
            tl.write(trace)
            p = subprocess.run([PY, "-m", "ctld.timeline", trace, "--png", png],
                               capture_output=True, text=True, timeout=scaled(30),
                               env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                   __import__("sys").path)))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("3 nodes", p.stdout)
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()

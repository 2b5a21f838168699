# SPDX-License-Identifier: BSD-2-Clause
"""One timeline of what happened where, from many nodes' events.

Each daemon stamps its events with its own clock (``time_ns``: CLOCK_REALTIME
of that node). A :class:`Timeline` learns how far each node's clock is from
ours from Ping round trips (the Pong carries the daemon's clock): a Ping sent
at our time *s* and answered at *r* with the daemon's time *d* gives
``offset = d - (s + r) / 2`` within ``± (r - s) / 2``; the sample with the
shortest round trip is the estimate. Events are then put on our clock and
written in the Chrome/Perfetto trace-event JSON format, the same file
``ctl --timeline FILE`` writes: one process row per node, one thread row per
job, jobs as spans from launch to exit, ready/listen/file/exit as instants,
each node's offset and uncertainty in ``otherData.nodes``.

``python3 -m ctld.timeline TRACE.json --png OUT.png`` draws a trace (from
either writer) with gnuplot.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

__all__ = ["Timeline", "ClockOffset", "plot"]


class ClockOffset:
    """A node's clock against ours; see the module's docstring."""

    def __init__(self):
        self.offset_ns = 0
        self.uncertainty_ns = 0
        self.last_offset_ns = 0
        self.samples = 0

    def add(self, sent_ns, received_ns, daemon_ns):
        """One round trip (all CLOCK_REALTIME ns). False when unusable."""
        if not daemon_ns or received_ns < sent_ns:
            return False
        half = (received_ns - sent_ns) // 2
        offset = daemon_ns - (sent_ns + half)
        self.last_offset_ns = offset
        if not self.samples or half < self.uncertainty_ns:
            self.offset_ns, self.uncertainty_ns = offset, half
        self.samples += 1
        return True

    def to_local(self, daemon_ns):
        return daemon_ns - self.offset_ns


def _event_fields(ev):
    """(kind, job, daemon time or 0, name, extra args) of an Event message."""
    kind = ev.WhichOneof("kind")
    body = getattr(ev, kind)
    job = getattr(body, "job", 0)
    t = getattr(body, "time_ns", 0)
    args = {}
    if kind == "launched":
        name, args["pid"] = "launched", body.pid
    elif kind == "exited":
        name = ("killed by signal %d" % body.signal) if body.signal else "exit %d" % body.exit_code
        args["pid"] = body.pid
    elif kind == "exec_failed":
        name = "exec failed: " + body.text
    elif kind == "ready":
        name, args["time_to_ready_us"] = "ready", body.time_to_ready_ns // 1000
    elif kind == "not_ready":
        name = "not ready: " + body.text
    elif kind == "port_listening":
        name = "listen %s:%d%s" % (body.addr, body.port, " (already)" if body.already else "")
        args["pid"] = body.pid
    elif kind == "port_closed":
        name = "closed %s:%d" % (body.addr, body.port)
    elif kind == "file_event":
        name = "file " + os.path.basename(body.path)
    else:
        name = kind
    return kind, job, t, name, args


class Timeline:
    """Events of many nodes on one time axis.

    ``add_clock(node, sent_ns, received_ns, daemon_ns)`` after each Ping,
    ``add_event(node, event)`` for each Event received (Output is skipped),
    ``name_job(node, job, name)``; then ``trace()`` (a dict) or
    ``write(path)``."""

    SKIP = ("output", "output_dropped", "upgrading")

    def __init__(self):
        self.clocks = {}
        self.nodes = []
        self.events = []  # (node, kind, job, daemon_ns, received_ns, name, args)
        self.job_names = {}

    def _node(self, node):
        if node not in self.clocks:
            self.clocks[node] = ClockOffset()
            self.nodes.append(node)
        return self.clocks[node]

    def add_clock(self, node, sent_ns, received_ns, daemon_ns):
        return self._node(node).add(sent_ns, received_ns, daemon_ns)

    def add_event(self, node, ev, received_ns=None):
        self._node(node)
        kind = ev.WhichOneof("kind")
        if kind is None or kind in self.SKIP:
            return
        kind, job, t, name, args = _event_fields(ev)
        self.events.append((node, kind, job, t, received_ns or time.time_ns(), name, args))

    def name_job(self, node, job, name):
        self._node(node)
        self.job_names[(node, job)] = name

    def _local(self, node, daemon_ns, received_ns):
        return self.clocks[node].to_local(daemon_ns) if daemon_ns else received_ns

    def trace(self):
        """The Chrome/Perfetto trace-event document."""
        pid = {n: i + 1 for i, n in enumerate(self.nodes)}
        times = [self._local(e[0], e[3], e[4]) for e in self.events]
        base = min(times) if times else time.time_ns()
        out = []
        for n in self.nodes:
            c = self.clocks[n]
            out.append({"name": "process_name", "ph": "M", "pid": pid[n], "tid": 0,
                        "args": {"name": n}})
            out.append({"name": "process_labels", "ph": "M", "pid": pid[n], "tid": 0,
                        "args": {"labels": "clock %+.3f ms ± %.3f ms (%d samples)" % (
                            c.offset_ns / 1e6, c.uncertainty_ns / 1e6, c.samples)}})
        for (n, job), name in self.job_names.items():
            out.append({"name": "thread_name", "ph": "M", "pid": pid[n], "tid": job,
                        "args": {"name": name}})
        for (n, kind, job, t, recv, name, args), local in zip(self.events, times):
            ts = (local - base) // 1000
            label = self.job_names.get((n, job), "job %d" % job)
            if kind == "launched":
                out.append({"name": label, "ph": "B", "pid": pid[n], "tid": job, "ts": ts,
                            "args": args})
                continue
            a = dict(args)
            if t:
                a["node_time_ns"] = t
                a["uncertainty_us"] = self.clocks[n].uncertainty_ns // 1000
            else:
                a["time"] = "received"
            out.append({"name": name, "ph": "i", "s": "t", "pid": pid[n], "tid": job,
                        "ts": ts, "args": a})
            if kind in ("exited", "exec_failed"):
                out.append({"name": label, "ph": "E", "pid": pid[n], "tid": job, "ts": ts})
        nodes = [{"name": n, "pid": pid[n], "offset_ns": self.clocks[n].offset_ns,
                  "uncertainty_ns": self.clocks[n].uncertainty_ns,
                  "last_offset_ns": self.clocks[n].last_offset_ns,
                  "samples": self.clocks[n].samples} for n in self.nodes]
        return {"displayTimeUnit": "ms", "traceEvents": out,
                "otherData": {"tool": "ctld (Python)", "base_realtime_ns": base,
                              "clock_sync": "Ping round trips: offset = node clock - our "
                                            "clock, within +- half the best round trip",
                              "dropped_events": 0, "nodes": nodes}}

    def write(self, path):
        with open(path, "w") as f:
            json.dump(self.trace(), f, indent=None, separators=(",", ":"))
            f.write("\n")


def validate(doc):
    """Checks a trace the way a reader depends on it; returns a list of
    problems (empty: fine): every node named, no E without its B on the same
    row nor before it, times non-negative, offsets recorded. A B left open
    is a job still running (or whose node was lost) when the trace ended."""
    problems, open_spans = [], {}
    names = {e["pid"] for e in doc["traceEvents"] if e.get("name") == "process_name"}
    for e in doc["traceEvents"]:
        if e["ph"] == "M":
            continue
        if e["pid"] not in names:
            problems.append("event on an unnamed node row: %r" % e)
        if e["ts"] < 0:
            problems.append("negative time: %r" % e)
        key = (e["pid"], e["tid"])
        if e["ph"] == "B":
            open_spans[key] = e["ts"]
        elif e["ph"] == "E":
            if key not in open_spans:
                problems.append("end without a begin: %r" % e)
            elif e["ts"] < open_spans.pop(key):
                problems.append("span ends before it begins: %r" % e)
    nodes = doc.get("otherData", {}).get("nodes", [])
    if {n["pid"] for n in nodes} != names:
        problems.append("otherData.nodes does not list every node row")
    return problems


def plot(trace_path, png_path, title=None):
    """Draws the trace: one row per node, jobs as bars, instants as marks.
    Needs gnuplot (Debian package gnuplot-nox). Raises RuntimeError when it
    cannot."""
    if not shutil.which("gnuplot"):
        raise RuntimeError("gnuplot is not installed (apt-get install gnuplot-nox)")
    with open(trace_path) as f:
        doc = json.load(f)
    rows = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"]
            if e["ph"] == "M" and e["name"] == "process_name"}
    order = {pid: i for i, pid in enumerate(sorted(rows))}
    spans, marks, begun = [], [], {}
    for e in doc["traceEvents"]:
        if e["ph"] == "B":
            begun[(e["pid"], e["tid"])] = e["ts"]
        elif e["ph"] == "E" and (e["pid"], e["tid"]) in begun:
            spans.append((order[e["pid"]], begun.pop((e["pid"], e["tid"])) / 1e3, e["ts"] / 1e3))
        elif e["ph"] == "i":
            marks.append((order[e["pid"]], e["ts"] / 1e3, e["name"]))
    end = max([s[2] for s in spans] + [m[1] for m in marks] + [1.0])
    for (pid, tid), ts in begun.items():  # still running when the trace ended
        spans.append((order[pid], ts / 1e3, end))
    with tempfile.TemporaryDirectory() as d:
        sp, mk = os.path.join(d, "spans"), os.path.join(d, "marks")
        with open(sp, "w") as f:
            for row, a, b in spans:
                f.write("%g %d %g 0\n" % (a, row, b - a))
        with open(mk, "w") as f:
            for row, t, name in marks:
                f.write('%g %d "%s"\n' % (t, row, name.replace('"', "'")))
        ytics = ", ".join('"%s" %d' % (rows[pid].replace('"', "'"), order[pid])
                          for pid in sorted(rows))
        script = [
            "set terminal pngcairo size 1200,%d" % (160 + 40 * len(rows)),
            "set output '%s'" % png_path,
            "set title '%s'" % (title or os.path.basename(trace_path)).replace("'", ""),
            "set xlabel 'ms since the first event'",
            "set ytics (%s)" % ytics,
            "set yrange [-0.7:%g]" % (len(rows) - 0.3),
            "set grid xtics",
            "set key off",
            "plot '%s' using 1:2:3:4 with vectors nohead lw 8 lc rgb '#4477aa', "
            "'%s' using 1:2 with points pt 7 ps 1.2 lc rgb '#cc3311', "
            "'%s' using 1:2:3 with labels rotate by 30 left offset 0.5,0.6 font ',8'"
            % (sp, mk, mk),
        ]
        p = subprocess.run(["gnuplot"], input="\n".join(script), text=True,
                           capture_output=True)
        if p.returncode:
            raise RuntimeError("gnuplot failed: " + p.stderr.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m ctld.timeline",
                                 description="Check and draw a ctld timeline (trace JSON).")
    ap.add_argument("trace")
    ap.add_argument("--png", help="draw it into this PNG file (needs gnuplot)")
    a = ap.parse_args(argv)
    try:
        with open(a.trace) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print("ctld.timeline: %s: %s" % (a.trace, e), file=sys.stderr)
        return 1
    problems = validate(doc)
    for p in problems:
        print("ctld.timeline: %s" % p, file=sys.stderr)
    if a.png:
        try:
            plot(a.trace, a.png)
        except RuntimeError as e:
            print("ctld.timeline: %s" % e, file=sys.stderr)
            return 1
    nodes = doc.get("otherData", {}).get("nodes", [])
    print("%d nodes, %d events%s" % (len(nodes), sum(1 for e in doc["traceEvents"]
                                                    if e["ph"] != "M"),
                                     ", problems: %d" % len(problems) if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

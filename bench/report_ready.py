# SPDX-License-Identifier: BSD-2-Clause
"""The report of section 6, time to ready (measure_ready.py): its table
rows (one per server, the methods as ratios to ctl --wait-port, and the
1 ms target), its notes, its plot (latest-ready.png) and its headline."""
import os
import shutil
import subprocess
import tempfile

from procs import say

ANSWER_P50_MS = 1.0  # the target: Ready within 1 ms of the kernel's LISTEN, at p50

LABELS = {
    "ctl_wait_port": "`--wait-port`",
    "ctl_wait_log": "`--wait-log`",
    "protocol_poll_100ms": "protocol poll 100 ms",
    "connect_poll_10ms": "connect 10 ms",
    "connect_poll_1s": "connect 1 s (wait-for-it)",
    "redis_cli_poll_100ms": "`redis-cli ping` 100 ms",  # results of format 1 before 2026-12
}
SHORT = {"ctl_wait_port": "port", "ctl_wait_log": "log", "protocol_poll_100ms": "poll",
         "connect_poll_10ms": "10ms", "connect_poll_1s": "1s"}
CTL_METHODS = ("ctl_wait_port", "ctl_wait_log")


def upgrade(tr):
    """Results of the redis-only section (ctl_wait_port, redis_cli_poll_100ms,
    connect_poll_10ms at the top) in the per-server shape; what they did not
    measure is missing."""
    if "servers" in tr:
        return tr
    methods = {k: {"time_ms": v["time_ms"], "after_listen_ms": {"n": 0}, "listen_ms": {"n": 0},
                   "missed": v["missed"], "false_ready": v["false_ready"],
                   "ratio_to_ctl_wait_port": v.get("ratio_to_ctl"),
                   "samples": [{"time_ms": x} for x in v["samples_ms"]]}
               for k, v in tr.items()}
    return {"servers": {"redis-server": {"methods": methods, "no_log": "not measured"}},
            "methods": list(methods), "reps": tr["ctl_wait_port"]["time_ms"]["n"]}


def ms(x):
    return "%.2f ms" % x if x < 10 else "%.1f ms" % x if x < 100 else "%.0f ms" % x


def median(m, key):
    return m[key].get("median") if m.get(key) else None


def server_row(name, srv, reps):
    ms_ = srv["methods"]
    base = ms_["ctl_wait_port"]["time_ms"]
    value = "`ctl run --wait-port` %s (p90 %s)" % (ms(base["median"]), ms(base["p90"])) \
        if base["n"] else "`ctl run --wait-port`: no run answered"
    listen = ms_["ctl_wait_port"]["listen_ms"]
    direct = ms_.get("connect_poll_10ms", {}).get("listen_ms", {})
    if listen.get("n") and direct.get("n"):
        value += "; the kernel's LISTEN at %s (%s started directly)" % (
            ms(listen["median"]), ms(direct["median"]))
    ratios = []
    for key, m in ms_.items():
        if key == "ctl_wait_port":
            continue
        r = m.get("ratio_to_ctl_wait_port")
        ratios.append("%s %s" % (LABELS.get(key, key), "%.2f×" % r if r else "—"))
    if "ctl_wait_log" not in ms_ and srv.get("no_log") != "not measured":
        ratios.insert(0, "`--wait-log` — (no ready line)")
    bad = ["%s %d%s" % (LABELS.get(k, k), m["false_ready"],
                        " (+%d missed)" % m["missed"] if m["missed"] else "")
           for k, m in ms_.items() if m["false_ready"] or m["missed"]]
    return ("time to ready: %s via `sh -c`, start command → the method says ready%s"
            % (name, " (%d runs per method)" % reps if reps else ""), value,
            "p50 ÷ `--wait-port`: " + ", ".join(ratios),
            "false ready / missed: " + (", ".join(bad) if bad else "none"))


def target_row(servers):
    vals, miss, false = [], [], 0
    for name, srv in servers.items():
        a = srv["methods"]["ctl_wait_port"]["after_listen_ms"]
        false += sum(srv["methods"][k]["false_ready"] + srv["methods"][k]["missed"]
                     for k in CTL_METHODS if k in srv["methods"])
        if not a.get("n"):
            continue
        vals.append("%s %s (p90 %s)" % (name, ms(a["median"]), ms(a["p90"])))
        if a["median"] > ANSWER_P50_MS:
            miss.append("%s by %s" % (name, ms(a["median"] - ANSWER_P50_MS)))
    if not vals:
        return None
    if false:
        miss.append("%d false ready or missed with ctl" % false)
    return ("`ctl run --wait-port`: its ready line read − the kernel's LISTEN, p50",
            ", ".join(vals), "target p50 ≤ %g ms, 0 false ready" % ANSWER_P50_MS,
            "met" if not miss else "missed: " + ", ".join(miss))


def rows(tr):
    """The table rows of the section (measurement, value, ratio/target, status)."""
    tr = upgrade(tr)
    out = [server_row(name, srv, tr.get("reps")) for name, srv in tr["servers"].items()]
    t = target_row(tr["servers"])
    return out + ([t] if t else [])


def notes(tr):
    """What the table leaves out: each method's distance from the kernel
    event, whether Ready and a passive watch saw the same LISTEN, the ready
    lines."""
    tr = upgrade(tr)
    servers = tr["servers"]
    if not any(srv["methods"]["ctl_wait_port"]["after_listen_ms"].get("n")
               for srv in servers.values()):
        return []
    per = []
    for key in tr["methods"]:
        v = [median(srv["methods"][key], "after_listen_ms") if key in srv["methods"] else None
             for srv in servers.values()]
        per.append("%s %s" % (LABELS.get(key, key),
                              " / ".join("—" if x is None else ms(x) for x in v)))
    out = ["Time to ready: each method's answer after the kernel's LISTEN, p50 (%s): %s."
           % (" / ".join(servers), "; ".join(per))]
    agree = [srv["methods"]["ctl_wait_port"]["condition_minus_listen_ms"]
             for srv in servers.values()]
    out.append("The Ready event's LISTEN time and a passive WatchPort's for the same start "
               "differ by at most %.1f µs: the same kernel record." % max(
                   max(abs(a["min"]), abs(a["max"])) * 1e3 for a in agree if a.get("n")))
    lines = []
    for name, srv in servers.items():
        c = srv["methods"].get("ctl_wait_log", {}).get("condition_minus_listen_ms", {})
        if c.get("n"):
            lines.append("%s `%s`%s, read by the daemon %s after the LISTEN (p50)"
                         % (name, srv["log_regex"], " (%s)" % srv["log_note"]
                            if srv.get("log_note") else "", ms(c["median"])))
        elif srv.get("no_log"):
            lines.append("none for %s: %s" % (name, srv["no_log"]))
    out.append("Ready lines (`--wait-log`): " + "; ".join(lines) + ".")
    return out


def headline(tr):
    tr = upgrade(tr)
    out = []
    for name, srv in tr["servers"].items():
        out.append(("%s ready p50 (%s)" % (name, " / ".join(
            SHORT.get(k, k) for k in srv["methods"])), " / ".join(
            ms(m["time_ms"]["median"]) if m["time_ms"].get("n") else "—"
            for m in srv["methods"].values())))
    t = target_row(tr["servers"])
    if t:
        out.append(("ctl --wait-port answer - LISTEN p50", t[1]))
    return out


# ---------------------------------------------------------------- plot

COLOURS = ("#4878a8", "#d08030", "#50a050", "#a04848")


def strip_data(tmp, tag, servers, columns):
    """One data file per server: x = column + server offset + jitter, y =
    the column's field of every sample of its methods (at least 1 µs: the
    scale is logarithmic). Returns ([(path, server, colour)], y range)."""
    files, ys = [], []
    n = len(servers)
    for si, (name, srv) in enumerate(servers.items()):
        path = os.path.join(tmp, "%s%d.dat" % (tag, si))
        with open(path, "w") as f:
            for ci, (keys, field) in enumerate(columns):
                samples = [r for k in keys for r in srv["methods"].get(k, {}).get("samples", [])]
                for i, row in enumerate(samples):
                    y = row.get(field)
                    if y is not None and row.get("answered", True):
                        x = ci + (si - (n - 1) / 2) * 0.22 + ((i % 5) - 2) * 0.025
                        ys.append(max(y, 1e-3))
                        f.write("%g %g\n" % (x, ys[-1]))
        files.append((path, name, COLOURS[si % len(COLOURS)]))
    return files, (min(ys, default=1) / 2, max(ys, default=1) * 2)


def plot(res, path):
    """Time to ready and its distance from the kernel's LISTEN, every sample,
    per method and server (log scale), with gnuplot."""
    tr = res["results"].get("time_to_ready")
    if not tr or "servers" not in tr or not shutil.which("gnuplot"):
        return False
    servers = tr["servers"]
    methods = tr["methods"]
    direct = tuple(k for k in methods if k not in CTL_METHODS)
    left = [(("ctl_wait_port",), "listen_ms"), (direct, "listen_ms")] + \
        [((k,), "time_ms") for k in methods]
    right = [((k,), "after_listen_ms") for k in methods]

    def tics(cols, first=()):
        names = list(first) + [LABELS[k[0]].replace("`", "") for k, _ in cols[len(first):]]
        return "set xtics (%s)" % ", ".join('"%s" %d' % (n, i) for i, n in enumerate(names))

    def plots(files, yrange):
        return "set yrange [%g:%g]\nplot " % yrange + ", ".join(
            "'%s' using 1:2 with points pt 7 ps 0.6 lc rgb '%s' title '%s'" % (p, c, n)
            for p, n, c in files)

    with tempfile.TemporaryDirectory() as tmp:
        a = strip_data(tmp, "time", servers, left)
        b = strip_data(tmp, "after", servers, right)
        script = [
            "set terminal pngcairo size 1300,560 font 'sans,10'",
            "set output '%s'" % path,
            "set multiplot layout 1,2",
            "set logscale y", "set grid ytics", "set key top left", "set xtics rotate by -25",
            "set xrange [-0.6:%g]" % (len(left) - 0.4),
            "set title 'Time to ready via sh -c: start command → ready (every run)'",
            "set ylabel 'ms (log)'", tics(left, ("LISTEN (ctl runs)", "LISTEN (direct starts)")),
            plots(*a),
            "set xrange [-0.6:%g]" % (len(right) - 0.4),
            "set title \"The answer's distance from the kernel's LISTEN (target: ≤ %g ms at p50)\""
            % ANSWER_P50_MS,
            "set arrow 1 from -0.6,%g to %g,%g nohead dt 2 lc rgb 'red'"
            % (ANSWER_P50_MS, len(right) - 0.4, ANSWER_P50_MS),
            "set ylabel 'ms after LISTEN (log; ≤ 1 µs drawn at 1 µs)'", tics(right), plots(*b),
            "unset multiplot",
        ]
        p = subprocess.run(["gnuplot"], input="\n".join(script), text=True, capture_output=True)
        if p.returncode:
            say("gnuplot failed: " + p.stderr)
            return False
    return True

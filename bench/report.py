# SPDX-License-Identifier: BSD-2-Clause
"""The benchmark's report: the machine description, the markdown table with
ratios and target status, the notes, the plot, and the quick headline."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import report_ready
import report_scale
from procs import ROOT, say

# Targets from the issues; "measure, do not assert": they only set a status.
TARGETS = {
    "persistent_ratio": 1.10,    # ctld-bpf via a persistent client / direct spawn
    "ssh_mux_factor": 10.0,      # multiplexed ssh / ctld-bpf persistent client
    "listen_p50_us": 100.0,
    "listen_forking_p50_us": 50.0,   # delivery while a job forks beside it
    "listen_forking_p99_us": 500.0,
    "idle_cpu_pct": 0.1,         # "near zero": under 0.1 % of one CPU
    "bpf_ns_per_call": 200.0,
    "storm_slowdown_pct": 2.0,
    "idle_rss_kib": 2048,
    "ctl_true_ratio": 2.0,       # `ctl run -- /bin/true` / `/bin/true` (issue 15)
    "ready_ms_ebpf": 20.0,       # exec -> ready with eBPF on (issue 15)
    "ready_answer_p50_ms": report_ready.ANSWER_P50_MS,  # ctl --wait-port's Ready - kernel LISTEN
    "scale_nodes_over_one": report_scale.N_OVER_1,    # ctl on 64 nodes / on 1 node (issue 12)
    "scale_clush_factor": report_scale.CLUSH_FACTOR,  # clush over ssh / ctl, 64 nodes
}

# ---------------------------------------------------------------- machine description

def phase_median(fp, name):
    """One eBPF start-up phase's median, 0 where the run did not measure it."""
    return fp.get("bpf_phases_ms", {}).get(name, {}).get("median", 0.0)


def phases_text(fp):
    """The eBPF start-up's phases, in the order they run on the main thread."""
    p = {k: phase_median(fp, k) for k in ("fetch", "probe", "index_wait", "open", "load",
                                          "verifier", "attach", "pin")}
    return ("kernel BTF fetch %(fetch).1f, probe %(probe).1f, index wait %(index_wait).1f, "
            "open %(open).1f, load %(load).1f (verifier %(verifier).1f; "
            "maps, relocations %(rest).1f), attach %(attach).1f, pin %(pin).1f ms"
            % dict(p, rest=p["load"] - p["verifier"]))


def cmd_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def version_line(argv):
    """A tool's first line of output, or None: a tool that is missing, says
    nothing or takes over 10 s (clang --version under emulation, in the
    kernel guests) leaves the field empty, not the bench failed."""
    lines = (cmd_out(argv) or "").splitlines()
    return lines[0] if lines else None


def machine():
    def first(path, prefix):
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        return None

    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats = int(f.read())
    others = 0
    for exe in glob.glob("/proc/[0-9]*/exe"):
        try:
            if os.path.basename(os.readlink(exe)) == "ctld-bpf":
                others += 1
        except OSError:
            pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    git = cmd_out(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return {
        "kernel": os.uname().release, "arch": os.uname().machine,
        "cpu_model": first("/proc/cpuinfo", "model name"), "nproc": os.cpu_count(),
        "hypervisor": "hypervisor" in (first("/proc/cpuinfo", "flags") or "").split(),
        "memory_kib": int(first("/proc/meminfo", "MemTotal").split()[0]),
        "gcc": version_line(["gcc", "--version"]),
        "clang": version_line(["clang", "--version"]),
        "libbpf": cmd_out(["pkg-config", "--modversion", "libbpf"]),
        "bpftool": version_line(["bpftool", "version"]),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "python": sys.version.split()[0],
        "bpf_stats_enabled_before": stats,
        "loadavg_at_start": load,
        "other_ctld_bpf_processes_at_start": others,
        "git_commit": git, "git_dirty": bool(dirty),
    }


# ---------------------------------------------------------------- report

def fmt_ms(ms):
    return "%.2f ms" % ms if ms < 100 else "%.0f ms" % ms


def fmt_us(us):
    return "%.1f µs" % us if us < 1000 else "%.1f ms" % (us / 1e3)


def status(ok, missed):
    return "met" if ok else "missed by " + missed


# The programs a storm is about (the others run a handful of times by chance).
# (handle_exit_live is handle_exit where sched_process_exit has no group_dead.)
STORM_PROGRAMS = {"fork_storm": ("handle_fork", "handle_exit", "handle_exit_live"),
                  "tcp_storm": ("handle_sock_state",),
                  "tracked_fork_storm": ("handle_fork", "handle_exit", "handle_exit_live")}


def table(res):
    """Rows of (measurement, value, ratio/target, status) for the markdown table."""
    rows = []
    T = TARGETS
    co = res.get("command_overhead")
    if co:
        v = co["variants"]
        direct = v["direct"]["per_command_ms"]["median"]
        for key, d in v.items():
            s = d["per_command_ms"]
            value = "%s (p10–p90 %.2f–%.2f)" % (fmt_ms(s["median"]), s["p10"], s["p90"])
            ratio = "%.2f× direct" % d["ratio_to_direct"]
            st = "—"
            if key in ("ctld_unix", "ctld_tcp"):
                r = d["ratio_to_direct"]
                ratio += " (target ≤ %.2f×)" % T["persistent_ratio"]
                st = status(r <= T["persistent_ratio"], "%.2f× (%.0f µs per command)" % (
                    r - T["persistent_ratio"], (s["median"] - direct * T["persistent_ratio"]) * 1e3))
            if d["failed"]:
                st += "; %d runs FAILED" % d["failed"]
            rows.append(("/bin/echo: " + d["description"], value, ratio, st))
        if "ssh_mux" in v:
            f = v["ssh_mux"]["per_command_ms"]["median"] / v["ctld_unix"]["per_command_ms"]["median"]
            rows.append(("ssh multiplexed ÷ ctld-bpf persistent client (unix)",
                         "%.1f×" % f, "target ≥ %.0f×" % T["ssh_mux_factor"],
                         status(f >= T["ssh_mux_factor"], "%.1f×" % (T["ssh_mux_factor"] - f))))
    ld = res.get("listen")
    if ld:
        for m, label in (("ebpf", "eBPF"), ("ebpf_forking", "eBPF, a job forking beside it"),
                         ("polling", "polling every %d ms" % ld["poll_interval_ms"])):
            if m not in ld:
                continue
            s = ld[m]["latency_us"]
            target = st = "—"
            if m == "ebpf":
                target = "p50 target < %.0f µs" % T["listen_p50_us"]
                st = status(s["median"] < T["listen_p50_us"],
                            "%.0f µs" % (s["median"] - T["listen_p50_us"]))
            if m == "ebpf_forking":
                p50, p99 = T["listen_forking_p50_us"], T["listen_forking_p99_us"]
                target = "target p50 ≤ %.0f µs, p99 ≤ %.0f µs, 0 missed" % (p50, p99)
                miss = []
                if s["median"] > p50:
                    miss.append("p50 by %.0f µs" % (s["median"] - p50))
                if s["p99"] > p99:
                    miss.append("p99 by %.0f µs" % (s["p99"] - p99))
                if ld[m]["failed"]:
                    miss.append("%d missed" % ld[m]["failed"])
                st = status(not miss, ", ".join(miss))
            rows.append(("listen() returns → client holds PortListening, %s (%d trials%s)"
                         % (label, s["n"], ", %d missed" % ld[m]["failed"] if ld[m]["failed"]
                            else ""), "p50 %s, p99 %s" % (fmt_us(s["median"]), fmt_us(s["p99"])),
                         target, st))
    if ld and "wake_floor_us" in ld:
        w = ld["wake_floor_us"]
        rows.append(("this machine's wake-up floor: a process blocked in read() takes a pipe "
                     "write (%d trials)" % w["n"], "p50 %s, p99 %s" % (fmt_us(w["median"]),
                                                                   fmt_us(w["p99"])),
                     "a delivery pays it twice (daemon, client)", "—"))
    idle = res.get("idle_cpu")
    if idle:
        for m in ("ebpf", "polling"):
            i = idle[m]
            target = st = "—"
            if m == "ebpf":
                target = "target ≈ 0 (< %.1f %% of a CPU)" % T["idle_cpu_pct"]
                st = status(i["cpu_pct"] < T["idle_cpu_pct"],
                            "%.3f %% of a CPU" % (i["cpu_pct"] - T["idle_cpu_pct"]))
            rows.append(("daemon CPU while idle %.0f s with 100 watched ports, %s"
                         % (i["seconds"], m), "%.2f ms = %.3f %% of a CPU, %.1f wake-ups/s"
                         % (i["cpu_ms"], i["cpu_pct"], i["wakeups_per_s"]), target, st))
    it = res.get("interference")
    if it:
        for name, label in (("fork_storm", "fork/exit storm"),
                            ("tcp_storm", "TCP connect/accept storm"),
                            ("tracked_fork_storm", "fork/exit storm inside a job")):
            for prog in STORM_PROGRAMS[name]:
                p = it["cost"][name]["programs"].get(prog)
                if not p or not p["calls"]:
                    continue
                ns = p["ns_per_call"]
                target = "target < %.0f ns" % T["bpf_ns_per_call"]
                st = status(ns < T["bpf_ns_per_call"], "%.0f ns (%.1f×)" % (
                    ns - T["bpf_ns_per_call"], ns / T["bpf_ns_per_call"]))
                if name == "tracked_fork_storm":  # every call submits an event: no target
                    target, st = "— (each call submits a record)", "—"
                rows.append(("BPF %s per call, %s" % (prog, label),
                             "%.0f ns (%d calls)" % (ns, p["calls"]), target, st))
        for kind, label in (("fork", "fork/exit"), ("tcp", "TCP connect/accept")):
            t = it["throughput"][kind]
            for unit, what in (("", "ops per second"), ("cpu_", "ops per CPU second")):
                slow = t[unit + "slowdown_pct"]
                pr = t[unit + "paired_ratio"]
                rows.append((
                    "%s storm, %s, daemon running ÷ not (%d × %g s, pinned to one CPU)"
                    % (label, what, it["reps"], it["storm_seconds"]),
                    "%.0f ÷ %.0f" % (t[unit + "on_ops_per_s"]["median"],
                                     t[unit + "off_ops_per_s"]["median"]),
                    "%.3f× = %.1f %% %s (pairs p10–p90 %.3f–%.3f); target < %.0f %% slower"
                    % (t[unit + "ratio"], abs(slow), "slower" if slow >= 0 else "faster",
                       pr["p10"], pr["p90"], T["storm_slowdown_pct"]),
                    status(slow < T["storm_slowdown_pct"],
                           "%.1f points" % (slow - T["storm_slowdown_pct"]))))
        c = it["cost"]
        rows.append(("fork/exit storm inside a job (tracked) ÷ outside (bpf_stats on)",
                     "%.0f ÷ %.0f per s" % (c["tracked_fork_storm"]["ops_per_s"],
                                            c["fork_storm"]["ops_per_s"]),
                     "%.3f×" % (c["tracked_fork_storm"]["ops_per_s"] / c["fork_storm"]["ops_per_s"]),
                     "—"))
    fp = res.get("footprint")
    if fp:
        for m in ("ebpf", "polling"):
            r = fp["idle_rss_kib_" + m]["median"]
            det = fp["idle_rss_detail_kib_" + m]
            rows.append(("RSS idle, %s" % m, "%d KiB (anon %d, file %d; PSS %d)" % (
                r, det["RssAnon"], det["RssFile"], det["Pss"]), "target < %d KiB" % T["idle_rss_kib"],
                status(r < T["idle_rss_kib"], "%d KiB (%.2f×)" % (r - T["idle_rss_kib"],
                                                                  r / T["idle_rss_kib"]))))
        if fp.get("idle_rss_kib_sleep"):
            r = fp["idle_rss_kib_sleep"]["median"]
            libc = fp["idle_rss_by_mapping_kib"].get("sleep", {}).get("libc.so.6", [0])[0]
            rows.append(("RSS idle, `/bin/sleep` (what any dynamically linked program holds)",
                         "%d KiB (libc.so.6 %d)" % (r, libc),
                         "eBPF daemon ÷ sleep %.2f×" % (fp["idle_rss_kib_ebpf"]["median"] / r),
                         "—"))
        rows.append(("binary size (ctld-bpf)", "%d KiB; stripped %d KiB (text %d KiB)" % (
            fp["binary_bytes"] // 1024, fp["stripped_bytes"] // 1024, fp["text_bytes"] // 1024),
            "—", "—"))
        for m in ("ebpf", "polling"):
            s = fp["ready_ms_" + m]
            extra = ""
            target = st = "—"
            if m == "ebpf" and fp["bpf_attach_ms"].get("n"):
                extra = "; eBPF %.1f ms: %s" % (fp["bpf_attach_ms"]["median"] +
                                                 phase_median(fp, "fetch"), phases_text(fp))
            if m == "ebpf":
                target = "target ≤ %.0f ms" % T["ready_ms_ebpf"]
                st = status(s["median"] <= T["ready_ms_ebpf"],
                            "%.1f ms" % (s["median"] - T["ready_ms_ebpf"]))
            rows.append(("exec → ready (ready file written), %s, %d starts" % (m, s["n"]),
                         "%.1f ms (p10–p90 %.1f–%.1f%s)" % (s["median"], s["p10"], s["p90"],
                                                             extra), target, st))
        ph = fp.get("bpf_phases_ms")
        if ph and ph.get("load", {}).get("n"):
            rows.append(("eBPF start-up by phase (medians, the daemon's own clock)",
                         phases_text(fp) + "; kernel BTF indexed in %.1f ms and the CO-RE BTF "
                         "made in %.1f ms ahead (a start-up thread, beside the set-up)"
                         % (phase_median(fp, "index_ahead"), phase_median(fp, "core")),
                         "—", "—"))
        ct = fp.get("ctl_vs_true")
        if ct:
            rows.append(("`ctl run -- /bin/true` ÷ `/bin/true` (%d alternating runs each, unix "
                         "socket)" % ct["true"]["n"],
                         "%s ÷ %s" % (fmt_ms(ct["ctl_run"]["median"]), fmt_ms(ct["true"]["median"])),
                         "%.2f× (target ≤ %.1f×)" % (ct["ratio"], T["ctl_true_ratio"]),
                         status(ct["ratio"] <= T["ctl_true_ratio"],
                                "%.2f×" % (ct["ratio"] - T["ctl_true_ratio"]))))
    sc = res.get("scale")
    if sc:
        for m in ("ebpf", "polling"):
            j = sc.get("jobs_" + m)
            if not j:
                continue
            ok = j["exited"] == j["jobs"] and not j["failed"]
            rows.append(("%d concurrent `sleep %d` jobs, %s" % (j["jobs"], j["job_seconds"], m),
                         "all launched in %.0f ms; RSS %d KiB while they live; last Exited "
                         "%.0f ms after last launch + %d s" % (
                             # a job may end a hair before "launch + N s" by this clock
                             j["all_launched_ns"] / 1e6, j["rss_kb"], max(0.0, j["exit_drain_ms"]),
                             j["job_seconds"]),
                         "%d/%d Exited" % (j["exited"] - j["failed"], j["jobs"]),
                         "ok" if ok else "FAILED"))
        c = sc["clients_64"]
        rows.append(("64 clients at once, %d /bin/echo runs each" % c["runs_each"],
                     "%.0f runs/s; per run p50 %s, p99 %s" % (
                         c["runs_per_s"], fmt_ms(c["latency_ms"]["median"]),
                         fmt_ms(c["latency_ms"]["p99"])),
                     "%d failed" % c["failed"], "ok" if not c["failed"] else "FAILED"))
        r = sc["ring_pressure"]
        rows.append(("ring buffer pushed hard: %d forks in a job, daemon stopped" % r["forks"],
                     "%d records: %d delivered, %d dropped and counted" % (
                         r["records_expected"], r["ring_received"], r["ring_drops"]),
                     "silent losses: %s; Exited %s" % ("none" if r["none_silent"] else
                                                       "%d" % (r["records_expected"] - r["accounted"]),
                                                       "arrived" if r["exited"] else "MISSING"),
                     "ok" if r["none_silent"] and r["exited"] else "FAILED"))
    if res.get("time_to_ready"):
        rows += report_ready.rows(res["time_to_ready"])
    if res.get("scale_nodes"):
        rows += report_scale.rows(res["scale_nodes"])
    return rows


def notes(res):
    """Facts from this run that explain the misses (the why is in bench/README.md)."""
    out = []
    co = res.get("command_overhead", {}).get("variants", {})
    if "ctld_unix" in co and "daemon_cpu_us_per_command" in co["ctld_unix"]:
        out.append("ctld-bpf's own CPU per command: %.0f µs with eBPF, %.0f µs with --no-bpf "
                   "(%.1f / %.1f wake-ups per command); direct spawn takes %s in all."
                   % (co["ctld_unix"]["daemon_cpu_us_per_command"],
                      co["ctld_nobpf"]["daemon_cpu_us_per_command"],
                      co["ctld_unix"]["daemon_wakeups_per_command"],
                      co["ctld_nobpf"]["daemon_wakeups_per_command"],
                      fmt_ms(co["direct"]["per_command_ms"]["median"])))
    if "ssh_mux" in co:
        out.append("Multiplexed ssh is %.1f× direct spawn on this machine, so no daemon can be "
                   "%.0f× faster than it here: that would take a command below %s, faster than "
                   "posix_spawn itself." % (co["ssh_mux"]["ratio_to_direct"], TARGETS["ssh_mux_factor"],
                                            fmt_ms(co["ssh_mux"]["per_command_ms"]["median"]
                                                   / TARGETS["ssh_mux_factor"])))
    fp = res.get("footprint")
    if fp and "ctl_shared_libraries" in fp:
        out.append("Shared libraries: ctld-bpf %s; ctl %s (OpenSSL only in ctld-tls.so, loaded "
                   "when TLS is configured)." % (", ".join(fp["shared_libraries"]) or "none",
                                                 ", ".join(fp["ctl_shared_libraries"]) or "none"))
    if fp and fp.get("idle_rss_by_mapping_kib", {}).get("ebpf"):
        out.append("Idle RSS with eBPF by mapping (KiB, rss/pss): " + ", ".join(
            "%s %d/%d" % (k, v[0], v[1]) for k, v in fp["idle_rss_by_mapping_kib"]["ebpf"].items()))
    if res.get("time_to_ready"):
        out += report_ready.notes(res["time_to_ready"])
    if res.get("scale_nodes"):
        out += report_scale.notes(res["scale_nodes"])
    return out


def markdown(res, json_path):
    m = res["machine"]
    lines = [
        "<!-- generated by bench/bench.py; do not edit -->",
        "Measured %s with `%s` (raw data: `%s`)." % (res["started"][:10], res["command"], json_path),
        "Machine: %s, %d vCPU%s, %d MiB, Linux %s, %s; kernel.bpf_stats_enabled was %d "
        "(turned on only while measuring BPF cost per call); load average at start %s; "
        "commit %s%s." % (
            m["cpu_model"], m["nproc"], " (VM)" if m["hypervisor"] else "",
            m["memory_kib"] // 1024, m["kernel"], m["libbpf"] and "libbpf " + m["libbpf"],
            m["bpf_stats_enabled_before"], " ".join(m["loadavg_at_start"]),
            (m["git_commit"] or "?")[:12], " + local changes" if m["git_dirty"] else ""),
        "",
        "| measurement | value | ratio/target | status |",
        "|---|---|---|---|",
    ]
    for row in table(res["results"]):
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |")
    n = notes(res["results"])
    if n:
        lines += [""] + ["- " + x for x in n]
    lines.append("")
    return "\n".join(lines)


def plot(res, path):
    """Command-overhead bars (median, p10/p90 whiskers, log scale) and the
    listen-detection latency distributions, with gnuplot."""
    co = res["results"].get("command_overhead")
    ld = res["results"].get("listen")
    if not co or not shutil.which("gnuplot"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        bars = os.path.join(tmp, "bars.dat")
        with open(bars, "w") as f:
            for key, d in co["variants"].items():
                s = d["per_command_ms"]
                r = d["ratio_to_direct"]
                f.write('"%s" %g %g %g "%s×"\n' % (key.replace("_", " "), s["median"], s["p10"],
                                                   s["p90"], "%.2f" % r if r < 10 else "%.0f" % r))
        script = [
            "set terminal pngcairo size 1200,520 font 'sans,10'",
            "set output '%s'" % path,
            "set multiplot layout 1,2",
            "set title 'Command overhead: /bin/echo, median of %d×%d (p10–p90)'"
            % (co["batches"], co["runs_per_batch"]),
            "set logscale y", "set ylabel 'ms per command'", "set yrange [0.5:*]",
            "set style fill solid 0.6", "set boxwidth 0.7", "set xtics rotate by -25",
            "set bars small",
            "set grid ytics", "unset key",
            "plot '%s' using 0:2:xtic(1) with boxes lc rgb '#4878a8', "
            "'' using 0:3:(0):($4-$3) with vectors nohead lc rgb 'black' lw 1.5, "
            "'' using 0:($4*1.25):5 with labels" % bars,
        ]
        if ld:
            for m in ("ebpf", "polling"):
                v = sorted(ld[m]["samples_us"])
                with open(os.path.join(tmp, m + ".dat"), "w") as f:
                    for i, x in enumerate(v):
                        f.write("%g %g\n" % (x, (i + 1) / len(v)))
            script += [
                "unset logscale", "set logscale x", "set xtics norotate", "set key top left",
                "set title 'listen() → PortListening at the client (%d trials each)'"
                % ld["ebpf"]["latency_us"]["n"],
                "set xlabel 'latency (µs)'", "set ylabel 'fraction of trials'",
                "set yrange [0:1]", "set xrange [1:*]",
                "plot '%s' using 1:2 with steps lw 2 title 'eBPF', "
                "'%s' using 1:2 with steps lw 2 title 'polling (20 ms)'"
                % (os.path.join(tmp, "ebpf.dat"), os.path.join(tmp, "polling.dat")),
            ]
        script.append("unset multiplot")
        p = subprocess.run(["gnuplot"], input="\n".join(script), text=True, capture_output=True)
        if p.returncode:
            say("gnuplot failed: " + p.stderr)
            return False
    return True


def headline(res):
    """The short table bench-quick prints."""
    r = res["results"]
    out = []
    co = r.get("command_overhead", {}).get("variants", {})
    for key in co:
        out.append(("%s / direct" % key, "%.2f×" % co[key]["ratio_to_direct"]))
    if "ssh_mux" in co:
        out.append(("ssh_mux / ctld_unix", "%.1f×" % (co["ssh_mux"]["per_command_ms"]["median"]
                                                      / co["ctld_unix"]["per_command_ms"]["median"])))
    if "listen" in r:
        out.append(("listen p50 eBPF / polling", "%.1f µs / %.0f µs" % (
            r["listen"]["ebpf"]["latency_us"]["median"],
            r["listen"]["polling"]["latency_us"]["median"])))
        if "ebpf_forking" in r["listen"]:
            f = r["listen"]["ebpf_forking"]
            out.append(("listen eBPF, job forking: p50 / p99 / missed", "%.1f µs / %.1f µs / %d" % (
                f["latency_us"]["median"], f["latency_us"]["p99"], f["failed"])))
    if "time_to_ready" in r:
        out += report_ready.headline(r["time_to_ready"])
    if "scale_nodes" in r:
        out += report_scale.headline(r["scale_nodes"])
    if "interference" in r:
        for kind in ("fork", "tcp"):
            out.append(("%s storm on / off" % kind,
                        "%.3f×" % r["interference"]["throughput"][kind]["ratio"]))
    if "footprint" in r:
        out.append(("idle RSS (eBPF)", "%d KiB" % r["footprint"]["idle_rss_kib_ebpf"]["median"]))
    return out

# SPDX-License-Identifier: BSD-2-Clause
"""The report of section 7, one command on many nodes (measure_scale.py):
its table rows (one per variant: wall time, the controller's CPU and peak
RSS; then the issue's ratios against their targets), notes and headline."""

N_OVER_1 = 2.0         # ctl on 64 nodes within 2x ctl on one node (issue 12)
CLUSH_FACTOR = 10.0    # clush over ssh at least 10x slower than ctl on 64 nodes


def ms(x):
    return "%.1f ms" % x if x < 100 else "%.0f ms" % x


def status(ok, missed):
    return "met" if ok else "missed by " + missed


def base_of(key):
    """What a variant's wall time is compared with: the one-node variants with
    ctl_1, the many-node ones with ctl_N (a cold one with its warm twin)."""
    return "ctl_1" if key.endswith("_1") or key.startswith("ctl_1_") else "ctl_N"


def variant_rows(sc):
    rows = []
    for key, v in sc["variants"].items():
        w, c, r = v["wall_ms"], v["cpu_ms"], v["max_rss_kib"]
        value = "%s (p90 %s); controller CPU %s, peak RSS %d KiB; nodes' CPU %s" % (
            ms(w["median"]), ms(w["p90"]), ms(c["median"]), r["median"],
            ms(v["nodes_cpu_ms_per_run"]))
        base = base_of(key)
        ratio = "—" if key == base or base not in sc["variants"] else "%.1f× %s" % (
            w["median"] / sc["variants"][base]["wall_ms"]["median"], base)
        rows.append(("%d nodes: %s" % (sc["nodes"], v["description"]), value, ratio,
                     "%d runs FAILED" % v["failed"] if v["failed"] else "—"))
    for key, why in sc.get("left_out", {}).items():
        rows.append(("%d nodes: %s" % (sc["nodes"], key), "left out: " + why, "—", "FAILED"))
    return rows


def target_rows(sc):
    rows = []
    r = sc["ratios"]
    if "ctl_N_over_ctl_1" in r:
        f = r["ctl_N_over_ctl_1"]["median"]
        rows.append(("ctl on %d nodes ÷ ctl on 1 node" % sc["nodes"], "%.2f×" % f,
                     "target ≤ %.0f×" % N_OVER_1, status(f <= N_OVER_1, "%.2f×" % (f - N_OVER_1))))
    if "ctl_N_cold_over_ctl_1_cold" in r:
        f = r["ctl_N_cold_over_ctl_1_cold"]["median"]
        rows.append(("the same without TLS session resumption (full handshakes, "
                     "as at a first contact)", "%.2f×" % f, "target ≤ %.0f×" % N_OVER_1,
                     status(f <= N_OVER_1, "%.2f×" % (f - N_OVER_1))))
    if "clush_over_ctl_N" in r:
        f = r["clush_over_ctl_N"]["median"]
        rows.append(("clush over ssh ÷ ctl, %d nodes" % sc["nodes"], "%.1f×" % f,
                     "target ≥ %.0f×" % CLUSH_FACTOR,
                     status(f >= CLUSH_FACTOR, "%.1f×" % (CLUSH_FACTOR - f))))
    if "pdsh_over_ctl_N" in r:
        rows.append(("pdsh -R ssh ÷ ctl, %d nodes" % sc["nodes"],
                     "%.1f×" % r["pdsh_over_ctl_N"]["median"], "—", "—"))
    return rows


def rows(sc):
    return variant_rows(sc) + target_rows(sc)


def notes(sc):
    out = ["One command on many nodes: %d network namespaces, each with a ctld-bpf (--no-bpf, "
           "mutual TLS) and an sshd, plus the controller's, built in %.1f s; every node runs on "
           "this one machine, so the %d-node times include %d daemons (or sshds) starting "
           "/bin/true side by side. Each run is a fresh process: connections, TLS and ssh "
           "handshakes included; fan-out 64 for ctl, ctld.Cluster, clush and pdsh. "
           "CPU is user + sys of the controller's process and its children (wait4); "
           "peak RSS is the largest single process (ru_maxrss)."
           % (sc["nodes"], sc["lab_setup_s"], sc["nodes"], sc["nodes"])]
    v = sc["variants"].get("ctl_N")
    if v:
        floor = (v["cpu_ms"]["median"] + v["nodes_cpu_ms_per_run"]) / sc["nproc"]
        out.append("ctl on %d nodes: the controller's CPU (%s) and the nodes' (%s, every "
                   "daemon and its spawner) shared by %d CPUs take at least %s, of its %s: "
                   "here the nodes' work is on the critical path, on real nodes it runs in "
                   "parallel." % (sc["nodes"], ms(v["cpu_ms"]["median"]),
                                  ms(v["nodes_cpu_ms_per_run"]), sc["nproc"], ms(floor),
                                  ms(v["wall_ms"]["median"])))
    if sc.get("clush_version"):
        out.append("Over ssh: %s, %s; OpenSSH with ed25519 keys made for the run."
                   % (sc["clush_version"], sc["pdsh_version"]))
    return out


def headline(sc):
    out = []
    for name, label in (("ctl_N_over_ctl_1", "ctl %d nodes / 1 node"),
                        ("clush_over_ctl_N", "clush / ctl, %d nodes"),
                        ("pdsh_over_ctl_N", "pdsh / ctl, %d nodes")):
        if name in sc["ratios"]:
            out.append((label % sc["nodes"], "%.2f×" % sc["ratios"][name]["median"]))
    return out

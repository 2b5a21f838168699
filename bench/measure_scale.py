# SPDX-License-Identifier: BSD-2-Clause
"""Section 7 of the benchmark, one command on many nodes: a lab of network
namespaces (tests/e2e/netlab.py: a controller and N nodes on a bridge, all
in namespaces of their own), on every node a ctld-bpf --no-bpf with mutual
TLS and an sshd on the node's address (key authentication, keys made for
the run). From the controller's namespace, in turn per repetition:

    ctl_1         ctl -H <first node> run -- /bin/true
    ctl_N         ctl -H 10.77.0.[2-N+1] run -- /bin/true
    ctl_N_gather  the same with -b
    ctl_1_cold    ctl_1 with --tls-session-cache none: every handshake a
    ctl_N_cold    full one, as at the first contact with a node (the others
                  resume the TLS session of the run before, from a ticket
                  cache private to this bench run: XDG_RUNTIME_DIR)
    python_N      ctld.Cluster(...).run(["/bin/true"]) in a fresh python3
    ssh_1         ssh <first node> /bin/true
    clush_N       clush -f 64 -b -w <nodes> /bin/true (its ssh worker)
    pdsh_N        pdsh -R ssh -f 64 -w <nodes> /bin/true

Each run is one process (and what it starts) from exec to exit: its wall
time, its CPU (user + sys of it and its children, from wait4) and its
peak RSS (wait4's ru_maxrss: the largest single process of the tree). The
connection cost (TCP, TLS or ssh handshakes) is part of every run, as it
is for a user who types the command. See bench/README.md."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from measure import summary
from procs import P, ROOT, SSH_USER, SshKeys, SshServer, say

PY = "/usr/bin/python3"  # Debian's: python3-clustershell is what ctld.Cluster imports
RUN_TIMEOUT = 120  # s: a run that takes longer is killed and counted as failed
NO_TICKETS = ["--tls-session-cache", "none"]  # ctl: no TLS session resumption

CLUSTER_SCRIPT = """
import asyncio, sys, ctld
async def main(hosts, tls):
    async with ctld.Cluster(hosts, tls=tls, fanout=64) as c:
        return [r for r in await c.run(["/bin/true"], timeout=60) if r.status != 0]
failed = asyncio.run(main(sys.argv[1], tuple(sys.argv[2:5])))
for r in failed:
    print(r.host, r.status, r.error, file=sys.stderr)
sys.exit(1 if failed else 0)
"""


def import_netlab():
    """tests/e2e/netlab.py, the one lab both the e2e tests and the bench use.
    Its harness reads the build and the daemons' mode when imported: every
    node's daemon runs --no-bpf (64 eBPF daemons would load and pin 64 sets
    of programs; what eBPF costs and gains is sections 1-6)."""
    os.environ["CTLD_BUILD"] = P.build
    os.environ["CTLD_TEST_MODE"] = "nobpf"
    os.environ["CTLD_VALGRIND"] = "0"  # measured, never under valgrind
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import netlab
    return netlab


class Lab:
    """The lab, its daemons and its sshds; close() undoes all of it, also
    after a failure half-way through building it."""

    def __init__(self, netlab, nodes, ssh):
        self.netlab = netlab
        self.lab = self.keys = None
        self.sshds = []
        try:
            self.lab = netlab.NetLab(["n%d" % (i + 1) for i in range(nodes)], tls=True)
            self.lab.start_daemons()
            if ssh:
                self.keys = SshKeys()
                for n in self.lab.nodes.values():
                    self.sshds.append(SshServer(n.addr, 22, netns=n.ns, keys=self.keys))
        except BaseException:
            self.close()
            raise
        self.addrs = [n.addr for n in self.lab.nodes.values()]
        # what serves the controller on the nodes: each daemon, its spawner
        # (which reaps the jobs) and each sshd (which reaps its sessions)
        self.node_pids = [p for n in self.lab.nodes.values()
                          for p in (n.daemon.pid, n.daemon.spawner_pid) if p]
        self.node_pids += [s.proc.pid for s in self.sshds]

    def node_cpu_s(self):
        """CPU seconds the nodes' servers have used, reaped children
        included (/proc/PID/stat utime + stime + cutime + cstime, in ticks:
        summed over many runs the rounding averages out)."""
        ticks = 0
        for pid in self.node_pids:
            with open("/proc/%d/stat" % pid) as f:
                ticks += sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def close(self):
        for s in self.sshds:
            try:
                s.stop()
            except Exception as e:  # keep cleaning up
                say("cleanup: sshd: %s" % e)
        if self.keys:
            self.keys.stop()
        if self.lab:
            self.lab.close()


def nodeset(addrs):
    """'10.77.0.[2-65]' for consecutive addresses of one /24."""
    prefix = addrs[0].rsplit(".", 1)[0]
    first, last = (int(a.rsplit(".", 1)[1]) for a in (addrs[0], addrs[-1]))
    assert addrs == ["%s.%d" % (prefix, i) for i in range(first, last + 1)]
    return addrs[0] if first == last else "%s.[%d-%d]" % (prefix, first, last)


def variants(lab, n):
    """(key, description, argv, extra environment) of every variant."""
    one, every = lab.addrs[0], nodeset(lab.addrs)
    ctl = [P.ctl] + lab.lab.tls_args()
    out = [
        ("ctl_1", "`ctl -H <1 node> run -- /bin/true`",
         ctl[:1] + ["-H", one] + ctl[1:] + ["run", "--", "/bin/true"], {}),
        ("ctl_N", "`ctl -H <%d nodes> run -- /bin/true`" % n,
         ctl[:1] + ["-H", every] + ctl[1:] + ["run", "--", "/bin/true"], {}),
        ("ctl_N_gather", "`ctl -H <%d nodes> -b run -- /bin/true`" % n,
         ctl[:1] + ["-H", every, "-b"] + ctl[1:] + ["run", "--", "/bin/true"], {}),
        ("ctl_1_cold", "`ctl -H <1 node> --tls-session-cache none run -- /bin/true` "
         "(full TLS handshake)",
         ctl[:1] + ["-H", one] + ctl[1:] + NO_TICKETS + ["run", "--", "/bin/true"], {}),
        ("ctl_N_cold", "`ctl -H <%d nodes> --tls-session-cache none run -- /bin/true` "
         "(full TLS handshakes)" % n,
         ctl[:1] + ["-H", every] + ctl[1:] + NO_TICKETS + ["run", "--", "/bin/true"], {}),
        ("python_N", "`ctld.Cluster(<%d nodes>).run(['/bin/true'])`, python3 start included" % n,
         [PY, "-c", CLUSTER_SCRIPT, every] + list(lab.lab.client_tls()),
         {"PYTHONPATH": os.path.join(ROOT, "clients", "python") + ":"
          + os.path.join(P.build, "python")}),
    ]
    if lab.keys:
        opts = lab.keys.client_options()
        out += [
            ("ssh_1", "`ssh <1 node> /bin/true`",
             ["/usr/bin/ssh"] + opts + [SSH_USER + "@" + one, "/bin/true"], {}),
            ("clush_N", "`clush -f 64 -b -w <%d nodes> /bin/true` (ssh)" % n,
             ["clush", "-f", "64", "--maxrc", "-l", SSH_USER, "-o", " ".join(opts),
              "-w", every, "-b", "/bin/true"], {}),
            ("pdsh_N", "`pdsh -R ssh -f 64 -w <%d nodes> /bin/true`" % n,
             ["pdsh", "-R", "ssh", "-S", "-f", "64", "-l", SSH_USER, "-w", every, "/bin/true"],
             {"PDSH_SSH_ARGS": " ".join(opts + ["-l%u", "%h"])}),
        ]
    return out


def timed_run(netlab, ns, argv, env, tmp):
    """Runs argv in network namespace ns to its end, its output into the
    file tmp/output: (wall s, CPU s of it and its children, peak RSS KiB, exit
    status). One still running after RUN_TIMEOUT is killed (its whole
    session): status None. The peak RSS comes from GNU time, which forks
    argv itself: a child forked from this python starts its ru_maxrss at
    python's size, and exec keeps that maximum."""
    rss_file = os.path.join(tmp, "rss")
    timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
    with open(os.path.join(tmp, "output"), "w") as log:
        t0 = time.monotonic()
        # forked from a thread inside ns, so the child is born there: no
        # `ip netns exec` (an exec and a mount namespace) in what is timed
        p = netlab.in_netns(ns, lambda: subprocess.Popen(
            timed, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True))
    fired = []

    def kill():
        fired.append(True)
        os.killpg(p.pid, 9)

    killer = threading.Timer(RUN_TIMEOUT, kill)
    killer.daemon = True  # a run stopped by SIGTERM must not wait for it
    try:
        killer.start()
        _, status, ru = os.wait4(p.pid, 0)
    except BaseException:  # SIGTERM (bench.py's sys.exit) or ^C: not a run left behind
        os.killpg(p.pid, 9)
        os.wait4(p.pid, 0)
        raise
    finally:
        killer.cancel()
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    rc = None if fired else p.returncode
    with open(rss_file) as f:
        lines = f.read().split()
    return wall, ru.ru_utime + ru.ru_stime, int(lines[-1]) if lines else None, rc


def controller_env(extra, tmp):
    """The environment of what runs in the controller: no CTLD_* of ours,
    and ctl's TLS ticket cache in tmp (this run's own, empty at its start,
    not the user's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLD_")}
    env["XDG_RUNTIME_DIR"] = os.path.join(tmp, "xdg")
    env.update(extra)
    return env


def measure(netlab, lab, cfg, tmp):
    vs = variants(lab, len(lab.addrs))
    os.mkdir(os.path.join(tmp, "xdg"), 0o700)
    ns = lab.lab.controller.ns
    samples = {k: {"wall": [], "cpu": [], "rss": []} for k, _, _, _ in vs}
    failed = {k: 0 for k, _, _, _ in vs}
    node_cpu = {k: 0.0 for k, _, _, _ in vs}
    errors = {}
    for key, _, argv, env in vs:  # warm-up: page cache, ARP, first connections
        for _ in range(2):
            rc = timed_run(netlab, ns, argv, controller_env(env, tmp), tmp)[3]
        if rc != 0:
            with open(os.path.join(tmp, "output")) as f:
                errors[key] = "exit %s: %s" % (rc, f.read()[-500:].strip())
            say("   %s fails (%s); left out" % (key, errors[key]))
    vs = [v for v in vs if v[0] not in errors]
    for rep in range(cfg.scale_reps):
        order = vs[rep % len(vs):] + vs[:rep % len(vs)]
        for key, _, argv, env in order:
            before = lab.node_cpu_s()
            wall, cpu, rss, rc = timed_run(netlab, ns, argv, controller_env(env, tmp), tmp)
            time.sleep(0.1)  # let the servers reap what served the run
            node_cpu[key] += lab.node_cpu_s() - before
            samples[key]["wall"].append(wall)
            samples[key]["cpu"].append(cpu)
            if rss is not None:  # none from a run killed after RUN_TIMEOUT
                samples[key]["rss"].append(rss)
            failed[key] += rc != 0
        say("   rep %2d/%d: %s" % (rep + 1, cfg.scale_reps, "  ".join(
            "%s %.0f ms" % (k, samples[k]["wall"][-1] * 1e3) for k, _, _, _ in vs)))
    out = {}
    for key, desc, argv, _ in vs:
        s = samples[key]
        out[key] = {"description": desc, "argv0": os.path.basename(argv[0]),
                    "wall_ms": summary(s["wall"], 1e-3), "cpu_ms": summary(s["cpu"], 1e-3),
                    "max_rss_kib": summary(s["rss"]), "failed": failed[key],
                    "nodes_cpu_ms_per_run": node_cpu[key] * 1e3 / cfg.scale_reps,
                    "wall_samples_ms": [x * 1e3 for x in s["wall"]]}
    return out, errors


def ratios(v):
    """The issue's ratios, of medians and per repetition (paired)."""
    out = {}
    for name, num, den in (("ctl_N_over_ctl_1", "ctl_N", "ctl_1"),
                           ("ctl_N_cold_over_ctl_1_cold", "ctl_N_cold", "ctl_1_cold"),
                           ("ctl_N_gather_over_ctl_1", "ctl_N_gather", "ctl_1"),
                           ("clush_over_ctl_N", "clush_N", "ctl_N"),
                           ("pdsh_over_ctl_N", "pdsh_N", "ctl_N"),
                           ("python_over_ctl_N", "python_N", "ctl_N"),
                           ("ssh_1_over_ctl_1", "ssh_1", "ctl_1")):
        if num in v and den in v:
            a, b = v[num]["wall_samples_ms"], v[den]["wall_samples_ms"]
            out[name] = {"median": v[num]["wall_ms"]["median"] / v[den]["wall_ms"]["median"],
                         "paired": summary([x / y for x, y in zip(a, b)])}
    return out


def scale_nodes(cfg):
    """Section 7: one command on cfg.scale_nodes nodes against one node,
    ctl against clush and pdsh over ssh."""
    say("== 7. one command on %d nodes: ctl vs one node, clush and pdsh over ssh, %d reps"
        % (cfg.scale_nodes, cfg.scale_reps))
    netlab = import_netlab()
    ssh = not cfg.no_ssh
    for prog in ("clush", "pdsh") if ssh else ():
        if not shutil.which(prog):
            raise RuntimeError("%s is not installed (make bench-deps)" % prog)
    t0 = time.monotonic()
    lab = Lab(netlab, cfg.scale_nodes, ssh)
    try:
        built = time.monotonic() - t0
        say("   lab: %d namespaces, %d daemons (--no-bpf, mutual TLS)%s in %.1f s"
            % (cfg.scale_nodes + 2, cfg.scale_nodes,
               ", %d sshds" % cfg.scale_nodes if ssh else "", built))
        with tempfile.TemporaryDirectory(prefix="ctld-bench-scale-") as tmp:
            variants_out, errors = measure(netlab, lab, cfg, tmp)
    finally:
        lab.close()
    out = {"nodes": cfg.scale_nodes, "reps": cfg.scale_reps, "daemon_mode": "nobpf",
           "tls": True, "ssh": ssh, "nproc": os.cpu_count(), "lab_setup_s": built, "fanout": 64,
           "variants": variants_out, "left_out": errors, "ratios": ratios(variants_out),
           "clush_version": tool_version(["clush", "--version"]) if ssh else None,
           "pdsh_version": tool_version(["pdsh", "-V"]) if ssh else None}
    for name, r in out["ratios"].items():
        say("   %-24s %.2f× (paired p10–p90 %.2f–%.2f)"
            % (name, r["median"], r["paired"]["p10"], r["paired"]["p90"]))
    return out


def tool_version(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else None

#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""experiment.py - a worked example of ctld.Cluster: a redis-server on one
node, redis-benchmark on the others, results gathered.

    # on loopback, with daemons of its own (root, after `make`):
    /usr/bin/python3 examples/experiment.py --local 3
    # on a testbed: the first node serves, the others load it
    /usr/bin/python3 examples/experiment.py --hosts 'node[1-9]:7878' \\
        --tls build/certs/client.pem build/certs/client.key build/certs/ca.pem

What it shows: start() with readiness (the server's own tree listens on the
port and logged "Ready to accept": no sleep, no polling), run() on many nodes
at once with a result per node (a node that fails says why; the others still
report), the daemon's timings, and the `async with` block killing the server
at the end whatever happened.
"""
import argparse
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))
import ctld  # noqa: E402
from ctld.proto import split_host  # noqa: E402

RATE = re.compile(r"^([A-Z_]+): ([\d.]+) requests per second")


def rates(stdout):
    """{"SET": 81234.5, ...} from `redis-benchmark -q` (progress lines end in \\r)."""
    found = {}
    for line in re.split(r"[\r\n]", stdout.decode(errors="replace")):
        m = RATE.match(line.strip())
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


async def experiment(hosts, tls, port, requests):
    server, clients = hosts[0], hosts[1:] or hosts[:1]
    addr = split_host(server)[0]
    async with ctld.Cluster(hosts, tls=tls) as c:
        for host, err in c.errors.items():
            print("%s: unreachable: %s" % (host, err))
        [srv] = await c.start(
            ["redis-server", "--port", str(port), "--bind", addr, "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            ready=[ctld.port_ready(port), ctld.log_ready("Ready to accept")],
            ready_timeout=10, nodes=[server])
        if srv.error:
            print("%s: redis-server: %s\n%s" % (server, srv.error, srv.result.stderr.decode()))
            return 1
        print("%s: redis-server ready %.1f ms after exec"
              % (server, srv.result.timings.time_to_ready * 1000))
        results = await c.run(["redis-benchmark", "-h", addr, "-p", str(port), "-n",
                               str(requests), "-c", "8", "-q", "-t", "set,get"],
                              timeout=300, nodes=clients)
        total = {}
        for r in results:
            if not r.ok:
                print("%s: failed: %s (status %s) %s"
                      % (r.host, r.error, r.status, r.stderr.decode().strip()))
                continue
            got = rates(r.stdout)
            for op, rate in got.items():
                total[op] = total.get(op, 0.0) + rate
            print("%s: %s in %.2f s" % (r.host, ", ".join("%s %.0f/s" % kv for kv in
                                                         sorted(got.items())), r.timings.wall))
        print("total: " + ", ".join("%s %.0f/s" % kv for kv in sorted(total.items())))
        return 0 if all(r.ok for r in results) and total else 1
    # leaving the block killed redis-server (the cluster started it)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", help="daemons, a node set: the first serves")
    ap.add_argument("--local", type=int, metavar="N", help="start N daemons on loopback")
    ap.add_argument("--daemon", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "..", "build", "ctld-bpf"),
                    help="the ctld-bpf for --local")
    ap.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CA"))
    ap.add_argument("--port", type=int, default=6399)
    ap.add_argument("--requests", type=int, default=20000)
    args = ap.parse_args()
    if bool(args.hosts) == bool(args.local):
        ap.error("give --hosts or --local")
    if args.hosts:
        return asyncio.run(experiment(ctld.aio.node_list(args.hosts), args.tls, args.port,
                                      args.requests))
    from ctld.testing import Daemon
    daemons = []
    try:
        for _ in range(args.local):
            daemons.append(Daemon(args.daemon, name="ctld-example"))
        return asyncio.run(experiment([d.tcp for d in daemons], None, args.port, args.requests))
    finally:
        for d in daemons:
            d.cleanup()


if __name__ == "__main__":
    sys.exit(main())

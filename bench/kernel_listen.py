# SPDX-License-Identifier: BSD-2-Clause
"""kernel_listen.py - listen() returns -> the client holds PortListening,
with the fexit confirmation and with the sock_diag round trip, side by side
in one run: two daemons on the same kernel (--listen-confirm fexit and
--listen-confirm sock_diag), listen_bench against each, chunks interleaved
so drift hits both alike. Meant for a kernel matrix guest that allows BPF
trampolines (`make bench-kernels`): under emulation absolute times mean
little, the ratio is the result.

usage: kernel_listen.py BUILD OUT.json [TRIALS]
"""
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402
from measure import summary  # noqa: E402
from procs import P, daemon, say, tool  # noqa: E402

MODES = ("fexit", "sock_diag")


def confirmation(d):
    with d.client() as c:
        return c.stats().listen_confirmation


def measure(trials):
    daemons = {m: daemon(bpf=True, extra=("--listen-confirm", m)) for m in MODES}
    chosen = {m: confirmation(d) for m, d in daemons.items()}
    if chosen["fexit"] != "fexit":
        raise RuntimeError("this kernel gives no fexit path: %s" % chosen["fexit"])
    lb = os.path.join(P.tools, "listen_bench")
    tools = {m: tool([lb, d.socket, "2000"], "listen " + m) for m, d in daemons.items()}
    lat = {m: [] for m in MODES}
    failed = {m: 0 for m in MODES}
    done, chunk = 0, 10
    while done < trials:
        n = min(chunk, trials - done)
        for m in MODES:
            r = tools[m].batch(n)
            lat[m] += r["lat_ns"]
            failed[m] += r["failed"]
        done += n
    out = {m: {"listen_confirmation": chosen[m], "latency_us": summary(lat[m], 1e3),
               "failed": failed[m], "samples_us": [x / 1e3 for x in lat[m]]} for m in MODES}
    for m in MODES:
        s = out[m]["latency_us"]
        say("   %-10s p50 %9.1f us  p99 %9.1f us  (%d trials, %d failed)"
            % (m, s["median"], s["p99"], s["n"], failed[m]))
    return out


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    procs.init(sys.argv[1])
    trials = int(sys.argv[3]) if len(sys.argv) == 4 else 100
    say("== listen() -> PortListening, fexit vs sock_diag, %d trials each" % trials)
    try:
        modes = measure(trials)
    finally:
        procs.cleanup()
    fx, sd = (modes[m]["latency_us"]["median"] for m in MODES)
    result = {"kernel": platform.release(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()),
              "trials": trials, "emulated": os.environ.get("CTLD_TIME_FACTOR", "1") != "1",
              "modes": modes, "p50_ratio_sock_diag_over_fexit": sd / fx if fx else None}
    say("   sock_diag / fexit at p50: %.2fx" % result["p50_ratio_sock_diag_over_fexit"])
    with open(sys.argv[2], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

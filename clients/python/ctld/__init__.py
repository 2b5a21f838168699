# SPDX-License-Identifier: BSD-2-Clause
"""ctld - Python support for ctld-bpf (run with /usr/bin/python3; Debian's
python3-protobuf, and python3-clustershell for node sets).

    import ctld
    with ctld.Client(unix="/run/ctld-bpf.sock") as c:      # one daemon
        out, err, ev = c.run_and_wait(["uname", "-a"])

    async with ctld.Cluster("node[1-64]", tls=(cert, key, ca)) as c:   # many
        for r in await c.run(["uname", "-a"], timeout=30):
            print(r.host, r.exit_code, r.stdout, r.error)

Modules: ctld.client (Client), ctld.aio (Cluster, Connection, Result, Job),
ctld.proto (the generated messages as ctld.pb, framing, readiness
conditions), ctld.testing (Daemon: a ctld-bpf of one's own for tests),
ctld.pytest_plugin (the ctld_daemon fixture), ctld.servers (configs for real
servers started as jobs).
"""
from .aio import Cluster, Connection, Job, NodeError, Result, Timings  # noqa: F401
from .client import Client  # noqa: F401
from .proto import (CtldError, ProtocolError, file_ready, log_ready, pb,  # noqa: F401
                    port_ready)


def __getattr__(name):
    """WORKER_CLASS: ClusterShell's `clush -R ctld` first imports
    ClusterShell.Worker.Ctld (where `make install-python` puts the worker)
    and, when that is missing, the module named `ctld`, which is this
    package: the worker in the source tree (clients/clustershell/Ctld.py on
    PYTHONPATH) is then found too."""
    if name != "WORKER_CLASS":
        raise AttributeError("module 'ctld' has no attribute %r" % name)
    try:
        from ClusterShell.Worker.Ctld import WORKER_CLASS
    except ImportError:
        from Ctld import WORKER_CLASS
    return WORKER_CLASS

# SPDX-License-Identifier: BSD-2-Clause
"""ctld_client - the module the end-to-end tests grew up with, now a thin
face of the package ctld (clients/python/ctld/): the same names, and a
Client that leaves its jobs running when it is closed, as it always did
(ctld.Client kills them unless keep_jobs=True).

    from ctld_client import Client
    with Client(unix="/run/ctld-bpf.sock") as c:
        job = c.run(["sh", "-c", "echo hi"])
        for ev in c.events(job):          # Launched, Output..., Exited
            print(ev)

New code: `import ctld` (ctld.Client, ctld.Cluster).
"""
from ctld import client as _client
from ctld.proto import (MAX_FRAME, PROTOCOL_VERSION, TERMINAL, CtldError,  # noqa: F401
                        ProtocolError, file_ready, frame, log_ready, pb, port_ready)


class Client(_client.Client):
    __doc__ = _client.Client.__doc__

    def __init__(self, *args, keep_jobs=True, name="ctld_client.py", **kw):
        super().__init__(*args, keep_jobs=keep_jobs, name=name, **kw)

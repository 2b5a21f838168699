# SPDX-License-Identifier: BSD-2-Clause
"""Ctld.py - a ClusterShell worker that runs commands through ctld-bpf daemons.

    clush -R ctld -w 'node[1-64]' -b uname -r
    clush -R ctld -w '127.0.0.1:7001,127.0.0.1:7002' -u 10 'sleep 1; hostname'

Installed as ClusterShell/Worker/Ctld.py (`make install-python`), which is
where `-R ctld` looks first; from the source tree, PYTHONPATH=
clients/clustershell:clients/python finds it through the package `ctld`
(see ctld/__init__.py). Node names are daemons' TCP addresses, "name" (port
7878) or "name:port".

Design: like ClusterShell's own Ssh worker, one client process per node,
here `ctl -H NODE run --kill-on-disconnect -- sh -c COMMAND`, the command
passed as it is (no %h substitution, as with ssh); the job has
CTLD_NODE (the node's name) and CTLD_RANK (its rank in the node set) in its
environment. ClusterShell's
engine is built around the pipes of per-node processes (ExecClient:
stdout/stderr lines, stdin, exit status, fanout, timeouts), so the worker
stays non-blocking inside that engine without re-implementing TLS and the
protocol on its event loop; ctl is a small C program (no interpreter start
per node) that already does mutual TLS, liveness and exit statuses. ctl's
status is the job's (128+N for signal N, 127 cannot execute; 69 the daemon
cannot be reached, its message on stderr). When ClusterShell's timeout (-u)
kills ctl, the daemon sees the connection close and kills the job's tree
(--kill-on-disconnect): nothing is left running.

Settings (task.info, or the environment for clush): ctld_path / CTLD_CTL
(the ctl binary, default "ctl" on PATH), ctld_options / CTLD_OPTIONS (more
ctl options, e.g. "--tls-cert c.pem --tls-key c.key --tls-ca ca.pem"); the
task's connect_timeout becomes ctl's --connect-timeout.

Copy (--copy/--rcopy) needs the daemon's file transfer and is refused with
that reason until it exists.
"""
import os
import shlex

from ClusterShell.Worker.Exec import ExecClient, ExecWorker
from ClusterShell.Worker.Worker import WorkerError


class CtldClient(ExecClient):
    """The engine client of one node: a ctl process."""

    def _build_cmd(self):
        task = self.worker.task
        ctl = task.info("ctld_path") or os.environ.get("CTLD_CTL") or "ctl"
        options = task.info("ctld_options") or os.environ.get("CTLD_OPTIONS") or ""
        cmd = shlex.split(ctl) + ["-H", str(self.key)] + shlex.split(options)
        connect_timeout = task.info("connect_timeout", 0)
        if connect_timeout and connect_timeout > 0:
            cmd.append("--connect-timeout=%dms" % max(1, connect_timeout * 1000))
        # The command goes to the node's shell as it is, as with ssh (Exec's
        # %h/%n substitution would make every '%' in it an error); the job
        # learns its node and rank from its environment instead.
        cmd += ["run", "--kill-on-disconnect", "--env", "CTLD_NODE=%s" % self.key,
                "--env", "CTLD_RANK=%d" % (self.rank or 0), "--", "sh", "-c", self.command]
        return cmd, None


class WorkerCtld(ExecWorker):
    """ClusterShell worker running commands through ctld-bpf (see the module
    docstring):

        >>> from ClusterShell.Task import task_self
        >>> from ClusterShell.Worker.Ctld import WorkerCtld
        >>> task = task_self()
        >>> w = WorkerCtld("10.0.0.[1-4]:7878", handler=None, timeout=30, command="uname -r")
        >>> task.schedule(w); task.run()
        >>> for out, nodes in task.iter_buffers(): print(nodes, out)
    """

    SHELL_CLASS = CtldClient

    def __init__(self, nodes, handler, timeout=None, **kwargs):
        if kwargs.get("source"):
            raise WorkerError("ctld worker: --copy/--rcopy need the daemon's file transfer "
                              "(put/get), which this protocol version does not have yet")
        ExecWorker.__init__(self, nodes, handler, timeout=timeout, **kwargs)


WORKER_CLASS = WorkerCtld

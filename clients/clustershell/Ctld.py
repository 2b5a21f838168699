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

Copy: --copy runs `ctl put SOURCE DEST/` per node (DEST a directory there;
clush's default is the source's own directory), --rcopy `ctl get SOURCE
DEST` (DEST/<node>/<name>, one directory per node as `ctl get` makes them):
atomic, SHA-256 checked, modes and mtimes kept.
"""
import os
import shlex

from ClusterShell.Worker.Exec import CopyClient, ExecClient, ExecWorker


def _ctl(client):
    """ctl's command line up to its command, for one node (client.key)."""
    task = client.worker.task
    ctl = task.info("ctld_path") or os.environ.get("CTLD_CTL") or "ctl"
    options = task.info("ctld_options") or os.environ.get("CTLD_OPTIONS") or ""
    cmd = shlex.split(ctl) + ["-H", str(client.key)] + shlex.split(options)
    connect_timeout = task.info("connect_timeout", 0)
    if connect_timeout and connect_timeout > 0:
        cmd.append("--connect-timeout=%dms" % max(1, connect_timeout * 1000))
    return cmd


class CtldClient(ExecClient):
    """The engine client of one node: a ctl process."""

    def _build_cmd(self):
        # The command goes to the node's shell as it is, as with ssh (Exec's
        # %h/%n substitution would make every '%' in it an error); the job
        # learns its node and rank from its environment instead.
        return _ctl(self) + ["run", "--kill-on-disconnect", "--env", "CTLD_NODE=%s" % self.key,
                             "--env", "CTLD_RANK=%d" % (self.rank or 0), "--", "sh", "-c",
                             self.command], None


class CtldCopyClient(CopyClient):
    """--copy: `ctl put SOURCE DEST/` (DEST is a directory on the node, as
    clush's default, the source's own directory); --rcopy: `ctl get SOURCE
    DEST`, which writes DEST/<node>/<name> (not ClusterShell's DEST/name.node:
    one directory per node, as `ctl get`). Both atomic and SHA-256 checked;
    modes and mtimes are always kept."""

    def _build_cmd(self):
        if self.reverse:
            return _ctl(self) + ["get", self.source, self.dest], None
        dest = self.dest if self.dest.endswith("/") else self.dest + "/"
        return _ctl(self) + ["put", self.source, dest], None


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
    COPY_CLASS = CtldCopyClient


WORKER_CLASS = WorkerCtld

# SPDX-License-Identifier: BSD-2-Clause
"""ctld.pytest_plugin - a pytest fixture that gives each test a real daemon.

    # conftest.py (or: pytest -p ctld.pytest_plugin)
    pytest_plugins = ["ctld.pytest_plugin"]

    # test_mine.py
    import ctld
    def test_echo(ctld_daemon):
        with ctld.Client(unix=ctld_daemon.socket) as c:
            out, _, ev = c.run_and_wait(["echo", "hi"])
        assert out == b"hi\\n" and ev.exited.exit_code == 0

ctld_daemon is a ctld.testing.Daemon (private socket, ephemeral loopback TCP
port `ctld_daemon.tcp`, its own pin directory), stopped after the test. The
binary: --ctld-daemon PATH, else $CTLD_DAEMON, else ctld-bpf on PATH, else
the source tree's build/ctld-bpf. --ctld-no-bpf runs it without eBPF (it
falls back by itself when it cannot load its programs). Needs root, as the
daemon does. Debian: python3-pytest.
"""
import os
import shutil

import pytest

from .testing import Daemon

_TREE_BUILD = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "..", "..", "build", "ctld-bpf")


def pytest_addoption(parser):
    group = parser.getgroup("ctld")
    group.addoption("--ctld-daemon", default=None, help="the ctld-bpf binary to start")
    group.addoption("--ctld-no-bpf", action="store_true", help="start it with --no-bpf")


def daemon_binary(config):
    """Where the fixture's ctld-bpf comes from (see the module docstring)."""
    for path in (config.getoption("--ctld-daemon"), os.environ.get("CTLD_DAEMON"),
                 shutil.which("ctld-bpf"), _TREE_BUILD):
        if path and os.access(path, os.X_OK):
            return os.path.abspath(path)
    raise pytest.UsageError("ctld: no ctld-bpf binary: give --ctld-daemon PATH or $CTLD_DAEMON")


@pytest.fixture
def ctld_daemon(request):
    """A running ctld-bpf of this test's own (ctld.testing.Daemon)."""
    binary = daemon_binary(request.config)
    with Daemon(binary, bpf=not request.config.getoption("--ctld-no-bpf"), name="ctld-pytest") as d:
        yield d

# SPDX-License-Identifier: BSD-2-Clause
"""ctld - Python support for ctld-bpf.

ctld.testing has a Daemon helper: a ctld-bpf of one's own (private socket,
ephemeral TCP port, unique pin directory) for tests and benchmarks. The
protocol client is ctld_client (clients/python/ctld_client.py).
"""

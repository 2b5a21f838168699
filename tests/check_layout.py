#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""The structure rules of user/ and bpf/, checked on every `make test`:

- no source file directly in user/; every part is a folder;
- ctl/ and daemon/ never include each other; common/ includes only
  common/; client/ only common/ and client/;
- no include circle between modules (a module is a .c with its .h; a
  private header like jobs/job.h or clients/session_priv.h belongs to its
  folder's files and is not a module of its own);
- no file over 600 lines;
- every file starts with an SPDX line and says what lives there;
- the BPF programs ask for no kernel type ids (bpf_core_type_id_kernel):
  libbpf relocates them against a small copy of the kernel's BTF whose
  type ids are not the kernel's (user/daemon/kernel/core_btf.h);
- in tests/e2e, harness.wait_for() is never given scaled(...): it scales
  its timeout itself, and twice scaled is 144x in an emulated guest (a
  failing wait then looks like a hang).

Prints every violation and exits 1 when there is one.
"""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MAX_LINES = 600
ALLOWED = {  # part -> parts it may include
    "common": {"common"},
    "client": {"common", "client"},
    "ctl": {"common", "client", "ctl"},
    "daemon": {"common", "daemon", "spawner"},
    "spawner": {"spawner"},  # the static ctld-spawner program and what it shares
    "tls": {"common", "tls"},  # ctld-tls.so, the only code that links OpenSSL
}
INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)
KERNEL_TYPE_ID = re.compile(r"bpf_core_type_id_kernel|BPF_TYPE_ID_TARGET")
WAIT_FOR_CALL = re.compile(r"(?<![.\w])wait_for\(")


def scaled_wait_for(text):
    """Line numbers of harness wait_for() calls with scaled() in them."""
    found = []
    for m in WAIT_FOR_CALL.finditer(text):
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        if "scaled(" in text[m.end():j]:
            found.append(text.count("\n", 0, m.start()) + 1)
    return found


def e2e_problems():
    problems = []
    e2e = os.path.join(ROOT, "tests", "e2e")
    for f in sorted(os.listdir(e2e)):
        if f.endswith(".py"):
            with open(os.path.join(e2e, f)) as fh:
                for line in scaled_wait_for(fh.read()):
                    problems.append("tests/e2e/%s:%d: wait_for() scales its timeout itself; "
                                    "no scaled() in it" % (f, line))
    return problems


def sources():
    for top in ("user", "bpf"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def module_of(path):
    """user/daemon/jobs/jobs.c -> daemon/jobs/jobs"""
    return os.path.splitext(path[len("user/"):])[0] if path.startswith("user/") else None


def main():
    problems = []
    graph = {}
    for path in sources():
        with open(os.path.join(ROOT, path)) as f:
            text = f.read()
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append("%s: %d lines (at most %d)" % (path, lines, MAX_LINES))
        if not text.startswith(("// SPDX-License-Identifier", "/* SPDX-License-Identifier")):
            problems.append("%s: no SPDX line first" % path)
        if not re.search(r"^ \* \S+\.[ch] - ", text, re.M) and path.startswith("user/"):
            problems.append("%s: no header comment saying what lives here" % path)
        if path.startswith("bpf/") and path.endswith(".bpf.c") and KERNEL_TYPE_ID.search(text):
            problems.append("%s: asks for a kernel type id, which the small CO-RE BTF "
                            "(core_btf.h) would get wrong" % path)
        if not path.startswith("user/"):
            continue
        parts = path.split("/")
        if len(parts) < 3:
            problems.append("%s: a source file directly in user/" % path)
            continue
        part = parts[1]
        mod = module_of(path)
        for inc in INCLUDE.findall(text):
            target = inc.split("/")[0]
            if target in ALLOWED and target not in ALLOWED.get(part, set()):
                problems.append("%s includes %s: %s/ may not use %s/" % (path, inc, part, target))
            if target in ALLOWED:
                dep = os.path.splitext(inc)[0]
                if dep != mod:
                    graph.setdefault(mod, set()).add(dep)
    problems += cycles(inline_private(graph))
    problems += e2e_problems()
    for p in problems:
        print("layout: " + p)
    return 1 if problems else 0


def is_private(mod):
    """A header shared by the files of one folder only (job.h, *_priv.h)."""
    return mod.endswith("_priv") or mod == "daemon/jobs/job"


def inline_private(graph):
    """A private header's includes count as its includers' own: the files
    of a folder that share one may call each other (they are one module
    family), but what the header brings in must not lead back to them."""
    def deps(mod, seen):
        out = set()
        for d in graph.get(mod, ()):
            if is_private(d):
                if d not in seen:
                    out |= deps(d, seen | {d})
            else:
                out.add(d)
        return out
    return {m: deps(m, {m}) - {m} for m in graph if not is_private(m)}


def cycles(graph):
    """Include circles between modules, each reported once."""
    found, seen = [], set()

    def visit(node, stack):
        if node in stack:
            cycle = stack[stack.index(node):]
            key = frozenset(cycle)
            if key not in seen:
                seen.add(key)
                found.append("include circle: " + " -> ".join(cycle + [node]))
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, stack + [node])

    for node in sorted(graph):
        visit(node, [])
    return found


if __name__ == "__main__":
    sys.exit(main())

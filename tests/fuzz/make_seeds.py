#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""Writes the seed corpus for the fuzz targets (committed under
tests/fuzz/corpus/): one valid frame of every request type, some batches,
and a few known-bad shapes. Run: /usr/bin/python3 tests/fuzz/make_seeds.py build
"""
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "python"))
import ctld_pb2 as pb  # noqa: E402
from google.protobuf.internal.encoder import _VarintBytes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(req):
    body = req.SerializeToString()
    return _VarintBytes(len(body)) + body


def requests():
    yield pb.Request(id=1, hello=pb.Hello(protocol_version=1, client="seed"))
    yield pb.Request(id=2, run=pb.Run(argv=["echo", "hi"], env=["A=1"], cwd="/tmp", name="n",
                                      stdin_pipe=True, timeout_ms=100,
                                      rlimits=[pb.Rlimit(resource="nofile", soft=64, hard=64)]))
    yield pb.Request(id=3, run=pb.Run(argv=[]))
    yield pb.Request(id=4, signal=pb.Signal(job=1, signal=9, main_only=True))
    yield pb.Request(id=5, list=pb.List(after_job=0, running_only=True))
    yield pb.Request(id=6, attach=pb.Attach(job=1, no_output=True))
    yield pb.Request(id=7, detach=pb.Detach(job=1))
    yield pb.Request(id=8, write_stdin=pb.WriteStdin(job=1, data=b"x" * 100, eof=True))
    yield pb.Request(id=9, watch_port=pb.WatchPort(port=8080, addr="127.0.0.1", timeout_ms=10,
                                                   once=True))
    yield pb.Request(id=10, unwatch_port=pb.UnwatchPort(watch=1))
    yield pb.Request(id=11, watch_file=pb.WatchFile(path="/tmp/seed-file", kinds=3,
                                                    size_threshold=10, has_size_threshold=True))
    yield pb.Request(id=12, unwatch_file=pb.UnwatchFile(watch=1))
    yield pb.Request(id=13, stats=pb.Stats())
    yield pb.Request(id=14, ping=pb.Ping(token=1))
    yield pb.Request(id=15, put_file=pb.PutFile(path="/tmp/seed-put", mode=0o644, size=3))
    yield pb.Request(id=16, put_data=pb.PutData(transfer=1, offset=0, data=b"abc", last=True,
                                                sha256=bytes(32)))
    yield pb.Request(id=17, get_file=pb.GetFile(path="/tmp", skip=1, window=65536))
    yield pb.Request(id=18, get_credit=pb.GetCredit(transfer=1, received=0))


def main():
    reqs = list(requests())
    seeds = {"req-%02d" % i: frame(r) for i, r in enumerate(reqs)}
    seeds["batch-all"] = b"".join(frame(r) for r in reqs[1:])
    seeds["bad-prefix"] = b"\xff" * 11
    seeds["bad-body"] = b"\x05\xff\xff\xff\xff\xff"
    seeds["truncated"] = frame(reqs[1])[:-3]
    seeds["too-many-argv"] = frame(pb.Request(id=20, run=pb.Run(argv=["a"] * 65)))
    seeds["unknown-field"] = b"\x05\x08\x05\x98\x06\x01"  # id 5, field 99 = 1
    for target in ("frame", "session"):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            if target == "session" and name == "req-00":
                continue  # the session target sends Hello itself
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()

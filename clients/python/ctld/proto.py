# SPDX-License-Identifier: BSD-2-Clause
"""ctld.proto - the wire format both clients share: the generated messages
(`pb`), framing, addresses and readiness conditions.

Where ctld_pb2 (generated from proto/ctld.proto by protoc) comes from:
installed (`make install-python`), it sits in this package (ctld/ctld_pb2.py);
in the source tree, `make` writes it to build/python/, found relative to this
file, or in $CTLD_PB2_DIR when set (another build directory).
"""
import os
import sys

try:
    from . import ctld_pb2 as pb
except ImportError:
    _here = os.path.dirname(os.path.abspath(__file__))
    for _p in (os.environ.get("CTLD_PB2_DIR"),
               os.path.join(_here, "..", "..", "..", "build", "python")):
        if _p and os.path.isdir(_p) and _p not in sys.path:
            sys.path.insert(0, _p)
    import ctld_pb2 as pb  # noqa: E402

from google.protobuf.internal.decoder import _DecodeVarint  # noqa: E402
from google.protobuf.internal.encoder import _VarintBytes  # noqa: E402

PROTOCOL_VERSION = 1
DEFAULT_PORT = 7878
TERMINAL = ("exited", "exec_failed")
# The largest frame a client accepts from a daemon. The daemon's own frames
# are far smaller (nanopb bounds every message below 64 KiB); a length beyond
# this is a broken or hostile peer, and buffering it would let the peer size
# our memory.
MAX_FRAME = 1 << 20


class CtldError(Exception):
    """The daemon answered a request with an Error."""

    def __init__(self, error):
        self.code = error.code
        self.code_name = pb.ErrorCode.Name(error.code)
        self.text = error.text
        self.sys_errno = error.sys_errno
        super().__init__("%s: %s" % (self.code_name, self.text))


class ProtocolError(Exception):
    """The daemon sent something that is not a frame we can accept."""


def frame(message):
    """Serializes a message as one delimited frame."""
    body = message.SerializeToString()
    return _VarintBytes(len(body)) + body


def parse_frame(buf):
    """(Message, bytes used) for the first complete frame in buf, or
    (None, 0) when buf holds only part of one. Raises ProtocolError for a
    frame longer than MAX_FRAME."""
    if not buf:
        return None, 0
    try:
        length, pos = _DecodeVarint(buf, 0)
    except IndexError:
        if len(buf) >= 10:
            raise ProtocolError("frame length is not a varint")
        return None, 0
    if length > MAX_FRAME:
        raise ProtocolError("frame of %d bytes (at most %d)" % (length, MAX_FRAME))
    if len(buf) < pos + length:
        return None, 0
    msg = pb.Message()
    msg.ParseFromString(bytes(buf[pos:pos + length]))
    return msg, pos + length


def hello_request(name):
    return dict(hello=pb.Hello(protocol_version=PROTOCOL_VERSION, client=name[:64]))


def event_job(ev):
    """The job an event is about, or None (watch events)."""
    return getattr(getattr(ev, ev.WhichOneof("kind")), "job", None)


def event_watch(ev):
    """The watch an event is about, or None (job events)."""
    return getattr(getattr(ev, ev.WhichOneof("kind")), "watch", None)


def split_host(host, default_port=DEFAULT_PORT):
    """"name", "name:port", "[v6]:port", "v6" -> (address, port); ValueError
    for a port that is not a number from 1 to 65535."""
    addr, port = host, str(default_port)
    if host.startswith("["):
        addr, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError("bad host %r: [ADDRESS]:PORT expected" % host)
            port = rest[1:]
    elif host.count(":") == 1:
        addr, port = host.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port in host %r" % host)
    return addr, int(port)


def ready_conditions(ready):
    """Run.ready from one condition, a list of them, or None."""
    if ready is None:
        return []
    if isinstance(ready, pb.ReadyCondition):
        return [ready]
    return list(ready)


def port_ready(port, addr=""):
    """A readiness condition: a process of the job listens on port (addr)."""
    return pb.ReadyCondition(port=pb.PortCondition(port=port, addr=addr))


def log_ready(regex, streams=0):
    """A readiness condition: a line of output matches regex (1 stdout, 2 stderr)."""
    return pb.ReadyCondition(log=pb.LogCondition(regex=regex, streams=streams))


def file_ready(path, min_bytes=None):
    """A readiness condition: path exists (with at least min_bytes)."""
    f = pb.FileCondition(path=path)
    if min_bytes is not None:
        f.min_bytes, f.has_min_bytes = min_bytes, True
    return pb.ReadyCondition(file=f)


def tls_context(tls):
    """A client SSLContext for tls = (cert, key, ca), or tls itself when it
    is one already: mutual TLS 1.3 that checks the daemon's chain against
    ca, not its host name (testbed nodes are addressed by IP)."""
    import ssl
    if isinstance(tls, ssl.SSLContext):
        return tls
    cert, key, ca = tls
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    return ctx

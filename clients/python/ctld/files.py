# SPDX-License-Identifier: BSD-2-Clause
"""ctld.files - copy files to and from a ctld-bpf node over a ctld.Client (or ctld_client.Client).

    from ctld_client import Client
    from ctld import files
    with Client(unix="/run/ctld-bpf.sock") as c:
        files.put(c, "build/server", "/opt/bin/server")    # a file or a directory tree
        files.get(c, "/var/log/app.log", "results/node1")  # -> results/node1/app.log

The protocol is docs/protocol.md "Files": put sends 32 KiB PutData chunks,
WINDOW of them unanswered at most, the last with the SHA-256 of the whole
file; the daemon writes a temporary file beside the destination and renames
it once its digest matches. get receives FileData events, acknowledging them
with GetCredit, and writes each file the same way (temporary name, fsync,
rename, mode and mtime) once its size and SHA-256 equal the daemon's. Memory
stays small whatever the size. Symbolic links and special files inside a
directory are skipped (returned in the result's "skipped").

Errors: ctld_client.CtldError for a refusal by the daemon (its .code and
.text: NOT_FOUND, PERMISSION, SYSTEM with sys_errno ENOSPC, ...), OSError for
local files, TransferError when what arrived is not what the daemon read.
A failed transfer leaves no partial file on either side; run it again (put
asks for no resume, so it starts from the beginning: see PutFile.resume).
"""
import hashlib
import os
import stat

from .proto import CtldError, pb

CHUNK = 32768
WINDOW = 12                # put: chunks in flight
CREDIT_EVERY = 256 << 10   # get: acknowledge received bytes this often


class TransferError(Exception):
    """What arrived does not match what the daemon read (size or SHA-256)."""


def _join(base, rel):
    if not base or not rel:
        return base or rel
    return base.rstrip("/") + "/" + rel


# ------------------------------------------------------------------ put

def _put_file(client, local, remote, user, progress):
    with open(local, "rb") as f:
        st = os.fstat(f.fileno())
        r = client.request(put_file=pb.PutFile(path=remote, mode=stat.S_IMODE(st.st_mode),
                                               size=st.st_size, mtime_ns=st.st_mtime_ns,
                                               user=user))
        transfer, h, offset, in_flight = r.put_file.transfer, hashlib.sha256(), 0, []
        try:
            while True:
                data = f.read(min(CHUNK, st.st_size - offset))
                if len(data) < min(CHUNK, st.st_size - offset):
                    raise OSError("%s became shorter while being sent" % local)
                h.update(data)
                offset += len(data)
                last = offset == st.st_size
                in_flight.append(client.request_nowait(put_data=pb.PutData(
                    transfer=transfer, offset=offset - len(data), data=data, last=last,
                    sha256=h.digest() if last else b"")))
                if progress:
                    progress(len(data))
                while in_flight and (len(in_flight) >= WINDOW or last):
                    reply = client.wait_reply(in_flight.pop(0))
                if last:
                    return reply.file_done
        except BaseException:
            for rid in in_flight:  # their answers, so none is left for a later call
                try:
                    client.wait_reply(rid)
                except CtldError:
                    pass
            raise


def put(client, local, remote, user="", progress=None):
    """Copies the file or directory tree `local` to `remote` (an absolute
    path, the new name). user: write as this user (name or uid) on the node.
    progress(n) is called for every n bytes sent. Returns {"files": [remote
    paths written], "skipped": [local paths not sent]}."""
    result = {"files": [], "skipped": []}
    st = os.stat(local)
    if stat.S_ISREG(st.st_mode):
        _put_file(client, local, remote, user, progress)
        result["files"].append(remote)
        return result
    if not stat.S_ISDIR(st.st_mode):
        raise OSError("%s is not a regular file or a directory" % local)
    for top, dirs, names in os.walk(local):
        rel = os.path.relpath(top, local)
        rel = "" if rel == "." else rel
        client.request(put_file=pb.PutFile(path=_join(remote, rel), directory=True,
                                           mode=stat.S_IMODE(os.stat(top).st_mode), user=user))
        for name in sorted(names):
            path = os.path.join(top, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                result["skipped"].append(path)
                continue
            _put_file(client, path, _join(remote, _join(rel, name)), user, progress)
            result["files"].append(_join(remote, _join(rel, name)))
        for name in list(dirs):
            if os.path.islink(os.path.join(top, name)):
                result["skipped"].append(os.path.join(top, name))
                dirs.remove(name)
    return result


# ------------------------------------------------------------------ get

def _receive(client, info, dest, progress):
    """The FileData events of one transfer into dest (atomically)."""
    tmp = os.path.join(os.path.dirname(dest) or ".",
                       ".%s.ctld-%d" % (os.path.basename(dest), os.getpid()))
    h, received, credited, credits = hashlib.sha256(), 0, 0, set()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        while True:
            msg = client.recv_message()
            if msg.HasField("reply"):
                if msg.reply.id in credits:   # GetCredit answers (NOT_FOUND once it ended)
                    credits.discard(msg.reply.id)
                else:
                    client.pending_replies[msg.reply.id] = msg.reply
                continue
            ev = msg.event
            kind = ev.WhichOneof("kind")
            if kind == "file_data" and ev.file_data.transfer == info.transfer:
                if ev.file_data.offset != received:
                    raise TransferError("data at offset %d, expected %d"
                                        % (ev.file_data.offset, received))
                os.write(fd, ev.file_data.data)
                h.update(ev.file_data.data)
                received += len(ev.file_data.data)
                if progress:
                    progress(len(ev.file_data.data))
                if received - credited >= CREDIT_EVERY:
                    credited = received
                    credits.add(client.request_nowait(get_credit=pb.GetCredit(
                        transfer=info.transfer, received=received)))
            elif kind == "file_end" and ev.file_end.transfer == info.transfer:
                end = ev.file_end
                if end.HasField("error") and end.error.code:
                    raise CtldError(end.error)
                if end.size != received or end.sha256 != h.digest():
                    raise TransferError("%s: %d bytes, sha256 %s; the daemon read %d, %s"
                                        % (dest, received, h.hexdigest(), end.size,
                                           end.sha256.hex()))
                break
            else:
                client.pending_events.append(ev)
        os.fchmod(fd, info.mode)
        os.utime(fd, ns=(info.mtime_ns, info.mtime_ns))
        os.fsync(fd)
        os.rename(tmp, dest)
        tmp = None
    finally:
        os.close(fd)
        if tmp:
            os.unlink(tmp)
    for rid in credits:   # the rest of the GetCredit answers
        try:
            client.wait_reply(rid)
        except CtldError:
            pass


def _get(client, remote, dest, user, progress, result):
    r = client.request(get_file=pb.GetFile(path=remote, user=user)).get_file
    if not r.directory:
        _receive(client, r, dest, progress)
        result["files"].append(dest)
        return
    os.makedirs(dest, mode=0o700, exist_ok=True)
    skip = 0
    while True:
        for e in r.entries:
            if e.kind == pb.ENTRY_FILE or e.kind == pb.ENTRY_DIRECTORY:
                if "/" in e.name or e.name in ("", ".", ".."):
                    raise TransferError("the daemon listed a bad name: %r" % e.name)
                _get(client, _join(remote, e.name), os.path.join(dest, e.name), user,
                     progress, result)
            else:
                result["skipped"].append(_join(remote, e.name))
        if not r.more:
            break
        skip += len(r.entries)
        r = client.request(get_file=pb.GetFile(path=remote, user=user, skip=skip)).get_file
    os.chmod(dest, r.mode)


def get(client, remote, localdir, user="", progress=None):
    """Copies the node's file or directory tree `remote` (absolute) to
    localdir/<basename of remote> (localdir is made if needed; for several
    nodes pass localdir/<node>). Returns {"files": [local paths written],
    "skipped": [remote paths not got: symbolic links, special files]}."""
    os.makedirs(localdir, exist_ok=True)
    remote = remote.rstrip("/") or "/"
    result = {"files": [], "skipped": []}
    _get(client, remote, os.path.join(localdir, os.path.basename(remote)), user, progress,
         result)
    return result

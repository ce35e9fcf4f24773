"""The proc connector (NETLINK_CONNECTOR, CN_IDX_PROC): process fork/exec/exit/uid/gid/sid/comm
events, the light fallback when kernel audit belongs to another daemon.

Sans-IO parsing of `cn_msg` + `proc_event` (bytes in, `ProcEvent`s out) and translation into
event-model exit events; the socket is at the edge (`ProcConnector`).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

from tiercel.common.event import Event, ThreadInfo
from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.translate import CODES, _argv_bytes, _nparams

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

FORK, EXEC, UID, GID, SID, PTRACE, COMM, COREDUMP, EXIT = (
    0x1, 0x2, 0x4, 0x40, 0x80, 0x100, 0x200, 0x40000000, 0x80000000)
NAMES = {FORK: "fork", EXEC: "exec", UID: "uid", GID: "gid", SID: "sid", PTRACE: "ptrace", COMM: "comm",
         COREDUMP: "coredump", EXIT: "exit"}

_CN = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_PE = struct.Struct("=IIQ")  # what, cpu, timestamp_ns

SEES = "process fork/clone, exec, exit, uid/gid/sid changes"
BLIND = "file opens, network connections and every other syscall (rules on them never match)"


class GarbledProcEvent(ValueError):
    pass


@dataclass
class ProcEvent:
    what: int
    cpu: int
    ts_mono: int  # ns since boot
    pid: int
    tgid: int
    data: tuple


def listen_message(pid: int, op: int = PROC_CN_MCAST_LISTEN) -> bytes:
    payload = _CN.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", op)
    return nl.pack_message(nl.NLMSG_DONE, payload, 0, flags=0, pid=pid)


def parse(datagram: bytes) -> list[ProcEvent]:
    """The proc events in one datagram; malformed ones raise GarbledProcEvent."""
    out: list[ProcEvent] = []
    for m in nl.iter_messages(datagram):
        if m.type != nl.NLMSG_DONE:
            continue
        p = m.payload
        if len(p) < _CN.size + _PE.size:
            raise GarbledProcEvent(f"proc event of {len(p)} bytes")
        idx, val, _seq, _ack, ln, _flags = _CN.unpack_from(p)
        if idx != CN_IDX_PROC or val != CN_VAL_PROC:
            continue
        body = p[_CN.size:_CN.size + ln]
        if len(body) < _PE.size:
            raise GarbledProcEvent("proc event shorter than its header")
        what, cpu, ts = _PE.unpack_from(body)
        d = body[_PE.size:]
        try:
            if what == FORK:
                ppid, ptgid, cpid, ctgid = struct.unpack_from("=4I", d)
                out.append(ProcEvent(what, cpu, ts, ppid, ptgid, (cpid, ctgid)))
            elif what == EXEC:
                pid, tgid = struct.unpack_from("=2I", d)
                out.append(ProcEvent(what, cpu, ts, pid, tgid, ()))
            elif what in (UID, GID):
                pid, tgid, r, e = struct.unpack_from("=4I", d)
                out.append(ProcEvent(what, cpu, ts, pid, tgid, (r, e)))
            elif what == SID:
                pid, tgid = struct.unpack_from("=2I", d)
                out.append(ProcEvent(what, cpu, ts, pid, tgid, ()))
            elif what == COMM:
                pid, tgid = struct.unpack_from("=2I", d)
                comm = d[8:24].split(b"\0", 1)[0].decode("utf-8", "replace")
                out.append(ProcEvent(what, cpu, ts, pid, tgid, (comm,)))
            elif what == EXIT:
                pid, tgid, code, sig = struct.unpack_from("=4I", d)
                out.append(ProcEvent(what, cpu, ts, pid, tgid, (code, sig)))
            elif what == 0:
                continue  # the ack of our listen request
            else:
                out.append(ProcEvent(what, cpu, ts, 0, 0, ()))
        except struct.error:
            raise GarbledProcEvent(f"proc event {NAMES.get(what, what)} truncated") from None
    return out


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _proc_thread(tgid: int, tid: int) -> ThreadInfo:
    comm = _read(f"/proc/{tgid}/comm").strip().decode("utf-8", "replace")
    ppid = 0
    uid = gid = 0xFFFFFFFF
    for line in _read(f"/proc/{tgid}/status").splitlines():
        if line.startswith(b"PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith(b"Uid:"):
            uid = int(line.split()[1])
        elif line.startswith(b"Gid:"):
            gid = int(line.split()[1])
    t = ThreadInfo(tid, tgid, ppid, comm=comm, uid=uid, gid=gid)
    try:
        t.exepath = os.readlink(f"/proc/{tgid}/exe")
    except OSError:
        pass
    try:
        t.cwd = os.readlink(f"/proc/{tgid}/cwd")
    except OSError:
        pass
    return t


class ProcTranslator:
    """Proc events -> event-model events. Exec details come from /proc (best effort: a process
    that already exited is reported with what the event itself carries)."""

    def __init__(self):
        # offset from the kernel's monotonic clock to the wall clock
        self.mono_to_wall = time.time_ns() - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.self_pid = os.getpid()

    def translate(self, pe: ProcEvent) -> Event | None:
        ts = pe.ts_mono + self.mono_to_wall
        if pe.tgid == self.self_pid:
            return None
        if pe.what == FORK:
            child_pid, child_tgid = pe.data
            t = _proc_thread(pe.tgid, pe.pid)
            is_thread = child_tgid == pe.tgid
            params = [child_pid, t.comm, b"", pe.pid, pe.tgid, t.ptid, t.cwd, None, None, None, None, None,
                      None, t.comm, None, 8192 | 32768 if is_thread else 0, t.uid, t.gid, pe.pid, pe.tgid, None]
            return self._event(ts, pe.pid, "clone", params, t)
        if pe.what == EXEC:
            t = _proc_thread(pe.tgid, pe.pid)
            argv = [a.decode("utf-8", "surrogateescape") for a in _read(f"/proc/{pe.tgid}/cmdline").split(b"\0")[:-1]]
            params = [0, argv[0] if argv else t.comm, _argv_bytes(argv[1:]), pe.pid, pe.tgid, t.ptid, t.cwd,
                      None, None, None, None, None, None, t.comm, None, None, 0, None, None, 0, None, None, None,
                      None, None, None, t.uid, t.exepath or None, None, t.gid, t.exepath or None]
            t.args = argv[1:]
            t.exe = argv[0] if argv else ""
            return self._event(ts, pe.pid, "execve", params, t)
        if pe.what == EXIT:
            code, sig = pe.data
            return self._event(ts, pe.pid, "procexit", [code, code >> 8, sig, 0, 0], ThreadInfo(pe.pid, pe.tgid))
        if pe.what == UID:
            r, e = pe.data
            return self._event(ts, pe.pid, "setresuid", [0, r, e, 0xFFFFFFFF], ThreadInfo(pe.pid, pe.tgid))
        if pe.what == GID:
            r, e = pe.data
            return self._event(ts, pe.pid, "setresgid", [0, r, e, 0xFFFFFFFF], ThreadInfo(pe.pid, pe.tgid))
        if pe.what == SID:
            return self._event(ts, pe.pid, "setsid", [pe.tgid], ThreadInfo(pe.pid, pe.tgid))
        return None

    @staticmethod
    def _event(ts: int, tid: int, name: str, params: list, thread: ThreadInfo) -> Event:
        n = _nparams(name)
        params = (params + [None] * n)[:n]
        ev = Event(0, ts, tid, CODES[name], params)
        ev.thread = thread
        return ev


class ProcConnector:
    """The connector socket: subscribe, read datagrams, unsubscribe."""

    def __init__(self, rcvbuf: int = 8 << 20):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as e:
            raise OSError(e.errno, f"cannot open the proc connector: {e.strerror}") from None
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
        except OSError:
            pass
        self.sock.bind((os.getpid(), CN_IDX_PROC))
        self.sock.send(listen_message(os.getpid()))
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.send(listen_message(os.getpid(), PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        self.sock.close()

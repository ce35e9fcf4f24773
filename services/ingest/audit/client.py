"""Audit netlink sockets: control requests (status, rules) and the record stream.

Two sockets on purpose: the record socket is registered as the audit daemon (the kernel unicasts
every record to it), the control socket carries requests and their acks so they never interleave
with a flood of records.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import time

from tiercel.ingest.audit import netlink as nl


class AuditError(OSError):
    """A refused or failed audit request, with the errno the kernel gave."""


def _open(rcvbuf: int = 0) -> socket.socket:
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_AUDIT)
    except OSError as e:
        raise AuditError(e.errno, f"cannot open the audit netlink socket: {e.strerror}") from None
    if rcvbuf:
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root), beyond rmem_max
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((0, 0))
    return s


class AuditControl:
    """Request/ack conversations with the kernel audit subsystem."""

    def __init__(self, timeout: float = 2.0):
        self.sock = _open()
        self.sock.settimeout(timeout)
        self._seq = int(time.time()) & 0xFFFF

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> AuditControl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, mtype: int, payload: bytes) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.sock.sendto(nl.pack_message(mtype, payload, self._seq), (0, 0))
        return self._seq

    def _replies(self, seq: int):
        """Messages answering `seq` until the ack/error or NLMSG_DONE."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                raise AuditError(errno.ETIMEDOUT, "the kernel did not answer an audit request") from None
            for m in nl.iter_messages(data):
                if m.seq != seq:
                    continue
                yield m

    def request(self, mtype: int, payload: bytes = b"") -> None:
        """Send and wait for the ack; a kernel refusal raises AuditError with its errno."""
        seq = self._send(mtype, payload)
        for m in self._replies(seq):
            if m.type == nl.NLMSG_ERROR:
                err = nl.parse_error(m.payload)
                if err > 0:
                    raise AuditError(err, f"audit request {mtype} refused: {os.strerror(err)}")
                return  # ack (or a positive value, which AUDIT_SET returns for "lost")

    def get_status(self) -> nl.AuditStatus:
        seq = self._send(nl.AUDIT_GET, b"")
        status = None
        for m in self._replies(seq):
            if m.type == nl.AUDIT_GET:
                status = nl.AuditStatus.unpack(m.payload)
            elif m.type == nl.NLMSG_ERROR:
                err = nl.parse_error(m.payload)
                if err > 0:
                    raise AuditError(err, f"cannot read the audit status: {os.strerror(err)}")
            if status is not None:
                # the ack may come before or after the status; a short drain catches a late ack
                self._drain()
                return status

    def _drain(self) -> None:
        self.sock.settimeout(0.0)
        try:
            while True:
                self.sock.recv(1 << 16)
        except (BlockingIOError, TimeoutError):
            pass
        finally:
            self.sock.settimeout(2.0)

    def set_status(self, **values: int) -> None:
        """Set some of enabled, failure, pid, rate_limit, backlog_limit, backlog_wait_time."""
        bits = {"enabled": nl.STATUS_ENABLED, "failure": nl.STATUS_FAILURE, "pid": nl.STATUS_PID,
                "rate_limit": nl.STATUS_RATE_LIMIT, "backlog_limit": nl.STATUS_BACKLOG_LIMIT,
                "backlog_wait_time": nl.STATUS_BACKLOG_WAIT_TIME}
        st = nl.AuditStatus()
        for k, v in values.items():
            st.mask |= bits[k]
            setattr(st, k, v)
        self.request(nl.AUDIT_SET, st.pack())

    def list_rules(self) -> list[nl.AuditRule]:
        seq = self._send(nl.AUDIT_LIST_RULES, b"")
        rules: list[nl.AuditRule] = []
        for m in self._replies(seq):
            if m.type == nl.AUDIT_LIST_RULES:
                rules.append(nl.AuditRule.unpack(m.payload))
            elif m.type == nl.NLMSG_DONE:
                self._drain()
                return rules
            elif m.type == nl.NLMSG_ERROR:
                err = nl.parse_error(m.payload)
                if err > 0:
                    raise AuditError(err, f"cannot list audit rules: {os.strerror(err)}")
        return rules

    def add_rule(self, rule: nl.AuditRule) -> None:
        self.request(nl.AUDIT_ADD_RULE, rule.pack())

    def delete_rule(self, rule: nl.AuditRule) -> None:
        self.request(nl.AUDIT_DEL_RULE, rule.pack())


class AuditReader:
    """The record stream: a socket registered as the audit daemon (pid = this process)."""

    def __init__(self, rcvbuf: int = 32 << 20):
        self.sock = _open(rcvbuf)
        self.registered = False

    def register(self) -> None:
        """Make this socket the kernel's audit daemon; EEXIST means another daemon holds it."""
        st = nl.AuditStatus(mask=nl.STATUS_PID, pid=os.getpid())
        self.sock.settimeout(2.0)
        self.sock.sendto(nl.pack_message(nl.AUDIT_SET, st.pack(), 1), (0, 0))
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                raise AuditError(errno.ETIMEDOUT, "no answer registering as audit reader") from None
            for m in nl.iter_messages(data):
                if m.type == nl.NLMSG_ERROR and m.seq == 1:
                    err = nl.parse_error(m.payload)
                    if err > 0:
                        raise AuditError(err, os.strerror(err))
                    self.registered = True
                    self.sock.setblocking(False)
                    return

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


# --- many datagrams per syscall ---------------------------------------------------------------

class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(_IoVec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20
_libc = None


def _recvmmsg():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = _libc.recvmmsg
            fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
            fn.restype = ctypes.c_int
        except (OSError, AttributeError):
            _libc = False
    return _libc.recvmmsg if _libc else None


class DatagramReader:
    """Reads queued datagrams from a non-blocking socket, up to `slots` per recvmmsg(2) call (one
    syscall instead of one per audit record; Python's socket module has no recvmmsg, so it is
    called through ctypes, with a plain recv loop where that is not available).

    `enobufs` counts the times the kernel reported that the socket buffer overflowed (records
    lost there); `truncated` the datagrams longer than a slot (cut, so unusable)."""

    SLOT = 9216  # an audit record is at most 8970 bytes (MAX_AUDIT_MESSAGE_LENGTH) + header

    def __init__(self, sock: socket.socket, slots: int = 256, use_mmsg: bool = True):
        self.sock = sock
        self.fd = sock.fileno()
        self.enobufs = 0
        self.truncated = 0
        self.slots = slots
        self._fn = _recvmmsg() if use_mmsg else None
        if self._fn is not None:
            self._buf = ctypes.create_string_buffer(slots * self.SLOT)
            self._iov = (_IoVec * slots)()
            self._msgs = (_MMsgHdr * slots)()
            base = ctypes.addressof(self._buf)
            for i in range(slots):
                self._iov[i].iov_base = base + i * self.SLOT
                self._iov[i].iov_len = self.SLOT
                self._msgs[i].msg_hdr.msg_iov = ctypes.pointer(self._iov[i])
                self._msgs[i].msg_hdr.msg_iovlen = 1
            self._bufview = memoryview(self._buf).cast("B")
            self._words = memoryview(self._msgs).cast("B").cast("I")  # msg_len, msg_flags by index
            self._stride = ctypes.sizeof(_MMsgHdr) // 4
            self._len_at = _MMsgHdr.msg_len.offset // 4
            self._flags_at = (_MMsgHdr.msg_hdr.offset + _MsgHdr.msg_flags.offset) // 4
            self._msgs_ptr = ctypes.addressof(self._msgs)

    def read(self, limit: int) -> list[bytes]:
        """Up to `limit` datagrams that are queued now (never waits)."""
        out: list[bytes] = []
        fn = self._fn
        if fn is None:
            recv = self.sock.recv
            for _ in range(limit):
                try:
                    out.append(recv(self.SLOT))
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == errno.ENOBUFS:
                        self.enobufs += 1
                        continue
                    raise
            return out
        words, view, slot = self._words, self._bufview, self.SLOT
        stride, len_at, flags_at = self._stride, self._len_at, self._flags_at
        while len(out) < limit:
            want = min(self.slots, limit - len(out))
            n = fn(self.fd, self._msgs_ptr, want, _MSG_DONTWAIT, None)
            if n < 0:
                err = ctypes.get_errno()
                if err == errno.ENOBUFS:
                    self.enobufs += 1
                    continue
                if err in (errno.EAGAIN, errno.EINTR):
                    break
                raise OSError(err, os.strerror(err))
            end = n * stride
            lens = words[len_at:end:stride].tolist()  # all the lengths in one call
            if max(lens) < slot:  # none filled its slot, so none was cut: the usual case
                off = 0
                for ln in lens:
                    out.append(bytes(view[off:off + ln]))
                    off += slot
            else:
                flags = words[flags_at:end:stride].tolist()
                for i in range(n):
                    if flags[i] & _MSG_TRUNC:
                        self.truncated += 1
                        continue
                    off = i * slot
                    out.append(bytes(view[off:off + lens[i]]))
            if n < want:
                break
        return out

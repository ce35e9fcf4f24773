"""Audit netlink sockets: control requests (status, rules) and the record stream.

Two sockets on purpose: the record socket is registered as the audit daemon (the kernel unicasts
every record to it), the control socket carries requests and their acks so they never interleave
with a flood of records.
"""

from __future__ import annotations

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

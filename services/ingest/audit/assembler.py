"""Assembling audit records into events, sans-IO: records in, complete events out.

The records of one event share the serial of their `audit(ts:serial)` stamp and end with an EOE
record. Records of events from different CPUs may interleave, so several events are kept open at
once; an event also completes when it waits longer than `timeout_ns` (events logged outside a
syscall have no EOE) or when more than `max_open` are open (the oldest goes first). Garbled and
late records are counted, never raised.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.records import (
    GarbledRecord,
    SockAddr,
    execve_args,
    parse_fields,
    parse_sockaddr,
    parse_stamp,
    proctitle,
    untrusted,
    untrusted_bytes,
)


@dataclass
class AuditEvent:
    """The records of one audit event, with accessors for the parts Tiercel reads."""

    serial: int
    ts: int  # ns since epoch (the kernel stamps milliseconds)
    records: list[tuple[int, bytes]] = field(default_factory=list)  # (type, body)
    complete: bool = False  # ended by EOE (False: by timeout or eviction)
    _fields: dict[int, list[dict[str, bytes]]] | None = None

    def all(self, rtype: int) -> list[dict[str, bytes]]:
        """The parsed fields of every record of this type (parsed on first use, per type)."""
        cache = self._fields
        if cache is None:
            cache = self._fields = {}
        got = cache.get(rtype)
        if got is None:
            got = cache[rtype] = [parse_fields(body) for t, body in self.records if t == rtype]
        return got

    def first(self, rtype: int) -> dict[str, bytes] | None:
        recs = self.all(rtype)
        return recs[0] if recs else None

    @property
    def types(self) -> list[int]:
        return [t for t, _ in self.records]

    @property
    def syscall(self) -> dict[str, bytes] | None:
        return self.first(nl.AUDIT_SYSCALL)

    @property
    def argv(self) -> list[str] | None:
        recs = self.all(nl.AUDIT_EXECVE)
        return execve_args(recs) if recs else None

    @property
    def cwd(self) -> str | None:
        r = self.first(nl.AUDIT_CWD)
        return untrusted(r.get("cwd")) if r else None

    @property
    def paths(self) -> list[dict[str, bytes]]:
        """PATH records by item number."""
        return sorted(self.all(nl.AUDIT_PATH), key=lambda r: int(r.get("item", b"0") or 0))

    @property
    def sockaddr(self) -> SockAddr | None:
        r = self.first(nl.AUDIT_SOCKADDR)
        if not r:
            return None
        raw = untrusted_bytes(r.get("saddr"))
        if not raw:
            return None
        try:
            return parse_sockaddr(raw)
        except GarbledRecord:
            return None

    @property
    def proctitle(self) -> list[str]:
        r = self.first(nl.AUDIT_PROCTITLE)
        return proctitle(r.get("proctitle")) if r else []

    @property
    def fd_pair(self) -> tuple[int, int] | None:
        r = self.first(nl.AUDIT_FD_PAIR)
        if not r:
            return None
        try:
            return int(r.get("fd0", b"-1")), int(r.get("fd1", b"-1"))
        except ValueError:
            return None


@dataclass
class AssemblerStats:
    records: int = 0
    events: int = 0
    garbled: int = 0  # records without a valid stamp
    late: int = 0  # records of an event already completed
    incomplete: int = 0  # events completed without their EOE (timeout or eviction)


class Assembler:
    """Feed records with `feed()`, collect completed events; call `expire(now)` regularly."""

    def __init__(self, max_open: int = 256, timeout_ns: int = 1_000_000_000, remember: int = 1024):
        self.max_open = max_open
        self.timeout_ns = timeout_ns
        self.stats = AssemblerStats()
        self._open: OrderedDict[int, tuple[AuditEvent, int]] = OrderedDict()  # serial -> (event, first seen)
        self._done: set[int] = set()
        self._done_order: deque[int] = deque()
        self._remember = remember

    @property
    def open_events(self) -> int:
        return len(self._open)

    def feed(self, rtype: int, payload: bytes, now_ns: int = 0) -> list[AuditEvent]:
        """One record (netlink type and payload). Returns the events it completed (0, 1 or more)."""
        self.stats.records += 1
        try:
            ts, serial, off = parse_stamp(payload)
        except GarbledRecord:
            self.stats.garbled += 1
            return []
        out: list[AuditEvent] = []
        entry = self._open.get(serial)
        if entry is None:
            if serial in self._done or rtype == nl.AUDIT_EOE:
                self.stats.late += 1
                return []
            ev = AuditEvent(serial, ts)
            self._open[serial] = (ev, now_ns)
            if len(self._open) > self.max_open:
                _, (old, _) = self._open.popitem(last=False)
                out.append(self._finish(old, complete=False))
        else:
            ev = entry[0]
        if rtype == nl.AUDIT_EOE:
            del self._open[serial]
            out.append(self._finish(ev, complete=True))
            return out
        ev.records.append((rtype, payload[off:]))
        return out

    def expire(self, now_ns: int) -> list[AuditEvent]:
        """Complete the events that waited longer than the timeout for their EOE."""
        out: list[AuditEvent] = []
        while self._open:
            serial, (ev, seen) = next(iter(self._open.items()))
            if now_ns - seen < self.timeout_ns:
                break
            del self._open[serial]
            out.append(self._finish(ev, complete=False))
        return out

    def flush(self) -> list[AuditEvent]:
        """Complete everything still open (at shutdown)."""
        out = [self._finish(ev, complete=False) for ev, _ in self._open.values()]
        self._open.clear()
        return out

    def _finish(self, ev: AuditEvent, complete: bool) -> AuditEvent:
        ev.complete = complete
        self.stats.events += 1
        if not complete:
            self.stats.incomplete += 1
        self._done.add(ev.serial)
        self._done_order.append(ev.serial)
        if len(self._done_order) > self._remember:
            self._done.discard(self._done_order.popleft())
        return ev

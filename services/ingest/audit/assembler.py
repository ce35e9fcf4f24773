"""Assembling audit records into events, sans-IO: records in, complete events out.

The records of one event share the `ts:serial` stamp of their `audit(ts:serial):` prefix and end
with an EOE record. Records of events from different CPUs may interleave, so several events are
kept open at once; an event also completes when it waits longer than `timeout_ns` (events logged
outside a syscall have no EOE) or when more than `max_open` are open (the oldest goes first).
Garbled and late records are counted, never raised.

Speed matters here (every record of a flood passes through): the stamp is kept as the raw bytes
that key the event, the timestamp and serial are decoded once per event, and record bodies are
parsed only when a translation asks for them.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.records import (
    PATH_FAST_RE,
    PATH_RE,
    GarbledRecord,
    SockAddr,
    execve_args,
    parse_fields,
    parse_sockaddr,
    proctitle,
    untrusted,
    untrusted_bytes,
)

_EOE = nl.AUDIT_EOE
_SYSCALL = nl.AUDIT_SYSCALL


def _stamp_ts(stamp: bytes) -> tuple[int, int]:
    """(ns since epoch, serial) of a `sec.frac:serial` stamp (the kernel writes `%llu.%03lu:%u`);
    ValueError when malformed."""
    if len(stamp) > 15 and stamp[10] == 46 and stamp[14] == 58:  # the usual `ssssssssss.mmm:n`
        ms, serial = stamp[:10] + stamp[11:14], stamp[15:]
        if ms.isdigit() and serial.isdigit():
            return int(ms) * 1_000_000, int(serial)
    colon = stamp.index(b":")
    dot = stamp.find(b".", 0, colon)
    sec = stamp[:dot] if dot >= 0 else stamp[:colon]
    frac = stamp[dot + 1:colon] if dot >= 0 else b""
    serial = stamp[colon + 1:]
    if not (sec.isdigit() and serial.isdigit() and (dot < 0 or frac.isdigit())):
        raise ValueError(stamp)
    ts = int(sec) * 1_000_000_000
    if len(frac) == 3:
        ts += int(frac) * 1_000_000
    elif frac:
        ts += int(frac.ljust(9, b"0")[:9])
    if ts >= 1 << 64:  # the kernel's time is a 64-bit count of ns; more is not a kernel record
        raise ValueError(stamp)
    return ts, int(serial)


class AuditEvent:
    """The records of one audit event, with accessors for the parts Tiercel reads."""

    __slots__ = ("stamp", "serial", "ts", "records", "complete", "_fields")

    def __init__(self, serial: int, ts: int, records: list[tuple[int, bytes]] | None = None,
                 stamp: bytes = b""):
        self.serial = serial
        self.ts = ts  # ns since epoch (the kernel stamps milliseconds)
        self.records = records if records is not None else []  # (type, body)
        self.complete = False  # ended by EOE (False: by timeout or eviction)
        self.stamp = stamp
        self._fields: dict[int, list[dict[str, bytes]]] | None = None

    def __repr__(self) -> str:
        return f"AuditEvent(serial={self.serial}, types={self.types}, complete={self.complete})"

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

    def body(self, rtype: int) -> bytes | None:
        """The unparsed body of the first record of this type."""
        for t, b in self.records:
            if t == rtype:
                return b
        return None

    @property
    def types(self) -> list[int]:
        return [t for t, _ in self.records]

    @property
    def syscall_body(self) -> bytes | None:
        recs = self.records
        if recs and recs[0][0] == _SYSCALL:  # the kernel writes SYSCALL first
            return recs[0][1]
        return self.body(_SYSCALL)

    @property
    def syscall(self) -> dict[str, bytes] | None:
        return self.first(_SYSCALL)

    @property
    def argv(self) -> list[str] | None:
        recs = self.all(nl.AUDIT_EXECVE)
        return execve_args(recs) if recs else None

    @property
    def cwd(self) -> str | None:
        b = self.body(nl.AUDIT_CWD)
        if b is None or not b.startswith(b"cwd="):
            return None
        return untrusted(b[4:].split(b" ", 1)[0])

    @property
    def paths(self) -> list[dict[str, bytes]]:
        """PATH records by item number (all their fields)."""
        return sorted(self.all(nl.AUDIT_PATH), key=lambda r: int(r.get("item", b"0") or 0))

    def path_items(self) -> list[tuple]:
        """PATH records as (item, name token, inode, dev major, dev minor, mode, nametype), bytes
        tokens (None where absent), by item number; one regex pass per record."""
        out = []
        for t, b in self.records:
            if t == nl.AUDIT_PATH:
                m = PATH_FAST_RE.match(b) or PATH_RE.match(b)
                if m is not None:
                    out.append(m.groups())
                else:
                    f = parse_fields(b)
                    dev = f.get("dev", b"")
                    ma, _, mi = dev.partition(b":")
                    out.append((f.get("item", b"0"), f.get("name"), f.get("inode"), ma or None, mi or None,
                                f.get("mode"), f.get("nametype", b"")))
        if len(out) > 1:
            out.sort(key=lambda p: int(p[0]) if p[0].isdigit() else 0)
        return out

    @property
    def sockaddr(self) -> SockAddr | None:
        b = self.body(nl.AUDIT_SOCKADDR)
        if b is None:
            return None
        tok = b[6:].split(b" ", 1)[0] if b.startswith(b"saddr=") else parse_fields(b).get("saddr")
        raw = untrusted_bytes(tok)
        if not raw:
            return None
        try:
            return parse_sockaddr(raw)
        except GarbledRecord:
            return None

    @property
    def proctitle(self) -> list[str]:
        b = self.body(nl.AUDIT_PROCTITLE)
        if b is None:
            return []
        return proctitle(b[10:].split(b" ", 1)[0] if b.startswith(b"proctitle=") else parse_fields(b).get("proctitle"))

    @property
    def fd_pair(self) -> tuple[int, int] | None:
        r = self.first(nl.AUDIT_FD_PAIR)
        if not r:
            return None
        try:
            return int(r.get("fd0", b"-1")), int(r.get("fd1", b"-1"))
        except ValueError:
            return None


class AssemblerStats:
    __slots__ = ("records", "events", "garbled", "late", "incomplete")

    def __init__(self) -> None:
        self.records = 0
        self.events = 0
        self.garbled = 0  # records without a valid stamp
        self.late = 0  # records of an event already completed
        self.incomplete = 0  # events completed without their EOE (timeout or eviction)


class Assembler:
    """Feed records with `feed()` (or whole datagrams with `feed_datagrams()`), collect completed
    events; call `expire(now)` regularly."""

    def __init__(self, max_open: int = 256, timeout_ns: int = 1_000_000_000, remember: int = 1024):
        self.max_open = max_open
        self.timeout_ns = timeout_ns
        self.stats = AssemblerStats()
        self._open: OrderedDict[bytes, tuple[AuditEvent, int]] = OrderedDict()  # stamp -> (event, first seen)
        self._done: set[bytes] = set()
        self._done_order: deque[bytes] = deque()
        self._remember = remember

    @property
    def open_events(self) -> int:
        return len(self._open)

    def feed(self, rtype: int, payload: bytes, now_ns: int = 0) -> list[AuditEvent]:
        """One record (netlink type and payload). Returns the events it completed (0, 1 or more)."""
        out: list[AuditEvent] = []
        self._feed(rtype, payload, now_ns, out)
        return out

    def feed_datagrams(self, datagrams: list[bytes], now_ns: int, out: list[AuditEvent]) -> int:
        """Raw datagrams from the audit socket (one record each, netlink header included): the
        events they complete are appended to `out`. Returns the number of non-record messages
        (acks, errors) skipped. The hot loop of ingest: `_feed` inlined, one copy per record."""
        st = self.stats
        opened = self._open
        done = self._done
        finish = self._finish
        other = 0
        nrec = 0
        # The records of one event nearly always arrive one after the other: `cur` is the
        # `audit(stamp):` prefix of the event the last record went to, and a record starting with
        # it goes to the same event with no search, slice or lookup.
        cur = b"\xff"
        cur_ev: AuditEvent | None = None
        off = 0
        nev = 0
        order, remember = self._done_order, self._remember
        for d in datagrams:
            nrec += 1
            if d.startswith(cur, 16):
                if d[4] == 0x28 and d[5] == 0x05:  # AUDIT_EOE (1320): `_finish(cur_ev, True)` inlined
                    stamp = cur_ev.stamp  # type: ignore[union-attr]
                    del opened[stamp]
                    cur_ev.complete = True  # type: ignore[union-attr]
                    out.append(cur_ev)  # type: ignore[arg-type]
                    nev += 1
                    done.add(stamp)
                    order.append(stamp)
                    if len(order) > remember:
                        done.discard(order.popleft())
                    cur = b"\xff"
                    continue
                start = off + 1 if len(d) > off and d[off] == 32 else off
                body = d[start:].rstrip(b"\0") if d[-1] == 0 else d[start:]
                cur_ev.records.append((d[4] | d[5] << 8, body))  # type: ignore[union-attr]
                continue
            if not d.startswith(b"audit(", 16):
                if len(d) >= 16 and d[4] | d[5] << 8 < 1100:  # netlink control (ack, error): no record
                    other += 1
                    nrec -= 1
                else:
                    st.garbled += 1
                continue
            end = d.find(b"):", 22)
            if end < 0:
                st.garbled += 1
                continue
            rtype = d[4] | d[5] << 8
            stamp = d[22:end]
            entry = opened.get(stamp)
            if entry is None:
                if rtype == _EOE or stamp in done:
                    st.late += 1
                    continue
                try:
                    ts, serial = _stamp_ts(stamp)
                except ValueError:
                    st.garbled += 1
                    continue
                ev = AuditEvent(serial, ts, [], stamp)
                opened[stamp] = (ev, now_ns)
                if len(opened) > self.max_open:
                    _, (old, _) = opened.popitem(last=False)
                    out.append(finish(old, False))
            else:
                ev = entry[0]
            if rtype == _EOE:
                del opened[stamp]
                out.append(finish(ev, True))
                cur = b"\xff"
                continue
            off = end + 2
            cur, cur_ev = d[16:off], ev
            start = off + 1 if len(d) > off and d[off] == 32 else off  # a record may end at its stamp
            body = d[start:].rstrip(b"\0") if d[-1] == 0 else d[start:]
            ev.records.append((rtype, body))
        st.records += nrec
        st.events += nev
        return other

    def _feed(self, rtype: int, payload: bytes, now_ns: int, out: list[AuditEvent]) -> None:
        st = self.stats
        st.records += 1
        end = payload.find(b"):", 6)
        if end < 0 or payload[:6] != b"audit(":
            st.garbled += 1
            return
        stamp = payload[6:end]
        entry = self._open.get(stamp)
        if entry is None:
            if rtype == _EOE or stamp in self._done:
                st.late += 1
                return
            try:
                ts, serial = _stamp_ts(stamp)
            except ValueError:
                st.garbled += 1
                return
            ev = AuditEvent(serial, ts, [], stamp)
            self._open[stamp] = (ev, now_ns)
            if len(self._open) > self.max_open:
                _, (old, _) = self._open.popitem(last=False)
                out.append(self._finish(old, False))
        else:
            ev = entry[0]
        if rtype == _EOE:
            del self._open[stamp]
            out.append(self._finish(ev, True))
            return
        ev.records.append((rtype, payload[end + 3:] if payload[end + 2:end + 3] == b" " else payload[end + 2:]))

    def expire(self, now_ns: int) -> list[AuditEvent]:
        """Complete the events that waited longer than the timeout for their EOE."""
        out: list[AuditEvent] = []
        opened = self._open
        while opened:
            stamp, (ev, seen) = next(iter(opened.items()))
            if now_ns - seen < self.timeout_ns:
                break
            del opened[stamp]
            out.append(self._finish(ev, False))
        return out

    def flush(self) -> list[AuditEvent]:
        """Complete everything still open (at shutdown)."""
        out = [self._finish(ev, False) for ev, _ in self._open.values()]
        self._open.clear()
        return out

    def _finish(self, ev: AuditEvent, complete: bool) -> AuditEvent:
        ev.complete = complete
        st = self.stats
        st.events += 1
        if not complete:
            st.incomplete += 1
        self._done.add(ev.stamp)
        order = self._done_order
        order.append(ev.stamp)
        if len(order) > self._remember:
            self._done.discard(order.popleft())
        return ev

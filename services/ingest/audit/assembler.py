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

from tiercel.ingest.audit import netlink as nl
from tiercel.ingest.audit.records import (
    GarbledRecord,
    SockAddr,
    execve_args,
    parse_fields,
    parse_sockaddr,
    path_item,
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


def record_body(d: bytes, off: int) -> bytes:
    """The body of a record datagram whose `audit(stamp):` prefix ends at `off` (the space after
    it and the NUL padding of the datagram cut)."""
    start = off + 1 if len(d) > off and d[off] == 32 else off  # a record may end at its stamp
    return d[start:].rstrip(b"\0") if d[-1] == 0 else d[start:]


class AuditEvent:
    """The records of one audit event, with accessors for the parts Tiercel reads.

    Records from `Assembler.feed_datagrams` stay the datagrams they came in (`raw`, netlink header
    included; every body starts at `off`, the end of the shared `audit(stamp):` prefix): a body is
    cut out only when an accessor reads it. `records` gives them all as (type, body)."""

    __slots__ = ("stamp", "serial", "ts", "complete", "seen", "raw", "off", "_records", "_fields")

    def __init__(self, serial: int, ts: int, records: list[tuple[int, bytes]] | None = None,
                 stamp: bytes = b"", raw: list[bytes] | None = None, off: int = 0, seen: int = 0):
        self.serial = serial
        self.ts = ts  # ns since epoch (the kernel stamps milliseconds)
        self.complete = False  # ended by EOE (False: by timeout or eviction)
        self.stamp = stamp
        self.seen = seen  # when its first record arrived (ns, the assembler's clock)
        self.raw = raw
        self.off = off
        self._records = records if records is not None else ([] if raw is None else None)
        self._fields: dict[int, list[dict[str, bytes]]] | None = None

    def __repr__(self) -> str:
        return f"AuditEvent(serial={self.serial}, types={self.types}, complete={self.complete})"

    def _body(self, d: bytes) -> bytes:
        return record_body(d, self.off)

    @property
    def records(self) -> list[tuple[int, bytes]]:
        """(type, body) of every record, in arrival order."""
        recs = self._records
        if recs is None:
            body = self._body
            recs = self._records = [(d[4] | d[5] << 8, body(d)) for d in self.raw]  # type: ignore[union-attr]
        return recs

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
        if self._records is None:
            lo, hi = rtype & 0xFF, rtype >> 8
            for d in self.raw:  # type: ignore[union-attr]
                if d[4] == lo and d[5] == hi:
                    return self._body(d)
            return None
        for t, b in self._records:
            if t == rtype:
                return b
        return None

    def changed(self, rtype: int, last: bytes | None) -> bytes | None:
        """The body of the first record of this type when it differs from `last` (None when it
        is the same or absent): a process's CWD repeats event after event, and is compared in
        place in its datagram, with no copy."""
        if self._records is None:
            lo, hi = rtype & 0xFF, rtype >> 8
            off = self.off
            for d in self.raw:  # type: ignore[union-attr]
                if d[4] == lo and d[5] == hi:
                    if last is not None and d[-1] != 0:
                        start = off + 1 if len(d) > off and d[off] == 32 else off
                        if len(d) - start == len(last) and d.startswith(last, start):
                            return None
                    body = record_body(d, off)
                    return None if body == last else body
            return None
        body = self.body(rtype)
        return None if body == last else body

    @property
    def types(self) -> list[int]:
        return [t for t, _ in self.records]

    def syscall_span(self) -> tuple[bytes, int, int] | None:
        """The SYSCALL record's body as (buffer, start, end), read in place from its datagram on
        the hot path (no copy); None when the event has none."""
        raw = self.raw
        if raw and self._records is None:
            d = raw[0]
            if d[4] == 0x14 and d[5] == 0x05:  # AUDIT_SYSCALL (1300): the kernel writes it first
                off = self.off
                start = off + 1 if len(d) > off and d[off] == 32 else off
                return d, start, len(d) if d[-1] != 0 else max(start, len(d.rstrip(b"\0")))
        b = self.body(_SYSCALL)
        return None if b is None else (b, 0, len(b))

    @property
    def syscall_body(self) -> bytes | None:
        span = self.syscall_span()
        return None if span is None else span[0][span[1]:span[2]]

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
        """PATH records as `records.path_item` tuples (item, name token, inode, dev major, dev
        minor, mode, nametype), by item number."""
        if self._records is None:
            off = self.off
            out = [path_item(record_body(d, off)) for d in self.raw  # type: ignore[union-attr]
                   if d[4] == 0x16 and d[5] == 0x05]  # AUDIT_PATH (1302)
        else:
            out = [path_item(b) for t, b in self._records if t == nl.AUDIT_PATH]
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
        self._open: dict[bytes, AuditEvent] = {}  # stamp -> event, oldest first
        self._done: dict[bytes, None] = {}  # stamps of the last `remember` (to 2x) completed events
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
        (acks, errors) skipped. The hot loop of ingest: `_feed` inlined; a record is kept as the
        datagram it came in (no copy, no slice: see AuditEvent)."""
        st = self.stats
        opened = self._open
        done = self._done
        other = 0
        nrec = 0
        # The records of one event nearly always arrive one after the other: `cur` is the
        # `audit(stamp):` prefix of the event the last record went to, and a record starting with
        # it goes to the same event with no search, slice or lookup.
        cur = b"\xff"
        cur_ev: AuditEvent | None = None
        cur_raw: list[bytes] = []
        nev = 0
        for d in datagrams:
            nrec += 1
            if d.startswith(cur, 16):
                if d[4] == 0x28 and d[5] == 0x05:  # AUDIT_EOE (1320): `_finish(cur_ev, True)` inlined
                    stamp = cur_ev.stamp  # type: ignore[union-attr]
                    del opened[stamp]
                    cur_ev.complete = True  # type: ignore[union-attr]
                    out.append(cur_ev)  # type: ignore[arg-type]
                    nev += 1
                    done[stamp] = None
                    cur = b"\xff"
                    continue
                cur_raw.append(d)
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
            ev = opened.get(stamp)
            if ev is None:
                if rtype == _EOE or stamp in done:
                    st.late += 1
                    continue
                try:
                    ts, serial = _stamp_ts(stamp)
                except ValueError:
                    st.garbled += 1
                    continue
                ev = AuditEvent(serial, ts, None, stamp, [], end + 2, now_ns)
                opened[stamp] = ev
                if len(opened) > self.max_open:
                    out.append(self._finish(opened.pop(next(iter(opened))), False))
            elif ev.raw is None:  # opened by `feed`: its records are (type, body) pairs
                if rtype == _EOE:
                    del opened[stamp]
                    out.append(self._finish(ev, True))
                else:
                    ev.records.append((rtype, record_body(d, end + 2)))
                cur = b"\xff"
                continue
            if rtype == _EOE:
                del opened[stamp]
                out.append(self._finish(ev, True))
                cur = b"\xff"
                continue
            cur, cur_ev, cur_raw = d[16:end + 2], ev, ev.raw
            cur_raw.append(d)
        st.records += nrec
        st.events += nev
        if len(done) > 2 * self._remember:
            self._forget()
        return other

    def _forget(self) -> None:
        """Keep the newest `remember` completed stamps (trimmed in bulk: one pass per `remember`)."""
        done = self._done
        for stamp in list(done)[:len(done) - self._remember]:
            del done[stamp]

    def _feed(self, rtype: int, payload: bytes, now_ns: int, out: list[AuditEvent]) -> None:
        st = self.stats
        st.records += 1
        end = payload.find(b"):", 6)
        if end < 0 or payload[:6] != b"audit(":
            st.garbled += 1
            return
        stamp = payload[6:end]
        ev = self._open.get(stamp)
        if ev is None:
            if rtype == _EOE or stamp in self._done:
                st.late += 1
                return
            try:
                ts, serial = _stamp_ts(stamp)
            except ValueError:
                st.garbled += 1
                return
            ev = AuditEvent(serial, ts, [], stamp, seen=now_ns)
            self._open[stamp] = ev
            if len(self._open) > self.max_open:
                out.append(self._finish(self._open.pop(next(iter(self._open))), False))
        if rtype == _EOE:
            del self._open[stamp]
            out.append(self._finish(ev, True))
            return
        recs = ev.records
        ev.raw = None  # opened by `feed_datagrams`: from now on, (type, body) pairs
        recs.append((rtype, payload[end + 3:] if payload[end + 2:end + 3] == b" " else payload[end + 2:]))

    def expire(self, now_ns: int) -> list[AuditEvent]:
        """Complete the events that waited longer than the timeout for their EOE."""
        out: list[AuditEvent] = []
        opened = self._open
        while opened:
            stamp = next(iter(opened))
            ev = opened[stamp]
            if now_ns - ev.seen < self.timeout_ns:
                break
            del opened[stamp]
            out.append(self._finish(ev, False))
        return out

    def flush(self) -> list[AuditEvent]:
        """Complete everything still open (at shutdown)."""
        out = [self._finish(ev, False) for ev in self._open.values()]
        self._open.clear()
        return out

    def _finish(self, ev: AuditEvent, complete: bool) -> AuditEvent:
        ev.complete = complete
        st = self.stats
        st.events += 1
        if not complete:
            st.incomplete += 1
        done = self._done
        done[ev.stamp] = None
        if len(done) > 2 * self._remember:
            self._forget()
        return ev

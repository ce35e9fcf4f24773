"""Tiercel's own capture format (.tcap): events of any source, already enriched, as they travel
on the bus.

Layout: an 8-byte magic `TCAP\\x00\\x01\\x00\\x00` (format version 1), then length-delimited
records, each a u32 little-endian length followed by that many bytes of msgpack. The first record
is the header map (`created_ns`, `host`, `producer`); every other record is an array
`[1, [item, ...]]` whose items are event wire items (`tiercel.common.wire`) sharing their thread
snapshots within the record. Because the snapshots are taken when the event is written, a .tcap
replays with every field resolved as it was live, without the state engine. gzip is accepted on
read. Unknown record kinds are skipped and counted; a truncated last record is counted.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import msgpack

from tiercel import __version__
from tiercel.common.event import Event
from tiercel.common.wire import Encoder, decode_events

MAGIC = b"TCAP\x00\x01\x00\x00"
REC_EVENTS = 1
MAX_RECORD = 256 * 1024 * 1024
_LEN = struct.Struct("<I")


class TcapError(ValueError):
    pass


class TcapWriter:
    """Write events to a binary stream; each `write_events` call becomes one record."""

    def __init__(self, out: BinaryIO, *, host: str | None = None, record_events: int = 1024):
        self.out = out
        self.host = host or socket.gethostname()
        self.record_events = record_events
        self.events = 0
        self._header_done = False

    def write_header(self, **_ignored: Any) -> None:
        if self._header_done:
            return
        head = msgpack.packb({"created_ns": time.time_ns(), "host": self.host,
                              "producer": f"tiercel {__version__}"}, use_bin_type=True)
        self.out.write(MAGIC + _LEN.pack(len(head)) + head)
        self._header_done = True

    def write_events(self, evs: Iterable[Event]) -> None:
        """Encode now (the snapshots are of the state as it is now) and write."""
        self.write_header()
        evs = list(evs)
        for i in range(0, len(evs), self.record_events):
            enc = Encoder()
            items = [enc.encode(e) for e in evs[i:i + self.record_events]]
            rec = msgpack.packb([REC_EVENTS, items], use_bin_type=True)
            self.out.write(_LEN.pack(len(rec)) + rec)
            self.events += len(items)

    def write_event(self, ev: Event) -> None:
        self.write_events([ev])

    def write_wire(self, items: list[bytes]) -> None:
        """Write wire items already encoded (by one `Encoder`, each right after the state engine
        processed its event, as a live capture does) as one record."""
        self.write_header()
        if items:
            rec = msgpack.packb([REC_EVENTS, items], use_bin_type=True)
            self.out.write(_LEN.pack(len(rec)) + rec)
            self.events += len(items)

    def close(self) -> None:
        self.write_header()
        self.out.flush()


class TcapParser:
    """Sans-IO reader: `feed(bytes)` returns the events completed by them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._started = False
        self.header: dict | None = None
        self.stats: dict[str, int] = {"records": 0, "events": 0}

    def _count(self, k: str, n: int = 1) -> None:
        self.stats[k] = self.stats.get(k, 0) + n

    def feed(self, data: bytes) -> list[Event]:
        buf = self._buf
        buf += data
        out: list[Event] = []
        pos = 0
        if not self._started:
            if len(buf) < len(MAGIC):
                return out
            if bytes(buf[:4]) != MAGIC[:4]:
                raise TcapError("not a Tiercel capture (bad magic)")
            if bytes(buf[4:6]) != MAGIC[4:6]:
                raise TcapError(f"unsupported .tcap version {buf[4]}.{buf[5]}")
            pos = len(MAGIC)
            self._started = True
        n = len(buf)
        while n - pos >= 4:
            ln = _LEN.unpack_from(buf, pos)[0]
            if ln > MAX_RECORD:
                raise TcapError(f"corrupt record length {ln} at offset {pos}")
            if n - pos - 4 < ln:
                break
            body = bytes(buf[pos + 4:pos + 4 + ln])
            pos += 4 + ln
            out.extend(self._record(body))
        del buf[:pos]
        return out

    def _record(self, body: bytes) -> list[Event]:
        self.stats["records"] += 1
        try:
            obj = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
        except Exception:
            self._count("bad_records")
            return []
        if self.header is None and isinstance(obj, dict):
            self.header = obj
            return []
        if not isinstance(obj, list) or len(obj) < 2 or obj[0] != REC_EVENTS or not isinstance(obj[1], list):
            self._count("skipped_records")
            return []
        evs, bad = decode_events(obj[1])
        if bad:
            self._count("bad_events", bad)
        self.stats["events"] += len(evs)
        return evs

    def close(self) -> None:
        if self._buf:
            self._count("truncated_bytes", len(self._buf))
            self._buf.clear()
        if not self._started:
            raise TcapError("empty input: not a Tiercel capture")


def read_tcap(source: str | os.PathLike | BinaryIO | bytes, *, parser: TcapParser | None = None,
              **_kw: Any) -> Iterator[Event]:
    """Every event of a .tcap (gzip or not)."""
    from tiercel.ingest.scap.reader import feed_capture
    return feed_capture(source, parser or TcapParser())

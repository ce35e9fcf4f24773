"""The .scap reader, sans-IO: bytes in, sections / metadata / events out.

`ScapParser.feed(data)` returns every item completed by `data` (a `Section`, a metadata block
from `blocks`, or an `Event` with decoded parameters), in file order; `close()` says whether the
stream ended cleanly. Memory is bounded by the largest block, whatever the file size. The file
edge (`read_scap`) handles gzip and chunked reads.

Events are presented as recorded: enter and exit events, with the parameters the producer wrote
(`nparams` of the event, not of the table). What cannot be read is skipped and counted in
`stats` (unknown block or event code, a block whose framing is fine but whose content is not);
what makes the rest of the stream unreadable (not a capture, corrupt block length) raises
`ScapError` with the offset.

Byte order is a property of each section: its SHB magic says little-endian (every common host) or
big-endian (s390x; libscap refuses those, Tiercel reads them). The parser then reads the whole
section with that order's structs and generated decoders, chosen once at the SHB, so the loop
never tests the order per block or per value.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from tiercel.common import eventtable as et
from tiercel.common import params as P
from tiercel.common.event import Event
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.scap import fastdec
from tiercel.ingest.scap.blocks import ScapError


class _Order:
    """The block and event header structs of one byte order ("<" or ">"), built once."""

    __slots__ = ("order", "bh", "u32", "ev1", "ev2", "ev2c", "cpu", "cpufl")

    def __init__(self, order: str):
        self.order = order
        self.bh = struct.Struct(order + "II")          # block type, total length
        self.u32 = struct.Struct(order + "I")
        self.ev1 = struct.Struct(order + "QQIH")       # ts, tid, len, type
        self.ev2 = struct.Struct(order + "QQIHI")      # + nparams
        self.ev2c = struct.Struct(order + "HQQIHI")    # cpu + the v2 header, one unpack
        self.cpu = struct.Struct(order + "H")
        self.cpufl = struct.Struct(order + "HI")


_ORDERS = {o: _Order(o) for o in P.ORDERS}
_LE = _ORDERS["<"]

# A block larger than this is taken for corruption (libscap's own buffers are far smaller; large
# event blocks carry plugin payloads of a few MiB at most).
MAX_BLOCK = 256 * 1024 * 1024

_NOTIFICATION_E = et.PPME["PPME_NOTIFICATION_E"]
_INFRASTRUCTURE_EVENT_E = et.PPME["PPME_INFRASTRUCTURE_EVENT_E"]


class _Plan:
    """How to read the parameters of one event code (whatever the byte order)."""

    __slots__ = ("nmax", "wide", "hist", "code")

    def __init__(self, info: et.EventInfo):
        self.code = info.code
        self.nmax = info.nparams
        self.wide = info.large_payload
        # v1 nparams candidates: counts any producer declared, largest first, then a countdown.
        seen = set()
        order = []
        for n in sorted(info.hist_nparams, reverse=True) + list(range(info.nparams, -1, -1)):
            if n not in seen:
                seen.add(n)
                order.append(n)
        self.hist = tuple(order)


def _plan_for(code: int, cache: dict[int, _Plan | None]) -> _Plan | None:
    info = et.info(code)
    if info is None or info.unused:
        cache[code] = None
        return None
    p = _Plan(info)
    cache[code] = p
    return p


class _FastPlans(dict):
    """(code, nparams) -> (lengths struct, decoder, length-array size) of one byte order, built
    on first sight (`build`); None for codes the table does not know (the generic path counts
    them)."""

    def __init__(self, order: str) -> None:
        super().__init__()
        self.order = order

    def build(self, key: tuple[int, int]):
        code, n = key
        info = et.info(code)
        if info is None or info.unused or n > 4096:
            plan = None
        else:
            wide = info.large_payload
            plan = (fastdec.lens_struct(n, wide, self.order), fastdec.decoder(code, n, self.order),
                    n * (4 if wide else 2))
        self[key] = plan
        return plan


class ScapParser:
    """Incremental parser of a .scap byte stream (already decompressed)."""

    def __init__(self) -> None:
        self._buf = b""             # bytes of an incomplete block, kept for the next feed
        self._offset = 0            # file offset of _buf[0]
        # the current section's byte order; (code, nparams) -> (lengths struct, decoder,
        # length-array size) for v2 events, one table per byte order met
        self._o = _LE
        self._fast: _FastPlans = _FastPlans("<")
        self._fast_by_order: dict[str, _FastPlans] = {"<": self._fast}
        self._started = False
        self._in_events = False
        self.section: B.Section | None = None
        self.num = 0                # events delivered so far (evt.num of the last one)
        self.stats: dict[str, int] = {"blocks": 0, "events": 0, "sections": 0}
        self._plans: dict[int, _Plan | None] = {}
        self._closed = False

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def _switch_order(self):
        """A section header whose magic reads swapped: the section has the other byte order.
        Returns the hot loop's new locals."""
        o = _ORDERS[">" if self._o.order == "<" else "<"]
        self._o = o
        fast = self._fast_by_order.get(o.order)
        if fast is None:
            fast = self._fast_by_order[o.order] = _FastPlans(o.order)
        self._fast = fast
        return o.bh.unpack_from, o.u32.unpack_from, o.ev2c.unpack_from, fast

    # -- public API ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return every item they complete."""
        # The loop allocates thousands of objects and no reference cycles: the cyclic GC would
        # only rescan them, again and again (it costs more than parsing). Paused meanwhile.
        if gc.isenabled():
            gc.disable()
            try:
                return self._feed(data)
            finally:
                gc.enable()
        return self._feed(data)

    def _feed(self, data: bytes) -> list[Any]:
        if self._buf:
            buf = bytes(self._buf) + bytes(data)
        else:
            buf = bytes(data)
        out: list[Any] = []
        append = out.append
        pos = 0
        n = len(buf)
        ev_blocks = B.EV_BLOCKS
        shb = B.SHB
        swapped = B.MAGIC_SWAPPED
        o = self._o
        bh = o.bh.unpack_from
        u32 = o.u32.unpack_from
        ev2 = o.ev2c.unpack_from
        fast = self._fast
        stats = self.stats
        nblocks = nevents = 0
        num = self.num
        while n - pos >= 8:
            btype, total = bh(buf, pos)
            # A section header's magic decides the byte order before its length can be trusted
            # (the SHB type reads the same both ways); checked where a block is not the common
            # well-formed event block, so the hot path pays nothing for it.
            if total < 12 or total > MAX_BLOCK or not self._started:
                if btype == shb:
                    if n - pos < 12:
                        break
                    if u32(buf, pos + 8)[0] == swapped:
                        bh, u32, ev2, fast = self._switch_order()
                        continue
                elif not self._started:
                    raise ScapError("not a .scap capture: the first block is not a section header "
                                    f"(0x{btype:08x})")
                if total < 12 or total > MAX_BLOCK:
                    raise ScapError(f"corrupt block at offset {self._offset + pos}: length {total}")
            if n - pos < total:
                if btype == shb and n - pos >= 12 and u32(buf, pos + 8)[0] == swapped:
                    bh, u32, ev2, fast = self._switch_order()
                    continue
                break
            end = pos + total
            if (btype == 0x216 or btype == 0x221) and total >= 40 and self._started:
                # the common case, inline: a v2 event block
                cpu, ts, tid, elen, code, nparams = ev2(buf, pos + 8)
                key = (code, nparams)
                plan = fast.get(key, fast)
                if plan is fast:
                    plan = fast.build(key)
                if plan is not None and elen <= total - 14 and u32(buf, end - 4)[0] == total \
                        and pos + 36 + plan[2] <= end:
                    lst, dec, hdr = plan
                    base = pos + 36
                    lens = lst.unpack_from(buf, base) if nparams else ()
                    off = base + hdr
                    if off + sum(lens) <= pos + 10 + elen:
                        num += 1
                        nevents += 1
                        nblocks += 1
                        if tid >= 0x8000000000000000:
                            tid -= 0x10000000000000000
                        try:
                            vals = dec(buf, off, lens)
                        except (ValueError, IndexError, struct.error, OSError):
                            vals = self._raw_params(buf, off, lens)
                        append(Event(num, ts, tid, code, vals, cpu=cpu))
                        pos = end
                        self._in_events = True
                        continue
            if btype == shb and u32(buf, pos + 8)[0] == swapped:
                bh, u32, ev2, fast = self._switch_order()
                continue
            if u32(buf, end - 4)[0] != total:
                self._count("bad_trailer")
                if btype not in ev_blocks:
                    self._count("skipped_blocks")
                    pos = end
                    continue
            nblocks += 1
            spec = ev_blocks.get(btype)
            if spec is not None and self._started:
                self._in_events = True
                self.num = num
                ev = self._event(buf, pos + 8, end - 4, spec)
                num = self.num
                if ev is not None:
                    append(ev)
            else:
                item = self._meta(btype, buf, pos + 8, end - 4)
                if item is not None:
                    append(item)
            pos = end
        self.num = num
        stats["blocks"] += nblocks
        stats["events"] += nevents
        self._buf = buf[pos:] if pos < n else b""
        self._offset += pos
        return out

    def close(self) -> None:
        """End of input. Leftover bytes are a truncated last block: counted, not fatal."""
        self._closed = True
        if self._buf:
            self._count("truncated_bytes", len(self._buf))
            self._buf = b""
        if not self._started:
            raise ScapError("empty input: not a .scap capture")

    # -- blocks --------------------------------------------------------------------------------

    def _meta(self, btype: int, buf: bytearray, start: int, end: int) -> Any:
        offset = self._offset + start - 8
        if btype == B.SHB:
            sec = B.parse_shb(buf[start:end], offset)
            self._started = True
            self._in_events = False
            self.section = sec
            self.stats["sections"] += 1
            return sec
        if not self._started:
            raise ScapError(f"block 0x{btype:08x} before the section header at offset {offset}")
        if self._in_events:
            self._count("late_metadata")
        body = buf[start:end]
        order = self._o.order
        try:
            if btype in B.MI:
                return B.parse_mi(body, order)
            v = B.PL_VERSIONS.get(btype)
            if v:
                return B.parse_pl(body, v, order)
            v = B.FDL_VERSIONS.get(btype)
            if v:
                return B.parse_fdl(body, v, order)
            v = B.IL_VERSIONS.get(btype)
            if v:
                return B.parse_il(body, v, order)
            v = B.UL_VERSIONS.get(btype)
            if v:
                return B.parse_ul(body, v, order)
        except ScapError:
            self._count("corrupt_blocks")
            return None
        self._count("skipped_blocks")
        return None

    def _event(self, buf: bytearray, start: int, end: int, spec: tuple[int, bool, bool]) -> Event | None:
        version, has_flags, _large = spec
        o = self._o
        dflags = 0
        if has_flags:
            if end - start < 6:
                self._count("corrupt_events")
                return None
            cpu, dflags = o.cpufl.unpack_from(buf, start)
            h = start + 6
        else:
            if end - start < 2:
                self._count("corrupt_events")
                return None
            cpu = o.cpu.unpack_from(buf, start)[0]
            h = start + 2
        avail = end - h
        if version == 2:
            if avail < 26:
                self._count("corrupt_events")
                return None
            ts, tid, elen, code, nparams = o.ev2.unpack_from(buf, h)
            hdr = 26
        else:
            if avail < 22:
                self._count("corrupt_events")
                return None
            ts, tid, elen, code = o.ev1.unpack_from(buf, h)
            nparams = -1
            hdr = 22
        plan = self._plans.get(code)
        if plan is None:
            plan = _plan_for(code, self._plans) if code not in self._plans else None
            if plan is None:
                self._count("unknown_events")
                return None
        if version == 1 and code in (_NOTIFICATION_E, _INFRASTRUCTURE_EVENT_E) and elen - 3 <= avail:
            elen -= 3  # old producers stored len 3 bytes too large for these two
        if elen < hdr or elen > avail:
            self._count("corrupt_events")
            return None
        width = 4 if plan.wide else 2
        base = h + hdr
        ev_end = h + elen
        if nparams < 0:
            nparams = self._infer_nparams(buf, base, ev_end, plan, width, o.order)
            if nparams < 0:
                self._count("corrupt_events")
                return None
        if hdr + nparams * width > elen:
            self._count("corrupt_events")
            return None
        if nparams:
            lens = struct.unpack_from(f"{o.order}{nparams}{'I' if plan.wide else 'H'}", buf, base)
        else:
            lens = ()
        off = base + nparams * width
        if off + sum(lens) > ev_end:
            self._count("corrupt_events")
            return None
        try:
            values = fastdec.decoder(plan.code, nparams, o.order)(buf, off, lens)
        except (ValueError, IndexError, struct.error, OSError):
            values = self._raw_params(buf, off, lens)
        self.num += 1
        self.stats["events"] += 1
        if tid >= 1 << 63:
            tid -= 1 << 64
        ev = Event(self.num, ts, tid, code, values, cpu=cpu)
        if dflags:
            ev.dump_flags = dflags
        return ev

    def _raw_params(self, buf, off: int, lens) -> list[Any]:
        """Parameters that did not decode: kept as raw bytes, counted."""
        self._count("bad_params")
        out = []
        for ln in lens:
            out.append(buf[off:off + ln])
            off += ln
        return out

    @staticmethod
    def _infer_nparams(buf, base: int, ev_end: int, plan: _Plan, width: int, order: str) -> int:
        """v1 events carry no nparams: find the count whose lengths add up to the event length."""
        size = ev_end - base
        for n in plan.hist:
            if n * width > size:
                continue
            lens = struct.unpack_from(f"{order}{n}H", buf, base) if n else ()
            if n * width + sum(lens) == size:
                return n
        return -1


# --- file edge ----------------------------------------------------------------------------------

CHUNK = 1 << 20


def gunzip_chunks(raw: Iterator[bytes], stats: dict[str, int] | None = None) -> Iterator[bytes]:
    """Decompress a gzip stream chunk by chunk (members concatenated too). A stream cut short (a
    capture whose writer was killed) ends the data, counted as `truncated_gzip`; corrupt
    compressed data is an error."""
    d = zlib.decompressobj(wbits=31)
    fed = False
    pending = b""
    for data in raw:
        data = pending + data
        pending = b""
        while data:
            if not fed and len(data) < 2:
                pending = data  # a member's magic straddles the chunk boundary
                break
            if not fed and data[:2] != b"\x1f\x8b":
                if stats is not None:
                    stats["trailing_garbage"] = stats.get("trailing_garbage", 0) + len(data)
                return
            fed = True
            try:
                out = d.decompress(data)
            except zlib.error as e:
                raise ScapError(f"corrupt compressed capture: {e}") from e
            if out:
                yield out
            if not d.eof:
                break
            data = d.unused_data
            d = zlib.decompressobj(wbits=31)
            fed = False
    if fed and not d.eof and stats is not None:
        stats["truncated_gzip"] = stats.get("truncated_gzip", 0) + 1


def file_chunks(f: BinaryIO, chunk: int = CHUNK) -> Iterator[bytes]:
    while True:
        data = f.read(chunk)
        if not data:
            return
        yield data


def capture_chunks(f: BinaryIO, chunk: int = CHUNK, stats: dict[str, int] | None = None) -> Iterator[bytes]:
    """Decompressed chunks of a capture stream, gzip or not (sniffed from the first bytes)."""
    first = f.read(chunk)
    if not first:
        return

    def raw() -> Iterator[bytes]:
        yield first
        yield from file_chunks(f, chunk)
    if first[:2] == b"\x1f\x8b":
        yield from gunzip_chunks(raw(), stats)
    else:
        yield from raw()


def read_scap(source: str | os.PathLike | BinaryIO | bytes, parser: ScapParser | None = None,
              chunk: int = CHUNK) -> Iterator[Any]:
    """Every item of a capture (path, open binary stream, or bytes; gzip or not), in order."""
    return feed_capture(source, parser or ScapParser(), chunk)


def feed_capture(source: str | os.PathLike | BinaryIO | bytes, parser: Any, chunk: int = CHUNK) -> Iterator[Any]:
    """The I/O edge of a sans-IO capture parser (`feed`, `close`, `stats`): open the source,
    feed it its decompressed chunks, yield what it gives."""
    if isinstance(source, (bytes, bytearray)):
        stream: BinaryIO = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        stream = open(source, "rb")
    else:
        stream = source
    try:
        for data in capture_chunks(stream, chunk, parser.stats):
            yield from parser.feed(data)
        parser.close()
    finally:
        if stream is not source:
            stream.close()

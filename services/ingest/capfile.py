"""Capture files as enriched event streams: the one entry point `replay`, `inspect` and the
benchmarks use. The kind of capture is told by its content, not its name: .scap (gzip or not)
goes through the scap reader and the state engine; Tiercel's own format (.tcap) and k8s audit
JSON are added by their modules.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import Event
from tiercel.ingest.scap import blocks as B
from tiercel.ingest.scap.reader import ScapError, ScapParser, read_scap
from tiercel.ingest.state import StateEngine

_INTERNAL = et.EC["EC_INTERNAL"]
_HIDDEN = frozenset(
    e.code for e in et.EVENTS
    if e.unused or (e.category & et.EC_KIND_MASK) == _INTERNAL or e.name == "container")


def visible(ev: Event) -> bool:
    """What sysdig and Falco show: not the internal bookkeeping events (procinfo, drop,
    container metadata), not events kept only for state (EVF state-only flag)."""
    return ev.code not in _HIDDEN and not ev.dump_flags & B.DF_STATE_ONLY


class CaptureError(ValueError):
    """A capture that cannot be read at all (the message says why)."""


def sniff(head: bytes) -> str:
    """'scap', 'tcap', 'json' or 'unknown' from the first bytes of a (possibly gzipped) capture."""
    if head[:2] == b"\x1f\x8b":
        import zlib
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 64)
        except zlib.error:
            return "unknown"
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "scap"
    if head[:4] == b"TCAP":
        return "tcap"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


class CaptureReader:
    """Read a capture: `events()` yields enriched events; `stats` and `engine` stay inspectable."""

    def __init__(self, path: str | os.PathLike, *, all_events: bool = False, source: str | None = None):
        self.path = os.fspath(path)
        self.all_events = all_events
        self.source = source
        self.engine = StateEngine()
        self.parser = ScapParser()
        self.kind = ""
        self._stream: Any = None

    def position(self) -> int:
        """Bytes of the file read so far (for progress)."""
        try:
            return self._stream.tell() if self._stream is not None else 0
        except (OSError, ValueError):
            return 0

    @property
    def stats(self) -> dict[str, int]:
        out = dict(self.parser.stats)
        out.update(self.engine.stats)
        return out

    def events(self) -> Iterator[Event]:
        try:
            with open(self.path, "rb") as f:
                head = f.read(512)
        except OSError as e:
            raise CaptureError(f"cannot open {self.path}: {e.strerror or e}") from None
        kind = self.source_kind(head)
        self.kind = kind
        if kind == "scap":
            try:
                self._stream = open(self.path, "rb")
            except OSError as e:
                raise CaptureError(f"cannot open {self.path}: {e.strerror or e}") from None
            try:
                for ev in self.engine.run(read_scap(self._stream, self.parser)):
                    if self.all_events or visible(ev):
                        yield ev
            except ScapError as e:
                raise CaptureError(f"{self.path}: {e}") from None
            finally:
                self._stream.close()
            return
        if kind == "tcap":
            from tiercel.ingest import tcap
            tp = tcap.TcapParser()
            self.parser.stats = tp.stats
            try:
                for ev in tcap.read_tcap(self.path, parser=tp):
                    if self.all_events or visible(ev):
                        yield ev
            except tcap.TcapError as e:
                raise CaptureError(f"{self.path}: {e}") from None
            return
        if kind == "json":
            from tiercel.ingest import k8saudit
            src = self.source if self.source not in (None, "syscall") else None
            yield from k8saudit.read_audit_file(self.path, source=src, stats=self.parser.stats)
            return
        if not head:
            return
        raise CaptureError(f"{self.path}: not a capture Tiercel can read (neither .scap, .tcap nor k8s audit JSON)")

    def source_kind(self, head: bytes) -> str:
        """The reader for this file: from its content; a forced source only picks among the
        readers that can produce it."""
        k = sniff(head)
        if self.source is None or k == "tcap":
            return k
        if self.source == "syscall":
            return k if k in ("scap", "tcap") else "scap"
        return "json"


def read_capture(path: str | os.PathLike, *, all_events: bool = False, source: str | None = None,
                 **_kw: Any) -> Iterator[Event]:
    """The events of a capture, enriched (thread, fd, user, container), in order; evt.num counts
    every event of the file, the hidden ones too (as sysdig numbers them)."""
    return CaptureReader(path, all_events=all_events, source=source).events()

"""Reading a capture for `tiercel replay`: the kind of capture is told by its content, not its name.

- scap (pcapng-style section header block 0x0A0D0D0A, possibly gzipped) -> syscall events through
  the ingest reader and state engine;
- k8s audit JSON (an `Event`, an `EventList`, or one JSON object per line) -> k8s_audit events,
  read as Falco's k8saudit plugin reads them: anything else is reported and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tiercel.common.event import Event

SCAP_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
NOT_AUDIT = "data not recognized as a k8s audit event"
MAX_AUDIT_EVENT = 64 << 20


class TraceError(ValueError):
    """The capture cannot be read at all."""


def sniff(head: bytes) -> str:
    """'scap', 'json' or 'unknown' from the first bytes of a capture."""
    if head.startswith(SCAP_MAGIC) or head.startswith(GZIP_MAGIC):
        return "scap"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def read_trace(path: str, warn: Callable[[str], None] = lambda m: None) -> Iterator[Any]:
    """Events of a capture file, in order."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise TraceError(f"cannot open capture {path}: {e.strerror or e}") from None
    kind = sniff(head)
    if kind == "scap":
        yield from _scap_events(path)
    elif kind == "json":
        with open(path, "rb") as f:
            data = f.read()
        yield from k8s_audit_events(data, warn)
    elif not head:
        return
    else:
        raise TraceError(f"{path}: not a capture Tiercel can read (neither scap nor k8s audit JSON)")


def _scap_events(path: str) -> Iterator[Any]:
    from tiercel.ingest.capfile import read_capture  # the ingest reader + state engine

    try:
        yield from read_capture(path, source="syscall")
    except ValueError as e:
        raise TraceError(str(e)) from None


def k8s_audit_events(data: bytes, warn: Callable[[str], None] = lambda m: None,
                     first_num: int = 1) -> Iterator[Event]:
    """k8s_audit events from audit JSON, split and converted by the ingest webhook's sans-IO code
    (each event's time is its stageTimestamp, as the plugin's); anything that is not an audit
    event is reported as Falco's k8saudit plugin reports it, and skipped."""
    from tiercel.ingest.k8s_webhook import BadRequest, split_events, to_event

    try:
        events, bad = split_events(data, MAX_AUDIT_EVENT)
    except BadRequest as e:
        warn(f"{NOT_AUDIT}: {e.args[0] if e.args else e}")
        return
    for _reason, n in bad.items():
        for _ in range(n):
            warn(NOT_AUDIT)
    for num, (obj, raw) in enumerate(events, first_num):
        evt = to_event(obj, raw)
        evt.num = num
        yield evt

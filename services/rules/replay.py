"""Reading a capture for `tiercel replay`: the kind of capture is told by its content, not its name.

- scap (pcapng-style section header block 0x0A0D0D0A, possibly gzipped) -> syscall events through
  the ingest reader and state engine;
- k8s audit JSON (an `Event`, an `EventList`, or one JSON object per line) -> k8s_audit events,
  read as Falco's k8saudit plugin reads them: anything else is reported and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from tiercel.common.event import K8S_AUDIT, Event

SCAP_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
NOT_AUDIT = "data not recognized as a k8s audit event"


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
    from tiercel.ingest.capture import read_capture  # the events helper's reader + state engine

    try:
        yield from read_capture(path)
    except ValueError as e:
        raise TraceError(f"{path}: {e}") from None


def _ts(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        s = text.replace("Z", "+00:00")
        frac_ns = 0
        if "." in s:
            head, rest = s.split(".", 1)
            digits = ""
            for ch in rest:
                if ch.isdigit():
                    digits += ch
                else:
                    break
            tz = rest[len(digits):]
            frac_ns = int((digits + "000000000")[:9])
            s = head + tz
        dt = datetime.fromisoformat(s)
        return int(dt.timestamp()) * 1_000_000_000 + frac_ns
    except ValueError:
        return None


def audit_events_of(doc: Any) -> list[dict] | None:
    """The audit events in one decoded JSON value, or None when it is not audit data."""
    if isinstance(doc, dict):
        kind = doc.get("kind")
        if kind == "Event":
            return [doc]
        if kind == "EventList" and isinstance(doc.get("items"), list):
            return [e for e in doc["items"] if isinstance(e, dict)]
        return None
    if isinstance(doc, list):
        out = []
        for d in doc:
            got = audit_events_of(d)
            if got is None:
                return None
            out.extend(got)
        return out
    return None


def k8s_audit_events(data: bytes, warn: Callable[[str], None] = lambda m: None,
                     first_num: int = 1) -> Iterator[Event]:
    """k8s_audit events from audit JSON; each event's time is its stageTimestamp (as the plugin)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        warn(NOT_AUDIT)
        return
    docs: list[Any] = []
    try:
        docs = [json.loads(text)]
    except ValueError:
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except ValueError:
                warn(f"{NOT_AUDIT}: invalid JSON")
    num = first_num
    for doc in docs:
        events = audit_events_of(doc)
        if events is None:
            warn(NOT_AUDIT)
            continue
        for e in events:
            ts = _ts(e.get("stageTimestamp")) or _ts(e.get("requestReceivedTimestamp")) or 0
            from tiercel.common import eventtable as et

            evt = Event(num, ts, -1, et.PPME_PLUGINEVENT_E, source=K8S_AUDIT, payload=e)
            num += 1
            yield evt

"""Kubernetes audit files as `k8s_audit` events: an audit `Event`, an `EventList`, a JSON array of
them, or JSON lines (one object per line, as the API server's log backend writes).

Each audit event becomes a plugin event (code `pluginevent`, params `[plugin id, raw JSON]`) whose
`payload` is the parsed object and whose time is its `stageTimestamp` (falling back to
`requestReceivedTimestamp`), as Falco's k8saudit plugin does. Documents that are not audit data
are counted (`not_audit`) and skipped, unless a source is forced: then each JSON object is one
event of that source (a generic JSON source).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import K8S_AUDIT, Event

K8SAUDIT_PLUGIN_ID = 1  # the k8saudit plugin's registered id


def parse_time(text: Any) -> int:
    """RFC 3339 with nanoseconds -> ns since epoch; 0 when missing or malformed."""
    if not isinstance(text, str) or not text:
        return 0
    s = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    frac = 0
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac = int((rest[:i] + "000000000")[:9]) if i else 0
        s = head + rest[i:]
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return 0
    if dt.tzinfo is None:
        return 0
    return int(dt.timestamp()) * 1_000_000_000 + frac


def audit_events_of(doc: Any) -> list[dict] | None:
    """The audit events in one JSON value, or None when it is not audit data."""
    if isinstance(doc, dict):
        kind = doc.get("kind")
        if kind == "Event":
            return [doc]
        if kind == "EventList" and isinstance(doc.get("items"), list):
            return [e for e in doc["items"] if isinstance(e, dict)]
        return None
    if isinstance(doc, list):
        out: list[dict] = []
        for d in doc:
            got = audit_events_of(d)
            if got is None:
                return None
            out.extend(got)
        return out
    return None


def documents(data: bytes, stats: dict[str, int] | None = None) -> list[Any]:
    """The JSON documents of a file: one whole document, else one per line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _count(stats, "not_utf8")
        return []
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    docs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            _count(stats, "bad_json")
    return docs


def _count(stats: dict[str, int] | None, key: str, n: int = 1) -> None:
    if stats is not None:
        stats[key] = stats.get(key, 0) + n


def is_audit(data: bytes) -> bool:
    """Does the content look like k8s audit data (used to pick the source)?"""
    docs = documents(data)
    return bool(docs) and audit_events_of(docs[0]) is not None


def to_event(obj: dict, num: int = 0) -> Event:
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    ts = parse_time(obj.get("stageTimestamp")) or parse_time(obj.get("requestReceivedTimestamp"))
    return Event(num, ts, -1, et.PPME_PLUGINEVENT_E, [K8SAUDIT_PLUGIN_ID, raw], source=K8S_AUDIT, payload=obj)


def events_from_bytes(data: bytes, *, source: str | None = None, stats: dict[str, int] | None = None,
                      first_num: int = 1) -> Iterator[Event]:
    num = first_num
    for doc in documents(data, stats):
        evs = audit_events_of(doc)
        if evs is not None and source in (None, K8S_AUDIT):
            for obj in evs:
                yield to_event(obj, num)
                num += 1
        elif source is not None and source != K8S_AUDIT:
            for obj in (doc if isinstance(doc, list) else [doc]):
                raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
                yield Event(num, 0, -1, et.PPME_PLUGINEVENT_E, [0, raw], source=source, payload=obj)
                num += 1
        else:
            _count(stats, "not_audit")


def read_audit_file(path: str | os.PathLike, *, source: str | None = None,
                    stats: dict[str, int] | None = None) -> Iterator[Event]:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        import gzip
        data = gzip.decompress(data)
    yield from events_from_bytes(data, source=source, stats=stats)

"""Alerts as the API hands them out: Falco's JSON alert from the bus turned into `falco.outputs.response`.

Sans-IO. An alert is decoded and serialized once, when it arrives; every subscriber then writes the
same bytes. What differs per subscriber (`dropped_before`) is appended as one extra field, which
protobuf's "last field wins" merge makes equivalent to setting it.

The mapping follows Falco 0.43's gRPC output (outputs_grpc.cpp): `priority` and `source_deprecated`
parsed as the schema enums (an unknown source is PLUGIN, an unknown priority is a bad alert),
`output_fields` all strings with non-string values JSON-dumped, `time` from the alert's `time`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tiercel.common import bus
from tiercel.pb.falco import outputs_pb2, schema_pb2

_PRIORITY = schema_pb2.priority
_SOURCE = schema_pb2.source
PLUGIN = _SOURCE.Value("PLUGIN")

# Lowercase long names, index = enum number (0 = emergency ... 7 = debug).
PRIORITY_NAMES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$")

# Field 12 (dropped_before), wire type 0 (varint): tag byte (12 << 3) | 0.
_DROPPED_BEFORE_TAG = b"\x60"
# Field 1 of `batch` (alerts), wire type 2 (length-delimited).
_BATCH_ALERTS_TAG = b"\x0a"


# Enum numbers by name, as dict lookups: EnumTypeWrapper.Value is Python code, twice per alert.
_PRIORITY_BY_NAME = dict(_PRIORITY.items())
_SOURCE_BY_NAME = dict(_SOURCE.items())


def priority_number(name: str) -> int:
    """Falco's priority name as the enum number; accepts any alias, any case and `info`."""
    n = _PRIORITY_BY_NAME.get(name)
    if n is not None:
        return n
    try:
        return _PRIORITY.Value(name)
    except ValueError:
        low = name.strip().lower()
        if low == "info":
            low = "informational"
        try:
            return PRIORITY_NAMES.index(low)
        except ValueError:
            raise bus.BadEnvelope("priority", f"unknown priority {name!r}") from None


def source_enum(source: str) -> int:
    """The deprecated source enum as Falco filled it: a known alias, else PLUGIN."""
    return _SOURCE_BY_NAME.get(source, PLUGIN)


_base_cache: dict[str, int] = {}


def parse_time(text: str) -> tuple[int, int]:
    """RFC 3339 time with up to nanosecond digits as (seconds, nanos) since the epoch."""
    m = _TIME.match(text.strip())
    if not m:
        raise bus.BadEnvelope("time", f"alert time {text!r} is not an RFC 3339 time")
    base, frac, tz = m.groups()
    nanos = int((frac or "0").ljust(9, "0"))
    key = base + (tz or "Z")
    sec = _base_cache.get(key)
    if sec is None:
        tz = tz or "Z"
        if tz != "Z" and ":" not in tz:
            tz = tz[:3] + ":" + tz[3:]
        try:
            dt = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
        except ValueError as e:
            raise bus.BadEnvelope("time", f"alert time {text!r}: {e}") from None
        sec = int(dt.timestamp())
        if len(_base_cache) > 4096:  # alerts arrive in time order: old seconds are not asked again
            _base_cache.clear()
        _base_cache[key] = sec
    return sec, nanos


def format_time(seconds: int, nanos: int) -> str:
    """The inverse of parse_time, in Falco's JSON form (UTC, nine fraction digits)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def field_text(value: Any) -> str:
    """An output field value as Falco's gRPC output sends it: strings as they are, else JSON."""
    t = type(value)
    if t is str:
        return value
    if t is int:
        return str(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is float and value == value and value not in (float("inf"), float("-inf")):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _valid_text(v: Any) -> Any:
    """Strings with the undecodable bytes of their source (lone surrogates, e.g. a file name that
    is not UTF-8) as U+FFFD: protobuf strings must be UTF-8."""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(v, list):
        return [_valid_text(x) for x in v]
    if isinstance(v, dict):
        return {_valid_text(k): _valid_text(x) for k, x in v.items()}
    return v


def to_response(alert: dict[str, Any]) -> outputs_pb2.response:
    """Falco's JSON alert (with Tiercel's `id` and `seq`) as a `falco.outputs.response`."""
    return _build(alert)[0]


def _build(alert: dict[str, Any]) -> tuple[outputs_pb2.response, str, str, str, list[str], str]:
    """The response and, as plain Python values, what filters read (rule, source, hostname, tags,
    id): reading them back from the message would cost more than keeping them."""
    try:
        return _to_response(alert)
    except UnicodeEncodeError:
        return _to_response(_valid_text(alert))


def _to_response(alert: dict[str, Any]) -> tuple[outputs_pb2.response, str, str, str, list[str], str]:
    # Fields are assigned one by one: the keyword constructor takes more than twice as long
    # (its map argument especially), and this runs once per alert on the API's only thread.
    sec, nanos = parse_time(str(alert.get("time", "")))
    source = alert.get("source") or "syscall"
    if not isinstance(source, str):
        raise bus.BadEnvelope("shape", "alert source must be a string")
    out = alert.get("output", "")
    fields = alert.get("output_fields") or {}
    if not isinstance(fields, dict):
        raise bus.BadEnvelope("shape", "alert output_fields must be an object")
    tags = alert.get("tags") or []
    if not isinstance(tags, list):
        raise bus.BadEnvelope("shape", "alert tags must be an array")
    seq = alert.get("seq", 0)
    r = outputs_pb2.response()
    r.priority = priority_number(str(alert.get("priority", "")))
    r.source_deprecated = source_enum(source)
    r.rule = rule = str(alert.get("rule", ""))
    r.output = out if isinstance(out, str) else field_text(out)
    if fields:
        m = r.output_fields
        for k, v in fields.items():
            m[k if type(k) is str else str(k)] = v if type(v) is str else field_text(v)
    r.hostname = hostname = str(alert.get("hostname", ""))
    tags = [str(x) for x in tags]
    r.tags.extend(tags)
    r.source = source
    r.id = alert_id = str(alert.get("id", ""))
    r.seq = seq if type(seq) is int and 0 <= seq < 1 << 64 else 0  # not a bool: protobuf refuses those
    r.time.seconds, r.time.nanos = sec, nanos
    return r, rule, source, hostname, tags, alert_id


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def with_dropped_before(data: bytes, dropped: int) -> bytes:
    """A serialized response with `dropped_before` set (appended; the last occurrence wins)."""
    return data + _DROPPED_BEFORE_TAG + _varint(dropped) if dropped else data


def batch_bytes(responses: list[bytes]) -> bytes:
    """Serialized `falco.outputs.batch` from serialized responses, without re-encoding them."""
    parts = []
    for r in responses:
        parts.append(_BATCH_ALERTS_TAG)
        parts.append(_varint(len(r)))
        parts.append(r)
    return b"".join(parts)


@dataclass(slots=True)
class Alert:
    """One alert as received: its JSON fields, its stream sequence and its serialized response."""

    fields: dict[str, Any]
    data: bytes  # serialized falco.outputs.response
    stream_seq: int  # sequence in TIERCEL_ALERTS (0 when unknown)
    priority: int
    rule: str
    source: str
    hostname: str
    tags: frozenset[str]
    id: str

    # What the condition evaluator reads: the event code it dispatches on (the one plugin sources
    # use) and the payload the json fields read (the whole alert JSON).
    code = 322  # PPME_PLUGINEVENT_E

    @property
    def payload(self) -> dict[str, Any]:
        return self.fields

    @classmethod
    def from_bus(cls, body: bytes, headers: dict[str, str] | None = None, stream_seq: int = 0) -> Alert:
        """Decode an alert message; raises bus.BadEnvelope (with a drop reason) when malformed."""
        fields = bus.decode_alert(body, headers)
        return cls.from_fields(fields, stream_seq)

    @classmethod
    def from_fields(cls, fields: dict[str, Any], stream_seq: int = 0) -> Alert:
        r, rule, source, hostname, tags, alert_id = _build(fields)
        return cls(fields=fields, data=r.SerializeToString(), stream_seq=stream_seq, priority=r.priority,
                   rule=rule, source=source, hostname=hostname, tags=frozenset(tags), id=alert_id)

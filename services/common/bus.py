"""The NATS bus contract: every subject, queue group, stream, KV bucket and envelope.

This module is the single source of truth; docs/bus.md describes the same contract for users who
consume Tiercel straight from NATS, and tests/test_bus_contract.py keeps the two in step.

Envelopes are sans-IO: functions turn bytes into values and back, raising `BadEnvelope` (with a
short machine-readable reason used as a drop counter label) on anything malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgpack

# Bump only with a migration note in docs/bus.md. Every envelope carries its own version.
SCHEMA_VERSION = 1

PREFIX = "tiercel"

# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------

# Event batches (msgpack): tiercel.events.<source>.<host>
EVENTS_SUBJECT = f"{PREFIX}.events"
# Alerts (JSON, Falco's alert shape): tiercel.alerts.<priority>.<source>.<rule_slug>
ALERTS_SUBJECT = f"{PREFIX}.alerts"
# Drop reports (JSON), once per second per stage instance: tiercel.drops.<stage>.<host>
DROPS_SUBJECT = f"{PREFIX}.drops"
# Heartbeats (JSON), once per second per service instance: tiercel.hb.<service>.<host>.<instance>
HEARTBEAT_SUBJECT = f"{PREFIX}.hb"
# Control plane, request/reply (JSON): tiercel.ctl.<area>.<op>
CONTROL_SUBJECT = f"{PREFIX}.ctl"
# Sequence ranges processed by each rules worker (msgpack), for gap detection: tiercel.progress.<instance>
PROGRESS_SUBJECT = f"{PREFIX}.progress"

# Drop stages, in pipeline order.
STAGES = ("kernel", "ingest", "bus", "rules", "api")

# Control areas and their operations.
RULES_OPS = ("list", "get", "put", "delete", "enable", "disable", "validate")
CONFIG_OPS = ("list", "get", "set", "unset")

# Workers answering control requests share this queue group, so each request is answered once.
CONTROL_QUEUE = "tiercel-ctl"

# ---------------------------------------------------------------------------------------------
# JetStream: streams, consumers, KV buckets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream Tiercel creates (or checks) at start."""

    name: str
    subjects: tuple[str, ...]
    retention: str  # "limits" | "workqueue"
    max_bytes: int
    max_age_s: float
    discard: str = "old"  # "old" | "new"
    duplicate_window_s: float = 120.0
    max_msg_size: int = -1
    doc: str = ""


EVENTS_STREAM = StreamSpec(
    name="TIERCEL_EVENTS",
    subjects=(f"{EVENTS_SUBJECT}.>",),
    retention="workqueue",
    max_bytes=1 << 30,
    max_age_s=3600.0,
    discard="new",
    doc="Event batches waiting for a rules worker. Work-queue retention: a batch is removed once a "
    "worker acks it; unacked batches are redelivered.",
)

ALERTS_STREAM = StreamSpec(
    name="TIERCEL_ALERTS",
    subjects=(f"{ALERTS_SUBJECT}.>",),
    retention="limits",
    max_bytes=1 << 30,
    max_age_s=7 * 24 * 3600.0,
    discard="old",
    duplicate_window_s=600.0,
    doc="Every alert, retained for replay (`get`, resume after reconnect). Deduplicated on the "
    "alert id (Nats-Msg-Id) so redelivered events never produce a second alert.",
)

DROPS_STREAM = StreamSpec(
    name="TIERCEL_DROPS",
    subjects=(f"{DROPS_SUBJECT}.>",),
    retention="limits",
    max_bytes=64 << 20,
    max_age_s=24 * 3600.0,
    discard="old",
    doc="Drop reports of every stage, kept one day.",
)

STREAMS = (EVENTS_STREAM, ALERTS_STREAM, DROPS_STREAM)

# The durable pull consumer all rules workers share (the "queue group" of JetStream).
RULES_CONSUMER = "rules"
RULES_ACK_WAIT_S = 10.0
RULES_MAX_DELIVER = 5

# KV buckets
RULES_BUCKET = "tiercel_rules"  # keys: file.<name>, selection
CONFIG_BUCKET = "tiercel_config"  # keys: the configuration key (e.g. priority, outputs.rate)
KV_BUCKETS = (RULES_BUCKET, CONFIG_BUCKET)

# Headers
HDR_SCHEMA = "Tiercel-Schema"
HDR_MSG_ID = "Nats-Msg-Id"

# ---------------------------------------------------------------------------------------------
# Subject builders and parsers
# ---------------------------------------------------------------------------------------------

_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_TOKEN_OK = re.compile(r"^[A-Za-z0-9_\-]+$")


def slug(text: str) -> str:
    """A subject token from free text: lowercase, runs of other characters become `_`.

    Same rule falcosidekick uses for `<rule>` in its NATS subjects, so existing consumers'
    wildcards keep working.
    """
    s = _SLUG_RUN.sub("_", text.lower()).strip("_")
    return s or "_"


def token(text: str) -> str:
    """A safe single subject token for an identifier (host, source, instance)."""
    return text if text and _TOKEN_OK.match(text) else slug(text)


def events_subject(source: str, host: str) -> str:
    return f"{EVENTS_SUBJECT}.{token(source)}.{token(host)}"


def alert_subject(priority: str, source: str, rule: str) -> str:
    """`priority` is Falco's long name (`Warning`, `Informational`); the token is lowercase."""
    return f"{ALERTS_SUBJECT}.{priority.lower()}.{token(source)}.{slug(rule)}"


def drops_subject(stage: str, host: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown drop stage {stage!r}; expected one of {', '.join(STAGES)}")
    return f"{DROPS_SUBJECT}.{stage}.{token(host)}"


def heartbeat_subject(service: str, host: str, instance: str) -> str:
    return f"{HEARTBEAT_SUBJECT}.{token(service)}.{token(host)}.{token(instance)}"


def progress_subject(instance: str) -> str:
    return f"{PROGRESS_SUBJECT}.{token(instance)}"


def control_subject(area: str, op: str) -> str:
    ops = {"rules": RULES_OPS, "config": CONFIG_OPS, "status": ("get",)}
    if area not in ops or op not in ops[area]:
        raise ValueError(f"unknown control operation {area}.{op}")
    return f"{CONTROL_SUBJECT}.{area}.{op}"


@dataclass(frozen=True)
class AlertSubject:
    priority: str
    source: str
    rule_slug: str


def parse_alert_subject(subject: str) -> AlertSubject:
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != PREFIX or parts[1] != "alerts":
        raise BadEnvelope("subject", f"not an alert subject: {subject!r}")
    return AlertSubject(parts[2], parts[3], parts[4])


# ---------------------------------------------------------------------------------------------
# Envelopes
# ---------------------------------------------------------------------------------------------


class BadEnvelope(ValueError):
    """A message on the bus that does not follow the contract.

    `reason` is a short label (`not_msgpack`, `schema_version`, `shape`, `too_large`, ...) that
    receivers use as the drop-counter reason.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# Hard cap on a decoded batch; NATS max_payload is the first line of defence.
MAX_BATCH_EVENTS = 100_000


@dataclass
class EventBatch:
    """A batch of events from one host and source, numbered by the host's event sequence.

    Events are opaque here: each is the wire form produced by the event model
    (`tiercel.common.event`), decoded by the receiver. `seq` is the sequence number of the first
    event; event i has `seq + i`. A gap between batches of the same host is a loss.
    """

    host: str
    source: str
    seq: int
    events: list[Any]
    sent_ns: int = 0  # publisher's wall clock, for latency measurements
    v: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return msgpack.packb(
            [self.v, self.host, self.source, self.seq, self.sent_ns, self.events],
            use_bin_type=True,
        )

    @classmethod
    def decode(cls, data: bytes) -> EventBatch:
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
        except Exception as e:  # msgpack raises several unrelated types
            raise BadEnvelope("not_msgpack", f"event batch is not msgpack: {e}") from None
        if not isinstance(obj, list) or len(obj) != 6:
            raise BadEnvelope("shape", "event batch must be a 6-element msgpack array")
        v, host, source, seq, sent_ns, events = obj
        if v != SCHEMA_VERSION:
            raise BadEnvelope("schema_version", f"event batch schema version {v!r}, expected {SCHEMA_VERSION}")
        if not isinstance(host, str) or not isinstance(source, str):
            raise BadEnvelope("shape", "event batch host and source must be strings")
        if not isinstance(seq, int) or seq < 0 or not isinstance(sent_ns, int):
            raise BadEnvelope("shape", "event batch seq and sent_ns must be non-negative integers")
        if not isinstance(events, list):
            raise BadEnvelope("shape", "event batch events must be an array")
        if len(events) > MAX_BATCH_EVENTS:
            raise BadEnvelope("too_large", f"event batch holds {len(events)} events (max {MAX_BATCH_EVENTS})")
        return cls(host=host, source=source, seq=seq, events=events, sent_ns=sent_ns, v=v)


def _json_loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than json's limit
        raise BadEnvelope("not_json", f"{what} is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise BadEnvelope("shape", f"{what} must be a JSON object")
    return obj


def encode_json(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Text holding undecodable bytes (kept as lone surrogates by the wire
    form's `surrogateescape`, e.g. a file name that is not UTF-8) is written with `\\udcXX` escapes,
    so the message stays valid JSON and loses nothing."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, sort_keys=True).encode()


# Keys of Falco's JSON alert, plus Tiercel's additions (id, seq). Falco sorts keys; so do we.
ALERT_KEYS = ("hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time")
ALERT_EXTRA_KEYS = ("id", "seq")


def encode_alert(alert: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an alert message. The body is Falco's JSON alert plus `id` and `seq`."""
    if "id" not in alert or "rule" not in alert or "priority" not in alert:
        raise ValueError("an alert needs at least id, rule and priority")
    headers = {HDR_SCHEMA: f"alert/{SCHEMA_VERSION}", HDR_MSG_ID: str(alert["id"])}
    return encode_json(alert), headers


def decode_alert(data: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    if headers and headers.get(HDR_SCHEMA, f"alert/{SCHEMA_VERSION}") != f"alert/{SCHEMA_VERSION}":
        raise BadEnvelope("schema_version", f"alert schema {headers.get(HDR_SCHEMA)!r}")
    obj = _json_loads(data, "alert")
    for k in ("rule", "priority", "time"):
        if not isinstance(obj.get(k), str):
            raise BadEnvelope("shape", f"alert key {k!r} missing or not a string")
    return obj


@dataclass
class DropReport:
    """Counts of one stage instance over one interval (normally one second)."""

    stage: str
    host: str
    instance: str
    time_ns: int
    interval_s: float
    n_evts: int
    drops: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @property
    def n_drops(self) -> int:
        return sum(self.drops.values())

    def encode(self) -> bytes:
        return encode_json({
            "v": self.v, "stage": self.stage, "host": self.host, "instance": self.instance,
            "time_ns": self.time_ns, "interval_s": self.interval_s, "n_evts": self.n_evts,
            "n_drops": self.n_drops, "drops": self.drops, "totals": self.totals,
        })

    @classmethod
    def decode(cls, data: bytes) -> DropReport:
        o = _json_loads(data, "drop report")
        if o.get("v") != SCHEMA_VERSION:
            raise BadEnvelope("schema_version", f"drop report schema version {o.get('v')!r}")
        try:
            return cls(stage=str(o["stage"]), host=str(o["host"]), instance=str(o["instance"]),
                       time_ns=int(o["time_ns"]), interval_s=float(o["interval_s"]), n_evts=int(o["n_evts"]),
                       drops={str(k): int(v) for k, v in dict(o.get("drops", {})).items()},
                       totals={str(k): int(v) for k, v in dict(o.get("totals", {})).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise BadEnvelope("shape", f"drop report: {e}") from None


@dataclass
class Heartbeat:
    """Liveness and counters of one service instance, published once per second."""

    service: str
    host: str
    instance: str
    time_ns: int
    started_ns: int
    revision: int = 0  # ruleset revision (rules workers), 0 elsewhere
    rates: dict[str, float] = field(default_factory=dict)  # per second: events, alerts, ...
    counters: dict[str, int] = field(default_factory=dict)  # totals since start
    lag: int = 0  # pending messages (rules workers: events waiting in the stream)
    state: str = "ready"
    v: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return encode_json({
            "v": self.v, "service": self.service, "host": self.host, "instance": self.instance,
            "time_ns": self.time_ns, "started_ns": self.started_ns, "revision": self.revision,
            "rates": self.rates, "counters": self.counters, "lag": self.lag, "state": self.state,
        })

    @classmethod
    def decode(cls, data: bytes) -> Heartbeat:
        o = _json_loads(data, "heartbeat")
        if o.get("v") != SCHEMA_VERSION:
            raise BadEnvelope("schema_version", f"heartbeat schema version {o.get('v')!r}")
        try:
            return cls(service=str(o["service"]), host=str(o["host"]), instance=str(o["instance"]),
                       time_ns=int(o["time_ns"]), started_ns=int(o["started_ns"]),
                       revision=int(o.get("revision", 0)), rates=dict(o.get("rates", {})),
                       counters=dict(o.get("counters", {})), lag=int(o.get("lag", 0)),
                       state=str(o.get("state", "ready")))
        except (KeyError, TypeError, ValueError) as e:
            raise BadEnvelope("shape", f"heartbeat: {e}") from None


def encode_request(op: str, **args: Any) -> bytes:
    """A control-plane request: {"v": 1, "op": op, ...args}."""
    return encode_json({"v": SCHEMA_VERSION, "op": op, **args})


def decode_request(data: bytes) -> dict[str, Any]:
    o = _json_loads(data, "control request")
    if o.get("v") != SCHEMA_VERSION:
        raise BadEnvelope("schema_version", f"control request schema version {o.get('v')!r}")
    if not isinstance(o.get("op"), str):
        raise BadEnvelope("shape", "control request needs a string 'op'")
    return o


def encode_reply(ok: bool, error: str = "", **data: Any) -> bytes:
    """A control-plane reply: {"v": 1, "ok": bool, "error": str, ...data}."""
    return encode_json({"v": SCHEMA_VERSION, "ok": ok, "error": error, **data})


def decode_reply(data: bytes) -> dict[str, Any]:
    o = _json_loads(data, "control reply")
    if o.get("v") != SCHEMA_VERSION or not isinstance(o.get("ok"), bool):
        raise BadEnvelope("shape", "control reply needs v and ok")
    return o

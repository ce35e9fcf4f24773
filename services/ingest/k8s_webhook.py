"""The k8s audit webhook, as Falco's k8saudit plugin serves it (default `:9765/k8s-audit`).

Only the configured path is served (404 elsewhere). Methods other than POST get 405, a
Content-Type without `application/json` gets 400, a body over `k8s_audit.max_body` gets 400.
A body holds an audit `Event`, an `EventList`, a JSON array of them, or several of these one
after another (JSON lines, as the conformance traces are written). Unlike the plugin, which
answers 200 before parsing, Tiercel parses first and answers 400 when the body holds no valid
JSON or no audit event at all, so the sender learns about it; a valid body gets 200. Events over
`k8s_audit.max_event` bytes are rejected one by one. Every rejection is a counted ingest drop.

The request parser is sans-IO (`parse_request_head`, `split_events`); asyncio streams are the edge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tiercel.common import eventtable as et
from tiercel.common.event import K8S_AUDIT, Event
from tiercel.common.wire import BadEvent, Encoder
from tiercel.ingest.drops import StageCounters
from tiercel.ingest.publisher import Publisher, SeqStore
from tiercel.ingest.queue import EventQueue

log = logging.getLogger("tiercel.ingest.k8s")

MAX_HEAD = 16384
K8SAUDIT_PLUGIN_ID = 1  # the k8saudit plugin's registered id, in plugin events


class BadRequest(ValueError):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass
class RequestHead:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def content_length(self) -> int | None:
        v = self.headers.get("content-length")
        if v is None:
            return None
        try:
            n = int(v)
        except ValueError:
            raise BadRequest(400, "k8s_bad_request", "invalid Content-Length") from None
        if n < 0:
            raise BadRequest(400, "k8s_bad_request", "invalid Content-Length")
        return n


def parse_request_head(data: bytes) -> RequestHead:
    try:
        text = data.decode("latin-1")
        lines = text.split("\r\n")
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest(400, "k8s_bad_request", "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(400, "k8s_bad_request", "unsupported HTTP version")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise BadRequest(400, "k8s_bad_request", "malformed header")
        headers[k.strip().lower()] = v.strip()
    return RequestHead(method, target.split("?", 1)[0], headers)


def parse_time(text: Any) -> int:
    """RFC 3339 (nano) -> ns since epoch; 0 when missing or malformed."""
    if not isinstance(text, str) or not text:
        return 0
    s = text.strip()
    frac_ns = 0
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, rest = s.split(".", 1)
        digits = ""
        for ch in rest:
            if ch.isdigit():
                digits += ch
            else:
                break
        tz = rest[len(digits):]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        s = head + tz
    try:
        ns = int(datetime.fromisoformat(s).timestamp()) * 1_000_000_000 + frac_ns
    except (ValueError, OverflowError, OSError):
        return 0
    return ns if 0 <= ns < 1 << 64 else 0  # event times are unsigned 64-bit ns (up to year 2554)


def split_events(body: bytes, max_event: int) -> tuple[list[tuple[dict, bytes]], dict[str, int]]:
    """Audit events (object, its JSON bytes) in a body, and rejections by reason.

    Raises BadRequest when the body is not JSON at all."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "k8s_bad_json", "body is not UTF-8") from None
    dec = json.JSONDecoder()
    values: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        try:
            v, i = dec.raw_decode(text, i)
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than json's limit
            if not values:
                raise BadRequest(400, "k8s_bad_json", f"invalid JSON: {e}") from None
            return _events_of(values, max_event, extra_bad=1)
        values.append(v)
    if not values:
        raise BadRequest(400, "k8s_bad_json", "empty body")
    return _events_of(values, max_event)


def _events_of(values: list[Any], max_event: int, extra_bad: int = 0) -> tuple[list[tuple[dict, bytes]], dict[str, int]]:
    out: list[tuple[dict, bytes]] = []
    bad: dict[str, int] = {}
    if extra_bad:
        bad["k8s_bad_json"] = extra_bad

    def add(obj: Any, depth: int = 0) -> None:
        if isinstance(obj, list):
            if depth >= 2:  # an array of Events or EventLists; arrays of arrays are not audit data
                bad["k8s_bad_event"] = bad.get("k8s_bad_event", 0) + 1
                return
            for x in obj:
                add(x, depth + 1)
            return
        if not isinstance(obj, dict):
            bad["k8s_bad_event"] = bad.get("k8s_bad_event", 0) + 1
            return
        kind = obj.get("kind")
        if kind == "EventList":
            items = obj.get("items")
            if isinstance(items, list):
                for x in items:
                    add(x, depth + 2)
            else:
                bad["k8s_bad_event"] = bad.get("k8s_bad_event", 0) + 1
            return
        if kind != "Event":
            bad["k8s_bad_event"] = bad.get("k8s_bad_event", 0) + 1
            return
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) > max_event:
            bad["k8s_event_too_large"] = bad.get("k8s_event_too_large", 0) + 1
            return
        out.append((obj, raw))

    for v in values:
        add(v)
    return out, bad


def to_event(obj: dict, raw: bytes) -> Event:
    """A k8s audit event in the event model: a plugin event of the k8saudit plugin whose data is
    the event's JSON; `payload` holds the parsed object, the time is its stageTimestamp."""
    ts = parse_time(obj.get("stageTimestamp")) or parse_time(obj.get("requestReceivedTimestamp"))
    ev = Event(0, ts, -1, et.PPME_PLUGINEVENT_E, [K8SAUDIT_PLUGIN_ID, raw], source=K8S_AUDIT, payload=obj)
    return ev


def _response(status: int, body: str = "") -> bytes:
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
               413: "Payload Too Large", 503: "Service Unavailable"}
    data = body.encode()
    head = (f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
    return head.encode() + data


class K8sWebhook:
    """Serves the webhook and publishes accepted events as source `k8s_audit`."""

    def __init__(self, cfg, nc: Any, js: Any, host: str, counters: StageCounters, seq: SeqStore,
                 publish_mode: str = "jetstream"):
        listen = cfg["k8s_audit.listen"]
        h, _, p = listen.rpartition(":")
        self.bind_host = h or "0.0.0.0"
        self.port = int(p)
        self.path = cfg["k8s_audit.path"]
        self.max_body = cfg["k8s_audit.max_body"]
        self.max_event = cfg["k8s_audit.max_event"]
        self.counters = counters
        self.queue = EventQueue(cfg["ingest.queue_size"])
        self.publisher = Publisher(nc, js, host, K8S_AUDIT, self.queue, counters, seq,
                                   cfg["ingest.batch_size"], cfg["ingest.batch_interval_ms"] / 1000.0,
                                   mode=publish_mode)
        self.batch_size = cfg["ingest.batch_size"]
        self.server: asyncio.base_events.Server | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.requests: dict[int, int] = {}
        self.accepted = 0

    async def start(self) -> None:
        from tiercel.common.runtime import ServiceError

        self.queue.bind(asyncio.get_running_loop())
        try:
            self.server = await asyncio.start_server(self._handle, self.bind_host, self.port, limit=MAX_HEAD)
        except OSError as e:
            raise ServiceError(f"k8s audit webhook cannot listen on {self.bind_host}:{self.port}: "
                               f"{e.strerror or e} (set k8s_audit.listen, or k8s_audit.enabled=false)") from None
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self.publisher.run(self._stop), name="k8s-publisher")

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        left = await self.publisher.drain(3.0)
        if left:
            self.counters.drop("shutdown", left)

    def _reject(self, status: int, reason: str, n: int = 1) -> None:
        self.counters.seen(n)
        self.counters.drop(reason, n)
        self.requests[status] = self.requests.get(status, 0) + 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, text = 200, ""
        try:
            try:
                head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
                self._reject(400, "k8s_bad_request")
                status, text = 400, "bad request\n"
                return
            try:
                head = parse_request_head(head_bytes)
                if head.path != self.path:
                    self.requests[404] = self.requests.get(404, 0) + 1
                    status, text = 404, "not found\n"
                    return
                if head.method != "POST":
                    raise BadRequest(405, "k8s_bad_method", f"method {head.method} not allowed")
                if "application/json" not in head.headers.get("content-type", ""):
                    raise BadRequest(400, "k8s_bad_content_type", "wrong Content Type")
                length = head.content_length
                if length is None:
                    raise BadRequest(400, "k8s_bad_request", "Content-Length required")
                if length > self.max_body:
                    raise BadRequest(400, "k8s_too_large", f"body of {length} bytes exceeds {self.max_body}")
                body = await asyncio.wait_for(reader.readexactly(length), 30)
                events, bad = split_events(body, self.max_event)
                if not events:
                    reason = next(iter(bad), "k8s_bad_event")
                    raise BadRequest(400, reason, "no audit event in the body")
            except BadRequest as e:
                self._reject(e.status, e.reason)
                status, text = e.status, f"{e}\n"
                return
            except (asyncio.IncompleteReadError, TimeoutError):
                self._reject(400, "k8s_bad_request")
                status, text = 400, "incomplete body\n"
                return
            for reason, n in bad.items():
                self._reject(200, reason, n)
            self.counters.seen(len(events))
            enc = Encoder()
            wire = []
            for obj, raw in events:
                try:
                    wire.append(enc.encode(to_event(obj, raw)))
                except BadEvent as e:  # cannot travel on the bus (nested deeper than msgpack carries)
                    log.debug("k8s audit webhook: event not carried: %s", e)
                    self.counters.drop("k8s_bad_event")
            items = [(w, et.PPME_PLUGINEVENT_E) for w in wire]
            lost = 0
            for i in range(0, len(items), self.batch_size):  # one batch on the bus per chunk
                lost += len(self.queue.put_chunk(items[i:i + self.batch_size]))
            if lost:
                self.counters.drop("queue_full", lost)
            self.accepted += len(wire) - lost
            self.requests[200] = self.requests.get(200, 0) + 1
            text = "<html><body>Ok</body></html>"
        except Exception as e:  # one bad request never takes the worker down
            log.warning("k8s audit webhook: %s", e)
            status, text = 400, "bad request\n"
        finally:
            try:
                writer.write(_response(status, text))
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


"""`falco.inputs.service/send`: events pushed by clients, answered one by one, sent down the same
rules pipeline as the host's own events.

An accepted message becomes one event batch on `tiercel.events.<source>.<producer>` (docs/bus.md),
acknowledged by the events stream before the client hears "accepted" with the batch's first
sequence number. The producer name is `<hostname>:inputs` (the hostname the client gives, else
this API's): events pushed through the API are numbered apart from the host's ingest, so the two
never share a message id or confuse the rules workers' gap detection, and alerts show where
they came from. Sequences persist across restarts (the ingest's SeqStore).

Conversion to the event model uses the producers' own code: the k8s audit webhook's sans-IO
splitting (Event, EventList, arrays) and the event model's wire encoder.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from tiercel.api import rpc
from tiercel.api.security import Authorizer, Identity
from tiercel.common import bus
from tiercel.common.event import K8S_AUDIT, SYSCALL, Event, FdInfo, ThreadInfo
from tiercel.common.wire import BadEvent
from tiercel.pb.falco import inputs_pb2

log = logging.getLogger("tiercel.api")

SERVICE = "falco.inputs.service"
_SOURCE_OK = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_HOST_OK = re.compile(r"^[A-Za-z0-9_.\-]{1,253}$")


class Rejected(ValueError):
    """Why one input message was not accepted (sent back in its ack)."""


@dataclass
class Converted:
    source: str
    host: str
    events: list[Event]


def _time_ns(msg: inputs_pb2.event) -> int:
    if msg.HasField("time"):
        return msg.time.seconds * 1_000_000_000 + msg.time.nanos
    return time.time_ns()


def _exit_code(name: str) -> int:
    """The current exit-event code of an event type (`openat` -> PPME_SYSCALL_OPENAT_2_X)."""
    from tiercel.common import eventtable as et

    best = None
    for c in et.codes(name):
        info = et.info(c)
        if info is None or info.dir != "<" or info.flags & et.EF_OLD_VERSION or c in (et.PPME_GENERIC_X,):
            continue
        best = c if best is None else max(best, c)
    if best is None:
        if et.codes(name):
            return et.PPME_GENERIC_X
        raise Rejected(f"unknown event type {name!r}")
    return best


_INT_TYPES = frozenset({"PT_INT8", "PT_INT16", "PT_INT32", "PT_INT64", "PT_UINT8", "PT_UINT16", "PT_UINT32",
                        "PT_UINT64", "PT_ERRNO", "PT_FD", "PT_PID", "PT_PORT", "PT_FLAGS8", "PT_FLAGS16",
                        "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16", "PT_ENUMFLAGS32", "PT_MODE", "PT_UID",
                        "PT_GID", "PT_RELTIME", "PT_ABSTIME", "PT_SYSCALLID", "PT_SIGTYPE", "PT_SIGSET"})


def syscall_event(msg: inputs_pb2.syscall_event, ts: int) -> Event:
    """A syscall-model event from its type, text parameters and thread context."""
    from tiercel.common import eventtable as et

    if not msg.type:
        raise Rejected("syscall event: 'type' (evt.type, e.g. openat) is required")
    code = _exit_code(msg.type)
    info = et.info(code)
    params: list[Any] = []
    unknown = set(msg.params) - {p.name for p in info.params}
    if unknown:
        raise Rejected(f"syscall event {msg.type}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                       f"{msg.type} has {', '.join(p.name for p in info.params) or 'none'}")
    for p in info.params:
        if p.name == "res":
            params.append(msg.res)
            continue
        text = msg.params.get(p.name)
        if text is None:
            params.append(None)
        elif p.type in _INT_TYPES:
            try:
                params.append(int(text, 0))
            except ValueError:
                raise Rejected(f"syscall event {msg.type}: parameter {p.name} must be an integer, "
                               f"not {text!r}") from None
        else:
            params.append(text)
    tid = msg.tid or msg.pid
    ev = Event(0, ts, tid, code, params, source=SYSCALL)
    th = ThreadInfo(tid, msg.pid or tid, msg.ppid, comm=msg.comm, exe=msg.exe, exepath=msg.exepath,
                    args=list(msg.args), cwd=msg.cwd, uid=msg.uid, gid=msg.gid, container_id=msg.container_id)
    cur = th
    for i, comm in enumerate(msg.ancestors):
        parent = ThreadInfo(-(i + 2), -(i + 2), 0, comm=comm)
        cur.parent = parent
        cur = parent
    ev.thread = th
    if msg.fd_name or msg.fd_type:
        ev.fd = FdInfo(-1, msg.fd_type or "file", msg.fd_name)
    return ev


def json_events(source: str, text: str, ts: int, max_event: int) -> list[Event]:
    """k8s audit JSON (Event, EventList, arrays) or one generic JSON object as events of `source`."""
    data = text.encode()
    if source == K8S_AUDIT:
        from tiercel.ingest.k8s_webhook import BadRequest, split_events, to_event

        try:
            found, bad = split_events(data, max_event)
        except BadRequest as e:
            raise Rejected(f"k8s_audit: {e.args[-1] if e.args else e}") from None
        if bad and not found:
            raise Rejected("k8s_audit: not an audit Event/EventList (" +
                           ", ".join(f"{k}={v}" for k, v in sorted(bad.items())) + ")")
        if bad:
            raise Rejected("k8s_audit: some items are not audit events (" +
                           ", ".join(f"{k}={v}" for k, v in sorted(bad.items())) + "); send them apart")
        return [to_event(obj, raw) for obj, raw in found]
    if len(data) > max_event:
        raise Rejected(f"{source}: event of {len(data)} bytes is larger than {max_event}")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than json's limit
        raise Rejected(f"{source}: not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise Rejected(f"{source}: a generic JSON event must be an object")
    from tiercel.common import eventtable as et

    return [Event(0, ts, -1, et.PPME_PLUGINEVENT_E, [0, data], source=source, payload=obj)]


def convert(msg: inputs_pb2.event, default_host: str, max_event: int) -> Converted:
    """An input message as events of one source from one producer (sans-IO)."""
    which = msg.WhichOneof("payload")
    if which is None:
        raise Rejected("event has no payload: set json or syscall")
    source = msg.source or (SYSCALL if which == "syscall" else "")
    if not source:
        raise Rejected("a JSON event needs its source (k8s_audit, or the name of a generic JSON source)")
    if not _SOURCE_OK.match(source):
        raise Rejected(f"source {source!r}: letters, digits, '_' and '-', at most 64")
    if (which == "syscall") != (source == SYSCALL):
        raise Rejected(f"source {source!r} does not match the payload ({which})")
    host = msg.hostname or default_host
    if not _HOST_OK.match(host):
        raise Rejected(f"hostname {host!r}: letters, digits, '.', '_' and '-'")
    ts = _time_ns(msg)
    if which == "syscall":
        events = [syscall_event(msg.syscall, ts)]
    else:
        events = json_events(source, msg.json, ts, max_event)
    return Converted(source, f"{host}:inputs", events)


class InputsService:
    """Admin only: pushing events is as powerful as being the host's kernel."""

    def __init__(self, js: Any, auth: Authorizer, host: str, state_dir: Any, max_event: int,
                 ack_timeout: float = 5.0):
        self.js = js
        self.auth = auth
        self.host = host
        self.state_dir = state_dir
        self.max_event = max_event
        self.ack_timeout = ack_timeout
        self._seqs: dict[str, Any] = {}
        self.accepted = 0
        self.rejected = 0

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "send": rpc.stream_stream(self.send, inputs_pb2.ack)})

    def _seq(self, producer: str) -> Any:
        from tiercel.ingest.publisher import SeqStore

        s = self._seqs.get(producer)
        if s is None:
            path = self.state_dir / f"api-inputs-seq-{bus.token(producer)}.json" if self.state_dir else None
            s = self._seqs[producer] = SeqStore(path, reserve=1 << 12)
        return s

    def close(self) -> None:
        for s in self._seqs.values():
            try:
                s.close()
            except OSError as e:
                log.warning("cannot save the inputs sequence: %s", e)

    async def publish(self, c: Converted) -> int:
        """Publish one batch and wait for the events stream to store it; returns its first seq."""
        from tiercel.common.wire import encode_events

        wire = encode_events(c.events)
        first = self._seq(c.host).take(len(wire))
        batch = bus.EventBatch(host=c.host, source=c.source, seq=first, events=wire, sent_ns=time.time_ns())
        await self.js.publish(bus.events_subject(c.source, c.host), batch.encode(), timeout=self.ack_timeout,
                              headers={bus.HDR_MSG_ID: f"{c.host}:{first}"})
        return first

    def default_host(self, ident: Identity) -> str:
        if ident.transport == "tls" and ident.subject:
            cn = ident.name[3:] if ident.name.startswith("CN=") else ""
            if cn and _HOST_OK.match(cn):
                return cn
        return self.host

    async def send(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
        ident = await self.auth.require_admin(context, "inputs send")
        default_host = self.default_host(ident)
        async for data in requests:
            try:
                msg = inputs_pb2.event.FromString(data)
            except DecodeError as e:
                self.rejected += 1
                await context.write(inputs_pb2.ack(accepted=False, error=f"malformed falco.inputs.event: {e}"))
                continue
            try:
                c = convert(msg, default_host, self.max_event)
            except Rejected as e:
                self.rejected += 1
                await context.write(inputs_pb2.ack(id=msg.id, accepted=False, error=str(e)))
                continue
            try:
                seq = await self.publish(c)
            except BadEvent as e:  # the event model cannot carry it (e.g. JSON nested too deep)
                self.rejected += 1
                await context.write(inputs_pb2.ack(id=msg.id, accepted=False, error=str(e)))
                continue
            except Exception as e:  # timeout, stream full, NATS gone: the client may retry this one
                self.rejected += 1
                log.warning("inputs: publishing to the events stream failed: %s", e)
                await context.write(inputs_pb2.ack(id=msg.id, accepted=False,
                                                   error=f"not stored (retry later): {e or type(e).__name__}"))
                continue
            self.accepted += len(c.events)
            await context.write(inputs_pb2.ack(id=msg.id, accepted=True, seq=seq, count=len(c.events),
                                               producer=c.host))

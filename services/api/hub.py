"""The alert hub: one consumer of the alerts stream, fanned out to every subscriber's bounded queue.

Why a JetStream ordered consumer rather than a plain subscription: every alert arrives with its
stream sequence, so a subscriber that resumes from the stream (`resume_after_id`, `get`) can
switch to the live feed at an exact boundary, duplicates the stream removed (same alert id
published twice) never reach a subscriber, and a hub that falls behind or loses NATS resumes from
the last sequence it saw instead of losing alerts.

A subscriber never slows the hub: `offer` appends to its own deque and, when the deque is full,
drops the oldest alert, counting it for `dropped_before` and the drops stream.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from nats.js import api as jsapi

from tiercel.api.alerts import Alert
from tiercel.api.filters import AlertFilter
from tiercel.common import bus

log = logging.getLogger("tiercel.api")

DROP_REASON = "queue_full"
_NO_FIELDS: dict = {}
# A replay reads the stream in fetches of this many messages.
REPLAY_FETCH = 512


def stream_seq(reply: str | None) -> int:
    """The stream sequence in a JetStream delivery's reply subject, without building the whole
    metadata object: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the
    12-token form `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>...`."""
    if not reply:
        return 0
    t = reply.split(".")
    try:
        if len(t) == 9:
            return int(t[5])
        if len(t) >= 11:
            return int(t[7])
    except ValueError:
        pass
    return 0


class Subscriber:
    """One `sub`/`sub_batch` stream: its filter, its bounded queue and its drop counters."""

    __slots__ = ("id", "name", "peer", "method", "bound", "filter", "queue", "wake", "dropped_pending",
                 "dropped_total", "dropped_interval", "offered_interval", "sent", "replaying", "skip_through")

    def __init__(self, sid: int, peer: str, method: str, bound: int):
        self.id = sid
        self.name = f"sub-{sid}"
        self.peer = peer
        self.method = method
        self.bound = bound
        # None until the first request arrives: alerts are buffered unfiltered until then.
        self.filter: AlertFilter | None = None
        self.queue: collections.deque[Alert] = collections.deque()
        self.wake = asyncio.Event()
        self.dropped_pending = 0  # since the last response written (-> dropped_before)
        self.dropped_total = 0
        self.dropped_interval = 0  # since the last drop report
        self.offered_interval = 0
        self.sent = 0
        # While replaying from the stream, overflow is not a loss: the replay reads those alerts.
        self.replaying = False
        self.skip_through = 0  # stream sequences up to this one were delivered by a replay

    def offer(self, a: Alert) -> None:
        if a.stream_seq and a.stream_seq <= self.skip_through:
            return
        f = self.filter
        if f is not None and not f(a):
            return
        self.offered_interval += 1
        q = self.queue
        if len(q) >= self.bound:
            q.popleft()
            if not self.replaying:
                self.dropped_pending += 1
                self.dropped_total += 1
                self.dropped_interval += 1
        q.append(a)
        self.wake.set()

    def set_filter(self, f: AlertFilter) -> None:
        """Install the filter of the first request, dropping buffered alerts it does not accept."""
        self.filter = f
        if not f.accepts_all:
            self.queue = collections.deque(a for a in self.queue if f(a))

    def skip(self, through: int) -> None:
        """Forget queued alerts a replay already delivered (stream sequence <= `through`)."""
        self.skip_through = max(self.skip_through, through)
        q = self.queue
        while q and q[0].stream_seq and q[0].stream_seq <= through:
            q.popleft()

    def take(self, n: int) -> list[Alert]:
        q = self.queue
        if n >= len(q):
            out = list(q)
            q.clear()
            return out
        return [q.popleft() for _ in range(n)]


class AlertHub:
    """Reads TIERCEL_ALERTS once and offers every alert to every subscriber."""

    def __init__(self, nc: Any, js: Any, *, host: str, instance: str, metrics: Any = None,
                 index_size: int = 200_000, report_interval: float = 1.0):
        self.nc, self.js = nc, js
        self.host, self.instance = host, instance
        self.metrics = metrics
        self.subscribers: dict[int, Subscriber] = {}
        self._ids = itertools.count(1)
        self._psub: Any = None
        self._report_task: asyncio.Task | None = None
        self.report_interval = report_interval
        # Recent alert id -> stream sequence, for resume without scanning the stream.
        self._index: dict[str, int] = {}
        self._index_order: collections.deque[str] = collections.deque()
        self._index_size = index_size
        self.received = 0
        self._received_interval = 0
        self.bad: collections.Counter[str] = collections.Counter()
        self._bad_interval: collections.Counter[str] = collections.Counter()
        self._departed: list[Subscriber] = []
        self.last_seq = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._psub = await self.js.subscribe(
            f"{bus.ALERTS_SUBJECT}.>", stream=bus.ALERTS_STREAM.name, cb=self._on_msg, ordered_consumer=True,
            deliver_policy=jsapi.DeliverPolicy.NEW, idle_heartbeat=2.0,
        )
        self._report_task = asyncio.create_task(self._report_loop(), name="api-drop-reports")

    async def stop(self) -> None:
        if self._report_task:
            self._report_task.cancel()
            try:
                await self._report_task
            except asyncio.CancelledError:
                pass
            self._report_task = None
        try:
            await self.publish_reports()
        except Exception as e:  # NATS may already be gone at shutdown
            log.debug("final drop report not sent: %s", e)
        if self._psub is not None:
            try:
                await self._psub.unsubscribe()
            except Exception as e:
                log.debug("alerts unsubscribe: %s", e)
            self._psub = None

    # -- subscribers ----------------------------------------------------------------------------

    def add(self, peer: str, method: str, bound: int) -> Subscriber:
        s = Subscriber(next(self._ids), peer, method, bound)
        self.subscribers[s.id] = s
        return s

    def remove(self, s: Subscriber) -> None:
        if self.subscribers.pop(s.id, None) is not None:
            if s.dropped_interval:
                self._departed.append(s)
            if self.metrics:
                self.metrics.forget(s)

    # -- the live feed --------------------------------------------------------------------------

    async def _on_msg(self, msg: Any) -> None:
        self.dispatch(msg.data, msg.headers, stream_seq(msg.reply))

    def dispatch(self, body: bytes, headers: dict[str, str] | None, seq: int) -> Alert | None:
        """Decode one alert message and offer it to every subscriber (sans-IO core of the hub)."""
        self.received += 1
        self._received_interval += 1
        if seq:
            self.last_seq = seq
        try:
            a = Alert.from_bus(body, headers, seq)
        except bus.BadEnvelope as e:
            self.bad[e.reason] += 1
            self._bad_interval[e.reason] += 1
            if self.bad[e.reason] == 1:
                log.warning("dropping malformed alert (reason %s): %s", e.reason, e)
            return None
        if seq and a.id:
            self._remember(a.id, seq)
        for s in self.subscribers.values():
            s.offer(a)
        # Filters have seen the decoded JSON; queues only need the serialized response. Dropping
        # the dict here divides the memory of a queued alert by about three.
        a.fields = _NO_FIELDS
        return a

    def _remember(self, alert_id: str, seq: int) -> None:
        if alert_id not in self._index:
            self._index_order.append(alert_id)
            if len(self._index_order) > self._index_size:
                self._index.pop(self._index_order.popleft(), None)
        self._index[alert_id] = seq

    # -- the stream: replay and lookup ------------------------------------------------------------

    async def stream_bounds(self) -> tuple[int, int]:
        """(first, last) sequence currently retained in TIERCEL_ALERTS (last = 0 when empty)."""
        info = await self.js.stream_info(bus.ALERTS_STREAM.name)
        return info.state.first_seq, info.state.last_seq

    async def find_seq(self, alert_id: str, deadline_s: float = 30.0) -> int | None:
        """Stream sequence of the alert with this id: the recent index, else a scan of the stream."""
        seq = self._index.get(alert_id)
        if seq is not None:
            # The index outlives the stream's retention: an alert the stream deleted (age, disk
            # budget) cannot be resumed after, the alerts between it and the oldest kept are gone.
            first, _ = await self.stream_bounds()
            return seq if seq >= first else None
        stop = time.monotonic() + deadline_s
        async for s, hdrs, _ in self._read(1, None, headers_only=True):
            if hdrs and hdrs.get(bus.HDR_MSG_ID) == alert_id:
                return s
            if time.monotonic() > stop:
                break
        return None

    async def replay(self, start_seq: int, end_seq: int | None) -> AsyncIterator[Alert]:
        """Alerts retained from `start_seq` through `end_seq` (None: through the current end)."""
        async for seq, hdrs, body in self._read(start_seq, end_seq):
            try:
                yield Alert.from_bus(body, hdrs, seq)
            except bus.BadEnvelope:
                continue

    async def _read(self, start_seq: int, end_seq: int | None,
                    headers_only: bool = False) -> AsyncIterator[tuple[int, dict | None, bytes]]:
        first, last = await self.stream_bounds()
        if end_seq is None:
            end_seq = last
        start_seq = max(start_seq, first, 1)
        if last == 0 or start_seq > end_seq:
            return
        cfg = jsapi.ConsumerConfig(
            deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq,
            ack_policy=jsapi.AckPolicy.NONE, inactive_threshold=30.0, headers_only=headers_only,
            mem_storage=True,
        )
        psub = await self.js.pull_subscribe(f"{bus.ALERTS_SUBJECT}.>", stream=bus.ALERTS_STREAM.name, config=cfg)
        try:
            while True:
                try:
                    msgs = await psub.fetch(REPLAY_FETCH, timeout=2.0)
                except TimeoutError:
                    return
                for m in msgs:
                    md = m.metadata
                    seq = md.sequence.stream
                    if seq > end_seq:
                        return
                    yield seq, m.headers, m.data
                    if seq >= end_seq or md.num_pending == 0:
                        return
        finally:
            try:
                await psub.unsubscribe()
                await self.js.delete_consumer(bus.ALERTS_STREAM.name, psub._consumer)
            except Exception as e:  # the consumer expires on its own (inactive_threshold)
                log.debug("replay consumer cleanup: %s", e)

    # -- drop reports -----------------------------------------------------------------------------

    def reports(self, now_ns: int | None = None) -> list[bus.DropReport]:
        """The drop reports of this interval, resetting the interval counters (sans-IO)."""
        now_ns = now_ns or time.time_ns()
        out = [bus.DropReport(stage="api", host=self.host, instance=self.instance, time_ns=now_ns,
                              interval_s=self.report_interval, n_evts=self._received_interval,
                              drops=dict(self._bad_interval), totals=dict(self.bad))]
        self._received_interval = 0
        self._bad_interval.clear()
        for s in [*self.subscribers.values(), *self._departed]:
            if s.dropped_interval:
                out.append(bus.DropReport(
                    stage="api", host=self.host, instance=f"{self.instance}/{s.name}", time_ns=now_ns,
                    interval_s=self.report_interval, n_evts=s.offered_interval,
                    drops={DROP_REASON: s.dropped_interval}, totals={DROP_REASON: s.dropped_total}))
            s.dropped_interval = 0
            s.offered_interval = 0
        self._departed.clear()
        return out

    async def publish_reports(self) -> None:
        subject = bus.drops_subject("api", self.host)
        for r in self.reports():
            await self.nc.publish(subject, r.encode())

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            try:
                await self.publish_reports()
            except Exception as e:  # reporting must never take the hub down
                log.debug("drop report failed: %s", e)

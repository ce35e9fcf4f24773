"""Publishing event batches: batching, the per-host sequence, JetStream acks, counted failures.

Batches go to `tiercel.events.<source>.<host>` with `Nats-Msg-Id: <host>:<seq>`. With
`mode="jetstream"` each batch waits for the stream's ack with a bounded number in flight; a
batch that is not acked after its retries (same msg id, so a retry never duplicates) is a
counted `publish_failed` drop. `mode="core"` publishes without acks (the stream still captures
the subject), which is faster but cannot tell a lost batch.

Sequence numbers continue across restarts (`SeqStore`), so a restarted ingest never reuses a
msg id inside the stream's duplicate window. After an unclean stop the sequence resumes at the
reserved high-water mark: downstream then sees a gap no larger than the reservation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import time
from typing import Any

from tiercel.common import bus
from tiercel.ingest.drops import StageCounters
from tiercel.ingest.queue import EventQueue

log = logging.getLogger("tiercel.ingest.publish")


class SeqStore:
    """The next sequence number of this host, persisted with a reservation ahead of use."""

    def __init__(self, path: pathlib.Path | None, reserve: int = 1 << 16):
        self.path = path
        self.reserve = reserve
        self.next = 1
        self.reserved = 0
        if path is not None:
            try:
                data = json.loads(path.read_text())
                clean = bool(data.get("clean"))
                self.next = int(data["next"]) if clean else max(int(data["next"]), int(data.get("reserved", 0)))
                self.next = max(1, self.next)
            except (OSError, ValueError, KeyError, TypeError):
                pass

    def _write(self, clean: bool) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next": self.next, "reserved": self.reserved, "clean": clean}))
        os.replace(tmp, self.path)

    def take(self, n: int) -> int:
        """Reserve n numbers; returns the first."""
        first = self.next
        self.next += n
        if self.next > self.reserved:
            self.reserved = self.next + self.reserve
            self._write(clean=False)
        return first

    def close(self) -> None:
        self.reserved = self.next
        self._write(clean=True)


class Publisher:
    """Drains an EventQueue into batches on the bus."""

    def __init__(self, nc: Any, js: Any, host: str, source: str, queue: EventQueue, counters: StageCounters,
                 seq: SeqStore, batch_size: int = 256, batch_interval: float = 0.02, mode: str = "jetstream",
                 max_inflight: int = 64, ack_timeout: float = 5.0, retries: int = 2):
        self.nc, self.js = nc, js
        self.host, self.source = host, source
        self.subject = bus.events_subject(source, host)
        self.queue = queue
        self.counters = counters
        self.seq = seq
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.mode = mode
        self.ack_timeout = ack_timeout
        self.retries = retries
        self._sem = asyncio.Semaphore(max_inflight)
        self._tasks: set[asyncio.Task] = set()
        self.published_events = 0
        self.published_batches = 0
        self.failed_events = 0
        self.duplicates = 0

    async def run(self, stop: asyncio.Event) -> None:
        """One queued chunk, one batch: producers batch (the kernel reader by size and
        `batch_interval`), since the wire items of a chunk share snapshots."""
        q = self.queue
        while not stop.is_set():
            if not await q.wait(0.2):
                continue
            await self.send(q.take_chunk())

    async def drain(self, timeout: float = 5.0) -> int:
        """At shutdown: publish what is queued within the timeout; returns events left over."""
        deadline = time.monotonic() + timeout
        while len(self.queue) and time.monotonic() < deadline:
            await self.send(self.queue.take_chunk())
        await self.flush(max(0.1, deadline - time.monotonic()))
        return len(self.queue)

    async def flush(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self.mode == "core":
            try:
                await self.nc.flush(timeout=max(0.1, timeout))
            except Exception as e:
                log.debug("flush failed: %s", e)

    async def send(self, items: list[tuple[Any, int]]) -> None:
        if not items:
            return
        try:
            await self._send(items)
        except asyncio.CancelledError:
            self.counters.drop("shutdown", len(items))
            raise

    async def _send(self, items: list[tuple[Any, int]]) -> None:
        events = [it[0] for it in items]
        first = self.seq.take(len(events))
        batch = bus.EventBatch(host=self.host, source=self.source, seq=first, events=events, sent_ns=time.time_ns())
        payload = batch.encode()
        headers = {bus.HDR_MSG_ID: f"{self.host}:{first}"}
        if self.mode == "core":
            try:
                await self.nc.publish(self.subject, payload, headers=headers)
                self._ok(len(events))
            except Exception as e:
                self._fail(len(events), e)
            return
        await self._sem.acquire()
        task = asyncio.create_task(self._publish_js(payload, headers, len(events)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_js(self, payload: bytes, headers: dict[str, str], n: int) -> None:
        try:
            err: Exception | None = None
            for _attempt in range(self.retries + 1):
                try:
                    ack = await self.js.publish(self.subject, payload, timeout=self.ack_timeout, headers=headers)
                    if getattr(ack, "duplicate", False):
                        self.duplicates += 1
                    self._ok(n)
                    return
                except Exception as e:  # timeout, no responders, stream full (discard new)...
                    err = e
                    await asyncio.sleep(0.05)
            self._fail(n, err)
        finally:
            self._sem.release()

    def _ok(self, n: int) -> None:
        self.published_events += n
        self.published_batches += 1

    def _fail(self, n: int, err: Exception | None) -> None:
        self.failed_events += n
        self.counters.drop("publish_failed", n)
        log.warning("publishing %d events failed: %s", n, err or "unknown error")

    @property
    def inflight(self) -> int:
        return len(self._tasks)

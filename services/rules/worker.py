"""The rules worker's event loop: pull event batches, evaluate, publish alerts, then ack.

Delivery (see docs/bus.md, "Delivery guarantees"):

- every worker pulls from the one durable consumer `rules` on `TIERCEL_EVENTS` (a work-queue
  stream), so each batch goes to one worker at a time;
- a batch is acked only after JetStream has acknowledged every alert it produced (stored in
  `TIERCEL_ALERTS`), so a worker killed at any moment leaves its unacked batches in the stream,
  and JetStream redelivers them to a live worker once the ack wait expires;
- redelivered batches produce the same alert ids, which the alerts stream deduplicates
  (`Nats-Msg-Id`), so the stream holds every alert exactly once.

Pulls are pipelined: up to `fetch_batch` batches per pull, at most `max_inflight` batches
between delivery and ack. CPU work of the next pull overlaps the publish acks of the previous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors as jserr
from nats.js import api

from tiercel.common import bus
from tiercel.rules.internal import Window
from tiercel.rules.pipeline import Outcome, Pipeline
from tiercel.rules.seqtrack import SeqTracker

log = logging.getLogger("tiercel.rules")

PUB_ACK_TIMEOUT_S = 5.0


async def ensure_consumer(js: Any, ack_wait_s: float) -> None:
    """Create the shared durable pull consumer, or bring its ack wait up to date."""
    cfg = api.ConsumerConfig(
        durable_name=bus.RULES_CONSUMER, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=ack_wait_s,
        max_deliver=bus.RULES_MAX_DELIVER, max_ack_pending=20_000, max_waiting=512,
        deliver_policy=api.DeliverPolicy.ALL)
    try:
        info = await js.consumer_info(bus.EVENTS_STREAM.name, bus.RULES_CONSUMER)
    except jserr.NotFoundError:
        try:
            await js.add_consumer(bus.EVENTS_STREAM.name, cfg)
            return
        except jserr.BadRequestError:  # created concurrently by another worker
            info = await js.consumer_info(bus.EVENTS_STREAM.name, bus.RULES_CONSUMER)
    if abs((info.config.ack_wait or 0) - ack_wait_s) > 1e-3:
        with contextlib.suppress(jserr.APIError):
            await js.add_consumer(bus.EVENTS_STREAM.name, cfg)


@dataclass
class Stats:
    """Counters since start (totals) and of the current one-second window."""

    events: int = 0
    batches: int = 0
    alerts: int = 0
    alerts_duplicate: int = 0  # alerts the stream already had (redelivered batches)
    redelivered: int = 0
    rate_limited: int = 0
    drops: Counter = field(default_factory=Counter)
    matches: Counter = field(default_factory=Counter)  # (rule, priority, source) -> n
    lag: int = 0
    window: Window = field(default_factory=Window)
    window_alerts: int = 0


def parse_ack_subject(reply: str) -> tuple[int, int, int]:
    """(delivery count, stream time ns, pending) from `$JS.ACK.<stream>.<consumer>.<delivered>.
    <sseq>.<cseq>.<time>.<pending>` (and the 12-token form with a domain)."""
    t = reply.split(".")
    if len(t) >= 12:
        t = t[:2] + t[4:]
    try:
        return int(t[4]), int(t[7]), int(t[8])
    except (IndexError, ValueError):
        return 1, 0, 0


class Consumer:
    """Pull, evaluate, publish, ack. `pipeline` is swapped and reconfigured by the service."""

    def __init__(self, nc: Any, js: Any, pipeline: Pipeline, stats: Stats, tracker: SeqTracker,
                 fetch_batch: int = 16, max_inflight: int = 64, on_outcome: Any = None,
                 ack_wait_s: float = bus.RULES_ACK_WAIT_S):
        self.nc, self.js, self.pipeline, self.stats, self.tracker = nc, js, pipeline, stats, tracker
        self.ack_wait_s = ack_wait_s
        self.fetch_batch, self.max_inflight = fetch_batch, max_inflight
        self.on_outcome = on_outcome  # callable(Outcome) for metrics
        self._acks: asyncio.Queue = asyncio.Queue(max_inflight)
        self._tasks: list[asyncio.Task] = []
        self.psub: Any = None

    async def start(self) -> None:
        self.psub = await self.js.pull_subscribe_bind(bus.RULES_CONSUMER, stream=bus.EVENTS_STREAM.name)
        self._tasks = [asyncio.create_task(self._pull_loop(), name="rules-pull"),
                       asyncio.create_task(self._ack_loop(), name="rules-ack")]

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop pulling; let batches already evaluated finish publishing and acking."""
        pull, ack = self._tasks
        pull.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pull
        try:
            await asyncio.wait_for(self._acks.join(), drain_timeout)
        except TimeoutError:
            log.warning("stopping with %d batches unacked; they will be redelivered", self._acks.qsize())
        ack.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ack
        with contextlib.suppress(Exception):
            await self.psub.unsubscribe()

    async def _pull_loop(self) -> None:
        failures = 0
        while True:
            try:
                msgs = await self.psub.fetch(self.fetch_batch, timeout=1.0)
                failures = 0
            except (TimeoutError, nats.errors.TimeoutError):
                self.stats.lag = 0
                failures = 0
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
                await asyncio.sleep(0.2)
                continue
            except Exception as e:  # a pull can fail during reconnects and consumer updates
                failures += 1
                log.debug("pull failed: %s", e)
                await asyncio.sleep(0.2)
                if failures >= 5:  # e.g. the consumer was deleted: declare it again
                    await self._rebind(e)
                continue
            for msg in msgs:
                await self._handle(msg)
                # Let publish acks and control requests through between batches.
                await asyncio.sleep(0)

    async def _rebind(self, why: Exception) -> None:
        try:
            await ensure_consumer(self.js, self.ack_wait_s)
            old, self.psub = self.psub, await self.js.pull_subscribe_bind(bus.RULES_CONSUMER,
                                                                           stream=bus.EVENTS_STREAM.name)
            with contextlib.suppress(Exception):
                await old.unsubscribe()
            log.warning("pulling events failed repeatedly (%s); consumer %r declared again", why, bus.RULES_CONSUMER)
        except Exception as e:
            log.warning("pulling events fails (%s) and the consumer cannot be declared again: %s", why, e)

    async def _handle(self, msg: Any) -> None:
        delivered, stream_ns, pending = parse_ack_subject(msg.reply or "")
        st = self.stats
        st.lag = pending
        w = st.window
        w.lag = pending
        if stream_ns:
            w.max_delay_s = max(w.max_delay_s, (time.time_ns() - stream_ns) / 1e9)
        if delivered > 1:
            st.redelivered += 1
            w.redelivered += 1
        out: Outcome = self.pipeline.process(msg.data)
        st.batches += 1
        st.events += out.n_events
        w.n_evts += out.n_events
        if out.drops:
            st.drops.update(out.drops)
            w.drops.update(out.drops)
        if out.matches:
            st.matches.update(out.matches)
        st.rate_limited += out.rate_limited
        futs = []
        for a in out.alerts:
            try:
                futs.append(await self.js.publish_async(a.subject, a.body, headers=a.headers))
            except Exception as e:  # too many stalled publishes, closed connection: redeliver later
                log.debug("alert publish failed: %s", e)
                futs.append(_failed(e))
        if out.ok and out.n_events:
            self.tracker.processed(out.host, out.seq, out.seq + out.n_events, time.monotonic(), delivered == 1)
        if self.on_outcome is not None:
            self.on_outcome(out)
        await self._acks.put((msg, futs, out))

    async def _ack_loop(self) -> None:
        while True:
            msg, futs, out = await self._acks.get()
            try:
                if futs:
                    acks = await asyncio.wait_for(asyncio.gather(*futs), PUB_ACK_TIMEOUT_S)
                    dups = sum(1 for pa in acks if getattr(pa, "duplicate", False))
                    self.stats.alerts += len(acks) - dups
                    self.stats.window_alerts += len(acks) - dups
                    self.stats.alerts_duplicate += dups
                await msg.ack()
            except Exception as e:
                # Alerts not stored: leave the batch to be redelivered (its alerts keep their ids).
                log.warning("alerts of a batch from %s (seq %d) not stored (%s); it will be redelivered",
                            out.host or "?", out.seq, e or type(e).__name__)
                for f in futs:
                    if not f.done():
                        f.cancel()
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
            finally:
                self._acks.task_done()


def _failed(e: Exception) -> asyncio.Future:
    f = asyncio.get_running_loop().create_future()
    f.set_exception(e)
    return f

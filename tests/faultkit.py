"""The fault suite's harness: a load generator that publishes event batches as ingest does, an
observer that timestamps every alert as it appears on the bus, the exactly-once check against the
alerts stream, NATS clusters on loopback, and the report the docs quote (build/faults.json).

Load: batches of `batch_events` wire events (`tiercel.common.wire`) on `tiercel.events.syscall.<host>`,
numbered like ingest numbers them (per-host sequence, `Nats-Msg-Id: <host>:<seq>`), each waited
for until the events stream stored it and re-sent under the same id while NATS is away, as
ingest's publisher does. Every `hit_every`-th event matches the rule `Shadow read by cat`, so the
alert expected for each matching event is known: its seq, and its id `<host>:<seq>:<rule hash>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any

from tiercel.common import bus
from tiercel.common.broker import EmbeddedBroker, free_port
from tiercel.common.config import Config
from tiercel.common.natsconn import connect, ensure_streams

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORT = pathlib.Path(os.environ.get("TIERCEL_FAULTS_REPORT", ROOT / "build" / "faults.json"))

RULE = "Shadow read by cat"
RULES = f"""
- rule: {RULE}
  desc: the rule every fault test counts alerts of
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/shadow
  output: "cat opened %fd.name (proc=%proc.name)"
  priority: WARNING
  tags: [test]
- rule: K8s pod created
  desc: every k8s audit event the webhook fault test posts
  condition: ka.verb = create and ka.target.resource = pods
  output: "pod created (id=%ka.auditid)"
  priority: NOTICE
  source: k8s_audit
"""
ALERT_SUBJECT = bus.alert_subject("Warning", "syscall", RULE)
# Acks are waited for this long before a worker's batches are redelivered. The fault tests use 2 s
# (the default is 10 s: a worker-kill recovery takes that much longer).
ACK_WAIT_S = float(os.environ.get("TIERCEL_FAULTS_ACK_WAIT", "2"))


def rule_hash(rule: str) -> str:
    return hashlib.sha256(rule.encode()).hexdigest()[:8]


def record(scenario: str, figures: dict[str, Any]) -> None:
    """Merge one scenario's figures into the report (build/faults.json by default)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("schema", "tiercel.faults/1")
    data.setdefault("scenarios", {})
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    data["scenarios"][scenario] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "ack_wait_s": ACK_WAIT_S, "loadavg_1m": load, **figures}
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n{scenario}: {json.dumps(figures, sort_keys=True)}")


@dataclass
class Load:
    """Publishes numbered event batches at a steady rate; retries each batch until stored."""

    nc: Any
    host: str = "fault-host"
    batch_events: int = 100
    rate: float = 20.0  # batches per second
    hit_every: int = 10
    publish_timeout: float = 2.0
    seq: int = 1
    batches: int = 0
    errors: int = 0
    published: list[tuple[int, float]] = field(default_factory=list)  # (first seq, stored at: wall clock)
    outages: list[tuple[float, float]] = field(default_factory=list)  # (first failure, next success)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        from tests.ruleskit import open_event
        from tiercel.common.wire import encode_event

        hit = encode_event(open_event(1, "cat", "/etc/shadow"))
        miss = encode_event(open_event(2, "nginx", "/srv/www/index.html"))
        self.items = [hit if i % self.hit_every == 0 else miss for i in range(self.batch_events)]
        self.js = self.nc.jetstream(timeout=self.publish_timeout)

    @property
    def events(self) -> int:
        return self.batches * self.batch_events

    def hits_before(self, t: float | None = None) -> set[int]:
        """Seqs of the matching events stored in the events stream (before time `t`)."""
        out: set[int] = set()
        for first, at in self.published:
            if t is None or at <= t:
                out.update(range(first, first + self.batch_events, self.hit_every))
        return out

    async def _one(self) -> None:
        first = self.seq
        self.seq += self.batch_events  # reserved before any await: a burst may run meanwhile
        data = bus.EventBatch(self.host, "syscall", first, self.items, time.time_ns()).encode()
        headers = {bus.HDR_MSG_ID: f"{self.host}:{first}"}
        failed_at = None
        while True:
            try:
                await self.js.publish(bus.events_subject("syscall", self.host), data, headers=headers,
                                      timeout=self.publish_timeout)
                break
            except Exception:  # NATS away, leader election, timeouts: ingest retries the same id
                self.errors += 1
                failed_at = failed_at or time.time()
                await asyncio.sleep(0.05)
        now = time.time()
        if failed_at is not None:
            self.outages.append((failed_at, now))
        self.published.append((first, now))
        self.batches += 1

    async def burst(self, n: int) -> None:
        """`n` batches at once (in the same numbering), acks awaited together."""
        acks = []
        firsts = []
        for _ in range(n):
            first = self.seq
            self.seq += self.batch_events
            self.batches += 1
            data = bus.EventBatch(self.host, "syscall", first, self.items, time.time_ns()).encode()
            acks.append(await self.js.publish_async(bus.events_subject("syscall", self.host), data,
                                                    headers={bus.HDR_MSG_ID: f"{self.host}:{first}"}))
            firsts.append(first)
        await asyncio.gather(*acks)
        now = time.time()
        self.published.extend((f, now) for f in firsts)

    async def _run(self) -> None:
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop.is_set():
            await self._one()
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            nxt = max(nxt, time.monotonic() - period)

    def start(self) -> Load:
        self._task = asyncio.create_task(self._run(), name="fault-load")
        return self

    async def finish(self) -> None:
        self.stop.set()
        if self._task:
            await self._task

    def longest_outage(self) -> float:
        """Longest time a batch was being re-sent (from its first failure)."""
        return max((b - a for a, b in self.outages), default=0.0)

    def max_ack_gap(self) -> float:
        """Longest time between two stored batches: the publisher's view of an outage."""
        times = sorted(t for _, t in self.published)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


class Observer:
    """When each alert of `RULE` was stored: an ordered consumer of the alerts stream (it survives
    broker restarts) reading each message's stored time. Also counts what a core NATS subscriber
    of the alert subject receives (duplicates included: the stream deduplicates, core NATS not)."""

    def __init__(self, nc: Any, host: str = "fault-host"):
        self.nc, self.host = nc, host
        self.first_seen: dict[int, float] = {}  # seq -> stored at (wall clock, s)
        self.core_deliveries = 0
        self.core_seqs: set[int] = set()

    async def start(self) -> Observer:
        async def on_stored(msg: Any) -> None:
            a = json.loads(msg.data)
            if a.get("hostname") == self.host:
                self.first_seen.setdefault(a["seq"], msg.metadata.timestamp.timestamp())

        async def on_core(msg: Any) -> None:
            a = json.loads(msg.data)
            if a.get("hostname") == self.host:
                self.core_deliveries += 1
                self.core_seqs.add(a["seq"])

        await self.nc.jetstream().subscribe(ALERT_SUBJECT, cb=on_stored, ordered_consumer=True,
                                            stream=bus.ALERTS_STREAM.name)
        await self.nc.subscribe(ALERT_SUBJECT, cb=on_core)
        return self

    @property
    def core_duplicates(self) -> int:
        return self.core_deliveries - len(self.core_seqs)

    async def until_all(self, seqs: set[int], timeout: float) -> float | None:
        """Waits until every seq was stored; returns when the last one was (wall clock)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if seqs <= self.first_seen.keys():
                return max((self.first_seen[s] for s in seqs), default=time.time())
            await asyncio.sleep(0.05)
        return None

    def caught_up_after(self, seqs: set[int], t0: float) -> float:
        """Seconds after t0 (wall clock) until the last of `seqs` was stored (0: all before t0)."""
        return max(0.0, max((self.first_seen[s] for s in seqs), default=t0) - t0)

    def stored_after(self, t0: float) -> list[float]:
        return sorted(t for t in self.first_seen.values() if t >= t0)


def recovery_s(load: Load, obs: Observer, t0: float, threshold: float = 1.0) -> float | None:
    """Seconds after `t0` until alerts are stored within `threshold` of their batch again, for good:
    the publish time of the first batch from which every batch's alerts took less than that."""
    lat = []
    for first, at in load.published:
        hits = range(first, first + load.batch_events, load.hit_every)
        if any(h not in obs.first_seen for h in hits):
            return None
        lat.append((at, max(obs.first_seen[h] for h in hits) - at))
    lat.sort()
    ok_from = None
    for at, d in lat:
        if d >= threshold:
            ok_from = None
        elif ok_from is None:
            ok_from = at
    if ok_from is None:
        return None
    return round(max(0.0, ok_from - t0), 3)


def latency_s(load: Load, obs: Observer, t_from: float, t_to: float) -> dict[str, float]:
    """Median and worst time from a batch stored to its alerts stored, for batches in [t_from, t_to]."""
    import statistics

    lat = []
    for first, at in load.published:
        if t_from <= at <= t_to:
            hits = range(first, first + load.batch_events, load.hit_every)
            if all(h in obs.first_seen for h in hits):
                lat.append(max(obs.first_seen[h] for h in hits) - at)
    if not lat:
        return {}
    return {"median": round(statistics.median(lat), 3), "max": round(max(lat), 3), "batches": len(lat)}


async def stored_alerts(js: Any, host: str = "fault-host", rule: str = RULE) -> list[dict[str, Any]]:
    """Every alert of `rule` for `host` in TIERCEL_ALERTS (one ephemeral pull consumer)."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    subject = bus.alert_subject("Warning", "syscall", rule)
    info = await js.stream_info(bus.ALERTS_STREAM.name, subjects_filter=subject)
    total = (info.state.subjects or {}).get(subject, 0)
    out: list[dict[str, Any]] = []
    if not total:
        return out
    psub = await js.pull_subscribe(subject, stream=bus.ALERTS_STREAM.name,
                                   config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL))
    try:
        while len(out) < total:
            for m in await psub.fetch(min(2000, total - len(out)), timeout=10):
                a = json.loads(m.data)
                if a.get("hostname") == host:
                    out.append(a)
    finally:
        with contextlib.suppress(Exception):
            await psub.unsubscribe()
    return out


def exactly_once(alerts: list[dict[str, Any]], expected: set[int], host: str = "fault-host",
                 rule: str = RULE) -> dict[str, int]:
    """Lost, duplicated and unexpected alerts of `rule` (asserting the ids are the contract's)."""
    seqs = [a["seq"] for a in alerts]
    h = rule_hash(rule)
    assert all(a["id"] == f"{host}:{a['seq']}:{h}" for a in alerts)  # so a seq stands for its id
    return {"expected": len(expected), "stored": len(seqs), "lost": len(expected - set(seqs)),
            "duplicated": len(seqs) - len(set(seqs)), "unexpected": len(set(seqs) - expected)}


async def bus_conn(url: str, name: str = "fault-test") -> Any:
    nc = await connect(Config({"nats.url": url}), name)
    return nc


async def setup_streams(url: str, replicas: int = 1) -> None:
    nc = await bus_conn(url)
    try:
        await ensure_streams(nc.jetstream(), replicas)
    finally:
        await nc.close()


# --- NATS clusters on loopback -------------------------------------------------------------------


def cluster_config(name: str, cluster_port: int, route_ports: list[int]) -> str:
    """The cluster block of one node: its route listener and routes to the others (a node's route
    to itself is ignored by nats-server, so every node can carry the same list)."""
    routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
    return (f"cluster {{\n  name: {name}\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{routes}]\n}}\n")


class Cluster:
    """`n` nats-servers with JetStream, clustered over loopback (server_name n0, n1, ...)."""

    def __init__(self, workdir: pathlib.Path, n: int = 3, name: str = "tiercel"):
        self.route_ports = [free_port() for _ in range(n)]
        self.nodes = [EmbeddedBroker(store_dir=workdir / f"n{i}" / "js", port=free_port(), name=f"n{i}",
                                     extra_config=cluster_config(name, self.route_ports[i], self.route_ports))
                      for i in range(n)]

    @property
    def url(self) -> str:
        return ",".join(b.url for b in self.nodes)

    def start(self) -> Cluster:
        for b in self.nodes:
            b.start()
        return self

    def stop(self) -> None:
        for b in self.nodes:
            b.stop()

    def node(self, server_name: str) -> EmbeddedBroker:
        return next(b for b in self.nodes if b.name == server_name)

    async def wait_jetstream(self, timeout: float = 30.0) -> None:
        """Until the cluster has a JetStream meta leader (a stream can be created)."""
        nc = await bus_conn(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    await nc.jetstream().account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

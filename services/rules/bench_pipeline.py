"""`tiercel bench pipeline`: events through NATS → rules workers → alerts, with real processes.

Figures:

- **throughput, 1 and 2 workers** (events/s): a backlog of event batches is loaded into the events
  stream while the shared consumer is paused, then released; the time until the stream is empty
  (every batch evaluated, its alerts stored, the batch acked) gives the rate. The publisher does
  not compete with the workers for the CPU during the measurement.
- **scaling** (2 workers / 1 worker), target ≥ 1.8.
- **alert latency p50/p99 at 10k events/s** (ms), target p99 < 50: a publisher paces batches at
  10,000 events/s (ingest's batching: up to 256 events or 20 ms); latency is from the batch's
  publish to the alert's arrival at a subscriber of `tiercel.alerts.>`.
- **reference**: the raw nats-py hop on the same server, same batches: core publish → subscriber
  (events/s through one subscriber process; latency of the paced stream).

The workload is Tiercel's default ruleset over the rules benchmark's event mix (a busy server run
through the state engine; now and then a web server starts a shell that reads /etc/shadow). On this 2-core machine
the publisher, nats-server and the workers share the cores: with 2 workers there is no idle core
left for the broker, which bounds the scaling figure (see the report's `extra`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tiercel.common.benchmark import BenchContext, Result, register

BATCH = 256
LATENCY_RATE = 10_000.0
TARGET_SCALING = 1.8
TARGET_P99_MS = 50.0
HOST = "bench-host"


def workload(n_events: int) -> tuple[list[Any], int]:
    """The rules benchmark's event mix (a busy server through the real state engine, with now and
    then a web server starting a shell that reads /etc/shadow); the events and how many alerts the
    default ruleset raises on them."""
    from tiercel.common.config import Config
    from tiercel.rules.bench import event_mix
    from tiercel.rules.compiled import EngineAdapter
    from tiercel.rules.service import seed_files

    events = event_mix(n_events)
    cfg = Config()
    rs = EngineAdapter(cfg, HOST).build(seed_files(cfg), []).ruleset
    return events, sum(len(rs.process(e)) for e in events)


def batches(events: list[Any], size: int) -> list[list[bytes]]:
    """Wire items per batch: one encode_events call per batch, as thread snapshots are shared
    within a batch only."""
    from tiercel.common.wire import encode_events

    return [encode_events(events[i:i + size]) for i in range(0, len(events), size)]


class Workers:
    """N `tiercel rules serve` processes on the bench broker."""

    def __init__(self, url: str, n: int, workdir: str):
        self.url, self.n, self.workdir = url, n, workdir
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Workers:
        env = dict(os.environ, TIERCEL_NATS_URL=self.url, PYTHONUNBUFFERED="1")
        for i in range(self.n):
            log = open(Path(self.workdir) / f"worker-{self.n}-{i}.log", "ab")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "tiercel", "rules", "serve", "--index", str(i), "-o", "metrics.enabled=false",
                 "-o", "log_level=warning"], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def _connect(url: str) -> Any:
    import nats

    return await nats.connect(url, pending_size=64 << 20, max_reconnect_attempts=0)


async def _wait_ready(nc: Any, n: int, timeout: float = 120.0) -> None:
    """Until n rules workers report ready with the same ruleset revision."""
    import json

    from tiercel.common import bus

    ready: dict[str, int] = {}

    async def cb(msg: Any) -> None:
        hb = json.loads(msg.data)
        if hb.get("state") == "ready":
            ready[hb["instance"]] = hb.get("revision", 0)

    sub = await nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.rules.>", cb=cb)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ready) >= n and len(set(ready.values())) == 1:
            await sub.unsubscribe()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"only {len(ready)} of {n} rules workers became ready within {timeout:g}s")


async def _reset(js: Any) -> None:
    from tiercel.common import bus

    for s in (bus.EVENTS_STREAM.name, bus.ALERTS_STREAM.name):
        await js.purge_stream(s)


async def _publish_backlog(js: Any, payloads: list[tuple[int, bytes]]) -> None:
    from tiercel.common import bus

    futs = []
    for seq, p in payloads:
        futs.append(await js.publish_async(bus.events_subject("syscall", HOST), p,
                                           headers={bus.HDR_MSG_ID: f"{HOST}:{seq}"}))
        if len(futs) >= 256:
            await asyncio.gather(*futs)
            futs = []
    await asyncio.gather(*futs)


def _encode(wire: list[list[Any]], seq0: int) -> list[tuple[int, bytes]]:
    """(seq of the first event, encoded batch), numbered from seq0 without gaps."""
    from tiercel.common import bus

    out = []
    seq = seq0
    for b in wire:
        out.append((seq, bus.EventBatch(HOST, "syscall", seq, b, time.time_ns()).encode()))
        seq += len(b)
    return out


async def _throughput_run(url: str, wire: list[list[Any]], seq0: int, pids: list[int]) -> tuple[float, float]:
    """Events/s to drain a backlog with the workers already running, and the workers' CPU seconds."""
    from tiercel.common import bus

    nc = await _connect(url)
    js = nc.jetstream()
    await _reset(js)
    stream, consumer = bus.EVENTS_STREAM.name, bus.RULES_CONSUMER
    await js.pause_consumer(stream, consumer, "2100-01-01T00:00:00Z")
    await _publish_backlog(js, _encode(wire, seq0))
    n_events = sum(len(b) for b in wire)
    total = len(wire)
    cpu0 = sum(_cpu_s(p) for p in pids)
    await js.resume_consumer(stream, consumer)
    # The clock starts at the first ack: pull requests made while the consumer was paused wait
    # for their expiry (up to 1 s) before workers pull again, which is not the workers' speed.
    t0 = None
    while True:
        left = (await js.stream_info(stream)).state.messages
        if t0 is None and left < total:
            t0, done0 = time.perf_counter(), total - left
        if not left:
            break
        await asyncio.sleep(0.01)
    dt = time.perf_counter() - t0
    n_events = n_events * (total - done0) / total
    cpu = sum(_cpu_s(p) for p in pids) - cpu0
    await nc.close()
    return n_events / dt, cpu


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (so far)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def _latency_run(url: str, events: list[Any], seq0: int, duration: float, raw: bool) -> list[float]:
    """Paced publish at LATENCY_RATE; ms from each batch's publish to each of its alerts (or, raw,
    to the batch's arrival at a core subscriber)."""
    from tiercel.common import bus

    nc = await _connect(url)
    js = nc.jetstream()
    await _reset(js)
    sent: dict[int, int] = {}  # seq of first event -> send ns
    lat: list[float] = []
    firsts: list[int] = []

    async def on_alert(msg: Any) -> None:
        now = time.time_ns()
        a = bus.decode_alert(msg.data)
        i = _bisect(firsts, int(a.get("seq", 0)))
        if i >= 0:
            lat.append((now - sent[firsts[i]]) / 1e6)

    async def on_raw(msg: Any) -> None:
        now = time.time_ns()
        b = bus.EventBatch.decode(msg.data)
        lat.append((now - b.sent_ns) / 1e6)

    raw_subject = f"bench.raw.{os.getpid()}"
    if raw:
        await nc.subscribe(raw_subject, cb=on_raw)
    else:
        await nc.subscribe(f"{bus.ALERTS_SUBJECT}.>", cb=on_alert)
    await nc.flush()
    # Ingest-like batching at the rate: a batch every 20 ms (at most BATCH events).
    per_batch = min(BATCH, max(1, int(LATENCY_RATE * 0.02)))
    interval = per_batch / LATENCY_RATE
    paced = batches(events, per_batch)
    seq = seq0
    t_start = time.perf_counter()
    k = 0
    futs = []
    while time.perf_counter() - t_start < duration:
        items = paced[k % len(paced)]
        now_ns = time.time_ns()
        data = bus.EventBatch(HOST, "syscall", seq, items, now_ns).encode()
        firsts.append(seq)
        sent[seq] = now_ns
        if raw:
            await nc.publish(raw_subject, data)
        else:
            futs.append(await js.publish_async(bus.events_subject("syscall", HOST), data,
                                               headers={bus.HDR_MSG_ID: f"{HOST}:{seq}"}))
            if len(futs) > 64:
                await asyncio.gather(*futs)
                futs = []
        seq += len(items)
        k += 1
        delay = t_start + k * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.gather(*futs)
    await asyncio.sleep(1.0)  # let the last alerts arrive
    await nc.close()
    return lat


def _bisect(xs: list[int], v: int) -> int:
    import bisect

    return bisect.bisect_right(xs, v) - 1


async def _raw_throughput(url: str, payloads: list[bytes], n_events: int) -> float:
    """Events/s of the same batches through core NATS to a subscriber in another process."""
    subject = f"bench.rawtp.{os.getpid()}"
    code = (
        "import asyncio, nats, sys\n"
        "async def main():\n"
        f"    nc = await nats.connect({url!r}); n = 0; done = asyncio.Event()\n"
        "    async def cb(m):\n"
        "        nonlocal n; n += 1\n"
        f"        if n >= {len(payloads)}: done.set()\n"
        f"    await nc.subscribe({subject!r}, cb=cb, pending_msgs_limit=-1, pending_bytes_limit=-1)\n"
        "    await nc.flush(); print('ready', flush=True)\n"
        "    await asyncio.wait_for(done.wait(), 120); print('done', flush=True); await nc.close()\n"
        "asyncio.run(main())\n")
    p = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE)
    assert p.stdout
    await p.stdout.readline()
    nc = await _connect(url)
    t0 = time.perf_counter()
    for data in payloads:
        await nc.publish(subject, data)
    await nc.flush()
    await p.stdout.readline()
    dt = time.perf_counter() - t0
    await p.wait()
    await nc.close()
    return n_events / dt


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


@register("pipeline")
def bench(ctx: BenchContext) -> list[Result]:
    from tiercel.common.broker import EmbeddedBroker
    from tiercel.common.config import Config
    from tiercel.common.natsconn import connect, ensure_streams

    n_events = ctx.scale(300_000, 20_000)
    duration = ctx.scale(10, 3)
    events, matching = workload(n_events)
    wire = batches(events, BATCH)
    results: list[Result] = []
    with EmbeddedBroker(store_dir=Path(ctx.workdir) / "pipeline-js") as broker:
        url = broker.url

        async def setup() -> None:
            nc = await connect(Config({"nats.url": url}), "bench")
            await ensure_streams(nc.jetstream())
            await nc.close()

        asyncio.run(setup())
        payloads = [p for _, p in _encode(wire, 1)]
        ref_tp = [asyncio.run(_raw_throughput(url, payloads, n_events)) for _ in range(ctx.runs)]
        ref_lat = asyncio.run(_latency_run(url, events, 1, duration, raw=True))
        tp: dict[int, list[float]] = {}
        per_cpu: dict[int, list[float]] = {}
        broker_cpu: dict[int, list[float]] = {}
        lat: list[float] = []
        seq0 = 1
        for n in (1, 2):
            with Workers(url, n, ctx.workdir) as w:
                asyncio.run(_wait_ready_url(url, n))
                pids = [p.pid for p in w.procs]
                tp[n], per_cpu[n] = [], []
                for r in range(ctx.warmup + ctx.runs):
                    b0 = _cpu_s(broker.proc.pid)
                    rate, cpu = asyncio.run(_throughput_run(url, wire, seq0, pids))
                    bcpu = _cpu_s(broker.proc.pid) - b0
                    seq0 += n_events
                    if r >= ctx.warmup:
                        tp[n].append(rate)
                        per_cpu[n].append(n_events / cpu if cpu else float("nan"))
                        broker_cpu.setdefault(n, []).append(bcpu)
                    ctx.log(f"pipeline: {n} worker(s) run {r}: {rate:,.0f} events/s, workers' CPU {cpu:.2f} s, "
                            f"nats-server CPU {bcpu:.2f} s (incl. loading the backlog)")
                if n == 2:
                    lat = asyncio.run(_latency_run(url, events, seq0, duration, raw=False))
    ref = Result("raw nats-py pub→sub", "events/s", ref_tp)
    results.append(Result("throughput, 1 worker", "events/s", tp[1], reference=ref,
                          extra={"events": n_events, "alerting": matching, "batch": BATCH,
                                 "events_per_worker_cpu_s": statistics.median(per_cpu[1]),
                                 "nats_server_cpu_s": statistics.median(broker_cpu[1])}))
    results.append(Result("throughput, 2 workers", "events/s", tp[2], reference=ref,
                          extra={"events_per_worker_cpu_s": statistics.median(per_cpu[2]),
                                 "nats_server_cpu_s": statistics.median(broker_cpu[2])}))
    scale = [b / a for a, b in zip(tp[1], tp[2], strict=False)] if tp[1] and tp[2] else []
    results.append(Result("scaling 2 workers / 1", "x", scale, target=TARGET_SCALING,
                          extra={"cpus": os.cpu_count(), "loadavg": os.getloadavg(),
                                 "note": "publisher-free drain; nats-server and both workers share the cores"}))
    # What the 2 workers would do with a core each: per-worker-CPU efficiency, 2 vs 1 worker.
    eff = [2 * b / a for a, b in zip(per_cpu[1], per_cpu[2], strict=False)]
    results.append(Result("scaling, CPU-normalized", "x", eff, target=TARGET_SCALING,
                          extra={"how": "2 x (events per worker CPU-second with 2 workers) / (same with 1 worker)",
                                 "events_per_worker_cpu_s_1": statistics.median(per_cpu[1]),
                                 "events_per_worker_cpu_s_2": statistics.median(per_cpu[2])}))
    ref_p50 = Result("raw hop p50", "ms", [_pct(ref_lat, 0.5)], higher_is_better=False)
    ref_p99 = Result("raw hop p99", "ms", [_pct(ref_lat, 0.99)], higher_is_better=False)
    results.append(Result("alert latency p50 @10k ev/s, 2 workers", "ms", [_pct(lat, 0.5)], higher_is_better=False,
                          reference=ref_p50, extra={"alerts": len(lat)}))
    results.append(Result("alert latency p99 @10k ev/s, 2 workers", "ms", [_pct(lat, 0.99)], higher_is_better=False,
                          reference=ref_p99, target=TARGET_P99_MS,
                          extra={"alerts": len(lat), "mean": statistics.fmean(lat) if lat else None}))
    return results


async def _wait_ready_url(url: str, n: int) -> None:
    nc = await _connect(url)
    try:
        await _wait_ready(nc, n)
    finally:
        await nc.close()

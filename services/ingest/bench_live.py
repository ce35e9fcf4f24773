"""`tiercel bench ingest`: live kernel events captured from a load generator, on this machine.

Each run starts a real `IngestWorker` (audit driver, JetStream publishing to an embedded
nats-server) and a generator process that opens and closes a file as fast as it can for a few
seconds. Figures: events/s published, events/s seen from the kernel, and the unaccounted loss
(seen - published - counted drops, which must be 0), kernel-side drops (audit lost, ENOBUFS)
and the ingest process's CPU per event. A second part replays records recorded from the kernel
through each stage alone (assemble, translate, resolve+encode, batch encode) to show where the
time goes, in µs per event.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import resource
import select
import subprocess
import sys
import tempfile
import time
from typing import Any

from tiercel.common.benchmark import BenchContext, Result, register

TARGET = 50_000.0

GENERATOR = """
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
n = 0
while time.monotonic() < end:
    for _ in range(200):
        os.close(os.open("/etc/hostname", os.O_RDONLY))
    n += 200
print(n)
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (audit netlink)"
    try:
        from tiercel.ingest.audit.client import AuditControl

        with AuditControl() as c:
            st = c.get_status()
    except OSError as e:
        return f"kernel audit not usable: {e}"
    if st.pid and os.path.exists(f"/proc/{st.pid}"):
        return f"kernel audit is held by pid {st.pid}"
    return None


async def _one_run(url: str, state_dir: pathlib.Path, seconds: float, mode: str) -> dict[str, Any]:
    from tiercel.common.config import load
    from tiercel.ingest.worker import IngestWorker

    cfg = load(None, [f"nats.url={url}", f"state_dir={state_dir}", "k8s_audit.enabled=false",
                      "metrics.enabled=false", "ingest.batch_size=1024", "ingest.queue_size=262144",
                      "syscall_event_drops.actions=ignore"])
    w = IngestWorker(cfg, ["openat", "close"], publish_mode=mode)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    while w.reader is None and not task.done():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    base_seen, base_pub = w.kernel.n_evts, w.publisher.published_events
    base_drops = w.ingest.n_drops + w.kernel.n_drops
    cpu0, t0 = _cpu(), time.perf_counter()
    gen = await asyncio.create_subprocess_exec(sys.executable, "-c", GENERATOR, str(seconds),
                                               stdout=asyncio.subprocess.PIPE)
    out, _ = await gen.communicate()
    # let the pipeline catch up with what the kernel already queued
    last = -1
    while w.kernel.n_evts != last:
        last = w.kernel.n_evts
        await asyncio.sleep(0.5)
    stop.set()
    await task
    dt = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    seen = w.kernel.n_evts - base_seen
    published = w.publisher.published_events - base_pub
    drops = w.ingest.n_drops + w.kernel.n_drops - base_drops
    # the invariant over the worker's whole life: every event seen is published or counted
    unaccounted = w.ingest.n_evts - w.publisher.published_events - w.ingest.n_drops
    return {"seconds": dt, "gen_seconds": seconds, "syscalls": 2 * int(out.decode().strip() or 0),
            "seen": seen, "published": published, "drops": drops, "unaccounted": unaccounted,
            "kernel_drops": dict(w.kernel.totals), "ingest_totals": dict(w.ingest.totals), "cpu": cpu}


def _record_raw(n: int) -> list[bytes]:
    """Raw audit datagrams of a generator's openat/close, straight from the kernel."""
    from tiercel.ingest.audit.session import AuditSession

    s = AuditSession(pathlib.Path(tempfile.mkdtemp(prefix="tiercel-bench-audit-")))
    s.start(["openat", "close"])
    out: list[bytes] = []
    gen = subprocess.Popen([sys.executable, "-c", GENERATOR, "30"], stdout=subprocess.DEVNULL)
    try:
        sock = s.reader.sock
        while len(out) < n:
            select.select([sock], [], [], 0.2)
            try:
                while len(out) < n:
                    out.append(sock.recv(65536))
            except BlockingIOError:
                pass
    finally:
        gen.kill()
        gen.wait()
        s.stop()
    return out


def _stages(raw: list[bytes]) -> dict[str, float]:
    """µs per event of each stage, replaying recorded datagrams (the state engine seeded from
    this host's /proc, as ingest does)."""
    from tiercel.common import bus
    from tiercel.common.wire import Encoder
    from tiercel.ingest.audit.assembler import Assembler
    from tiercel.ingest.audit.translate import Translator
    from tiercel.ingest.livestate import LiveState

    asm = Assembler()
    t = time.thread_time()
    aes: list = []
    asm.feed_datagrams(raw, 0, aes)
    t_asm = time.thread_time() - t
    tr = Translator(self_pid=-1, resolve=False)
    t = time.thread_time()
    pairs = [p for p in map(tr.translate, aes) if p is not None]
    t_tr = time.thread_time() - t
    state = LiveState()
    state.seed()
    t = time.thread_time()
    for ev, ident in pairs:
        state.process(ev, ident)
    t_state = time.thread_time() - t
    t = time.thread_time()
    wire = []
    for i in range(0, len(pairs), 1024):
        enc = Encoder()
        wire.extend(enc.encode(ev) for ev, _ in pairs[i:i + 1024])
    t_enc = time.thread_time() - t
    t = time.thread_time()
    for i in range(0, len(wire), 1024):
        bus.EventBatch("h", "syscall", i + 1, wire[i:i + 1024], 0).encode()
    t_batch = time.thread_time() - t
    n = max(1, len(pairs))
    return {"events": len(pairs), "records_per_event": len(raw) / n, "wire_bytes_per_event": sum(map(len, wire)) / n,
            "assemble": t_asm / n * 1e6, "translate": t_tr / n * 1e6, "state engine": t_state / n * 1e6,
            "wire encode": t_enc / n * 1e6, "batch msgpack": t_batch / n * 1e6}


@register("ingest")
def bench(ctx: BenchContext) -> list[Result]:
    why = _usable()
    if why:
        ctx.log(f"bench ingest: skipped: {why}")
        return [Result(f"skipped: {why}", "events/s", [])]
    from tiercel.common.broker import EmbeddedBroker

    seconds = 1.0 if ctx.tiny else 5.0
    work = pathlib.Path(ctx.workdir)
    rates, seen_rates, cpu_us, unacc, kdrop, gen_rates = [], [], [], [], [], []
    core_rates = []
    with EmbeddedBroker(store_dir=work / "js") as b:
        for i in range(ctx.warmup + ctx.runs):
            r = asyncio.run(_one_run(b.url, work / f"state{i}", seconds, "jetstream"))
            if i < ctx.warmup:
                continue
            ctx.log(f"bench ingest: run {i - ctx.warmup + 1}: seen {r['seen']}, published {r['published']}, "
                    f"kernel drops {r['kernel_drops']}, ingest drops {r['ingest_totals']}, cpu {r['cpu']:.2f}s")
            rates.append(r["published"] / r["seconds"])
            seen_rates.append(r["seen"] / r["seconds"])
            gen_rates.append(r["syscalls"] / r["gen_seconds"])
            cpu_us.append(r["cpu"] / max(1, r["seen"]) * 1e6)
            unacc.append(float(r["unaccounted"]))
            kdrop.append(float(sum(r["kernel_drops"].values())))
        r = asyncio.run(_one_run(b.url, work / "state-core", seconds, "core"))
        core_rates.append(r["published"] / r["seconds"])
    stages = _stages(_record_raw(ctx.scale(20000, 3000)))
    ctx.log("bench ingest: where the time goes (µs per event, replayed): "
            + ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if k != "events"))
    return [
        Result("events/s published (JetStream acks)", "events/s", rates, target=TARGET,
               reference=Result("core publish, no acks", "events/s", core_rates),
               extra={"generator_syscalls_per_s": gen_rates, "stages_us_per_event": stages}),
        Result("events/s seen from the kernel", "events/s", seen_rates),
        Result("unaccounted loss (seen - published - counted)", "events", unacc, higher_is_better=False),
        Result("kernel drops (audit lost + ENOBUFS)", "events", kdrop, higher_is_better=False),
        Result("ingest CPU per event", "µs", cpu_us, higher_is_better=False),
    ] + [Result(f"stage: {k}", "µs/event", [v], higher_is_better=False)
         for k, v in stages.items() if k not in ("events", "records_per_event", "wire_bytes_per_event")]

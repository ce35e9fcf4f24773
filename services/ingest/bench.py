"""`tiercel bench capture`: reading a large .scap through the reader and the state engine.

The capture is written with our writer by looping a real capture's events (../shared's
`curl_google.scap` when present, else the rules benchmark's synthetic mix) with shifted
timestamps, under the real capture's process list. Figures, each side by side with sysdig in the
same run: events/s of read + state (ours) vs `sysdig -r FILE -q` (sysdig parses and keeps state,
prints nothing); the ratio (target >= 1.0); and peak RSS reading the file and a 3x larger one
(memory must stay flat in file size). A third figure bounds what any pure-Python reader could
reach: a loop that only walks the file's blocks and unpacks each event's header (no parameters,
no state, the file already in memory), with its own ratio to sysdig.
"""

from __future__ import annotations

import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tiercel.common.benchmark import BenchContext, Result, register, sysdig_available

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "traces"
SOURCE = SHARED / "libs" / "curl_google.scap"


def _source_items() -> tuple[list[Any], list[Any]]:
    """(metadata items, events) of the capture to loop."""
    from tiercel.common.event import Event
    from tiercel.ingest.scap.reader import read_scap

    if SOURCE.is_file():
        items = list(read_scap(SOURCE))
        return [i for i in items if not isinstance(i, Event)], [i for i in items if isinstance(i, Event)]
    from tiercel.rules.bench import event_mix

    return [], event_mix(5000)


def write_capture(path: str, n_events: int) -> int:
    """A capture of about n_events events; returns the exact count."""
    from tiercel.ingest.scap import blocks as B
    from tiercel.ingest.scap import writer as W

    meta, evs = _source_items()
    span = (evs[-1].ts - evs[0].ts + 1_000_000) if evs else 1
    threads = [t for m in meta if isinstance(m, B.ProcessList) for t in m.threads]
    fdl = {m.tid: m.fds for m in meta if isinstance(m, B.FdList)}
    for t in threads:
        t.fds = {f.num: f for f in fdl.get(t.tid, [])}
    mi = next((m for m in meta if isinstance(m, B.MachineInfo)), None)
    il = next((m for m in meta if isinstance(m, B.InterfaceList)), None)
    ul = next((m for m in meta if isinstance(m, B.UserList)), None)
    n = 0
    with open(path, "wb") as f:
        w = W.ScapWriter(f)
        w.write_header(machine=mi, interfaces=il, users=ul, threads=threads)
        raw = [(e, W.P.encode_params(e.code, e.params)) for e in evs]
        loop = 0
        chunk = []
        while n < n_events:
            shift = loop * span
            for e, params in raw:
                ts0 = e.ts
                e.ts = ts0 + shift
                chunk.append(W.event_block(e, params))
                e.ts = ts0
                n += 1
                if n >= n_events:
                    break
            f.write(b"".join(chunk))
            chunk.clear()
            loop += 1
    return n


def _ours(path: str) -> int:
    from tiercel.ingest.scap.reader import read_scap
    from tiercel.ingest.state import StateEngine

    n = 0
    for _ in StateEngine().run(read_scap(path)):
        n += 1
    return n


def _walk_headers(buf: bytes) -> int:
    """Every event block's header unpacked, nothing else: the floor of a Python reader's cost."""
    block, header = struct.Struct("<II").unpack_from, struct.Struct("<QQIH").unpack_from
    from tiercel.ingest.scap.blocks import EV_BLOCKS as events
    off, n, end = 0, 0, len(buf)
    while off < end:
        btype, blen = block(buf, off)
        if btype in events:
            header(buf, off + 8)
            n += 1
        off += blen
    return n


def _rss_reading(path: str) -> float:
    """Peak RSS (MB) of a fresh interpreter reading the file through reader + state engine."""
    code = ("import sys\n"
            "from tiercel.common.benchmark import max_rss_mb\n"
            "from tiercel.ingest.scap.reader import read_scap\n"
            "from tiercel.ingest.state import StateEngine\n"
            "for _ in StateEngine().run(read_scap(sys.argv[1])): pass\n"
            "print(max_rss_mb())\n")
    p = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=3600)
    return float(p.stdout.strip()) if p.returncode == 0 else float("nan")


@register("capture")
def bench(ctx: BenchContext) -> list[Result]:
    n_target = ctx.scale(600_000, 30_000)
    path = os.path.join(ctx.workdir, "bench.scap")
    t0 = time.perf_counter()
    n = write_capture(path, n_target)
    size_mb = os.path.getsize(path) / 1e6
    ctx.log(f"bench capture: wrote {n:,} events ({size_mb:.1f} MB) in {time.perf_counter() - t0:.1f}s")

    # Wall-clock rates are what the harness compares; CPU-time rates go in `extra` because on a
    # shared machine they say more about the code than the wall clock does.
    cpu_ours: list[float] = []

    def ours() -> float:
        c0 = time.process_time()
        got = _ours(path)
        cpu_ours.append(n / max(time.process_time() - c0, 1e-9))
        assert got == n, (got, n)
        return n

    res = Result("read + state (.scap)", "events/s", ctx.measure(ours), target=None,
                 extra={"events": n, "file_mb": round(size_mb, 1)})
    res.extra["cpu_events_per_s"] = round(statistics.median(cpu_ours[-ctx.runs:]))
    if sysdig_available():
        cpu_theirs: list[float] = []

        def theirs() -> float:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run(["sysdig", "-r", path, "-q"], capture_output=True, timeout=3600)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if p.returncode != 0:
                raise RuntimeError(p.stderr.decode(errors="replace")[-500:])
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            cpu_theirs.append(n / max(cpu, 1e-9))
            return n
        res.reference = Result("sysdig -r -q", "events/s", ctx.measure(theirs))
        res.reference.extra["cpu_events_per_s"] = round(statistics.median(cpu_theirs[-ctx.runs:]))
    res.target = res.reference.median if res.reference is not None else None  # ratio >= 1.0
    out = [res]

    data = Path(path).read_bytes()
    floor = Result("floor: walk event headers only (pure Python, file in memory)", "events/s",
                   ctx.measure(lambda: _walk_headers(data)))
    floor.reference = res.reference
    out.append(floor)

    # memory flat in file size: the same capture and one three times as long
    big = os.path.join(ctx.workdir, "bench3.scap")
    write_capture(big, 3 * n)
    rss1, rss3 = _rss_reading(path), _rss_reading(big)
    out.append(Result("peak RSS, 1x file", "MB", [rss1], higher_is_better=False, extra={"file_mb": round(size_mb, 1)}))
    out.append(Result("peak RSS, 3x file", "MB", [rss3], higher_is_better=False,
                      extra={"file_mb": round(os.path.getsize(big) / 1e6, 1), "growth_mb": round(rss3 - rss1, 1)}))
    for p in (path, big):
        os.unlink(p)
    return out

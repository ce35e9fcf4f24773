"""`falco.drops.service/sub`: drop reports of every stage, live from `tiercel.drops.>`.

The stage and host filters become subject wildcards, so NATS sends this stream only what it asks
for. Each stream has a bounded queue; reports are small and one per stage instance per second,
so overflow means a client that stopped reading, and the oldest reports go first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from typing import Any

import grpc

from tiercel.api import rpc
from tiercel.common import bus
from tiercel.pb.falco import drops_pb2

log = logging.getLogger("tiercel.api")

SERVICE = "falco.drops.service"
QUEUE = 10_000


def subjects(stages: list[str], hosts: list[str]) -> list[str]:
    """The drop subjects a request needs, as few wildcards as possible."""
    st = list(dict.fromkeys(stages)) or ["*"]
    hs = list(dict.fromkeys(bus.token(h) for h in hosts)) or ["*"]
    if st == ["*"] and hs == ["*"]:
        return [f"{bus.DROPS_SUBJECT}.>"]
    return [f"{bus.DROPS_SUBJECT}.{s}.{h}" for s, h in itertools.product(st, hs)]


def to_report(r: bus.DropReport) -> drops_pb2.report:
    out = drops_pb2.report(stage=r.stage, host=r.host, instance=r.instance, n_evts=max(r.n_evts, 0),
                           n_drops=max(r.n_drops, 0), interval_s=r.interval_s)
    out.time.seconds, out.time.nanos = divmod(r.time_ns, 1_000_000_000)
    for k, v in r.drops.items():
        out.drops[k] = max(v, 0)
    for k, v in r.totals.items():
        out.totals[k] = max(v, 0)
    return out


class DropsService:
    def __init__(self, nc: Any):
        self.nc = nc
        self.malformed = 0

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {"sub": rpc.unary_stream(self.sub)})

    async def sub(self, data: bytes, context: grpc.aio.ServicerContext) -> None:
        req = await rpc.parse(drops_pb2.request, data, context)
        bad = [s for s in req.stages if s not in bus.STAGES]
        if bad:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"unknown stage {bad[0]!r}; stages are {', '.join(bus.STAGES)}")
        hosts = set(req.hosts)
        queue: collections.deque[bytes] = collections.deque(maxlen=QUEUE)
        wake = asyncio.Event()

        async def on_msg(msg: Any) -> None:
            try:
                r = bus.DropReport.decode(msg.data)
            except bus.BadEnvelope:
                self.malformed += 1
                return
            if hosts and r.host not in hosts:
                return
            queue.append(to_report(r).SerializeToString())
            wake.set()

        subs = [await self.nc.subscribe(s, cb=on_msg) for s in subjects(list(req.stages), list(req.hosts))]
        try:
            while True:
                if not queue:
                    wake.clear()
                    await wake.wait()
                    continue
                await context.write(queue.popleft())
        finally:
            for s in subs:
                with contextlib.suppress(Exception):
                    await s.unsubscribe()

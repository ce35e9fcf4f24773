"""`falco.outputs.service`: sub, get and sub_batch over the alert hub.

`sub` keeps the Falco 0.43 contract (bidi; the first request is read before anything is written,
later requests are the empty polls old clients send and are ignored) and adds what Falco lacked:
fan-out, filters, a bounded queue per subscriber with counted drops, and resume from an alert id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from tiercel.api import filters, rpc
from tiercel.api.alerts import batch_bytes, with_dropped_before
from tiercel.api.hub import AlertHub, Subscriber
from tiercel.pb.falco import outputs_pb2

log = logging.getLogger("tiercel.api")

SERVICE = "falco.outputs.service"
MAX_QUEUE = 1_000_000
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000
# A `batch` message stays below gRPC clients' default receive limit (4 MiB), whatever max_batch says.
MAX_BATCH_BYTES = 3 << 20
# How many times a resume re-reads the stream to close gaps left by a queue that overflowed
# while it was replaying; after that, overflow counts as drops like any other.
RESUME_ROUNDS = 8


class OutputsService:
    def __init__(self, hub: AlertHub, queue_size: int):
        self.hub = hub
        self.queue_size = queue_size

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "sub": rpc.stream_stream(self.sub),
            "get": rpc.unary_stream(self.get),
            "sub_batch": rpc.stream_stream(self.sub_batch),
        })

    # -- requests ---------------------------------------------------------------------------------

    async def _request(self, data: bytes, context: grpc.aio.ServicerContext) -> tuple[outputs_pb2.request,
                                                                                     filters.AlertFilter]:
        req = await rpc.parse(outputs_pb2.request, data, context)
        try:
            f = filters.from_request(req)
        except filters.FilterError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return req, f

    async def _start_seq(self, req: outputs_pb2.request, context: grpc.aio.ServicerContext) -> int:
        """First stream sequence to replay for `resume_after_id` (0: no resume)."""
        if not req.resume_after_id:
            return 0
        seq = await self.hub.find_seq(req.resume_after_id)
        if seq is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"alert {req.resume_after_id!r} is not retained in the alerts stream "
                                "(expired or unknown); subscribe without resume_after_id, or use get")
        return seq + 1

    # -- sub / sub_batch --------------------------------------------------------------------------

    async def sub(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        await self._subscribe(requests, context, batched=False)

    async def sub_batch(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        await self._subscribe(requests, context, batched=True)

    async def _subscribe(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext,
                         batched: bool) -> None:
        # Registered before the first request is read, so nothing published meanwhile is missed.
        s = self.hub.add(context.peer() or "", "sub_batch" if batched else "sub", self.queue_size)
        drain: asyncio.Task | None = None
        try:
            first = await anext(aiter(requests), None)
            req, f = await self._request(first or b"", context)
            if req.queue_size:
                s.bound = min(req.queue_size, MAX_QUEUE)
            s.set_filter(f)
            max_batch = min(req.max_batch or DEFAULT_BATCH, MAX_BATCH)
            drain = asyncio.create_task(_drain(requests))
            send = self._batch_writer(s, context, max_batch) if batched else self._single_writer(s, context)
            start = await self._start_seq(req, context)
            if start:
                await self._resume(s, start, send, batched, max_batch)
            await self._pump(s, send, batched, max_batch)
        finally:
            if drain is not None:
                drain.cancel()
            self.hub.remove(s)

    def _single_writer(self, s: Subscriber, context: grpc.aio.ServicerContext) -> Callable[[list], Awaitable]:
        async def send(items: list) -> None:
            for a in items:
                d = s.dropped_pending
                if d:
                    s.dropped_pending = 0
                    await context.write(with_dropped_before(a.data, d))
                else:
                    await context.write(a.data)
                s.sent += 1
        return send

    def _batch_writer(self, s: Subscriber, context: grpc.aio.ServicerContext,
                      max_batch: int) -> Callable[[list], Awaitable]:
        async def write(part: list[bytes]) -> None:
            d = s.dropped_pending
            if d:
                s.dropped_pending = 0
                part[0] = with_dropped_before(part[0], d)
            await context.write(batch_bytes(part))
            s.sent += len(part)

        async def send(items: list) -> None:
            part: list[bytes] = []
            size = 0
            for a in items:
                n = len(a.data) + 8  # field tag and length prefix
                if part and (len(part) >= max_batch or size + n > MAX_BATCH_BYTES):
                    await write(part)
                    part, size = [], 0
                part.append(a.data)
                size += n
            if part:
                await write(part)
        return send

    async def _pump(self, s: Subscriber, send: Callable[[list], Awaitable], batched: bool,
                    max_batch: int) -> None:
        q = s.queue
        wake = s.wake
        while True:
            if not q:
                wake.clear()
                await wake.wait()
                q = s.queue  # set_filter/skip may have replaced the deque
                continue
            if batched:
                await send(s.take(max_batch))
            else:
                await send([q.popleft()])

    async def _resume(self, s: Subscriber, start: int, send: Callable[[list], Awaitable], batched: bool,
                      max_batch: int) -> None:
        """Replay from the stream until the live queue takes over, then drop what both hold."""
        s.replaying = True
        last = start - 1
        try:
            for _ in range(RESUME_ROUNDS):
                head = s.queue[0].stream_seq if s.queue else 0
                buf: list = []
                async with contextlib.aclosing(self.hub.replay(last + 1, head - 1 if head else None)) as it:
                    async for a in it:
                        if s.queue and a.stream_seq >= s.queue[0].stream_seq:
                            break
                        last = a.stream_seq
                        if s.filter is None or s.filter(a):
                            buf.append(a)
                            if len(buf) >= (max_batch if batched else 64):
                                await send(buf)
                                buf = []
                if buf:
                    await send(buf)
                s.skip(last)
                # A gap between what was replayed and the live queue's oldest alert means the queue
                # overflowed while replaying: read the stream again to close it.
                if not s.queue or s.queue[0].stream_seq <= last + 1:
                    break
        finally:
            s.replaying = False

    # -- get --------------------------------------------------------------------------------------

    async def get(self, data: bytes, context: grpc.aio.ServicerContext) -> None:
        req, f = await self._request(data, context)
        start = await self._start_seq(req, context) or 1
        _first, end = await self.hub.stream_bounds()  # "up to this call"
        async with contextlib.aclosing(self.hub.replay(start, end)) as it:
            async for a in it:
                if f(a):
                    await context.write(a.data)


async def _drain(requests: AsyncIterator[bytes]) -> None:
    """Read (and ignore) the periodic empty requests old clients send, until they stop."""
    with contextlib.suppress(Exception):
        async for _ in requests:
            pass

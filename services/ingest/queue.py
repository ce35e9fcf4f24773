"""The bounded hand-off between the kernel-reading thread and the asyncio publisher.

The reader never waits: when the queue is full the events are dropped and counted (the kernel
side must keep draining its socket, or the kernel drops instead, unseen). The publisher awaits
items without polling.

Items travel in chunks: one chunk is one batch on the bus, because the wire items of a batch
share thread snapshots (an item may refer to a snapshot an earlier item of its chunk defined).
A chunk that does not fit whole loses its tail, never its head, so what is queued still decodes.
The bound counts events, not chunks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any


class EventQueue:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._chunks: deque[list[Any]] = deque()
        self._n = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self.high_water = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return self._n

    def put_chunk(self, items: list[Any]) -> list[Any]:
        """Append one chunk, or as much of its head as fits; return the items that did not fit
        (the caller counts them)."""
        if not items:
            return []
        with self._lock:
            room = self.maxsize - self._n
            was_empty = not self._n
            if room >= len(items):
                rejected: list[Any] = []
            else:
                room = max(room, 0)
                rejected = items[room:]
                items = items[:room]
            if items:
                self._chunks.append(items)
                self._n += len(items)
            n = self._n
            if n > self.high_water:
                self.high_water = n
        if was_empty and n and self._loop is not None and self._ready is not None:
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # loop closed during shutdown
                pass
        return rejected

    put_many = put_chunk

    def take_chunk(self) -> list[Any]:
        """The oldest chunk (empty list when there is none)."""
        with self._lock:
            if not self._chunks:
                return []
            c = self._chunks.popleft()
            self._n -= len(c)
            return c

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the queue holds something (True) or the timeout passes (False)."""
        assert self._ready is not None
        if self._n:
            return True
        self._ready.clear()
        if self._n:
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return bool(self._n)

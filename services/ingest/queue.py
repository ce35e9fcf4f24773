"""The bounded hand-off between the kernel-reading thread and the asyncio publisher.

The reader never waits: when the queue is full the events are dropped and counted (the kernel
side must keep draining its socket, or the kernel drops instead, unseen). The publisher awaits
items without polling.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any


class EventQueue:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self.high_water = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: list[Any]) -> list[Any]:
        """Append what fits; return the items that did not fit (the caller counts them)."""
        with self._lock:
            room = self.maxsize - len(self._items)
            was_empty = not self._items
            if room >= len(items):
                self._items.extend(items)
                rejected: list[Any] = []
            else:
                room = max(room, 0)
                self._items.extend(items[:room])
                rejected = items[room:]
            n = len(self._items)
            if n > self.high_water:
                self.high_water = n
        if was_empty and n and self._loop is not None and self._ready is not None:
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # loop closed during shutdown
                pass
        return rejected

    def take(self, n: int) -> list[Any]:
        with self._lock:
            k = min(n, len(self._items))
            return [self._items.popleft() for _ in range(k)]

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the queue holds something (True) or the timeout passes (False)."""
        assert self._ready is not None
        if self._items:
            return True
        self._ready.clear()
        if self._items:
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return bool(self._items)

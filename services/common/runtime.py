"""Running a service process: signals, the asyncio loop, heartbeats, and clean one-line failures."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tiercel.common import bus
from tiercel.common.log import redact
from tiercel.common.natsconn import NatsUnavailable

log = logging.getLogger("tiercel")

ServiceMain = Callable[[asyncio.Event], Awaitable[int | None]]


class ServiceError(RuntimeError):
    """A failure worth one line to the user (port in use, bad certificate, ...)."""


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal this process when its parent dies (no orphans under `tiercel up`)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except OSError:
        pass


def run(main: ServiceMain, service: str) -> int:
    """Run `main(stop)` until it returns or SIGTERM/SIGINT sets `stop`. Returns the exit code."""
    if os.environ.get("TIERCEL_SUPERVISED"):
        die_with_parent()

    async def _runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return int(await main(stop) or 0)

    try:
        return asyncio.run(_runner())
    except NatsUnavailable as e:
        hint = "" if getattr(e, "auth", False) else ". Start NATS or give --nats-url."
        print(redact(f"tiercel {service}: error: {e}{hint}"), file=sys.stderr)
        return 1
    except ServiceError as e:
        print(redact(f"tiercel {service}: error: {e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def instance_id(service: str) -> str:
    """A stable-enough identity for this process: service, pid and a short random suffix."""
    return f"{service}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class HeartbeatPublisher:
    """Publishes this instance's heartbeat once per interval.

    `sample()` returns the fields that change: revision, rates, counters, lag, state.
    """

    def __init__(self, nc: Any, service: str, host: str, instance: str,
                 sample: Callable[[], dict[str, Any]], interval: float = 1.0):
        self.nc, self.service, self.host, self.instance = nc, service, host, instance
        self.sample, self.interval = sample, interval
        self.started_ns = time.time_ns()
        self._task: asyncio.Task | None = None

    def heartbeat(self) -> bus.Heartbeat:
        return bus.Heartbeat(service=self.service, host=self.host, instance=self.instance,
                             time_ns=time.time_ns(), started_ns=self.started_ns, **self.sample())

    async def publish_once(self) -> None:
        hb = self.heartbeat()
        await self.nc.publish(bus.heartbeat_subject(self.service, self.host, self.instance), hb.encode())

    async def _loop(self) -> None:
        while True:
            try:
                await self.publish_once()
            except Exception as e:  # a heartbeat must never take the service down
                log.debug("heartbeat publish failed: %s", e)
            await asyncio.sleep(self.interval)

    def start(self) -> HeartbeatPublisher:
        self._task = asyncio.create_task(self._loop(), name=f"heartbeat-{self.service}")
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

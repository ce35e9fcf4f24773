"""`tiercel capture`: live kernel events written to a capture file (.scap, or Tiercel's format),
through the same driver, translation and state engine as `tiercel ingest`. The file starts with
the users and the process table seeded from /proc, so a replay resolves what ingest resolved."""

from __future__ import annotations

import asyncio
import contextlib
import select
import sys
import threading
import time
from typing import Any

from tiercel.common.config import Config
from tiercel.common.runtime import ServiceError
from tiercel.ingest.livestate import LiveState


def _writer(fmt: str, out: Any) -> Any:
    if fmt == "scap":
        from tiercel.ingest.scap.writer import ScapWriter

        return ScapWriter(out)
    from tiercel.ingest.tcap import TcapWriter

    return TcapWriter(out)


def _write_header(writer: Any, state: Any) -> None:
    if hasattr(writer, "write_header_from"):  # .scap: the process table and users, for the replay
        writer.write_header_from(state.engine)
    else:
        writer.write_header()


class LiveCapture:
    def __init__(self, cfg: Config, path: str, fmt: str, duration: float, event_types: list[str] | None):
        self.cfg, self.path, self.fmt, self.duration, self.event_types = cfg, path, fmt, duration, event_types
        self.events = 0

    def _loop(self, driver: Any, state: Any, writer: Any, done: threading.Event) -> None:
        from tiercel.common.wire import Encoder

        fd = driver.fileno()
        wire = hasattr(writer, "write_wire")  # tcap: snapshots taken right after each event
        last = False
        while not last:
            last = done.is_set()  # one more round after the stop: what the kernel had queued
            select.select([fd], [], [], 0.05)
            pairs, _garbled = driver.poll()
            out: list[Any] = []
            enc = Encoder()
            for ev, ident in pairs:
                state.process(ev, ident)
                self.events += 1
                ev.num = self.events
                out.append(enc.encode(ev) if wire else ev)
            if out:
                if wire:
                    writer.write_wire(out)
                else:
                    writer.write_events(out)
            state.maybe_sweep()

    async def run(self, stop: asyncio.Event) -> int:
        from tiercel.ingest.audit.session import AuditUnavailable
        from tiercel.ingest.worker import make_driver

        driver = make_driver(self.cfg, self.event_types)
        if driver is None:
            raise ServiceError("ingest.driver=none: nothing to capture")
        try:
            out = open(self.path, "wb")
        except OSError as e:
            raise ServiceError(f"cannot write {self.path}: {e.strerror or e}") from None
        try:
            try:
                driver.start()
            except (AuditUnavailable, OSError) as e:
                raise ServiceError(str(e)) from None
            state = LiveState()
            n = await asyncio.to_thread(state.seed)
            print(f"tiercel capture: {driver.describe()}; {n} threads from /proc; writing {self.fmt} to "
                  f"{self.path}", file=sys.stderr)
            writer = _writer(self.fmt, out)
            _write_header(writer, state)
            done = threading.Event()
            t = threading.Thread(target=self._loop, args=(driver, state, writer, done), daemon=True)
            t.start()
            t0 = time.monotonic()
            try:
                while not stop.is_set() and t.is_alive():
                    if self.duration and time.monotonic() - t0 >= self.duration:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.1)
            finally:
                done.set()
                await asyncio.to_thread(t.join, 5.0)
                writer.close()
        finally:
            with contextlib.suppress(Exception):
                driver.stop()
            out.close()
        print(f"tiercel capture: {self.events} events written to {self.path}", file=sys.stderr)
        return 0

"""`tiercel capture`: live kernel events written to a capture file (.scap, or Tiercel's format),
through the same driver, translation and process resolution as `tiercel ingest`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import select
import sys
import threading
import time
from typing import Any

from tiercel.common.config import Config
from tiercel.common.runtime import ServiceError


def _writer(fmt: str, out: Any) -> Any:
    if fmt == "scap":
        from tiercel.ingest.scap.writer import ScapWriter

        return ScapWriter(out)
    try:
        mod = importlib.import_module("tiercel.ingest.tcap")
    except ImportError:
        raise ServiceError("the Tiercel capture format (tcap) writer is not available in this build; "
                           "use --format scap") from None
    return mod.TcapWriter(out)


class LiveCapture:
    def __init__(self, cfg: Config, path: str, fmt: str, duration: float, event_types: list[str] | None):
        self.cfg, self.path, self.fmt, self.duration, self.event_types = cfg, path, fmt, duration, event_types
        self.events = 0

    def _loop(self, driver: Any, writer: Any, done: threading.Event) -> None:
        from tiercel.ingest.live import Ancestry

        anc = Ancestry()
        fd = driver.fileno()
        while not done.is_set():
            select.select([fd], [], [], 0.05)
            evs, _garbled = driver.poll()
            for ev in evs:
                anc.resolve(ev)
                self.events += 1
                ev.num = self.events
            if evs:
                writer.write_events(evs)

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
            print(f"tiercel capture: {driver.describe()}; writing {self.fmt} to {self.path}", file=sys.stderr)
            writer = _writer(self.fmt, out)
            writer.write_header()
            done = threading.Event()
            t = threading.Thread(target=self._loop, args=(driver, writer, done), daemon=True)
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

"""Helpers for tests that run real rules workers (`tiercel rules serve` processes) on a real
nats-server: start and kill workers, publish event batches like ingest does, read alerts back
from the alerts stream, wait for heartbeats."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel.common import bus
from tiercel.common.config import Config
from tiercel.common.natsconn import connect, ensure_streams

HOST = "test-host"


def opcode(name: str) -> int:
    from tiercel.common import eventtable as et

    return et.PPME[name]


def open_event(num: int, comm: str, path: str, exepath: str | None = None) -> Any:
    """An `openat` exit event of process `comm` on `path`, with its thread and fd resolved."""
    from tiercel.common.event import Event, FdInfo, ThreadInfo

    init = ThreadInfo(1, comm="systemd", exe="/sbin/init", exepath="/sbin/init", uid=0, user="root")
    t = ThreadInfo(1000 + num % 50, ptid=1, comm=comm, exe=comm, exepath=exepath or f"/usr/bin/{comm}", uid=0,
                   user="root", parent=init)
    e = Event(num, 1_718_000_000_000_000_000 + num * 1000, t.tid, opcode("PPME_SYSCALL_OPENAT_2_X"),
              [3, -100, path, 1, 0, 0, 0])
    e.thread = t
    e.fd = FdInfo(3, "file", path, nameraw=path, flags=1)
    e.fdnum = 3
    e.fdrel = True
    return e


def encode(events: list[Any]) -> list[Any]:
    from tiercel.common.wire import encode_events

    return encode_events(events)


class Workers:
    """`tiercel rules serve` processes. Options go on the command line as `-o key=value`."""

    def __init__(self, url: str, workdir: Path, options: dict[str, Any]):
        self.url, self.workdir, self.options = url, Path(workdir), options
        self.procs: dict[int, subprocess.Popen] = {}

    def start(self, index: int) -> subprocess.Popen:
        args = [sys.executable, "-m", "tiercel", "rules", "serve", "--index", str(index)]
        for k, v in self.options.items():
            args += ["-o", f"{k}={v}"]
        env = dict(os.environ, TIERCEL_NATS_URL=self.url, PYTHONUNBUFFERED="1")
        log = open(self.workdir / f"rules-{index}.log", "ab")
        p = subprocess.Popen(args, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs[index] = p
        return p

    def kill(self, index: int) -> None:
        p = self.procs[index]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def log(self, index: int) -> str:
        return (self.workdir / f"rules-{index}.log").read_text(errors="replace")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Bus:
    """One test connection: publish batches, collect heartbeats, alerts and drop reports."""

    def __init__(self, url: str):
        self.url = url
        self.nc: Any = None
        self.js: Any = None
        self.beats: dict[str, dict[str, Any]] = {}
        self.drops: list[bus.DropReport] = []
        self.core_alerts: list[dict[str, Any]] = []
        self.seq: dict[str, int] = {}

    async def __aenter__(self) -> Bus:
        self.nc = await connect(Config({"nats.url": self.url}), "test-bus")
        self.js = self.nc.jetstream()
        await ensure_streams(self.js)

        async def on_hb(msg: Any) -> None:
            hb = json.loads(msg.data)
            self.beats[hb["instance"]] = hb

        async def on_drop(msg: Any) -> None:
            self.drops.append(bus.DropReport.decode(msg.data))

        async def on_alert(msg: Any) -> None:
            self.core_alerts.append(json.loads(msg.data))

        await self.nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.rules.>", cb=on_hb)
        await self.nc.subscribe(f"{bus.DROPS_SUBJECT}.>", cb=on_drop)
        await self.nc.subscribe(f"{bus.ALERTS_SUBJECT}.>", cb=on_alert)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    def live(self) -> dict[str, dict[str, Any]]:
        now = time.time_ns()
        return {i: hb for i, hb in self.beats.items() if now - hb["time_ns"] < 3e9 and hb.get("state") == "ready"}

    async def until(self, cond: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")

    async def ready(self, n: int, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        return await self.until(lambda: self.live() if len(self.live()) >= n else None, timeout,
                                f"{n} ready rules workers")

    async def publish(self, events: list[Any], host: str = HOST, source: str = "syscall") -> int:
        """One batch, numbered after the previous one of `host`; returns its first seq."""
        first = self.seq.get(host, 1)
        data = bus.EventBatch(host, source, first, encode(events), time.time_ns()).encode()
        await self.js.publish(bus.events_subject(source, host), data, headers={bus.HDR_MSG_ID: f"{host}:{first}"})
        self.seq[host] = first + len(events)
        return first

    async def publish_async(self, events: list[Any], host: str = HOST, source: str = "syscall") -> Any:
        """Like publish, without waiting: returns the future of the stream's ack. `events` may be
        already encoded (a list of wire items)."""
        first = self.seq.get(host, 1)
        items = events if events and isinstance(events[0], bytes) else encode(events)
        data = bus.EventBatch(host, source, first, items, time.time_ns()).encode()
        self.seq[host] = first + len(events)
        return await self.js.publish_async(bus.events_subject(source, host), data,
                                           headers={bus.HDR_MSG_ID: f"{host}:{first}"})

    async def publish_raw(self, data: bytes, host: str = HOST, source: str = "syscall") -> None:
        await self.js.publish(bus.events_subject(source, host), data)

    async def stored_alerts(self) -> list[dict[str, Any]]:
        """Every alert in the alerts stream, in stream order (an ephemeral pull consumer)."""
        from nats.js.api import AckPolicy, ConsumerConfig

        total = (await self.js.stream_info(bus.ALERTS_STREAM.name)).state.messages
        out: list[dict[str, Any]] = []
        if not total:
            return out
        psub = await self.js.pull_subscribe(f"{bus.ALERTS_SUBJECT}.>", stream=bus.ALERTS_STREAM.name,
                                            config=ConsumerConfig(ack_policy=AckPolicy.NONE))
        try:
            while len(out) < total:
                for m in await psub.fetch(min(1000, total - len(out)), timeout=5):
                    out.append(json.loads(m.data))
        finally:
            await psub.unsubscribe()
        return out

    async def status_all(self, wait: float = 0.5) -> list[dict[str, Any]]:
        """The answers of every rules worker to `tiercel.ctl.status.get`."""
        from tiercel.cli.ctl import gather

        raw = await gather(self.nc, bus.control_subject("status", "get"), bus.encode_request("get"), wait)
        return [r for r in (json.loads(x) for x in raw) if r.get("service") == "rules"]

    async def request(self, area: str, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        msg = await self.nc.request(bus.control_subject(area, op), bus.encode_request(op, **args), timeout=timeout)
        return bus.decode_reply(msg.data)

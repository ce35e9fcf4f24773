"""`tiercel up`: the whole pipeline on this machine, as supervised child processes.

Embedded NATS (unless a URL is configured), one ingest, N rules workers and the API. A child that
dies is restarted with exponential backoff; the terminal shows a status line with rates and every
alert, coloured by priority; Ctrl-C stops everything and leaves no process and no socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated

import typer

from tiercel.cli.common import ConfigOpt, NatsUrlOpt, OverrideOpt, fail, load_config
from tiercel.common.log import redact

COLORS = {
    "emergency": "\033[1;97;41m", "alert": "\033[1;91m", "critical": "\033[1;31m", "error": "\033[31m",
    "warning": "\033[33m", "notice": "\033[36m", "informational": "\033[32m", "debug": "\033[2m",
}
RESET = "\033[0m"


@dataclass
class Child:
    """One supervised service process."""

    name: str  # ingest, rules-0, rules-1, api
    service: str  # heartbeat service name: ingest | rules | api
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.5
    stopping: bool = False
    last_exit: int | None = None
    log: list[str] = field(default_factory=list)


class Supervisor:
    """Starts, watches and restarts the children; prints status and alerts."""

    def __init__(self, children: list[Child], env: dict[str, str], nats_url: str, cfg, quiet: bool,
                 json_alerts: bool, broker=None):
        self.children = children
        self.broker = broker
        self.env = env
        self.nats_url = nats_url
        self.cfg = cfg
        self.quiet = quiet
        self.json_alerts = json_alerts
        self.tty = sys.stderr.isatty()
        self.heartbeats: dict[str, dict] = {}  # instance -> last heartbeat
        self.ready_announced = False
        self.stop = asyncio.Event()
        self.alerts_seen = 0

    async def spawn(self, c: Child) -> None:
        c.proc = await asyncio.create_subprocess_exec(
            *c.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        c.started = time.monotonic()
        asyncio.create_task(self._pump_stderr(c))

    async def _pump_stderr(self, c: Child) -> None:
        assert c.proc and c.proc.stderr
        async for raw in c.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.emit(f"[{c.name}] {line}")

    def emit(self, line: str) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    async def watch(self, c: Child) -> None:
        while not self.stop.is_set():
            await self.spawn(c)
            assert c.proc
            code = await c.proc.wait()
            c.last_exit = code
            if self.stop.is_set() or c.stopping:
                return
            uptime = time.monotonic() - c.started
            if uptime > 60:
                c.backoff = 0.5
            c.restarts += 1
            self.emit(f"tiercel up: {c.name} exited with status {code}; restarting in {c.backoff:.1f}s "
                      f"(restart #{c.restarts})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), c.backoff)
            c.backoff = min(c.backoff * 2, 30.0)

    async def watch_broker(self) -> None:
        """Restart the embedded nats-server (same port, same store) if it dies; clients reconnect."""
        backoff = 0.5
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.5)
            proc = self.broker.proc
            if self.stop.is_set() or proc is None or proc.poll() is None:
                continue
            self.emit(f"tiercel up: nats-server exited with status {proc.returncode}; restarting in {backoff:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), backoff)
            if self.stop.is_set():
                return
            try:
                await asyncio.to_thread(self.broker.restart)
                self.emit(f"tiercel up: nats-server restarted on {self.broker.url}")
                backoff = 0.5
            except Exception as e:  # keep trying; the services wait for it
                self.emit(f"tiercel up: nats-server restart failed: {e}")
                backoff = min(backoff * 2, 30.0)

    async def terminate(self) -> None:
        for c in self.children:
            c.stopping = True
            if c.proc and c.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for c in self.children:
            if c.proc and c.proc.returncode is None:
                try:
                    await asyncio.wait_for(c.proc.wait(), max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        c.proc.kill()
                    await c.proc.wait()

    def expected(self) -> dict[str, int]:
        want: dict[str, int] = {}
        for c in self.children:
            want[c.service] = want.get(c.service, 0) + 1
        return want

    def live_counts(self) -> dict[str, int]:
        now = time.time_ns()
        have: dict[str, int] = {}
        for hb in self.heartbeats.values():
            if now - hb["time_ns"] < 3e9 and hb.get("state") == "ready":
                have[hb["service"]] = have.get(hb["service"], 0) + 1
        return have

    def status_line(self) -> str:
        now = time.time_ns()
        ev = al = 0.0
        lag = 0
        revs = set()
        for hb in self.heartbeats.values():
            if now - hb["time_ns"] > 3e9:
                continue
            rates = hb.get("rates", {})
            if hb["service"] == "ingest":
                ev += rates.get("events", 0.0)
            if hb["service"] == "rules":
                al += rates.get("alerts", 0.0)
                lag += hb.get("lag", 0)
                revs.add(hb.get("revision", 0))
        have = self.live_counts()
        svc = " ".join(f"{s}:{have.get(s, 0)}/{n}" for s, n in self.expected().items())
        rev = ",".join(str(r) for r in sorted(revs)) or "-"
        return f"{svc} | events/s {ev:,.0f} | alerts/s {al:,.1f} | lag {lag} | rules rev {rev} | alerts {self.alerts_seen}"

    def on_alert(self, data: bytes) -> None:
        self.alerts_seen += 1
        if self.quiet:
            return
        try:
            a = json.loads(data)
        except ValueError:
            return
        if self.json_alerts:
            self.emit(json.dumps(a, sort_keys=True))
            return
        pr = str(a.get("priority", "")).lower()
        color = COLORS.get(pr, "") if self.tty else ""
        text = a.get("output") or f"{a.get('time')}: {a.get('priority')} {a.get('rule')}"
        self.emit(f"{color}{text}{RESET if color else ''}")

    async def monitor(self) -> None:
        from tiercel.common import bus
        from tiercel.common.natsconn import connect

        nc = await connect(self.cfg, "tiercel-up")

        async def on_hb(msg) -> None:
            try:
                hb = json.loads(msg.data)
                self.heartbeats[hb["instance"]] = hb
            except (ValueError, KeyError, TypeError):
                pass

        async def on_alert(msg) -> None:
            self.on_alert(msg.data)

        await nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.>", cb=on_hb)
        await nc.subscribe(f"{bus.ALERTS_SUBJECT}.>", cb=on_alert)
        last_print = 0.0
        try:
            while not self.stop.is_set():
                have, want = self.live_counts(), self.expected()
                if not self.ready_announced and all(have.get(s, 0) >= n for s, n in want.items()):
                    self.ready_announced = True
                    self.emit(f"tiercel up: ready — NATS {redact(self.nats_url)}, "
                              + ", ".join(f"{n} {s}" for s, n in want.items()))
                now = time.monotonic()
                if self.tty:
                    sys.stderr.write("\r\033[K" + self.status_line())
                    sys.stderr.flush()
                elif now - last_print >= 10 and self.ready_announced:
                    self.emit("tiercel up: " + self.status_line())
                    last_print = now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 1.0)
        finally:
            await nc.close()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        watchers = [asyncio.create_task(self.watch(c)) for c in self.children]
        if self.broker is not None:
            watchers.append(asyncio.create_task(self.watch_broker()))
        mon = asyncio.create_task(self.monitor())
        await self.stop.wait()
        if self.tty:
            sys.stderr.write("\r\033[K")
        self.emit("tiercel up: stopping")
        await self.terminate()
        for t in [*watchers, mon]:
            t.cancel()
        await asyncio.gather(*watchers, mon, return_exceptions=True)
        if mon.done() and not mon.cancelled() and mon.exception():
            raise mon.exception()
        return 0


def build_children(workers: int, base_args: list[str], cfg, services: list[str]) -> list[Child]:
    exe = [sys.executable, "-m", "tiercel"]
    kids: list[Child] = []
    if "ingest" in services:
        kids.append(Child("ingest", "ingest", [*exe, "ingest", *base_args]))
    if "rules" in services:
        for i in range(workers):
            kids.append(Child(f"rules-{i}", "rules", [*exe, "rules", "serve", "--index", str(i), *base_args]))
    if "api" in services:
        kids.append(Child("api", "api", [*exe, "api", *base_args]))
    return kids


def up(
    config: ConfigOpt = None,
    option: OverrideOpt = None,
    nats_url: NatsUrlOpt = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Rules workers (default rules.workers).")] = None,
    only: Annotated[str, typer.Option(help="Comma-separated services to run: ingest,rules,api.")] = "ingest,rules,api",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print alerts.")] = False,
    json_alerts: Annotated[bool, typer.Option("--json", help="Print alerts as JSON lines.")] = False,
) -> None:
    """Run the whole pipeline here: embedded NATS, ingest, rules workers and the API."""
    from tiercel.common.broker import BrokerError, EmbeddedBroker
    from tiercel.common.log import setup

    cfg = load_config(config, option, nats_url)
    setup(cfg["log_level"], "up")
    services = [s.strip() for s in only.split(",") if s.strip()]
    bad = [s for s in services if s not in ("ingest", "rules", "api")]
    if bad:
        fail(f"unknown service {bad[0]!r} in --only; allowed: ingest, rules, api")
    n = workers if workers is not None else cfg["rules.workers"]
    if n < 1:
        fail("--workers must be at least 1")
    broker = None
    url = cfg["nats.url"]
    if not url:
        store = pathlib.Path(cfg["nats.embedded.store_dir"] or cfg.state_dir / "nats")
        broker = EmbeddedBroker(store_dir=store, host=cfg["nats.embedded.host"], port=cfg["nats.embedded.port"])
        try:
            broker.start()
        except BrokerError as e:
            fail(str(e))
        url = broker.url
        cfg = cfg.with_values({"nats.url": url})
    env = dict(os.environ)
    env["TIERCEL_NATS_URL"] = url
    env["TIERCEL_SUPERVISED"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    base_args: list[str] = []
    if config:
        base_args += ["-c", config]
    for o in option or []:
        base_args += ["-o", o]
    sup = Supervisor(build_children(n, base_args, cfg, services), env, url, cfg, quiet, json_alerts, broker)
    code = 0
    try:
        code = asyncio.run(_prepare_and_run(sup, cfg))
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # one line, never a traceback
        print(f"tiercel up: error: {e}", file=sys.stderr)
        code = 1
    finally:
        if broker is not None:
            broker.stop()
        bind = cfg["grpc.bind_address"]
        if bind.startswith("unix://"):
            with contextlib.suppress(OSError):
                pathlib.Path(bind[len("unix://"):]).unlink()
    raise typer.Exit(code)


async def _prepare_and_run(sup: Supervisor, cfg) -> int:
    from tiercel.common.natsconn import connect, ensure_streams

    nc = await connect(cfg, "tiercel-up-setup")
    try:
        await ensure_streams(nc.jetstream(), cfg["nats.replicas"])
    finally:
        await nc.close()
    return await sup.run()


def register(app: typer.Typer) -> None:
    app.command("up")(up)

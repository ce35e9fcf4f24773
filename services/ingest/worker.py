"""`tiercel ingest`: the per-host worker. Kernel driver → reader thread → bounded queue →
batches on the bus; once per second drop reports (kernel and ingest stages), Falco's
`syscall_event_drops` actions, a heartbeat; the k8s audit webhook and Prometheus metrics beside.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from tiercel.common import bus
from tiercel.common.config import Config
from tiercel.common.natsconn import connect, ensure_streams
from tiercel.common.runtime import HeartbeatPublisher, ServiceError, instance_id
from tiercel.ingest.drops import (
    StageCounters,
    SyscallEventDrops,
    drop_alert,
    drop_alert_fields,
    report,
)
from tiercel.ingest.publisher import Publisher, SeqStore
from tiercel.ingest.queue import EventQueue

log = logging.getLogger("tiercel.ingest")


def make_driver(cfg: Config, event_types: Iterable[str] | None = None):
    from tiercel.ingest.live import AuditDriver, ProcConnectorDriver, local_server_pids

    name = cfg["ingest.driver"]
    if name == "audit":
        # the nats-server on this host handles our batches: auditing it would only feed back
        return AuditDriver(cfg.state_dir, event_types, backlog_limit=cfg["ingest.audit_backlog_limit"],
                           exclude_pids=local_server_pids(cfg["nats.url"]))
    if name == "proc_connector":
        return ProcConnectorDriver()
    return None


# Young collections after this many new container objects instead of CPython's 700: the reader
# makes and drops about 30 per event (records, events, parameter lists, snapshots), so the default
# walks the young objects every ~25 events; this one every ~1,500 (a few MB of young objects at
# most). Cycles are still collected.
GC_THRESHOLD = (50_000, 20, 10)


def tune_gc() -> None:
    """The collector as ingest runs it (the bench's stage replay does the same): the seeded table
    lives long, so it is frozen out of every collection; young collections are less frequent."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class IngestWorker:
    def __init__(self, cfg: Config, event_types: Iterable[str] | None = None, publish_mode: str = "jetstream"):
        self.cfg = cfg
        self.host = cfg.hostname
        self.instance = instance_id("ingest")
        self.event_types = event_types
        self.publish_mode = publish_mode
        self.kernel = StageCounters("kernel")
        self.ingest = StageCounters("ingest")
        self.queue = EventQueue(cfg["ingest.queue_size"])
        self.driver: Any = None
        self.reader: Any = None
        self.state: Any = None
        self.rules: Any = None
        self.publisher: Publisher | None = None
        self.k8s: Any = None
        self.metrics: Any = None
        self.nc: Any = None
        self.exit_code = 0
        self.drop_mgr = SyscallEventDrops(
            cfg["syscall_event_drops.threshold"], cfg["syscall_event_drops.actions"],
            cfg["syscall_event_drops.rate"], cfg["syscall_event_drops.max_burst"],
            cfg["syscall_event_drops.simulate_drops"])
        self._last_lost: int | None = None
        self.kernel_backlog = 0
        self.kernel_lost_total = 0
        self.rates: dict[str, float] = {}
        self._last_rate = (time.monotonic(), 0)

    # --- lifecycle ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        cfg = self.cfg
        self._stop = stop
        if not cfg["nats.url"]:
            raise ServiceError("no NATS server configured: give --nats-url (or run `tiercel up`)")
        self.nc = await connect(cfg, f"tiercel-ingest-{self.host}")
        try:
            js = self.nc.jetstream()
            await ensure_streams(js, cfg["nats.replicas"])
            self.queue.bind(asyncio.get_running_loop())
            seq = SeqStore(cfg.state_dir / "ingest-seq.json")
            self.publisher = Publisher(self.nc, js, self.host, "syscall", self.queue, self.ingest, seq,
                                       cfg["ingest.batch_size"], cfg["ingest.batch_interval_ms"] / 1000.0,
                                       mode=self.publish_mode)
            await self._start_side_servers(js)
            await asyncio.to_thread(self._start_driver)
            hb = HeartbeatPublisher(self.nc, "ingest", self.host, self.instance, self._sample).start()
            pub_task = asyncio.create_task(self.publisher.run(stop), name="ingest-publisher")
            rep_task = asyncio.create_task(self._report_loop(stop), name="ingest-drops")
            tasks = [pub_task, rep_task]
            if self.driver is not None and self.event_types is None and cfg["ingest.follow_rules"]:
                from tiercel.ingest.rulesync import RulesFollower

                self.rules = RulesFollower(cfg, js, self._follow)
                tasks.append(asyncio.create_task(self.rules.run(stop), name="ingest-rules"))
            try:
                while not stop.is_set():
                    if self.reader is not None and not self.reader.is_alive():
                        log.error("the kernel reader stopped: %s", self.reader.error)
                        self.exit_code = 1
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
            finally:
                stop.set()
                await self._stop_driver()
                # both see `stop` and return after their current step: never cancelled between
                # taking events (or counter deltas) and publishing them
                await asyncio.wait(tasks, timeout=10)
                left = await self.publisher.drain(5.0)
                if left:
                    self.ingest.drop("shutdown", left)
                await self._publish_reports()
                seq.close()
                await hb.stop()
                await self._stop_side_servers()
        finally:
            if self.driver is not None:  # the kernel's audit settings come back whatever happened
                await asyncio.to_thread(self._restore)
            with contextlib.suppress(Exception):
                await self.nc.drain()
        return self.exit_code

    def _start_driver(self) -> None:
        from tiercel.ingest.audit.session import AuditUnavailable
        from tiercel.ingest.live import KernelReader
        from tiercel.ingest.livestate import LiveState

        self.driver = make_driver(self.cfg, self.event_types)
        if self.driver is None:
            print("tiercel ingest: ingest.driver=none: no live kernel events (k8s audit webhook only)",
                  file=sys.stderr)
            return
        try:
            self.driver.start()
        except AuditUnavailable as e:
            self.driver = None
            raise ServiceError(str(e)) from None
        except OSError as e:
            self.driver = None
            raise ServiceError(f"{self.cfg['ingest.driver']} driver: {e.strerror or e}") from None
        self.state = LiveState()
        n = self.state.seed()  # after the rules are in: what starts meanwhile is in the stream
        tune_gc()
        print(f"tiercel ingest: {self.driver.describe()}; {n} threads from /proc", file=sys.stderr)
        self.reader = KernelReader(self.driver, self.queue, self.kernel, self.ingest, self.state,
                                   batch_size=self.cfg["ingest.batch_size"],
                                   batch_interval=self.cfg["ingest.batch_interval_ms"] / 1000.0,
                                   linger=self.cfg["ingest.read_linger_ms"] / 1000.0)
        self.reader.start()

    async def _stop_driver(self) -> None:
        if self.reader is not None:
            self.reader.stop()
            await asyncio.to_thread(self.reader.join, 5.0)

    def _restore(self) -> None:
        try:
            self.driver.stop()
        except Exception as e:  # never hide the restore failure
            log.error("restoring the kernel audit configuration failed: %s", e)
        self.driver = None

    def set_event_types(self, event_types: Iterable[str] | None) -> None:
        """Audit exactly what these event types need (from now on, whatever the ruleset says)."""
        self.event_types = event_types
        if self.driver is not None:
            self.driver.set_event_types(event_types)

    def _follow(self, event_types: Iterable[str] | None) -> None:
        """The committed ruleset changed its syscall needs (`RulesFollower`, in a thread)."""
        if self.driver is not None:
            self.driver.set_event_types(event_types)

    async def _start_side_servers(self, js: Any) -> None:
        cfg = self.cfg
        if cfg["k8s_audit.enabled"] and cfg["k8s_audit.listen"]:
            from tiercel.ingest.k8s_webhook import K8sWebhook

            self.k8s = K8sWebhook(cfg, self.nc, js, self.host, self.ingest, self.publisher.seq)
            await self.k8s.start()
        if cfg["metrics.enabled"] and cfg["metrics.ingest_port"]:
            from tiercel.ingest.metrics import start_metrics

            self.metrics = start_metrics(self, cfg["metrics.address"], cfg["metrics.ingest_port"])

    async def _stop_side_servers(self) -> None:
        if self.k8s is not None:
            await self.k8s.stop()
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics.server_close()

    # --- once per second ----------------------------------------------------------------------
    async def _report_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if not stop.is_set():
                await self._publish_reports()

    async def _publish_reports(self) -> None:
        if self.driver is not None and hasattr(self.driver, "kernel_counters"):
            try:
                kc = await asyncio.to_thread(self.driver.kernel_counters)
            except Exception as e:
                log.debug("reading kernel audit counters failed: %s", e)
                kc = {}
            if "lost" in kc:
                if self._last_lost is not None and kc["lost"] >= self._last_lost:
                    delta = kc["lost"] - self._last_lost
                    self.kernel.drop("audit_lost", delta)
                    self.kernel_lost_total += delta
                self._last_lost = kc["lost"]
                self.kernel_backlog = kc.get("backlog", 0)
        k_rep, _ = report(self.kernel, self.host, self.instance, 1.0)
        i_rep, cats = report(self.ingest, self.host, self.instance, 1.0)
        try:
            await self.nc.publish(bus.drops_subject("kernel", self.host), k_rep.encode())
            await self.nc.publish(bus.drops_subject("ingest", self.host), i_rep.encode())
        except Exception as e:
            log.debug("drop report publish failed: %s", e)
        self._update_rates(k_rep.n_evts)
        # Falco's syscall_event_drops: kernel-side and ingest-side losses of syscall events
        n_evts = k_rep.n_evts + k_rep.n_drops
        n_drops = k_rep.n_drops + i_rep.n_drops
        decision = self.drop_mgr.check(n_evts, n_drops)
        if decision is None:
            return
        fields = drop_alert_fields(n_evts, decision.n_drops,
                                   k_rep.n_drops + i_rep.drops.get("queue_full", 0), cats,
                                   bug=i_rep.drops.get("garbled", 0))
        if "log" in decision.actions:
            log.debug("Falco internal: syscall event drop. %d system calls dropped in last second. %s",
                      decision.n_drops, fields)
        if "alert" in decision.actions:
            alert = drop_alert(self.host, fields)
            body, headers = bus.encode_alert(alert)
            try:
                await self.nc.publish(bus.alert_subject("Debug", "internal", alert["rule"]), body, headers=headers)
            except Exception as e:
                log.debug("drop alert publish failed: %s", e)
        if "exit" in decision.actions:
            log.critical("Falco internal: syscall event drop. %d system calls dropped in last second.",
                         decision.n_drops)
            log.critical("Exiting.")
            self.exit_code = 1
            asyncio.get_running_loop().call_soon(self._request_stop)

    def _request_stop(self) -> None:
        self._stop.set()

    def _update_rates(self, n_evts: int) -> None:
        now = time.monotonic()
        last_t, _ = self._last_rate
        dt = max(1e-6, now - last_t)
        self.rates = {"events": n_evts / dt}
        self._last_rate = (now, n_evts)

    def _sample(self) -> dict[str, Any]:
        pub = self.publisher
        return {"rates": dict(self.rates),
                "counters": {"events": self.ingest.n_evts, "published": pub.published_events if pub else 0,
                             "drops": self.ingest.n_drops + self.kernel.n_drops},
                "lag": len(self.queue), "state": "ready"}

"""`tiercel rules serve`: one rules worker process.

Start: connect, declare the streams, buckets and the shared consumer; seed the rules store if it
is empty (validated first); load the committed ruleset and the stored configuration; then pull
events. Live: the manifest watcher swaps the ruleset, the config watcher re-applies live keys,
the control responder answers `tiercel.ctl.*`, and once a second the worker publishes its
heartbeat and drop report, shares its processed sequence ranges, and runs the drop monitor.
Stop (SIGTERM): stop pulling, let evaluated batches finish publishing and acking, say "stopped".
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import time
from collections import Counter
from typing import Any

import msgpack

from tiercel.common import bus, runtime
from tiercel.common.config import Config
from tiercel.common.natsconn import connect, ensure_streams
from tiercel.rules.compiled import EngineAdapter
from tiercel.rules.configstore import ConfigStore, coerce
from tiercel.rules.control import Control
from tiercel.rules.fleet import Fleet
from tiercel.rules.internal import DropMonitor, Window, internal_alert
from tiercel.rules.pipeline import AlertSettings, Pipeline
from tiercel.rules.seqtrack import SeqTracker
from tiercel.rules.store import RulesStore, StoreError, check_file_name
from tiercel.rules.worker import Consumer, Stats, ensure_consumer

log = logging.getLogger("tiercel.rules")

DEFAULT_RULES = "default_rules.yaml"
# Keys whose change needs a new ruleset (selection of rules), not just new alert settings.
_RESELECT_KEYS = ("priority", "rule_matching")


def seed_files(cfg: Config) -> list[tuple[str, str]]:
    """The configuration's `rules_files` (directories: their .yaml/.yml files in name order), or
    Tiercel's default ruleset when it names none (as falco.yaml's `rules_files` replaces Falco's
    default list), as (store name, text). Raises StoreError for unreadable files."""
    from tiercel.rules.engine import expand_paths

    files: list[tuple[str, str]] = []
    if not cfg["rules_files"]:
        res = importlib.resources.files("tiercel.rules").joinpath(DEFAULT_RULES)
        if res.is_file():
            files.append((DEFAULT_RULES, res.read_text()))
        return files
    for path in expand_paths(cfg["rules_files"]):
        name = check_file_name(os.path.basename(path))
        if any(n == name for n, _ in files):
            raise StoreError("bad_name", f"two rules files are named {name!r}; rename one ({path})")
        try:
            with open(path, encoding="utf-8") as f:
                files.append((name, f.read()))
        except (OSError, UnicodeDecodeError) as e:
            raise StoreError("unreadable", f"cannot read rules file {path}: {getattr(e, 'strerror', None) or e}") \
                from None
    return files


class RulesService:
    def __init__(self, cfg: Config, index: int = 0):
        self.base_cfg = cfg
        self.cfg = cfg
        self.index = index
        self.hostname = cfg.hostname
        self.instance = f"rules{index}-{os.getpid()}-{os.urandom(3).hex()}"
        self.fleet = Fleet(self.instance)
        self.stats = Stats()
        self.tracker = SeqTracker()
        self.adapter = EngineAdapter(cfg, self.hostname)
        self.pipeline = Pipeline(self.adapter, self.hostname, AlertSettings.from_config(cfg))
        self.monitor = DropMonitor(cfg, time.monotonic())
        self.compiled: Any = None
        self.selection: list = []
        self.ruleset: Any = None
        self.revision = 0
        self.config_revision = 0
        self.stored: dict[str, Any] = {}
        self.state = "starting"
        self.exit_code = 0
        self.metrics: Any = None
        self.nc: Any = None
        self.js: Any = None
        self._ready = asyncio.Event()
        self._stores: tuple[Any, Any, Any] | None = None
        self._watchers: list[asyncio.Task] = []
        self._ticks = 0
        self._stop: asyncio.Event | None = None
        self._bus_totals: dict[str, Counter] = {}
        self._drop_totals: Counter = Counter()
        self._internal_n = 0
        self._rates_prev = (time.monotonic(), 0, 0)
        self.rates = {"events": 0.0, "alerts": 0.0}

    # --- heartbeat and status --------------------------------------------------------------------
    def sample(self) -> dict[str, Any]:
        st = self.stats
        return {"revision": self.revision, "rates": dict(self.rates), "lag": st.lag, "state": self.state,
                "counters": {"events": st.events, "batches": st.batches, "alerts": st.alerts,
                             "alerts_duplicate": st.alerts_duplicate, "rate_limited": st.rate_limited,
                             "redelivered": st.redelivered, "drops": sum(st.drops.values()),
                             "config_revision": self.config_revision}}

    def status(self) -> dict[str, Any]:
        hb = self.hb.heartbeat()
        return {"ok": True, "service": "rules", "host": self.hostname, "instance": self.instance,
                "index": self.index, "state": self.state, "revision": self.revision,
                "config_revision": self.config_revision, "rates": hb.rates, "counters": hb.counters,
                "lag": hb.lag, "started_ns": hb.started_ns, "drops": dict(self.stats.drops),
                "metrics_port": self.metrics.port if self.metrics else 0}

    async def beat_now(self) -> None:
        with contextlib.suppress(Exception):
            await self.hb.publish_once()

    # --- ruleset -------------------------------------------------------------------------------
    async def _seed(self, store: RulesStore) -> None:
        rev, man = await store.manifest()
        if man is not None:
            return
        try:
            files = seed_files(self.base_cfg)
        except StoreError as e:
            raise runtime.ServiceError(f"cannot seed the rules store: {e}") from None
        build = await asyncio.to_thread(self.adapter.build, files, [], ready=False)
        if not build.ok:
            raise runtime.ServiceError("the rules files to seed the rules store with are invalid:\n"
                                       + build.load_result_text())
        rev = await store.seed(files)
        if rev:
            log.info("rules store seeded with %s (revision %d)", ", ".join(n for n, _ in files) or "no files", rev)

    async def _watch_rules(self, store: RulesStore) -> None:
        kv = store.kv
        while True:
            try:
                watcher = await kv.watch("manifest")
                async for e in watcher:
                    if e is None:
                        if self.revision == 0 and not self._ready.is_set():
                            log.warning("the rules store is empty; waiting for a ruleset")
                        continue
                    if e.operation in ("DEL", "PURGE"):
                        continue
                    if e.revision > self.revision:
                        await self._load_revision(store, e.revision)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("rules watcher: %s; restarting it", err)
                await asyncio.sleep(1.0)

    async def _load_revision(self, store: RulesStore, revision: int) -> None:
        try:
            snap = await store.snapshot(revision)
        except StoreError as e:
            log.error("cannot read ruleset revision %d: %s", revision, e)
            return
        try:
            build = await asyncio.to_thread(self.adapter.build, snap.files(), snap.manifest.selection)
        except Exception as e:  # an engine bug must not stop the worker: keep the running ruleset
            log.exception("building ruleset revision %d failed; keeping revision %d: %s", revision, self.revision, e)
            return
        if not build.ok:
            log.error("ruleset revision %d does not load here; keeping revision %d:\n%s", revision, self.revision,
                      build.load_result_text())
            return
        if revision <= self.revision:
            return
        self.compiled, self.selection = build.compiled, snap.manifest.selection
        self._swap(build.ruleset, revision)
        log.info("running ruleset revision %d (%d files)", revision, len(snap.manifest.files))

    def _swap(self, ruleset: Any, revision: int) -> None:
        self.ruleset, self.revision = ruleset, revision
        self.pipeline.swap(ruleset, revision)
        if not self._ready.is_set():
            self._ready.set()
        asyncio.get_running_loop().create_task(self.beat_now())

    def _start_watchers(self) -> None:
        rules, _, config_kv = self._stores
        for t in self._watchers:
            t.cancel()
        self._watchers = [asyncio.create_task(self._watch_config(config_kv), name="config-watch"),
                          asyncio.create_task(self._watch_rules(rules), name="rules-watch")]

    async def _on_reconnect(self) -> None:
        """KV watchers are consumers the server may have lost (a restart): watch again."""
        if self._stores is not None:
            log.info("reconnected to NATS; watching the rules and config stores again")
            self._start_watchers()

    async def _check_stores(self) -> None:
        """Safety net behind the watchers: a committed revision this worker has not applied."""
        rules, configs, _ = self._stores
        rev, man = await rules.manifest()
        if man is not None and rev > self.revision:
            log.warning("ruleset revision %d was not seen by the watcher; loading it", rev)
            await self._load_revision(rules, rev)
        info = await self.js.stream_info(f"KV_{bus.CONFIG_BUCKET}")
        if info.state.last_seq > self.config_revision:
            stored = await configs.all()
            self.stored = {k: v.value for k, v in stored.items()}
            self.config_revision = info.state.last_seq
            await self._apply_config()

    # --- configuration -------------------------------------------------------------------------
    async def _watch_config(self, kv: Any) -> None:
        while True:
            try:
                watcher = await kv.watchall()
                async for e in watcher:
                    if e is None:
                        continue
                    if e.operation in ("DEL", "PURGE"):
                        self.stored.pop(e.key, None)
                    else:
                        try:
                            import json

                            self.stored[e.key] = coerce(e.key, json.loads(e.value))
                        except (StoreError, ValueError) as err:
                            log.warning("ignoring config key %r in the store: %s", e.key, err)
                            continue
                    self.config_revision = max(self.config_revision, e.revision)
                    await self._apply_config()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("config watcher: %s; restarting it", err)
                await asyncio.sleep(1.0)

    async def _apply_config(self) -> None:
        old = self.cfg
        try:
            new = self.base_cfg.with_values(self.stored)
        except Exception as e:
            log.warning("stored configuration not applied: %s", e)
            return
        self.cfg = new
        self.adapter.configure(new)
        self.pipeline.configure(AlertSettings.from_config(new), self.fleet.count())
        self.monitor.configure(new)
        if self.compiled is not None and any(old[k] != new[k] for k in _RESELECT_KEYS):
            rs = await asyncio.to_thread(self.adapter.select, self.compiled, self.selection, new)
            self._swap(rs, self.revision)
        else:
            asyncio.get_running_loop().create_task(self.beat_now())

    # --- every second --------------------------------------------------------------------------
    async def _tick(self) -> None:
        interval = 1.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self._tick_once(interval)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("periodic work failed: %s", e)

    async def _tick_once(self, interval: float) -> None:
        now = time.monotonic()
        self._ticks += 1
        if self._ticks % 2 == 0 and self._stores is not None:
            try:
                await self._check_stores()
            except Exception as e:
                log.debug("store check failed: %s", e)
        st = self.stats
        t0, ev0, al0 = self._rates_prev
        dt = max(1e-6, now - t0)
        self.rates = {"events": round((st.events - ev0) / dt, 1), "alerts": round((st.alerts - al0) / dt, 1)}
        self._rates_prev = (now, st.events, st.alerts)
        self.pipeline.configure(self.pipeline.settings, self.fleet.count())
        # Drop report of stage rules.
        w, st.window = st.window, Window()
        self._drop_totals.update(w.drops)
        report = bus.DropReport("rules", self.hostname, self.instance, time.time_ns(), interval, w.n_evts,
                                dict(w.drops), dict(self._drop_totals))
        await self.nc.publish(bus.drops_subject("rules", self.hostname), report.encode())
        if w.drops:
            log.warning("dropped in the last second: %s", ", ".join(f"{r}={n}" for r, n in sorted(w.drops.items())))
        # Drop monitor: internal alerts.
        for action in self.monitor.check(w, now):
            if action.alert and self.cfg["priority"] == "debug":
                await self._internal_alert(action.rule, action.message, action.fields)
            if action.exit and self._stop is not None:
                log.critical("%s Exiting.", action.message)
                self.exit_code = 1
                self._stop.set()
        # Shared sequence ranges; the leader declares old holes lost (stage bus).
        await self._share_progress()
        if self.fleet.leader() == self.instance:
            horizon = 2 * self.base_cfg["rules.ack_wait_s"] + 2.0
            lost = self.tracker.expire(now, horizon)
            counts = self.tracker.take_counts()
            for host in set(lost) | set(counts):
                tot = self._bus_totals.setdefault(host, Counter())
                if lost.get(host):
                    tot["seq_gap"] += lost[host]
                    log.warning("events lost on the bus from host %s: %d (sequence gap)", host, lost[host])
                rep = bus.DropReport("bus", host, self.instance, time.time_ns(), interval, counts.get(host, 0),
                                     {"seq_gap": lost[host]} if lost.get(host) else {}, dict(tot))
                await self.nc.publish(bus.drops_subject("bus", host), rep.encode())
        else:
            self.tracker.take_counts()
        if self.metrics is not None:
            self.metrics.update(st, self.revision, self.config_revision)

    async def _internal_alert(self, rule: str, message: str, fields: dict[str, Any]) -> None:
        self._internal_n += 1
        alert = internal_alert(rule, message, fields, self.hostname,
                               f"{self.hostname}:internal:{self.instance}:{self._internal_n}", time.time_ns())
        body, headers = bus.encode_alert(alert)
        try:
            await self.js.publish(bus.alert_subject("Debug", "internal", rule), body, headers=headers, timeout=2.0)
        except Exception as e:
            log.warning("internal alert not stored: %s", e)

    async def _share_progress(self) -> None:
        seen, lost, resets = self.tracker.take_outgoing()
        if not (seen or lost or resets):
            return
        payload = msgpack.packb([bus.SCHEMA_VERSION, self.instance, {h: [x for r in v for x in r] for h, v in seen.items()},
                                 {h: [x for r in v for x in r] for h, v in lost.items()}, resets])
        await self.nc.publish(bus.progress_subject(self.instance), payload)

    async def _on_progress(self, msg: Any) -> None:
        try:
            v, inst, seen, lost, resets = msgpack.unpackb(msg.data, raw=False, strict_map_key=False)
            if v != bus.SCHEMA_VERSION or inst == self.instance:
                return

            def pairs(d: dict) -> dict[str, list]:
                return {str(h): list(zip(xs[0::2], xs[1::2], strict=True)) for h, xs in d.items()}

            self.tracker.merge(pairs(seen), pairs(lost), {str(h): int(s) for h, s in resets.items()},
                               time.monotonic())
        except Exception as e:  # a malformed share from someone else is ignored
            log.debug("ignoring progress message: %s", e)

    # --- main ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        self._stop = stop
        cfg = self.base_cfg
        self.nc = nc = await connect(cfg, f"tiercel-{self.instance}", reconnected_cb=self._on_reconnect)
        self.js = js = nc.jetstream()
        tasks: list[asyncio.Task] = []
        consumer: Consumer | None = None
        self.hb = runtime.HeartbeatPublisher(nc, "rules", self.hostname, self.instance, self.sample)
        try:
            await ensure_streams(js, cfg["nats.replicas"])
            await ensure_consumer(js, cfg["rules.ack_wait_s"])
            rules = RulesStore(await js.key_value(bus.RULES_BUCKET))
            config_kv = await js.key_value(bus.CONFIG_BUCKET)
            configs = ConfigStore(config_kv, js)
            control = Control(self, rules, configs)

            async def on_hb(msg: Any) -> None:
                with contextlib.suppress(bus.BadEnvelope):
                    self.fleet.update(bus.Heartbeat.decode(msg.data))

            async def on_ctl(msg: Any) -> None:
                area = msg.subject.split(".")[2]
                await msg.respond(await control.handle(area, msg.data))

            async def on_status(msg: Any) -> None:
                await msg.respond(bus.encode_reply(**self.status()))

            await nc.subscribe(f"{bus.HEARTBEAT_SUBJECT}.rules.>", cb=on_hb)
            await nc.subscribe(f"{bus.PROGRESS_SUBJECT}.>", cb=self._on_progress)
            self.hb.start()
            await self._seed(rules)
            self._stores = (rules, configs, config_kv)
            self._start_watchers()
            await nc.subscribe(f"{bus.CONTROL_SUBJECT}.rules.*", queue=bus.CONTROL_QUEUE, cb=on_ctl)
            await nc.subscribe(f"{bus.CONTROL_SUBJECT}.config.*", queue=bus.CONTROL_QUEUE, cb=on_ctl)
            await nc.subscribe(f"{bus.CONTROL_SUBJECT}.status.get", cb=on_status)
            if cfg["metrics.enabled"]:
                self._start_metrics()
            # Events only once a ruleset runs: a batch is never acked without being evaluated.
            ready = asyncio.create_task(self._ready.wait())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            stopped.cancel()
            if not stop.is_set():
                consumer = Consumer(nc, js, self.pipeline, self.stats, self.tracker,
                                    fetch_batch=cfg["rules.fetch_batch"], max_inflight=cfg["rules.max_inflight"],
                                    ack_wait_s=cfg["rules.ack_wait_s"])
                await consumer.start()
                self.state = "ready"
                await self.beat_now()
                log.info("ready: %s, ruleset revision %d", self.instance, self.revision)
                tasks.append(asyncio.create_task(self._tick(), name="tick"))
                await stop.wait()
        finally:
            self.state = "stopping"
            if consumer is not None:
                await consumer.stop()
            for t in [*tasks, *self._watchers]:
                t.cancel()
            await asyncio.gather(*tasks, *self._watchers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._tick_once(1.0)
            self.state = "stopped"
            await self.beat_now()
            await self.hb.stop()
            with contextlib.suppress(Exception):
                await nc.drain()
        return self.exit_code

    def _start_metrics(self) -> None:
        from tiercel.rules.metrics import Metrics

        port = self.base_cfg["metrics.rules_port"]
        if port:
            port += self.index
        m = Metrics(self.instance)
        try:
            m.serve(self.base_cfg["metrics.address"], port)
        except OSError as e:
            log.warning("metrics endpoint not started on %s:%d: %s", self.base_cfg["metrics.address"], port,
                        e.strerror or e)
            return
        self.metrics = m
        log.info("metrics on http://%s:%d/metrics", self.base_cfg["metrics.address"], m.port)


def serve(cfg: Config, index: int = 0) -> int:
    svc = RulesService(cfg, index)
    return runtime.run(svc.run, "rules serve")

"""`tiercel api`: one grpc.aio server with every service, its listeners, health, reflection and metrics.

Listeners come from `grpc.bind_address` (comma-separated): `unix:///path` is served through the
peer-credential front (security.UnixFront); `host:port` needs mutual TLS (`grpc.cert_chain`,
`grpc.private_key`, `grpc.root_certs`) unless `grpc.insecure_tcp` is true.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tiercel.api import control, drops, inputs, outputs, version
from tiercel.api.hub import AlertHub
from tiercel.api.metrics import ApiMetrics
from tiercel.api.security import Authorizer, UnixFront, group_id, server_credentials
from tiercel.common.config import Config
from tiercel.common.runtime import ServiceError

log = logging.getLogger("tiercel.api")

SERVICES = (outputs.SERVICE, version.SERVICE, drops.SERVICE, inputs.SERVICE, control.RULES_SERVICE,
            control.CONFIGS_SERVICE)


def bind_addresses(value: str) -> list[str]:
    return [a.strip() for a in value.split(",") if a.strip()]


@dataclass
class Listener:
    address: str  # as configured
    target: str  # what a client dials: unix:///path or host:port
    kind: str  # unix | tls | insecure


@dataclass
class ApiServer:
    """The running API: call start(), then stop()."""

    cfg: Config
    nc: Any
    js: Any
    host: str
    instance: str
    control_timeout: float = 5.0
    listeners: list[Listener] = field(default_factory=list)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    _rate_prev: tuple[float, int] = field(default_factory=lambda: (time.monotonic(), 0))

    async def start(self) -> None:
        cfg = self.cfg
        self.hub = AlertHub(self.nc, self.js, host=self.host, instance=self.instance, metrics=self.metrics)
        self.metrics.hub = self.hub
        self.auth = Authorizer(cfg["grpc.admin_subjects"], group_id(cfg["grpc.admin_group"]))
        limit = cfg["grpc.max_message_bytes"]
        self.server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", max(limit, 64 << 20)),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.so_reuseport", 0),
        ])
        ctl = control.ControlClient(self.nc, self.control_timeout)
        self.inputs = inputs.InputsService(self.js, self.auth, self.host, cfg.state_dir, cfg["k8s_audit.max_event"])
        self.metrics.inputs = self.inputs
        self.server.add_generic_rpc_handlers((
            self.inputs.handlers(),
            outputs.OutputsService(self.hub, cfg["grpc.subscriber_queue"]).handlers(),
            version.VersionService().handlers(),
            drops.DropsService(self.nc).handlers(),
            control.RulesService(ctl, self.auth).handlers(),
            control.ConfigsService(ctl, self.auth).handlers(),
        ))
        self.health = grpc_health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((*SERVICES, reflection.SERVICE_NAME, grpc_health.SERVICE_NAME),
                                            self.server)
        self.fronts: list[UnixFront] = []
        for addr in bind_addresses(cfg["grpc.bind_address"]):
            self.listeners.append(self._listen(addr))
        await self.hub.start()
        await self.server.start()
        for f in self.fronts:
            await f.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for lst in self.listeners:
            log.info("gRPC listening on %s (%s)", lst.target, lst.kind)

    def _listen(self, addr: str) -> Listener:
        cfg = self.cfg
        if addr.startswith("unix://"):
            front = UnixFront(addr[len("unix://"):], self.auth, group=cfg["grpc.socket_group"])
            self.fronts.append(front)
            self._bind(front.inner_address, None)
            return Listener(addr, addr, "unix")
        tls = cfg["grpc.cert_chain"] or cfg["grpc.private_key"] or cfg["grpc.root_certs"]
        if not tls and cfg["grpc.insecure_tcp"]:
            log.warning("*** INSECURE: gRPC on %s without TLS (grpc.insecure_tcp=true): anyone who can reach it "
                        "reads every alert; nobody there is admin. Never use this outside a test. ***", addr)
            port = self._bind(addr, None)
            return Listener(addr, _with_port(addr, port), "insecure")
        creds = server_credentials(cfg["grpc.cert_chain"], cfg["grpc.private_key"], cfg["grpc.root_certs"])
        port = self._bind(addr, creds)
        return Listener(addr, _with_port(addr, port), "tls")

    def _bind(self, addr: str, creds: grpc.ServerCredentials | None) -> int:
        try:
            port = (self.server.add_secure_port(addr, creds) if creds is not None
                    else self.server.add_insecure_port(addr))
        except RuntimeError as e:
            raise ServiceError(f"cannot listen on {addr}: {e}") from None
        if not port:
            raise ServiceError(f"cannot listen on {addr} (address in use or not allowed)")
        return port

    async def stop(self, grace: float = 2.0) -> None:
        try:
            await self.health.enter_graceful_shutdown()
        except Exception as e:
            log.debug("health shutdown: %s", e)
        for f in self.fronts:
            await f.stop()
        await self.server.stop(grace)
        await self.hub.stop()
        self.inputs.close()

    def target(self, kind: str) -> str:
        for lst in self.listeners:
            if lst.kind == kind:
                return lst.target
        raise KeyError(kind)

    def sample(self) -> dict[str, Any]:
        """Heartbeat fields: counters of the hub and its subscribers, alerts/s since the last sample."""
        subs = list(self.hub.subscribers.values())
        now = time.monotonic()
        t0, n0 = self._rate_prev
        self._rate_prev = (now, self.hub.received)
        rate = (self.hub.received - n0) / (now - t0) if now > t0 else 0.0
        return {"rates": {"alerts": round(rate, 1)},
                "counters": {"alerts_received": self.hub.received, "subscribers": len(subs),
                             "alerts_sent": self.metrics.sent_departed + sum(s.sent for s in subs),
                             "alerts_dropped": self.metrics.dropped_departed + sum(s.dropped_total for s in subs),
                             "inputs_accepted": self.inputs.accepted}}

    def status(self, started_ns: int, metrics_port: int) -> dict[str, Any]:
        """The answer to `tiercel.ctl.status.get` (what `tiercel status` shows)."""
        s = self.sample()
        drops = dict(self.hub.bad)
        dropped = s["counters"]["alerts_dropped"]
        if dropped:
            drops["queue_full"] = dropped
        return {"ok": True, "service": "api", "host": self.host, "instance": self.instance, "state": "ready",
                "rates": s["rates"], "counters": s["counters"], "started_ns": started_ns, "drops": drops,
                "listeners": [lst.target for lst in self.listeners], "metrics_port": metrics_port}


def _with_port(addr: str, port: int) -> str:
    host, _, _ = addr.rpartition(":")
    return f"{host}:{port}"


# Young collections after this many new container objects instead of CPython's 700: each alert
# makes about a dozen (its JSON, the NATS message, the Alert, tasks and futures on the way), so the
# default walks the young objects every ~60 alerts, and queued alerts survive into older
# generations that then get walked again. Cycles are still collected.
GC_THRESHOLD = (20_000, 20, 10)


def tune_gc() -> None:
    """What startup loaded (modules, the field catalog, protobuf descriptors) lives as long as the
    process: frozen out of every collection. Young collections are less frequent."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def serve(cfg: Config, stop: asyncio.Event) -> int:
    """The body of `tiercel api`: connect, serve until `stop`, shut down cleanly."""
    from tiercel.api.metrics import serve as serve_metrics
    from tiercel.common import bus, natsconn
    from tiercel.common.runtime import HeartbeatPublisher, instance_id

    if not cfg["nats.url"]:
        raise ServiceError("tiercel api needs a NATS server: give --nats-url (or use `tiercel up`)")
    instance = instance_id("api")
    nc = await natsconn.connect(cfg, instance)
    js = nc.jetstream()
    metrics_server = None
    try:
        await natsconn.ensure_streams(js, cfg["nats.replicas"])
        api = ApiServer(cfg, nc, js, host=cfg.hostname, instance=instance)
        await api.start()
        if cfg["metrics.enabled"]:
            metrics_server = serve_metrics(api.metrics, cfg["metrics.address"], cfg["metrics.api_port"])
        hb = HeartbeatPublisher(nc, "api", cfg.hostname, instance, api.sample).start()
        port = cfg["metrics.api_port"] if metrics_server is not None else 0

        async def on_status(msg: Any) -> None:
            await msg.respond(bus.encode_reply(**api.status(hb.started_ns, port)))

        await nc.subscribe(f"{bus.CONTROL_SUBJECT}.status.get", cb=on_status)
        tune_gc()
        t0 = time.monotonic()
        try:
            await stop.wait()
        finally:
            log.info("stopping after %.0fs", time.monotonic() - t0)
            await hb.stop()
            await api.stop()
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        await nc.drain()
    return 0

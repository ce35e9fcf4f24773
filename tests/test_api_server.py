"""Health, reflection and Prometheus metrics of the API, on a real server."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests import apikit
from tests.test_api_outputs import Sub, subscribed, wait_for
from tiercel.common.broker import free_port


async def test_health_reflection_and_metrics(nats_broker, tmp_path):
    port = free_port()
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock", **{
        "metrics.enabled": True, "metrics.api_port": port, "metrics.address": "127.0.0.1"})
    async with apikit.running_api(cfg) as api:
        from tiercel.api.metrics import serve
        server = serve(api.metrics, "127.0.0.1", port)
        ch = grpc.aio.insecure_channel(api.target("unix"))
        health = health_pb2_grpc.HealthStub(ch)
        for svc in ("", "falco.outputs.service", "falco.version.service", "falco.inputs.service"):
            r = await health.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING, svc

        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        resp = await call.read()
        names = {s.name for s in resp.list_services_response.service}
        assert {"falco.outputs.service", "falco.version.service", "falco.drops.service", "falco.inputs.service",
                "falco.rules.service", "falco.configs.service", "grpc.health.v1.Health"} <= names
        call.cancel()

        s = Sub(ch)
        await wait_for(subscribed(api, 1), what="subscriber")
        nc = await nats.connect(nats_broker.url)
        await apikit.publish(nc, [apikit.make_alert(i) for i in range(1, 4)])
        await s.read(3)
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        assert 'tiercel_api_subscribers{method="sub"} 1.0' in text
        assert "tiercel_api_alerts_received_total 3.0" in text
        assert "tiercel_api_alerts_sent_total 3.0" in text
        assert 'tiercel_api_subscriber_dropped_total{peer="unix:' in text
        s.cancel()
        server.shutdown()
        await nc.close()
        await ch.close()

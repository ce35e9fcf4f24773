"""The API across a NATS restart: gRPC streams stay open and the hub resumes from the alerts stream
where it stopped, so a subscriber misses nothing (make test-faults)."""

from __future__ import annotations

import grpc
import nats
import pytest

from tests import apikit
from tests.test_api_outputs import Sub, subscribed, wait_for

pytestmark = pytest.mark.faults


async def test_subscribers_survive_a_nats_restart(nats_broker, tmp_path):
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api:
        ch = grpc.aio.insecure_channel(api.target("unix"))
        s = Sub(ch)
        await wait_for(subscribed(api, 1), what="subscriber")
        nc = await nats.connect(nats_broker.url)
        await apikit.publish(nc, [apikit.make_alert(i) for i in range(1, 11)])
        await s.read(10)
        await nc.close()
        nats_broker.kill()
        nats_broker.restart()
        nc = await nats.connect(nats_broker.url)
        await apikit.publish(nc, [apikit.make_alert(i) for i in range(11, 31)])
        got = await s.read(30, timeout=60)
        assert [r.seq for r in got] == list(range(1, 31))
        assert all(r.dropped_before == 0 for r in got)
        await nc.close()
        s.cancel()
        await ch.close()

"""The embedded broker: a real nats-server from the wheel, JetStream on, streams declared."""

from __future__ import annotations

import nats
import pytest

from tiercel.common import bus
from tiercel.common.broker import BrokerError, EmbeddedBroker
from tiercel.common.config import load
from tiercel.common.natsconn import NatsUnavailable, connect, ensure_streams


async def test_broker_accepts_and_streams_are_declared(nats_broker):
    cfg = load(None, [f"nats.url={nats_broker.url}"], environ={})
    nc = await connect(cfg, "test")
    js = nc.jetstream()
    await ensure_streams(js)
    await ensure_streams(js)  # idempotent
    for spec in bus.STREAMS:
        info = await js.stream_info(spec.name)
        assert info.config.subjects == list(spec.subjects)
        assert str(getattr(info.config.retention, "value", info.config.retention)) == spec.retention
    for b in bus.KV_BUCKETS:
        kv = await js.key_value(b)
        await kv.put("probe", b"1")
    ack = await js.publish(bus.alert_subject("Warning", "syscall", "Some rule"), b"{}", headers={bus.HDR_MSG_ID: "a1"})
    dup = await js.publish(bus.alert_subject("Warning", "syscall", "Some rule"), b"{}", headers={bus.HDR_MSG_ID: "a1"})
    assert dup.duplicate and dup.seq == ack.seq
    await nc.close()


def test_port_in_use_is_one_clear_error(nats_broker, tmp_path):
    b = EmbeddedBroker(store_dir=tmp_path / "other", port=nats_broker.port)
    with pytest.raises(BrokerError, match="already in use"):
        b.start()
    assert b.proc is None


async def test_unreachable_url_is_one_clear_error():
    from tiercel.common.broker import free_port

    cfg = load(None, [f"nats.url=nats://127.0.0.1:{free_port()}"], environ={})
    with pytest.raises(NatsUnavailable, match="cannot connect to NATS at nats://127.0.0.1"):
        await connect(cfg, "test", first_attempt_timeout=2)


def test_stop_leaves_no_process(tmp_path):
    b = EmbeddedBroker(store_dir=tmp_path / "js").start()
    pid = b.proc.pid
    b.stop()
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_broker_with_auth(tmp_path):
    with EmbeddedBroker(store_dir=tmp_path / "js", extra_config='authorization { user: u, password: "s3cret" }') as b:
        with pytest.raises(NatsUnavailable):
            await connect(load(None, [f"nats.url={b.url}"], environ={}), "t", first_attempt_timeout=2)
        nc = await connect(load(None, [f"nats.url={b.url}", "nats.user=u", "nats.password=s3cret"], environ={}), "t")
        assert nc.is_connected
        await nc.close()
    assert nats  # imported for the errors the client raises

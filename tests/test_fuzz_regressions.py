"""Inputs the fuzz suite (tests/test_fuzz.py) found crashing a parser, kept as plain regression
tests: each is now rejected with its typed error, or accepted, and counted."""

from __future__ import annotations

import asyncio
import json

import msgpack
import pytest

from tests.ruleskit import open_event
from tiercel.common import bus, wire

DEEP = 5000  # deeper than Python's recursion limit


def test_json_envelopes_nested_too_deep_are_bad_envelopes():
    for decode in (bus.decode_alert, bus.DropReport.decode, bus.Heartbeat.decode, bus.decode_request,
                   bus.decode_reply):
        with pytest.raises(bus.BadEnvelope) as e:
            decode(b"[" * DEEP + b"]" * DEEP)
        assert e.value.reason == "not_json"


def test_k8s_bodies_nested_too_deep_are_bad_requests():
    from tiercel.ingest.k8s_webhook import BadRequest, split_events

    for body in (b"[" * DEEP + b"]" * DEEP, b'{"kind":"EventList","items":' * DEEP + b"[]" + b"}" * DEEP):
        with pytest.raises(BadRequest) as e:
            split_events(body, 1 << 20)
        assert (e.value.status, e.value.reason) == (400, "k8s_bad_json")
    # after a good event, the rest of the body is one bad item, the good event stays
    good = {"kind": "Event", "verb": "get"}
    found, bad = split_events(json.dumps(good).encode() + b"\n" + b"[" * DEEP, 1 << 20)
    assert [o for o, _ in found] == [good] and bad == {"k8s_bad_json": 1}
    # arrays of arrays of events are not audit data: counted, not recursed into
    found, bad = split_events(json.dumps([[good], [[good]], [[[[good]]]]]).encode(), 1 << 20)
    assert len(found) == 1 and bad == {"k8s_bad_event": 2}


def test_generic_json_input_nested_too_deep_is_rejected():
    from tiercel.api.inputs import Rejected, json_events

    with pytest.raises(Rejected, match="not JSON"):
        json_events("myjson", "[" * DEEP + "]" * DEEP, 1, 1 << 20)


def k8s_event(**extra):
    from tiercel.ingest.k8s_webhook import to_event

    obj = {"kind": "Event", "verb": "create", "user": {"username": "alice"}, **extra}
    return to_event(obj, json.dumps(obj).encode())


def test_json_integers_beyond_64_bits_travel_as_floats_like_falco():
    """Falco's JSON reader keeps integers beyond 64 bits as doubles; msgpack refused them and the
    webhook lost the whole request."""
    ev = k8s_event(responseStatus={"code": 10**30, "huge": 10**400, "ok": 201})
    back = wire.Decoder().decode(wire.encode_event(ev))
    st = back.payload["responseStatus"]
    assert st["code"] == 1e30 and st["huge"] == str(10**400) and st["ok"] == 201 and type(st["ok"]) is int


def test_values_nested_deeper_than_msgpack_carries_are_one_bad_event():
    nested: object = [10**30]
    for _ in range(1100):
        nested = [nested]
    ev = k8s_event()
    ev.payload["requestObject"] = nested
    with pytest.raises(wire.BadEvent, match="cannot be encoded"):
        wire.encode_event(ev)


def test_a_malformed_item_costs_one_event_not_the_batch():
    good = wire.encode_event(open_event(1, "cat", "/etc/shadow"))
    item = msgpack.unpackb(good, raw=False)
    item[10] = "flags"  # not an integer
    bad_flags = msgpack.packb(item, use_bin_type=True)
    item = msgpack.unpackb(good, raw=False)
    item[14] = {"not": "a source"}  # evaluation looked the source up in a dict: TypeError
    bad_source = msgpack.packb(item, use_bin_type=True)
    deep = msgpack.unpackb(good, raw=False)
    snap = deep[7]
    for _ in range(200):  # a chain of thread snapshots deeper than any encoder writes
        snap = [*snap[:-3], snap, None, 0]
    deep[7] = snap
    events, bad = wire.decode_events([good, bad_flags, msgpack.packb(deep, use_bin_type=True), bad_source, good])
    assert len(events) == 2 and bad == 3


async def test_webhook_publishes_events_with_integers_beyond_64_bits(nats_broker, tmp_path):
    """End to end through the real webhook: a request whose first event holds an integer beyond 64
    bits was answered 400 and none of its events were published or counted."""
    import asyncio

    from tiercel.common.config import Config
    from tiercel.common.natsconn import connect, ensure_streams
    from tiercel.ingest.drops import StageCounters
    from tiercel.ingest.k8s_webhook import K8sWebhook
    from tiercel.ingest.publisher import SeqStore

    body = json.dumps({"kind": "EventList", "items": [
        {"kind": "Event", "verb": "create", "responseStatus": {"code": 10**30}},
        {"kind": "Event", "verb": "get"}]}).encode()
    cfg = Config({"nats.url": nats_broker.url, "k8s_audit.listen": "127.0.0.1:0"})
    nc = await connect(cfg, "test")
    js = nc.jetstream()
    await ensure_streams(js)
    counters = StageCounters("ingest")
    hook = K8sWebhook(cfg, nc, js, "h", counters, SeqStore(tmp_path / "seq.json"))
    await hook.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", hook.port)
        w.write(b"POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await w.drain()
        head = await asyncio.wait_for(r.readline(), 10)
        w.close()
        assert b" 200 " in head
        assert not counters.totals
        info = await js.stream_info(bus.EVENTS_STREAM.name)
        for _ in range(100):
            if info.state.messages:
                break
            await asyncio.sleep(0.05)
            info = await js.stream_info(bus.EVENTS_STREAM.name)
        m = await js.get_msg(bus.EVENTS_STREAM.name, info.state.first_seq)
        events, bad = wire.decode_events(bus.EventBatch.decode(m.data))
        assert bad == 0 and [e.payload["verb"] for e in events] == ["create", "get"]
        assert events[0].payload["responseStatus"]["code"] == 1e30
    finally:
        await hook.stop()
        await nc.close()


def test_audit_stamp_beyond_64_bit_nanoseconds_is_a_garbled_record():
    """Such a time made the event unencodable (msgpack refuses integers past 64 bits)."""
    from tiercel.ingest.audit import netlink as nl
    from tiercel.ingest.audit.assembler import Assembler
    from tiercel.ingest.audit.records import GarbledRecord, parse_stamp

    rec = b"audit(17180000000000.100:7): arch=c000003e syscall=2 success=yes exit=3 pid=5"
    with pytest.raises(GarbledRecord):
        parse_stamp(rec)
    asm = Assembler()
    assert asm.feed(1300, rec) == [] and asm.stats.garbled == 1
    out: list = []
    asm.feed_datagrams([nl.pack_message(1300, rec, seq=1, flags=0)], 0, out)
    assert out == [] and asm.stats.garbled == 2


def test_alerts_on_names_that_are_not_utf8_reach_the_bus_and_the_api():
    """A file name with bytes that are not UTF-8 travels as lone surrogates; the rules worker's
    alert encoding raised on it (the batch was never acked), the API's response conversion too."""
    from tiercel.api.alerts import Alert
    from tiercel.common.config import Config
    from tiercel.pb.falco import outputs_pb2
    from tiercel.rules.compiled import EngineAdapter
    from tiercel.rules.engine import Engine
    from tiercel.rules.pipeline import Pipeline

    rules = ("- rule: Tmp open\n  desc: d\n  condition: evt.type = openat and fd.name startswith /tmp/\n"
             "  output: \"opened %fd.name\"\n  priority: WARNING\n")
    name = b"/tmp/caf\xe9".decode("utf-8", "surrogateescape")
    p = Pipeline(EngineAdapter(Config({}), "h"), "h")
    p.swap(Engine().load([("r.yaml", rules)]).ruleset, 1)
    out = p.process(bus.EventBatch("h", "syscall", 1, [wire.encode_event(open_event(1, "cat", name))]).encode())
    assert out.ok and not out.drops and len(out.alerts) == 1
    body = out.alerts[0].body
    body.decode("utf-8")  # valid UTF-8 JSON ...
    assert bus.decode_alert(body)["output_fields"]["fd.name"] == name  # ... that loses nothing
    r = outputs_pb2.response.FromString(Alert.from_bus(body, out.alerts[0].headers, 1).data)
    assert r.output_fields["fd.name"] == "/tmp/caf\ufffd" and r.output.endswith("opened /tmp/caf\ufffd")


def test_k8s_times_beyond_64_bit_nanoseconds_are_unknown():
    from tiercel.ingest.k8s_webhook import parse_time

    assert parse_time("2600-01-01T00:00:00Z") == 0 and parse_time("9999-12-31T23:59:59.999999999Z") == 0
    assert parse_time("2024-06-10T06:13:20.5Z") == 1_718_000_000_500_000_000
    wire.encode_event(k8s_event(stageTimestamp="9999-12-31T23:59:59Z"))


async def test_sub_batch_messages_stay_under_the_clients_4_mib_limit(nats_broker, tmp_path):
    """1000 queued alerts of 5 KB made one 5 MB `batch`; Python and Go clients refuse messages over
    4 MiB (RESOURCE_EXHAUSTED) and the subscriber lost its stream (seen in the suite under load).
    Alerts that arrive before the subscription's first request are kept, so they queue up here."""
    import grpc
    import nats

    from tests import apikit
    from tests.test_api_outputs import wait_for
    from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc

    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api:
        ch = grpc.aio.insecure_channel(api.target("unix"))
        go = asyncio.Event()

        async def requests():
            await go.wait()
            yield outputs_pb2.request()
            await asyncio.Event().wait()

        call = outputs_pb2_grpc.serviceStub(ch).sub_batch(requests())
        await wait_for(lambda: api.hub.subscribers, what="the call")
        nc = await nats.connect(nats_broker.url)
        big = [apikit.make_alert(i, fields={"proc.cmdline": "x" * 5000, "evt.num": i}) for i in range(1, 1001)]
        await apikit.publish(nc, big)
        await wait_for(lambda: api.hub.received >= 1000, what="the alerts offered to the subscriber")
        go.set()
        got = []
        while len(got) < 1000:
            got.extend((await asyncio.wait_for(call.read(), 30)).alerts)
        assert [r.seq for r in got] == list(range(1, 1001))
        call.cancel()
        await nc.close()
        await ch.close()


async def test_resume_after_an_alert_the_stream_deleted_is_not_found(nats_broker, tmp_path):
    """The API's id index outlives the stream's retention: a resume after an alert the disk budget
    had deleted replayed from the oldest kept alert, silently skipping the deleted ones."""
    import grpc
    import nats

    from tests import apikit
    from tests.test_api_outputs import wait_for
    from tiercel.pb.falco import outputs_pb2, outputs_pb2_grpc

    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api:
        nc = await nats.connect(nats_broker.url)
        js = nc.jetstream()
        await apikit.publish(nc, [apikit.make_alert(i) for i in range(1, 21)])
        await wait_for(lambda: api.hub.received >= 20, what="the alerts")  # all in the id index
        info = await js.stream_info(bus.ALERTS_STREAM.name)
        await js.update_stream(info.config.evolve(max_msgs=5))  # the stream keeps 16..20
        ch = grpc.aio.insecure_channel(api.target("unix"))

        async def req(alert_id):
            yield outputs_pb2.request(resume_after_id=alert_id)
            await asyncio.Event().wait()

        call = outputs_pb2_grpc.serviceStub(ch).sub(req(apikit.make_alert(3)["id"]))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await asyncio.wait_for(call.read(), 10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        call = outputs_pb2_grpc.serviceStub(ch).sub(req(apikit.make_alert(17)["id"]))  # still kept
        assert [(await asyncio.wait_for(call.read(), 10)).seq for _ in range(3)] == [18, 19, 20]
        call.cancel()
        await ch.close()
        await nc.close()


def test_an_alert_whose_seq_is_a_boolean_is_converted_not_raised():
    """The fuzz suite's bus_json target: `"seq": true` passed the int check (bool is an int in
    Python) and protobuf raised TypeError in the API's conversion."""
    from tiercel.api.alerts import Alert
    from tiercel.pb.falco import outputs_pb2

    body = json.dumps({"time": "2024-01-01T00:00:00.000000000Z", "rule": "r", "priority": "Warning",
                       "output": "o", "source": "syscall", "seq": True, "id": "h:1:1"}).encode()
    r = outputs_pb2.response.FromString(Alert.from_bus(body, None, 1).data)
    assert r.rule == "r" and r.seq == 0

"""falco.outputs over a real API server and a real nats-server: Falco 0.43's own client, fan-out,
filters, bounded queues with drops on the drops stream, resume, get, malformed requests."""

from __future__ import annotations

import asyncio
import time

import grpc
import nats
import pytest

from tests import apikit
from tiercel.api import alerts as alertmod
from tiercel.common import bus
from tiercel.pb.falco import drops_pb2, drops_pb2_grpc, outputs_pb2, outputs_pb2_grpc, schema_pb2


@pytest.fixture(scope="module")
def falco_client(tmp_path_factory):
    return apikit.build_falco_client(tmp_path_factory.mktemp("falco-client"))


async def wait_for(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def subscribed(api, n: int):
    return lambda: sum(1 for s in api.hub.subscribers.values() if s.filter is not None) >= n


async def test_falco_client_sub_and_get_over_unix_socket(nats_broker, tmp_path, falco_client):
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api:
        target = api.target("unix")
        p = apikit.falco_client(falco_client, "sub", target, 3)
        await asyncio.to_thread(apikit.wait_subscribed, p)
        await wait_for(subscribed(api, 1), what="the Falco client's subscription")
        nc = await nats.connect(nats_broker.url)
        sent = [apikit.make_alert(1), apikit.make_alert(2, priority="Critical", source="k8s_audit", rule="K8s x"),
                apikit.make_alert(3, priority="Informational", source="aws_cloudtrail", tags=[])]
        await apikit.publish(nc, sent)
        got = await asyncio.to_thread(apikit.read_results, p)
        assert [g["rule"] for g in got] == [a["rule"] for a in sent]
        first = got[0]
        assert first["priority"] == schema_pb2.WARNING
        assert first["source_deprecated"] == schema_pb2.SYSCALL and first["source"] == "syscall"
        assert first["time"] == [1718000000, 1]
        assert first["output"] == sent[0]["output"]
        assert first["hostname"] == "node-1"
        assert first["tags"] == ["filesystem", "mitre_credential_access"]
        # Every output field is a string; non-strings are JSON-dumped as Falco did.
        assert first["output_fields"] == {"evt.time": "1718000000123456790", "fd.name": "/etc/shadow",
                                          "proc.name": "cat", "evt.num": "1", "proc.pname": "null",
                                          "fd.num": "3.5", "user.loginuid": "-1", "evt.is_open_read": "true"}
        assert got[1]["priority"] == schema_pb2.CRITICAL and got[1]["source_deprecated"] == schema_pb2.K8S_AUDIT
        assert got[2]["source_deprecated"] == schema_pb2.PLUGIN and got[2]["source"] == "aws_cloudtrail"
        assert got[2]["tags"] == []

        # get: the alerts retained up to the call, then the stream closes.
        g = apikit.falco_client(falco_client, "get", target)
        got = await asyncio.to_thread(apikit.read_results, g)
        assert [x["rule"] for x in got] == [a["rule"] for a in sent]
        assert got[0]["output_fields"]["proc.name"] == "cat"

        v = apikit.falco_client(falco_client, "version", target)
        (ver,) = await asyncio.to_thread(apikit.read_results, v)
        from tiercel import ENGINE_VERSION, __version__
        assert ver["version"] == __version__
        assert (ver["engine_major"], ver["engine_minor"], ver["engine_patch"]) == ENGINE_VERSION
        assert ver["engine_version"] == ".".join(map(str, ENGINE_VERSION)) and len(ver["checksum"]) == 64
        await nc.close()


# ------------------------------------------------------------------------------------------------
# Tiercel clients (generated from protos/, in this process)
# ------------------------------------------------------------------------------------------------


class Sub:
    """A `sub` stream: sends one request, then reads responses on demand."""

    def __init__(self, channel: grpc.aio.Channel, req: outputs_pb2.request | None = None, batch: bool = False):
        stub = outputs_pb2_grpc.serviceStub(channel)
        self.batch = batch
        self.req = req or outputs_pb2.request()
        self.call = (stub.sub_batch if batch else stub.sub)(self._requests())
        self.got: list[outputs_pb2.response] = []

    async def _requests(self):
        yield self.req
        while True:  # like Falco's clients: empty polls, which the server must tolerate
            await asyncio.sleep(0.2)
            yield outputs_pb2.request()

    async def read(self, n: int, timeout: float = 20.0) -> list[outputs_pb2.response]:
        async def _read():
            while len(self.got) < n:
                m = await self.call.read()
                if m is grpc.aio.EOF:
                    raise AssertionError("stream ended")
                self.got.extend(m.alerts if self.batch else [m])
        await asyncio.wait_for(_read(), timeout)
        return self.got

    def cancel(self) -> None:
        self.call.cancel()


@pytest.fixture
async def api_env(nats_broker, tmp_path):
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api:
        nc = await nats.connect(nats_broker.url)
        ch = grpc.aio.insecure_channel(api.target("unix"))
        try:
            yield api, nc, ch
        finally:
            await ch.close()
            await nc.close()


async def test_fan_out_three_subscribers_and_a_stalled_one_drops_alone(api_env):
    api, nc, ch = api_env
    drops_call = drops_pb2_grpc.serviceStub(ch).sub(drops_pb2.request(stages=["api"]))
    a, b = Sub(ch), Sub(ch, batch=True)
    c = Sub(ch, outputs_pb2.request(queue_size=1000))
    await wait_for(subscribed(api, 3), what="three subscribers")
    await apikit.publish(nc, [apikit.make_alert(i) for i in range(1, 1001)])
    await asyncio.gather(a.read(1000), b.read(1000), c.read(1000))
    for s in (a, b, c):
        got = s.got
        assert [r.seq for r in got] == list(range(1, 1001))
        assert len({r.id for r in got}) == 1000
        assert all(r.dropped_before == 0 for r in got)

    # c stops reading. a and b keep receiving everything; c's queue stays at its bound and drops.
    big = "x" * 4096
    more = []
    for i in range(1001, 4001):
        al = apikit.make_alert(i)
        al["output"] = big
        more.append(al)
    await apikit.publish(nc, more)
    await asyncio.gather(a.read(4000, timeout=60), b.read(4000, timeout=60))
    for s in (a, b):
        assert [r.seq for r in s.got] == list(range(1, 4001))
    # Calls reach the server in any order: the stalled one is the one that asked for queue_size 1000.
    (sc,) = [s for s in api.hub.subscribers.values() if s.bound == 1000]
    (sa, sb) = [s for s in api.hub.subscribers.values() if s is not sc]
    assert sa.dropped_total == 0 and sb.dropped_total == 0
    await wait_for(lambda: sc.dropped_total > 0, what="the stalled subscriber to drop")
    assert len(sc.queue) <= 1000

    # Its drops appear on the drops stream, attributed to that subscriber.
    async def find_report():
        while True:
            r = await drops_call.read()
            if r.instance.endswith("/" + sc.name) and r.drops.get("queue_full"):
                return r
    rep = await asyncio.wait_for(find_report(), 10)
    assert rep.stage == "api" and rep.host == "test-host" and rep.totals["queue_full"] >= rep.drops["queue_full"]

    # When c reads again, the first alert after the gap says how many it lost.
    c_before = len(c.got)
    got = await c.read(c_before + len(sc.queue) + 1, timeout=30)
    after = got[c_before:]
    assert sum(r.dropped_before for r in after) + len(after) <= 3000
    assert any(r.dropped_before > 0 for r in after)
    for s in (a, b, c):
        s.cancel()
    drops_call.cancel()
    await wait_for(lambda: not api.hub.subscribers, what="subscribers to leave")


async def test_filters(api_env):
    api, nc, ch = api_env
    subs = {
        "prio": Sub(ch, outputs_pb2.request(min_priority=schema_pb2.ERROR)),
        "rules": Sub(ch, outputs_pb2.request(rules=["R2"])),
        "tags": Sub(ch, outputs_pb2.request(tags=["t2", "nope"])),
        "src": Sub(ch, outputs_pb2.request(sources=["k8s_audit"])),
        "host": Sub(ch, outputs_pb2.request(hostnames=["h2"])),
        "all": Sub(ch),
    }
    await wait_for(subscribed(api, len(subs)), what="subscribers")
    sent = [
        apikit.make_alert(1, priority="Warning", rule="R1", tags=["t1"], host="h1"),
        apikit.make_alert(2, priority="Error", rule="R2", tags=["t2"], host="h1"),
        apikit.make_alert(3, priority="Critical", rule="R3", source="k8s_audit", tags=[], host="h2"),
        apikit.make_alert(4, priority="Debug", rule="R2", tags=["t1", "t2"], host="h2"),
    ]
    await apikit.publish(nc, sent)
    want = {"prio": [2, 3], "rules": [2, 4], "tags": [2, 4], "src": [3], "host": [3, 4], "all": [1, 2, 3, 4]}
    for name, seqs in want.items():
        got = await subs[name].read(len(seqs))
        assert [r.seq for r in got] == seqs, name
    # Nothing more arrives for the narrow ones: a last alert that only "all" accepts.
    await apikit.publish(nc, [apikit.make_alert(5, priority="Debug", rule="R9", tags=[], host="h9")])
    assert [r.seq for r in await subs["all"].read(5)][-1] == 5
    await asyncio.sleep(0.2)
    for name, seqs in want.items():
        if name != "all":
            assert [r.seq for r in subs[name].got] == seqs, name
    for s in subs.values():
        s.cancel()


async def test_bad_requests_get_proper_status_and_the_server_keeps_serving(api_env):
    api, nc, ch = api_env
    # A malformed request message (not protobuf): INVALID_ARGUMENT with the parser's reason.
    raw = ch.stream_stream("/falco.outputs.service/sub", request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
    call = raw(iter([b"\xff\xff\xff\xff"]))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call.read()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in e.value.details()
    # An unknown priority number, a condition while no condition language is installed.
    for req in (outputs_pb2.request(min_priority=42),):
        s = Sub(ch, req)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await s.read(1, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Resume from an id the stream never held.
    s = Sub(ch, outputs_pb2.request(resume_after_id="nowhere:1:x"))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await s.read(1, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # Oversized: larger than grpc.max_message_bytes.
    get = ch.unary_stream("/falco.outputs.service/get", request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    huge = outputs_pb2.request(condition="x" * (5 << 20)).SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in get(huge):
            pass
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Malformed alerts on the bus are counted and skipped; good ones still flow.
    s = Sub(ch)
    await wait_for(subscribed(api, 1), what="subscriber")
    await nc.publish("tiercel.alerts.warning.syscall.x", b"not json")
    bad = apikit.make_alert(7)
    bad["priority"] = "Loud"
    await apikit.publish(nc, [bad, apikit.make_alert(8)])
    got = await s.read(1)
    assert got[0].seq == 8
    assert api.hub.bad["not_json"] == 1 and api.hub.bad["priority"] == 1
    s.cancel()


async def test_resume_after_id_and_get_with_filters(api_env):
    api, nc, ch = api_env
    await apikit.publish(nc, [apikit.make_alert(i, priority="Error" if i % 2 else "Notice") for i in range(1, 21)])
    first = Sub(ch)
    await wait_for(lambda: api.hub.last_seq >= 20, what="the hub to see the alerts")
    # get: everything retained, in order; and with a filter.
    stub = outputs_pb2_grpc.serviceStub(ch)
    assert [r.seq async for r in stub.get(outputs_pb2.request())] == list(range(1, 21))
    assert [r.seq async for r in stub.get(outputs_pb2.request(min_priority=schema_pb2.ERROR))] == \
        list(range(1, 21, 2))
    first.cancel()
    # A client saw up to alert 12, reconnects with its id; meanwhile 21..30 were published.
    seen = apikit.make_alert(12)["id"]
    await apikit.publish(nc, [apikit.make_alert(i) for i in range(21, 31)])
    again = Sub(ch, outputs_pb2.request(resume_after_id=seen))
    got = await again.read(18)
    assert [r.seq for r in got] == list(range(13, 31))
    # ... and continues live, without duplicates at the boundary.
    await apikit.publish(nc, [apikit.make_alert(i) for i in range(31, 36)])
    got = await again.read(23)
    assert [r.seq for r in got] == list(range(13, 36))
    await asyncio.sleep(0.2)
    assert len(again.got) == 23
    # get after an id: only what follows it, up to the call.
    assert [r.seq async for r in stub.get(outputs_pb2.request(resume_after_id=apikit.make_alert(33)["id"]))] == \
        [34, 35]
    again.cancel()


async def test_resume_finds_ids_older_than_the_index(api_env):
    api, nc, ch = api_env
    await apikit.publish(nc, [apikit.make_alert(i) for i in range(1, 6)])
    await wait_for(lambda: api.hub.last_seq >= 5, what="the hub to see the alerts")
    api.hub._index.clear()  # as after an API restart: the id must be found in the stream
    s = Sub(ch, outputs_pb2.request(resume_after_id=apikit.make_alert(3)["id"]))
    assert [r.seq for r in await s.read(2)] == [4, 5]
    s.cancel()


def test_alert_mapping_sans_io():
    a = apikit.make_alert(5, priority="informational", source="Syscall")
    r = alertmod.to_response(a)
    assert r.priority == schema_pb2.INFORMATIONAL and r.source_deprecated == schema_pb2.SYSCALL
    assert (r.time.seconds, r.time.nanos) == (1718000000, 5)
    assert alertmod.parse_time("2024-06-10T08:13:20.5+02:00") == (1718000000, 500_000_000)
    assert alertmod.source_enum("k8s_audit") == alertmod.source_enum("K8S_audit") == schema_pb2.K8S_AUDIT
    assert alertmod.source_enum("okta") == schema_pb2.PLUGIN
    data = alertmod.with_dropped_before(r.SerializeToString(), 300)
    assert outputs_pb2.response.FromString(data).dropped_before == 300
    b = outputs_pb2.batch.FromString(alertmod.batch_bytes([r.SerializeToString(), data]))
    assert [x.dropped_before for x in b.alerts] == [0, 300] and b.alerts[0] == r
    for bad in ({"priority": "Loud", "time": "2024-06-10T06:13:20Z", "rule": "r"},
                {"priority": "Debug", "time": "yesterday", "rule": "r"},
                {"priority": "Debug", "time": "2024-06-10T06:13:20Z", "rule": "r", "output_fields": [1]}):
        with pytest.raises(bus.BadEnvelope):
            alertmod.to_response(bad)


def _reference_response(a: dict) -> outputs_pb2.response:
    """The response built the plain way, with the generated class's keyword constructor."""
    text = alertmod.field_text
    out = a.get("output", "")
    r = outputs_pb2.response(
        priority=alertmod.priority_number(a["priority"]), source_deprecated=alertmod.source_enum(a.get("source") or
                                                                                                 "syscall"),
        rule=a["rule"], output=out if isinstance(out, str) else text(out),
        output_fields={str(k): text(v) for k, v in (a.get("output_fields") or {}).items()},
        hostname=str(a.get("hostname", "")), tags=[str(x) for x in a.get("tags") or []],
        source=a.get("source") or "syscall", id=str(a.get("id", "")), seq=a.get("seq", 0))
    r.time.seconds, r.time.nanos = alertmod.parse_time(a["time"])
    return r


def test_wire_bytes_are_what_protobuf_writes():
    """The pre-serialized bytes sub and sub_batch send parse, with the generated classes, to the
    message the keyword constructor builds, and a batch assembled from them is the batch protobuf
    would write (same message, same size: map entries may come in any order)."""
    odd = apikit.make_alert(7, fields={"proc.name": "caf\u00e9", "n": 1 << 70, "l": [1, "x"], "d": {"k": None},
                                       "f": float("nan"), "empty": ""}, tags=[])
    odd["output"] = {"not": "text"}
    bare = {"priority": "Debug", "rule": "r", "time": "2024-06-10T06:13:20Z"}
    alerts = [alertmod.Alert.from_fields(a, i + 1) for i, a in
              enumerate([apikit.make_alert(1), apikit.make_alert(2, source="k8s_audit", priority="Critical"), odd, bare])]
    for alert, a in zip(alerts, [apikit.make_alert(1), apikit.make_alert(2, source="k8s_audit", priority="Critical"),
                                 odd, bare], strict=True):
        ref = _reference_response(a)
        assert outputs_pb2.response.FromString(alert.data) == ref
        # Same fields, each once (map entries may come in any order, so sizes rather than bytes).
        assert len(alert.data) == ref.ByteSize()
        assert (alert.rule, alert.source, alert.hostname, alert.id, alert.tags, alert.priority) == \
            (ref.rule, ref.source, ref.hostname, ref.id, frozenset(ref.tags), ref.priority)
    parsed = [outputs_pb2.response.FromString(x.data) for x in alerts]
    wire = alertmod.batch_bytes([x.data for x in alerts])
    assert outputs_pb2.batch.FromString(wire) == outputs_pb2.batch(alerts=parsed)
    assert len(wire) == outputs_pb2.batch(alerts=parsed).ByteSize()
    # A name that is not UTF-8 (a lone surrogate from the bus's decoder) becomes U+FFFD, as before.
    bad = apikit.make_alert(3, fields={"fd.name": "/tmp/\udcff"})
    got = outputs_pb2.response.FromString(alertmod.Alert.from_fields(bad).data)
    assert got.output_fields["fd.name"] == "/tmp/\ufffd"


async def test_condition_filter_in_falco_syntax(api_env):
    api, nc, ch = api_env
    cond = ('alert.field[proc.name] = cat and alert.seq > 2 and alert.tags intersects (filesystem) '
            'and not alert.hostname = h9')
    s = Sub(ch, outputs_pb2.request(condition=cond))
    k8s = Sub(ch, outputs_pb2.request(condition="ka.user.name = alice and ka.verb in (create, delete)"))
    await wait_for(subscribed(api, 2), what="subscribers")
    sent = [apikit.make_alert(1), apikit.make_alert(3), apikit.make_alert(4, host="h9"),
            apikit.make_alert(5, fields={"proc.name": "vi"}), apikit.make_alert(6, tags=["network"]),
            apikit.make_alert(7, source="k8s_audit", fields={"ka.user.name": "alice", "ka.verb": "create"}),
            apikit.make_alert(8, source="k8s_audit", fields={"ka.user.name": "bob", "ka.verb": "create"}),
            apikit.make_alert(9)]
    await apikit.publish(nc, sent)
    assert [r.seq for r in await s.read(2)] == [3, 9]
    assert [r.seq for r in await k8s.read(1)] == [7]
    await asyncio.sleep(0.2)
    assert len(s.got) == 2 and len(k8s.got) == 1
    # A condition that does not compile: INVALID_ARGUMENT saying why and where.
    for bad, why in (("alert.rule = = x", "expected"), ("nosuch.field = 1", "nosuch.field"),
                     ("my_macro", "Undefined macro")):
        b = Sub(ch, outputs_pb2.request(condition=bad))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await b.read(1, timeout=5)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and why in e.value.details()
    s.cancel()
    k8s.cancel()

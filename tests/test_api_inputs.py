"""falco.inputs over a real API and nats-server: each message answered in order, accepted events
stored as event batches on the events subject (k8s audit, generic JSON, syscall-model), bad ones
rejected with a reason while the stream goes on."""

from __future__ import annotations

import asyncio
import json

import grpc
import msgpack
import nats

from tests import apikit
from tiercel.common import bus
from tiercel.pb.falco import inputs_pb2

AUDIT = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
         "auditID": "1d0c5d2a-7a53-4b6f-9b62-0f0e5b4d9c11", "stage": "ResponseComplete",
         "requestURI": "/api/v1/namespaces/default/pods/nginx/exec?command=sh", "verb": "create",
         "user": {"username": "alice", "groups": ["system:authenticated"]},
         "objectRef": {"resource": "pods", "namespace": "default", "name": "nginx", "subresource": "exec"},
         "responseStatus": {"code": 101}, "requestReceivedTimestamp": "2024-06-10T06:13:20.000000Z",
         "stageTimestamp": "2024-06-10T06:13:20.123456Z"}


def contains(obj, needle: bytes) -> bool:
    if isinstance(obj, bytes | str):
        return needle in (obj if isinstance(obj, bytes) else obj.encode())
    if isinstance(obj, list | tuple):
        return any(contains(x, needle) for x in obj)
    if isinstance(obj, dict):
        return any(contains(x, needle) for x in obj.values())
    return False


async def test_inputs_reach_the_events_subject(nats_broker, tmp_path):
    async with apikit.running_api(apikit.api_config(nats_broker.url, tmp_path / "t.sock")) as api:
        nc = await nats.connect(nats_broker.url)
        batches: list = []

        async def on_batch(m):
            batches.append((m.subject, m.headers, m.data))

        await nc.subscribe("tiercel.events.>", cb=on_batch)
        await nc.flush()
        ch = grpc.aio.insecure_channel(api.target("unix"))
        lst = {"kind": "EventList", "items": [dict(AUDIT, auditID="a1"), dict(AUDIT, auditID="a2")]}
        msgs = [
            inputs_pb2.event(id="1", source="k8s_audit", json=json.dumps(AUDIT)),
            inputs_pb2.event(id="2", source="k8s_audit", json=json.dumps(lst)),
            inputs_pb2.event(id="3", source="k8s_audit", json="{not json"),
            inputs_pb2.event(id="4", source="myapp", hostname="web-1", json='{"user": "bob", "action": "login"}'),
            inputs_pb2.event(id="5", source="my app!", json="{}"),
            inputs_pb2.event(id="6", syscall=inputs_pb2.syscall_event(
                type="openat", res=3, params={"fd": "3", "name": "/etc/shadow", "flags": "1", "dirfd": "-100"},
                tid=42, pid=42, ppid=1, comm="cat", exe="cat", exepath="/usr/bin/cat", args=["/etc/shadow"],
                uid=1000, fd_name="/etc/shadow", fd_type="file", ancestors=["bash", "sshd"])),
            inputs_pb2.event(id="7", syscall=inputs_pb2.syscall_event(type="no_such_call")),
            inputs_pb2.event(id="8", syscall=inputs_pb2.syscall_event(type="openat", params={"nope": "1"})),
            inputs_pb2.event(id="9"),
        ]
        raw = ch.stream_stream("/falco.inputs.service/send", request_serializer=lambda b: b,
                               response_deserializer=inputs_pb2.ack.FromString)

        async def requests():
            for m in msgs[:3]:
                yield m.SerializeToString()
            yield b"\xff\xff\xff"  # not a message at all: rejected, the stream goes on
            for m in msgs[3:]:
                yield m.SerializeToString()

        acks = [a async for a in raw(requests())]
        assert [a.id for a in acks] == ["1", "2", "3", "", "4", "5", "6", "7", "8", "9"]
        assert [a.accepted for a in acks] == [True, True, False, False, True, False, True, False, False, False]
        assert (acks[0].seq, acks[0].count, acks[0].producer) == (1, 1, "test-host:inputs")
        assert (acks[1].seq, acks[1].count) == (2, 2)
        assert acks[4].producer == "web-1:inputs" and acks[4].seq == 1
        assert "not JSON" in acks[2].error or "invalid JSON" in acks[2].error
        assert "malformed" in acks[3].error and "letters, digits" in acks[5].error
        assert "unknown event type" in acks[7].error and "unknown parameter" in acks[8].error
        assert "no payload" in acks[9].error

        # What reached the bus: one stored batch per accepted message, on the documented subjects.
        deadline = asyncio.get_running_loop().time() + 10
        while len(batches) < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        subjects = [s for s, _, _ in batches]
        assert subjects == ["tiercel.events.k8s_audit.test_host_inputs"] * 2 + [
            "tiercel.events.myapp.web_1_inputs", "tiercel.events.syscall.test_host_inputs"]
        decoded = [bus.EventBatch.decode(d) for _, _, d in batches]
        assert [(b.host, b.source, b.seq, len(b.events)) for b in decoded] == [
            ("test-host:inputs", "k8s_audit", 1, 1), ("test-host:inputs", "k8s_audit", 2, 2),
            ("web-1:inputs", "myapp", 1, 1), ("test-host:inputs", "syscall", 4, 1)]
        assert batches[0][1][bus.HDR_MSG_ID] == "test-host:inputs:1"
        assert contains(decoded[0].events, AUDIT["auditID"].encode())
        assert contains(decoded[1].events, b'"a2"') and contains(decoded[2].events, b"bob")
        assert contains(decoded[3].events, b"/etc/shadow")
        # ... and they are stored in the events stream, where the rules workers read them.
        info = await nc.jetstream().stream_info(bus.EVENTS_STREAM.name)
        assert info.state.messages == 4
        assert msgpack.unpackb(batches[0][2])[0] == bus.SCHEMA_VERSION
        await ch.close()
        await nc.close()

"""The bus contract: docs/bus.md lists everything bus.py defines; envelopes round-trip and reject garbage."""

from __future__ import annotations

import msgpack
import pytest

from tests.conftest import ROOT
from tiercel.common import bus

DOC = (ROOT / "docs" / "bus.md").read_text()


def test_doc_lists_every_subject_stream_bucket_and_group():
    names = [
        f"{bus.EVENTS_SUBJECT}.<source>.<host>",
        f"{bus.ALERTS_SUBJECT}.<priority>.<source>.<rule_slug>",
        f"{bus.DROPS_SUBJECT}.<stage>.<host>",
        f"{bus.HEARTBEAT_SUBJECT}.<service>.<host>.<instance>",
        f"{bus.CONTROL_SUBJECT}.rules.<op>",
        f"{bus.CONTROL_SUBJECT}.config.<op>",
        bus.CONTROL_QUEUE, bus.RULES_CONSUMER, bus.HDR_SCHEMA, bus.HDR_MSG_ID,
        *[s.name for s in bus.STREAMS], *bus.KV_BUCKETS, *bus.STAGES, *bus.RULES_OPS, *bus.CONFIG_OPS,
    ]
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert not missing, f"docs/bus.md does not list {missing}"


def test_subjects():
    assert bus.alert_subject("Warning", "syscall", "Read sensitive file untrusted") == \
        "tiercel.alerts.warning.syscall.read_sensitive_file_untrusted"
    assert bus.slug("Terminal shell in container") == "terminal_shell_in_container"
    assert bus.slug("  --Weird/Name!! ") == "weird_name"
    assert bus.slug("!!!") == "_"
    assert bus.events_subject("k8s_audit", "node.example.com") == "tiercel.events.k8s_audit.node_example_com"
    assert bus.parse_alert_subject("tiercel.alerts.debug.internal.x").priority == "debug"
    with pytest.raises(bus.BadEnvelope):
        bus.parse_alert_subject("tiercel.events.x.y")
    with pytest.raises(ValueError):
        bus.drops_subject("nowhere", "h")


def test_event_batch_round_trip_and_rejections():
    b = bus.EventBatch(host="h", source="syscall", seq=10, events=[[1, 2], [3, 4]], sent_ns=5)
    d = bus.EventBatch.decode(b.encode())
    assert (d.host, d.source, d.seq, d.events, d.sent_ns) == ("h", "syscall", 10, [[1, 2], [3, 4]], 5)
    bad = {
        "not_msgpack": b"\xc1\xc1\xc1",
        "shape": msgpack.packb({"a": 1}),
        "schema_version": msgpack.packb([99, "h", "s", 1, 0, []]),
    }
    for reason, data in bad.items():
        with pytest.raises(bus.BadEnvelope) as e:
            bus.EventBatch.decode(data)
        assert e.value.reason == reason
    with pytest.raises(bus.BadEnvelope, match="non-negative"):
        bus.EventBatch.decode(msgpack.packb([1, "h", "s", -1, 0, []]))


def test_alert_drop_heartbeat_envelopes():
    body, hdrs = bus.encode_alert({"id": "h:1:ab", "rule": "r", "priority": "Warning", "time": "t", "seq": 1})
    assert hdrs == {bus.HDR_SCHEMA: "alert/1", bus.HDR_MSG_ID: "h:1:ab"}
    assert bus.decode_alert(body, hdrs)["rule"] == "r"
    with pytest.raises(bus.BadEnvelope) as e:
        bus.decode_alert(b"[1]")
    assert e.value.reason == "shape"
    r = bus.DropReport("ingest", "h", "i", 1, 1.0, 100, {"queue_full": 3}, {"queue_full": 9})
    r2 = bus.DropReport.decode(r.encode())
    assert r2 == r and r2.n_drops == 3
    hb = bus.Heartbeat("rules", "h", "i", 1, 0, revision=3, rates={"events": 1.5}, lag=2)
    assert bus.Heartbeat.decode(hb.encode()) == hb
    with pytest.raises(bus.BadEnvelope):
        bus.Heartbeat.decode(b'{"v": 2}')
    req = bus.decode_request(bus.encode_request("put", name="a.yaml"))
    assert req["op"] == "put" and req["name"] == "a.yaml"
    assert bus.decode_reply(bus.encode_reply(False, "nope"))["error"] == "nope"

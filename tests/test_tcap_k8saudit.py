"""Tiercel's capture format (.tcap) and k8s audit files."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from tests.test_fields_sysdig import REQUIRED
from tests.test_wire import _norm
from tiercel.common import eventtable as et
from tiercel.common.event import Event
from tiercel.ingest import k8saudit, tcap
from tiercel.ingest.capfile import CaptureError, read_capture, sniff
from tiercel.ingest.scap.reader import read_scap
from tiercel.ingest.state import StateEngine
from tiercel.rules.fields import catalog as C


def test_tcap_round_trip_resolves_every_field(conformance_dir, tmp_path):
    path = tmp_path / "c.tcap"
    before = []
    checks = []  # the wire test covers every field; here the differential test's list
    for name in REQUIRED:
        arg = None
        if "[" in name:
            name, arg = name[:-1].split("[", 1)
        checks.append((C.lookup(name, "syscall"), arg))
    with open(path, "wb") as f:
        w = tcap.TcapWriter(f, host="h1", record_events=100)
        for ev in StateEngine().run(read_scap(conformance_dir / "traces" / "libs/curl_google.scap")):
            before.append([(fl.name, a, _norm(fl.extract(ev, a))) for fl, a in checks])
            w.write_event(ev)  # one by one: written as the state engine leaves each event
        w.close()
    p = tcap.TcapParser()
    after = list(tcap.read_tcap(path, parser=p))
    assert len(after) == len(before) and p.header["host"] == "h1"
    for ev, vals in zip(after, before, strict=True):
        for name, a, want in vals:
            assert _norm(C.lookup(name, "syscall").extract(ev, a)) == want, (ev.num, name, a)
    assert sniff(path.read_bytes()[:16]) == "tcap"
    # through the capture entry point, gzip too; hidden events stay hidden
    gz = tmp_path / "c.tcap.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    shown = list(read_capture(gz))
    assert 0 < len(shown) < len(after) and all(e.code != et.PPME_PROCINFO_E for e in shown)


def test_tcap_bad_input():
    buf = io.BytesIO()
    w = tcap.TcapWriter(buf)
    w.write_events([Event(i, i, 1, 5, [0]) for i in range(1, 11)])
    data = buf.getvalue()
    p = tcap.TcapParser()
    assert len(list(tcap.read_tcap(data[:-5], parser=p))) == 0 and p.stats["truncated_bytes"] > 0
    with pytest.raises(tcap.TcapError, match="magic"):
        list(tcap.read_tcap(b"NOPE" + data[4:]))
    junk = data + tcap._LEN.pack(4) + b"\x93\x07\x07\x07"  # an unknown record kind
    p = tcap.TcapParser()
    assert len(list(tcap.read_tcap(junk, parser=p))) == 10 and p.stats["skipped_records"] == 1


def test_k8s_audit_corpus(conformance_dir):
    files = sorted((conformance_dir / "traces" / "k8s_audit").glob("*.json"))
    total = 0
    for f in files:
        stats: dict[str, int] = {}
        evs = list(k8saudit.read_audit_file(f, stats=stats))
        for e in evs:
            assert e.source == "k8s_audit" and e.code == et.PPME_PLUGINEVENT_E and e.payload["kind"] == "Event"
            assert e.ts > 1_500_000_000 * 10**9
            assert json.loads(e.params[1]) == e.payload
        total += len(evs)
        if not evs:
            assert stats.get("not_audit") or stats.get("bad_json")  # fal_01_003: not audit data
    assert total >= len(files) - 1


def test_k8s_audit_shapes_and_source_override(tmp_path):
    ev = {"kind": "Event", "auditID": "a1", "stageTimestamp": "2024-01-02T03:04:05.123456789Z", "verb": "get"}
    ev2 = dict(ev, auditID="a2", stageTimestamp=None, requestReceivedTimestamp="2024-01-02T03:04:06Z")
    shapes = {
        "event": json.dumps(ev),
        "list": json.dumps({"kind": "EventList", "items": [ev, ev2]}),
        "array": json.dumps([ev, ev2]),
        "lines": json.dumps(ev) + "\n" + json.dumps(ev2) + "\n\n{broken\n",
    }
    for name, text in shapes.items():
        f = tmp_path / f"{name}.json"
        f.write_text(text)
        evs = list(read_capture(f))
        assert [e.payload["auditID"] for e in evs] == ["a1", "a2"][:len(evs)] and evs, name
        assert evs[0].ts == 1704164645_123456789
        if len(evs) > 1:
            assert evs[1].ts == 1704164646_000000000
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": "world"}))
    assert list(read_capture(other)) == []
    forced = list(read_capture(other, source="myjson"))
    assert forced[0].source == "myjson" and forced[0].payload == {"hello": "world"}
    (tmp_path / "x.bin").write_bytes(b"\x00garbage")
    with pytest.raises(CaptureError, match="not a capture"):
        list(read_capture(tmp_path / "x.bin"))

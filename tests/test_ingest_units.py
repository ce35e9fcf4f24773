"""Ingest pieces without the kernel: drop accounting and Falco's syscall_event_drops, the
sequence store, the bounded queue, the proc connector parser, the webhook request parsing."""

from __future__ import annotations

import json
import struct

import pytest

from tiercel.common import bus
from tiercel.ingest import procconn
from tiercel.ingest.drops import (
    DROP_ALERT_FIELDS,
    DROP_RULE,
    StageCounters,
    SyscallEventDrops,
    TokenBucket,
    drop_alert,
    drop_alert_fields,
)
from tiercel.ingest.k8s_webhook import BadRequest, parse_request_head, parse_time, split_events
from tiercel.ingest.publisher import SeqStore
from tiercel.ingest.queue import EventQueue


def test_stage_counters_intervals():
    c = StageCounters("ingest")
    c.seen(10)
    c.drop("queue_full", 3, "open")
    evts, drops, totals, cats = c.interval()
    assert (evts, drops, totals, cats) == (10, {"queue_full": 3}, {"queue_full": 3}, {"open": 3})
    c.seen(2)
    evts, drops, totals, _ = c.interval()
    assert (evts, drops, totals) == (2, {}, {"queue_full": 3})


def test_token_bucket_and_threshold():
    tb = TokenBucket(rate=1.0, max_burst=2, last=0.0)
    assert tb.claim(0.0) and tb.claim(0.0) and not tb.claim(0.0)
    assert tb.claim(1.0)
    m = SyscallEventDrops(threshold=0.1, actions=["log", "alert"], rate=0.0, max_burst=1)
    assert m.check(100, 5, now=0.0) is None  # 5% <= 10%
    d = m.check(100, 20, now=0.0)
    assert d is not None and d.actions == ("log", "alert") and d.n_drops == 20
    assert m.check(100, 50, now=1.0) is None  # bucket depleted, still an occurrence
    assert m.occurrences == 2 and m.actions_taken == 1
    assert SyscallEventDrops(actions=["ignore"]).check(10, 10) is None
    sim = SyscallEventDrops(threshold=0.5, simulate=True)
    assert sim.check(1000, 0) is not None  # simulate: threshold 0 and one fake drop


def test_drop_alert_shape():
    f = drop_alert_fields(1000, 30, 25, {"open": 10, "execve": 5, "weird": 2}, bug=1)
    assert list(f) == list(DROP_ALERT_FIELDS) and all(isinstance(v, str) for v in f.values())
    assert f["n_drops_buffer_open_exit"] == "10" and f["n_drops_buffer_other_interest_exit"] == "2"
    a = drop_alert("node-1", f, time_ns=1_700_000_000_123_456_789)
    assert a["rule"] == DROP_RULE and a["priority"] == "Debug" and a["source"] == "internal"
    assert a["time"] == "2023-11-14T22:13:20.123456789Z"
    assert a["output"] == "Falco internal: syscall event drop. 30 system calls dropped in last second."
    body, headers = bus.encode_alert(a)
    assert bus.decode_alert(body, headers)["output_fields"]["n_evts"] == "1000"
    assert bus.alert_subject("Debug", "internal", a["rule"]) == \
        "tiercel.alerts.debug.internal.falco_internal_syscall_event_drop"


def test_seq_store_clean_and_crash(tmp_path):
    p = tmp_path / "seq.json"
    s = SeqStore(p, reserve=100)
    assert s.take(10) == 1 and s.take(5) == 11
    s.close()
    s2 = SeqStore(p, reserve=100)
    assert s2.take(1) == 16  # clean stop: no gap
    # crash: nothing closed; the next start resumes after the reservation, never reusing a number
    s3 = SeqStore(p, reserve=100)
    assert s3.take(1) >= 117


def test_event_queue_bounded_in_events_whole_chunks():
    q = EventQueue(4)
    assert q.put_chunk([1, 2, 3]) == []
    assert q.put_chunk([4, 5, 6]) == [5, 6]  # the tail goes: the head still decodes on its own
    assert len(q) == 4 and q.high_water == 4
    assert q.put_chunk([7]) == [7]
    assert q.take_chunk() == [1, 2, 3] and q.take_chunk() == [4] and q.take_chunk() == [] and len(q) == 0


def _proc_msg(what: int, data: bytes) -> bytes:
    body = struct.pack("=IIQ", what, 0, 123) + data
    cn = struct.pack("=IIIIHH", procconn.CN_IDX_PROC, procconn.CN_VAL_PROC, 0, 0, len(body), 0) + body
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


def test_procconn_parse():
    (fork,) = procconn.parse(_proc_msg(procconn.FORK, struct.pack("=4I", 10, 10, 11, 11)))
    assert (fork.pid, fork.tgid, fork.data) == (10, 10, (11, 11))
    (ex,) = procconn.parse(_proc_msg(procconn.EXIT, struct.pack("=6I", 11, 11, 256, 17, 10, 10)))
    assert ex.data == (256, 17)
    (cm,) = procconn.parse(_proc_msg(procconn.COMM, struct.pack("=2I", 5, 5) + b"bash\0".ljust(16, b"\0")))
    assert cm.data == ("bash",)
    with pytest.raises(procconn.GarbledProcEvent):
        procconn.parse(_proc_msg(procconn.FORK, b"\1\2"))
    ev = procconn.ProcTranslator().translate(ex)
    assert ev is not None and ev.params[:3] == [256, 1, 17]


def test_webhook_parsing():
    h = parse_request_head(b"POST /k8s-audit?x=1 HTTP/1.1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 5\r\n\r\n")
    assert (h.method, h.path, h.content_length) == ("POST", "/k8s-audit", 5)
    with pytest.raises(BadRequest):
        parse_request_head(b"garbage\r\n\r\n")
    ev = {"kind": "Event", "stageTimestamp": "2019-01-01T00:00:00.123456789Z"}
    lst = {"kind": "EventList", "items": [ev, ev]}
    got, bad = split_events(json.dumps([ev, lst, {"kind": 0}, 3]).encode(), 1 << 20)
    assert len(got) == 3 and bad == {"k8s_bad_event": 2}
    got, bad = split_events((json.dumps(ev) + "\n" + json.dumps(ev) + "\n").encode(), 1 << 20)
    assert len(got) == 2 and not bad
    got, bad = split_events(json.dumps(ev).encode(), 10)
    assert got == [] and bad == {"k8s_event_too_large": 1}
    with pytest.raises(BadRequest) as e:
        split_events(b"{nope", 100)
    assert e.value.status == 400 and e.value.reason == "k8s_bad_json"
    assert parse_time("2019-01-01T00:00:00.123456789Z") == 1546300800_123456789
    assert parse_time("bad") == 0

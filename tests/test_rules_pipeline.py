"""One batch through a worker's pipeline, without I/O: the alerts equal the engine's matches on the
original events (also when events no rule looks at are never decoded), alert ids are stable, bad
batches and bad events are counted with their reasons, the output rate limit counts what it drops."""

from __future__ import annotations

import msgpack
import pytest

from tiercel.common import bus
from tiercel.common.config import Config
from tiercel.common.wire import encode_events
from tiercel.rules.compiled import EngineAdapter
from tiercel.rules.pipeline import MAX_BATCH_BYTES, AlertSettings, Pipeline
from tiercel.rules.service import seed_files


@pytest.fixture(scope="module")
def setup():
    from tiercel.rules.bench import event_mix

    cfg = Config()
    adapter = EngineAdapter(cfg, "h")
    build = adapter.build(seed_files(cfg), [])
    assert build.ok
    return cfg, adapter, build.ruleset, event_mix(6000)


def _pipeline(cfg, adapter, ruleset, **settings) -> Pipeline:
    p = Pipeline(adapter, "h", AlertSettings.from_config(cfg.with_values(settings)))
    p.swap(ruleset, 7)
    return p


def test_alerts_are_the_engine_matches_of_the_original_events(setup):
    cfg, adapter, rs, events = setup
    expected = []
    for i, e in enumerate(events):
        expected += [(1000 + i, m.rule.name) for m in rs.process(e)]
    assert len(expected) > 50
    p = _pipeline(cfg, adapter, rs)
    got, n = [], 0
    for k in range(0, len(events), 256):
        data = bus.EventBatch("node-1", "syscall", 1000 + k, encode_events(events[k:k + 256]), 0).encode()
        out = p.process(data)
        assert out.ok and not out.drops and out.revision == 7
        n += out.n_events
        for a in out.alerts:
            alert = bus.decode_alert(a.body, a.headers)
            got.append((alert["seq"], alert["rule"]))
            assert alert["id"] == a.headers[bus.HDR_MSG_ID] == f"node-1:{alert['seq']}:{p.rule_hash(alert['rule'])}"
            assert alert["hostname"] == "node-1" and a.subject == bus.alert_subject(a.priority, a.source, a.rule)
    assert n == len(events) and got == expected
    # Evaluated again (a redelivery), the same batch gives the same alert ids.
    data = bus.EventBatch("node-1", "syscall", 1000, encode_events(events[:256]), 0).encode()
    assert [a.headers for a in p.process(data).alerts] == [a.headers for a in p.process(data).alerts]


def test_bad_batches_and_bad_events_are_counted(setup):
    cfg, adapter, rs, events = setup
    p = _pipeline(cfg, adapter, rs)
    cases = {
        b"\xc1garbage": "not_msgpack",
        msgpack.packb([2, "h", "syscall", 1, 0, []]): "schema_version",
        msgpack.packb({"v": 1}): "shape",
        b"\x00" * (MAX_BATCH_BYTES + 1): "too_large",
    }
    for data, reason in cases.items():
        out = p.process(data)
        assert not out.ok and dict(out.drops) == {reason: 1}
    items = encode_events(events[:3])
    out = p.process(bus.EventBatch("h", "syscall", 1, [items[0], b"\xc1", [1, 2, 3], items[1]], 0).encode())
    assert out.ok and out.n_events == 4 and dict(out.drops) == {"bad_event": 2}
    p.swap(None, 0)
    assert dict(p.process(bus.EventBatch("h", "syscall", 1, items, 0).encode()).drops) == {"no_ruleset": 3}


def test_output_rate_limit_counts_what_it_drops(setup):
    cfg, adapter, rs, events = setup
    p = _pipeline(cfg, adapter, rs, **{"outputs.rate": 0.001, "outputs.max_burst": 2})
    data = bus.EventBatch("h", "syscall", 1, encode_events(events[:2000]), 0).encode()
    out = p.process(data, now=p.bucket.last)
    assert len(out.alerts) == 2 and out.rate_limited == sum(out.matches.values()) - 2 > 0

"""The rules service with real worker processes on a real nats-server: every alert exactly once
(also when a worker is SIGKILLed mid-stream), rules and configs changed live on every worker,
malformed batches counted as drops, lost batches counted as sequence gaps."""

from __future__ import annotations

import asyncio
import collections
import time

import msgpack
import pytest

from tests.ruleskit import HOST, Bus, Workers, open_event
from tiercel.common import bus

RULES = """
- rule: Shadow read by cat
  desc: test rule, warning
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/shadow
  output: "cat opened %fd.name (proc=%proc.name)"
  priority: WARNING
  tags: [test, filesystem]
- rule: Sudoers read by anyone
  desc: test rule, critical
  condition: evt.type = openat and fd.name = /etc/sudoers
  output: "%proc.name opened %fd.name"
  priority: CRITICAL
  tags: [test]
"""

EXTRA = """
- rule: Passwd read by cat
  desc: added live
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/passwd
  output: "cat opened %fd.name"
  priority: ERROR
"""

BROKEN = """
- rule: Broken
  desc: does not compile
  condition: evt.type = openat and and
  output: x
  priority: ERROR
"""


@pytest.fixture
def system(nats_broker, tmp_path):
    rules = tmp_path / "test_rules.yaml"
    rules.write_text(RULES)
    w = Workers(nats_broker.url, tmp_path, {
        "rules_files": str(rules), "rules.ack_wait_s": 1, "metrics.rules_port": 0, "rules.fetch_batch": 4,
        "syscall_event_drops.actions": "log"})
    yield w
    w.stop()


def mixed_batch(k: int, n: int = 50) -> tuple[list, list[int]]:
    """n events, every 10th a match of `Shadow read by cat`; returns the events and the offsets
    (within the batch) of the matching ones."""
    events, hits = [], []
    for i in range(n):
        if i % 10 == 3:
            events.append(open_event(k * n + i, "cat", "/etc/shadow"))
            hits.append(i)
        else:
            events.append(open_event(k * n + i, "nginx", "/srv/www/index.html"))
    return events, hits


def ids_of(alerts: list[dict], rule: str) -> collections.Counter:
    return collections.Counter(a["id"] for a in alerts if a["rule"] == rule)


async def test_every_alert_exactly_once_even_when_a_worker_is_killed(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        await b.ready(2)
        expected: set[int] = set()
        n_batches = 240
        for k in range(n_batches):
            events, hits = mixed_batch(k)
            first = await b.publish(events)
            expected.update(first + i for i in hits)
            if k == n_batches // 3:
                system.kill(0)  # mid-stream, with batches in flight
            await asyncio.sleep(0.005)

        def stored_all():
            return None
        deadline = time.monotonic() + 20
        while True:
            alerts = await b.stored_alerts()
            got = ids_of(alerts, "Shadow read by cat")
            if len(got) >= len(expected) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        seqs = sorted(a["seq"] for a in alerts if a["rule"] == "Shadow read by cat")
        assert set(seqs) == expected, f"missing {sorted(expected - set(seqs))[:10]}"
        assert all(n == 1 for n in got.values()), [i for i, n in got.items() if n > 1][:5]
        assert len(seqs) == len(expected)
        # The kill really left batches in flight: the survivor got redeliveries.
        survivor = next(hb for hb in b.live().values())
        assert survivor["counters"]["redelivered"] > 0
        # A core subscriber may see a redelivered batch's alert twice; the ids tell them apart.
        core = {a["id"] for a in b.core_alerts if a["rule"] == "Shadow read by cat"}
        assert core == set(got)
        a = next(a for a in alerts if a["rule"] == "Shadow read by cat")
        assert a["priority"] == "Warning" and a["source"] == "syscall" and a["hostname"] == HOST
        assert a["tags"] == ["filesystem", "test"] and a["output_fields"]["fd.name"] == "/etc/shadow"
        assert a["id"].startswith(f"{HOST}:{a['seq']}:")


async def test_rules_put_rejects_errors_and_valid_changes_reach_every_worker(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        workers = await b.ready(2)
        rev0 = next(iter(workers.values()))["revision"]
        assert rev0 > 0 and all(w["revision"] == rev0 for w in workers.values())
        bad = await b.request("rules", "put", name="broken.yaml", content=BROKEN)
        assert not bad["ok"] and bad["code"] == "invalid"
        codes = [e["code"] for r in bad["load_result"]["falco_load_results"] for e in r["errors"]]
        assert codes == ["LOAD_ERR_COMPILE_CONDITION"]
        await asyncio.sleep(0.3)
        assert all(w["revision"] == rev0 for w in b.live().values())

        t0 = time.monotonic()
        ok = await b.request("rules", "put", name="extra.yaml", content=EXTRA)
        assert ok["ok"], ok
        assert time.monotonic() - t0 < 1.0 + 0.5  # validation + every worker swapped
        rev1 = ok["revision"]
        assert rev1 > rev0 and {w["revision"] for w in ok["workers"]} == {rev1} and len(ok["workers"]) == 2
        for k in range(4):
            await b.publish([open_event(k, "cat", "/etc/passwd")])
        await b.until(lambda: sum(1 for a in b.core_alerts if a["rule"] == "Passwd read by cat") >= 4, 5,
                      "alerts of the new rule from both workers")
        # The store answers with what it holds.
        listing = await b.request("rules", "list")
        assert [f["name"] for f in listing["files"]] == ["test_rules.yaml", "extra.yaml"]
        assert {r["name"] for r in listing["rules"]} >= {"Shadow read by cat", "Passwd read by cat"}
        got = await b.request("rules", "get", name="extra.yaml")
        assert got["content"] == EXTRA
        # Disable by tag: persisted as a selection, every worker stops alerting on those rules.
        off = await b.request("rules", "disable", tag="filesystem")
        assert off["ok"] and off["rules"] == ["Shadow read by cat"]
        before = len(b.core_alerts)
        await b.publish([open_event(99, "cat", "/etc/shadow"), open_event(100, "cat", "/etc/sudoers")])
        await b.until(lambda: any(a["rule"] == "Sudoers read by anyone" for a in b.core_alerts[before:]), 5,
                      "the sudoers alert")
        await asyncio.sleep(0.2)
        assert not any(a["rule"] == "Shadow read by cat" for a in b.core_alerts[before:])
        conflict = await b.request("rules", "delete", name="extra.yaml", expected_revision=rev0)
        assert not conflict["ok"] and conflict["code"] == "conflict"


async def test_config_set_priority_applies_on_every_worker_within_a_second(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        await b.ready(2)
        t0 = time.monotonic()
        r = await b.request("config", "set", key="priority", value="ERROR")
        assert r["ok"] and r["value"] == "error"
        assert time.monotonic() - t0 < 1.0
        assert len(r["workers"]) == 2 and all(w["config_revision"] >= r["revision"] for w in r["workers"])
        before = len(b.core_alerts)
        for k in range(6):  # spread over both workers
            await b.publish([open_event(k, "cat", "/etc/shadow"), open_event(k, "vi", "/etc/sudoers")])
        await b.until(lambda: sum(1 for a in b.core_alerts[before:] if a["rule"] == "Sudoers read by anyone") >= 6,
                      5, "critical alerts")
        await asyncio.sleep(0.2)
        assert not [a for a in b.core_alerts[before:] if a["priority"] == "Warning"]
        r = await b.request("config", "unset", key="priority")
        assert r["ok"] and r["value"] == "debug"
        bad = await b.request("config", "set", key="priority", value="LOUD")
        assert not bad["ok"] and bad["code"] == "invalid_value"


async def test_malformed_batches_are_counted_drops_and_the_worker_keeps_going(nats_broker, system):
    system.start(0)
    async with Bus(nats_broker.url) as b:
        await b.ready(1)
        await b.publish_raw(b"\xc1\xc1 garbage")
        await b.publish_raw(msgpack.packb([99, HOST, "syscall", 1, 0, []]))  # future schema version
        await b.publish_raw(msgpack.packb([1, HOST, "syscall", 1, 0, [[0]] * (bus.MAX_BATCH_EVENTS + 1)]))
        await b.publish_raw(b"\x00" * (5 << 20))  # bigger than any batch should be
        await b.publish([open_event(1, "cat", "/etc/shadow")])
        await b.until(lambda: any(a["rule"] == "Shadow read by cat" for a in b.core_alerts), 10,
                      "the alert of the good batch after the bad ones")

        def totals():
            reps = [r for r in b.drops if r.stage == "rules"]
            return reps[-1].totals if reps else {}
        await b.until(lambda: {"not_msgpack", "schema_version", "too_large"} <= set(totals()), 5,
                      "drop reports with the reasons")
        assert totals()["too_large"] == 2
        assert system.procs[0].poll() is None
        log = system.log(0)
        assert "dropped in the last second" in log and "Traceback" not in log


async def test_a_lost_batch_is_a_seq_gap_drop_of_the_bus_stage(nats_broker, system):
    system.start(0)
    async with Bus(nats_broker.url) as b:
        await b.ready(1)
        await b.publish([open_event(i, "nginx", "/srv/a") for i in range(20)])  # seq 1..20
        b.seq[HOST] += 30  # 21..50 never published
        await b.publish([open_event(i, "nginx", "/srv/a") for i in range(20)])  # seq 51..70
        reps = await b.until(lambda: [r for r in b.drops if r.stage == "bus" and r.drops.get("seq_gap")], 10,
                             "a seq_gap report")
        assert reps[0].host == HOST and reps[0].drops == {"seq_gap": 30}

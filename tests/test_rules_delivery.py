"""Event delivery through real rules workers on a real nats-server: every expected alert stored
exactly once, also when a worker is SIGKILLed mid-stream; malformed batches are counted drops and
the worker keeps going; a lost batch is a sequence gap of the bus stage."""

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
- rule: Shadow read
  desc: test rule, notice, after the more specific one
  condition: evt.type = openat and fd.name = /etc/shadow
  output: "%proc.name opened %fd.name"
  priority: NOTICE
- rule: Sudoers read
  desc: test rule, critical
  condition: evt.type = openat and fd.name = /etc/sudoers
  output: "%proc.name opened %fd.name"
  priority: CRITICAL
  tags: [test]
"""


@pytest.fixture
def system(nats_broker, tmp_path):
    rules = tmp_path / "test_rules.yaml"
    rules.write_text(RULES)
    w = Workers(nats_broker.url, tmp_path, {
        "rules_files": str(rules), "rules.ack_wait_s": 1, "metrics.rules_port": 0,
        "syscall_event_drops.actions": "log"})
    yield w
    w.stop()


def mixed_batch(k: int, n: int = 50) -> tuple[list, list[int]]:
    """n events, every 10th a match of `Shadow read by cat`; the events and the matches' offsets."""
    events, hits = [], []
    for i in range(n):
        if i % 10 == 3:
            events.append(open_event(k * n + i, "cat", "/etc/shadow"))
            hits.append(i)
        else:
            events.append(open_event(k * n + i, "nginx", "/srv/www/index.html"))
    return events, hits


async def test_every_alert_exactly_once_even_when_a_worker_is_killed(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        await b.ready(2)
        assert (await b.request("config", "set", key="syscall_event_drops.actions", value="log,alert"))["ok"]
        expected: set[int] = set()

        async def steady(k0: int, n: int) -> None:
            for k in range(k0, k0 + n):
                events, hits = mixed_batch(k)
                first = await b.publish(events)
                expected.update(first + i for i in hits)
                await asyncio.sleep(0.005)

        await steady(0, 30)
        # A backlog in the stream while each worker holds batches it has not acked yet; worker 0
        # dies then. The burst is published while the consumer is paused, so the backlog is there
        # however fast the workers are (a quiet machine drained an unpaused burst before the check).
        from tests.ruleskit import encode

        stream, consumer = bus.EVENTS_STREAM.name, bus.RULES_CONSUMER
        burst = [(encode(ev), hits) for ev, hits in (mixed_batch(k, n=200) for k in range(30, 230))]
        await b.js.pause_consumer(stream, consumer, "2100-01-01T00:00:00Z")
        acks = []
        for events, hits in burst:  # encoded first, published at once
            first = b.seq.get(HOST, 1)
            acks.append(await b.publish_async(events))
            expected.update(first + i for i in hits)
        await asyncio.gather(*acks)
        await b.js.resume_consumer(stream, consumer)
        deadline = time.monotonic() + 10
        while (info := await b.js.consumer_info(stream, consumer)).num_ack_pending == 0:
            assert time.monotonic() < deadline, "the workers pulled nothing after the resume"
            await asyncio.sleep(0.002)
        assert info.num_pending > 0 and info.num_ack_pending > 0
        system.kill(0)
        await steady(100, 20)
        deadline = time.monotonic() + 60
        while True:
            alerts = [a for a in await b.stored_alerts() if a["rule"] == "Shadow read by cat"]
            if len(alerts) >= len(expected) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        ids = collections.Counter(a["id"] for a in alerts)
        seqs = {a["seq"] for a in alerts}
        assert seqs == expected, f"missing {sorted(expected - seqs)[:10]}, unexpected {sorted(seqs - expected)[:10]}"
        assert len(alerts) == len(expected) and all(n == 1 for n in ids.values())
        # The kill really left batches in flight: the survivor got redeliveries.
        survivor = await b.until(lambda: [hb for hb in b.live().values() if hb["counters"]["redelivered"]], 5,
                                 "the survivor's heartbeat counting redeliveries")
        assert survivor
        # ... and said so: Falco's internal alert shape, for a worker falling behind.
        behind = await b.until(lambda: [a for a in b.core_alerts if a["rule"] == "Falco internal: rules worker behind"],
                               5, "the behind alert")
        assert behind[0]["source"] == "internal" and int(behind[0]["output_fields"]["n_redelivered"]) > 0
        # A core subscriber may see an alert of a redelivered batch twice; the ids tell them apart.
        assert {a["id"] for a in b.core_alerts if a["rule"] == "Shadow read by cat"} == set(ids)
        a = alerts[0]
        assert a["priority"] == "Warning" and a["source"] == "syscall" and a["hostname"] == HOST
        assert a["tags"] == ["filesystem", "test"] and a["output_fields"]["fd.name"] == "/etc/shadow"
        assert a["id"].startswith(f"{HOST}:{a['seq']}:") and "cat opened /etc/shadow (proc=cat)" in a["output"]


async def test_live_config_priority_rule_matching_rate_limit_on_every_worker(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        await b.ready(2)
        r = await b.request("config", "set", key="priority", value="error")
        assert r["ok"] and len(r["workers"]) == 2
        before = len(b.core_alerts)
        for k in range(8):  # batches spread over both workers
            await b.publish([open_event(2 * k, "cat", "/etc/shadow"), open_event(2 * k + 1, "vi", "/etc/sudoers")])
        await b.until(lambda: sum(1 for a in b.core_alerts[before:] if a["rule"] == "Sudoers read") >= 8, 5,
                      "the critical alerts")
        await asyncio.sleep(0.2)
        assert not [a for a in b.core_alerts[before:] if a["rule"] == "Shadow read by cat"]
        # rule_matching: all (live): an event matching two rules alerts twice.
        assert (await b.request("config", "unset", key="priority"))["ok"]
        assert (await b.request("config", "set", key="rule_matching", value="all"))["ok"]
        before = len(b.core_alerts)
        await b.publish([open_event(50, "cat", "/etc/shadow")])
        both = await b.until(lambda: sorted(a["rule"] for a in b.core_alerts[before:]) if
                             len(b.core_alerts) - before >= 2 else None, 5, "two alerts for one event")
        assert both == ["Shadow read", "Shadow read by cat"]
        # Matches by rule in each worker's Prometheus endpoint (Falco's metric name).
        import urllib.request

        ports = [st["metrics_port"] for st in await b.status_all()]
        want = 'falcosecurity_falco_rules_matches_total{priority="Critical",rule_name="Sudoers read",source="syscall"}'
        for _ in range(30):  # the counters are fed once per second
            text = "".join([await asyncio.to_thread(lambda p=p: urllib.request.urlopen(
                f"http://127.0.0.1:{p}/metrics").read().decode()) for p in ports])
            if want in text:
                break
            await asyncio.sleep(0.1)
        assert want in text
        # Output rate limiting: a bucket of 3 shared by 2 workers, refilled at 0.01/s.
        for key, value in (("rule_matching", "first"), ("outputs.rate", 0.01), ("outputs.max_burst", 3)):
            assert (await b.request("config", "set", key=key, value=value))["ok"]
        before = len(b.core_alerts)
        for k in range(10):
            await b.publish([open_event(100 + k, "cat", "/etc/shadow")])
        await b.until(lambda: sum(hb["counters"]["rate_limited"] for hb in b.live().values()) >= 10 - 3, 5,
                      "rate-limited alerts counted")
        got = [a for a in b.core_alerts[before:] if a["rule"] == "Shadow read by cat"]
        assert 1 <= len(got) <= 3


async def test_malformed_batches_are_counted_drops_and_the_worker_keeps_going(nats_broker, system):
    system.start(0)
    async with Bus(nats_broker.url) as b:
        await b.ready(1)
        await b.publish_raw(b"\xc1\xc1 garbage")
        await b.publish_raw(msgpack.packb([99, HOST, "syscall", 1, 0, []]))  # another schema version
        await b.publish_raw(msgpack.packb([1, HOST, "syscall", 1, 0, [b"x"] * (bus.MAX_BATCH_EVENTS + 1)]))
        await b.publish_raw(b"\x00" * (5 << 20))  # larger than any batch should be
        await b.publish_raw(msgpack.packb([1, HOST, "syscall", 1000, 0, [b"\xc1", [1, 2]]]))  # bad events
        await b.publish([open_event(1, "cat", "/etc/shadow")])
        await b.until(lambda: any(a["rule"] == "Shadow read by cat" for a in b.core_alerts), 10,
                      "the alert of the good batch after the bad ones")

        def totals():
            reps = [r for r in b.drops if r.stage == "rules"]
            return reps[-1].totals if reps else {}
        await b.until(lambda: {"not_msgpack", "schema_version", "too_large", "bad_event"} <= set(totals()), 5,
                      "drop reports with the reasons")
        assert totals()["too_large"] == 2 and totals()["bad_event"] == 2
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
        await asyncio.sleep(1.5)
        assert sum(r.drops.get("seq_gap", 0) for r in b.drops if r.stage == "bus") == 30  # counted once


async def test_tiercel_alerts_tails_nats_with_subject_filters(nats_broker, system):
    import json
    import os
    import subprocess
    import sys

    system.start(0)
    async with Bus(nats_broker.url) as b:
        await b.ready(1)
        p = subprocess.Popen([sys.executable, "-m", "tiercel", "alerts", "--json", "-n", "2", "-p", "warning",
                              "--rule", "Shadow read by cat"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ, TIERCEL_NATS_URL=nats_broker.url))
        try:
            line = await asyncio.to_thread(p.stderr.readline)
            assert "tiercel.alerts.emergency.*.shadow_read_by_cat" in line and ".debug." not in line
            for k in range(2):
                await b.publish([open_event(k, "vi", "/etc/sudoers"), open_event(k, "cat", "/etc/shadow")])
            out, _ = await asyncio.to_thread(p.communicate, timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
        alerts = [json.loads(x) for x in out.splitlines()]
        assert [a["rule"] for a in alerts] == ["Shadow read by cat"] * 2 and p.returncode == 0

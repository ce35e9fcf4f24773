"""Fault injection for the rules service (make test-faults): the broker is SIGKILLed and restarted
under a running worker; events flow again, nothing stored twice, live changes still arrive."""

from __future__ import annotations

import asyncio
import collections

import pytest

from tests.ruleskit import Bus, Workers, open_event

pytestmark = pytest.mark.faults

RULES = """
- rule: Shadow read by cat
  desc: t
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/shadow
  output: "cat opened %fd.name"
  priority: WARNING
"""
EXTRA = """
- rule: Passwd read by cat
  desc: t
  condition: evt.type = openat and proc.name = cat and fd.name = /etc/passwd
  output: "cat opened %fd.name"
  priority: WARNING
"""


async def test_broker_killed_and_restarted_under_a_worker(nats_broker, tmp_path):
    (tmp_path / "r.yaml").write_text(RULES)
    w = Workers(nats_broker.url, tmp_path, {"rules_files": str(tmp_path / "r.yaml"), "metrics.rules_port": 0,
                                            "rules.ack_wait_s": 1})
    w.start(0)
    seq = {}
    try:
        async with Bus(nats_broker.url) as b:
            await b.ready(1)
            for k in range(20):
                await b.publish([open_event(k, "cat", "/etc/shadow")])
            seq = dict(b.seq)
        nats_broker.kill()
        await asyncio.sleep(0.5)
        nats_broker.restart()
        async with Bus(nats_broker.url) as b:
            b.seq.update(seq)
            await b.ready(1, timeout=30)
            r = await b.request("rules", "put", name="extra.yaml", content=EXTRA)
            assert r["ok"] and r["workers"][0]["revision"] == r["revision"]
            for k in range(20, 40):
                await b.publish([open_event(k, "cat", "/etc/shadow"), open_event(k, "cat", "/etc/passwd")])
            await b.until(lambda: sum(1 for a in b.core_alerts if a["rule"] == "Passwd read by cat") >= 20, 15,
                          "alerts after the restart, with the rule put after it")
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                alerts = [a for a in await b.stored_alerts() if a["rule"] == "Shadow read by cat"]
                if len(alerts) >= 40 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.3)
            ids = collections.Counter(a["id"] for a in alerts)
            assert len(ids) == 40 and set(ids.values()) == {1}
    finally:
        w.stop()

"""The rules service with real worker processes on a real nats-server: rules and configs changed
live on every worker, through the control plane."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.ruleskit import Bus, Workers

RULES = """
- rule: Secret read
  desc: test rule, warning
  condition: ka.verb = get and ka.target.resource = secrets
  output: "%ka.user.name read secret %ka.target.name"
  priority: WARNING
  source: k8s_audit
  tags: [test, secrets]
- rule: Pod exec
  desc: test rule, critical
  condition: ka.verb = create and ka.target.subresource = exec
  output: "%ka.user.name exec into %ka.target.name"
  priority: CRITICAL
  source: k8s_audit
  tags: [test]
"""

EXTRA = """
- rule: Configmap deleted
  desc: added live
  condition: ka.verb = delete and ka.target.resource = configmaps
  output: "%ka.user.name deleted %ka.target.name"
  priority: ERROR
  source: k8s_audit
"""

BROKEN = """
- rule: Broken
  desc: does not compile
  condition: ka.verb = get)
  output: x
  priority: ERROR
  source: k8s_audit
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
        assert "LOAD_ERR_COMPILE_CONDITION" in bad["load_result_text"]
        await asyncio.sleep(0.3)
        assert all(w["revision"] == rev0 for w in b.live().values())

        t0 = time.monotonic()
        ok = await b.request("rules", "put", name="extra.yaml", content=EXTRA)
        took = time.monotonic() - t0
        assert ok["ok"], ok
        rev1 = ok["revision"]
        assert rev1 > rev0 and len(ok["workers"]) == 2 and {w["revision"] for w in ok["workers"]} == {rev1}
        assert took < 1.0, f"{took:.2f}s from the request to every worker running revision {rev1}"
        # The store answers with what it holds.
        listing = await b.request("rules", "list")
        assert listing["revision"] == rev1
        assert [f["name"] for f in listing["files"]] == ["test_rules.yaml", "extra.yaml"]
        assert {r["name"]: r["file"] for r in listing["rules"]} == \
            {"Secret read": "test_rules.yaml", "Pod exec": "test_rules.yaml", "Configmap deleted": "extra.yaml"}
        got = await b.request("rules", "get", name="extra.yaml")
        assert got["content"] == EXTRA and got["revision"] == rev1
        old = await b.request("rules", "get", name="test_rules.yaml", revision=rev0)
        assert old["content"] == RULES
        # Disable by tag: persisted as a selection, run by every worker.
        off = await b.request("rules", "disable", tag="secrets")
        assert off["ok"] and off["rules"] == ["Secret read"]
        assert {w["revision"] for w in off["workers"]} == {off["revision"]}
        listing = await b.request("rules", "list")
        assert {r["name"]: r["enabled"] for r in listing["rules"]} == \
            {"Secret read": False, "Pod exec": True, "Configmap deleted": True}
        assert listing["selection"] == [{"enable": False, "kind": "tag", "value": "secrets"}]
        nothing = await b.request("rules", "enable", substring="no such rule")
        assert not nothing["ok"] and nothing["code"] == "invalid"
        conflict = await b.request("rules", "delete", name="extra.yaml", expected_revision=rev0)
        assert not conflict["ok"] and conflict["code"] == "conflict" and conflict["revision"] == off["revision"]
        gone = await b.request("rules", "delete", name="extra.yaml", expected_revision=off["revision"])
        assert gone["ok"] and {w["revision"] for w in gone["workers"]} == {gone["revision"]}


async def test_config_set_priority_applies_on_every_worker_within_a_second(nats_broker, system):
    system.start(0)
    system.start(1)
    async with Bus(nats_broker.url) as b:
        await b.ready(2)
        t0 = time.monotonic()
        r = await b.request("config", "set", key="priority", value="ERROR")
        took = time.monotonic() - t0
        assert r["ok"] and r["value"] == "error" and r["source"] == "store"
        assert len(r["workers"]) == 2 and all(w["config_revision"] >= r["revision"] for w in r["workers"])
        assert took < 1.0
        listing = await b.request("rules", "list")
        loaded = {x["name"]: x["loaded"] for x in listing["rules"]}
        assert loaded == {"Secret read": False, "Pod exec": True}  # Warning is below the threshold
        r = await b.request("config", "unset", key="priority")
        assert r["ok"] and r["value"] == "debug" and r["is_default"]
        bad = await b.request("config", "set", key="priority", value="LOUD")
        assert not bad["ok"] and bad["code"] == "invalid_value"
        entries = {e["key"]: e for e in (await b.request("config", "list"))["entries"]}
        assert entries["outputs.rate"]["source"] == "worker" and "nats.url" not in entries
        # Falco's drop alert, switched on live: simulated drops, alert action, a bucket that allows it.
        for key, value in (("syscall_event_drops.actions", "log,alert"), ("syscall_event_drops.rate", 100),
                           ("syscall_event_drops.simulate_drops", True)):
            assert (await b.request("config", "set", key=key, value=value))["ok"]
        drop = await b.until(lambda: [a for a in b.core_alerts if a["rule"] == "Falco internal: syscall event drop"],
                             5, "the internal drop alert")
        a = drop[0]
        assert a["priority"] == "Debug" and a["source"] == "internal" and "tags" not in a
        assert a["output"].startswith("Falco internal: syscall event drop. 1 system calls dropped in last second.")
        assert a["output_fields"]["n_drops"] == "1" and all(isinstance(v, str) for v in a["output_fields"].values())


async def test_cli_against_a_running_system(nats_broker, system, tmp_path):
    """`tiercel rules ...`, `tiercel config ...`, `tiercel status` and the metrics endpoint."""
    import urllib.request

    from tests.conftest import tiercel

    system.start(0)
    async with Bus(nats_broker.url) as b:
        await b.ready(1)
        env = {"TIERCEL_NATS_URL": nats_broker.url}
        broken = tmp_path / "broken.yaml"
        broken.write_text(BROKEN)
        extra = tmp_path / "extra.yaml"
        extra.write_text(EXTRA)

        def run(*args: str):
            return asyncio.to_thread(tiercel, *args, env=env, timeout=60)

        # Refusals and read-only commands do not depend on each other: run them together.
        bad, check, nope, rate, live = await asyncio.gather(
            run("rules", "put", str(broken)), run("rules", "validate", "--store", str(extra)),
            run("rules", "get", "nope.yaml"), run("config", "set", "outputs.rate", "fast"),
            run("config", "set", "nats.url=nats://x:1"))
        assert bad.returncode == 1 and "LOAD_ERR_COMPILE_CONDITION" in bad.stdout and "broken.yaml: Invalid" in bad.stdout
        assert check.returncode == 0, check.stderr
        assert nope.returncode == 1 and "no rules file 'nope.yaml'" in nope.stderr
        assert rate.returncode == 1 and "invalid value" in rate.stderr
        assert live.returncode == 1 and "cannot change on a running system" in live.stderr
        p = await run("rules", "put", str(extra))
        assert p.returncode == 0 and "extra.yaml: Ok (ruleset revision" in p.stdout, p.stderr
        off, rate = await asyncio.gather(run("rules", "disable", "Pod exec"), run("config", "set", "outputs.rate=5"))
        assert off.returncode == 0, off.stderr
        assert rate.returncode == 0 and "outputs.rate: 5.0" in rate.stdout
        got, listing, status = await asyncio.gather(run("rules", "get", "extra.yaml"), run("rules", "list", "--store"),
                                                    run("status"))
        assert got.returncode == 0 and got.stdout == EXTRA
        assert listing.returncode == 0 and "disable name 'Pod exec'" in listing.stdout
        assert "disabled" in next(x for x in listing.stdout.splitlines() if x.endswith("Pod exec"))
        assert status.returncode == 0, status.stderr
        assert "ready" in next(x for x in status.stdout.splitlines() if x.startswith("rules "))
        st = await b.request("status", "get")
        port = st["metrics_port"]
        assert port > 0
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
        assert f"tiercel_rules_ruleset_revision {float(st['revision'])}" in text
        assert "tiercel_rules_events_total" in text and "tiercel_rules_drops_total" in text


def test_a_worker_refuses_to_seed_invalid_or_missing_rules_files(nats_broker, tmp_path):
    from tests.conftest import tiercel

    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    env = {"TIERCEL_NATS_URL": nats_broker.url}
    p = tiercel("rules", "serve", "-o", "metrics.enabled=false", "-o", f"rules_files={broken}", env=env, timeout=60)
    assert p.returncode == 1 and "LOAD_ERR_COMPILE_CONDITION" in p.stderr and "Traceback" not in p.stderr
    p = tiercel("rules", "serve", "-o", "metrics.enabled=false", "-o", f"rules_files={tmp_path}/none.yaml", env=env,
                timeout=60)
    assert p.returncode == 1 and "cannot read rules file" in p.stderr and "Traceback" not in p.stderr

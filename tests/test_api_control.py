"""falco.rules and falco.configs through the API to the real rules service's control plane (a rules
worker answering `tiercel.ctl.*` on a real nats-server): structured load results on refusal,
worker revisions on success, admin-only changes, unknown config keys."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from tests import apikit
from tiercel.api import rpc
from tiercel.common.config import Config
from tiercel.pb.falco import configs_pb2, configs_pb2_grpc, rules_pb2, rules_pb2_grpc

GOOD = """
- rule: Tiercel API test rule
  desc: a rule put through the gRPC API
  condition: ka.verb = create and ka.target.resource = pods and ka.user.name = tiercel-test
  output: test (user=%ka.user.name)
  priority: WARNING
  source: k8s_audit
  tags: [api_test]
"""
BAD = """
- rule: Broken
  desc: does not compile
  condition: evt.type = = openat
  output: x
  priority: WARNING
"""


SEED = """
- list: api_test_users
  items: [tiercel-test]
"""


@contextlib.asynccontextmanager
async def rules_worker(url: str, workdir, default_rules: bool = False):
    """A real rules worker in this loop, seeded with a small file (or Tiercel's default ruleset)."""
    from tiercel.rules.service import RulesService

    seed = workdir / "seed_rules.yaml"
    seed.write_text(SEED)
    svc = RulesService(Config({"nats.url": url, "metrics.enabled": False,
                               "rules_files": [] if default_rules else [str(seed)],
                               "state_dir": str(workdir / "rules-state")}))
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        yield svc
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def until(fn, timeout=30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await fn()
        except grpc.aio.AioRpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or \
                    asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def rules_service_works() -> bool:
    """The real rules worker needs the whole condition language (compiler, outputs)."""
    try:
        from tiercel.rules.loader import Loader

        return Loader().load("probe.yaml", GOOD).successful
    except Exception:
        return False


@pytest.mark.skipif(not rules_service_works(), reason="the rules service cannot build a ruleset yet "
                    "(tiercel.rules.condition is incomplete); test_control_contract covers the API side")
async def test_rules_and_configs_through_the_real_rules_service(nats_broker, tmp_path):
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api, rules_worker(nats_broker.url, tmp_path) as svc:
        await exercise(api, svc.instance)


async def test_control_contract_against_a_responder(nats_broker, tmp_path):
    """The API side of docs/bus.md's control plane, against a responder written here from the doc."""
    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api, contract_responder(nats_broker.url) as instance:
        await exercise(api, instance)


async def exercise(api, instance: str) -> None:
    if True:
        ch = grpc.aio.insecure_channel(api.target("unix"))  # we are root: admin
        rules = rules_pb2_grpc.serviceStub(ch)
        configs = configs_pb2_grpc.serviceStub(ch)
        listed = await until(lambda: rules.list(rules_pb2.list_request(), timeout=10))
        assert listed.revision >= 1 and listed.files

        # A file that does not load: INVALID_ARGUMENT, Falco's load result in the details.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules.put(rules_pb2.put_request(name="bad.yaml", content=BAD), timeout=20)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        (details,) = rpc.unpack_details(e.value.trailing_metadata(), rules_pb2.change_response)
        bad = [r for r in details.results if r.name == "bad.yaml"]
        assert bad and not bad[0].successful
        # "and and": a compile error, or (once syscall fields exist) Falco's "Undefined macro 'and'"
        assert bad[0].errors[0].code in ("LOAD_ERR_COMPILE_CONDITION", "LOAD_ERR_VALIDATE")
        assert any(loc.item_name == "Broken" for loc in bad[0].errors[0].locations)
        assert "bad.yaml" in details.load_result_text
        # validate says the same without committing
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules.validate(rules_pb2.put_request(name="bad.yaml", content=BAD), timeout=20)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # A good file: committed; the answer lists the revision the worker runs.
        ok = await rules.put(rules_pb2.put_request(name="api_test.yaml", content=GOOD), timeout=20)
        assert ok.revision > listed.revision
        assert [(w.worker, w.revision) for w in ok.workers] == [(instance, ok.revision)]
        got = await rules.get(rules_pb2.get_request(name="api_test.yaml"), timeout=10)
        assert got.content == GOOD and got.revision == ok.revision and len(got.sha256) == 64
        # compare-and-set against a stale revision
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules.put(rules_pb2.put_request(name="api_test.yaml", content=GOOD, expected_revision=1),
                            timeout=20)
        assert e.value.code() == grpc.StatusCode.ABORTED
        dis = await rules.disable(rules_pb2.select_request(tag="api_test"), timeout=20)
        assert list(dis.rules) == ["Tiercel API test rule"]
        listed = await rules.list(rules_pb2.list_request(), timeout=10)
        mine = [r for r in listed.rules if r.name == "Tiercel API test rule"]
        assert mine and not mine[0].enabled and list(mine[0].tags) == ["api_test"]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules.enable(rules_pb2.select_request(), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules.get(rules_pb2.get_request(name="nope.yaml"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        deleted = await rules.delete(rules_pb2.delete_request(name="api_test.yaml"), timeout=20)
        assert deleted.revision > ok.revision

        # Configs: unknown keys and bad values are INVALID_ARGUMENT with a hint; keys that cannot
        # change live are FAILED_PRECONDITION; a live key round-trips.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await configs.set(configs_pb2.set_request(key="priorty", value="error"), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "did you mean 'priority'" in e.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await configs.set(configs_pb2.set_request(key="priority", value="loud"), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await configs.set(configs_pb2.set_request(key="nats.url", value="nats://x:1"), timeout=10)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await configs.get(configs_pb2.get_request(key="nope"), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        s = await configs.set(configs_pb2.set_request(key="priority", value="ERROR"), timeout=20)
        assert s.key == "priority" and s.value == '"error"' and s.revision > 0 and not s.is_default
        g = await configs.get(configs_pb2.get_request(key="priority"), timeout=10)
        assert g.value == '"error"' and g.revision == s.revision
        entries = {e.key: e for e in (await configs.list(configs_pb2.list_request(), timeout=10)).entries}
        assert entries["priority"].value == '"error"' and entries["json_output"].is_default
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await configs.set(configs_pb2.set_request(key="priority", value="debug", expected_revision=s.revision + 5),
                              timeout=10)
        assert e.value.code() == grpc.StatusCode.ABORTED
        u = await configs.unset(configs_pb2.unset_request(key="priority"), timeout=20)
        assert u.key == "priority" and u.is_default
        # Malformed request bytes: INVALID_ARGUMENT, and the server keeps serving.
        raw = ch.unary_unary("/falco.rules.service/put", request_serializer=lambda b: b,
                             response_deserializer=lambda b: b)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await raw(b"\x0a\xff\xff", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await rules.list(rules_pb2.list_request(), timeout=10)).revision > 0
        await ch.close()


async def test_no_rules_service_is_unavailable_not_a_hang(nats_broker, tmp_path):
    async with apikit.running_api(apikit.api_config(nats_broker.url, tmp_path / "t.sock")) as api:
        ch = grpc.aio.insecure_channel(api.target("unix"))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await rules_pb2_grpc.serviceStub(ch).list(rules_pb2.list_request(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "tiercel rules serve" in e.value.details()
        await ch.close()


# ------------------------------------------------------------------------------------------------
# A control-plane responder written from docs/bus.md ("Control request and reply"), in memory.
# It is a real NATS responder (queue group tiercel-ctl); what it decides is scripted: a file whose
# condition contains "= =" is refused with a Falco load result shaped as the doc says.
# ------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def contract_responder(url: str):
    import nats as natslib

    from tiercel.common import bus, config

    instance = "rules0-test-responder"
    state = {"revision": 1, "files": {"falco_rules.yaml": ("- list: x\n  items: []\n", 1)}, "rules": {},
             "config": {}, "config_rev": 0}

    def workers():
        return [{"instance": instance, "host": "test-host", "revision": state["revision"],
                 "config_revision": state["config_rev"], "state": "ready", "age_s": 0.1}]

    def load_result(name, content):
        ok = "= =" not in content
        err = {"code": "LOAD_ERR_COMPILE_CONDITION", "codedesc": "Error compiling condition",
               "message": "unexpected token after 'and'",
               "context": {"locations": [
                   {"item_type": "rules content", "item_name": "",
                    "position": {"name": name, "line": 0, "column": 0, "offset": 0}},
                   {"item_type": "rule", "item_name": "Broken",
                    "position": {"name": name, "line": 1, "column": 2, "offset": 3}}],
                   "snippet": "- rule: Broken\n  ^\n"}}
        res = {"name": name, "successful": ok, "schema_valid": True, "schema_warnings": [],
               "errors": [] if ok else [err], "warnings": []}
        return ok, {"falco_load_results": [res]}, f"{name}: {'Ok' if ok else 'Invalid'}"

    def cas(req):
        exp = req.get("expected_revision")
        if exp is not None and exp != state["revision"]:
            raise KeyError("conflict")

    async def rules(op, req):
        files = state["files"]
        if op == "list":
            return {"revision": state["revision"], "selection": [],
                    "files": [{"name": n, "revision": r, "size": len(c), "sha256": "0" * 64}
                              for n, (c, r) in files.items()],
                    "rules": [{"name": n, "source": "syscall", "priority": "Warning", "tags": tags,
                               "enabled": en, "loaded": en, "event_types": ["openat"], "desc": "d"}
                              for n, (tags, en) in state["rules"].items()], "workers": workers()}
        if op == "get":
            if req["name"] not in files:
                return {"ok": False, "error": f"no rules file {req['name']!r}", "code": "not_found"}
            c, r = files[req["name"]]
            return {"revision": r, "name": req["name"], "content": c, "sha256": "0" * 64}
        if op in ("put", "validate"):
            ok, lr, text = load_result(req["name"], req["content"])
            if not ok:
                return {"ok": False, "error": f"{req['name']}: Invalid", "code": "invalid", "load_result": lr,
                        "load_result_text": text, "revision": state["revision"]}
            if op == "validate":
                return {"revision": state["revision"], "load_result": lr, "load_result_text": text}
            cas(req)
            state["revision"] += 1
            files[req["name"]] = (req["content"], state["revision"])
            if "Tiercel API test rule" in req["content"]:
                state["rules"]["Tiercel API test rule"] = (["api_test"], True)
            return {"revision": state["revision"], "load_result": lr, "load_result_text": text, "workers": workers()}
        if op == "delete":
            if req["name"] not in files:
                return {"ok": False, "error": "not found", "code": "not_found"}
            cas(req)
            del files[req["name"]]
            state["rules"].pop("Tiercel API test rule", None)
            state["revision"] += 1
            return {"revision": state["revision"], "load_result": {"falco_load_results": []}, "workers": workers()}
        if op in ("enable", "disable"):
            sel = [k for k in ("name", "substring", "tag") if k in req]
            if len(sel) != 1:
                return {"ok": False, "error": "give exactly one of name, substring, tag", "code": "bad_request"}
            hit = [n for n, (tags, _) in state["rules"].items() if req.get("tag") in tags or n == req.get("name")
                   or (req.get("substring") or "\0") in n]
            if not hit:
                return {"ok": False, "error": "the selection touches no rule", "code": "invalid"}
            for n in hit:
                state["rules"][n] = (state["rules"][n][0], op == "enable")
            state["revision"] += 1
            return {"revision": state["revision"], "rules": hit, "workers": workers()}
        return {"ok": False, "error": "unknown op", "code": "bad_request"}

    async def configs(op, req):
        store = state["config"]

        def ent(k):
            cur = store.get(k.name)
            return {"key": k.name, "value": cur[0] if cur else k.default, "revision": cur[1] if cur else 0,
                    "source": "store" if cur else "worker", "is_default": not cur, "default": k.default,
                    "type": k.type, "allowed": list(k.choices), "description": k.doc}

        if op == "list":
            return {"entries": [ent(k) for k in config.SCHEMA if k.live], "workers": workers()}
        key = config.KEYS.get(req.get("key", ""))
        if key is None:
            return {"ok": False, "error": "unknown key", "code": "unknown_key"}
        cur = store.get(key.name)
        if op == "get":
            return ent(key)
        exp = req.get("expected_revision")
        if exp and exp != (cur[1] if cur else 0):
            return {"ok": False, "error": "revision moved", "code": "conflict", "revision": cur[1] if cur else 0}
        state["config_rev"] += 1
        if op == "set":
            store[key.name] = (key.coerce(req["value"]), state["config_rev"])
        else:
            store.pop(key.name, None)
        return {**ent(key), "workers": workers()}

    nc = await natslib.connect(url)

    async def on_ctl(msg):
        area = msg.subject.split(".")[2]
        req = bus.decode_request(msg.data)
        try:
            reply = await (rules if area == "rules" else configs)(req["op"], req)
        except KeyError:
            reply = {"ok": False, "error": "expected revision is not current", "code": "conflict",
                     "revision": state["revision"]}
        reply.setdefault("ok", True)
        await msg.respond(bus.encode_reply(**reply))

    await nc.subscribe("tiercel.ctl.rules.*", queue=bus.CONTROL_QUEUE, cb=on_ctl)
    await nc.subscribe("tiercel.ctl.config.*", queue=bus.CONTROL_QUEUE, cb=on_ctl)
    await nc.flush()
    try:
        yield instance
    finally:
        await nc.close()


def event_model_on_the_bus() -> bool:
    from tiercel.common import event

    return hasattr(event, "encode_event") and hasattr(event, "decode_events")


@pytest.mark.skipif(not rules_service_works() or not event_model_on_the_bus(),
                    reason="needs the rules worker and the event model's wire form (encode_event/decode_events)")
async def test_k8s_audit_event_sent_through_inputs_raises_the_alert_on_sub(nats_broker, tmp_path):
    """End to end with the default ruleset: an exec into a pod, sent through inputs, goes through
    the events stream and a real rules worker, and comes back on `sub` as the default rule's alert."""
    import json

    from tests.test_api_inputs import AUDIT
    from tests.test_api_outputs import Sub, subscribed, wait_for
    from tiercel.pb.falco import inputs_pb2, inputs_pb2_grpc, outputs_pb2

    cfg = apikit.api_config(nats_broker.url, tmp_path / "t.sock")
    async with apikit.running_api(cfg) as api, rules_worker(nats_broker.url, tmp_path, default_rules=True) as svc:
        ch = grpc.aio.insecure_channel(api.target("unix"))
        await wait_for(lambda: svc.state == "ready", timeout=60, what="the rules worker")
        s = Sub(ch, outputs_pb2.request(sources=["k8s_audit"]))
        await wait_for(subscribed(api, 1), what="subscriber")
        acks = [a async for a in inputs_pb2_grpc.serviceStub(ch).send(
            # exec is a streaming request: the API server audits it when the response starts
            iter([inputs_pb2.event(id="e1", source="k8s_audit",
                                   json=json.dumps(dict(AUDIT, stage="ResponseStarted")))]))]
        assert acks[0].accepted, acks[0].error
        (alert,) = await s.read(1, timeout=30)
        assert alert.rule == "K8s exec or attach into pod" and alert.source == "k8s_audit"
        assert alert.hostname == "test-host:inputs" and "user=alice" in alert.output
        assert alert.output_fields["ka.target.subresource"] == "exec"
        s.cancel()
        await ch.close()

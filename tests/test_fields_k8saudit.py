"""The k8s audit `ka.*` fields and the json plugin's `json.*`/`jevt.*` fields (spec §5.2)."""

from __future__ import annotations

import json

import pytest

from tiercel.common import eventtable as et
from tiercel.common.event import Event
from tiercel.rules.condition import CompileError, build_evaluator, check, compile_output, parse
from tiercel.rules.fields import catalog

POD = {
    "kind": "Event", "auditID": "a1", "stage": "ResponseComplete", "verb": "create",
    "requestURI": "/api/v1/namespaces/default/pods/p/exec?command=bash&command=-c&container=x&stdin=true",
    "user": {"username": "alice", "groups": ["dev", "ops"]},
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC"},
    "objectRef": {"resource": "pods", "namespace": "default", "name": "p", "subresource": None},
    "responseStatus": {"code": 201},
    "requestObject": {
        "roleRef": {"name": "admin"},
        "subjects": [{"kind": "User", "name": "bob"}],
        "data": {"k": "v"},
        "rules": [{"verbs": ["get", "list"], "resources": ["pods"]}, {"verbs": ["*"], "resources": ["secrets"]}],
        "spec": {
            "hostNetwork": True, "type": "NodePort",
            "ports": [{"port": 80, "nodePort": 30080}],
            "containers": [{"image": "nginx:1.2"},
                           {"image": "reg:5000/img:t", "securityContext": {"privileged": True}}],
            "initContainers": [{"image": "busybox@sha256:abc", "securityContext": {"privileged": False}}],
            "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/etc"}}],
        },
    },
    "responseObject": {"metadata": {"name": "p-123"}},
}


def evt(doc) -> Event:
    return Event(1, 1_540_476_552_000_000_123, -1, et.PPME_PLUGINEVENT_E, source="k8s_audit", payload=doc)


def value(field: str, doc=POD):
    """The rendered JSON output_fields value of one field token."""
    return compile_output(f"%{field}", "k8s_audit").fields(evt(doc))[field]


@pytest.mark.parametrize("field, expected", [
    ("ka.auditid", "a1"), ("ka.stage", "ResponseComplete"), ("ka.verb", "create"),
    ("ka.user.name", "alice"), ("ka.user.groups", ["dev", "ops"]),
    ("ka.auth.decision", "allow"), ("ka.auth.reason", "RBAC"),
    ("ka.uri.param[command]", "bash"), ("ka.uri.param[container]", "x"), ("ka.uri.param[nope]", ""),
    ("ka.target.name", "p"), ("ka.target.namespace", "default"), ("ka.target.resource", "pods"),
    ("ka.target.subresource", "null"),  # a JSON null is the text null; only absence is missing
    ("ka.resp.name", "p-123"), ("ka.response.code", "201"), ("ka.response.reason", None),
    ("ka.req.binding.role", "admin"), ("ka.req.binding.subjects", ['{"kind":"User","name":"bob"}']),
    ("ka.req.configmap.obj", '{"k":"v"}'),
    ("ka.req.pod.containers.image", ["nginx:1.2", "reg:5000/img:t"]),
    ("ka.req.pod.containers.image[1]", ["reg:5000/img:t"]),
    ("ka.req.pod.containers.image[5]", None),
    ("ka.req.pod.containers.image.repository", ["nginx", "reg"]),
    ("ka.req.pod.containers.privileged", ["true"]),  # containers without the flag are skipped
    ("ka.req.pod.containers.privileged[0]", None),
    ("ka.req.pod.initContainers.image", ["busybox@sha256:abc"]),
    ("ka.req.pod.initContainers.privileged", ["false"]),
    ("ka.req.pod.ephemeralContainers.image", None),
    ("ka.req.pod.host_network", "true"), ("ka.req.pod.host_pid", None),
    ("ka.req.pod.volumes.hostpath", ["/etc"]), ("ka.req.pod.volumes.hostpath[1]", ["/etc"]),
    ("ka.req.pod.volumes.hostpath[0]", None),
    ("ka.req.role.rules.verbs", ["get", "list", "*"]), ("ka.req.role.rules.verbs[1]", ["*"]),
    ("ka.req.role.rules.resources", ["pods", "secrets"]),
    ("ka.req.service.type", "NodePort"), ("ka.req.service.ports", ['{"port":80,"nodePort":30080}']),
    ("ka.req.container.image", "nginx:1.2"), ("ka.req.container.image.repository", "nginx"),
    ("ka.req.container.privileged", "true"), ("ka.req.container.privileged[0]", None),
    ("ka.req.volume.hostpath[/etc*]", "true"), ("ka.req.volume.hostpath[/proc*]", "false"),
    ("ka.req.binding.subject.has_name[x]", "N/A"),
    ("jevt.value[/stage]", "ResponseComplete"), ("json.value[/requestObject/spec/hostNetwork]", "true"),
    ("jevt.value[/requestObject/spec/containers/0/image]", "nginx:1.2"),
    ("jevt.value[/requestObject/spec/ports]", '[{"port":80,"nodePort":30080}]'),
    ("jevt.value[/nope]", None), ("jevt.value[/requestObject/spec/containers/9]", None),
    ("jevt.rawtime", "1540476552000000123"),
])
def test_field_values(field, expected):
    assert value(field) == expected


def test_without_audit_id_every_ka_field_is_missing_but_json_works():
    doc = {k: v for k, v in POD.items() if k != "auditID"}
    for f in ("ka.verb", "ka.user.name", "ka.req.pod.containers.image", "ka.uri.param[command]"):
        assert value(f, doc) is None
    assert value("jevt.value[/verb]", doc) == "create"


def test_json_pointer_escapes_and_obj():
    doc = {"a/b": {"~c": [1, {"d": None}]}}
    assert value("json.value[/a~1b/~0c/1]", doc) == '{"d":null}'
    assert value("json.value[/a~1b/~0c/01]", doc) is None
    assert value("jevt.obj", {"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}'
    with pytest.raises(CompileError):
        check(parse("json.value[nope] exists"), "k8s_audit")


def test_list_field_operators_and_missing():
    rules = [
        ("priv", parse("ka.req.pod.containers.privileged intersects (true)"), None),
        ("subset", parse("ka.req.pod.containers.image.repository in (nginx, reg, other)"), None),
        ("hostpath", parse("ka.req.pod.volumes.hostpath intersects (/proc, /etc)"), None),
        ("no_eph", parse("not ka.req.pod.ephemeralContainers.image intersects (x)"), None),
        ("verb", parse("ka.verb in (create, update) and ka.target.resource = pods"), None),
    ]
    e = build_evaluator("k8s_audit", rules, "all")
    assert e(evt(POD)) == ["priv", "subset", "hostpath", "no_eph", "verb"]
    e2 = build_evaluator("k8s_audit", [("any", parse('ka.req.role.rules.resources contains "secr"'), None)])
    assert list(e2(evt(POD))) == ["any"]


def test_ka_fields_are_not_syscall_fields():
    with pytest.raises(CompileError) as e:
        check(parse("ka.verb = create"), "syscall")
    assert e.value.is_unknown
    assert catalog.lookup("jevt.value", "k8s_audit") is not None
    assert catalog.lookup("jevt.value", "syscall") is None


def test_conformance_audit_events(conformance_dir):
    """Every audit event of the corpus extracts without errors through every ka.* field."""
    names = [n for n, f in catalog.fields("k8s_audit").items() if n.startswith("ka.") and f.arg != "required"]
    fmt = compile_output(" ".join(f"%{n}" for n in names), "k8s_audit")
    for path in sorted((conformance_dir / "traces" / "k8s_audit").glob("*.json")):
        for line in path.read_text().splitlines():
            if line.strip():
                doc = json.loads(line)
                fields = fmt.fields(evt(doc))
                assert set(fields) == set(names)
                if "auditID" in doc:
                    assert fields["ka.verb"] == doc["verb"]
                    assert fields["ka.user.name"] == doc["user"]["username"]

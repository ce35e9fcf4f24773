"""The engine end to end: rules text -> Engine.load -> Ruleset.process on real events (synthetic
syscall events with thread and fd state, k8s audit JSON) -> Falco's alert lines."""

from __future__ import annotations

import json

import pytest

from tests.ruleskit import open_event
from tiercel.rules.engine import Engine
from tiercel.rules.replay import k8s_audit_events

POD = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a1", "stage": "ResponseComplete",
    "verb": "create", "user": {"username": "admin"}, "stageTimestamp": "2024-06-10T06:13:20.123456Z",
    "objectRef": {"resource": "clusterroles", "name": "r1"},
    "requestObject": {"rules": [{"resources": ["pods", "pods/exec"], "verbs": ["get", "create"]}]},
}


def load(*texts: str, **cfg):
    outcome = Engine(cfg).load([(f"f{i}.yaml", t) for i, t in enumerate(texts)])
    return outcome


def audit(obj: dict):
    return next(k8s_audit_events(json.dumps(obj).encode()))


LEGACY_RULE = """
- rule: exec role
  desc: d
  condition: ka.verb = create and ka.req.role.rules.resources contains "pods/ex"
  output: role %ka.target.name
  priority: WARNING
  source: k8s_audit
"""


def test_list_field_with_a_scalar_operator_matches_when_some_element_does():
    """As the Falco of the conformance corpus: `ka.req.role.rules.resources contains x`."""
    for text in (LEGACY_RULE, "- required_engine_version: 2\n" + LEGACY_RULE):
        outcome = load(text)
        assert outcome.successful, [e.message for r in outcome.results for e in r.errors]
        rs = outcome.ruleset
        assert [m.rule.name for m in rs.process(audit(POD))] == ["exec role"]
        other = dict(POD, requestObject={"rules": [{"resources": ["secrets"]}]})
        assert rs.process(audit(other)) == []


SYSCALL_RULES = """
- rule: shadow read
  desc: d
  condition: evt.type in (open, openat) and fd.name = /etc/shadow
  output: shadow opened by %proc.name (file=%fd.name user=%user.loginname)
  priority: WARNING
  tags: [filesystem, b, a]
- rule: any etc open
  desc: d
  condition: evt.type in (open, openat) and fd.name startswith /etc/
  output: etc open %fd.name
  priority: NOTICE
- rule: debug opens
  desc: d
  condition: evt.type = openat
  output: open %fd.name
  priority: DEBUG
"""


@pytest.mark.parametrize("matching,expected", [
    ("first", ["shadow read"]),
    ("all", ["shadow read", "any etc open", "debug opens"]),
])
def test_rule_matching_first_and_all(matching, expected):
    rs = load(SYSCALL_RULES, rule_matching=matching).ruleset
    assert [m.rule.name for m in rs.process(open_event(1, "cat", "/etc/shadow"))] == expected
    assert [m.rule.name for m in rs.process(open_event(2, "cat", "/tmp/x"))] == (
        ["debug opens"])


def test_priority_threshold_keeps_only_rules_at_least_as_severe():
    rs = load(SYSCALL_RULES, rule_matching="all", priority="notice").ruleset
    assert [m.rule.name for m in rs.process(open_event(1, "cat", "/etc/shadow"))] == ["shadow read", "any etc open"]
    assert rs.process(open_event(2, "cat", "/tmp/x")) == []
    rs = load(SYSCALL_RULES, rule_matching="all", priority="WARNING").ruleset
    assert [r.name for r in rs.rules] == ["shadow read"]


def test_selection_rebuilds_the_evaluator():
    rs = load(SYSCALL_RULES, rule_matching="all").ruleset
    e = open_event(1, "cat", "/etc/shadow")
    assert len(rs.process(e)) == 3
    rs.enable("shadow", False, match="substring")
    assert [m.rule.name for m in rs.process(e)] == ["any etc open", "debug opens"]
    rs.enable_tags(["a"], True)
    assert len(rs.process(e)) == 3
    assert "def " in rs.evaluator("syscall").source_code


def test_events_of_a_source_without_rules_match_nothing():
    rs = load(SYSCALL_RULES).ruleset
    assert rs.process(audit(POD)) == []
    assert rs.process(open_event(1, "cat", "/etc/shadow"))


def test_io_events_are_skipped_unless_all_events():
    """Falco skips read/write-class events unless -A: a rule on `read` never sees them."""
    from tiercel.common import eventtable as et
    from tiercel.common.event import Event

    text = "- rule: r\n  desc: d\n  condition: evt.type = read\n  output: o\n  priority: INFO\n"
    evt = open_event(1, "cat", "/etc/passwd")
    read = Event(2, evt.ts + 1, evt.tid, et.PPME["PPME_SYSCALL_READ_X"], [3, b"x"])
    read.thread, read.fd, read.fdnum = evt.thread, evt.fd, 3
    assert load(text).ruleset.process(read) == []
    outcome = Engine({}, all_events=True).load([("r.yaml", text)])
    assert [m.rule.name for m in outcome.ruleset.process(read)] == ["r"]


def test_failed_evaluation_propagates_for_the_caller_to_count():
    """A broken event is the caller's to count (the workers' eval_error); the next one works."""
    rs = load(SYSCALL_RULES).ruleset
    good = open_event(2, "cat", "/etc/shadow")

    class Boom:
        source, code, num, ts = "syscall", good.code, 3, good.ts

        def __getattr__(self, name):
            raise RuntimeError("broken event")

    with pytest.raises(RuntimeError):
        rs.process(Boom())
    assert [m.rule.name for m in rs.process(good)] == ["shadow read"]

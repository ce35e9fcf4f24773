"""Engine API pieces that need no field catalog: rule selection (priority, -D/-t/-T, names, wildcards,
tags), plugin requirements, alert assembly, k8s audit capture reading."""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import pytest

from tiercel.rules.alerts import AlertFormatter, json_time
from tiercel.rules.condition.output import evt_time_iso8601
from tiercel.rules.engine import Ruleset, SelectionError, check_plugin_requirements
from tiercel.rules.loader.collector import Collector
from tiercel.rules.loader.compiler import Compiled, CompiledRule
from tiercel.rules.loader.reader import Reader
from tiercel.rules.loader.results import LoadResult
from tiercel.rules.replay import NOT_AUDIT, k8s_audit_events, sniff

# The rules of Falco's tagged_rules test: open_N with these tags.
TAGS = {1: ["a"], 2: ["b"], 3: ["c"], 4: ["a", "b"], 5: ["a", "c"], 6: ["b", "c"], 7: ["a", "b", "c"],
        8: ["b", "a"], 9: ["c", "a"], 10: ["b", "c", "a"], 11: ["d"], 12: [], 13: None}


def collect(text: str) -> Collector:
    col = Collector({"syscall", "k8s_audit"}, lambda s, f: True)
    res = LoadResult("t.yaml")
    col.res = res
    Reader("t.yaml", text, col, res, (0, 62, 0)).read()
    assert res.successful, res.errors
    return col


def ruleset(text: str, **kw) -> Ruleset:
    """A ruleset over collected rules (selection needs no compiled filters)."""
    col = collect(text)
    rules = [CompiledRule(r, r.cond, None, None, r.output, None, None) for r in col.rules.values()]
    return Ruleset(Compiled(rules, {}, {}, None, list(col.plugin_versions)), **kw)


def tagged() -> Ruleset:
    text = ""
    for n, tags in TAGS.items():
        text += f"- rule: open_{n}\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: WARNING\n"
        if tags is not None:
            text += f"  tags: [{', '.join(tags)}]\n"
    return ruleset(text)


def enabled(rs: Ruleset) -> set[int]:
    return {int(r.name.split("_")[1]) for r in rs.enabled_rules()}


@pytest.mark.parametrize("kw,expected", [
    ({"disable_tags": ["a"]}, {2, 3, 6, 11, 12, 13}),
    ({"disable_tags": ["c"]}, {1, 2, 4, 8, 11, 12, 13}),
    ({"disable_tags": ["a", "b"]}, {3, 11, 12, 13}),
    ({"only_tags": ["a"]}, {1, 4, 5, 7, 8, 9, 10}),
    ({"only_tags": ["b"]}, {2, 4, 6, 7, 8, 10}),
    ({"only_tags": ["a", "b"]}, {1, 2, 4, 5, 6, 7, 8, 9, 10}),
    ({"disable_substrings": ["open_1"]}, {2, 3, 4, 5, 6, 7, 8, 9}),
])
def test_cli_selection_as_falco_conformance(kw, expected):
    rs = tagged()
    rs.apply_cli_selection(**kw)
    assert enabled(rs) == expected


def test_enable_and_disable_together_is_refused():
    with pytest.raises(SelectionError, match=r"You can not specify both disabled \(-D/-T\) and enabled \(-t\) rules"):
        tagged().apply_cli_selection(disable_tags=["a"], only_tags=["a"])
    with pytest.raises(SelectionError):
        tagged().apply_cli_selection(disable_substrings=["x"], only_tags=["a"])


def test_name_selection_modes_and_config_selections():
    rs = tagged()
    assert rs.enable("open_1", False) == 1 and 1 not in enabled(rs)
    assert rs.enable("open_1*", False, match="wildcard") == 5
    assert enabled(rs) == {2, 3, 4, 5, 6, 7, 8, 9}
    rs.apply_selections([{"disable": {"rule": "*"}}, {"enable": {"tag": "d"}}, {"enable": {"rule": "open_2"}}])
    assert enabled(rs) == {2, 11}


def test_priority_threshold_and_enabled_false():
    text = ("- rule: loud\n  desc: d\n  condition: c\n  output: o\n  priority: CRITICAL\n"
            "- rule: quiet\n  desc: d\n  condition: c\n  output: o\n  priority: info\n"
            "- rule: off\n  desc: d\n  condition: c\n  output: o\n  priority: ERROR\n  enabled: false\n")
    rs = ruleset(text, min_priority=4)
    assert [r.name for r in rs.rules] == ["loud", "off"]
    assert [r.name for r in rs.enabled_rules()] == ["loud"]
    assert rs.enable("quiet", True) == 0  # below the minimum: never part of the ruleset
    rs.enable_tags([], True)
    rs.apply_cli_selection(only_tags=[])
    assert [r.name for r in rs.enabled_rules()] == ["loud"]


def test_plugin_requirements():
    ok = ("- required_plugin_versions:\n  - name: container\n    version: 0.4.0\n"
          "  - name: k8saudit\n    version: 0.18.0\n    alternatives:\n    - name: k8saudit-eks\n      version: 0.12.0\n"
          "  - name: json\n    version: 0.7.0\n")
    assert check_plugin_requirements(ruleset(ok).compiled) is None
    bad = "- required_plugin_versions:\n  - name: cloudtrail\n    version: 0.1.0\n    alternatives:\n" \
          "    - name: okta\n      version: 0.2.0\n"
    assert check_plugin_requirements(ruleset(bad).compiled) == (
        "Plugin requirement not satisfied, must load one of: cloudtrail (>= 0.1.0), okta (>= 0.2.0)")
    newer = "- required_plugin_versions:\n  - name: json\n    version: 1.0.0\n"
    assert check_plugin_requirements(ruleset(newer).compiled) is not None


class _Fmt:
    def render(self, evt):
        return "Sensitive file opened (file=/etc/shadow user=<NA>)"

    def fields(self, evt):
        return {"fd.name": "/etc/shadow", "user.name": None, "proc.pid": 42}


def _match(**kw):
    from tiercel.rules.engine import Match

    rule = SimpleNamespace(name="Read sensitive file", source="syscall", priority=4, tags=("a", "filesystem"),
                           format=_Fmt())
    evt = SimpleNamespace(ts=1_718_000_000_123_456_789, num=7)
    return Match(rule, evt)


@pytest.fixture
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_text_alert_line(utc):
    f = AlertFormatter({})
    assert f.text(_match()) == "06:13:20.123456789: Warning Sensitive file opened (file=/etc/shadow user=<NA>)"
    f = AlertFormatter({"time_format_iso_8601": True})
    assert f.line(_match()).startswith("2024-06-10T06:13:20.123456789+0000: Warning Sensitive")
    assert evt_time_iso8601(5) == "1970-01-01T00:00:00.000000005+0000" and json_time(5) == "1970-01-01T00:00:00.000000005Z"


def test_json_alert(monkeypatch, utc):
    monkeypatch.setenv("FALCO_HOSTNAME", "node-1")
    line = AlertFormatter({"json_output": True}).line(_match())
    assert line == (
        '{"hostname":"node-1","output":"06:13:20.123456789: Warning Sensitive file opened (file=/etc/shadow '
        'user=<NA>)","output_fields":{"evt.time":1718000000123456789,"fd.name":"/etc/shadow","proc.pid":42,'
        '"user.name":null},"priority":"Warning","rule":"Read sensitive file","source":"syscall",'
        '"tags":["a","filesystem"],"time":"2024-06-10T06:13:20.123456789Z"}')
    d = json.loads(AlertFormatter({"json_output": True, "json_include_output_property": False,
                                   "json_include_tags_property": False, "json_include_message_property": True,
                                   "json_include_output_fields_property": False,
                                   "time_format_iso_8601": True}).line(_match()))
    assert sorted(d) == ["hostname", "message", "priority", "rule", "source", "time"]
    assert d["message"] == "Sensitive file opened (file=/etc/shadow user=<NA>)"
    d = json.loads(AlertFormatter({"time_format_iso_8601": True}).json(_match()))
    assert "evt.time.iso8601" in d["output_fields"] and d["output"].startswith("2024-06-10T06:13:20.123456789+0000")


def test_k8s_audit_reading():
    ev = {"kind": "Event", "auditID": "x", "stage": "ResponseComplete", "stageTimestamp": "2018-10-26T13:38:34.878427Z"}
    warnings: list[str] = []
    evts = list(k8s_audit_events(json.dumps(ev).encode(), warnings.append))
    assert len(evts) == 1 and evts[0].source == "k8s_audit" and evts[0].payload["auditID"] == "x"
    assert evts[0].ts == 1540561114878427000
    lst = {"kind": "EventList", "items": [ev, ev]}
    assert len(list(k8s_audit_events(json.dumps(lst).encode()))) == 2
    assert len(list(k8s_audit_events((json.dumps(ev) + "\n" + json.dumps(ev)).encode()))) == 2
    assert list(k8s_audit_events(b'{"kind": 0}', warnings.append)) == [] and warnings == [NOT_AUDIT]
    assert sniff(b"\x0a\x0d\x0d\x0a....") == "scap" and sniff(b'  {"kind"') == "json" and sniff(b"xx") == "unknown"

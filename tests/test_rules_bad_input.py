"""Bad rules files: every one gives Falco's error (code, item, message), never an exception or a
traceback, and never leaves a half-loaded ruleset in use (the loader keeps its last good state;
the engine hands out no ruleset; the CLI exits 1 with the error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercel.rules.engine import Engine
from tiercel.rules.loader import Loader

TIERCEL = str(Path(sys.executable).parent / "tiercel")
RULE = "- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: {cond}\n"


def big_condition(n: int) -> str:
    return " or ".join(f"proc.name = x{i}" for i in range(n))


# name -> (content, error code, item type, message part)
BAD: dict[str, tuple[bytes | str, str, str, str]] = {
    "binary garbage": (bytes(range(256)) * 16, "LOAD_ERR_YAML_PARSE", "rules content", "invalid UTF-8"),
    "NUL byte": (b"- rule: a\x00b\n", "LOAD_ERR_YAML_PARSE", "rules content", "control characters"),
    "UTF-16": ("- list: a\n  items: [x]\n".encode("utf-16"), "LOAD_ERR_YAML_PARSE", "rules content", ""),
    "unclosed flow": ("- list: a\n  items: [x, y\n", "LOAD_ERR_YAML_PARSE", "rules content", ""),
    "tab indentation": ("- rule: r\n\tdesc: d\n", "LOAD_ERR_YAML_PARSE", "rules content", "tab"),
    "top-level map": ("rule: r\n", "LOAD_ERR_YAML_VALIDATE", "rules content", "not yaml array of objects"),
    "top-level scalar": ("just text\n", "LOAD_ERR_YAML_VALIDATE", "rules content", "not yaml"),
    "item not a map": ("- [a, b]\n", "LOAD_ERR_YAML_VALIDATE", "rules content item", "Unexpected element type"),
    "name is a list": (RULE.replace("rule: r", "rule: [a, b]").format(cond="proc.name=x"),
                       "LOAD_ERR_YAML_VALIDATE", "value for", "not a scalar"),
    "items not a sequence": ("- list: l\n  items: x\n", "LOAD_ERR_YAML_VALIDATE", "value for", "not a sequence"),
    "nested items": ("- list: l\n  items: [[a]]\n", "LOAD_ERR_YAML_VALIDATE", "list item", "not scalar"),
    "bad bool": (RULE.format(cond="proc.name=x") + "  enabled: maybe\n", "LOAD_ERR_YAML_VALIDATE", "value for",
                 "Can't decode"),
    "bad priority": (RULE.replace("INFO", "LOUD").format(cond="proc.name=x"), "LOAD_ERR_YAML_VALIDATE",
                     "rule priority", "Invalid priority"),
    "alias bomb": ("- list: a\n  items: &a [x, x, x, x, x, x, x, x]\n- list: b\n  items: &b [*a, *a, *a, *a]\n"
                   "- list: c\n  items: [*b, *b, *b, *b]\n", "LOAD_ERR_YAML_VALIDATE", "list item", "not scalar"),
    "deep YAML": ("- " + "[" * 5000 + "]" * 5000 + "\n", "LOAD_ERR_YAML_PARSE", "rules content", "depth"),
    "deep condition": (RULE.format(cond="(" * 1200 + "proc.name=x" + ")" * 1200), "LOAD_ERR_COMPILE_CONDITION",
                       "condition expression", "exceeded max depth limit of 1000"),
    "macro loop": ("- macro: a\n  condition: proc.name=x\n- macro: b\n  condition: a\n"
                   "- macro: a\n  condition: or b\n  override:\n    condition: append\n"
                   + RULE.format(cond="a"), "LOAD_ERR_VALIDATE", "condition expression", "reference loop in macro"),
    "macro seen before its definition": ("- macro: a\n  condition: b\n- macro: b\n  condition: proc.name=x\n"
                                         + RULE.format(cond="a"), "LOAD_ERR_VALIDATE", "condition expression",
                                         "Undefined macro 'b' used in filter."),
    "unknown field": (RULE.format(cond="proc.nme = x"), "LOAD_ERR_COMPILE_CONDITION", "condition expression",
                      "nonexistent field proc.nme"),
    "trailing percent": (RULE.replace("output: o", "output: 'o %'").format(cond="proc.name=x"),
                         "LOAD_ERR_COMPILE_OUTPUT", "rule output", "formatting cannot end with a %"),
    "newer engine": ("- required_engine_version: 0.999.0\n", "LOAD_ERR_VALIDATE", "required_engine_version",
                     "Rules require engine version 0.999.0"),
}


def _only_error(res):
    assert not res.successful
    assert len(res.errors) == 1, res.errors
    return res.errors[0]


def _item_types(problem) -> list[str]:
    return [loc["item_type"] for loc in problem.as_json({})["context"]["locations"]]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_gives_falcos_error(name):
    content, code, item_type, message = BAD[name]
    res = Loader().load("bad.yaml", content)
    err = _only_error(res)
    assert err.code == code, err.message
    assert message in err.message
    assert item_type in _item_types(err)
    json.dumps(res.as_json())  # and it renders


GOOD = ("- list: shells\n  items: [bash, sh]\n- macro: spawned\n  condition: evt.type = execve\n"
        "- rule: shell\n  desc: d\n  output: shell %proc.name\n  priority: WARNING\n"
        "  condition: spawned and proc.name in (shells)\n")


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_file_leaves_the_loaded_rules_as_they_were(name):
    loader = Loader()
    assert loader.load("good.yaml", GOOD).successful
    before = loader.compiled
    # the bad file first redefines what the good one defined, then fails
    redefine = "- list: shells\n  items: [zsh]\n- rule: shell\n  desc: d\n  output: o\n  priority: INFO\n" \
               "  condition: proc.name = zsh\n"
    content = BAD[name][0]
    content = (redefine.encode() + content) if isinstance(content, bytes) else redefine + content
    assert not loader.load("bad.yaml", content).successful
    assert loader.compiled is before
    later = loader.load("later.yaml", "- rule: more\n  desc: d\n  output: o\n  priority: INFO\n"
                                      "  condition: spawned and proc.name in (shells)\n")
    assert later.successful, later.errors
    rules = {r.name: r for r in loader.compiled.rules}
    assert set(rules) == {"shell", "more"}
    assert rules["shell"].info.priority == 4 and "(bash, sh)" not in rules["shell"].condition  # as written
    assert "zsh" not in str(loader.compiled.lists["shells"])


def test_yaml_tags_are_text_never_code(tmp_path):
    """A YAML tag is ignored as yaml-cpp ignores it: the tagged node is read as plain data."""
    marker = tmp_path / "executed"
    res = Loader().load("t.yaml", RULE.format(cond="proc.name=x")
                        + f"  tags: !!python/object/apply:os.system ['touch {marker}']\n")
    assert res.successful and not marker.exists()


def test_the_engine_hands_out_no_ruleset_when_any_file_fails():
    outcome = Engine({}).load([("good.yaml", GOOD), ("bad.yaml", BAD["macro loop"][0])])
    assert not outcome.successful and outcome.ruleset is None
    assert [r.successful for r in outcome.results] == [True, False]


@pytest.mark.parametrize("name", ["binary garbage", "macro loop", "deep condition", "alias bomb", "newer engine"])
def test_cli_reports_the_error_without_a_traceback(name, tmp_path):
    content = BAD[name][0]
    f = tmp_path / "bad.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    p = subprocess.run([TIERCEL, "rules", "validate", str(f), "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    doc = json.loads(p.stdout)["falco_load_results"][0]
    assert not doc["successful"] and doc["errors"][0]["code"] == BAD[name][1]
    trace = tmp_path / "empty.json"
    trace.write_text("")
    p = subprocess.run([TIERCEL, "replay", str(trace), "-r", str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert BAD[name][1] in p.stderr and "Could not load rules file" in p.stderr and p.stdout == ""


def test_a_large_condition_loads_and_evaluates():
    """A 200 kB condition (10,000 alternatives) is valid: it loads and runs, in seconds."""
    from tests.ruleskit import open_event

    cond = "evt.type = openat and (" + big_condition(10_000) + ")"
    outcome = Engine({}).load([("big.yaml", RULE.format(cond=cond))])
    assert outcome.successful, outcome.results[0].errors
    assert [m.rule.name for m in outcome.ruleset.process(open_event(1, "x9999", "/tmp/a"))] == ["r"]
    assert outcome.ruleset.process(open_event(2, "y", "/tmp/a")) == []


@pytest.mark.slow
def test_a_10_mb_condition(tmp_path):
    cond = big_condition(560_000)
    assert len(cond) > 10_000_000
    f = tmp_path / "huge.yaml"
    f.write_text(RULE.format(cond=cond))
    p = subprocess.run([TIERCEL, "rules", "validate", str(f), "--json"], capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr
    assert json.loads(p.stdout)["falco_load_results"][0]["successful"] is True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=st.sampled_from(list("-:[]{}&*!|>'\"# \n\tabcr0.=()%,")), max_size=200),
    st.lists(st.sampled_from(["- rule: r", "- macro: m", "- list: l", "  condition: a and", "  items: [a, b]",
                              "  output: %proc.name", "  desc: d", "  priority: INFO", "  append: true",
                              "  override:", "    condition: append", "  exceptions:", "  - name: e",
                              "    fields: [proc.name]", "    values: [[a]]", "  enabled: false", "---",
                              "  condition: proc.name in (l)", "  condition: m or evt.type=open"]),
             max_size=25).map("\n".join),
))
def test_fuzzed_rules_files_never_raise(content):
    loader = Loader()
    assert loader.load("good.yaml", GOOD).successful
    before = loader.compiled
    res = loader.load("fuzz.yaml", content)
    json.dumps(res.as_json())
    res.as_text(verbose=True)
    if not res.successful:
        assert loader.compiled is before


@pytest.mark.skipif(not os.path.exists("/dev/urandom"), reason="no /dev/urandom")
def test_random_bytes_through_the_cli(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_bytes(os.urandom(65536))
    p = subprocess.run([TIERCEL, "rules", "validate", str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "Invalid" in p.stdout

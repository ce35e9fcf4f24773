"""The loader's reader and collector stages and the load-result rendering (no condition compiling)."""

from __future__ import annotations

import json

import pytest

from tiercel.rules.engine import matches_wildcard
from tiercel.rules.loader.collector import Collector
from tiercel.rules.loader.compiler import build_exceptions, compile_lists
from tiercel.rules.loader.reader import Reader
from tiercel.rules.loader.results import LoadError, LoadResult, results_json

ENGINE = (0, 62, 0)


def read(text: str, col: Collector | None = None, name: str = "f.yaml"):
    """Read `text` into a collector; return (collector, result)."""
    col = col or Collector({"syscall", "k8s_audit"}, lambda src, f: f.startswith(("proc.", "fd.", "evt.")))
    res = LoadResult(name, contents={name: text})
    col.res = res
    try:
        Reader(name, text, col, res, ENGINE).read()
    except LoadError as e:
        res.errors.append(e.problem)
    return col, res


def err(res: LoadResult):
    assert res.errors, "expected an error"
    e = res.errors[0]
    item = e.ctx.item
    return e.code, item.item_type, item.item_name, e.message


RULE = """
- rule: r1
  desc: d
  condition: evt.type=open
  output: out %proc.name
  priority: WARNING
"""


def test_scalars_stay_text():
    col, res = read("- list: l\n  items: [0x10, yes, 1.0, on, 0755, ~x]\n")
    assert res.successful
    assert col.lists["l"].items == ["0x10", "yes", "1.0", "on", "0755", "~x"]


def test_item_kind_is_first_known_key_in_falco_order():
    # `macro` wins over `rule` whatever the key order in the map.
    col, res = read("- rule: x\n  macro: m\n  condition: a\n")
    assert "m" in col.macros and not col.rules
    assert [w.code for w in res.warnings] == ["LOAD_UNKNOWN_KEY"]


def test_unknown_item_and_unknown_key_are_warnings():
    col, res = read("- foo: bar\n- list: l\n  items: []\n  colour: red\n")
    assert res.successful
    codes = [(w.code, w.ctx.item.item_type, w.ctx.item.item_name) for w in res.warnings]
    assert codes == [("LOAD_UNKNOWN_ITEM", "rules content item", ""), ("LOAD_UNKNOWN_KEY", "list", "l")]


@pytest.mark.parametrize("text,expected", [
    ("This is not yaml", ("LOAD_ERR_YAML_VALIDATE", "rules content", "", "Rules content is not yaml")),
    ("a: 1", ("LOAD_ERR_YAML_VALIDATE", "rules content", "", "Rules content is not yaml array of objects")),
    ("- foo", ("LOAD_ERR_YAML_VALIDATE", "rules content item", "",
               "Unexpected element type. Each element should be a yaml associative array.")),
    ("this : is : not : yaml", ("LOAD_ERR_YAML_PARSE", "rules content", "",
                                "yaml-cpp: error at line 1, column 11: illegal map value")),
    ("- list:\n  items: [a]", ("LOAD_ERR_YAML_VALIDATE", "list", "", "Mapping for key 'list' is empty")),
    ("- list: l\n  no_items: a", ("LOAD_ERR_YAML_VALIDATE", "list", "l", "Item has no mapping for key 'items'")),
    ("- list: l\n  items: a", ("LOAD_ERR_YAML_VALIDATE", "list", "l", "Value is not a sequence")),
    ("- macro: m\n  condition: ''", ("LOAD_ERR_YAML_VALIDATE", "macro", "m", "Value must be non-empty")),
    ("- rule: r\n  desc: d\n  condition: c\n  priority: INFO",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r", "Item has no mapping for key 'output'")),
    ("- rule: r\n  desc: d\n  condition: c\n  output: o\n  priority: LOUD",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r", "Invalid priority")),
    ("- rule: r\n  desc: d\n  condition: c\n  output: o\n  priority: info\n  enabled: maybe",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r", "Can't decode YAML scalar value")),
    ("- required_engine_version: 63", ("LOAD_ERR_VALIDATE", "required_engine_version", "",
                                       "Rules require engine version 0.63.0, but engine version is 0.62.0")),
    ("- required_engine_version: 1.0.0", ("LOAD_ERR_VALIDATE", "required_engine_version", "",
                                          "Rules require engine version 1.0.0, but engine version is 0.62.0")),
    ("- list: l\n  items: [a]\n  append: true\n  override: {items: append}",
     ("LOAD_ERR_YAML_VALIDATE", "list", "l", "Keys 'override' and 'append: true' cannot be used together. "
      "Add an 'append' entry (e.g. 'condition: append') under 'override' instead.")),
    (RULE + "- rule: r1\n  priority: INFO\n  override: {priority: append}",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r1", "Key 'priority' cannot be appended to, use 'replace' instead")),
    (RULE + "- rule: r1\n  priority: INFO\n  desc: x\n  override: {priority: replace}",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r1",
      "Unexpected key 'desc': no corresponding entry under 'override' is defined.")),
    (RULE + "- rule: r1\n  override: {desc: append}",
     ("LOAD_ERR_YAML_VALIDATE", "rule", "r1", "An append override for 'desc' was specified but 'desc' is not defined")),
    ("- list: l\n  items: [a]\n  append: true",
     ("LOAD_ERR_VALIDATE", "list", "l", "List has 'append' key but no list by that name already exists")),
    ("- list: l\n  items: [a]\n  override: {items: append}",
     ("LOAD_ERR_VALIDATE", "list", "l",
      "List uses 'append' or 'override.items: append' but no list by that name already exists")),
    ("- rule: r\n  enabled: false", ("LOAD_ERR_VALIDATE", "rule", "r",
                                      "Rule has 'enabled' key but no rule by that name already exists")),
    (RULE + "- rule: r1\n  append: true", ("LOAD_ERR_VALIDATE", "rule", "r1",
                                            "Appended rule must have exceptions or condition property")),
    (RULE + "- rule: r1\n  condition: x\n  override: {condition: replace}\n  source: k8s_audit",
     ("LOAD_ERR_VALIDATE", "rule", "r1", "Rule has been re-defined with a different source")),
    (RULE.replace("r1", "k") + "  source: k8s_audit\n" + RULE.replace("r1", "k"),
     ("LOAD_ERR_VALIDATE", "rule", "k", "Rule has been re-defined with a different source")),
])
def test_errors(text, expected):
    _col, res = read(text)
    assert err(res) == expected


def test_engine_version_forms():
    col, res = read("- required_engine_version: 12\n- required_engine_version: '0.57.0'\n")
    assert res.successful and col.engine_version.version == (0, 57, 0)
    _col, res = read("- required_engine_version: not-a-number")
    code, itype, _name, msg = err(res)
    assert (code, itype) == ("LOAD_ERR_YAML_VALIDATE", "required_engine_version")
    assert "Can't decode YAML scalar value" in msg and "semver" in msg


def test_positions_are_yaml_marks():
    text = "# c\n- list: l\n  items: [a]\n\n- rule: r\n  desc: d\n  condition: c\n  output: o\n  priority: LOUD\n"
    _col, res = read(text)
    locs = res.errors[0].ctx.locations
    assert [(loc.item_type, loc.item_name, loc.pos.line, loc.pos.column) for loc in locs] == [
        ("rules content", "", 0, 0), ("rule", "r", 4, 2), ("rule priority", "", 8, 12)]
    assert locs[1].pos.offset == text.index("rule: r")
    assert res.errors[0].ctx.snippet(res.contents) == "  priority: LOUD\n            ^\n"


def test_processing_stops_at_first_error_but_keeps_warnings():
    text = "- foo: 1\n---\n- list: l\n  items: x\n---\n- bar: 2\n- list: never\n  items: []\n"
    col, res = read(text)
    assert len(res.errors) == 1 and [w.code for w in res.warnings] == ["LOAD_UNKNOWN_ITEM"]
    assert "never" not in col.lists


def test_index_and_visibility():
    col, res = read("- list: a\n  items: [x]\n- list: b\n  items: [a]\n- list: a\n  items: [y]\n"
                    "- list: b\n  items: [z]\n  append: true\n")
    assert res.successful
    a, b = col.lists["a"], col.lists["b"]
    assert (a.index, a.visibility) == (1, 3)
    assert (b.index, b.visibility, b.items) == (2, 4, ["a", "z"])
    assert list(col.lists) == ["a", "b"]
    # b's latest change (4) is after a's definition (1): the item `a` expands (to a's items now).
    assert compile_lists(col)["b"] == ["y", "z"] and a.used


def test_list_items_naming_later_lists_stay_literal():
    col, _ = read("- list: first\n  items: [second, 'a b']\n- list: second\n  items: [x]\n")
    assert compile_lists(col)["first"] == ["second", '"a b"']


def test_rule_legacy_append_ignores_output_desc_tags_and_override_mixes():
    text = RULE + ("- rule: r1\n  condition: and proc.name=cat\n  output: ignored\n  tags: [t]\n  append: true\n"
                   "- rule: r1\n  desc: more\n  priority: ERROR\n  tags: [b, a]\n"
                   "  override: {desc: append, priority: replace, tags: append}\n")
    col, res = read(text)
    assert res.successful, res.errors
    r = col.rules["r1"]
    assert r.cond == "evt.type=open and proc.name=cat"
    assert r.output == "out %proc.name" and r.desc == "d more" and r.priority == 3
    assert r.tags == {"a", "b"}
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]
    assert (r.index, r.visibility) == (1, 4)


def test_standalone_enabled_sets_earlier_rule():
    col, res = read(RULE + "- rule: r1\n  enabled: false\n")
    assert res.successful and col.rules["r1"].enabled is False
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM"]


def test_exceptions_validation_and_append():
    base = RULE + ("  exceptions:\n  - name: e1\n    fields: [proc.name, fd.name]\n    comps: [=, startswith]\n"
                   "    values: [[cat, /tmp]]\n")
    col, res = read(base + "- rule: r1\n  exceptions:\n  - name: e1\n    values: [[ls, /etc]]\n"
                    "  - name: e2\n    fields: proc.pname\n    values: [bash]\n  override: {exceptions: append}\n")
    assert res.successful, res.errors
    ex = col.rules["r1"].exceptions
    assert [e.name for e in ex] == ["e1", "e2"] and len(ex[0].values) == 2
    assert ex[1].comps.item == "in"
    fields: set[str] = set()
    cond = build_exceptions("evt.type=open", ex, fields)
    assert cond == ("(evt.type=open) and not (( proc.name = cat and  fd.name startswith /tmp) or "
                    "( proc.name = ls and  fd.name startswith /etc)) and not (proc.pname in (bash))")
    assert fields == {"proc.name", "fd.name", "proc.pname"}

    for bad, msg in [
        ("    fields: [proc.name]\n    comps: [=, =]\n", "Fields and comps lists must have equal length"),
        ("    fields: [proc.name]\n    comps: [like]\n", "'like' is not a supported comparison operator"),
        ("    fields: [nope.x]\n", "'nope.x' is not a supported filter field"),
        ("    fields: proc.name\n    comps: '='\n",
         "When fields is a single value, comps must be one of (in, pmatch, intersects)"),
        ("    fields: proc.name\n    comps: [in]\n", "Fields and comps must both be strings"),
    ]:
        _col, res = read(RULE + "  exceptions:\n  - name: x\n" + bad)
        assert err(res) == ("LOAD_ERR_VALIDATE", "rule", "r1", msg)
    col, res = read(RULE + "  exceptions:\n  - name: x\n    fields: [proc.name]\n    comps: ['startswith oneof']\n")
    assert res.successful
    _col, res = read(base + "- rule: r1\n  exceptions:\n  - name: e1\n    fields: [proc.name]\n    values: []\n"
                     "  append: true\n")
    assert err(res)[3] == "Can not append exception fields to existing exception, only values"
    _col, res = read(base + "- rule: r1\n  exceptions:\n  - name: e1\n  append: true\n")
    assert [w.code for w in res.warnings] == ["LOAD_DEPRECATED_ITEM", "LOAD_APPEND_NO_VALUES"]


def test_exception_value_quoting_and_list_ops():
    col, _ = read(RULE + "  exceptions:\n  - name: e\n    fields: [proc.cmdline, proc.name]\n"
                  "    comps: [contains, in]\n    values: [[curl 127.0.0.1, my_list], [wget, [a, 'b c']]]\n")
    cond = build_exceptions("c", col.rules["r1"].exceptions, set())
    assert cond == ('(c) and not (( proc.cmdline contains "curl 127.0.0.1" and  proc.name in (my_list)) or '
                    '( proc.cmdline contains wget and  proc.name in (a, "b c")))')


def test_unknown_source_warns():
    col, res = read(RULE + "  source: aws_cloudtrail\n")
    assert res.successful and col.rules["r1"].unknown_source
    assert [w.code for w in res.warnings] == ["LOAD_UNKNOWN_SOURCE"]


def test_results_json_shape():
    _col, res = read("- foo: 1\n- rule: r\n  desc: d\n  condition: c\n  output: o\n  priority: LOUD\n")
    doc = json.loads(results_json([res]))
    r = doc["falco_load_results"][0]
    assert list(r) == sorted(r) and r["successful"] is False and r["name"] == "f.yaml"
    e = r["errors"][0]
    assert e["code"] == "LOAD_ERR_YAML_VALIDATE"
    assert e["codedesc"] == "Error validating internal structure of YAML file"  # the short string (quirk)
    assert e["context"]["item_type"] == "rule" and e["context"]["item_name"] == "r"
    assert e["context"]["locations"][0] == {"item_name": "", "item_type": "rules content",
                                            "position": {"column": 0, "line": 0, "name": "f.yaml", "offset": 0}}
    w = r["warnings"][0]
    assert w["codedesc"].startswith("An unknown top-level object")  # warnings carry the long description
    text = res.as_text()
    assert text.startswith("f.yaml: Invalid\n1 Errors:\nIn rules content: (f.yaml:0:0)\n    rule 'r': (f.yaml:1:2)")
    assert "LOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file): Invalid priority" in text
    assert res.as_text(verbose=False) == ("f.yaml: Invalid 1 errors: [LOAD_ERR_YAML_VALIDATE (Error validating "
                                          "internal structure of YAML file)] 1 warnings: [LOAD_UNKNOWN_ITEM "
                                          "(Unknown rules file item)]")


@pytest.mark.parametrize("blob", [b"\x00\x01\x02garbage\xff", b"- [" * 5000, b"{" * 20000, b"- rule: \"\\q\"\n"])
def test_bad_input_never_raises(blob):
    from tiercel.rules.loader import Loader

    res = Loader().load("bad.yaml", blob)
    assert not res.successful and res.errors[0].code.startswith("LOAD_ERR")


@pytest.mark.parametrize("pattern,name,ok", [
    ("*", "anything", True), ("Terminal*", "Terminal shell", True), ("*shell", "Terminal shell", True),
    ("*sh*ll*", "Terminal shell in container", True), ("T*l", "Terminal shell", False), ("x*", "Terminal", False),
    ("Terminal", "Terminal shell", False),
])
def test_wildcard(pattern, name, ok):
    # First occurrence, no backtracking: "T*l" stops at the "l" of "Terminal" and fails.
    assert matches_wildcard(pattern, name) is ok

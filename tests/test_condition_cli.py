"""`tiercel condition`: the debugging view of one condition."""

from __future__ import annotations

from tests.conftest import tiercel


def test_condition_cli_prints_compiled_form_and_code():
    p = tiercel("condition", "ka.verb in (create) and not ka.user.name startswith system:", "-s", "k8s_audit",
                "--code", "--output", "%ka.verb %tolower(ka.user.name)")
    assert p.returncode == 0, p.stderr
    assert "condition_compiled: (ka.verb in (create) and not ka.user.name startswith system:)" in p.stdout
    assert "output fields: ka.user.name, ka.verb" in p.stdout
    assert "def evaluate(evt" in p.stdout


def test_condition_cli_errors_are_one_line(tmp_path):
    p = tiercel("condition", "evt.type=open and foo bar")
    assert p.returncode == 1
    assert p.stderr.strip() == "tiercel: error: unexpected token after 'foo', expecting 'or', 'and' (at 1:23)"
    rules = tmp_path / "r.yaml"
    rules.write_text("- list: l\n  items: [create, update]\n- macro: m\n  condition: ka.verb in (l)\n")
    p = tiercel("condition", "m and ka.target.resource = pods", "-s", "k8s_audit", "--macros", str(rules))
    assert p.returncode == 0, p.stderr
    assert "(ka.verb in (create, update) and ka.target.resource = pods)" in p.stdout

"""Differential test of the whole engine: real rulesets (Falco's stable falco_rules.yaml, the k8s
audit rules, Tiercel's default ruleset) over real event streams (every conformance capture, the
benchmark's mix), `Ruleset.process` against the slow reference evaluator of the tests walking each
rule's expanded tree. It checks the parts between the condition compiler and an alert: event-type
indexing (a rule that matches an event must be indexed under its code), per-code folding,
grouping of rules into generated functions, rule order, `rule_matching: all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.condition_reference import Reference
from tests.conftest import CONFORMANCE
from tiercel.rules.cli import default_rules_path
from tiercel.rules.engine import Engine

UPSTREAM = CONFORMANCE / "rules" / "upstream"


def _ruleset(paths: list[Path]):
    outcome = Engine({"rule_matching": "all"}).load([(str(p), p.read_bytes()) for p in paths])
    assert outcome.successful, [e.message for r in outcome.results for e in r.errors]
    return outcome.ruleset


def _compare(rs, events) -> int:
    """Every event: the engine's matches == the rules (index order) the reference matches.
    Returns how many matches were seen."""
    refs = {src: Reference(src) for src in ("syscall", "k8s_audit")}
    index = {id(r): r.compiled.filter for r in rs.rules}
    seen = 0
    for evt in events:
        got = [m.rule.name for m in rs.process(evt)]
        if evt.source == "syscall" and evt.code in rs._ignored:
            assert got == []
            continue
        ref = refs[evt.source]
        want = [r.name for r in rs.enabled_rules() if r.source == evt.source
                and ref.matches(index[id(r)].tree, evt)]
        assert got == want, (evt.num, evt.code, got, want)
        seen += len(got)
    return seen


def _capture_events(pattern: str):
    from tiercel.rules.replay import read_trace

    for path in sorted((CONFORMANCE / "traces").glob(pattern)):
        yield from read_trace(str(path))


@pytest.fixture(scope="module")
def shared():
    if not UPSTREAM.is_dir():
        pytest.skip("../shared/conformance is absent")


def test_stable_ruleset_on_every_capture(shared):
    rs = _ruleset([UPSTREAM / "falco_rules.yaml"])
    _compare(rs, _capture_events("*.scap"))
    _compare(rs, _capture_events("libs/*.scap"))


def test_old_rulesets_with_k8s_audit_on_every_capture(shared):
    rs = _ruleset([UPSTREAM / "falco_rules-0.1.0.yaml", UPSTREAM / "k8s_audit_rules-0.4.0.yaml"])
    n = _compare(rs, _capture_events("k8s_audit/*.json"))
    n += _compare(rs, _capture_events("*.scap"))
    assert n > 10  # the old rules fire on these captures: the comparison covers matches too


def test_default_ruleset_on_the_benchmark_mix_and_captures():
    from tiercel.rules.bench import event_mix

    rs = _ruleset([Path(default_rules_path())])
    assert _compare(rs, event_mix(3000, seed=3)) > 0
    if (CONFORMANCE / "traces").is_dir():
        _compare(rs, _capture_events("k8s_audit/*.json"))
        _compare(rs, _capture_events("libs/*.scap"))


def test_bench_rules_runs_and_reports_every_figure(tmp_path):
    """`tiercel bench rules` as a smoke run (tiny size): every figure is there and sane; the mix
    raises alerts (the match path is measured too). Speed itself is the benchmark's, not a test's."""
    from tiercel.common.benchmark import BenchContext
    from tiercel.rules.bench import bench

    results = {r.name: r for r in bench(BenchContext(runs=1, warmup=0, size="tiny", workdir=str(tmp_path),
                                                     log=lambda s: None))}
    assert "compile default" in results and "process default" in results and "peak RSS" in results
    assert all(v > 0 for r in results.values() for v in r.values)
    assert results["process default"].extra["events_matched"] > 0
    if UPSTREAM.is_dir():
        assert results["process upstream falco_rules.yaml"].extra["events_matched"] > 0
        assert results["compile upstream falco_rules.yaml"].extra["rules"] == 25

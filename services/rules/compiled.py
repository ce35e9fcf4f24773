"""The rules engine as the rules service uses it: build a ruleset from a store snapshot, decode a
batch's events, evaluate an event, assemble an alert.

A build loads every file in order with the full loader (`tiercel.rules.engine.Engine`), then
applies the store's enable/disable selections. The compiled rules are kept, so a live change of
`priority` or `rule_matching` re-selects (a new `Ruleset` over the same compiled rules) without
recompiling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tiercel.rules.store import Selection, StoreError


@dataclass
class Build:
    """The outcome of loading one set of files with one set of selections."""

    results: list[Any]  # tiercel.rules.loader.LoadResult per file
    compiled: Any = None  # the loader's compiled rules (None when a file failed)
    ruleset: Any = None
    problems: list[str] = field(default_factory=list)  # selections that match no rule

    @property
    def ok(self) -> bool:
        return self.compiled is not None and not self.problems

    def load_result_json(self) -> dict[str, Any]:
        """Falco's `-V` JSON object: {"falco_load_results": [...]}."""
        return {"falco_load_results": [r.as_json() for r in self.results]}

    def load_result_text(self) -> str:
        lines = [r.as_text() for r in self.results]
        lines += [f"Error: {p}" for p in self.problems]
        return "\n".join(x.rstrip("\n") for x in lines if x)

    def error_codes(self) -> list[str]:
        return [p.code for r in self.results for p in r.errors]


def apply_selection(ruleset: Any, selection: list[Selection]) -> list[str]:
    """Apply selections in order; returns a problem text for each that touched no rule."""
    problems = []
    for s in selection:
        if s.kind == "name":
            n = ruleset.enable(s.value, s.enable, match="wildcard")
        elif s.kind == "substring":
            n = ruleset.enable(s.value, s.enable, match="substring")
        elif s.kind == "tag":
            n = ruleset.enable_tags([s.value], s.enable)
        else:
            raise StoreError("bad_selection", f"unknown selection kind {s.kind!r}")
        if n == 0:
            problems.append(f"no rule matches: {s.describe()}")
    return problems


def selected_names(ruleset: Any, sel: Selection) -> list[str]:
    """Names of the rules of `ruleset` a selection touches (rules below the priority threshold too)."""
    from tiercel.rules.engine import matches_wildcard

    rules = getattr(ruleset, "all_rules", ruleset.rules)
    if sel.kind == "name":
        return [r.name for r in rules if matches_wildcard(sel.value, r.name)]
    if sel.kind == "substring":
        return [r.name for r in rules if sel.value in r.name]
    return [r.name for r in rules if sel.value in r.tags]


def prepare(ruleset: Any) -> Any:
    """Build the evaluators now, so the first event after a swap does not pay for code generation."""
    return ruleset.prepare()


def wanted_codes(ruleset: Any) -> Any:
    """`wanted(source, code)`: whether any enabled rule of the ruleset is indexed under the code
    (exactly the events `Ruleset.process` would evaluate)."""
    tables: dict[str, Any] = {}

    def wanted(source: str, code: int) -> bool:
        t = tables.get(source)
        if t is None:
            t = tables[source] = ruleset.evaluator(source).table
        return code in t

    return wanted


class EngineAdapter:
    """What a rules worker needs from the engine and the event model."""

    def __init__(self, cfg: Mapping[str, Any], hostname: str):
        from tiercel.rules.alerts import AlertFormatter
        from tiercel.rules.engine import Engine

        self._engine_cls = Engine
        self.cfg = cfg
        self.hostname = hostname
        self.formatter = AlertFormatter(cfg, hostname=hostname)

    def build(self, files: list[tuple[str, str]], selection: list[Selection], *,
              check_selection: bool = False, ready: bool = True) -> Build:
        """Load files + selections. `check_selection`: a selection matching no rule is a problem
        (used when a change adds a selection, not when replaying stored ones)."""
        engine = self._engine_cls({"priority": "debug", "rule_matching": self.cfg["rule_matching"]})
        if files:
            outcome = engine.load(files)
        else:  # no files: a valid, empty ruleset
            outcome = engine.load([("(no rules files)", "")])
            outcome.results = []
        if outcome.ruleset is None:
            return Build(outcome.results)
        compiled = outcome.ruleset.compiled
        problems = apply_selection(outcome.ruleset, selection)
        b = Build(outcome.results, compiled, None, problems if check_selection else [])
        if b.ok:
            b.ruleset = self.select(compiled, selection, self.cfg, ready=ready)
        return b

    def select(self, compiled: Any, selection: list[Selection], cfg: Mapping[str, Any], ready: bool = True) -> Any:
        """A ruleset over compiled rules, with the configuration's priority and rule matching."""
        from tiercel.rules.engine import Ruleset

        rs = Ruleset(compiled, min_priority=_priority_number(cfg["priority"]), rule_matching=cfg["rule_matching"])
        apply_selection(rs, selection)
        return prepare(rs) if ready else rs

    def configure(self, cfg: Mapping[str, Any]) -> None:
        from tiercel.rules.alerts import AlertFormatter

        self.cfg = cfg
        self.formatter = AlertFormatter(cfg, hostname=self.hostname)

    # --- the hot path ------------------------------------------------------------------------
    @staticmethod
    def decode_events(batch: Any, ruleset: Any) -> tuple[list[Any], int]:
        """The batch's events that the ruleset can match, as `Event`s with host and seq set; and
        how many items could not be decoded. Events of codes no rule looks at (on the default
        ruleset, two thirds of a busy server's) are never built."""
        from tiercel.common.wire import decode_events

        return decode_events(batch, wanted_codes(ruleset))

    @staticmethod
    def evaluate(ruleset: Any, evt: Any) -> list[Any]:
        return ruleset.process(evt)

    def alert_json(self, ruleset: Any, match: Any, evt: Any, host: str, settings: Any) -> dict[str, Any]:
        a = self.formatter.alert(match)
        a["hostname"] = host
        return a

    # --- describing --------------------------------------------------------------------------
    @staticmethod
    def describe(ruleset: Any) -> list[dict[str, Any]]:
        """The engine's description of each rule, plus `file`: where the rule was defined."""
        rows = ruleset.describe()
        files = {r.name: _rule_file(r) for r in getattr(ruleset, "all_rules", ())}
        for row in rows:
            row["file"] = files.get(row["name"], "")
        return rows


def _rule_file(rule: Any) -> str:
    try:
        return rule.compiled.info.ctx.locations[0].pos.name
    except (AttributeError, IndexError):
        return ""


def _priority_number(name: str) -> int:
    from tiercel.rules.engine import priority_number

    return priority_number(name)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

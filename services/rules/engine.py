"""The engine API other services use: load rules files, select rules, evaluate events.

    engine = Engine(config)                       # any Mapping of Tiercel's config keys
    outcome = engine.load([(name, text), ...])    # -> LoadOutcome(results, ruleset or None)
    rs = outcome.ruleset
    rs.enable("Terminal shell*", False, match="wildcard"); rs.enable_tags({"network"}, False)
    for m in rs.process(evt): print(engine.formatter.line(m))

A `Ruleset` is immutable in what it compiled and cheap to re-select: selection changes rebuild
only the per-event-code dispatch table. `process` is the rules workers' hot path: one dict lookup
by event code, then one generated function (from `tiercel.rules.condition`) that evaluates every
candidate rule of that code, computing each shared field and sub-expression once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tiercel.rules.alerts import PRIORITY_NAMES, AlertFormatter
from tiercel.rules.loader import NATIVE_SOURCES, Loader, LoadResult

DEFAULT_PRIORITY = 7  # debug: every rule


def priority_number(name: str | int) -> int:
    if isinstance(name, int):
        return name
    from tiercel.rules.loader.model import parse_priority

    p = parse_priority(name)
    if p is None:
        raise ValueError(f"invalid priority {name!r}; expected one of {', '.join(PRIORITY_NAMES)}")
    return p


def matches_wildcard(pattern: str, s: str) -> bool:
    """Falco's wildcard rule-name match: `*` matches any run, first occurrence, no backtracking."""
    star = pattern.find("*")
    if star < 0:
        return pattern == s
    if star == 0:
        rest = pattern.lstrip("*")
        if not rest:
            return True
        lit = rest.split("*", 1)[0]
        pos = s.find(lit)
        if pos < 0:
            return False
        return matches_wildcard(rest[len(lit):], s[pos + len(lit):])
    if pattern[:star] != s[:star]:
        return False
    return matches_wildcard(pattern[star:], s[star:])


class Rule:
    """A compiled rule as a ruleset holds it."""

    __slots__ = ("name", "source", "priority", "tags", "desc", "output", "condition", "enabled_default",
                 "evttypes", "index", "compiled", "format", "exception_fields", "capture", "capture_duration")

    def __init__(self, cr: Any, index: int):
        info = cr.info
        self.name: str = info.name
        self.source: str = info.source
        self.priority: int = info.priority
        self.tags: tuple[str, ...] = tuple(sorted(info.tags))
        self.desc: str = info.desc
        self.output: str = cr.output
        self.condition: str = info.cond
        self.enabled_default: bool = info.enabled
        self.evttypes: frozenset[int] | None = cr.evttypes
        self.index = index
        self.compiled = cr
        self.format = cr.format
        self.exception_fields = cr.exception_fields
        self.capture = info.capture
        self.capture_duration = info.capture_duration

    @property
    def priority_name(self) -> str:
        return PRIORITY_NAMES[self.priority]

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {self.source}, {self.priority_name})"


class Match:
    """One rule matching one event. The output is rendered on first use."""

    __slots__ = ("rule", "evt", "_message", "_fields")

    def __init__(self, rule: Rule, evt: Any):
        self.rule = rule
        self.evt = evt
        self._message: str | None = None
        self._fields: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        """The rule output with its fields rendered (`<NA>` for missing values)."""
        if self._message is None:
            self._message = self.rule.format.render(self.evt)
        return self._message

    @property
    def fields(self) -> dict[str, Any]:
        """output_fields: typed values by token as written, None for missing."""
        if self._fields is None:
            self._fields = self.rule.format.fields(self.evt)
        return self._fields

    def __repr__(self) -> str:
        return f"Match({self.rule.name!r}, evt={getattr(self.evt, 'num', '?')})"


_NO_MATCH: list = []  # the shared empty result (callers only read it)


class SelectionError(ValueError):
    """Rule selection options that Falco refuses (e.g. -t together with -D/-T)."""


class Ruleset:
    """The rules of one successful load, with their enabled state and the event dispatch."""

    def __init__(self, compiled: Any, min_priority: int = DEFAULT_PRIORITY, rule_matching: str = "first",
                 all_events: bool = False):
        self.compiled = compiled
        self.all_rules = [Rule(cr, i) for i, cr in enumerate(compiled.rules)]
        # Rules below the minimum priority are compiled but never part of the ruleset.
        self.rules = [r for r in self.all_rules if r.priority <= min_priority]
        self.by_name = {r.name: r for r in self.rules}
        self.enabled: dict[str, bool] = {r.name: r.enabled_default for r in self.rules}
        self.min_priority = min_priority
        if rule_matching not in ("first", "all"):
            raise ValueError(f"rule_matching must be first or all, not {rule_matching!r}")
        self.rule_matching = rule_matching
        self.all_events = all_events
        self._invalidate()
        self._ignored: frozenset[int] = frozenset() if all_events else ignored_codes()

    # --- selection ----------------------------------------------------------------------------
    def enable(self, pattern: str, enabled: bool = True, match: str = "exact") -> int:
        """Enable/disable rules by name: `exact`, `substring` (Falco's -D) or `wildcard` (`*`).
        Returns how many rules it touched."""
        if match == "exact":
            hit = [r for r in self.rules if r.name == pattern]
        elif match == "substring":
            hit = [r for r in self.rules if pattern in r.name]
        elif match == "wildcard":
            hit = [r for r in self.rules if matches_wildcard(pattern, r.name)]
        else:
            raise ValueError(f"unknown match mode {match!r}")
        for r in hit:
            self.enabled[r.name] = enabled
        self._invalidate()
        return len(hit)

    def enable_tags(self, tags: Iterable[str], enabled: bool = True) -> int:
        """Enable/disable every rule that has any of the tags."""
        tags = set(tags)
        n = 0
        for r in self.rules:
            if tags.intersection(r.tags):
                self.enabled[r.name] = enabled
                n += 1
        self._invalidate()
        return n

    def enable_all(self, enabled: bool = True) -> None:
        for r in self.rules:
            self.enabled[r.name] = enabled
        self._invalidate()

    def apply_cli_selection(self, disable_substrings: Sequence[str] = (), only_tags: Sequence[str] = (),
                            disable_tags: Sequence[str] = ()) -> None:
        """Falco's -D / -t / -T, with its refusal to mix enabling and disabling."""
        if only_tags and (disable_substrings or disable_tags):
            raise SelectionError("You can not specify both disabled (-D/-T) and enabled (-t) rules")
        for s in disable_substrings:
            self.enable(s, False, match="substring")
        if disable_tags:
            self.enable_tags(disable_tags, False)
        if only_tags:
            self.enable_all(False)
            self.enable_tags(only_tags, True)

    def apply_selections(self, selections: Iterable[Mapping[str, Any]]) -> None:
        """falco.yaml `rules:` entries in order: {enable|disable: {rule: pattern | tag: t}}."""
        for sel in selections:
            for action in ("enable", "disable"):
                spec = sel.get(action)
                if not spec:
                    continue
                on = action == "enable"
                if "rule" in spec:
                    self.enable(str(spec["rule"]), on, match="wildcard")
                if "tag" in spec:
                    self.enable_tags([str(spec["tag"])], on)

    def enabled_rules(self) -> list[Rule]:
        return [r for r in self.rules if self.enabled[r.name]]

    # --- evaluation ---------------------------------------------------------------------------
    def _build_source(self, source: str) -> Any:
        """The evaluator of one source's enabled rules: one generated module, dispatch on the
        event code (`tiercel.rules.condition.build_evaluator`). Syscall rules are not indexed
        under the codes Falco skips without -A, so those events cost one missed lookup."""
        from tiercel.rules.condition import build_evaluator, rule_event_codes

        rules = [r for r in self.enabled_rules() if r.source == source]
        skip = self._ignored if source == "syscall" else frozenset()
        items = [(r, r.compiled.filter, rule_event_codes(r.compiled.filter.tree, source) - skip) for r in rules]
        ev = build_evaluator(source, items, self.rule_matching)
        self._evaluators[source] = ev
        self._tables[source] = ev.table  # event code -> generated function (exceptions propagate)
        return ev

    def prepare(self, sources: Iterable[str] | None = None) -> Ruleset:
        """Build the evaluators now (every source with rules, or those given), so the first event
        after a ruleset swap does not pay for code generation."""
        for src in sources if sources is not None else sorted({r.source for r in self.enabled_rules()}):
            if src not in self._evaluators:
                self._build_source(src)
        return self

    def _invalidate(self) -> None:
        self._evaluators: dict[str, Any] = {}
        self._tables: dict[str, dict[int, Any]] = {}

    def evaluator(self, source: str) -> Any:
        """The compiled evaluator of a source (`.source_code` shows the generated Python)."""
        ev = self._evaluators.get(source)
        return ev if ev is not None else self._build_source(source)

    def process(self, evt: Any) -> list[Match]:
        """The matches of one event, in rule order (at most one under `rule_matching: first`).
        The hot path: two dict lookups (source, event code) and the code's generated function;
        an exception from a broken event propagates for the caller to count."""
        table = self._tables.get(evt.source)
        if table is None:
            table = self._build_source(evt.source).table
        fn = table.get(evt.code)
        if fn is None:
            return _NO_MATCH
        hits = fn(evt)
        if not hits:
            return _NO_MATCH
        return [Match(r, evt) for r in hits]

    def describe(self) -> list[dict[str, Any]]:
        """What `tiercel rules list` shows per rule."""
        from tiercel.rules.condition import event_names

        out = []
        for r in self.all_rules:
            out.append({
                "name": r.name, "source": r.source, "priority": r.priority_name, "tags": list(r.tags),
                "enabled": self.enabled.get(r.name, False), "loaded": r.name in self.by_name,
                "event_types": sorted(event_names(r.evttypes, r.source)), "desc": r.desc,
            })
        return out


def ignored_codes() -> frozenset[int]:
    """Event codes Falco skips unless `-A`: the I/O syscalls (reads and writes), which Falco
    leaves out of its interesting set for performance."""
    from tiercel.common import eventtable as et

    kinds = {et.EC["EC_IO_READ"], et.EC["EC_IO_WRITE"]}
    return frozenset(e.code for e in et.EVENTS if (e.category & et.EC_KIND_MASK) in kinds)


@dataclass
class LoadOutcome:
    results: list[LoadResult]
    ruleset: Ruleset | None  # None when any file failed

    @property
    def successful(self) -> bool:
        return all(r.successful for r in self.results)


# Plugins whose event sources or fields Tiercel provides itself, at the version it matches.
NATIVE_PLUGINS = {
    "container": (0, 6, 0), "k8saudit": (0, 18, 0), "k8saudit-aks": (0, 6, 0), "k8saudit-eks": (0, 12, 0),
    "k8saudit-gke": (0, 9, 0), "k8saudit-ovh": (0, 6, 0), "json": (0, 7, 3),
}


def check_plugin_requirements(compiled: Any) -> str | None:
    """Falco's check_plugin_requirements against the natively provided plugins: an error text or
    None when every requirement is met."""
    from tiercel.rules.loader.reader import parse_semver

    for req in getattr(compiled, "plugin_versions", ()):
        ok = False
        for alt in req.alternatives:
            have = NATIVE_PLUGINS.get(alt.name)
            want = parse_semver(alt.version)
            if have is not None and want is not None and have[0] == want[0] and have >= want:
                ok = True
                break
        if not ok:
            alts = ", ".join(f"{a.name} (>= {a.version})" for a in req.alternatives)
            return f"Plugin requirement not satisfied, must load one of: {alts}"
    return None


class Engine:
    """Loads rules files into rulesets with the options of a configuration."""

    def __init__(self, config: Mapping[str, Any] | None = None, sources: Iterable[str] = NATIVE_SOURCES,
                 all_events: bool = False):
        cfg = dict(config or {})
        self.config = cfg
        self.sources = frozenset(sources)
        self.min_priority = priority_number(cfg.get("priority", "debug"))
        self.rule_matching = cfg.get("rule_matching", "first")
        self.all_events = all_events
        self.formatter = AlertFormatter(cfg, hostname=cfg.get("hostname") or None)

    def load(self, files: Sequence[tuple[str, str | bytes]]) -> LoadOutcome:
        """Load the files in order into one collector (later files see earlier ones); the
        ruleset is built only when every file loaded."""
        loader = Loader(self.sources)
        results = []
        for name, content in files:
            res = loader.load(name, content)
            results.append(res)
        if not all(r.successful for r in results) or loader.compiled is None:
            return LoadOutcome(results, None)
        rs = Ruleset(loader.compiled, self.min_priority, self.rule_matching, self.all_events)
        return LoadOutcome(results, rs)

    def load_paths(self, paths: Sequence[str]) -> LoadOutcome:
        """Load rules files by path; a directory contributes its .yml/.yaml files in name order.
        An unreadable file is LOAD_ERR_FILE_READ."""
        return self.load(read_rules_files(paths))


def expand_paths(paths: Sequence[str]) -> list[str]:
    import os

    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for n in sorted(os.listdir(p)):
                full = os.path.join(p, n)
                if n.endswith((".yml", ".yaml")) and os.path.isfile(full):
                    out.append(full)
        else:
            out.append(p)
    return out


class _Unreadable(bytes):
    """Content of a file that could not be read; the loader reports LOAD_ERR_FILE_READ."""

    error: str = ""


def read_rules_files(paths: Sequence[str]) -> list[tuple[str, str | bytes]]:
    files: list[tuple[str, str | bytes]] = []
    for p in expand_paths(paths):
        try:
            with open(p, "rb") as f:
                files.append((p, f.read()))
        except OSError as e:
            u = _Unreadable()
            u.error = f"Could not open file {p} for reading: {e.strerror or e}"
            files.append((p, u))
    return files

"""Subscription filters: which alerts a subscriber wants, from the optional fields of its request.

Built once per subscriber and applied by the hub before an alert enters the subscriber's queue,
so a narrow subscriber's queue only ever holds alerts it will receive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tiercel.api.alerts import Alert
from tiercel.pb.falco import outputs_pb2

# Longest condition accepted (characters); a filter is a short expression, not a rules file.
MAX_CONDITION = 8192
MAX_LIST = 1024


class FilterError(ValueError):
    """A request whose filters cannot be used; the message says why (INVALID_ARGUMENT)."""


Predicate = Callable[[Alert], bool]


def compile_condition(text: str) -> Predicate:
    """A Falco-syntax condition over the `alert` source's fields (tiercel.api.alertfields), with the
    rules engine's own parser, checker and code generator; no macros or lists."""
    from tiercel.api import alertfields
    from tiercel.rules import condition as cond

    alertfields.mirror_source_fields()

    def no_macros(name: str) -> None:
        return None

    try:
        tree = cond.parse(text)
        tree, _ = cond.expand_macros(tree, no_macros)
        checked = cond.check(tree, alertfields.SOURCE)
        ev = cond.build_evaluator(alertfields.SOURCE, [(0, checked, None)], "first")
    except cond.ConditionError as e:
        pos = getattr(e, "position", None)
        where = f" (at column {pos.col})" if pos is not None and getattr(pos, "col", None) else ""
        raise FilterError(f"request.condition: {e}{where}") from None
    evaluate = ev.evaluate
    return lambda a: bool(evaluate(a))


# Compiles a Falco-syntax condition into a predicate over alerts (replaceable in tests).
condition_compiler: Callable[[str], Predicate] | None = compile_condition


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The conjunction of the request's filters; an empty request accepts everything."""

    max_priority: int | None = None  # lowest severity accepted (enum number; lower = more severe)
    rules: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    hostnames: frozenset[str] = frozenset()
    condition: Predicate | None = None
    condition_text: str = ""

    @property
    def accepts_all(self) -> bool:
        return (self.max_priority is None and not self.rules and not self.tags and not self.sources
                and not self.hostnames and self.condition is None)

    def __call__(self, a: Alert) -> bool:
        if self.max_priority is not None and a.priority > self.max_priority:
            return False
        if self.rules and a.rule not in self.rules:
            return False
        if self.sources and a.source not in self.sources:
            return False
        if self.hostnames and a.hostname not in self.hostnames:
            return False
        if self.tags and self.tags.isdisjoint(a.tags):
            return False
        if self.condition is not None:
            try:
                return bool(self.condition(a))
            except Exception:  # a condition that cannot be evaluated on this alert does not match
                return False
        return True


def from_request(req: outputs_pb2.request) -> AlertFilter:
    """The filter a request asks for; raises FilterError on unusable values."""
    for name in ("rules", "tags", "sources", "hostnames"):
        if len(getattr(req, name)) > MAX_LIST:
            raise FilterError(f"request.{name}: at most {MAX_LIST} entries")
    max_priority = None
    if req.HasField("min_priority"):
        if not 0 <= req.min_priority <= 7:
            raise FilterError(f"request.min_priority: unknown priority {req.min_priority}")
        max_priority = req.min_priority
    condition = None
    text = req.condition.strip()
    if text:
        if len(text) > MAX_CONDITION:
            raise FilterError(f"request.condition: longer than {MAX_CONDITION} characters")
        if condition_compiler is None:
            raise FilterError("request.condition: condition filters are not available in this build "
                              "(the condition language is not installed); use the other filters")
        try:
            condition = condition_compiler(text)
        except FilterError:
            raise
        except Exception as e:  # the compiler's own error types carry a clear message
            raise FilterError(f"request.condition: {e}") from None
    return AlertFilter(max_priority=max_priority, rules=frozenset(req.rules), tags=frozenset(req.tags),
                       sources=frozenset(req.sources), hostnames=frozenset(req.hostnames),
                       condition=condition, condition_text=text)

"""A rule's event-type set (libsinsp `filter/ppm_codes.cpp`, spec §4.2).

    codes = event_codes(tree)                 # the derived set, for LOAD_NO_EVTTYPE (> 100 codes)
    index = rule_event_codes(tree, source)    # what the ruleset indexes the rule under

Works on the expanded tree. Negation is pushed to the leaves (De Morgan: inside an odd number of
`not`s `and` unions and `or` intersects), and each leaf gives a set:
- `evt.type` / `syscall.type` (no argument) with `=`, `==`, `in` or `!=`: the codes of the named
  values, complemented once inside a negation and once more for `!=` (`not evt.type != x` is {x});
- `evt.type exists`: every code (negated: none);
- anything else is neutral: every code, negated or not.

A name matches every code whose event has that name (both directions, every version); a syscall
without a dedicated event matches the generic codes (libs `names_to_event_set`).

`evt.num` folding is a Falco master feature (not 0.44, whose engine Tiercel matches): with
`evtnum_folding=True`, `evt.num = 0`, `evt.num < 1`, `evt.num <= 0`, `evt.num in (0, ...)` are
empty and `evt.num != 0`, `evt.num > 0`, `evt.num >= 1` every code. Off by default.

Syscall rules are also indexed under `asyncevent`; other sources only under pluginevent and
asyncevent (`rule_event_codes`).
"""

from __future__ import annotations

from functools import lru_cache

from tiercel.common import eventtable as et
from tiercel.rules.condition.nodes import (
    AndExpr,
    BinaryCheck,
    FieldExpr,
    ListValue,
    Node,
    NotExpr,
    OrExpr,
    UnaryCheck,
    Value,
)

TYPE_FIELDS = ("evt.type", "syscall.type")
_TYPE_OPS = ("=", "==", "in", "!=")


@lru_cache(maxsize=1)
def all_codes() -> frozenset[int]:
    """Every event code of the table (unused placeholders excluded)."""
    return frozenset(e.code for e in et.EVENTS if not e.unused)


@lru_cache(maxsize=1)
def _names() -> dict[str, frozenset[int]]:
    by_name: dict[str, set[int]] = {}
    for e in et.EVENTS:
        if not e.unused:
            by_name.setdefault(e.name, set()).add(e.code)
    out = {k: frozenset(v) for k, v in by_name.items()}
    generic = frozenset({et.PPME_GENERIC_E, et.PPME_GENERIC_X})
    for sc in et.SYSCALL_IDS.values():
        if sc != "unknown" and sc not in out:
            out[sc] = generic
    return out


def codes_for_name(name: str) -> frozenset[int]:
    """The codes `evt.type = name` matches; empty for names that are no event type."""
    return _names().get(name, frozenset())


def is_event_type(name: str) -> bool:
    return name in _names()


def event_type_names() -> frozenset[str]:
    return frozenset(_names())


def event_names(codes: frozenset[int] | None, source: str = "syscall") -> list[str]:
    """The event names of a code set, as `falco -L` lists them: sorted, `asyncevent` always in
    (None: every event type)."""
    if codes is None:
        codes = all_codes()
    names = {e.name for c in codes if (e := et.info(c)) is not None}
    if source != "syscall":
        names.add("pluginevent")
    names.add("asyncevent")
    return sorted(names)


def _evt_type_of_code(code: int):
    from tiercel.rules.fields.catalog import VARIES

    if code == et.PPME_GENERIC_E or code == et.PPME_GENERIC_X:
        return VARIES  # the syscall id parameter names it
    info = et.info(code)
    return info.name if info is not None else None


def _evt_dir_of_code(code: int) -> str:
    return ">" if code & 1 == 0 else "<"


# The compiler knows what the event code fixes for these fields, as libsinsp does for evt.type,
# whatever their extractor (a field's own `per_code` wins).
BUILTIN_PER_CODE = {"evt.type": _evt_type_of_code, "evt.dir": _evt_dir_of_code}


def per_code_of(field) -> object:
    """The per-code value function of a catalog field, or None."""
    if field.per_code is not None:
        return field.per_code
    if field.source == "syscall":
        return BUILTIN_PER_CODE.get(field.name)
    return None


def event_codes(tree: Node, evtnum_folding: bool = False) -> frozenset[int]:
    """The set of event codes a condition can match (§4.2)."""
    return _codes(tree, False, evtnum_folding)


def rule_event_codes(tree: Node, source: str, evtnum_folding: bool = False) -> frozenset[int]:
    """The codes the ruleset indexes a rule under (asyncevent added; plugin sources fixed)."""
    if source != "syscall":
        return frozenset({et.PPME_PLUGINEVENT_E, et.PPME_ASYNCEVENT_E})
    return event_codes(tree, evtnum_folding) | {et.PPME_ASYNCEVENT_E}


def _codes(n: Node, negated: bool, folding: bool) -> frozenset[int]:
    if isinstance(n, AndExpr):  # and, or
        union = isinstance(n, OrExpr) != negated
        acc = None
        for c in n.children:
            s = _codes(c, negated, folding)
            acc = s if acc is None else (acc | s if union else acc & s)
        return acc if acc is not None else all_codes()
    if isinstance(n, NotExpr):
        return _codes(n.child, not negated, folding)
    if isinstance(n, (BinaryCheck, UnaryCheck)):
        f = n.left
        if not isinstance(f, FieldExpr) or f.arg is not None:
            return all_codes()
        if f.name in TYPE_FIELDS:
            if isinstance(n, UnaryCheck):
                return frozenset() if negated else all_codes()
            if n.op not in _TYPE_OPS or n.modifier is not None:
                return all_codes()
            r = n.right
            if isinstance(r, ListValue):
                values = r.values
            elif isinstance(r, Value):
                values = (r.value,)
            else:
                return all_codes()
            s: frozenset[int] = frozenset().union(*(codes_for_name(v) for v in values))
            if negated != (n.op == "!="):
                s = all_codes() - s
            return s
        if folding and f.name == "evt.num" and isinstance(n, BinaryCheck):
            known = _evtnum(n)
            if known is not None:
                return known if not negated else all_codes() - known
        return all_codes()
    return all_codes()


def _evtnum(n: BinaryCheck) -> frozenset[int] | None:
    """Master's folding of evt.num checks that are always false (empty) or always true (all)."""
    r = n.right
    if n.op == "in" and isinstance(r, ListValue):
        return frozenset() if "0" in r.values else None
    if not isinstance(r, Value):
        return None
    empty = {("=", "0"), ("==", "0"), ("<", "1"), ("<=", "0"), ("in", "0")}
    full = {("!=", "0"), (">", "0"), (">=", "1")}
    if (n.op, r.value) in empty:
        return frozenset()
    if (n.op, r.value) in full:
        return all_codes()
    return None

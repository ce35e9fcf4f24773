"""Build the evaluator of a ruleset's conditions for one source.

    ev = build_evaluator("syscall", [(rule_id, tree_or_checked, event_codes), ...], matching="first")
    ev(evt)            # -> sequence of rule ids matching the event, in rule order
    ev.evaluate(evt)   # the same, without the method call (hot loops)
    print(ev.source_code)

Rules are given in evaluation order (Falco: rule index order). `event_codes` is the set the rule
is indexed under (`evttypes.rule_event_codes`), computed when None. Dispatch is on `evt.code`: the
rules indexed under that code run in order; under `matching="first"` the first match wins (a
one-element tuple), under `"all"` every match is returned (a list). Events whose code no rule is
indexed under cost one dict lookup.

An exception raised while evaluating an event (a broken extractor, a malformed event) never
escapes: the event matches nothing, `ev.errors` counts it and `ev.last_error` keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tiercel.common import eventtable as et
from tiercel.rules.condition import codegen, ir
from tiercel.rules.condition.checker import Checked, check
from tiercel.rules.condition.evttypes import rule_event_codes
from tiercel.rules.condition.nodes import Node
from tiercel.rules.condition.printer import to_string

MATCHING = ("first", "all")


class Evaluator:
    """The compiled conditions of one source. Call it with an event."""

    def __init__(self, source: str, matching: str, rule_ids: list[Any], source_code: str,
                 namespace: dict[str, Any], table: dict[int, Any]):
        self.source = source
        self.matching = matching
        self.rule_ids = rule_ids
        self.source_code = source_code
        self.namespace = namespace
        self.table = table  # event code -> generated function
        self.errors = 0
        self.last_error: BaseException | None = None
        self.evaluate = namespace["evaluate"]
        namespace["_on_error"] = self._on_error

    def __call__(self, evt: Any) -> Sequence[Any]:
        return self.evaluate(evt)

    def _on_error(self, e: BaseException) -> tuple:
        self.errors += 1
        self.last_error = e
        return ()

    def functions(self) -> dict[int, str]:
        """Event code -> name of the generated function serving it."""
        return {code: fn.__name__ for code, fn in self.table.items()}


def build_evaluator(source: str, rules: Iterable[tuple[Any, Node | Checked, Iterable[int] | None]],
                    matching: str = "first", *, fold: bool = True) -> Evaluator:
    """Type-check (when given trees), generate and compile the evaluator. Raises CompileError."""
    if matching not in MATCHING:
        raise ValueError(f"rule_matching must be one of {', '.join(MATCHING)}, not {matching!r}")
    ids: list[Any] = []
    checked: list[Checked] = []
    codes: list[frozenset[int]] = []
    for rid, cond, evcodes in rules:
        c = cond if isinstance(cond, Checked) else check(cond, source)
        ids.append(rid)
        checked.append(c)
        codes.append(frozenset(evcodes) if evcodes is not None else rule_event_codes(c.tree, source))

    gen = codegen.Generator()
    by_code: dict[int, list[int]] = {}
    for i, cs in enumerate(codes):
        for code in cs:
            by_code.setdefault(code, []).append(i)

    folder = codegen.Folder(gen)
    per_rule_fields = [codegen.foldable_fields(c.pred) if fold else [] for c in checked]
    fold_cache: dict[tuple, ir.Pred] = {}

    groups: dict[tuple, list[int]] = {}
    group_rules: dict[tuple, list[tuple[int, ir.Pred]]] = {}
    for code in sorted(by_code):
        folded: list[tuple[int, ir.Pred]] = []
        for i in by_code[code]:
            fs = per_rule_fields[i]
            values = codegen.per_code_values(fs, code) if fs else {}
            sig = (i, tuple(values[id(f)] for f in fs))
            p = fold_cache.get(sig)
            if p is None:
                p = fold_cache[sig] = folder.fold(checked[i].pred, values) if fold else checked[i].pred
            if p is ir.FALSE:
                continue
            folded.append((i, p))
            if p is ir.TRUE and matching == "first":
                break
        if not folded:
            continue
        key = tuple((i, id(p)) for i, p in folded)  # a fold is one object per (rule, values): ids suffice, hashing p.key costs its size
        groups.setdefault(key, []).append(code)
        group_rules[key] = folded

    header = [f"# Tiercel generated evaluator: source {source!r}, rule_matching {matching!r}, "
              f"{len(ids)} rules, {len(groups)} functions."]
    for i, rid in enumerate(ids):
        gen.globals[f"_r{i}"] = (rid,) if matching == "first" else rid
        header.append(f"# _r{i}: {_comment(rid)}")
    gen.chunks.append("\n".join(header))

    table_src = []
    notes: dict[str, str] = {}
    for n, (key, group_codes) in enumerate(groups.items()):
        fname = f"_e{n}"
        names = sorted({_code_name(c) for c in group_codes})
        doc = f"codes {', '.join(map(str, group_codes))} ({', '.join(names)})"
        _emit_function(gen, fname, [(f"_r{i}", ids[i], checked[i], p) for i, p in group_rules[key]],
                       matching, _comment(doc, 300), notes)
        table_src.extend(f"    {c}: {fname}," for c in group_codes)

    gen.chunks.append("_table = {\n" + "\n".join(table_src) + "\n}")
    gen.chunks.append(
        "def evaluate(evt, _get=_table.get):\n"
        "    f = _get(evt.code)\n"
        "    if f is None:\n"
        "        return ()\n"
        "    try:\n"
        "        return f(evt)\n"
        "    except Exception as e:  # a broken extractor or event must not stop the stream\n"
        "        return _on_error(e)")
    gen.globals["_on_error"] = None  # replaced by the Evaluator
    ns = gen.compile(f"<tiercel-rules:{source}>")
    return Evaluator(source, matching, ids, gen.source(), ns, ns["_table"])


def _emit_function(gen: codegen.Generator, fname: str, rules: list[tuple[str, Any, Checked, ir.Pred]],
                   matching: str, doc: str | None, notes: dict[str, str] | None = None) -> None:
    """One function evaluating `rules` ((result global, id, checked, folded predicate)) in order.
    `notes` caches each rule's comment line across the functions of one module (printing a
    condition costs as much as compiling it)."""
    notes = {} if notes is None else notes
    fg = codegen.FunctionGen(gen, codegen.repeated_preds([p for *_, p in rules]))
    body = [] if matching == "first" else ["    _o = []"]
    d: frozenset = frozenset()
    for rname, rid, c, p in rules:
        note = notes.get(rname)
        if note is None:
            note = notes[rname] = f"    # rule {_comment(rid)}: {_comment(to_string(c.tree), 160)}"
        body.append(note)
        code, d, _ = fg.pred(p, d)
        if p is ir.TRUE:
            body.append(f"    return {rname}" if matching == "first" else f"    _o.append({rname})")
            if matching == "first":
                break
            continue
        body.append(f"    if {code}:")
        body.append(f"        return {rname}" if matching == "first" else f"        _o.append({rname})")
    else:
        body.append("    return ()" if matching == "first" else "    return _o")
    gen.chunks.append(fg.render(fname, body, doc))


def generate_evaluator(rules: Sequence[tuple[Any, Checked]], first: bool = True, code: int | None = None,
                       source: str | None = None) -> Any:
    """One generated function for a list of (rule object, checked condition) in order, returning
    the matching rule objects (a tuple of at most one under `first`, else a list). With `code`,
    checks on per-code fields are folded for that event code. Prefer `build_evaluator` (one
    module and one dispatch for a whole source); this serves callers that dispatch themselves.
    Exceptions propagate to the caller."""
    matching = "first" if first else "all"
    gen = codegen.Generator()
    folder = codegen.Folder(gen)
    items = []
    for i, (obj, c) in enumerate(rules):
        fs = codegen.foldable_fields(c.pred) if code is not None else []
        p = folder.fold(c.pred, codegen.per_code_values(fs, code) if fs else {})
        if p is ir.FALSE:
            continue
        gen.globals[f"_r{i}"] = (obj,) if first else obj
        items.append((f"_r{i}", getattr(obj, "name", obj), c, p))
    if not items:
        return lambda evt: ()
    _emit_function(gen, "_evaluate", items, matching, f"code {code}" if code is not None else None)
    ns = gen.compile(f"<tiercel-rules:{source or ''}:{code}>")
    fn = ns["_evaluate"]
    fn.source_code = gen.source()
    return fn


def _comment(x: Any, limit: int = 120) -> str:
    s = str(x).replace("\n", " ").replace("\r", " ")
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _code_name(code: int) -> str:
    info = et.info(code)
    return info.name if info is not None else str(code)

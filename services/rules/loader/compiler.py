"""The compiler stage (Falco's rule_loader::compiler): collected lists, macros and rules -> the
compiled rules an engine indexes and evaluates.

Order, as Falco: lists (one-level expansion with visibility), every macro parsed after list
substitution then resolved against the macros it can see, then each rule in index order: exception
clauses into the condition, the output checked before the condition, the condition substituted,
parsed, macro-expanded and compiled against the source's fields. Unused macros and lists are
warned about last. The condition language itself (parser, expansion, type checks, event types,
output formats) is `tiercel.rules.condition`'s; this module only drives it and maps its errors to
Falco's load-result codes and contexts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiercel.rules.loader import results as R
from tiercel.rules.loader.collector import LIST_OPERATORS, Collector, split_comp
from tiercel.rules.loader.model import ExceptionInfo, RuleInfo
from tiercel.rules.loader.results import Context, LoadError, LoadResult

CONTAINER_INFO = "%container.info"
DEPRECATED_OUTPUT_FIELDS = ("evt.dir", "evt.latency", "evt.latency.s", "evt.latency.ns", "evt.latency.human",
                            "evt.wait_latency")
NO_EVTTYPE_LIMIT = 100


@dataclass
class CompiledRule:
    """One rule ready for a ruleset: its info, the expanded condition AST, the checked filter and
    output format (objects of tiercel.rules.condition), and what `-L` describes."""

    info: RuleInfo
    condition: str  # the condition text after exceptions were added (before list substitution)
    ast: Any
    filter: Any
    output: str
    format: Any
    evttypes: frozenset[int] | None  # event codes; None = every code
    exception_fields: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class Compiled:
    rules: list[CompiledRule]
    lists: dict[str, list[str]]
    macros: dict[str, Any]
    required_engine_version: tuple[int, int, int] | None
    plugin_versions: list = field(default_factory=list)


def quote_item(e: str) -> str:
    """Falco's quote_item: wrap in double quotes when it holds a space and is not quoted yet."""
    if " " in e and not (e.startswith('"') or e.startswith("'")):
        return '"' + e + '"'
    return e


def paren_item(e: str) -> str:
    return e if e.startswith("(") else "(" + e + ")"


def build_exceptions(cond: str, exceptions: list[ExceptionInfo], fields_out: set[str]) -> str:
    """Falco's build_rule_exception_infos: the exception clauses as text after the condition."""
    cond = "(" + cond + ")"
    for ex in exceptions:
        if not ex.fields.is_list:
            icond = ""
            for val in ex.values:
                if val.is_list:
                    raise LoadError("LOAD_ERR_VALIDATE", "Expected values array to contain a list of strings", ex.ctx)
                icond += ("(" + ex.fields.item + " " + ex.comps.item + " (") if not icond else ", "
                fields_out.add(ex.fields.item)
                icond += quote_item(val.item)
            icond += "))" if icond else ""
        else:
            icond = "("
            for values in ex.values:
                if not values.is_list or len(ex.fields.items) != len(values.items):
                    raise LoadError("LOAD_ERR_VALIDATE", "Fields and values lists must have equal length", ex.ctx)
                icond += "" if icond == "(" else " or "
                icond += "("
                for k, fld in enumerate(ex.fields.items):
                    icond += "" if k == 0 else " and "
                    v = values.items[k]
                    comp = ex.comps.items[k].item
                    if v.is_list:
                        istr = "(" + ", ".join(quote_item(x.item) for x in v.items) + ")"
                    else:
                        sc = split_comp(comp)
                        is_list_op = sc is not None and (sc[0] in LIST_OPERATORS or sc[1] is not None)
                        istr = paren_item(v.item) if is_list_op else quote_item(v.item)
                    icond += " " + fld.item + " " + comp + " " + istr
                    fields_out.add(fld.item)
                icond += ")"
            icond += ")"
            if icond == "()":
                icond = ""
        if icond:
            cond += " and not " + icond
    return cond


def compile_lists(col: Collector) -> dict[str, list[str]]:
    """One-level list expansion: an item naming a list defined before this list's latest change is
    replaced by that list's items as written. Referenced lists are marked used."""
    out: dict[str, list[str]] = {}
    for lst in col.lists.values():
        lst.used = False
    for lst in col.lists.values():
        items: list[str] = []
        for item in lst.items:
            ref = col.lists.get(item)
            if ref is not None and ref.index < lst.visibility:
                ref.used = True
                items.extend(quote_item(v) for v in ref.items)
            else:
                items.append(quote_item(item))
        out[lst.name] = items
    return out


def field_ok(source: str, expr: str) -> bool:
    """Is `expr` a valid left-hand side for `source` (an exception field)? Transformer forms are
    accepted when `<expr> exists` compiles."""
    from tiercel.rules import condition as C

    try:
        if "(" in expr:
            _stage(C, "check_condition")(C.parse(expr + " exists"), source)
            return True
        return _stage(C, "is_field")(expr, source)
    except (C.ConditionError, LoadError):
        return False


def _expr_ctx(parent: Context | None, text: str, err: Any) -> Context:
    parent = parent or Context()
    p = err.position
    return parent.expression(text, p.offset, p.line, p.col)


class CompileCache:
    """What a load sequence compiled already, for the next files of the same sequence: Falco
    recompiles everything collected after each file, and most of it is unchanged. Keys are the
    inputs themselves (condition text; the expanded tree with that text; output and source), so a
    hit is exactly what compiling again would give. Failures are never cached."""

    def __init__(self) -> None:
        self.parsed: dict[str, Any] = {}
        self.checked: dict[tuple, Any] = {}
        self.outputs: dict[tuple[str, str], Any] = {}

    def parse(self, C: Any, text: str) -> Any:
        tree = self.parsed.get(text)
        if tree is None:
            tree = self.parsed[text] = C.parse(text)
        return tree

    def check(self, C: Any, tree: Any, source: str, text: str) -> Any:
        key = (source, text, tree)
        checked = self.checked.get(key)
        if checked is None:
            checked = self.checked[key] = _stage(C, "check_condition")(tree, source)
        return checked

    def output(self, C: Any, output: str, source: str) -> Any:
        fmt = self.outputs.get((output, source))
        if fmt is None:
            fmt = self.outputs[(output, source)] = _stage(C, "compile_output")(output, source)
        return fmt


def compile_all(col: Collector, res: LoadResult, cache: CompileCache | None = None) -> Compiled:
    from tiercel.rules import condition as C

    cache = cache if cache is not None else CompileCache()

    lists = compile_lists(col)
    list_used: set[str] = set()

    def substitute(text: str) -> str:
        out, used = C.substitute_lists(text, lists.items())
        list_used.update(used)
        return out

    # Macros: parse every one (after list substitution), then resolve with visibility.
    parsed: dict[str, Any] = {}
    for m in col.macros.values():
        m.used = False
        text = substitute(m.cond)
        try:
            parsed[m.name] = cache.parse(C, text)
        except C.ParseError as e:
            raise LoadError("LOAD_ERR_COMPILE_CONDITION", e.message, _expr_ctx(m.cond_ctx, text, e)) from None
    macro_used: set[str] = set()
    resolved: dict[str, Any] = {}
    for m in col.macros.values():
        visible = {n: resolved.get(n, parsed[n]) for n, o in col.macros.items() if o.index < m.visibility}
        try:
            ast, used = C.expand_macros(parsed[m.name], visible.get)
        except C.MacroError as e:
            raise LoadError("LOAD_ERR_VALIDATE", e.message,
                            _expr_ctx(m.cond_ctx, substitute(m.cond), e)) from None
        macro_used.update(used)
        resolved[m.name] = ast

    rules: list[CompiledRule] = []
    for r in col.rules.values():
        if r.unknown_source:
            continue
        cr = _compile_rule(C, r, resolved, substitute, macro_used, res, cache)
        if cr is not None:
            rules.append(cr)

    for m in col.macros.values():
        if m.name not in macro_used:
            res.warn("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro", m.ctx)
    for lst in col.lists.values():
        if not lst.used and lst.name not in list_used:
            res.warn("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro", lst.ctx)
    ev = col.engine_version.version if col.engine_version else None
    return Compiled(rules, lists, resolved, ev, list(col.plugin_versions))


def _compile_rule(C: Any, r: RuleInfo, macros: dict[str, Any], substitute, macro_used: set[str],
                  res: LoadResult, cache: CompileCache) -> CompiledRule | None:
    exception_fields: set[str] = set()
    cond = r.cond
    if r.exceptions:
        cond = build_exceptions(cond, r.exceptions, exception_fields)

    output = r.output
    if CONTAINER_INFO in output:
        res.warn("LOAD_DEPRECATED_ITEM", "%container.info is deprecated and no more useful, and will be removed "
                 "in the future.", r.ctx)
        output = output.replace(CONTAINER_INFO, "")
    try:
        fmt = cache.output(C, output, r.source)
    except C.ConditionError as e:
        if e.is_unknown and r.skip_if_unknown_filter:
            res.warn(R.LOAD_UNKNOWN_FILTER, e.message, r.output_ctx or r.ctx)
            return None
        raise LoadError("LOAD_ERR_COMPILE_OUTPUT", e.message, r.output_ctx or r.ctx) from None
    for f in DEPRECATED_OUTPUT_FIELDS:
        if "%" + f in output and _deprecated_token(output, f):
            res.warn("LOAD_DEPRECATED_ITEM", f"Used deprecated item: field '{f}'", r.ctx, deprecated_field=f)

    text = substitute(cond)
    try:
        ast = cache.parse(C, text)
    except C.ParseError as e:
        raise LoadError("LOAD_ERR_COMPILE_CONDITION", e.message, _expr_ctx(r.cond_ctx, text, e)) from None
    try:
        ast, used = C.expand_macros(ast, macros.get)
    except C.MacroError as e:
        raise LoadError("LOAD_ERR_VALIDATE", e.message, _expr_ctx(r.cond_ctx, text, e)) from None
    macro_used.update(used)
    try:
        checked = cache.check(C, ast, r.source, text)
    except C.ConditionError as e:
        if e.is_unknown and r.skip_if_unknown_filter:
            res.warn(R.LOAD_UNKNOWN_FILTER, e.message, r.cond_ctx or r.ctx)
            return None
        raise LoadError("LOAD_ERR_COMPILE_CONDITION", e.message, _expr_ctx(r.cond_ctx, text, e)) from None
    for w in getattr(checked, "warnings", ()):
        code = getattr(w, "code", "LOAD_COMPILE_CONDITION")
        dep = getattr(w, "deprecated_field", None)
        wctx = r.cond_ctx or r.ctx
        if getattr(w, "position", None) is not None:
            wctx = _expr_ctx(r.cond_ctx, text, w)
        res.warn(code, getattr(w, "message", str(w)), wctx, deprecated_field=dep)
    evttypes = checked.evttypes
    if r.source == "syscall" and r.warn_evttypes and evttypes is not None and len(evttypes) > NO_EVTTYPE_LIMIT:
        res.warn("LOAD_NO_EVTTYPE", "Rule matches too many evt.type values. This has a significant performance "
                 "penalty.", r.ctx)
    return CompiledRule(r, cond, ast, checked, output, fmt, evttypes, exception_fields)


def _stage(C: Any, name: str):
    """A stage of tiercel.rules.condition; LoadError naming it while it is not there yet."""
    fn = getattr(C, name, None)
    if fn is None:
        raise LoadError("LOAD_ERR_COMPILE_CONDITION", f"tiercel.rules.condition.{name} is not available",
                        Context())
    return fn


def _deprecated_token(output: str, f: str) -> bool:
    """`%evt.dir` is deprecated but `%evt.dirx` is another token; check the character after."""
    i = output.find("%" + f)
    while i >= 0:
        j = i + 1 + len(f)
        if j >= len(output) or not (output[j].isalnum() or output[j] in "._"):
            return True
        i = output.find("%" + f, j)
    return False

"""Python source generation for checked conditions (the compiler back end).

`Generator` writes one Python module per evaluator: one function per group of event codes that
share the same candidate rules, each evaluating those rules in order. Inside a function:

- every field value and every transformer result is a local computed **at most once** per event,
  on first use (`(v3 := extract(evt))`), and reused afterwards;
- every predicate that occurs more than once in the function (a macro shared by several rules, a
  repeated check) is a local computed at most once too (`m2`);
- a small definite-assignment analysis decides per use whether the local is certainly set
  (plain `v3`), certainly unset (`(v3 := ...)`) or maybe set (`(v3 if v3 is not _U else (v3 :=
  ...))`, the local starting as the `_U` sentinel), so the common paths pay nothing;
- short-circuit `and`/`or`/`not` are Python's own, in Falco's left-to-right order;
- a missing value is None and every test on it is false (`v is not None and ...`, or tests that
  are false on None by themselves: `v == 'x'`, `v in S`); since a true check implies its value is
  present, later operands of the same `and` skip the None test;
- constants are module globals prepared once: frozensets, compiled glob/regex matchers, the pmatch
  matcher, IP addresses and networks;
- checks on fields whose value the event code determines (`Field.per_code`, e.g. `evt.type`) are
  evaluated at build time for each code (`fold`), so `evt.type in (open, openat)` costs nothing in
  the function that serves `openat`.

Python's parser limits nesting, so predicates nested deeper than `MAX_NEST` move into helper
functions of their own (they do not share locals with the caller).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tiercel.rules.condition import ir
from tiercel.rules.condition import runtime as rt
from tiercel.rules.condition.evttypes import per_code_of
from tiercel.rules.fields.catalog import IPNET, VARIES, Field

MAX_NEST = 40

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "_U", "__slots__": ()})()

_BASE_GLOBALS: dict[str, Any] = {
    "_UNSET": UNSET, "_lower": rt.ascii_lower, "_upper": rt.ascii_upper, "_b64": rt.b64,
    "_basename": rt.basename, "_strlen": rt.strlen, "_join": rt.join, "_getopt": rt.getopt,
    "_innet": rt.in_network, "_present": rt.present, "_inany": rt.in_any_network, "_glob": rt.glob_regex,
}

# Predicates worth a memo local when repeated: anything but a cheap check.
_CHEAP_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists", "contains",
                        "startswith", "endswith", "bcontains", "bstartswith"})


def _literal(v: Any) -> str | None:
    """A Python literal for simple constants, None when the value needs a global."""
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    return None


class Generator:
    """Collects the module: globals (constants, extractors) and function sources."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = dict(_BASE_GLOBALS)
        self._const_names: dict[Any, str] = {}
        self._extractors: dict[int, str] = {}
        self.chunks: list[str] = []
        self._n = 0

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any, key: Any = None) -> str:
        """A module global holding `value` (deduplicated by `key` when given)."""
        if key is not None:
            name = self._const_names.get(key)
            if name is not None:
                return name
        name = self.fresh("_k")
        self.globals[name] = value
        if key is not None:
            self._const_names[key] = name
        return name

    def value(self, v: Any) -> str:
        lit = _literal(v)
        return lit if lit is not None else self.const(v)

    def extractor(self, f: Field) -> str:
        name = self._extractors.get(id(f))
        if name is None:
            name = self._extractors[id(f)] = self.fresh("_x")
            self.globals[name] = f.extract
        return name

    def add_inline_globals(self, f: Field) -> None:
        for k, v in (f.inline_globals or {}).items():
            if k in self.globals and self.globals[k] is not v:
                raise ValueError(f"field {f.name}: inline global {k!r} clashes with another definition")
            self.globals[k] = v

    def source(self) -> str:
        return "\n\n".join(self.chunks) + "\n"

    def compile(self, filename: str = "<tiercel-rules>") -> dict[str, Any]:
        ns = dict(self.globals)
        exec(compile(self.source(), filename, "exec"), ns)  # noqa: S102 - our own generated code
        return ns


class FunctionGen:
    """Generates one function evaluating a sequence of predicates with shared locals."""

    def __init__(self, gen: Generator, repeated: set | None = None):
        self.gen = gen
        self.vars: dict[tuple, str] = {}
        self.possible: set[str] = set()
        self.need_init: set[str] = set()
        self.repeated = repeated or set()
        self.memo: dict[tuple, str] = {}

    # -- locals --------------------------------------------------------------------------------
    def _var(self, key: tuple, prefix: str) -> str:
        name = self.vars.get(key)
        if name is None:
            name = self.vars[key] = f"{prefix}{len(self.vars) + 1}"
        return name

    def _bind(self, name: str, producer, d: frozenset) -> tuple[str, frozenset]:
        """Reference local `name`, computed by `producer(d) -> (code, d_after)` when unset."""
        if name in d:
            return name, d
        if name not in self.possible:
            code, d2 = producer(d)
            self.possible.add(name)
            return f"({name} := {code})", d2 | {name}
        self.need_init.add(name)
        code, _ = producer(d)
        return f"({name} if {name} is not _U else ({name} := {code}))", d | {name}

    def value_ref(self, e: ir.Expr, d: frozenset) -> tuple[str, str, frozenset]:
        """(code evaluating and binding the value, the local's name, definitely-set locals after)."""
        name = self._var(e.key, "v")
        code, d2 = self._bind(name, lambda dd: self._producer(e, dd), d)
        return code, name, d2

    def _producer(self, e: ir.Expr, d: frozenset) -> tuple[str, frozenset]:
        g = self.gen
        if isinstance(e, ir.FieldVal):
            f = e.field
            argcode = g.value(e.arg) if _literal(e.arg) is not None or e.arg is None else g.const(e.arg)
            if f.inline:
                g.add_inline_globals(f)
                code = "(" + f.inline.format(evt="evt", arg=argcode) + ")"
            else:
                code = f"{g.extractor(f)}(evt, {argcode})"
            if e.is_list or e.existential:
                code = f"({code} or None)"
            return code, d
        assert isinstance(e, ir.TransformVal)
        name = e.name
        if name in ("tolower", "toupper", "b64", "basename", "len"):
            fn = {"tolower": "_lower", "toupper": "_upper", "b64": "_b64", "basename": "_basename",
                  "len": "_strlen"}[name]
            inner = e.args[0]
            first, nm, d2 = self.value_ref(inner, d)
            if inner.is_list and name != "len":
                body = f"[_t for _t in map({fn}, {nm}) if _t is not None] or None" if name == "b64" \
                    else f"list(map({fn}, {nm}))"
            else:
                body = f"{fn}({nm})"
            return f"(None if {first} is None else {body})", d2
        if name == "join":
            sep = g.value(e.args[0].value)
            first, nm, d2 = self._list_arg(e.args[1], d)
            return f"(None if {first} is None else _join({sep}, {nm}))", d2
        if name == "concat":
            firsts, names = [], []
            for a in e.args:
                if isinstance(a, ir.Const):
                    names.append(g.value(a.value))
                else:
                    f1, n1, d = self._list_arg(a, d) if isinstance(a, ir.ListArg) else self.value_ref(a, d)
                    firsts.append(f1)
                    names.append(f"_join('', {n1})" if isinstance(a, ir.ListArg) else n1)
            body = " + ".join(names) if names else "''"
            if not firsts:
                return f"({body})", d
            return f"(None if None in ({', '.join(firsts)},) else {body})", d
        if name == "getopt":
            first, nm, d2 = self.value_ref(e.args[0], d)
            return (f"(None if {first} is None else _getopt({nm}, {g.value(e.args[1].value)}, "
                    f"{g.value(e.arg)}))"), d2
        raise AssertionError(name)

    def _list_arg(self, a: Any, d: frozenset) -> tuple[str, str, frozenset]:
        """A `(...)` transformer argument: a list value of its items (missing items dropped)."""
        if isinstance(a, ir.Expr):
            return self.value_ref(a, d)
        parts = []
        for x in a.items:
            if isinstance(x, ir.Const):
                parts.append(self.gen.value(x.value))
            else:
                f1, n1, d = self.value_ref(x, d)
                parts.append(f1)
        code = f"_present(({', '.join(parts)},))"
        tmp = self._var(("tmp", a.key), "v")
        self.possible.add(tmp)
        return f"({tmp} := {code})", tmp, d | {tmp}

    # -- predicates ----------------------------------------------------------------------------
    # A state is a frozenset of the locals certainly set, plus "!name" for locals certainly not
    # None. pred() returns (code, state after it whatever its value, state when it is true).
    def pred(self, p: ir.Pred, d: frozenset, nest: int = 0) -> tuple[str, frozenset, frozenset]:
        if nest > MAX_NEST and not isinstance(p, (ir.ConstP, ir.CheckP)):
            return self._subfunction(p), d, d
        if p.key in self.repeated:
            name = self.memo.get(p.key)
            if name is None:
                name = self.memo[p.key] = f"m{len(self.memo) + 1}"
            if name in d:
                return name, d, d
            if name not in self.possible:
                code, d_any, d_true = self._pred_body(p, d, nest)
                self.possible.add(name)
                return f"({name} := {code})", d_any | {name}, d_true | {name}
            self.need_init.add(name)
            code, _, _ = self._pred_body(p, d, nest)
            d2 = d | {name}
            return f"({name} if {name} is not _U else ({name} := {code}))", d2, d2
        return self._pred_body(p, d, nest)

    def _pred_body(self, p: ir.Pred, d: frozenset, nest: int) -> tuple[str, frozenset, frozenset]:
        if isinstance(p, ir.ConstP):
            return ("True" if p.value else "False"), d, d
        if isinstance(p, ir.OrP):
            codes = []
            cur = d
            first_any = None
            for c in p.children:
                code, c_any, _ = self.pred(c, cur, nest + 1)
                if first_any is None:
                    first_any = c_any
                cur = c_any  # the next operand runs when this one was false: only its assignments
                codes.append(code)
            return "(" + " or ".join(codes) + ")", first_any, first_any
        if isinstance(p, ir.AndP):
            codes = []
            cur = d
            first_any = None
            for c in p.children:
                code, c_any, c_true = self.pred(c, cur, nest + 1)
                if first_any is None:
                    first_any = c_any
                cur = c_true  # the next operand runs when this one was true
                codes.append(code)
            return "(" + " and ".join(codes) + ")", first_any, cur
        if isinstance(p, ir.NotP):
            code, d2, _ = self.pred(p.child, d, nest + 1)
            return f"(not {code})", d2, d2
        assert isinstance(p, ir.CheckP)
        return self.check(p, d)

    def _subfunction(self, p: ir.Pred) -> str:
        name = self.gen.fresh("_s")
        sub = FunctionGen(self.gen)
        code, _, _ = sub.pred(p, frozenset(), 0)
        self.gen.chunks.append(sub.render(name, [f"    return {code}"]))
        return f"{name}(evt)"

    def render(self, name: str, body: list[str], doc: str | None = None) -> str:
        head = [f"def {name}(evt, _U=_UNSET):"]
        if doc:
            head.append(f"    {doc!r}")
        if self.need_init:
            head.append("    " + " = ".join(sorted(self.need_init, key=_natural)) + " = _U")
        return "\n".join(head + body)

    # -- checks --------------------------------------------------------------------------------
    def check(self, c: ir.CheckP, d: frozenset) -> tuple[str, frozenset, frozenset]:
        """Every check is false on a missing value, so when it is true its operands are present."""
        lf, ln, d1 = self.value_ref(c.lhs, d)
        known = "!" + ln in d
        if c.kind == "expr":
            rf, rn, _ = self.value_ref(c.rhs, d1)
            rknown = "!" + rn in d1
            present = " and ".join([x for x in (None if known else f"{lf} is not None",
                                                None if rknown else f"{rf} is not None") if x] + [""])
            if c.lhs.existential:
                test = self._pair_test(c, "_a", rn)
                code = f"({present}any({test} for _a in {ln}))"
            else:
                code = f"({present}{self._pair_test(c, ln, rn)})"
            return code, d1, d1 | {"!" + ln, rn, "!" + rn}
        return self.check_on(c, lf, ln, known), d1, d1 | {"!" + ln}

    def check_on(self, c: ir.CheckP, first: str, x: str, known: bool = False) -> str:
        """The test of check `c` on the value bound as `first` (code) / `x` (name); `known`: the
        value is certainly present."""
        lhs = c.lhs
        present = "" if known else f"{first} is not None and "
        if c.op == "exists":
            return "True" if known else f"({first} is not None)"
        if lhs.is_list and c.modifier is None and c.op in ("in", "intersects"):
            s = self._set(c)
            if lhs.type in IPNET:
                nets = self.gen.const(tuple(c.rhs))
                fn = "all" if c.op == "in" else "any"
                return f"({present}{fn}(_inany(_a, {nets}) for _a in {x}))"
            if c.op == "in":
                return f"({present}{s}.issuperset({x}))"
            return f"({present}not {s}.isdisjoint({x}))"
        if lhs.existential or lhs.is_list:  # some value (ancestor, element) matches
            if c.kind == "values" and c.modifier is None and c.op in ("in", "intersects") and lhs.type not in IPNET:
                return f"({present}not {self._set(c)}.isdisjoint({x}))"
            if c.kind == "value" and c.op == "=" and lhs.type not in IPNET:
                return f"({present}{self.gen.value(c.rhs)} in {x})"
            return f"({present}any(_a is not None and {self._scalar(c, '_a')} for _a in {x}))"
        if c.modifier is None and lhs.type not in IPNET:
            if c.kind == "value" and c.op == "=":
                return f"({first} == {self.gen.value(c.rhs)})"
            if c.kind == "values" and c.op in ("in", "intersects"):
                return f"({first} in {self._set(c)})"
        return f"({present}{self._scalar(c, x)})"

    def _set(self, c: ir.CheckP) -> str:
        return self.gen.const(frozenset(c.rhs), ("set", c.key[-1]))

    def _scalar(self, c: ir.CheckP, x: str) -> str:
        """The test on a present scalar value named `x`."""
        g = self.gen
        op = c.op
        if c.modifier is not None:
            return self._modified(c, x)
        if c.kind == "values":  # in, intersects, pmatch
            if op == "pmatch":
                return f"{g.const(c.matchers)}({x})"
            if c.lhs.type in IPNET:
                return f"_inany({x}, {g.const(tuple(c.rhs))})"
            return f"{x} in {self._set(c)}"
        v = c.rhs
        if c.lhs.type in IPNET:
            net = g.const(v)
            return f"_innet({x}, {net})" if op == "=" else f"not _innet({x}, {net})"
        return self._op(op, x, g.value(v), c.matchers)

    def _op(self, op: str, x: str, k: str, matcher: Any) -> str:
        if op == "=":
            return f"{x} == {k}"
        if op in ("!=", "<", "<=", ">", ">="):
            return f"{x} {op} {k}"
        if op in ("contains", "bcontains"):
            return f"{k} in {x}"
        if op == "icontains":
            return f"{self.gen.value(matcher)} in _lower({x})"
        if op in ("startswith", "bstartswith"):
            return f"{x}.startswith({k})"
        if op == "endswith":
            return f"{x}.endswith({k})"
        if op in ("glob", "iglob", "regex"):
            return f"{self.gen.const(matcher)}({x}) is not None"
        raise AssertionError(op)

    def _modified(self, c: ir.CheckP, x: str) -> str:
        """`op oneof|anyof|allof (values)` on a present scalar named `x`."""
        g = self.gen
        values = tuple(c.rhs)
        if not values:
            return "False"
        op, mod = c.op, c.modifier
        if op in ("glob", "iglob", "regex"):
            ms = g.const(tuple(c.matchers))
            per = "_m(_x) is not None"
            loop = f"for _x in ({x},) for _m in {ms}"
        elif op == "icontains":
            ts = g.const(tuple(c.matchers))
            per = "_c in _lower(_x)"
            loop = f"for _x in ({x},) for _c in {ts}"
        elif c.lhs.type in IPNET:
            ts = g.const(values)
            per = "_innet(_x, _c)" if op == "=" else "not _innet(_x, _c)"
            loop = f"for _x in ({x},) for _c in {ts}"
        else:
            ts = g.const(values)
            if mod == "anyof":
                if op == "=":
                    return f"{x} in {self._set(c)}"
                if op in ("startswith", "bstartswith"):
                    return f"{x}.startswith({ts})"
                if op == "endswith":
                    return f"{x}.endswith({ts})"
            per = self._op(op, "_x", "_c", None)
            loop = f"for _x in ({x},) for _c in {ts}"
        if mod == "anyof":
            return f"any({per} {loop})"
        if mod == "allof":
            return f"all({per} {loop})"
        return f"sum(1 {loop} if {per}) == 1"

    def _pair_test(self, c: ir.CheckP, x: str, y: str) -> str:
        """`x op y` for two present values (val() and right-hand transformers)."""
        op = c.op
        if c.lhs.is_list:
            if op == "in":
                return f"set({y}).issuperset({x})"
            if op == "intersects":
                return f"not set({y}).isdisjoint({x})"
        if op in ("in", "intersects", "="):
            return f"{x} == {y}"
        if op in ("!=", "<", "<=", ">", ">="):
            return f"{x} {op} {y}"
        if op in ("contains", "bcontains"):
            return f"{y} in {x}"
        if op == "icontains":
            return f"_lower({y}) in _lower({x})"
        if op in ("startswith", "bstartswith"):
            return f"{x}.startswith({y})"
        if op == "endswith":
            return f"{x}.endswith({y})"
        if op in ("glob", "iglob"):
            return f"_glob({y}, {op == 'iglob'}).fullmatch({x}) is not None"
        raise AssertionError(op)


def _natural(name: str) -> tuple[str, int]:
    return name[0], int(name[1:])


# ---------------------------------------------------------------------------------------------
# Folding checks on per-code fields


def foldable_fields(p: ir.Pred) -> list[Field]:
    """The per-code fields a predicate checks directly (no argument, no right-hand field)."""
    out: dict[int, Field] = {}
    for n in ir.walk_preds(p):
        if isinstance(n, ir.CheckP) and n.kind != "expr" and isinstance(n.lhs, ir.FieldVal) \
                and per_code_of(n.lhs.field) is not None and n.lhs.arg is None and not n.lhs.existential:
            out[id(n.lhs.field)] = n.lhs.field
    return list(out.values())


def per_code_values(fields: list[Field], code: int) -> dict[int, Any]:
    """id(field) -> the field's value for the event code (or VARIES)."""
    return {id(f): per_code_of(f)(code) for f in fields}


class Folder:
    """Evaluates checks on per-code fields for one code's values and simplifies the predicate."""

    def __init__(self, gen: Generator):
        self.gen = gen
        self._testers: dict[tuple, Any] = {}

    def _tester(self, c: ir.CheckP):
        t = self._testers.get(c.key)
        if t is None:
            fg = FunctionGen(self.gen)
            code = fg.check_on(c, "_v", "_v")
            ns = dict(self.gen.globals)
            t = self._testers[c.key] = eval(f"lambda _v: bool({code})", ns)  # noqa: S307 - generated
        return t

    def fold(self, p: ir.Pred, values: dict[int, Any]) -> ir.Pred:
        """`values`: id(field) -> the field's value for the code (or VARIES). Also folds checks
        that are false whatever the value: `in ()`, `intersects ()`, `pmatch ()`, a modifier with
        no values."""
        if isinstance(p, ir.CheckP):
            if p.kind == "values" and not p.rhs and (p.modifier is not None or p.op in ("in", "intersects", "pmatch")):
                return ir.FALSE
            lhs = p.lhs
            if p.kind != "expr" and isinstance(lhs, ir.FieldVal) and lhs.arg is None and not lhs.existential:
                v = values.get(id(lhs.field), VARIES)
                if v is not VARIES:
                    return ir.TRUE if self._tester(p)(v) else ir.FALSE
            return p
        if isinstance(p, ir.NotP):
            c = self.fold(p.child, values)
            if isinstance(c, ir.ConstP):
                return ir.FALSE if c.value else ir.TRUE
            return p if c is p.child else ir.NotP(c)
        if isinstance(p, ir.AndP):
            is_or = isinstance(p, ir.OrP)
            absorbing, neutral = (ir.TRUE, ir.FALSE) if is_or else (ir.FALSE, ir.TRUE)
            kids = []
            changed = False
            for c in p.children:
                f = self.fold(c, values)
                changed |= f is not c
                if f is absorbing:
                    return absorbing
                if f is neutral:
                    continue
                kids.append(f)
            if not changed:
                return p
            if not kids:
                return neutral
            if len(kids) == 1:
                return kids[0]
            return ir.OrP(tuple(kids)) if is_or else ir.AndP(tuple(kids))
        return p


def repeated_preds(preds: list[ir.Pred]) -> set:
    """Keys of predicates occurring more than once (across the given rules) that are worth a memo.
    A repeated sub-tree is walked once, so the parts of a repeated macro are not memoized again
    unless they also occur elsewhere."""
    counts: Counter = Counter()
    for p in preds:
        stack = [p]
        while stack:
            n = stack.pop()
            if isinstance(n, ir.ConstP):
                continue
            if isinstance(n, ir.CheckP) and n.op in _CHEAP_OPS and n.modifier is None \
                    and not n.lhs.existential:
                continue
            counts[n.key] += 1
            if counts[n.key] > 1:
                continue
            if isinstance(n, ir.AndP):
                stack.extend(n.children)
            elif isinstance(n, ir.NotP):
                stack.append(n.child)
    return {k for k, v in counts.items() if v > 1}

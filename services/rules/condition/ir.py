"""The checked condition: what the type checker hands to the code generator.

Value expressions (`FieldVal`, `TransformVal`) produce one value per event; predicates (`AndP`,
`OrP`, `NotP`, `CheckP`, `ConstP`) combine them. Every node has a structural `key` (equal keys
mean equal results on every event), which the code generator uses to extract each value and
evaluate each repeated sub-expression once per event.

`CheckP` holds the canonical operator (`==` becomes `=`), the modifier, and the right-hand side
already parsed for the left side's type: `rhs` is a single value (`kind="value"`), a tuple of
values (`"values"`: `in`, `intersects`, `pmatch` and modifiers), a value expression (`"expr"`:
`val()` and transformers) or None (`exists`). `matchers` holds per-value compiled helpers (glob
and regex matchers, the pmatch matcher) where the operator needs them.
"""

from __future__ import annotations

from typing import Any

from tiercel.rules.fields.catalog import Field


class Expr:
    __slots__ = ("key", "type", "is_list", "existential")

    def __init__(self, key: tuple, type: str, is_list: bool, existential: bool):
        self.key = key
        self.type = type  # catalog type name (CHARBUF, UINT64, ...)
        self.is_list = is_list  # a list field: in/intersects/exists only
        self.existential = existential  # bare ancestor field: the check applies to each value


class FieldVal(Expr):
    __slots__ = ("field", "arg", "text")

    def __init__(self, field: Field, arg: Any, arg_text: str | None, text: str):
        existential = field.ancestors and arg_text is None
        # an existential field is tested value by value, even if its owner also marked it a list
        super().__init__(("f", field.name, arg_text), field.type, field.is_list and not existential, existential)
        self.field = field
        self.arg = arg  # parsed by field.parse_arg when the field has one
        self.text = text  # as written: proc.aname[2], evt.arg.flags


class Const:
    """A constant transformer argument: a string (numbers stay as their text)."""

    __slots__ = ("key", "value")

    def __init__(self, value: Any):
        self.value = value
        self.key = ("c", value)


class ListArg:
    """A `(...)` transformer argument: a tuple of expressions and constants."""

    __slots__ = ("key", "items")

    def __init__(self, items: tuple):
        self.items = items
        self.key = ("l", tuple(i.key for i in items))


class TransformVal(Expr):
    __slots__ = ("name", "args", "arg")

    def __init__(self, name: str, args: tuple, arg: str | None, type: str, is_list: bool):
        super().__init__(("t", name, tuple(a.key for a in args), arg), type, is_list, False)
        self.name = name
        self.args = args  # Expr | Const | ListArg
        self.arg = arg


class Pred:
    __slots__ = ("key",)


class ConstP(Pred):
    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value
        self.key = ("const", value)


TRUE = ConstP(True)
FALSE = ConstP(False)


class AndP(Pred):
    __slots__ = ("children",)
    word = "and"

    def __init__(self, children: tuple[Pred, ...]):
        self.children = children
        self.key = (self.word, tuple(c.key for c in children))


class OrP(AndP):
    __slots__ = ()
    word = "or"


class NotP(Pred):
    __slots__ = ("child",)

    def __init__(self, child: Pred):
        self.child = child
        self.key = ("not", child.key)


class CheckP(Pred):
    __slots__ = ("lhs", "op", "modifier", "kind", "rhs", "matchers", "node")

    def __init__(self, lhs: Expr, op: str, modifier: str | None, kind: str | None, rhs: Any,
                 matchers: Any = None, node: Any = None):
        self.lhs = lhs
        self.op = op
        self.modifier = modifier
        self.kind = kind  # None (exists) | "value" | "values" | "expr"
        self.rhs = rhs
        self.matchers = matchers
        self.node = node  # the AST check, for positions and debugging
        rk = rhs.key if kind == "expr" else (tuple(_hkey(v) for v in rhs) if kind == "values" else _hkey(rhs))
        self.key = ("check", lhs.key, op, modifier, kind, rk)


def _hkey(v: Any) -> Any:
    """A hashable key for a parsed constant (distinguishes 1, True and "1")."""
    return (type(v).__name__, v if not hasattr(v, "pattern") else v.pattern)


def walk_preds(p: Pred):
    stack = [p]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, AndP):
            stack.extend(reversed(n.children))
        elif isinstance(n, NotP):
            stack.append(n.child)


def value_exprs(e: Expr):
    """An expression and the expressions it is built from."""
    yield e
    if isinstance(e, TransformVal):
        for a in e.args:
            if isinstance(a, Expr):
                yield from value_exprs(a)
            elif isinstance(a, ListArg):
                for x in a.items:
                    if isinstance(x, Expr):
                        yield from value_exprs(x)

"""Two printers for condition trees.

- `to_string(node)`: Falco's string form of a compiled condition (libsinsp `ast::as_string`), the
  `condition_compiled` of `falco -L` (spec §2.14): `(a and b)`, `not x`, `f op v`, `f exists`,
  lists `(v1, v2)`, values bare unless they hold a space, `=`, a quote, a backslash or a control
  character (then `"..."`-quoted and escaped). It is not always parseable (an empty value prints
  as nothing), it is what Falco shows.
- `to_source(node)`: condition text that parses back to an equal tree (round-trip tests,
  debugging). Parentheses only where the tree needs them.
"""

from __future__ import annotations

from tiercel.rules.condition import lexer as lx
from tiercel.rules.condition.nodes import (
    MODIFIERS,
    AndExpr,
    BinaryCheck,
    FieldExpr,
    Identifier,
    ListValue,
    Node,
    NotExpr,
    OrExpr,
    TransformerExpr,
    TransformerList,
    UnaryCheck,
    Value,
)

_NUM_OPS = ("<=", "<", ">=", ">")
_FALCO_ESC = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def falco_escape(value: str) -> str:
    """A value as libsinsp prints it: bare, or quoted and escaped when it needs to be."""
    if not any(c in ' ="\'\\' or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return value
    out = []
    for c in value:
        e = _FALCO_ESC.get(c)
        if e is not None:
            out.append(e)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def to_string(node: Node) -> str:
    """Falco's `condition_compiled` form."""
    out: list[str] = []
    _falco(node, out)
    return "".join(out)


def _falco(n: Node, out: list[str]) -> None:
    if isinstance(n, AndExpr):  # OrExpr too
        sep = " or " if isinstance(n, OrExpr) else " and "
        out.append("(")
        for i, c in enumerate(n.children):
            if i:
                out.append(sep)
            _falco(c, out)
        out.append(")")
    elif isinstance(n, NotExpr):
        out.append("not ")
        _falco(n.child, out)
    elif isinstance(n, Identifier):
        out.append(n.name)
    elif isinstance(n, Value):
        out.append(falco_escape(n.value))
    elif isinstance(n, ListValue):
        out.append("(" + ", ".join(falco_escape(v) for v in n.values) + ")")
    elif isinstance(n, TransformerList):
        out.append("(")
        for i, c in enumerate(n.items):
            if i:
                out.append(", ")
            _falco(c, out)
        out.append(")")
    elif isinstance(n, FieldExpr):
        out.append(n.text)
    elif isinstance(n, TransformerExpr):
        out.append(n.name + "(")
        for i, c in enumerate(n.args):
            if i:
                out.append(", ")
            _falco(c, out)
        out.append(")")
        if n.arg is not None:
            out.append(f"[{n.arg}]")
    elif isinstance(n, UnaryCheck):
        _falco(n.left, out)
        out.append(" " + n.op)
    elif isinstance(n, BinaryCheck):
        _falco(n.left, out)
        out.append(f" {n.op} {n.modifier} " if n.modifier else f" {n.op} ")
        _falco(n.right, out)
    else:  # pragma: no cover - all node types are handled above
        raise TypeError(f"unknown node {n!r}")


# ---------------------------------------------------------------------------------------------
# Re-parseable source


def quote(value: str) -> str:
    """A double-quoted string literal the lexer reads back as `value` (backslashes and control
    characters as `\\xHH`, so no quote is ever preceded by a backslash except `\\"`)."""
    out = []
    for c in value:
        o = ord(c)
        if c == "\\":
            out.append("\\x5c")
        elif c == '"':
            out.append('\\"')
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _bare_ok(v: str) -> bool:
    # \b is a blank to the parser though bare strings may hold it: quote values with blanks
    return bool(lx.BARE_STRING_FULL.match(v)) and v not in MODIFIERS and not any(c in lx.BLANKS for c in v)


def _str_value(v: str) -> str:
    return v if _bare_ok(v) else quote(v)


def _arg(a: str) -> str:
    m = lx.FIELD_ARG_BARE.fullmatch(a)
    return f"[{a}]" if m else f"[{quote(a)}]"


def _is_number(v: str) -> bool:
    return bool(lx.HEX_NUMBER.fullmatch(v) or lx.NUMBER.fullmatch(v))


def to_source(node: Node) -> str:
    """Condition text that parses back to a tree equal to `node`."""
    out: list[str] = []
    _src(node, out)
    return "".join(out)


def _src_operand(n: Node, out: list[str]) -> None:
    if isinstance(n, AndExpr):
        out.append("(")
        _src(n, out)
        out.append(")")
    else:
        _src(n, out)


def _src(n: Node, out: list[str]) -> None:
    if isinstance(n, AndExpr):
        sep = " or " if isinstance(n, OrExpr) else " and "
        for i, c in enumerate(n.children):
            if i:
                out.append(sep)
            _src_operand(c, out)
    elif isinstance(n, NotExpr):
        out.append("not ")
        if isinstance(n.child, NotExpr):
            out.append("(")
            _src(n.child, out)
            out.append(")")
        else:
            _src_operand(n.child, out)
    elif isinstance(n, Identifier):
        out.append(n.name)
    elif isinstance(n, FieldExpr):
        out.append(n.name + (_arg(n.arg) if n.arg is not None else ""))
    elif isinstance(n, TransformerExpr):
        out.append(n.name + "(")
        for i, c in enumerate(n.args):
            if i:
                out.append(", ")
            _src_targ(c, out)
        out.append(")")
        if n.arg is not None:
            out.append(_arg(n.arg))
    elif isinstance(n, UnaryCheck):
        _src(n.left, out)
        out.append(" " + n.op)
    elif isinstance(n, BinaryCheck):
        _src(n.left, out)
        out.append(f" {n.op} {n.modifier} " if n.modifier else f" {n.op} ")
        r = n.right
        if isinstance(r, Value):
            if n.op in _NUM_OPS:
                out.append(r.value)
            elif n.op in ("in", "intersects", "pmatch") or n.modifier:
                out.append(r.value)  # a bare identifier (the parser only makes these)
            else:
                out.append(_str_value(r.value))
        elif isinstance(r, ListValue):
            out.append("(" + ", ".join(_str_value(v) for v in r.values) + ")")
        else:
            _src(r, out)
    elif isinstance(n, (Value, ListValue, TransformerList)):
        _src_targ(n, out)
    else:  # pragma: no cover
        raise TypeError(f"unknown node {n!r}")


def _src_targ(n: Node, out: list[str]) -> None:
    if isinstance(n, Value):
        out.append(n.value if _is_number(n.value) else quote(n.value))
    elif isinstance(n, ListValue):
        out.append("(" + ", ".join(quote(v) for v in n.values) + ")")
    elif isinstance(n, TransformerList):
        out.append("(")
        for i, c in enumerate(n.items):
            if i:
                out.append(", ")
            _src_targ(c, out)
        out.append(")")
    else:
        _src(n, out)

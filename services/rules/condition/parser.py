"""Recursive-descent parser of Falco conditions (libsinsp `filter/parser.cpp`, spec §2.2).

    parse("evt.type in (open, openat) and not proc.name = cat") -> OrExpr/AndExpr/... tree

Grammar, with precedence `not` > `and` > `or`:

    Expr      := Or
    Or        := And ( 'or' (Blank And | '(' Expr ')') )*
    And       := Not ( 'and' (Blank Not | '(' Expr ')') )*
    Not       := ('not' Blank)* ( 'not(' Expr ')' | Check )   -- an even number of nots cancels
    Check     := '(' Expr ')' | Field Cond | Transformer Cond | Identifier
    Field     := FieldName ('[' (Quoted | FieldArgBare) ']')?
    Transformer := TName '(' TArg (',' TArg)* ')' ('[' arg ']')?
    TArg      := Transformer | Field | Quoted | Number | '(' [TArg (',' TArg)*] ')'
    Cond      := 'exists'
               | NumOp (Number | RhsTransformer)
               | StrOp Modifier ListValue
               | StrOp (Quoted | BareStr | RhsTransformer)
               | ListOp (ListValue | RhsTransformer)
    RhsTransformer := 'val(' Field ')' | Transformer
    ListValue := '(' [Value (',' Value)*] ')' | Identifier

Errors are `ParseError`s with Falco's message and the cursor position at the time of the error.
The nesting depth is limited to `MAX_DEPTH` (Falco sets 1000); every level of or/and/not/check
counts, as in libsinsp.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tiercel.rules.condition import lexer as lx
from tiercel.rules.condition.errors import ParseError
from tiercel.rules.condition.nodes import (
    MODIFIERS,
    TRANSFORMERS,
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

MAX_DEPTH = 1000

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
STR_SYMBOL_OPS = ("==", "=", "!=")
STR_WORD_OPS = ("glob", "iglob", "contains", "icontains", "bcontains", "startswith", "bstartswith",
                "endswith", "regex")
LIST_OPS = ("intersects", "in", "pmatch")
STR_OPS = STR_SYMBOL_OPS + STR_WORD_OPS
ALL_OPS = UNARY_OPS + NUM_OPS + STR_OPS + LIST_OPS

_TRANSFORMER_OPENERS = tuple(t + "(" for t in TRANSFORMERS)
_KEYWORDS = ("and", "or", "not")

# Each nesting level costs a frame or two; trees as deep as MAX_DEPTH are walked recursively too.
if sys.getrecursionlimit() < MAX_DEPTH * 3:
    sys.setrecursionlimit(MAX_DEPTH * 3)


def parse(text: str, max_depth: int = MAX_DEPTH) -> Node:
    """Parse a whole condition. Raises ParseError."""
    if len(text) == 0:
        raise ParseError("filter input string is empty")
    p = _Parser(text, max_depth)
    res = p.parse_or()
    if not p.s.at_end():
        raise p.s.error(f"unexpected token after '{p.s.last}', expecting 'or', 'and'")
    return res


def parse_field(text: str) -> FieldExpr | TransformerExpr:
    """Parse a field or transformer expression alone (`proc.aname[2]`, `tolower(proc.name)`), as
    exceptions and output tokens need. The whole text must be consumed."""
    p = _Parser(text, MAX_DEPTH)
    node = p.field_or_transformer()
    if node is None or not p.s.at_end():
        raise p.s.error(f"unexpected token after '{p.s.last}'" if node is not None
                        else "expected a field or a transformer")
    return node


def parse_field_prefix(text: str, pos: int = 0) -> tuple[FieldExpr | TransformerExpr, int] | None:
    """Parse a field or transformer at `pos`; returns the node and the end offset, or None.
    Used by output formats to find `%field` tokens."""
    p = _Parser(text, MAX_DEPTH)
    p.s.pos = pos
    try:
        node = p.field_or_transformer()
    except ParseError:
        return None
    if node is None:
        return None
    return node, p.s.pos


class _Parser:
    __slots__ = ("s", "depth", "max_depth")

    def __init__(self, text: str, max_depth: int):
        self.s = lx.Scanner(text)
        self.depth = 0
        self.max_depth = max_depth

    def _push(self) -> None:
        self.depth += 1
        if self.depth >= self.max_depth:
            raise self.s.error(f"exceeded max depth limit of {self.max_depth}")

    # -- boolean structure --
    def parse_or(self) -> Node:
        return self._chain("or", self.parse_and, OrExpr)

    def parse_and(self) -> Node:
        return self._chain("and", self.parse_not, AndExpr)

    def _chain(self, keyword: str, operand: Callable[[], Node], node: type[OrExpr] | type[AndExpr]) -> Node:
        """`operand (keyword operand)*`; the keyword needs a blank after it unless a '(' follows
        ("a and(b)" is valid, "a andb" is not)."""
        self._push()
        s = self.s
        s.blank()
        start = s.pos
        children = [operand()]
        s.blank()
        while True:
            state = s.save()
            if s.literal(keyword):
                if s.blank():
                    children.append(operand())
                    s.blank()
                    continue
                if s.literal("("):
                    children.append(self._paren_tail())
                    s.blank()
                    continue
                s.restore(state)
            break
        self.depth -= 1
        return children[0] if len(children) == 1 else node(tuple(children), start, s.src)

    def _paren_tail(self) -> Node:
        """After a consumed '(': Expr ')'."""
        res = self.parse_or()
        self.s.blank()
        if not self.s.literal(")"):
            raise self.s.error("expected a ')' token")
        return res

    def parse_not(self) -> Node:
        self._push()
        s = self.s
        s.blank()
        start = s.pos
        negated = False
        while True:
            state = s.save()
            if s.literal("not"):
                if s.blank():
                    negated = not negated
                    continue
                if s.literal("("):
                    child = self._paren_tail()
                    negated = not negated
                    break
                s.restore(state)
            child = self.parse_check()
            break
        self.depth -= 1
        return NotExpr(child, start, s.src) if negated else child

    def parse_check(self) -> Node:
        self._push()
        s = self.s
        s.blank()
        start = s.pos
        if s.literal("("):
            res = self._paren_tail()
            self.depth -= 1
            return res
        left = self.field_or_transformer()
        if left is not None:
            res = self.parse_condition(left, start)
            self.depth -= 1
            return res
        if s.regex(lx.IDENTIFIER) is not None:
            self.depth -= 1
            return Identifier(s.last, start, s.src)
        raise s.error("expected a '(' token, a field check, or an identifier")

    # -- fields and transformers --
    def field_or_transformer(self) -> FieldExpr | TransformerExpr | None:
        s = self.s
        start = s.pos
        name = s.literal_any(_TRANSFORMER_OPENERS)
        if name is not None:
            return self._transformer_tail(name[:-1], start)
        if s.regex(lx.FIELD_NAME) is not None:
            return FieldExpr(s.last, self._field_arg(), start, s.src)
        return None

    def _field_arg(self) -> str | None:
        s = self.s
        if not s.literal("["):
            return None
        arg = s.quoted()
        if arg is None:
            arg = s.regex(lx.FIELD_ARG_BARE)
            if arg is None:
                raise s.error("expected a valid field argument: a quoted string or a bare string")
        if not s.literal("]"):
            raise s.error("expected a ']' token")
        return arg

    def _transformer_tail(self, name: str, start: int) -> TransformerExpr:
        """After `name(`: arguments, ')' and an optional `[arg]`."""
        self._push()
        s = self.s
        args = [self._transformer_arg()]
        s.blank()
        while s.literal(","):
            args.append(self._transformer_arg())
            s.blank()
        if not s.literal(")"):
            raise s.error("expected a ')' token")
        arg = self._field_arg()
        self.depth -= 1
        return TransformerExpr(name, tuple(args), arg, start, s.src)

    def _transformer_arg(self, in_list: bool = False) -> Node:
        s = self.s
        s.blank()
        start = s.pos
        node = self.field_or_transformer()
        if node is not None:
            return node
        q = s.quoted()
        if q is not None:
            return Value(q, start, s.src)
        if s.regex(lx.HEX_NUMBER) is not None or s.regex(lx.NUMBER) is not None:
            return Value(s.last, start, s.src)
        if not in_list and s.literal("("):
            items: list[Node] = []
            s.blank()
            if not s.literal(")"):
                items.append(self._transformer_arg(True))
                s.blank()
                while s.literal(","):
                    items.append(self._transformer_arg(True))
                    s.blank()
                if not s.literal(")"):
                    raise s.error("expected a ')' token")
            return TransformerList(tuple(items), start, s.src)
        raise s.error("expected a field, a transformer, a quoted string, a number or a list")

    def _rhs_transformer(self) -> Node | None:
        """`val(field)` or a transformer, on the right-hand side of a check."""
        s = self.s
        start = s.pos
        if s.literal("val("):
            s.blank()
            fstart = s.pos
            if s.regex(lx.FIELD_NAME) is None:
                raise s.error("expected a field name")
            f = FieldExpr(s.last, self._field_arg(), fstart, s.src)
            s.blank()
            if not s.literal(")"):
                raise s.error("expected a ')' token")
            return TransformerExpr("val", (f,), None, start, s.src)
        name = s.literal_any(_TRANSFORMER_OPENERS)
        if name is not None:
            return self._transformer_tail(name[:-1], start)
        return None

    # -- conditions --
    def parse_condition(self, left: Node, start: int) -> Node:
        s = self.s
        s.blank()
        if s.literal("exists"):
            return UnaryCheck(left, "exists", start, s.src)
        op = s.literal_any(NUM_OPS)
        if op is not None:
            s.blank()
            right = self._rhs_transformer()
            if right is None:
                vstart = s.pos
                if s.regex(lx.HEX_NUMBER) is None and s.regex(lx.NUMBER) is None:
                    raise s.error("expected a number value")
                right = Value(s.last, vstart, s.src)
            return BinaryCheck(left, op, right, None, start, s.src)
        op = s.literal_any(STR_SYMBOL_OPS) or s.word(STR_WORD_OPS)
        if op is not None:
            s.blank()
            modifier = self._modifier()
            if modifier is not None:
                return BinaryCheck(left, op, self._list_value(), modifier, start, s.src)
            right = self._rhs_transformer()
            if right is None:
                right = self._str_value()
            return BinaryCheck(left, op, right, None, start, s.src)
        op = s.literal_any(LIST_OPS)
        if op is not None:
            s.blank()
            right = self._rhs_transformer()
            if right is None:
                right = self._list_value()
            return BinaryCheck(left, op, right, None, start, s.src)
        raise s.error("expected a valid check operator: one of " + ", ".join(ALL_OPS))

    def _modifier(self) -> str | None:
        """`oneof`/`anyof`/`allof` + blank, then '(' or an identifier other than and/or/not."""
        s = self.s
        state = s.save()
        mod = s.word(MODIFIERS)
        if mod is None:
            return None
        if s.peek() == "(":
            return mod
        m = lx.IDENTIFIER.match(s.text, s.pos)
        if m is not None and m.group() not in _KEYWORDS:
            return mod
        s.restore(state)
        return None

    def _str_value(self) -> Value:
        s = self.s
        start = s.pos
        q = s.quoted()
        if q is not None:
            return Value(q, start, s.src)
        if s.regex(lx.BARE_STRING) is not None:
            return Value(s.last, start, s.src)
        raise s.error("expected a string value")

    def _list_value(self) -> Node:
        s = self.s
        start = s.pos
        if s.literal("("):
            values: list[str] = []
            s.blank()
            if s.literal(")"):
                return ListValue((), start, s.src)
            values.append(self._str_value().value)
            s.blank()
            while s.literal(","):
                s.blank()
                values.append(self._str_value().value)
                s.blank()
            if not s.literal(")"):
                raise s.error("expected a ')' token")
            return ListValue(tuple(values), start, s.src)
        if s.regex(lx.IDENTIFIER) is not None:
            return Value(s.last, start, s.src)
        raise s.error("expected a list value or an identifier")

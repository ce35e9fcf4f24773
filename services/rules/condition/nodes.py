"""The condition AST (libsinsp's `filter/ast.h`, one class per node type).

Nodes are immutable. Equality and hashing are **structural** and ignore positions, so a macro's
sub-tree that appears in several rules compares equal everywhere (the code generator uses this to
compute each sub-expression once per event). Every node keeps the offset where it starts in the
text it was parsed from (`pos`, characters) and that text (`src`); `node.position` gives Falco's
`pos_info` (bytes; see `errors.Position`). Nodes copied in by macro expansion keep the position of
the macro text, as in Falco.

| class | Falco node | fields |
|---|---|---|
| `AndExpr`, `OrExpr` | `and_expr`, `or_expr` | `children` (tuple, >= 2) |
| `NotExpr` | `not_expr` | `child` |
| `Identifier` | `identifier_expr` | `name` (a macro reference) |
| `Value` | `value_expr` | `value` (str, unescaped) |
| `ListValue` | `list_expr` | `values` (tuple of str; may be empty) |
| `TransformerList` | `transformer_list_expr` | `items` (tuple of nodes): a `(...)` transformer argument |
| `FieldExpr` | `field_expr` | `name`, `arg` (str or None; the text between `[` `]` unescaped) |
| `TransformerExpr` | `field_transformer_expr` | `name` (tolower, ..., or `val`), `args`, `arg` (`[...]`) |
| `UnaryCheck` | `unary_check_expr` | `left`, `op` (`exists`) |
| `BinaryCheck` | `binary_check_expr` | `left`, `op` (as written: `=`, `==`, `in`, ...), `right`, `modifier` (oneof/anyof/allof or None) |

`val(f)` is a `TransformerExpr` named `val` with one `FieldExpr` argument. A bare identifier on the
right of a list operator (`x in foo`) is a `Value`. Numbers are `Value`s holding the token text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import ClassVar

from tiercel.rules.condition.errors import Position

# Falco's transformer names (parser: s_field_transformers); `val` is only valid on the right side.
TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt")
MODIFIERS = ("oneof", "anyof", "allof")


class SourceText:
    """The text nodes were parsed from: converts character offsets to Falco byte positions."""

    __slots__ = ("text", "_newlines", "_ascii")

    def __init__(self, text: str):
        self.text = text
        self._newlines: list[int] | None = None
        self._ascii = text.isascii()

    def position(self, offset: int) -> Position:
        if self._newlines is None:
            self._newlines = [i for i, c in enumerate(self.text) if c == "\n"]
        nl = self._newlines
        line_idx = bisect.bisect_left(nl, offset)
        line_start = nl[line_idx - 1] + 1 if line_idx else 0
        if self._ascii:
            return Position(offset, line_idx + 1, offset - line_start + 1)
        enc = _utf8_len
        return Position(enc(self.text[:offset]), line_idx + 1, enc(self.text[line_start:offset]) + 1)


def _key_of(f: object) -> object:
    if isinstance(f, Node):
        return f.key()
    if isinstance(f, tuple):
        return tuple(map(_key_of, f))
    return f


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogateescape"))


class Node:
    __slots__ = ("pos", "src", "_key", "_hash")
    kind: ClassVar[str] = ""

    def __init__(self, pos: int = 0, src: SourceText | None = None):
        self.pos = pos
        self.src = src
        self._key: tuple | None = None
        self._hash: int | None = None

    @property
    def position(self) -> Position:
        if self.src is None:
            return Position()
        return self.src.position(self.pos)

    def _fields(self) -> tuple:
        raise NotImplementedError

    def key(self) -> tuple:
        """Structural identity (no positions)."""
        k = self._key
        if k is None:
            k = self._key = (self.kind, *map(_key_of, self._fields()))
        return k

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(self.key())
        return h

    def children_nodes(self) -> tuple[Node, ...]:
        return ()

    def __repr__(self) -> str:
        from tiercel.rules.condition.printer import to_source

        return f"<{type(self).__name__} {to_source(self)}>"


class AndExpr(Node):
    __slots__ = ("children",)
    kind = "and"

    def __init__(self, children: tuple[Node, ...], pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.children = tuple(children)

    def _fields(self) -> tuple:
        return (self.children,)

    def children_nodes(self) -> tuple[Node, ...]:
        return self.children


class OrExpr(AndExpr):
    __slots__ = ()
    kind = "or"


class NotExpr(Node):
    __slots__ = ("child",)
    kind = "not"

    def __init__(self, child: Node, pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.child = child

    def _fields(self) -> tuple:
        return (self.child,)

    def children_nodes(self) -> tuple[Node, ...]:
        return (self.child,)


class Identifier(Node):
    __slots__ = ("name",)
    kind = "identifier"

    def __init__(self, name: str, pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.name = name

    def _fields(self) -> tuple:
        return (self.name,)


class Value(Node):
    __slots__ = ("value",)
    kind = "value"

    def __init__(self, value: str, pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.value = value

    def _fields(self) -> tuple:
        return (self.value,)


class ListValue(Node):
    __slots__ = ("values",)
    kind = "list"

    def __init__(self, values: tuple[str, ...], pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.values = tuple(values)

    def _fields(self) -> tuple:
        return (self.values,)


class TransformerList(Node):
    __slots__ = ("items",)
    kind = "transformer_list"

    def __init__(self, items: tuple[Node, ...], pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.items = tuple(items)

    def _fields(self) -> tuple:
        return (self.items,)

    def children_nodes(self) -> tuple[Node, ...]:
        return self.items


class FieldExpr(Node):
    __slots__ = ("name", "arg")
    kind = "field"

    def __init__(self, name: str, arg: str | None = None, pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.name = name
        self.arg = arg

    def _fields(self) -> tuple:
        return (self.name, self.arg)

    @property
    def text(self) -> str:
        """The field as the filter check sees it: `name[arg]`."""
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


class TransformerExpr(Node):
    __slots__ = ("name", "args", "arg")
    kind = "field_transformer"

    def __init__(self, name: str, args: tuple[Node, ...], arg: str | None = None, pos: int = 0,
                 src: SourceText | None = None):
        super().__init__(pos, src)
        self.name = name
        self.args = tuple(args)
        self.arg = arg

    def _fields(self) -> tuple:
        return (self.name, self.args, self.arg)

    def children_nodes(self) -> tuple[Node, ...]:
        return self.args


class UnaryCheck(Node):
    __slots__ = ("left", "op")
    kind = "unary_check"

    def __init__(self, left: Node, op: str, pos: int = 0, src: SourceText | None = None):
        super().__init__(pos, src)
        self.left = left
        self.op = op

    def _fields(self) -> tuple:
        return (self.left, self.op)

    def children_nodes(self) -> tuple[Node, ...]:
        return (self.left,)


class BinaryCheck(Node):
    __slots__ = ("left", "op", "right", "modifier")
    kind = "binary_check"

    def __init__(self, left: Node, op: str, right: Node, modifier: str | None = None, pos: int = 0,
                 src: SourceText | None = None):
        super().__init__(pos, src)
        self.left = left
        self.op = op
        self.right = right
        self.modifier = modifier

    def _fields(self) -> tuple:
        return (self.left, self.op, self.right, self.modifier)

    def children_nodes(self) -> tuple[Node, ...]:
        return (self.left, self.right)


CHECKS = (UnaryCheck, BinaryCheck)


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children (iterative: trees can be deep)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children_nodes()))


def fields_of(node: Node) -> list[FieldExpr]:
    """The field references of a tree, in order (inside transformers and `val()` too)."""
    return [n for n in walk(node) if isinstance(n, FieldExpr)]


def identifiers_of(node: Node) -> list[Identifier]:
    return [n for n in walk(node) if isinstance(n, Identifier)]

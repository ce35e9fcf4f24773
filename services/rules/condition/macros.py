"""Macro expansion (libsinsp `filter_macro_resolver`, spec §2.10).

    tree, used = expand_macros(tree, lookup)

Every `Identifier` is replaced by the tree of the macro of that name, itself expanded. `lookup`
returns the parsed (list-substituted) tree of a visible macro, or None: visibility is the caller's
business (Falco: a macro sees macros with a smaller index than its own visibility; rules see all).
Trees are immutable, so the "deep copy" Falco makes is a shared sub-tree here; the result is the
same, and the code generator can recognise repeated macros.

Errors (`MacroError`, Falco's `LOAD_ERR_VALIDATE`), only the first one reported as Falco does, a
reference loop before an undefined macro:
- "reference loop in macro 'x'" at the identifier that closes the loop;
- "Undefined macro 'x' used in filter." at the first unknown identifier.

`used` lists every macro expanded (directly or through other macros), in first-use order, for
`LOAD_UNUSED_MACRO`.
"""

from __future__ import annotations

from collections.abc import Callable

from tiercel.rules.condition.errors import MacroError
from tiercel.rules.condition.nodes import (
    AndExpr,
    BinaryCheck,
    Identifier,
    Node,
    NotExpr,
    UnaryCheck,
)

MacroLookup = Callable[[str], Node | None]


class _Loop(Exception):
    def __init__(self, node: Identifier):
        self.node = node


def expand_macros(node: Node, lookup: MacroLookup) -> tuple[Node, list[str]]:
    """Expand every macro reference in `node`. Raises MacroError."""
    used: dict[str, None] = {}
    unknown: list[Identifier] = []
    cache: dict[str, Node] = {}  # macros whose expansion was clean (no loop, nothing unknown)

    def visit(n: Node, path: list[str]) -> Node:
        if isinstance(n, Identifier):
            name = n.name
            if name in path:
                raise _Loop(n)
            hit = cache.get(name)
            if hit is not None:
                used[name] = None
                return hit
            macro = lookup(name)
            if macro is None:
                unknown.append(n)
                return n
            used[name] = None
            path.append(name)
            n_unknown = len(unknown)
            res = visit(macro, path)
            path.pop()
            if len(unknown) == n_unknown:
                cache[name] = res
            return res
        if isinstance(n, AndExpr):  # and, or
            kids = tuple(visit(c, path) for c in n.children)
            if all(a is b for a, b in zip(kids, n.children, strict=True)):
                return n
            return type(n)(kids, n.pos, n.src)
        if isinstance(n, NotExpr):
            c = visit(n.child, path)
            return n if c is n.child else NotExpr(c, n.pos, n.src)
        # Checks: macros can only stand where a boolean operand is expected.
        if isinstance(n, (BinaryCheck, UnaryCheck)):
            return n
        return n

    try:
        res = visit(node, [])
    except _Loop as e:
        raise MacroError(f"reference loop in macro '{e.node.name}'", e.node.position) from None
    if unknown:
        u = unknown[0]
        raise MacroError(f"Undefined macro '{u.name}' used in filter.", u.position)
    return res, list(used)

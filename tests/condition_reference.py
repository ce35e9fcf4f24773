"""A slow, obviously-correct reference evaluator of condition trees, for the property tests: it walks
the AST for every event and implements each operator directly from the spec (§2.4, §2.5, §2.7),
independently of the code generator. Test-only; never used by the product."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import Any

from tiercel.rules.condition import nodes as n
from tiercel.rules.condition.checker import parse_value
from tiercel.rules.fields import catalog

MISSING = object()


def _lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def _upper(s: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s)


def _pmatch(paths: list[str], value: str) -> bool:
    comps = [c for c in value.split("/") if c]
    for p in paths:
        pc = [c for c in p.split("/") if c]
        if len(pc) <= len(comps) and all(fnmatch.fnmatchcase(v, q) for q, v in zip(pc, comps, strict=False)):
            return True
    return False


class Reference:
    def __init__(self, source: str):
        self.source = source

    def matches(self, tree: n.Node, evt: Any) -> bool:
        if isinstance(tree, n.OrExpr):
            return any(self.matches(c, evt) for c in tree.children)
        if isinstance(tree, n.AndExpr):
            return all(self.matches(c, evt) for c in tree.children)
        if isinstance(tree, n.NotExpr):
            return not self.matches(tree.child, evt)
        if isinstance(tree, n.UnaryCheck):
            return self.value(tree.left, evt) is not MISSING
        assert isinstance(tree, n.BinaryCheck)
        return self.binary(tree, evt)

    # -- values --
    def field(self, f: n.FieldExpr) -> tuple[catalog.Field, Any]:
        fld, dotted = catalog.resolve(f.name, self.source)
        arg = dotted if dotted is not None else f.arg
        if arg is not None and fld.parse_arg is not None:
            arg = fld.parse_arg(arg)
        return fld, arg

    def value(self, e: n.Node, evt: Any) -> Any:
        if isinstance(e, n.FieldExpr):
            fld, arg = self.field(e)
            v = fld.extract(evt, arg)
            if v is None or (isinstance(v, list) and not v):
                return MISSING
            return v
        assert isinstance(e, n.TransformerExpr)
        inner = self.value(e.args[0], evt)
        if inner is MISSING:
            return MISSING
        if e.name == "tolower":
            return [_lower(x) for x in inner] if isinstance(inner, list) else _lower(inner)
        if e.name == "toupper":
            return [_upper(x) for x in inner] if isinstance(inner, list) else _upper(inner)
        if e.name == "basename":
            return inner.rsplit("/", 1)[-1]
        if e.name == "len":
            return len(inner) if isinstance(inner, list) else len(inner.encode("utf-8", "surrogateescape"))
        raise NotImplementedError(e.name)

    def type_of(self, e: n.Node) -> tuple[str, bool, bool]:
        """(type, is_list, existential)"""
        if isinstance(e, n.FieldExpr):
            fld, arg = self.field(e)
            return fld.type, fld.is_list, fld.ancestors and arg is None
        t, lst, _ = self.type_of(e.args[0])
        if e.name == "len":
            return "UINT64", False, False
        return t, lst, False

    # -- checks --
    def binary(self, c: n.BinaryCheck, evt: Any) -> bool:
        lhs = self.value(c.left, evt)
        if lhs is MISSING:
            return False
        t, is_list, existential = self.type_of(c.left)
        op = "=" if c.op == "==" else c.op
        if isinstance(c.right, n.TransformerExpr):
            rnode = c.right.args[0] if c.right.name == "val" else c.right
            rhs = self.value(rnode, evt)
            if rhs is MISSING:
                return False
            if is_list:
                return set(lhs) <= set(rhs) if op == "in" else bool(set(lhs) & set(rhs))
            if existential:
                return any(a is not None and self.cmp(op, t, a, rhs) for a in lhs)
            return self.cmp("=" if op in ("in", "intersects") else op, t, lhs, rhs)
        texts = c.right.values if isinstance(c.right, n.ListValue) else (c.right.value,)
        values = [parse_value(x, t, op) for x in texts]
        if is_list and op in ("in", "intersects") and not c.modifier:
            if op == "in":
                return set(lhs) <= set(values)
            return bool(set(lhs) & set(values))
        if existential or is_list:
            return any(a is not None and self.scalar(c, op, t, a, values) for a in lhs)
        return self.scalar(c, op, t, lhs, values)

    def scalar(self, c: n.BinaryCheck, op: str, t: str, v: Any, values: list) -> bool:
        if c.modifier:
            hits = sum(1 for x in values if self.cmp(op, t, v, x))
            if not values:
                return False
            return {"anyof": hits >= 1, "allof": hits == len(values), "oneof": hits == 1}[c.modifier]
        if op in ("in", "intersects"):
            return any(self.cmp("=", t, v, x) for x in values)
        if op == "pmatch":
            return _pmatch(values, v)
        return self.cmp(op, t, v, values[0])

    def cmp(self, op: str, t: str, v: Any, x: Any) -> bool:
        if t in catalog.IPNET and isinstance(x, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            inside = v.version == x.version and v in x
            return inside if op == "=" else not inside
        if op == "=":
            return v == x
        if op == "!=":
            return v != x
        if op == "<":
            return v < x
        if op == "<=":
            return v <= x
        if op == ">":
            return v > x
        if op == ">=":
            return v >= x
        if op in ("contains", "bcontains"):
            return x in v
        if op == "icontains":
            return _lower(x) in _lower(v)
        if op in ("startswith", "bstartswith"):
            return v.startswith(x)
        if op == "endswith":
            return v.endswith(x)
        if op == "glob":
            return fnmatch.fnmatchcase(v, x)
        if op == "iglob":
            return fnmatch.fnmatchcase(_lower(v), _lower(x))
        if op == "regex":
            return re.fullmatch(x, v, re.DOTALL) is not None
        raise NotImplementedError(op)

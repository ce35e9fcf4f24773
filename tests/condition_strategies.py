"""Hypothesis strategies for condition trees (shared by the property tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from tiercel.rules.condition import lexer as lx
from tiercel.rules.condition import nodes as n
from tiercel.rules.condition.parser import LIST_OPS, NUM_OPS, STR_OPS

_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\udcff\udc80 ,()\"'\\"),
                 max_size=8)
_idents = st.from_regex(r"[a-zA-Z]{1,4}[a-zA-Z0-9_]{0,3}", fullmatch=True).filter(
    lambda s: s not in ("and", "or", "not"))
_field_names = st.sampled_from(["proc.name", "evt.type", "fd.name", "proc.aname", "a.b", "x.y_1.z2"]) | \
    st.from_regex(r"[a-z]{1,4}(\.[a-z][a-z0-9_]{0,3}){1,2}", fullmatch=True)
_numbers = st.from_regex(lx.NUMBER, fullmatch=True) | st.from_regex(lx.HEX_NUMBER, fullmatch=True)

fields = st.builds(n.FieldExpr, _field_names, st.none() | _texts.filter(bool))


def _transformers(inner):
    single = st.builds(lambda name, a: n.TransformerExpr(name, (a,)),
                       st.sampled_from(["tolower", "toupper", "b64", "basename", "len"]), inner)
    targ = inner | st.builds(n.Value, _texts | _numbers)
    multi = st.builds(lambda name, args, arg: n.TransformerExpr(name, tuple(args), arg),
                      st.sampled_from(["join", "concat", "getopt"]),
                      st.lists(targ | st.builds(lambda xs: n.TransformerList(tuple(xs)), st.lists(targ, max_size=3)),
                               min_size=1, max_size=3),
                      st.none() | _texts.filter(bool))
    return single | multi


lhs = st.recursive(fields, _transformers, max_leaves=3)
rhs_transformers = st.builds(lambda f: n.TransformerExpr("val", (f,)), fields) | \
    lhs.filter(lambda x: isinstance(x, n.TransformerExpr))

_lists = st.builds(lambda xs: n.ListValue(tuple(xs)), st.lists(_texts, max_size=4))


def _check(left, kind, op, strv, numv, listv, ident, modifier, rhs_t, use_t):
    if kind == "unary":
        return n.UnaryCheck(left, "exists")
    if kind == "num":
        return n.BinaryCheck(left, NUM_OPS[op % len(NUM_OPS)], rhs_t if use_t else n.Value(numv))
    if kind == "str":
        o = STR_OPS[op % len(STR_OPS)]
        if modifier:
            return n.BinaryCheck(left, o, listv if not ident else n.Value(ident), modifier)
        return n.BinaryCheck(left, o, rhs_t if use_t else n.Value(strv))
    o = LIST_OPS[op % len(LIST_OPS)]
    if use_t:
        return n.BinaryCheck(left, o, rhs_t)
    return n.BinaryCheck(left, o, n.Value(ident) if ident else listv)


checks = st.builds(_check, lhs, st.sampled_from(["unary", "num", "str", "list"]), st.integers(0, 20),
                   _texts, _numbers, _lists, st.none() | _idents,
                   st.none() | st.sampled_from(["oneof", "anyof", "allof"]), rhs_transformers, st.booleans())


def _bool(children):
    return (st.builds(lambda xs: n.AndExpr(tuple(xs)), st.lists(children, min_size=2, max_size=3))
            | st.builds(lambda xs: n.OrExpr(tuple(xs)), st.lists(children, min_size=2, max_size=3))
            | st.builds(n.NotExpr, children))


conditions = st.recursive(checks | st.builds(n.Identifier, _idents), _bool, max_leaves=8)
